//! Validation: every problem collected, each naming its key; words checked before extraction so
//! that a typo is reported with everything else.

use std::net::SocketAddr;

use figment::Figment;
use figment::providers::Serialized;
use figment::value::{Dict, Value};

use super::sources::insert_path;
use super::{
    ClientAuth, Config, ConfigError, ProviderKind, bounds, parse_extensions, parse_services,
};

/// The keys that take one of a fixed set of words, with the words and the value put in place of
/// a wrong one so that the rest of the configuration is still checked (`check_choices`).
const CHOICES: [(&str, &[&str], &str); 2] = [
    ("tokens.user_token_algorithm", &["HS256", "RS256"], "HS256"),
    ("server.log_format", &["text", "json"], "text"),
];
const PROVIDER_KINDS: &[&str] = &["dev", "google", "github", "oidc"];
const CLIENT_AUTHS: &[&str] = &["client_secret_basic", "client_secret_post"];

impl Config {
    pub(super) fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                key: key.into(),
                message,
            })
        };

        match self.server.listen.parse::<SocketAddr>() {
            Ok(addr) => {
                if self.dev_login_enabled() && !addr.ip().is_loopback() {
                    err(
                        "providers.dev.enabled",
                        format!(
                            "dev login needs a loopback listener, but server.listen is {addr}; \
                             turn dev login off or listen on 127.0.0.1"
                        ),
                    );
                }
            }
            Err(e) => err(
                "server.listen",
                format!("`{}` is not an address:port ({e})", self.server.listen),
            ),
        }
        // It also goes into the binding cookie's `Path`: plain visible ASCII only.
        if self.server.prefix.contains("//")
            || self.server.prefix.contains(['?', '#', ';', ',', '"', '\\'])
            || !self.server.prefix.chars().all(|c| c.is_ascii_graphic())
        {
            err(
                "server.prefix",
                format!("`{}` is not a plain path", self.server.prefix),
            );
        }
        match url::Url::parse(&self.server.external_address) {
            Ok(u) if u.host_str().is_some() && matches!(u.scheme(), "http" | "https") => {}
            _ => err(
                "server.external_address",
                format!("`{}` is not an http(s) URL", self.server.external_address),
            ),
        }
        // The issuer names the RFC 8414 metadata path and is compared byte for byte by
        // services: an absolute http(s) URL without query or fragment (RFC 8414 §2).
        if !self.tokens.issuer.is_empty() {
            match url::Url::parse(&self.tokens.issuer) {
                Ok(u)
                    if u.host_str().is_some()
                        && matches!(u.scheme(), "http" | "https")
                        && u.query().is_none()
                        && u.fragment().is_none() => {}
                _ => err(
                    "tokens.issuer",
                    format!(
                        "`{}` is not an http(s) URL without query or fragment",
                        self.tokens.issuer
                    ),
                ),
            }
        }
        for (key, value, min, max, unit) in self.bounded_values() {
            if !(min..=max).contains(&value) {
                err(
                    &key,
                    format!("{value} is out of range: must be between {min} and {max}{unit}"),
                );
            }
        }
        for (i, proxy) in self.server.trusted_proxies.iter().enumerate() {
            if crate::client_addr::parse_network(proxy).is_none() {
                err(
                    &format!("server.trusted_proxies[{i}]"),
                    format!("`{proxy}` is neither an IP address nor a CIDR range"),
                );
            }
        }
        for (key, mib) in [
            (
                "caches.permission_tokens_mib",
                self.caches.permission_tokens_mib,
            ),
            (
                "caches.verified_tokens_mib",
                self.caches.verified_tokens_mib,
            ),
            ("caches.users_mib", self.caches.users_mib),
        ] {
            if mib > 65_536 {
                err(key, "must be at most 65536 (64 GiB)".into());
            }
        }
        let db = self.database_url();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            err(
                "database.url",
                "must start with sqlite: or postgres://".into(),
            );
        }
        for (i, entry) in self.redirects.allowed.iter().enumerate() {
            if let Err(e) = crate::redirects::AllowedTarget::parse(entry) {
                err(&format!("redirects.allowed[{i}]"), e);
            }
        }
        for (i, origin) in self.cors.allowed_origins.iter().enumerate() {
            if origin != "*" && crate::redirects::parse_origin(origin).is_none() {
                err(
                    &format!("cors.allowed_origins[{i}]"),
                    format!("`{origin}` is not an origin"),
                );
            }
        }
        for (key, message) in super::clients::problems(self) {
            err(&key, message);
        }
        if !(1..=100).contains(&self.plugins.hook_max_attempts) {
            err(
                "plugins.hook_max_attempts",
                "must be between 1 and 100".into(),
            );
        }
        if !(10..=3_600_000).contains(&self.plugins.hook_retry_ms) {
            err(
                "plugins.hook_retry_ms",
                "must be between 10 and 3600000".into(),
            );
        }
        if !(10..=60_000).contains(&self.plugins.hook_poll_ms) {
            err(
                "plugins.hook_poll_ms",
                "must be between 10 and 60000".into(),
            );
        }
        let memory = self.plugins.worker_memory_mb;
        if memory != 0 && !(256..=1 << 20).contains(&memory) {
            err(
                "plugins.worker_memory_mb",
                "must be 0 (no limit) or between 256 and 1048576 (a worker reserves about 210 MiB of address space)".into(),
            );
        }
        if !(1..=1024).contains(&self.plugins.max_concurrent_calls) {
            err(
                "plugins.max_concurrent_calls",
                "must be between 1 and 1024".into(),
            );
        }
        for (name, p) in &self.providers {
            let key = format!("providers.{name}");
            let kind = p.kind_for(name);
            if kind == ProviderKind::Dev || p.enabled == Some(false) {
                continue;
            }
            if kind == ProviderKind::GitHub && p.client_auth == Some(ClientAuth::ClientSecretBasic)
            {
                err(
                    &format!("{key}.client_auth"),
                    "GitHub takes the client secret in the form body only: \
                     leave client_auth out or set client_secret_post"
                        .into(),
                );
            }
            let has_id = !p.client_id.trim().is_empty();
            let has_secret = !p.client_secret.is_empty();
            if has_id != has_secret || (p.enabled == Some(true) && !has_id) {
                err(&key, "needs both client_id and client_secret".into());
            }
            if kind == ProviderKind::Oidc && p.issuer.as_deref().unwrap_or("").is_empty() {
                err(
                    &format!("{key}.issuer"),
                    "an OpenID Connect provider needs an issuer URL".into(),
                );
            }
        }
        errors
    }

    /// Every bounded number: (key, value, least, most, what the most is in words).
    fn bounded_values(&self) -> Vec<(String, u64, u64, u64, &'static str)> {
        let s = &self.server;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let mut out = vec![
            (
                "server.max_connections".to_string(),
                count(s.max_connections),
                1,
                count(bounds::MAX_CONNECTIONS),
                "",
            ),
            (
                "server.max_connections_per_client".into(),
                count(s.max_connections_per_client),
                1,
                count(bounds::MAX_CONNECTIONS),
                "",
            ),
            (
                "keys.jwks_max_age_seconds".into(),
                u64::from(self.keys.jwks_max_age_seconds),
                0,
                86_400,
                " (one day)",
            ),
            (
                "server.shutdown_grace_seconds".into(),
                s.shutdown_grace_seconds,
                0,
                bounds::SHUTDOWN_GRACE_SECONDS,
                " (one hour)",
            ),
            (
                "server.header_read_timeout_ms".into(),
                s.header_read_timeout_ms,
                100,
                bounds::CONNECTION_TIMEOUT_MS,
                " (one hour)",
            ),
            (
                "server.idle_timeout_ms".into(),
                s.idle_timeout_ms,
                100,
                bounds::CONNECTION_TIMEOUT_MS,
                " (one hour)",
            ),
            (
                "tokens.user_token_days".into(),
                u64::from(self.tokens.user_token_days),
                1,
                u64::from(bounds::USER_TOKEN_DAYS),
                " (ten years)",
            ),
            (
                "tokens.permission_token_seconds".into(),
                self.tokens.permission_token_seconds,
                1,
                bounds::PERMISSION_TOKEN_SECONDS,
                " (one year)",
            ),
            (
                "database.user_cache_ms".into(),
                self.database.user_cache_ms,
                0,
                bounds::USER_CACHE_MS,
                " (one hour)",
            ),
            (
                "database.stale_if_error_seconds".into(),
                self.database.stale_if_error_seconds,
                0,
                bounds::STALE_IF_ERROR_SECONDS,
                " (one day)",
            ),
            (
                "database.user_cache_notified_seconds".into(),
                self.database.user_cache_notified_seconds,
                0,
                bounds::USER_CACHE_NOTIFIED_SECONDS,
                " (one day)",
            ),
            (
                "plugins.call_timeout_ms".into(),
                self.plugins.call_timeout_ms,
                1,
                bounds::CALL_TIMEOUT_MS,
                " (ten minutes)",
            ),
        ];
        if let Some(n) = self.database.max_connections {
            out.push((
                "database.max_connections".into(),
                u64::from(n),
                1,
                u64::from(bounds::DATABASE_MAX_CONNECTIONS),
                "",
            ));
        }
        for (name, p) in &self.providers {
            if let Some(ms) = p.timeout_ms {
                out.push((
                    format!("providers.{name}.timeout_ms"),
                    ms,
                    1,
                    bounds::PROVIDER_TIMEOUT_MS,
                    " (ten minutes)",
                ));
            }
        }
        out
    }
}

