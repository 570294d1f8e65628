//! User tokens and permission tokens: minting (`mint`), verification pinned to the key and
//! algorithm (`verify`), the original's tokens (`legacy`); this file the types and the service.
//! Nothing here knows about HTTP or the database.

use std::collections::HashSet;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::keys::KeyRing;
use crate::stats::{Refusal, TokenStats};

mod legacy;
mod mint;
mod oidc;
mod verify;

pub use oidc::{AccessToken, IdToken};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest `service` name `authorize` takes (the original took any string; a longer one
/// gets 400, so that names cannot be used to fill memory or the permission tokens).
pub const MAX_SERVICE_LEN: usize = 256;

/// Clock skew allowed on `exp` when verifying user tokens.
const VERIFY_LEEWAY_SECONDS: i64 = 30;

/// How long verified user tokens are remembered.
const VERIFIED_TOKENS_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Bytes counted for a cache entry on top of its strings (allocation headers, the cache's own
/// bookkeeping per entry).
const CACHE_ENTRY_OVERHEAD: usize = 160;

/// The weight of a cache entry of `bytes` bytes of text, for moka's `u32` weigher.
fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes.saturating_add(CACHE_ENTRY_OVERHEAD)).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token signed with an algorithm this host does not accept")]
    WrongAlgorithm,
    #[error("token expired")]
    Expired,
    #[error("bad token signature")]
    BadSignature,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("not a user token")]
    NotAUserToken,
    #[error("signing failed")]
    Signing,
}

impl TokenError {
    /// A jsonwebtoken verdict, sorted by what operators count.
    fn from_jwt(e: &jsonwebtoken::errors::Error) -> TokenError {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::WrongAlgorithm
            }
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => TokenError::Malformed,
            _ => TokenError::Invalid(e.to_string()),
        }
    }

    /// The `reason` a refusal is counted under.
    pub fn refusal(&self) -> Refusal {
        match self {
            TokenError::Malformed => Refusal::Malformed,
            TokenError::UnknownKey => Refusal::UnknownKey,
            TokenError::WrongAlgorithm => Refusal::WrongAlgorithm,
            TokenError::Expired => Refusal::Expired,
            TokenError::BadSignature => Refusal::BadSignature,
            TokenError::NotAUserToken => Refusal::WrongType,
            TokenError::Invalid(_) | TokenError::Signing => Refusal::InvalidClaims,
        }
    }
}

/// Claims of a user token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserClaims {
    pub userid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    #[serde(default)]
    pub typ: Option<String>,
}

/// Claims of a permission token: the original's three first, in its order.
#[derive(Debug, Serialize)]
struct PermissionClaims<'a> {
    userid: &'a str,
    permissions: &'a serde_json::Value,
    service: &'a str,
    iat: i64,
    exp: i64,
    iss: &'a str,
}

/// A user token that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser {
    pub userid: String,
    /// `iat`; `None` for the original's tokens, which carry none.
    pub issued_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserTokenAlgorithm {
    Hs256,
    Rs256,
}

pub struct TokenService {
    keys: Arc<KeyRing>,
    issuer: String,
    user_alg: UserTokenAlgorithm,
    user_token_seconds: i64,
    permission_token_seconds: i64,
    legacy: bool,
    /// Signed permission tokens by (user, service, permissions), kept for half their lifetime
    /// so that a token handed out again always has at least half its lifetime left.
    permission_cache: Option<moka::sync::Cache<String, (String, i64)>>,
    /// User tokens that passed verification, by their text: a verdict depends only on the
    /// token's bytes and this host's keys, so it is reused (`exp` is checked again on every
    /// use; revocation is the caller's check against the user, as always). Most `check` calls
    /// repeat a token seen moments ago; this saves the HMAC and the claims decoding. The `i64`
    /// is the last second the token is accepted (`exp` plus the leeway its kind gets).
    verified: moka::sync::Cache<String, (VerifiedUser, i64), foldhash::fast::RandomState>,
    hmac_key: hmac::Key,
    user_decoding: DecodingKey,
    /// The original's user-token keys: the signing key's, then each retired key's (the
    /// original's tokens carry no `kid`, so each is tried).
    legacy_decoding: Vec<DecodingKey>,
    user_header: String,
    permission_header: String,
    /// Tokens issued and refused, cache lookups (exported by `/metrics`).
    pub stats: TokenStats,
}

