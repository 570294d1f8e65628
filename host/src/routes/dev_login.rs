//! Dev login: a form asking for an e-mail and a name, no password. Only configured
//! explicitly, and only on a loopback listener (checked with the configuration).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page's only style, allowed by its hash in the page's Content-Security-Policy.
const STYLE: &str = "body{font-family:sans-serif;max-width:28em;margin:3em auto}\
label{display:block;margin:.8em 0}input{width:100%;padding:.4em}\
.warn{background:#fee;border:1px solid #c00;padding:.6em}";

/// The page's policy: no scripts, nothing loaded, its one style by hash, never framed, and
/// the form posting only here. The form's answer redirects to `next`, which browsers also
/// check against `form-action`, so `next`'s origin is allowed too (it passed the allowlist).
fn content_security_policy(next: &str) -> String {
    // The style never changes: its hash is computed once.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| {
        use base64::Engine;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    });
    let next_origin = url::Url::parse(next)
        .ok()
        .map(|u| u.origin())
        .filter(url::Origin::is_tuple)
        .map(|o| format!(" {}", o.ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'{next_origin}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

pub async fn form(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    let next = target(&app, &params)?;
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>authhost dev login</title>
<style>{STYLE}</style></head>
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
    );
    let mut r = (StatusCode::OK, html).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&next)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let (name, value) = crate::headers::NO_REFERRER;
    headers.insert(name, value);
    Ok(r)
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
        Err(e) => return Err(e.into()),
    };
    Ok(for_user(
        found(&merge_query_param(&next, "jwt", &token)),
        &user.id,
    ))
}
