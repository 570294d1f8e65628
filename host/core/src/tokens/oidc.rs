//! The OpenID Provider's tokens, for the authorization-code and refresh grants: ID tokens (OpenID
//! Connect Core §2) and JWT access tokens (RFC 9068: header `typ: at+jwt`, so that neither can be
//! taken for the other, nor for a user or permission token), both RS256 with the signing key and
//! its `kid`, `iss` this host's issuer.

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::{TokenError, TokenService, b64_json, now};
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
}
