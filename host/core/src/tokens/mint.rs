//! Minting: user tokens (HS256 with the derived key, or RS256) and permission tokens (RS256),
//! and the cache that hands a permission token out again.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::{PermissionClaims, TokenError, TokenService, UserClaims, UserTokenAlgorithm, now};
use crate::keys::KeyError;
use crate::stats::bump;

impl TokenService {
    pub(super) fn sign(
        &self,
        header_b64: &str,
        claims: &impl Serialize,
        rsa: bool,
    ) -> Result<String, TokenError> {
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 360);
        token.push_str(header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = if rsa {
            self.keys
                .signing
                .sign_rs256(token.as_bytes())
                .map_err(|_: KeyError| TokenError::Signing)?
        } else {
            hmac::sign(&self.hmac_key, token.as_bytes())
                .as_ref()
                .to_vec()
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Mints a user token. `valid_after` is the user's last logout: the token's `iat` is kept
    /// after it so that a login in the same second as a logout still yields a usable token.
    pub fn mint_user_token(
        &self,
        userid: &str,
        valid_after: Option<i64>,
        days: Option<u32>,
    ) -> Result<String, TokenError> {
        let iat = now().max(valid_after.map_or(i64::MIN, |v| v.saturating_add(1)));
        let lifetime = days.map_or(self.user_token_seconds, |d| i64::from(d) * 86_400);
        let claims = UserClaims {
            userid: userid.to_string(),
            iat,
            exp: iat.saturating_add(lifetime),
            iss: self.issuer.clone(),
            typ: Some("user".into()),
        };
        let token = self.sign(
            &self.user_header,
            &claims,
            self.user_alg == UserTokenAlgorithm::Rs256,
        )?;
        bump(&self.stats.user_tokens_issued);
        Ok(token)
    }

    fn permission_cache_key(
        userid: &str,
        service: &str,
        permissions: &serde_json::Value,
    ) -> String {
        format!("{userid}\0{service}\0{permissions}")
    }

    /// A still-valid token signed earlier for the same user, service and permissions (with
    /// at least half its lifetime left), if the cache is on and has one.
    pub fn cached_permission_token(
        &self,
        userid: &str,
        service: &str,
        permissions: &serde_json::Value,
    ) -> Option<(String, i64)> {
        let cache = self.permission_cache.as_ref()?;
        let hit = cache.get(&Self::permission_cache_key(userid, service, permissions));
        let hit = self.stats.permission_cache.record(hit)?;
        bump(&self.stats.permission_tokens_issued);
        Some(hit)
    }

    /// Signs a new permission token, the one `authorize` hands out (RS256, no `aud`; RSA costs
    /// about 0.4 ms of CPU), and caches it.
    pub fn sign_permission_token(
        &self,
        userid: &str,
        service: &str,
        permissions: &serde_json::Value,
    ) -> Result<(String, i64), TokenError> {
        let iat = now();
        let exp = iat.saturating_add(self.permission_token_seconds);
        let claims = PermissionClaims {
            userid,
            permissions,
            service,
            iat,
            exp,
            iss: &self.issuer,
        };
        let minted = (self.sign(&self.permission_header, &claims, true)?, exp);
        bump(&self.stats.permission_tokens_issued);
        if let Some(cache) = &self.permission_cache {
            let key = Self::permission_cache_key(userid, service, permissions);
            cache.insert(key, minted.clone());
        }
        Ok(minted)
    }
}
