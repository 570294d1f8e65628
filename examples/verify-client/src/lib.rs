//! Verifying authhost permission tokens, as a downstream service does.
//!
//! Fetch the key set once from `/.well-known/jwks.json` (and again when a token names a `kid`
//! you do not know: the host rotated its key), then check each token locally: RS256 only, the
//! key named by `kid`, `exp` required, the issuer you expect, the service you are.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Installs the crypto backend of jsonwebtoken (it has none by default).
pub fn init() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// `GET <origin>/.well-known/jwks.json`.
pub async fn fetch_jwks(origin: &str) -> Result<JwkSet, String> {
    let url = format!("{}/.well-known/jwks.json", origin.trim_end_matches('/'));
    let response = reqwest::get(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response
        .json::<JwkSet>()
        .await
        .map_err(|e| format!("{url}: not a JWK set: {e}"))
}

/// The claims of a valid permission token for `service` issued by `issuer`.
pub fn verify(token: &str, keys: &JwkSet, issuer: &str, service: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("refusing algorithm {:?}", header.alg));
    }
    let kid = header.kid.ok_or("token without kid")?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| format!("unknown kid {kid}: refetch the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key {kid}: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false; // authhost's permission tokens carry no audience
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| format!("invalid token: {e}"))?
        .claims;
    if claims.get("service").and_then(Value::as_str) != Some(service) {
        return Err(format!(
            "token is for service {}, not {service}",
            claims["service"]
        ));
    }
    Ok(claims)
}
