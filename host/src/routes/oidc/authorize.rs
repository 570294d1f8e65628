//! `GET {prefix}oidc/authorize`: the authorization code flow's first leg. A request that passes
//! `oidc_request::parse` is answered from the browser session when it has one fresh enough (a
//! code, back to the client), else the browser goes to log in with `next` set to this very
//! request, which the login resumes (`login::flow`'s `logged_in`: no user token in that URL).
//! Nothing is stored before the code: a pending request lives in the URL and the login cookie.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{oauth_error, session_user, with_query};
use crate::app::{App, SharedApp};
use crate::http::{ApiError, Params, for_user, found};
use crate::login::flow::MAX_NEXT_LEN;
use crate::oidc_codes::{self, Grant, MAX_OUTSTANDING_PER_USER};
use crate::oidc_request::{
    self, AuthRequest, LOGIN_AFTER, LOGIN_ERROR, Prompt, Refusal, RequestError,
};
use crate::tokens::now;
use crate::user_cache::CachedUser;

pub async fn authorize(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let request = match oidc_request::parse(params.pairs(), &app.config.clients) {
        Ok(r) => r,
        // No client or redirect URI to trust: the user sees why, nothing is redirected.
        Err(RequestError::Page(why)) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &why,
            ));
        }
        Err(RequestError::Redirect(refusal)) => return back_to_client(&app, &refusal),
    };
    // A login this request sent the browser to failed (`login::flow` adds `error`): the
    // client hears of it, rather than the browser being sent to log in again and again.
    if let Some(failure) = params.get(LOGIN_ERROR) {
        let (error, description) = login_failure(failure);
        return back_to_client(
            &app,
            &Refusal {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error,
                description,
            },
        );
    }
    let now = now();
    // The client is known and its redirect URI registered: from here a database that cannot
    // answer is the client's `temporarily_unavailable` (RFC 6749 §4.1.2.1), not a 503 page.
    let unavailable = |e: ApiError| match e {
        ApiError::Database(e) if crate::db::breaker::is_temporary(&e) => {
            crate::db::count_error(&e);
            tracing::warn!(error = %e, "authorization request: database unavailable");
            back_to_client(
                &app,
                &Refusal {
                    redirect_uri: request.redirect_uri.clone(),
                    state: request.state.clone(),
                    error: "temporarily_unavailable",
                    description: "the database is unavailable; try again shortly".into(),
                },
            )
        }
        e => Err(e),
    };
    let session = match session_user(&app, &headers, now).await {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    if let Some((user, session)) = &session
        && request.accepts_login_at(session.auth_time, now)
    {
        return match issue_code(&app, &request, user, session.auth_time, now).await {
            Ok(r) => Ok(r),
            Err(e) => unavailable(e),
        };
    }
    let refuse = |error: &'static str, description: &str| {
        back_to_client(
            &app,
            &Refusal {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error,
                description: description.to_string(),
            },
        )
    };
    if request.prompt == Prompt::None {
        return refuse(
            "login_required",
            "prompt=none, and this browser has no session at authhost fresh enough",
        );
    }
    let resume = resume_url(&app, &params, &request, now);
    if resume.len() > MAX_NEXT_LEN {
        return refuse(
            "invalid_request",
            &format!(
                "the request is too long to resume after a login (at most {MAX_NEXT_LEN} bytes)"
            ),
        );
    }
    let providers = app.login_providers();
    match providers.as_slice() {
        [] => Ok(oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "no login method is configured on this host",
        )),
        [only] => Ok(found(&app.login_url(only, Some(&resume)))),
        several => Ok(super::login_page::render(&app, several, &resume)),
    }
}

/// This request again, as the login's `next`: what made a login necessary (`prompt=login`,
/// `max_age`) becomes `LOGIN_AFTER`, so that the login just made satisfies it and no loop follows.
fn resume_url(app: &App, params: &Params, request: &AuthRequest, now: i64) -> String {
    let fresh_login_needed = request.prompt == Prompt::Login
        || request.max_age.is_some()
        || request.login_after.is_some();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.pairs() {
        if k != "prompt" && k != LOGIN_AFTER && k != LOGIN_ERROR {
            query.append_pair(k, v);
        }
    }
    if fresh_login_needed {
        let after = request.login_after.unwrap_or(now).to_string();
        query.append_pair(LOGIN_AFTER, &after);
    }
    format!("{}{}", app.oidc_authorize_url, query.finish())
}

/// A code for the session's user, back to the client with `state` and `iss`.
async fn issue_code(
    app: &App,
    request: &AuthRequest,
    user: &CachedUser,
    auth_time: i64,
    now: i64,
) -> Result<Response, ApiError> {
    if oidc_codes::outstanding(&app.db, &user.id, now).await? >= MAX_OUTSTANDING_PER_USER {
        return back_to_client(
            app,
            &Refusal {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "temporarily_unavailable",
                description: "too many codes of this user wait to be redeemed".into(),
            },
        );
    }
    let grant = Grant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: user.id.clone(),
        scope: request.scope(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time,
    };
    let code = oidc_codes::issue(&app.db, &grant, now).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", app.tokens.issuer()));
    let location = with_query(&request.redirect_uri, &params)?;
    Ok(for_user(found(&location), &user.id))
}

/// The OAuth error for a login that failed with `code` (`LoginError::code`): the user or the
/// account was refused, or the upstream (or authhost) could not finish it.
fn login_failure(code: &str) -> (&'static str, String) {
    let code: String = code
        .chars()
        .take(40)
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let error = match code.as_str() {
        "access_denied" | "account_disabled" | "unverified_email" => "access_denied",
        "upstream_timeout" | "temporarily_unavailable" => "temporarily_unavailable",
        _ => "server_error",
    };
    (error, format!("the login at authhost failed: {code}"))
}

/// An error for the client at its registered redirect URI (RFC 6749 §4.1.2.1, RFC 9207).
fn back_to_client(app: &App, refusal: &Refusal) -> Result<Response, ApiError> {
    metrics::counter!("authhost_oidc_authorize_refused_total", "error" => refusal.error)
        .increment(1);
    let mut params = vec![
        ("error", refusal.error),
        ("error_description", refusal.description.as_str()),
    ];
    if let Some(state) = &refusal.state {
        params.push(("state", state));
    }
    params.push(("iss", app.tokens.issuer()));
    Ok(found(&with_query(&refusal.redirect_uri, &params)?))
}
