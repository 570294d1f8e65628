//! The OpenID Provider's authorization request (`GET {prefix}oidc/authorize`), checked without
//! HTTP. RFC 6749 §4.1.2.1 decides where an error goes: while the client or its redirect URI is
//! not established (unknown client, a `redirect_uri` missing or not registered byte for byte),
//! the user sees an error page and nothing is redirected anywhere; after that, errors go back to
//! the client's redirect URI with `error`, `state` and `iss` (RFC 9207).

use std::collections::BTreeMap;

use crate::config::ClientConfig;

/// The scopes this provider knows; others in a request are ignored (RFC 6749 §3.3 lets a server
/// grant fewer than asked), and the token response says which were granted.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The parameter authhost adds when it sends the browser to log in again (`prompt=login`, a
/// session older than `max_age`): the login that resumes the request must be after this time.
/// A value in the future counts as now (no endless logins); with `prompt=login` in the same
/// request it is ignored (the request is not a resumed one). Like every parameter of an
/// authorization request it is not integrity-protected: whoever writes the URL could as well
/// leave out `max_age`, so a client that needs a fresh login checks the ID token's `auth_time`
/// (OpenID Connect Core §3.1.2.1).
pub const LOGIN_AFTER: &str = "authhost_login_after";

/// The parameter a login that failed while resuming a request adds to it (`login::flow`'s
/// `error=`): the request then answers the client with the failure instead of starting another
/// login.
pub const LOGIN_ERROR: &str = "error";

/// The longest `state` and `nonce` accepted (both travel back in URLs and tokens).
pub const MAX_STATE_LEN: usize = 1024;
pub const MAX_NONCE_LEN: usize = 512;

/// Whether the user must (not) be asked to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Log in when there is no usable session.
    Default,
    /// `prompt=none`: never show a page; no usable session is `login_required`.
    None,
    /// `prompt=login` (or `select_account`): log in again even with a session.
    Login,
}

/// An authorization request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// The granted scopes, in the order asked.
    pub scopes: Vec<&'static str>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 challenge, when given.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_after: Option<i64>,
}

impl AuthRequest {
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether a session that logged in at `auth_time` is fresh enough for this request.
    pub fn accepts_login_at(&self, auth_time: i64, now: i64) -> bool {
        match (self.prompt, self.login_after, self.max_age) {
            (Prompt::Login, _, _) => false,
            // Sent to log in again: only a login since counts, however long it took.
            (_, Some(after), _) => auth_time >= after.min(now),
            (_, None, Some(max_age)) => now.saturating_sub(auth_time) <= max_age,
            (_, None, None) => true,
        }
    }
}

/// Why a request is refused, and where the refusal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Shown to the user, never redirected.
    Page(String),
    /// Sent back to the client's (registered) redirect URI.
    Redirect(Refusal),
}

/// An error for the client: RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6 codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