fn b64_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TokenService {
    pub fn new(config: &Config, keys: Arc<KeyRing>) -> TokenService {
        let user_alg = match config.tokens.user_token_algorithm {
            crate::config::UserTokenAlgorithm::Hs256 => UserTokenAlgorithm::Hs256,
            crate::config::UserTokenAlgorithm::Rs256 => UserTokenAlgorithm::Rs256,
        };
        let kid = keys.signing.kid().to_string();
        let alg_name = match user_alg {
            UserTokenAlgorithm::Hs256 => "HS256",
            UserTokenAlgorithm::Rs256 => "RS256",
        };
        let secret = keys.signing.user_token_secret();
        TokenService {
            issuer: config.issuer(),
            user_alg,
            user_token_seconds: i64::from(config.tokens.user_token_days) * 86_400,
            permission_token_seconds: i64::try_from(config.tokens.permission_token_seconds)
                .unwrap_or(i64::MAX),
            legacy: config.tokens.legacy_user_tokens,
            permission_cache: (config.tokens.permission_token_cache
                && config.caches.permission_tokens_mib > 0)
                .then(|| {
                    let half = (config.tokens.permission_token_seconds / 2).max(1);
                    moka::sync::Cache::builder()
                        .max_capacity(crate::config::mib(config.caches.permission_tokens_mib))
                        .weigher(|key: &String, (token, _): &(String, i64)| {
                            weight(key.len() + token.len())
                        })
                        .time_to_live(std::time::Duration::from_secs(half))
                        .build()
                }),
            verified: moka::sync::Cache::builder()
                .max_capacity(crate::config::mib(config.caches.verified_tokens_mib))
                .weigher(|token: &String, (user, _): &(VerifiedUser, i64)| {
                    weight(token.len() + user.userid.len())
                })
                .time_to_live(VERIFIED_TOKENS_TTL)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            hmac_key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            user_decoding: DecodingKey::from_secret(secret),
            legacy_decoding: std::iter::once(&keys.signing)
                .chain(keys.retired.iter())
                .map(|k| DecodingKey::from_secret(k.legacy_secret()))
                .collect(),
            user_header: b64_json(&serde_json::json!({"alg": alg_name, "kid": kid, "typ": "JWT"})),
            permission_header: b64_json(
                &serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            ),
            keys,
            stats: TokenStats::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How long a user token lives (`tokens.user_token_days`); a browser session and a refresh
    /// token family live as long.
    pub fn user_token_seconds(&self) -> i64 {
        self.user_token_seconds
    }

    /// How long a permission token lives (`tokens.permission_token_seconds`); an OpenID access
    /// token, which carries the same permissions, lives as long.
    pub fn permission_token_seconds(&self) -> i64 {
        self.permission_token_seconds
    }

    /// Bytes held by the permission-token cache and the memory of verified tokens, by the
    /// caches' own weighing (tests, metrics).
    pub fn cache_bytes(&self) -> (u64, u64) {
        let permission = self.permission_cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        });
        self.verified.run_pending_tasks();
        (permission, self.verified.weighted_size())
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Signs and verifies once; run before serving so a broken crypto setup never serves.
    pub fn self_test(&self) -> Result<(), String> {
        let token = self
            .mint_user_token("self-test", None, None)
            .map_err(|e| e.to_string())?;
        let verified = self
            .verify_user_token(&token)
            .map_err(|e| format!("user token: {e}"))?;
        if verified.userid != "self-test" {
            return Err("user token round trip changed the claims".into());
        }
        let (token, _) = self
            .sign_permission_token("self-test", "self-test", &serde_json::json!({}))
            .map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &self.keys.signing.public.decoding,
            &validation,
        )
        .map_err(|e| format!("permission token: {e}"))?;
        // It runs once, before serving: its tokens are not traffic.
        self.stats.forget();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EnvMap, Secret};

    pub(super) fn service() -> TokenService {
        crate::crypto::install();
        let (private, public) = crate::keys::generate_pem_pair().expect("keygen");
        let mut config = Config::from_toml_str("", &EnvMap::new()).expect("valid");
        config.keys.private_key = Secret::new(&private);
        config.keys.public_key = public;
        let keys = KeyRing::load(&config).map_err(|e| e.len()).expect("keys");
        TokenService::new(&config, Arc::new(keys))
    }

    /// A token with this host's exact header and key around arbitrary payload bytes.
    fn with_own_header(tokens: &TokenService, payload: &[u8]) -> String {
        let mut t = format!("{}.{}", tokens.user_header, URL_SAFE_NO_PAD.encode(payload));
        let sig = hmac::sign(&tokens.hmac_key, t.as_bytes());
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        t
    }

    #[test]
    fn fast_path_agrees_with_jsonwebtoken() {
        let tokens = service();
        let now = now();
        let iss = tokens.issuer().to_string();
        let good = tokens.mint_user_token("u1", None, None).expect("mint");
        let payloads: Vec<String> = vec![
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u\u00e9","iat":{now},"exp":{},"iss":"{iss}","typ":"user","x":[1]}}"#,
                now + 60
            ),
            // expired beyond the leeway, and within it
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"{iss}","typ":"user"}}"#,
                now - 31
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"{iss}","typ":"user"}}"#,
                now - 5
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"other","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"{iss}","typ":"permission"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"iss":"{iss}"}}"#,
                now + 60
            ),
            format!(r#"{{"userid":"u1","iat":{now},"iss":"{iss}","typ":"user"}}"#),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{},"typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":"{}","iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","iat":{now},"exp":{}.5,"iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","userid":"u2","iat":{now},"exp":{},"iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":7,"iat":{now},"exp":{},"iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            format!(
                r#"{{"userid":"u1","exp":{},"iss":"{iss}","typ":"user"}}"#,
                now + 60
            ),
            "[]".to_string(),
            format!(r#"["u1",{now},{},"{iss}","user"]"#, now + 60),
            format!(r#" ["u1",{now},{},"{iss}","user"]"#, now + 60),
            "not json".to_string(),
        ];
        let mut cases: Vec<String> = payloads
            .iter()
            .map(|p| with_own_header(&tokens, p.as_bytes()))
            .collect();
        cases.push(good.clone());
        // Same header and payload, damaged signature or shape.
        let (signed, sig) = good.rsplit_once('.').expect("three parts");
        cases.push(format!("{signed}.{}", &sig[1..]));
        cases.push(format!("{signed}.{sig}A"));
        cases.push(format!("{signed}.{sig}="));
        cases.push(format!("{signed}.{sig}.{sig}"));
        cases.push(format!("{signed}."));
        cases.push(signed.to_string());
        let mut accepted = 0;
        for token in &cases {
            let full = tokens.verify_with_jsonwebtoken(token);
            let fast = tokens.accept_own_hs256(token);
            let full_user = full.as_ref().map(|(v, _)| v.clone()).map_err(Clone::clone);
            if let Some(fast) = &fast {
                assert_eq!(
                    full.as_ref(),
                    Ok(fast),
                    "fast path accepted what jsonwebtoken refuses: {token}"
                );
                accepted += 1;
            }
            assert_eq!(tokens.verify_user_token(token), full_user, "{token}");
        }
        // The valid ones (the first two payloads, one inside the leeway, the minted token) take
        // the fast path; a fast path that never accepts would pass the loop above.
        assert_eq!(accepted, 4);
    }

    #[test]
    fn remembered_tokens_still_expire() {
        let tokens = service();
        let user = VerifiedUser {
            userid: "u1".into(),
            issued_at: Some(1),
        };
        // Not a token at all: only the memory can make it pass, so these show it is consulted
        // and that it honours the last accepted second.
        tokens
            .verified
            .insert("remembered".into(), (user.clone(), now() + 60));
        assert_eq!(tokens.verify_user_token("remembered"), Ok(user.clone()));
        assert_eq!(tokens.accept_own_token("remembered"), Some(user.clone()));
        tokens
            .verified
            .insert("remembered".into(), (user, now() - 1));
        assert!(tokens.verify_user_token("remembered").is_err());
        assert_eq!(tokens.accept_own_token("remembered"), None);
        // A real token is remembered once verified.
        let token = tokens.mint_user_token("u2", None, None).expect("mint");
        assert!(tokens.verified.get(&token).is_none());
        assert!(tokens.verify_user_token(&token).is_ok());
        assert!(tokens.verified.get(&token).is_some());
    }
}
