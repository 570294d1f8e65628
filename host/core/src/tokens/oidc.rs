//! The OpenID Provider's tokens, for the authorization-code and refresh grants: ID tokens (OpenID
//! Connect Core §2) and JWT access tokens (RFC 9068: header `typ: at+jwt`, so that neither can be
//! taken for the other, nor for a user or permission token), both RS256 with the signing key and
//! its `kid`, `iss` this host's issuer.

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{MAX_TOKEN_LEN, TokenError, TokenService, b64_json, now};
use crate::stats::bump;

/// What an ID token says about the login, beyond `iss`, `iat` and `exp`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdToken<'a> {
    /// The user id.
    pub sub: &'a str,
    /// The client id.
    pub aud: &'a str,
    /// When the user logged in at authhost (seconds since the epoch).
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<&'a str>,
}

/// What an access token grants, beyond `iss`, `iat`, `exp` and `jti` (RFC 9068 §2.2).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessToken<'a> {
    /// The user id.
    pub sub: &'a str,
    /// The service alias the client is registered for, else the client id.
    pub aud: &'a str,
    pub client_id: &'a str,
    /// Space-separated scopes granted.
    pub scope: &'a str,
    /// The audience service's permissions (the same plugin call as `authorize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<&'a serde_json::Value>,
}

/// An access token of this host, as `userinfo` reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
}

/// An ID token of this host given back as RP-initiated logout's `id_token_hint`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    /// The client it was issued to (this host's ID tokens have one audience).
    pub aud: String,
}

#[derive(Serialize)]
struct Stamped<'a, T: Serialize> {
    iss: &'a str,
    #[serde(flatten)]
    claims: &'a T,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// 128 random bits, base64url: an access token's `jti`.
