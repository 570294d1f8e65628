//! Configuration: `config.toml`, then `AUTHHOST_<SECTION>__<KEY>` variables, then the original
//! service's variables (`PRIVATE_KEY`, `DATABASE_URL`, ...), each layer overriding the previous.
//!
//! The environment is passed in as a map (`EnvMap`) so tests can feed it without touching the
//! process environment. Validation collects every problem before reporting, each naming its key.
//!
//! This file holds the types and their defaults; `sources` the environment layers, `validate`
//! the checks, `redact` what `authhost config` prints.

mod clients;
mod kinds;
mod lists;
mod load;
mod optional_addr;
mod paths;
mod plugins;
mod redact;
mod sources;
mod validate;

pub use clients::{ClientConfig, redirect_uri_problem};
pub use kinds::{ClientAuth, Isolation, LogFormat, ProviderKind, UserTokenAlgorithm};
pub use lists::{Extensions, ServiceEntry, Services, parse_extensions, parse_services};
pub use plugins::{PluginsConfig, PythonConfig};
pub use redact::{looks_secret, without_password};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A snapshot of environment variables.
pub type EnvMap = BTreeMap<String, String>;

/// The process environment, read once.
pub fn process_env() -> EnvMap {
    std::env::vars().collect()
}

/// A string that never shows up in logs, `Debug` output or `authhost config`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// Upper bounds of durations and sizes: beyond them a value is a mistake (and some would
/// overflow the caches' timers).
pub mod bounds {
    pub const USER_TOKEN_DAYS: u32 = 3650;
    /// One year.
    pub const PERMISSION_TOKEN_SECONDS: u64 = 31_536_000;
    /// One hour.
    pub const USER_CACHE_MS: u64 = 3_600_000;
    pub const STALE_IF_ERROR_SECONDS: u64 = 86_400;
    pub const USER_CACHE_NOTIFIED_SECONDS: u64 = 86_400;
    pub const DATABASE_MAX_CONNECTIONS: u32 = 10_000;
    /// Ten minutes.
    pub const CALL_TIMEOUT_MS: u64 = 600_000;
    /// Ten minutes.
    pub const PROVIDER_TIMEOUT_MS: u64 = 600_000;
    /// One hour.
    pub const SHUTDOWN_GRACE_SECONDS: u64 = 3600;
    pub const MAX_CONNECTIONS: usize = 1_000_000;
    /// One hour.
    pub const CONNECTION_TIMEOUT_MS: u64 = 3_600_000;
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub redirects: RedirectsConfig,
    pub cors: CorsConfig,
    pub plugins: PluginsConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Applications that log in through authhost as an OpenID Provider, by client id.
    pub clients: BTreeMap<String, ClientConfig>,
    pub caches: CachesConfig,
    pub login: LoginConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub prefix: String,
    pub external_address: String,
    pub data_dir: PathBuf,
    /// `text` (readable) or `json`.
    pub log_format: LogFormat,
    /// Run pending migrations at start (`authhost migrate` runs them on demand).
    pub run_migrations: bool,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Connections one client address may hold at once (not applied to `trusted_proxies`).
    pub max_connections_per_client: usize,
    /// A request head must arrive whole within this time, or the connection is closed.
    pub header_read_timeout_ms: u64,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout_ms: u64,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// A second listener for `/metrics`, `/healthz` and `/readyz` (`""` in the file or the
    /// environment: off). When on, `/metrics` is served only there.
    #[serde(with = "optional_addr")]
    pub admin_listen: Option<SocketAddr>,
    /// One log line per request (target `authhost::access`): method, route template, status,
    /// duration, client address and user id; never a token or a query string.
    pub access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            prefix: "/auth/".into(),
            external_address: "http://127.0.0.1:8000".into(),
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Text,
            run_migrations: true,
            max_connections: 4096,
            shutdown_grace_seconds: 10,
            max_connections_per_client: 512,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            trusted_proxies: Vec::new(),
            admin_listen: None,
            access_log: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/authhost.db?mode=rwc`.
    pub url: Secret,
    pub max_connections: Option<u32>,
    /// How long a user row read for a token check is reused (0 turns the cache off). Writes on
    /// this replica take effect at once; a logout on another replica within this time.
    pub user_cache_ms: u64,
    /// While the database is unreachable, `check`, `authorize` and token exchange answer for a
    /// user whose row was read within this many seconds from that row (0 turns it off).
    pub stale_if_error_seconds: u64,
    /// On PostgreSQL, while this replica listens for user changes (`LISTEN`/`NOTIFY`), how
    /// long a user row is reused: changes made anywhere reach it at once, so this can be long.
    /// 0: do not listen, `user_cache_ms` always.
    pub user_cache_notified_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: Secret::default(),
            max_connections: None,
            user_cache_ms: 1000,
            stale_if_error_seconds: 300,
            user_cache_notified_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub private_key_file: Option<PathBuf>,
    pub public_key_file: Option<PathBuf>,
    /// PEM text (the original's `PRIVATE_KEY`); wins over `private_key_file`.
    pub private_key: Secret,
    /// PEM text (the original's `PUBLIC_KEY`); wins over `public_key_file`.
    pub public_key: String,
    /// Public keys that verify and are published in the JWKS but do not sign (rotation).
    pub extra_public_key_files: Vec<PathBuf>,
    /// Private keys that signed before the current one: their tokens (user tokens with the
    /// HS256 key derived from them, RS256 tokens) still verify and their public halves stay in
    /// the JWKS, but they sign nothing new.
    pub retired_private_key_files: Vec<PathBuf>,
    /// Private keys that will sign next: their tokens verify (so replicas not yet switched
    /// accept tokens of replicas that are) and their public halves are in the JWKS, but they
    /// sign nothing here yet.
    pub next_private_key_files: Vec<PathBuf>,
    /// `Cache-Control: max-age` of the JWKS, in seconds.
    pub jwks_max_age_seconds: u32,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            private_key_file: None,
            public_key_file: None,
            private_key: Secret::default(),
            public_key: String::new(),
            extra_public_key_files: Vec::new(),
            retired_private_key_files: Vec::new(),
            next_private_key_files: Vec::new(),
            jwks_max_age_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub user_token_days: u32,
    pub permission_token_seconds: u64,
    /// `HS256` (default; key derived from the signing key) or `RS256`.
    pub user_token_algorithm: UserTokenAlgorithm,
    /// Compatibility: also accept the original's user tokens (HS256 keyed with sha256 of the PEM).
    pub legacy_user_tokens: bool,
    /// `iss` of every token; empty means `external_address` + `prefix`.
    pub issuer: String,
    /// Hand out the same permission token again while user, service and permissions are
    /// unchanged and at least half its lifetime remains (saves an RSA signature per request).
    pub permission_token_cache: bool,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            user_token_days: 14,
            permission_token_seconds: 3600,
            user_token_algorithm: UserTokenAlgorithm::Hs256,
            legacy_user_tokens: false,
            issuer: String::new(),
            permission_token_cache: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectsConfig {
    /// Exact origins (`https://app.example.org`) or origin + path prefix
    /// (`https://app.example.org/app/`), matched on path-segment boundaries.
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser, with credentials. `"*"` echoes any
    /// origin, as the original's hosts did (compatibility; not recommended).
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    pub enabled: Option<bool>,
    /// `oidc` for extra OpenID Connect providers; implied for `google`, `github` and `dev`.
    pub kind: Option<ProviderKind>,
    pub client_id: String,
    pub client_secret: Secret,
    pub issuer: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub api_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// OpenID Connect providers: `client_secret_basic` (default) or `client_secret_post`.
    pub client_auth: Option<ClientAuth>,
    /// How long one call to this upstream may take (default 10 000).
    pub timeout_ms: Option<u64>,
}

