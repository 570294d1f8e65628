//! The provider's metadata: where an OpenID client, or a service's OAuth or JWT library, finds
//! the issuer, its JWKS and its endpoints. One document, served at OpenID Connect Discovery's
//! `{issuer}/.well-known/openid-configuration` and at RFC 8414's
//! `/.well-known/oauth-authorization-server` followed by the issuer's path (§3.1) and at the
//! root form.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::app::SharedApp;
use crate::http::json_response;
use crate::oidc_request::SCOPES;
use crate::routes::exchange::{GRANT_TYPE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};

pub const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";

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
    // OpenID Connect Discovery §4: the issuer, its trailing `/` removed, then the suffix.
    paths.push(format!("{trimmed}{OPENID_CONFIGURATION}"));
    paths
}

pub async fn metadata(State(app): State<SharedApp>) -> Response {
    let external = app.config.server.external_address.trim_end_matches('/');
    let base = format!("{external}{}", app.config.server.prefix);
    let mut r = json_response(
        StatusCode::OK,
        &json!({
            "issuer": app.tokens.issuer(),
            "jwks_uri": format!("{external}/.well-known/jwks.json"),
            "authorization_endpoint": format!("{base}oidc/authorize"),
            "token_endpoint": format!("{base}token"),
            "userinfo_endpoint": format!("{base}oidc/userinfo"),
            "end_session_endpoint": format!("{base}oidc/logout"),
            "grant_types_supported": ["authorization_code", "refresh_token", GRANT_TYPE],
            // Registered clients authenticate (or, public, name themselves); services
            // exchanging a user token call with none.
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                "name", "preferred_username", "picture", "email", "email_verified",
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
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
