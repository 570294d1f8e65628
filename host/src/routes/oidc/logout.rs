//! `GET|POST {prefix}oidc/logout`: OpenID Connect RP-Initiated Logout 1.0. The browser session
//! cookie is always removed. With an `id_token_hint` of this host naming the session's user (or
//! with no session left in the browser), the user is logged out as the original's `logout` does:
//! every token issued so far revoked (refresh families included), `on_user_logout` fired.
//! Without a hint nothing is revoked: any page can send a browser here, and a logout of every
//! device should not be one link away. `post_logout_redirect_uri` must be one the client (by the
//! hint's `aud`, or `client_id`) registered, byte for byte; anything else is refused before any
//! change, never redirected.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::{oauth_error, session_user, with_query};
use crate::app::SharedApp;
use crate::http::{ApiError, Params, for_user, found, json_response};
use crate::tokens::now;

pub async fn logout(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let bad = |why: &str| Ok(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why));
    let hint = match params.non_empty("id_token_hint") {
        None => None,
        Some(token) => match app.tokens.verify_id_token_hint(token) {
            Ok(h) => Some(h),
            Err(e) => {
                return bad(&format!(
                    "id_token_hint is not an ID token of this host: {e}"
                ));
            }
        },
    };
    let client_id = match (params.non_empty("client_id"), &hint) {
        (Some(id), Some(h)) if id != h.aud => {
            return bad("client_id differs from the id_token_hint's audience");
        }
        (Some(id), _) => Some(id.to_string()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let target = match params.non_empty("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|id| app.config.clients.get(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri));
            if !registered {
                return bad(
                    "post_logout_redirect_uri is not one the client registered (compared exactly; \
                     the client is named by id_token_hint or client_id)",
                );
            }
            Some(uri.to_string())
        }
    };
    let now = now();
    let session = session_user(&app, &headers, now).await?;
    let user = match (&hint, session) {
        (Some(h), Some((user, _))) if user.id == h.sub => Some(user),
        // Another user's hint, no hint, or no session: nothing here to revoke.
        _ => None,
    };
    if let Some(user) = &user {
        app.sessions().logout(&user.user).await?;
    }
    let mut response = match target {
        Some(uri) => {
            let state = params.non_empty("state");
            let query: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
            found(&with_query(&uri, &query)?)
        }
        None => json_response(
            StatusCode::OK,
            &json!({ "success": true, "logged_out": user.is_some() }),
        ),
    };
    if let Some(cookie) = super::super::login::end_session_cookie(&app) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(match user {
        Some(u) => for_user(response, &u.id),
        None => response,
    })
}
