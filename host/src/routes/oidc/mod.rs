//! authhost as an OpenID Provider: the authorization endpoint (`oidc/authorize`), the code and
//! refresh grants of the token endpoint (`token`, beside token exchange), `oidc/userinfo`,
//! RP-initiated logout (`oidc/logout`). The checks without HTTP live in the core
//! (`oidc_request`, `oidc_codes`, `oidc_refresh`, `login::session`); docs/oidc.md says what a
//! client sees.

pub mod authorize;
mod client_auth;
pub mod grants;
mod login_page;
pub mod logout;
pub mod userinfo;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::App;
use crate::http::{ApiError, json_response};
use crate::login::session::BrowserSession;
use crate::user_cache::CachedUser;

/// An OAuth error as JSON (RFC 6749 §5.2), never stored by a cache.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    ))
}

use crate::http::no_store;

/// `uri` (a registered redirect URI) with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> Result<String, ApiError> {
    let mut url = url::Url::parse(uri)
        .map_err(|e| ApiError::Internal(format!("registered redirect URI {uri}: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}

/// Counts a refused token request by reason (`authhost_oidc_grants_refused_total`).
fn count_refusal(reason: &'static str) {
    metrics::counter!("authhost_oidc_grants_refused_total", "reason" => reason).increment(1);
}

/// The user of the browser session the request carries, if it still counts: sealed by this
/// host, not expired, the user there, not disabled, not logged out since.
async fn session_user(
    app: &App,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(Arc<CachedUser>, BrowserSession)>, ApiError> {
    let name = super::login::cookie_name(app);
    let Some(value) = super::login::request_cookie(headers, name) else {
        return Ok(None);
    };
    let Ok(session) = BrowserSession::open(&app.login_sealer, &value, now) else {
        return Ok(None);
    };
    let Some(user) = app.user_cache.get(&app.db, &session.user_id).await? else {
        return Ok(None);
    };
    if session.refusal(&user.user).is_some() {
        return Ok(None);
    }
    Ok(Some((user, session)))
}
