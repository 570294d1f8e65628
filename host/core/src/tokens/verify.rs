//! Verification of user tokens: the memory of verified tokens, the pinned HS256 fast path,
//! and jsonwebtoken for everything else.

use super::*;

impl TokenService {
    /// Verifies a user token: algorithm pinned to the key named by `kid`, `exp`, `iss` and
    /// `typ: "user"` required. Revocation (the user's last logout) is the caller's check.
    /// A refusal is counted by its reason.
    pub fn verify_user_token(&self, token: &str) -> Result<VerifiedUser, TokenError> {
        let verdict = self.verify_uncounted(token);
        if let Err(e) = &verdict {
            self.stats.refused(e.refusal());
        }
        verdict
    }

    fn verify_uncounted(&self, token: &str) -> Result<VerifiedUser, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        if let Some(verified) = self.accept_own_token(token) {
            return Ok(verified);
        }
        let accepted = self.verify_with_jsonwebtoken(token)?;
        Ok(self.remember(token, accepted))
    }

    /// A token verified before and not expired since.
    fn seen_before(&self, token: &str) -> Option<VerifiedUser> {
        let (verified, last_second) = self.verified.get(token)?;
        (now() <= last_second).then_some(verified)
    }

    fn remember(&self, token: &str, (verified, last_second): (VerifiedUser, i64)) -> VerifiedUser {
        self.verified
            .insert(token.to_string(), (verified.clone(), last_second));
        verified
    }

    /// The hot path of `check` and `authorize`: a token verified before (and not expired
    /// since), or one exactly as this host mints it. The
    /// header segment must be byte-for-byte the one this host writes (so algorithm and key are
    /// pinned by construction), the HMAC is compared in constant time, and the claims are
    /// decoded once. It only ever accepts; anything it does not accept (another header, a bad
    /// signature, odd claims) goes through jsonwebtoken, which gives the error. So it can never
    /// accept a token the full path would refuse (see the `fast_path_agrees` test).
    pub fn accept_own_token(&self, token: &str) -> Option<VerifiedUser> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        if let Some(verified) = self.stats.verified_cache.record(self.seen_before(token)) {
            return Some(verified);
        }
        let accepted = self.accept_own_hs256(token)?;
        Some(self.remember(token, accepted))
    }

    /// `accept_own_token` without the length limit and the memory of verified tokens; also
    /// gives the last second the token is accepted.
    pub(super) fn accept_own_hs256(&self, token: &str) -> Option<(VerifiedUser, i64)> {
        #[derive(Deserialize)]
        struct Claims<'a> {
            #[serde(borrow)]
            userid: std::borrow::Cow<'a, str>,
            iat: i64,
            exp: i64,
            #[serde(borrow)]
            iss: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            typ: Option<std::borrow::Cow<'a, str>>,
        }
        if self.user_alg != UserTokenAlgorithm::Hs256 {
            return None;
        }
        let rest = token
            .strip_prefix(self.user_header.as_str())?
            .strip_prefix('.')?;
        let (payload_b64, signature_b64) = rest.split_once('.')?;
        if signature_b64.contains('.') {
            return None;
        }
        // Decoded into buffers on the stack: an HMAC-SHA256 is 32 bytes, and a user token's
        // claims are well under 512 (longer ones take the heap).
        // (The decoder wants room for its estimate of the length, 33 bytes for 43 characters.)
        let mut signature = [0u8; 36];
        let len = URL_SAFE_NO_PAD
            .decode_slice(signature_b64, &mut signature)
            .ok()?;
        if len != 32 {
            return None;
        }
        let signed = token.get(..self.user_header.len() + 1 + payload_b64.len())?;
        hmac::verify(&self.hmac_key, signed.as_bytes(), signature.get(..len)?).ok()?;
        let mut buffer = [0u8; 512];
        let payload: std::borrow::Cow<'_, [u8]> =
            match URL_SAFE_NO_PAD.decode_slice(payload_b64, &mut buffer) {
                Ok(n) => std::borrow::Cow::Borrowed(buffer.get(..n)?),
                Err(_) => std::borrow::Cow::Owned(URL_SAFE_NO_PAD.decode(payload_b64).ok()?),
            };
        // serde's derived struct would also take a JSON array; jsonwebtoken wants an object.
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let claims: Claims<'_> = serde_json::from_slice(&payload).ok()?;
        let valid = claims.typ.as_deref() == Some("user")
            && claims.iss == self.issuer
            && claims.exp >= now() - VERIFY_LEEWAY_SECONDS;
        let verified = VerifiedUser {
            userid: claims.userid.into_owned(),
            issued_at: Some(claims.iat),
        };
        valid.then(|| (verified, claims.exp.saturating_add(VERIFY_LEEWAY_SECONDS)))
    }

    /// Every user token through jsonwebtoken: the reference the fast path must agree with.
    /// Also gives the last second the token is accepted.
    pub(super) fn verify_with_jsonwebtoken(
        &self,
        token: &str,
    ) -> Result<(VerifiedUser, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let Some(kid) = header.kid else {
            return self.verify_legacy(token, header.alg);
        };
        let expected = match self.user_alg {
            UserTokenAlgorithm::Hs256 => Algorithm::HS256,
            UserTokenAlgorithm::Rs256 => Algorithm::RS256,
        };
        if header.alg != expected {
            return Err(TokenError::WrongAlgorithm);
        }
        let retired_secret;
        let key = match self.user_alg {
            // The HMAC key is derived from a private key: only the signing key and the retired
            // ones (whose private halves this host holds) can have made it.
            UserTokenAlgorithm::Hs256 if kid == self.keys.signing.kid() => &self.user_decoding,
            UserTokenAlgorithm::Hs256 => {
                let retired = self.keys.private_key(&kid).ok_or(TokenError::UnknownKey)?;
                retired_secret = DecodingKey::from_secret(retired.user_token_secret());
                &retired_secret
            }
            UserTokenAlgorithm::Rs256 => {
                &self.keys.find(&kid).ok_or(TokenError::UnknownKey)?.decoding
            }
        };
        let mut validation = Validation::new(expected);
        validation.required_spec_claims = ["exp", "iss"]
            .iter()
            .map(|s| s.to_string())
            .collect::<HashSet<_>>();
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = VERIFY_LEEWAY_SECONDS.unsigned_abs();
        let data = jsonwebtoken::decode::<UserClaims>(token, key, &validation)
            .map_err(|e| TokenError::from_jwt(&e))?;
        if data.claims.typ.as_deref() != Some("user") {
            return Err(TokenError::NotAUserToken);
        }
        let last_second = data.claims.exp.saturating_add(VERIFY_LEEWAY_SECONDS);
        let verified = VerifiedUser {
            userid: data.claims.userid,
            issued_at: Some(data.claims.iat),
        };
        Ok((verified, last_second))
    }
}
