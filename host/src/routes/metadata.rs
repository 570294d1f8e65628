//! RFC 8414 authorization server metadata: where a service's OAuth or JWT library finds the
//! issuer, its JWKS and the token-exchange endpoint. Served at
//! `/.well-known/oauth-authorization-server` followed by the issuer's path (RFC 8414 §3.1)
//! and at the root form.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::app::SharedApp;
use crate::http::json_response;
use crate::routes::exchange::{GRANT_TYPE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};

pub const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// The metadata paths for `issuer`: the root form, and the RFC 8414 form when the issuer has
/// a path (its trailing `/` removed, and once more with it, as clients build both).
pub fn paths(issuer: &str) -> Vec<String> {
    let mut paths = vec![WELL_KNOWN.to_string()];
    let path = url::Url::parse(issuer)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let trimmed = path.trim_end_matches('/');
    if !trimmed.is_empty() {
        paths.push(format!("{WELL_KNOWN}{trimmed}"));
        paths.push(format!("{WELL_KNOWN}{trimmed}/"));
    }
    paths
}

pub async fn metadata(State(app): State<SharedApp>) -> Response {
    let external = app.config.server.external_address.trim_end_matches('/');
    let mut r = json_response(
        StatusCode::OK,
        &json!({
            "issuer": app.tokens.issuer(),
            "jwks_uri": format!("{external}/.well-known/jwks.json"),
            "token_endpoint": format!("{external}{}token", app.config.server.prefix),
            "grant_types_supported": [GRANT_TYPE],
            // Services call the token endpoint with a user token and no client credentials.
            "token_endpoint_auth_methods_supported": ["none"],
            // Logins go through the original's routes (`login/{provider}`), not an OAuth
            // authorization endpoint: no response types.
            "response_types_supported": [],
            "subject_token_types_supported": [TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS],
            "issued_token_types_supported": [TOKEN_TYPE_JWT],
        }),
    );
    let max_age = app.config.keys.jwks_max_age_seconds;
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}