/// Memory budgets of the caches, in MiB. Each cache weighs its entries in bytes and evicts
/// beyond its budget, so no sequence of requests can make it hold more.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CachesConfig {
    /// Signed permission tokens handed out again (`tokens.permission_token_cache`).
    pub permission_tokens_mib: u64,
    /// User tokens that passed verification, by their text.
    pub verified_tokens_mib: u64,
    /// User rows read for token checks (`database.user_cache_ms`).
    pub users_mib: u64,
}

impl Default for CachesConfig {
    fn default() -> Self {
        CachesConfig {
            permission_tokens_mib: 16,
            verified_tokens_mib: 8,
            users_mib: 16,
        }
    }
}

/// `[login]`: nothing to set since the login state moved into the browser's cookie. The two
/// pending-login caps of earlier versions are accepted and ignored, with a warning
/// (`Config::ignored_settings`), so that an upgraded configuration still starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Any value (a number in the file, text from the environment): it is only reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_per_client: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_total: Option<serde_json::Value>,
}

/// `n` MiB in bytes.
pub fn mib(n: u64) -> u64 {
    n.saturating_mul(1024 * 1024)
}

/// One configuration problem, naming the key (or file) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, reported together.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError {
            key: key.into(),
            message: message.into(),
        }])
    }
}

/// Which file to read: `--config`, else `AUTHHOST_CONFIG`, else `./config.toml` when present.
pub fn config_path(explicit: Option<&Path>, env: &EnvMap) -> Option<(PathBuf, bool)> {
    if let Some(p) = explicit {
        return Some((p.to_path_buf(), true));
    }
    if let Some(p) = env.get("AUTHHOST_CONFIG").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let default = PathBuf::from("config.toml");
    default.exists().then_some((default, false))
}

impl Config {
    /// The database URL, defaulting to a SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose().trim();
        if url.is_empty() {
            format!(
                "sqlite://{}/authhost.db?mode=rwc",
                self.server.data_dir.display()
            )
        } else {
            url.to_string()
        }
    }

    /// `iss` of the tokens this host mints.
    pub fn issuer(&self) -> String {
        if self.tokens.issuer.is_empty() {
            format!("{}{}", self.server.external_address, self.server.prefix)
        } else {
            self.tokens.issuer.clone()
        }
    }

    pub fn dev_login_enabled(&self) -> bool {
        self.providers
            .get("dev")
            .is_some_and(|p| p.enabled.unwrap_or(true))
    }

    /// Settings that are accepted but no longer do anything, each with why: logged as warnings
    /// at start and by `authhost check`.
    pub fn ignored_settings(&self) -> Vec<String> {
        let gone = "is ignored: login state travels sealed in the browser's cookie, so there is \
                    no pending-login table to bound; remove it";
        [
            (
                "login.max_pending_per_client",
                &self.login.max_pending_per_client,
            ),
            ("login.max_pending_total", &self.login.max_pending_total),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(key, _)| format!("{key} {gone}"))
        .collect()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigErrors> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigErrors::one("server.listen", "not an address:port"))
    }
}

impl ProviderConfig {
    /// `kind`, else implied by the name (`dev`, `google`, `github`), else `oidc`.
    pub fn kind_for(&self, name: &str) -> ProviderKind {
        self.kind.unwrap_or(match name {
            "dev" => ProviderKind::Dev,
            "google" => ProviderKind::Google,
            "github" => ProviderKind::GitHub,
            _ => ProviderKind::Oidc,
        })
    }
}

#[cfg(test)]
mod tests;
