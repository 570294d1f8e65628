//! Headers every answer carries, whichever path made it (router, the `check` shortcut, the
//! admin listener, the connection's own answers to unparseable heads): `nosniff`, and
//! `Cache-Control: no-store` unless the answer is a public document that set its own caching
//! (JWKS, metadata). Answers carry tokens and profiles; no cache may keep one.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

pub const NOSNIFF: (HeaderName, HeaderValue) = (
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
);
pub const NO_STORE: (HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
/// On pages and redirects a browser shows or follows: the URL (which may carry `jwt=`) is never
/// sent on as a `Referer`.
pub const NO_REFERRER: (HeaderName, HeaderValue) = (
    header::REFERRER_POLICY,
    HeaderValue::from_static("no-referrer"),
);

/// The raw header lines `secure` adds, for answers written without a `HeaderMap`.
pub const RAW_LINES: &str = "\r\nx-content-type-options: nosniff\r\ncache-control: no-store";

/// Adds `nosniff`, and `no-store` when the answer set no caching of its own.
pub fn secure(headers: &mut HeaderMap) {
    let (name, value) = NOSNIFF;
    headers.insert(name, value);
    if !headers.contains_key(header::CACHE_CONTROL) {
        let (name, value) = NO_STORE;
        headers.insert(name, value);
    }
}
