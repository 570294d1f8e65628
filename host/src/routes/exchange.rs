//! `POST {prefix}token`: the OpenID grants (`authorization_code`, `refresh_token`) go to
//! `oidc::grants`; the rest of this module is RFC 8693 token exchange: a user token in, the permission token of
//! one service out, the same one `authorize` gives (same plugin call, same token cache). Errors
//! are RFC 6749 §5.2 JSON with status 400. Parameters are read from the form body only: a token
//! in a query string ends up in logs. Delegation (`actor_token`) and `resource` are not
//! supported and are refused rather than ignored; `scope` is ignored (permissions come from the
//! service's provider plugin).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use crate::app::SharedApp;
use crate::http::{ApiError, Params, for_user, json_response, no_store};
use crate::routes::auth::authenticated_user_or_stale;
use crate::tokens::{MAX_SERVICE_LEN, now};
use crate::users;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An RFC 6749 §5.2 error.
enum Refusal {
    InvalidRequest(String),
    UnsupportedGrantType,
    InvalidGrant,
    InvalidTarget,
}

impl Refusal {
    fn into_response(self) -> Response {
        let (code, description) = match self {
            Refusal::InvalidRequest(why) => ("invalid_request", why),
            Refusal::UnsupportedGrantType => (
                "unsupported_grant_type",
                format!("grant_type must be {GRANT_TYPE}, authorization_code or refresh_token"),
            ),
            Refusal::InvalidGrant => (
                "invalid_grant",
                "the subject token is not a valid user token of this host".to_string(),
            ),
            Refusal::InvalidTarget => (
                "invalid_target",
                "the audience is not a service of this host (name it by `audience`, not \
                 `resource`)"
                    .to_string(),
            ),
        };
        no_store(json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": code, "error_description": description }),
        ))
    }
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, Refusal> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Refusal::InvalidRequest(format!("{name} is missing")))
}

/// What the request asks for that this endpoint does not do, or gives twice (RFC 6749 §3.2).
fn unsupported(params: &Params) -> Option<Refusal> {
    const READ: [&str; 5] = [
        "grant_type",
        "subject_token",
        "subject_token_type",
        "audience",
        "requested_token_type",
    ];
    if let Some(name) = READ.iter().find(|n| params.get_all(n).count() > 1) {
        return Some(Refusal::InvalidRequest(format!(
            "{name} is given more than once"
        )));
    }
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Some(Refusal::InvalidRequest(
            "delegation (actor_token) is not supported".into(),
        ));
    }
    if params.get("resource").is_some() {
        return Some(Refusal::InvalidTarget);
    }
    match params.get("requested_token_type") {
        Some(t) if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS].contains(&t) => {
            Some(Refusal::InvalidRequest(format!(
                "requested_token_type must be {TOKEN_TYPE_JWT} (or {TOKEN_TYPE_ACCESS})"
            )))
        }
        _ => None,
    }
}

pub async fn token(
    State(app): State<SharedApp>,
    uri: Uri,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Ok(Refusal::InvalidRequest(
            "parameters go in an application/x-www-form-urlencoded body, not the URL".into(),
        )
        .into_response());
    }
    let grant_type = match required(&params, "grant_type") {
        Ok(g) => g,
        Err(r) => return Ok(r.into_response()),
    };
    match grant_type {
        GRANT_TYPE => {}
        "authorization_code" => {
            return super::oidc::grants::authorization_code(&app, &headers, &params).await;
        }
        "refresh_token" => {
            return super::oidc::grants::refresh_token(&app, &headers, &params).await;
        }
        _ => return Ok(Refusal::UnsupportedGrantType.into_response()),
    }
    if let Some(refusal) = unsupported(&params) {
        return Ok(refusal.into_response());
    }
    let fields = ["subject_token", "subject_token_type", "audience"].map(|n| required(&params, n));
    let [subject, subject_type, audience] = match fields {
        [Ok(s), Ok(t), Ok(a)] => [s, t, a],
        [s, t, a] => {
            let missing = [s, t, a].into_iter().find_map(Result::err);
            return Ok(missing
                .unwrap_or(Refusal::InvalidRequest("a parameter is missing".into()))
                .into_response());
        }
    };
    if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS].contains(&subject_type) {
        return Ok(Refusal::InvalidRequest(format!(
            "subject_token_type must be {TOKEN_TYPE_JWT} or {TOKEN_TYPE_ACCESS}"
        ))
        .into_response());
    }
    // The subject first: who may learn which services exist is a caller with a valid token.
    let Some(user) = authenticated_user_or_stale(&app, Some(subject), "token").await? else {
        return Ok(Refusal::InvalidGrant.into_response());
    };
    let plugins = app.plugins();
    if audience.len() > MAX_SERVICE_LEN || !plugins.has_provider(audience) {
        return Ok(Refusal::InvalidTarget.into_response());
    }
    let permissions = plugins
        .permissions(audience, users::provider_view(&user))
        .await;
    let (token, exp) = app
        .permission_token(&user.id, audience, &permissions)
        .await
        .map_err(ApiError::Internal)?;
    let reply = no_store(json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "issued_token_type": TOKEN_TYPE_JWT,
            "token_type": "Bearer",
            "expires_in": (exp - now()).max(0),
        }),
    ));
    Ok(for_user(reply, &user.id))
}
