//! `login/<provider>` and `oauth_callback`: the HTTP side of `crate::login::flow` (parameters
//! in; redirects, binding cookies and errors out).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::app::{App, SharedApp};
use crate::http::{ApiError, Params, found};
use crate::login::flow::{Binding, Callback, Redirect};
use crate::login::session::CookieScope;

pub async fn start(
    State(app): State<SharedApp>,
    Path(provider): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let redirect = app.flow().start(&provider, params.get("next")).await?;
    Ok(respond(&app, redirect))
}

pub async fn callback(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let callback = Callback {
        state: params.get("state"),
        code: params.get("code"),
        error: params.get("error"),
        iss: params.get("iss"),
    };
    let redirect = app
        .flow()
        .callback(callback, |name| request_cookie(&headers, name))
        .await?;
    Ok(respond(&app, redirect))
}

/// A 302 to the redirect's location, setting or removing its binding cookie and setting the
/// browser session after a login.
pub(crate) fn respond(app: &App, redirect: Redirect) -> Response {
    let mut response = found(&redirect.location);
    if let Some(cookie) = redirect.binding.and_then(|b| set_cookie(app, &b)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    if let Some(value) = redirect.session {
        let session = Binding {
            name: cookie_name(app).to_string(),
            value,
            max_age: app.tokens.user_token_seconds(),
        };
        if let Some(cookie) = cookie_header(app, &session, session_path(app)) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The browser session cookie's name on this host.
pub(crate) fn cookie_name(app: &App) -> &'static str {
    crate::login::session::cookie_name(session_scope(app))
}

/// How the session cookie is scoped: by the scheme and whether the external address has a path.
fn session_scope(app: &App) -> CookieScope {
    let external = &app.config.server.external_address;
    let whole_host =
        url::Url::parse(external).is_ok_and(|u| u.path() == "/" || u.path().is_empty());
    match (secure(app), whole_host) {
        (false, _) => CookieScope::Plain,
        (true, true) => CookieScope::WholeHost,
        (true, false) => CookieScope::UnderPath,
    }
}

fn secure(app: &App) -> bool {
    app.config.server.external_address.starts_with("https://")
}

/// `Set-Cookie` removing the browser session.
pub(crate) fn end_session_cookie(app: &App) -> Option<HeaderValue> {
    let gone = Binding {
        name: cookie_name(app).to_string(),
        value: String::new(),
        max_age: 0,
    };
    cookie_header(app, &gone, session_path(app))
}

/// The session cookie's `Path`: `/` when the `__Host-` prefix requires it (authhost owns the
/// host), else the provider's pages.
fn session_path(app: &App) -> &str {
    match session_scope(app) {
        CookieScope::WholeHost => "/",
        CookieScope::Plain | CookieScope::UnderPath => &app.session_cookie_path,
    }
}

/// `Set-Cookie` for a binding: only sent back to the callback, never readable by scripts, sent
/// on the upstream's top-level redirect back (Lax), `Secure` when the external address is
/// https.
fn set_cookie(app: &App, binding: &Binding) -> Option<HeaderValue> {
    cookie_header(app, binding, &app.login_cookie_path)
}

/// `Set-Cookie` for `cookie` under `path`: never readable by scripts, sent on top-level
/// navigations from other sites (Lax: an upstream's redirect back, a client's redirect to the
/// authorization endpoint), `Secure` when the external address is https.
fn cookie_header(app: &App, cookie: &Binding, path: &str) -> Option<HeaderValue> {
    let secure = if secure(app) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        cookie.name, cookie.value, cookie.max_age,
    ))
    .ok()
}

/// The value of cookie `name` in the request's `Cookie` headers, read as bytes: another
/// cookie on this host with bytes that are not text must not hide the binding.
pub(crate) fn request_cookie(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let at = pair.iter().position(|b| *b == b'=')?;
            Some((
                pair.get(..at)?.trim_ascii(),
                pair.get(at + 1..)?.trim_ascii(),
            ))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| v.to_vec())
}
