//! Who is calling the token endpoint: `client_secret_basic` (RFC 6749 §2.3.1: id and secret
//! form-urlencoded, then Basic), `client_secret_post` (both in the body), or a public client
//! naming itself by `client_id` alone. One method per request; secrets compared in constant
//! time (their SHA-256 digests, so the length of the secret does not show either).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;

use super::{count_refusal, oauth_error};
use crate::app::App;
use crate::config::ClientConfig;
use crate::http::Params;

/// A client that proved who it is (or, public, said who it is).
pub struct Client<'a> {
    pub id: &'a str,
    pub config: &'a ClientConfig,
}

/// The refusal: 401 `invalid_client`, with a Basic challenge (RFC 6749 §5.2).
fn invalid_client(description: &str) -> Box<Response> {
    count_refusal("invalid_client");
    let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"authhost\""),
    );
    Box::new(r)
}

/// `(id, secret)` of an `Authorization: Basic` header, if there is one.
fn basic(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decode = || -> Option<(String, String)> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (id, secret) = text.split_once(':')?;
        // The form encoding of RFC 6749 §2.3.1: `+` is a space, then percent-decoding.
        let unescape = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        };
        Some((unescape(id)?, unescape(secret)?))
    };
    Some(decode().ok_or(()))
}

fn same_secret(presented: &str, configured: &str) -> bool {
    let a = digest(&SHA256, presented.as_bytes());
    let b = digest(&SHA256, configured.as_bytes());
    verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok()
}

/// The calling client, or the response refusing it (boxed: a response is large, and the
/// refusal is the rare path).
pub fn authenticate<'a>(
    app: &'a App,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client<'a>, Box<Response>> {
    let body_id = params.get("client_id").filter(|v| !v.is_empty());
    let body_secret = params.get("client_secret").filter(|v| !v.is_empty());
    let (id, secret) = match basic(headers) {
        Some(Err(())) => return Err(invalid_client("malformed Basic credentials")),
        Some(Ok((id, secret))) => {
            if body_secret.is_some() {
                count_refusal("two_auth_methods");
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "use one client authentication method, not Basic and client_secret both",
                )));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(invalid_client(
                    "client_id differs from the Basic credentials",
                ));
            }
            // `id:` with nothing after it: a public client using the Basic form.
            (id, Some(secret).filter(|s| !s.is_empty()))
        }
        None => match body_id {
            Some(id) => (id.to_string(), body_secret.map(str::to_string)),
            None => return Err(invalid_client("client_id is missing")),
        },
    };
    let Some((id, config)) = app.config.clients.get_key_value(id.as_str()) else {
        return Err(invalid_client("unknown client"));
    };
    match (config.is_public(), secret) {
        (true, None) => {}
        (true, Some(_)) => return Err(invalid_client("this client is public: it has no secret")),
        (false, Some(s)) if same_secret(&s, config.secret.expose()) => {}
        (false, _) => return Err(invalid_client("client authentication failed")),
    }
    Ok(Client { id, config })
}
