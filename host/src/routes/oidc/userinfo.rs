//! `GET|POST {prefix}oidc/userinfo`: the user behind an access token of this host (RFC 6750
//! `Authorization: Bearer`), with the claims its scope allows. An access token of a user who
//! logged out, was disabled or removed since is refused like a user token would be.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{no_store, oauth_error};
use crate::app::SharedApp;
use crate::http::{ApiError, bearer_token, for_user, json_response};
use crate::users;

/// 401 with the RFC 6750 §3 challenge.
fn invalid_token(description: &str) -> Response {
    metrics::counter!("authhost_oidc_userinfo_refused_total").increment(1);
    let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", description);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

pub async fn userinfo(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(token) = token else {
        let mut r = no_store(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "invalid_request", "error_description": "an access token is required (Authorization: Bearer)" }),
        ));
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(r);
    };
    let claims = match app.tokens.verify_access_token(token) {
        Ok(c) => c,
        Err(e) => {
            return Ok(invalid_token(&format!(
                "not an access token of this host: {e}"
            )));
        }
    };
    if !claims.scope.split(' ').any(|s| s == "openid") {
        // OpenID Connect Core §5.3: userinfo serves OpenID requests only.
        let mut r = oauth_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "this access token was not granted the openid scope",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
        );
        return Ok(r);
    }
    let Some(user) = app.user_cache.get(&app.db, &claims.sub).await? else {
        return Ok(invalid_token("the user no longer exists"));
    };
    if users::token_refusal(&user.user, Some(claims.iat)).is_some() {
        return Ok(invalid_token(
            "the user logged out or was disabled since this token was issued",
        ));
    }
    let has = |s: &str| claims.scope.split(' ').any(|w| w == s);
    let mut body = Map::new();
    body.insert("sub".into(), Value::String(user.id.clone()));
    let u = &user.user;
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            body.insert(name.into(), Value::String(v.clone()));
        }
    };
    if has("profile") {
        put("name", &u.name);
        put("preferred_username", &u.username);
        put("picture", &u.avatar_url);
    }
    if has("email") {
        put("email", &u.email);
        if u.email.is_some() {
            // authhost only ever takes verified addresses from its upstreams.
            body.insert("email_verified".into(), Value::Bool(true));
        }
    }
    let reply = no_store(json_response(StatusCode::OK, &Value::Object(body)));
    Ok(for_user(reply, &user.id))
}
