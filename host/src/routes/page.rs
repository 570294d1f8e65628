//! The few HTML pages authhost shows (the dev login form, the login chooser of the OpenID
//! Provider): one style allowed by its hash, no scripts, nothing loaded, never framed, never
//! cached, no `Referer` sent on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The pages' only style, allowed by its hash in their Content-Security-Policy.
pub const STYLE: &str = "body{font-family:sans-serif;max-width:28em;margin:3em auto}\
label{display:block;margin:.8em 0}input{width:100%;padding:.4em}\
.warn{background:#fee;border:1px solid #c00;padding:.6em}li{margin:.6em 0}";

/// A page's policy: no scripts, nothing loaded, the style by hash, never framed, forms posting
/// only to `form_action` (`'none'` for a page without a form).
pub fn content_security_policy(form_action: &str) -> String {
    // The style never changes: its hash is computed once.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| {
        use base64::Engine;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    });
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// `html` as a page under `csp`.
pub fn html(html: String, csp: &str) -> Response {
    let mut r = (StatusCode::OK, html).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let (name, value) = crate::headers::NO_REFERRER;
    headers.insert(name, value);
    r
}
