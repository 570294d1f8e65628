//! Request parameters, token lookup and response building shared by the routes: JSON on every
//! answer (also errors), JSONP under the original's rule, errors mapped to statuses in one place.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, SharedApp};
use crate::client_addr::PeerAddr;

/// Form bodies larger than this are refused (a token is at most a few KiB).
pub const MAX_FORM_BODY: usize = 2 * 1024 * 1024;

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request body not received within server.header_read_timeout_ms")]
    RequestTimeout,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database did not answer; details go to the log, not to the client.
    #[error("service unavailable: database not reachable")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::sessions::SessionError> for ApiError {
    fn from(e: crate::sessions::SessionError) -> Self {
        match e {
            crate::sessions::SessionError::Database(e) => ApiError::Database(e),
            crate::sessions::SessionError::Token(e) => ApiError::Internal(e.to_string()),
            crate::sessions::SessionError::Disabled => {
                ApiError::BadRequest("the account is disabled".into())
            }
        }
    }
}

impl From<crate::login::flow::FlowError> for ApiError {
    fn from(e: crate::login::flow::FlowError) -> Self {
        use crate::login::flow::FlowError;
        match e {
            FlowError::UnknownProvider => ApiError::NotFound,
            FlowError::BadNext(m) => ApiError::BadRequest(m),
            FlowError::UnknownState => ApiError::BadRequest(e.to_string()),
            FlowError::NoRandomness | FlowError::Seal(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Database(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Database(e) => {
                crate::db::count_error(e);
                tracing::error!(error = %e, "database error");
            }
            ApiError::Internal(e) => tracing::error!(error = %e, "internal error"),
            _ => {}
        }
        json_response(self.status(), &json!({ "error": self.to_string() }))
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 302 to `location` (already checked against the redirect allowlist).
/// Answers that carry tokens (or refuse them) are not to be cached (RFC 6749 §5.1).
pub fn no_store(mut r: Response) -> Response {
    let headers = r.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut().insert(header::LOCATION, v);
            let (name, value) = crate::headers::NO_REFERRER;
            r.headers_mut().insert(name, value);
            r
        }
        Err(_) => {
            ApiError::BadRequest("`next` is not an allowed redirect target".into()).into_response()
        }
    }
}

/// The client's address: the connection's peer, or what a trusted proxy reports for it in
/// `X-Forwarded-For` (see `crate::client_addr`). Unspecified (`0.0.0.0`) when the request did
/// not come through the server's accept loop.
pub struct ClientIp(pub std::net::IpAddr);

impl ClientIp {
    /// The client address of a request with these headers and extensions.
    pub fn of(app: &App, headers: &HeaderMap, extensions: &Extensions) -> ClientIp {
        let peer = extensions
            .get::<PeerAddr>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
        // Every `X-Forwarded-For` line, joined: a proxy may append its own line after the one
        // the client sent, and bytes that are not text must not hide what the proxy wrote.
        let mut lines = headers.get_all("x-forwarded-for").iter();
        let forwarded_for = lines.next().map(|first| {
            let mut text = String::from_utf8_lossy(first.as_bytes()).into_owned();
            for line in lines {
                text.push(',');
                text.push_str(&String::from_utf8_lossy(line.as_bytes()));
            }
            text
        });
        ClientIp(app.trusted_proxies.client(peer, forwarded_for.as_deref()))
    }
}

impl FromRequestParts<SharedApp> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(app, &parts.headers, &parts.extensions))
    }
}

/// The user a request was answered for (a response extension the access log reads).
#[derive(Debug, Clone)]
pub struct KnownUser(pub String);

/// `response`, marked as answered for user `id`.
pub fn for_user(mut response: Response, id: &str) -> Response {
    response.extensions_mut().insert(KnownUser(id.to_string()));
    response
}

/// Query parameters, plus the form body of a POST; the first value of a name wins.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The token from `auth-token` or `Authorization: Bearer`, read once at extraction.
    header_token: Option<String>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter as given, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Every value given for `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that is present and not blank.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The user token: `auth-token` header, else `Authorization: Bearer`, else `jwt` (query or
    /// form). `Some("")` for a present-but-empty `jwt`, which counts as a (bad) token.
    pub fn token(&self) -> Option<String> {
        self.header_token
            .clone()
            .or_else(|| self.get("jwt").map(str::to_string))
    }

    /// Answers `body` as JSON, or as JSONP when `callback` names a plain JavaScript identifier
    /// path (anything else is refused: the original echoed it unchecked).
    pub fn reply(&self, body: &Value) -> Response {
        self.reply_text(Bytes::from(body.to_string()))
    }

    /// `reply` for a body already rendered as JSON text.
    pub fn reply_text(&self, body: Bytes) -> Response {
        match self.non_empty("callback") {
            None => {
                let mut response = Response::new(Body::from(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Some(cb) if valid_callback(cb) => {
                let body = String::from_utf8_lossy(&body);
                let mut response = Response::new(Body::from(format!("{cb}({body});")));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/javascript; charset=utf-8"),
                );
                response
            }
            Some(_) => ApiError::BadRequest("callback must be a JavaScript identifier path".into())
                .into_response(),
        }
    }
}

/// `auth-token`, else `Authorization: Bearer` (the original read only the former). Borrowed
/// from the headers for the usual ASCII token; header bytes that are not UTF-8 become U+FFFD
/// (such a token is refused later anyway).
pub fn header_token(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    if let Some(v) = headers.get("auth-token").filter(|v| !v.is_empty()) {
        return Some(header_text(v));
    }
    match header_text(headers.get(header::AUTHORIZATION)?) {
        Cow::Borrowed(text) => bearer_token(text).map(Cow::Borrowed),
        Cow::Owned(text) => bearer_token(&text).map(|t| Cow::Owned(t.to_string())),
    }
}

/// The token of `Bearer <token>`.
pub fn bearer_token(text: &str) -> Option<&str> {
    let (scheme, token) = text.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

fn header_text(v: &HeaderValue) -> Cow<'_, str> {
    match v.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

/// `name` or `a.b.c`, each part an ASCII identifier, at most 128 characters.
pub fn valid_callback(cb: &str) -> bool {
    cb.len() <= 128
        && cb.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

impl FromRequest<SharedApp> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &SharedApp) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let header_token = header_token(req.headers()).map(Cow::into_owned);
        if req.method() == Method::POST && is_form {
            // The connection's deadlines do not run while a request is handled, so the body
            // gets its own: a client trickling a body cannot hold the connection.
            let deadline = Duration::from_millis(app.config.server.header_read_timeout_ms);
            let body: Bytes = tokio::time::timeout(
                deadline,
                axum::body::to_bytes(req.into_body(), MAX_FORM_BODY),
            )
            .await
            .map_err(|_| ApiError::RequestTimeout)?
            .map_err(|_| ApiError::PayloadTooLarge)?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params {
            pairs,
            header_token,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn callbacks() {
        for ok in ["cb", "jQuery123_456", "a.b.c", "$", "_x"] {
            assert!(super::valid_callback(ok), "{ok}");
        }
        for bad in [
            "", "a..b", "1a", "alert(1)", "a-b", "a b", "a;b", ".a", "a.",
        ] {
            assert!(!super::valid_callback(bad), "{bad}");
        }
    }
}