/// Finds the keys that take one of a fixed set of words (`CHOICES`, provider `kind` and
/// `client_auth`) holding another word, reports each by key with the words it may take, and puts
/// a valid one in its place so that extraction goes on to report every other problem too.
/// Values that are not strings are left to extraction (a type error). Addresses
/// (`server.admin_listen`) are checked the same way, so that one is reported with the rest.
pub(super) fn check_choices(figment: Figment) -> (Figment, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut fixes = Dict::new();
    let mut check = |path: Vec<String>, value: &Value, allowed: &[&str], fallback: &str| {
        let Some(word) = value.as_str() else {
            return;
        };
        if allowed.contains(&word) {
            return;
        }
        errors.push(ConfigError {
            key: path.join("."),
            message: format!("`{word}` is not one of: {}", allowed.join(", ")),
        });
        insert_path(&mut fixes, &path, Value::from(fallback.to_string()));
    };
    for (key, allowed, fallback) in CHOICES {
        if let Ok(value) = figment.find_value(key) {
            let path = key.split('.').map(String::from).collect();
            check(path, &value, allowed, fallback);
        }
    }
    if let Ok(providers) = figment.find_value("providers")
        && let Some(providers) = providers.as_dict()
    {
        for (name, provider) in providers {
            let Some(provider) = provider.as_dict() else {
                continue;
            };
            for (field, allowed, fallback) in [
                ("kind", PROVIDER_KINDS, "oidc"),
                ("client_auth", CLIENT_AUTHS, "client_secret_basic"),
            ] {
                if let Some(value) = provider.get(field) {
                    let path = vec!["providers".into(), name.clone(), field.into()];
                    check(path, value, allowed, fallback);
                }
            }
        }
    }
    // Strings parsed into types at extraction: a wrong one is reported here with the rest and
    // replaced by "" (off, or an empty list) so that extraction still succeeds.
    type Parse = fn(&str) -> Result<(), String>;
    let parsers: [(&str, Parse); 3] = [
        ("server.admin_listen", |t| {
            super::optional_addr::parse(t).map(drop)
        }),
        ("plugins.services", |t| parse_services(t).map(drop)),
        ("plugins.extensions", |t| parse_extensions(t).map(drop)),
    ];
    for (key, parse) in parsers {
        if let Ok(value) = figment.find_value(key)
            && let Some(text) = value.as_str()
            && let Err(message) = parse(text)
        {
            errors.push(ConfigError {
                key: key.into(),
                message,
            });
            let path: Vec<String> = key.split('.').map(String::from).collect();
            insert_path(&mut fixes, &path, Value::from(String::new()));
        }
    }
    if fixes.is_empty() {
        (figment, errors)
    } else {
        (figment.merge(Serialized::defaults(fixes)), errors)
    }
}
