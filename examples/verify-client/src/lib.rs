//! Verifying authhost permission tokens, as a downstream service does.
//!
//! Discover the host from the issuer you expect (RFC 8414 metadata: its `jwks_uri` and token
//! endpoint), fetch the key set once (and again when a token names a `kid` you do not know: the
//! host rotated its key), then check each token locally: RS256 only, the key named by `kid`,
//! `exp` required, the issuer you expect, the service you are.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Installs the crypto backend of jsonwebtoken (it has none by default).
pub fn init() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// The RFC 8414 metadata URL of `issuer`: `/.well-known/oauth-authorization-server` inserted
/// between its origin and its path (without the path's trailing `/`).
pub fn metadata_url(issuer: &str) -> Result<String, String> {
    let (scheme, rest) = issuer
        .split_once("://")
        .ok_or_else(|| format!("{issuer}: not an absolute URL"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    let suffix = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Ok(format!(
        "{scheme}://{host}/.well-known/oauth-authorization-server{suffix}"
    ))
}

/// What a service needs from the metadata.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub jwks_uri: String,
    pub token_endpoint: String,
}

/// Fetches `issuer`'s metadata and checks that it names the same issuer (RFC 8414 §3.3).
pub async fn discover(issuer: &str) -> Result<Discovered, String> {
    let url = metadata_url(issuer)?;
    let response = reqwest::get(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let metadata: Value = response
        .json()
        .await
        .map_err(|e| format!("{url}: not JSON: {e}"))?;
    if metadata.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!(
            "{url}: names issuer {}, not {issuer}",
            metadata["issuer"]
        ));
    }
    let field = |name: &str| {
        metadata
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{url}: no {name}"))
    };
    Ok(Discovered {
        jwks_uri: field("jwks_uri")?,
        token_endpoint: field("token_endpoint")?,
    })
}

/// `GET jwks_uri`.
pub async fn fetch_jwks_at(url: &str) -> Result<JwkSet, String> {
    let response = reqwest::get(url).await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response
        .json::<JwkSet>()
        .await
        .map_err(|e| format!("{url}: not a JWK set: {e}"))
}

/// `GET <origin>/.well-known/jwks.json`, for a host whose issuer you do not have.
pub async fn fetch_jwks(origin: &str) -> Result<JwkSet, String> {
    fetch_jwks_at(&format!(
        "{}/.well-known/jwks.json",
        origin.trim_end_matches('/')
    ))
    .await
}

/// The key of the JWKS that signed `token` (RS256 only, found by `kid`), and the token's header.
fn signing_key(token: &str, keys: &JwkSet) -> Result<(jsonwebtoken::Header, DecodingKey), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("refusing algorithm {:?}", header.alg));
    }
    let kid = header.kid.clone().ok_or("token without kid")?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| format!("unknown kid {kid}: refetch the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key {kid}: {e}"))?;
    Ok((header, key))
}

/// The claims of a valid permission token for `service` issued by `issuer`.
pub fn verify(token: &str, keys: &JwkSet, issuer: &str, service: &str) -> Result<Value, String> {
    let (_, key) = signing_key(token, keys)?;
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

/// The claims of a valid OpenID Provider access token (RFC 9068) for `audience` (a service
/// alias, or the client id of a client without one) issued by `issuer`: header `typ: at+jwt`
/// (so that no ID token or other JWT of the host passes), RS256, `iss`, `aud`, `exp`. Its
/// `permissions` are then the service's.
pub fn verify_access_token(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let (header, key) = signing_key(token, keys)?;
    if header.typ.as_deref() != Some("at+jwt") {
        return Err(format!("not an access token (typ {:?})", header.typ));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("invalid token: {e}"))
}
