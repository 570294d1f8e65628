//! Dev login: a form asking for an e-mail and a name, no password. Only configured
//! explicitly, and only on a loopback listener (checked with the configuration).

use axum::extract::State;
use axum::response::Response;

use super::page::{self, escape};

use crate::app::{App, SharedApp};
use crate::http::{ApiError, Params, for_user, found};
use crate::redirects::merge_query_param;
use crate::sessions::SessionError;
use crate::users::LoginProfile;

/// `next` after the allowlist (default: this host's `check`, which then shows the profile).
fn target(app: &App, params: &Params) -> Result<String, ApiError> {
    if !app.config.dev_login_enabled() {
        return Err(ApiError::NotFound);
    }
    Ok(app.flow().checked_next(params.get("next"))?)
}

/// The form posts here; its answer redirects to `next`, which browsers also check against
/// `form-action`, so `next`'s origin is allowed too (it passed the allowlist). When `next`
/// resumes an OpenID authorization request, that redirects on to the client's `redirect_uri`,
/// which browsers check too: its origin is allowed as well, when it is one the client
/// registered (the only kind the authorization endpoint redirects to).
fn content_security_policy(app: &App, next: &str) -> String {
    let origin = |text: &str| {
        url::Url::parse(text)
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization())
    };
    let mut allowed = vec!["'self'".to_string()];
    allowed.extend(origin(next));
    let resumed = app
        .flow()
        .resumes_authorization(next)
        .then(|| url::Url::parse(&app.oidc_authorize_url).and_then(|u| u.join(next)))
        .and_then(Result::ok);
    if let Some(url) = resumed {
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let registered = get("client_id")
            .and_then(|id| app.config.clients.get(id))
            .zip(get("redirect_uri"))
            .filter(|(client, uri)| {
                client
                    .redirect_uris
                    .iter()
                    .any(|r| crate::oidc_request::redirect_uri_matches(r, uri))
            })
            .and_then(|(_, uri)| origin(uri));
        allowed.extend(registered);
    }
    allowed.dedup();
    page::content_security_policy(&allowed.join(" "))
}

pub async fn form(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let next = target(&app, &params)?;
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authhost dev login</title>
<style>{style}</style></head>
<body><h1>Dev login</h1>
<p class="warn">Development only: anyone who can reach this form can log in as anyone.</p>
<form method="post" action="{action}">
<label>E-mail <input name="email" type="email" required autofocus></label>
<label>Name <input name="name" type="text"></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form></body></html>"#,
        action = escape(&format!("{}login/dev", app.config.server.prefix)),
        next = escape(&next),
        style = page::STYLE,
    );
    Ok(page::html(html, &content_security_policy(&app, &next)))
}

pub async fn submit(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let next = target(&app, &params)?;
    let email = params.non_empty("email").map(str::trim).unwrap_or_default();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(ApiError::BadRequest("a valid e-mail is required".into()));
    }
    let name = params
        .non_empty("name")
        .map_or_else(|| email.split('@').next().unwrap_or(email), str::trim);
    let profile = LoginProfile {
        email: email.to_string(),
        name: Some(name.to_string()),
        avatar_url: None,
        provider_id: format!("dev:{email}"),
    };
    let (user, token) = match app.sessions().complete_login(&profile).await {
        Ok(done) => done,
        // As every login that fails: back to `next` with the error, no token.
        Err(SessionError::Disabled) => {
            return Ok(found(&merge_query_param(
                &next,
                "error",
                "account_disabled",
            )));
        }
        // Nothing was written (the login is one transaction): the user may try again.
        Err(SessionError::Database(e)) if crate::db::breaker::is_temporary(&e) => {
            crate::db::count_error(&e);
            tracing::warn!(error = %e, "dev login: database unreachable");
            let code = crate::login::LoginError::from_db(&e).code();
            return Ok(found(&merge_query_param(&next, "error", code)));
        }
        Err(e) => return Err(e.into()),
    };
    let redirect = app.flow().logged_in(&next, &user, &token);
    Ok(for_user(super::login::respond(&app, redirect), &user.id))
}
