//! The original's routes: `check`, `authorize`, `update`, `public-key`, `resolve`,
//! `get_profile`, plus `logout`. Logical failures keep the original's status 200 with the
//! failure in the body, so old clients keep parsing them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::{App, SharedApp};
use crate::http::{ApiError, Params, for_user, found};
use crate::stats::Refusal;
use crate::tokens::MAX_SERVICE_LEN;
use crate::user_cache::CachedUser;
use crate::users::{self, UsernameError};

/// The user behind the request's token: `Ok(None)` for a missing, invalid or revoked token or
/// an unknown user; `Err` only when the database fails.
pub(crate) async fn authenticated_user(
    app: &App,
    token: Option<&str>,
) -> Result<Option<Arc<CachedUser>>, ApiError> {
    user_behind(app, token, None).await
}

/// As `authenticated_user`, for a read-only answer (`route`: check, authorize, token
/// exchange): while the database is unreachable, a row read within
/// `database.stale_if_error_seconds` answers. The token itself is verified as always.
pub(crate) async fn authenticated_user_or_stale(
    app: &App,
    token: Option<&str>,
    route: &'static str,
) -> Result<Option<Arc<CachedUser>>, ApiError> {
    user_behind(app, token, Some(route)).await
}

async fn user_behind(
    app: &App,
    token: Option<&str>,
    stale_route: Option<&'static str>,
) -> Result<Option<Arc<CachedUser>>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    let verified = match app.tokens.verify_user_token(token) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, "user token refused");
            return Ok(None);
        }
    };
    let user = match stale_route {
        Some(route) => {
            app.user_cache
                .get_or_stale(&app.db, &verified.userid, route)
                .await?
        }
        None => app.user_cache.get(&app.db, &verified.userid).await?,
    };
    let refusal = match &user {
        None => Some(Refusal::UnknownUser),
        Some(u) => users::token_refusal(u, verified.issued_at),
    };
    if let Some(why) = refusal {
        app.tokens.stats.refused(why);
        return Ok(None);
    }
    Ok(user)
}

pub async fn check(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    if let Some(user) =
        authenticated_user_or_stale(&app, params.token().as_deref(), "check").await?
    {
        return Ok(for_user(
            params.reply_text(user.check_body.clone()),
            &user.id,
        ));
    }
    let next = params.get("next");
    let providers: Map<String, Value> = app
        .login_providers()
        .into_iter()
        .map(|name| {
            (
                name.to_string(),
                json!({ "url": app.login_url(name, next) }),
            )
        })
        .collect();
    Ok(params.reply(&json!({ "authenticated": false, "providers": providers })))
}

pub async fn authorize(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let denied = || params.reply(&json!({ "permissions": {} }));
    let Some(service) = params.get("service") else {
        return Ok(denied());
    };
    if service.len() > MAX_SERVICE_LEN {
        return Err(ApiError::BadRequest(format!(
            "service must be at most {MAX_SERVICE_LEN} bytes"
        )));
    }
    let Some(user) =
        authenticated_user_or_stale(&app, params.token().as_deref(), "authorize").await?
    else {
        return Ok(denied());
    };
    let permissions = app
        .plugins()
        .permissions(service, users::provider_view(&user))
        .await;
    let (token, _exp) = app
        .permission_token(&user.id, service, &permissions)
        .await
        .map_err(ApiError::Internal)?;
    let reply = params.reply(&json!({
        "permissions": permissions,
        "service": service,
        "token": token,
        "userid": user.id,
    }));
    Ok(for_user(reply, &user.id))
}

pub async fn update(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let failure = |e: &str| params.reply(&json!({ "success": false, "error": e }));
    let Some(token) = params.token() else {
        return Ok(failure("No token"));
    };
    let Ok(verified) = app.tokens.verify_user_token(&token) else {
        return Ok(failure("Not authenticated"));
    };
    let Some(user) = users::get(&app.db, &verified.userid).await? else {
        app.tokens.stats.refused(Refusal::UnknownUser);
        return Ok(failure(&UsernameError::UnknownUser.to_string()));
    };
    if let Some(why) = users::token_refusal(&user, verified.issued_at) {
        app.tokens.stats.refused(why);
        return Ok(failure("Not authenticated"));
    }
    // Other profile fields are ignored, as in the original.
    let Some(username) = params.get("username") else {
        return Ok(for_user(
            params.reply(&json!({ "success": true })),
            &user.id,
        ));
    };
    let set = users::set_username(&app.db, &user.id, username).await;
    app.user_cache.invalidate(&user.id);
    let reply = match set {
        Ok(()) => params.reply(&json!({ "success": true })),
        Err(UsernameError::Db(e)) => return Err(e.into()),
        Err(e) => failure(&e.to_string()),
    };
    Ok(for_user(reply, &user.id))
}

pub async fn public_key(State(app): State<SharedApp>) -> Response {
    let pem = app.tokens.keys().signing.public.pem.clone();
    let mut r = (StatusCode::OK, pem).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub async fn resolve(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let user = match params.get("username") {
        Some(name) => users::find_by_username(&app.db, name).await?,
        None => None,
    };
    Ok(params.reply(&json!({ "userid": user.map(|u| u.id) })))
}

pub async fn get_profile(
    State(app): State<SharedApp>,
    params: Params,
) -> Result<Response, ApiError> {
    let user = match params.get("username") {
        Some(name) => users::find_by_username(&app.db, name).await?,
        None => None,
    };
    Ok(params.reply(&match user {
        Some(u) => json!({ "found": true, "profile": users::public_profile(&u) }),
        None => json!({ "found": false, "profile": null }),
    }))
}

/// Revokes every token of the user issued until now, fires `on_user_logout`, then redirects to
/// an allowlisted `next` or answers `{"success": true}`.
pub async fn logout(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    // Refuse a bad `next` before changing anything.
    let next = match params.non_empty("next") {
        Some(n) => Some(
            app.redirects
                .check(n)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let user = authenticated_user(&app, params.token().as_deref()).await?;
    if let Some(user) = &user {
        app.sessions().logout(user).await?;
    }
    let reply = match (next, &user) {
        (Some(next), _) => found(&next),
        (None, Some(_)) => params.reply(&json!({ "success": true })),
        (None, None) => params.reply(&json!({ "success": false, "error": "Not authenticated" })),
    };
    Ok(match user {
        Some(user) => for_user(reply, &user.id),
        None => reply,
    })
}
