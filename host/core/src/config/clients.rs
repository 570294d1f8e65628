//! `[clients.<id>]`: applications registered by the operator to log their users in through
//! authhost as an OpenID Provider (authorization code + PKCE). Checked strictly at start and by
//! `authhost check`: redirect URIs are matched exactly later, so each must be an https URL, or
//! http on a loopback address (a native app on this machine, RFC 8252 §7.3), with no fragment.

use serde::{Deserialize, Serialize};

use super::{Config, Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Where the authorization response may go: compared byte for byte, no patterns.
    pub redirect_uris: Vec<String>,
    /// Absent or empty: a public client (a browser or native app), which must use PKCE.
    /// From the environment as `AUTHHOST_CLIENTS__<ID>__SECRET`; redacted by `authhost config`.
    pub secret: Secret,
    /// A service alias whose provider's permissions go into this client's access tokens.
    pub audience: Option<String>,
    /// Where RP-initiated logout may send the browser afterwards: exact match.
    pub post_logout_redirect_uris: Vec<String>,
    /// Confidential clients may be allowed without PKCE (`false`); public clients never are.
    pub require_pkce: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            redirect_uris: Vec::new(),
            secret: Secret::default(),
            audience: None,
            post_logout_redirect_uris: Vec::new(),
            require_pkce: true,
        }
    }
}

impl ClientConfig {
    /// A client without a secret: it cannot authenticate, so PKCE is what binds its code.
    pub fn is_public(&self) -> bool {
        self.secret.is_empty()
    }
}

/// Why `uri` cannot be a registered redirect URI, if it cannot.
pub fn redirect_uri_problem(uri: &str) -> Option<String> {
    let parsed = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(e) => return Some(format!("`{uri}` is not an absolute URL ({e})")),
    };
    // Matched byte for byte later: only the form every URL parser reads the same way.
    if parsed.as_str() != uri {
        return Some(format!(
            "`{uri}` is not in its canonical form: write it as `{parsed}` (exact matching compares \
             the strings)"
        ));
    }
    if parsed.fragment().is_some() {
        return Some(format!("`{uri}` has a fragment (RFC 6749 §3.1.2)"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(format!("`{uri}` carries credentials"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => None,
        "http" if loopback => None,
        "http" => Some(format!(
            "`{uri}` is http on a host that is not loopback: codes would travel in clear text \
             (use https, or 127.0.0.1 / [::1] for an app on this machine)"
        )),
        _ => Some(format!("`{uri}` is neither https nor loopback http")),
    }
}

/// Every problem of the `[clients]` tables, as (key, message).
pub fn problems(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let aliases: Vec<&str> = config
        .plugins
        .services
        .iter()
        .map(|e| e.alias.as_str())
        .collect();
    for (id, client) in &config.clients {
        let key = |field: &str| format!("clients.{id}.{field}");
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_graphic()) {
            out.push((
                format!("clients.{id}"),
                "a client id is printable ASCII without spaces".into(),
            ));
        }
        if client.redirect_uris.is_empty() {
            out.push((
                key("redirect_uris"),
                "at least one is needed: codes go nowhere else".into(),
            ));
        }
        for (field, uris) in [
            ("redirect_uris", &client.redirect_uris),
            (
                "post_logout_redirect_uris",
                &client.post_logout_redirect_uris,
            ),
        ] {
            for (i, uri) in uris.iter().enumerate() {
                if let Some(problem) = redirect_uri_problem(uri) {
                    out.push((format!("clients.{id}.{field}[{i}]"), problem));
                }
            }
        }
        if let Some(audience) = &client.audience
            && !aliases.contains(&audience.as_str())
        {
            out.push((
                key("audience"),
                format!(
                    "`{audience}` is not a service alias of plugins.services ({})",
                    aliases.join(", ")
                ),
            ));
        }
        if client.is_public() && !client.require_pkce {
            out.push((
                key("require_pkce"),
                "a public client (no secret) must use PKCE".into(),
            ));
        }
    }
    out
}
