//! The original service's user tokens (`legacy_user_tokens`): HS256 keyed with sha256 of the
//! PEM, claims `userid` and `exp` only. They carry no `kid`: the signing key's secret is tried,
//! then each retired key's, so they survive a key rotation like this host's own tokens (the
//! retired key file must hold the PEM text exactly as the original had it).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::{TokenError, TokenService, VerifiedUser};

/// The original's user token: `userid` and `exp` only.
#[derive(Debug, Deserialize)]
struct LegacyClaims {
    userid: String,
    exp: u64,
}

impl TokenService {
    /// The original's tokens, accepted only with `legacy_user_tokens` (and `exp` required, which
    /// the original did not require).
    pub(super) fn verify_legacy(
        &self,
        token: &str,
        alg: Algorithm,
    ) -> Result<(VerifiedUser, i64), TokenError> {
        if !self.legacy {
            return Err(TokenError::UnknownKey);
        }
        if alg != Algorithm::HS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = std::iter::once("exp".to_string()).collect();
        validation.validate_aud = false;
        validation.leeway = 0;
        // Another key's signature fails as a bad signature; any other error is the token's own.
        let mut outcome = None;
        for key in &self.legacy_decoding {
            let decoded = jsonwebtoken::decode::<LegacyClaims>(token, key, &validation);
            let other_key = matches!(&decoded, Err(e) if *e.kind() == ErrorKind::InvalidSignature);
            outcome = Some(decoded);
            if !other_key {
                break;
            }
        }
        let data = outcome
            .ok_or(TokenError::UnknownKey)?
            .map_err(|e| TokenError::from_jwt(&e))?;
        let last_second = i64::try_from(data.claims.exp).unwrap_or(i64::MAX);
        let verified = VerifiedUser {
            userid: data.claims.userid,
            issued_at: None,
        };
        Ok((verified, last_second))
    }
}