/// The one value of `name`, `Ok(None)` when absent or empty (RFC 6749 §3.1: "parameters sent
/// without a value MUST be treated as if they were omitted"), `Err` when given twice.
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut values = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("{name} is given more than once"));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// A PKCE challenge as S256 makes it: 43 base64url characters (RFC 7636 §4.2).
fn is_s256_challenge(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the request's query `pairs` against the registered `clients`.
pub fn parse(
    pairs: &[(String, String)],
    clients: &BTreeMap<String, ClientConfig>,
) -> Result<AuthRequest, RequestError> {
    let page = RequestError::Page;
    let client_id = single(pairs, "client_id")
        .map_err(page)?
        .ok_or_else(|| page("client_id is missing".into()))?;
    let client = clients.get(client_id).ok_or_else(|| {
        page(format!(
            "no client is registered as `{}`",
            shorten(client_id)
        ))
    })?;
    let redirect_uri = single(pairs, "redirect_uri")
        .map_err(page)?
        .ok_or_else(|| page("redirect_uri is missing".into()))?;
    if !client
        .redirect_uris
        .iter()
        .any(|u| redirect_uri_matches(u, redirect_uri))
    {
        return Err(page(format!(
            "redirect_uri is not one registered for client `{client_id}` (compared exactly, but \
             for any port on a loopback IP)"
        )));
    }
    // From here on the client is known and its redirect URI registered: errors go back to it.
    let (state, state_twice) = match single(pairs, "state") {
        Ok(s) => (s, false),
        Err(_) => (None, true),
    };
    let refuse = |error: &'static str, description: String| {
        RequestError::Redirect(Refusal {
            redirect_uri: redirect_uri.to_string(),
            state: state
                .filter(|s| s.len() <= MAX_STATE_LEN)
                .map(str::to_string),
            error,
            description,
        })
    };
    let invalid = |d: String| refuse("invalid_request", d);
    if state_twice {
        return Err(invalid("state is given more than once".into()));
    }
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(invalid(format!(
            "state must be at most {MAX_STATE_LEN} bytes"
        )));
    }
    if single(pairs, "request").ok().flatten().is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if single(pairs, "request_uri").ok().flatten().is_some() {
        return Err(refuse(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    let get = |name: &str| single(pairs, name).map_err(invalid);
    match get("response_type")? {
        None => return Err(invalid("response_type is missing".into())),
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "response_type must be code".into(),
            ));
        }
    }
    if get("response_mode")?.is_some_and(|m| m != "query") {
        return Err(invalid("response_mode must be query".into()));
    }
    let asked = get("scope")?.ok_or_else(|| refuse("invalid_scope", "scope is missing".into()))?;
    let mut scopes: Vec<&'static str> = Vec::new();
    for word in asked.split(' ') {
        if let Some(known) = SCOPES.iter().find(|s| **s == word)
            && !scopes.contains(known)
        {
            scopes.push(known);
        }
    }
    if scopes.is_empty() {
        return Err(refuse(
            "invalid_scope",
            format!("scope must include one of {}", SCOPES.join(", ")),
        ));
    }
    let method = get("code_challenge_method")?;
    let code_challenge = match (get("code_challenge")?, method) {
        (None, None) => None,
        (None, Some(_)) => return Err(invalid("code_challenge is missing".into())),
        (Some(_), None) => {
            // RFC 7636 §4.3: no method means `plain`, which is refused.
            return Err(invalid(
                "code_challenge_method must be S256 (without it the challenge is plain, which is \
                 refused)"
                    .into(),
            ));
        }
        (Some(c), Some("S256")) if is_s256_challenge(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => {
            return Err(invalid(
                "code_challenge must be 43 base64url characters (S256)".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "code_challenge_method must be S256 (plain is refused)".into(),
            ));
        }
    };
    if code_challenge.is_none() && (client.is_public() || client.require_pkce) {
        return Err(invalid(
            "code_challenge (PKCE, S256) is required for this client".into(),
        ));
    }
    let nonce = get("nonce")?;
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(invalid(format!(
            "nonce must be at most {MAX_NONCE_LEN} bytes"
        )));
    }
    let prompt = parse_prompt(get("prompt")?).map_err(invalid)?;
    let number = |name: &str| -> Result<Option<i64>, RequestError> {
        get(name)?
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| invalid(format!("{name} must be a number of seconds")))
            })
            .transpose()
    };
    Ok(AuthRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: state.map(str::to_string),
        nonce: nonce.map(str::to_string),
        code_challenge,
        prompt,
        max_age: number("max_age")?,
        login_after: number(LOGIN_AFTER)?,
    })
}

/// Whether `presented` is the registered redirect URI `registered`: byte for byte, except that
/// for http on a loopback IP literal (`127.0.0.1`, `[::1]`) any port is the registered one
/// (RFC 8252 §7.3: a native app listens on whatever port the system gives it). `localhost` gets
/// no such leeway (RFC 8252 §8.3: it may resolve elsewhere).
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let loopback_ip = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    let (Ok(mut r), Ok(mut p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    // Only the canonical form of the presented URI: what the client sends is compared as text.
    if p.as_str() != presented || r.scheme() != "http" || !loopback_ip(&r) {
        return false;
    }
    if r.set_port(None).is_err() || p.set_port(None).is_err() {
        return false;
    }
    r == p
}

/// OpenID Connect Core §3.1.2.1: space-separated; `none` alone; `consent` asks for nothing here
/// (clients are registered by the operator: first-party, no consent screen).
fn parse_prompt(prompt: Option<&str>) -> Result<Prompt, String> {
    let Some(prompt) = prompt else {
        return Ok(Prompt::Default);
    };
    let words: Vec<&str> = prompt.split(' ').filter(|w| !w.is_empty()).collect();
    if words.contains(&"none") {
        return if words.len() == 1 {
            Ok(Prompt::None)
        } else {
            Err("prompt=none cannot be combined with other values".into())
        };
    }
    let mut result = Prompt::Default;
    for word in words {
        match word {
            "login" | "select_account" => result = Prompt::Login,
            "consent" => {}
            other => {
                return Err(format!(
                    "prompt value `{}` is not supported",
                    shorten(other)
                ));
            }
        }
    }
    Ok(result)
}

/// At most 64 characters of a value echoed in an error.
fn shorten(text: &str) -> String {
    text.chars().take(64).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests;