fn token_id() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Signing)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl TokenService {
    fn sign_typed<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        lifetime_seconds: i64,
        jti: Option<String>,
    ) -> Result<String, TokenError> {
        let header = b64_json(&serde_json::json!({
            "alg": "RS256",
            "kid": self.keys.signing.kid(),
            "typ": typ,
        }));
        let iat = now();
        let stamped = Stamped {
            iss: &self.issuer,
            claims,
            iat,
            exp: iat.saturating_add(lifetime_seconds),
            jti,
        };
        self.sign(&header, &stamped, true)
    }

    /// An ID token for `claims`, valid for `lifetime_seconds`.
    pub fn sign_id_token(
        &self,
        claims: &IdToken<'_>,
        lifetime_seconds: i64,
    ) -> Result<String, TokenError> {
        let token = self.sign_typed("JWT", claims, lifetime_seconds, None)?;
        bump(&self.stats.id_tokens_issued);
        Ok(token)
    }

    /// An access token this host issued (RS256 with one of its private keys, `typ: at+jwt`, its
    /// issuer, not expired). Revocation is the caller's check against the user.
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_own_rs256(token, "at+jwt", true)
    }

    /// An ID token this host issued, expired or not (OpenID Connect RP-Initiated Logout §2: a
    /// hint is usually presented after its ID token expired).
    pub fn verify_id_token_hint(&self, token: &str) -> Result<IdTokenHint, TokenError> {
        self.verify_own_rs256(token, "JWT", false)
    }

    fn verify_own_rs256<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        check_exp: bool,
    ) -> Result<T, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(TokenError::NotAUserToken);
        }
        // Only keys this host signs with (or did, or will): not the published-only ones.
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.private_key(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_exp = check_exp;
        let required: &[&str] = if check_exp { &["exp", "iss"] } else { &["iss"] };
        validation.required_spec_claims = required.iter().map(|s| s.to_string()).collect();
        validation.leeway = super::VERIFY_LEEWAY_SECONDS.unsigned_abs();
        jsonwebtoken::decode::<T>(token, &key.public.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::from_jwt(&e))
    }

    /// An RFC 9068 access token for `claims`, valid for `lifetime_seconds`, with a fresh `jti`.
    pub fn sign_access_token(
        &self,
        claims: &AccessToken<'_>,
        lifetime_seconds: i64,
    ) -> Result<String, TokenError> {
        let token = self.sign_typed("at+jwt", claims, lifetime_seconds, Some(token_id()?))?;
        bump(&self.stats.access_tokens_issued);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
    use serde_json::{Value, json};

    use super::*;

    /// Header and claims, the signature checked with the signing key's public half.
    fn verified(tokens: &TokenService, token: &str, aud: &str) -> (jsonwebtoken::Header, Value) {
        let key = &tokens.keys().signing.public;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[aud]);
        validation.set_issuer(&[tokens.issuer()]);
        let data = decode::<Value>(token, &key.decoding, &validation).expect("verifies");
        (decode_header(token).expect("header"), data.claims)
    }

    #[test]
    fn an_id_token_carries_the_login_and_the_profile_it_was_given() {
        let tokens = crate::tokens::tests::service();
        let token = tokens
            .sign_id_token(
                &IdToken {
                    sub: "u1",
                    aud: "grafana",
                    auth_time: 1_700_000_000,
                    nonce: Some("n-0S6_WzA2Mj"),
                    name: Some("Ada"),
                    email: Some("ada@example.org"),
                    ..IdToken::default()
                },
                300,
            )
            .expect("signed");
        let (header, claims) = verified(&tokens, &token, "grafana");
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(tokens.keys().signing.kid()));
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["auth_time"], 1_700_000_000);
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["email"], "ada@example.org");
        assert_eq!(
            claims["exp"].as_i64(),
            claims["iat"].as_i64().map(|t| t + 300)
        );
        // Absent, not null: a client compares what is there.
        for absent in ["picture", "preferred_username", "jti", "permissions"] {
            assert!(claims.get(absent).is_none(), "{absent}: {claims}");
        }
    }

    #[test]
    fn an_access_token_is_typed_at_jwt_with_a_fresh_id_and_the_permissions() {
        let tokens = crate::tokens::tests::service();
        let permissions = json!({ "read": true });
        let claims = AccessToken {
            sub: "u1",
            aud: "datasets",
            client_id: "grafana",
            scope: "openid email",
            permissions: Some(&permissions),
        };
        let first = tokens.sign_access_token(&claims, 600).expect("signed");
        let second = tokens.sign_access_token(&claims, 600).expect("signed");
        let (header, one) = verified(&tokens, &first, "datasets");
        let (_, two) = verified(&tokens, &second, "datasets");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(one["client_id"], "grafana");
        assert_eq!(one["scope"], "openid email");
        assert_eq!(one["permissions"], permissions);
        assert_eq!(one["iss"], tokens.issuer());
        let jti = one["jti"].as_str().expect("jti");
        assert_eq!(jti.len(), 22, "128 bits, base64url");
        assert_ne!(one["jti"], two["jti"]);
        // Not a user token: the user-token check refuses it.
        assert!(tokens.verify_user_token(&first).is_err());
    }

    #[test]
    fn access_tokens_and_id_token_hints_verify_only_as_themselves() {
        let tokens = crate::tokens::tests::service();
        let access = tokens
            .sign_access_token(
                &AccessToken {
                    sub: "u1",
                    aud: "grafana",
                    client_id: "grafana",
                    scope: "openid email",
                    permissions: None,
                },
                60,
            )
            .expect("signed");
        let id = IdToken {
            sub: "u1",
            aud: "grafana",
            auth_time: 1,
            ..IdToken::default()
        };
        let id_token = tokens.sign_id_token(&id, 60).expect("signed");
        let expired_id = tokens.sign_id_token(&id, -3600).expect("signed");
        let claims = tokens.verify_access_token(&access).expect("verifies");
        assert_eq!(
            (claims.sub.as_str(), claims.scope.as_str()),
            ("u1", "openid email")
        );
        assert_eq!(
            tokens.verify_access_token(&id_token).map(|c| c.sub),
            Err(TokenError::NotAUserToken)
        );
        let user_token = tokens.mint_user_token("u1", None, None).expect("minted");
        assert!(tokens.verify_access_token(&user_token).is_err());
        assert!(tokens.verify_id_token_hint(&user_token).is_err());
        assert!(tokens.verify_id_token_hint(&access).is_err());
        // A hint is usually presented after its token expired.
        assert_eq!(
            tokens.verify_id_token_hint(&expired_id).map(|h| h.aud),
            Ok("grafana".to_string())
        );
        // One signature character changed, well inside the signature.
        let at = access.len() - 20;
        let swapped = if &access[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &access[..at], &access[at + 1..]);
        assert_eq!(
            tokens.verify_access_token(&forged).map(|c| c.sub),
            Err(TokenError::BadSignature)
        );
    }
}
