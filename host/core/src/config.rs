//! Configuration: `config.toml`, then `AUTHHOST_<SECTION>__<KEY>` variables, then the original
//! service's variables (`PRIVATE_KEY`, `DATABASE_URL`, ...), each layer overriding the previous.
//!
//! The environment is passed in as a map (`EnvMap`) so tests can feed it without touching the
//! process environment. Validation collects every problem before reporting, each naming its key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
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

/// `tokens.user_token_algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UserTokenAlgorithm {
    /// HMAC with a key derived from the signing key (the default).
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    /// The signing key itself.
    #[serde(rename = "RS256")]
    Rs256,
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// One JSON object per line.
    #[serde(rename = "json")]
    Json,
}

/// `providers.<name>.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderKind {
    #[serde(rename = "dev")]
    Dev,
    #[serde(rename = "google")]
    Google,
    #[serde(rename = "github")]
    GitHub,
    #[serde(rename = "oidc")]
    Oidc,
}

/// `providers.<name>.client_auth`: how the client secret goes to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuth {
    /// HTTP Basic authentication (the OpenID Connect default).
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// In the form body (GitHub's only way).
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
}

/// The keys that take one of a fixed set of words, with the words and the value put in place of
/// a wrong one so that the rest of the configuration is still checked (`check_choices`).
const CHOICES: [(&str, &[&str], &str); 2] = [
    ("tokens.user_token_algorithm", &["HS256", "RS256"], "HS256"),
    ("server.log_format", &["text", "json"], "text"),
];
const PROVIDER_KINDS: &[&str] = &["dev", "google", "github", "oidc"];
const CLIENT_AUTHS: &[&str] = &["client_secret_basic", "client_secret_post"];

/// Upper bounds of durations and sizes: beyond them a value is a mistake (and some would
/// overflow the caches' timers).
pub mod bounds {
    pub const USER_TOKEN_DAYS: u32 = 3650;
    /// One year.
    pub const PERMISSION_TOKEN_SECONDS: u64 = 31_536_000;
    /// One hour.
    pub const USER_CACHE_MS: u64 = 3_600_000;
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
    /// A second listener for `/metrics`, `/healthz` and `/readyz` (empty: off). When on,
    /// `/metrics` is served only there.
    pub admin_listen: String,
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
            admin_listen: String::new(),
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
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: Secret::default(),
            max_connections: None,
            user_cache_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub dirs: Vec<PathBuf>,
    /// `;`-separated `[alias:]plugin` entries (the original's `ALLOWED_SERVICES`).
    pub services: String,
    /// `;`-separated extension names (the original's `INSTALLED_EXTENSIONS`).
    pub extensions: String,
    pub call_timeout_ms: u64,
    /// Plugin calls that may run at once, each on its own thread; more wait for a slot
    /// (within their deadline). Bounds threads and memory under load.
    pub max_concurrent_calls: usize,
    /// Per-alias configuration, passed to the plugin as JSON.
    pub config: BTreeMap<String, toml::Table>,
    /// Searched before `dirs`: `AUTHHOST_PLUGIN_PATH`, colon-separated.
    #[serde(skip)]
    pub search_path: Vec<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dirs: [
                "plugins",
                "target/debug",
                "target/debug/deps",
                "target/release",
                "target/release/deps",
            ]
            .map(PathBuf::from)
            .to_vec(),
            services: String::new(),
            extensions: String::new(),
            call_timeout_ms: 2000,
            max_concurrent_calls: 16,
            config: BTreeMap::new(),
            search_path: Vec::new(),
        }
    }
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Started but unfinished logins one client address may have at once; more get 429.
    pub max_pending_per_client: u32,
    /// Started but unfinished logins of all clients together (bounds the table when many
    /// addresses flood, e.g. from an IPv6 prefix holding many /64s); more get 429.
    pub max_pending_total: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_pending_per_client: 500,
            max_pending_total: 100_000,
        }
    }
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
    /// Reads the file (if any), applies the environment layers and validates the result.
    pub fn load(explicit: Option<&Path>, env: &EnvMap) -> Result<Config, ConfigErrors> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some((path, required)) = config_path(explicit, env) {
            if !path.exists() {
                if required {
                    return Err(ConfigErrors::one(
                        path.display().to_string(),
                        "configuration file not found",
                    ));
                }
            } else {
                figment = figment.merge(Toml::file_exact(&path));
            }
        }
        Self::from_figment(figment, env)
    }

    /// Parses configuration from TOML text plus the environment (tests and tools).
    pub fn from_toml_str(text: &str, env: &EnvMap) -> Result<Config, ConfigErrors> {
        let figment =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
        Self::from_figment(figment, env)
    }

    fn from_figment(figment: Figment, env: &EnvMap) -> Result<Config, ConfigErrors> {
        let figment = figment
            .merge(AuthhostEnv(env.clone()))
            .merge(OriginalEnv(env.clone()));
        // A wrong word is reported with every other problem, not alone as a type error would be.
        let (figment, mut errors) = check_choices(figment);
        let config: Config = match figment.extract() {
            Ok(config) => config,
            Err(extract_errors) => {
                errors.extend(extract_errors.into_iter().map(|e| ConfigError {
                    key: if e.path.is_empty() {
                        "config".into()
                    } else {
                        e.path.join(".")
                    },
                    message: match &e.metadata {
                        Some(m) => format!("{} (from {})", e.kind, m.name),
                        None => e.kind.to_string(),
                    },
                }));
                return Err(ConfigErrors(errors));
            }
        };
        let mut config = config.normalized();
        if let Some(path) = env.get("AUTHHOST_PLUGIN_PATH") {
            config.plugins.search_path = path
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn normalized(mut self) -> Config {
        // The original assumed https:// when EXTERNAL_ADDRESS had no scheme.
        let ext = self
            .server
            .external_address
            .trim()
            .trim_end_matches('/')
            .to_string();
        self.server.external_address = if ext.contains("://") || ext.is_empty() {
            ext
        } else {
            format!("https://{ext}")
        };
        if !self.server.prefix.starts_with('/') {
            self.server.prefix.insert(0, '/');
        }
        if !self.server.prefix.ends_with('/') {
            self.server.prefix.push('/');
        }
        self
    }

    fn validate(&self) -> Vec<ConfigError> {
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
        if !self.server.admin_listen.trim().is_empty()
            && self
                .server
                .admin_listen
                .trim()
                .parse::<SocketAddr>()
                .is_err()
        {
            err(
                "server.admin_listen",
                format!("`{}` is not an address:port", self.server.admin_listen),
            );
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
        if self.login.max_pending_per_client == 0 {
            err("login.max_pending_per_client", "must be at least 1".into());
        }
        if self.login.max_pending_total > 10_000_000 {
            err("login.max_pending_total", "must be at most 10000000".into());
        }
        if self.login.max_pending_total < self.login.max_pending_per_client {
            err(
                "login.max_pending_total",
                "must be at least login.max_pending_per_client".into(),
            );
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
        if let Err(e) = parse_services(&self.plugins.services) {
            err("plugins.services", e);
        }
        if let Err(e) = parse_extensions(&self.plugins.extensions) {
            err("plugins.extensions", e);
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

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigErrors> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigErrors::one("server.listen", "not an address:port"))
    }

    /// The effective configuration as TOML, secrets redacted: the `Secret` fields, and in the
    /// plugins' settings (`[plugins.config.*]`, at any depth) every value whose name looks
    /// secret (`looks_secret`).
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render configuration: {e}\n"),
        };
        if let Some(tables) = value
            .get_mut("plugins")
            .and_then(|p| p.get_mut("config"))
            .and_then(toml::Value::as_table_mut)
        {
            for (_, settings) in tables.iter_mut() {
                redact_secret_looking(settings);
            }
        }
        toml::to_string_pretty(&value)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
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

/// Finds the keys that take one of a fixed set of words (`CHOICES`, provider `kind` and
/// `client_auth`) holding another word, reports each by key with the words it may take, and puts
/// a valid one in its place so that extraction goes on to report every other problem too.
/// Values that are not strings are left to extraction (a type error).
fn check_choices(figment: Figment) -> (Figment, Vec<ConfigError>) {
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
    if fixes.is_empty() {
        (figment, errors)
    } else {
        (figment.merge(Serialized::defaults(fixes)), errors)
    }
}

/// Whether a plugin setting's name looks like it holds a secret: it contains `secret`,
/// `password`, `passwd`, `pwd`, `token`, `key`, `credential`, `private` or `dsn`, in any case
/// (`api_key`, `clientSecret`, `TOKEN_URL`, ...).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "key",
        "credential",
        "private",
        "dsn",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Replaces every value under a secret-looking name in `value` (tables and arrays, at any
/// depth) with `"<redacted>"`.
fn redact_secret_looking(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (name, v) in table.iter_mut() {
                if looks_secret(name) {
                    *v = toml::Value::String("<redacted>".into());
                } else {
                    redact_secret_looking(v);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact_secret_looking),
        // A URL with a password in it (`postgres://user:pw@host/db`) under any name.
        toml::Value::String(text) => {
            if let Ok(mut url) = url::Url::parse(text)
                && url.password().is_some()
                && url.set_password(Some("<redacted>")).is_ok()
            {
                *text = url.to_string();
            }
        }
        _ => {}
    }
}

/// One `[alias:]plugin` entry of `ALLOWED_SERVICES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub alias: String,
    pub plugin: String,
}

/// Parses `ALLOWED_SERVICES`: entries trimmed, empty ones ignored, each alias at most once.
pub fn parse_services(text: &str) -> Result<Vec<ServiceEntry>, String> {
    let mut out: Vec<ServiceEntry> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (alias, plugin) = match entry.split_once(':') {
            Some((a, p)) => (a.trim(), p.trim()),
            None => (entry, entry),
        };
        if alias.is_empty() || plugin.is_empty() {
            return Err(format!("`{entry}` needs both an alias and a plugin"));
        }
        if out.iter().any(|e| e.alias == alias) {
            return Err(format!("alias `{alias}` appears more than once"));
        }
        out.push(ServiceEntry {
            alias: alias.into(),
            plugin: plugin.into(),
        });
    }
    Ok(out)
}

/// Parses `INSTALLED_EXTENSIONS`: entries trimmed, empty ones ignored, each name at most once.
pub fn parse_extensions(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        if out.iter().any(|e| e == entry) {
            return Err(format!("extension `{entry}` appears more than once"));
        }
        out.push(entry.into());
    }
    Ok(out)
}

/// `AUTHHOST_<SECTION>__<KEY>` variables, e.g. `AUTHHOST_SERVER__LISTEN`.
struct AuthhostEnv(EnvMap);

impl Provider for AuthhostEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("AUTHHOST_* environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, value) in &self.0 {
            let Some(rest) = name.strip_prefix("AUTHHOST_") else {
                continue;
            };
            if !rest.contains("__") {
                continue; // AUTHHOST_CONFIG, AUTHHOST_PLUGIN_PATH, AUTHHOST_LOG: not config keys
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let value = env_value(&path, value);
            insert_path(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Converts an environment string to the type of the field it sets (figment does not convert
/// strings to numbers or booleans by itself), so `"14"` fills a number but a numeric secret
/// stays a string. Lists may be written inline: `["a", "b"]`.
fn env_value(path: &[String], raw: &str) -> Value {
    let t = raw.trim();
    let parsed = match field_kind(path) {
        Some(Value::Bool(..)) => t.parse::<bool>().ok().map(Value::from),
        Some(Value::Num(..)) => t.parse::<i64>().ok().map(Value::from),
        Some(Value::Array(..)) | Some(Value::Dict(..)) => inline_toml(t),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::from(raw.to_string()))
}

fn inline_toml(text: &str) -> Option<Value> {
    let mut table = toml::from_str::<toml::Table>(&format!("v = {text}")).ok()?;
    Value::serialize(table.remove("v")?).ok()
}

/// The value at `path` in a configuration with every optional field filled: its variant tells
/// the field's type. Provider names map to one probe provider; plugin tables are free-form.
fn field_kind(path: &[String]) -> Option<Value> {
    static PROBE: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let mut c = Config::default();
        c.database.max_connections = Some(1);
        c.providers.insert(
            "probe".into(),
            ProviderConfig {
                enabled: Some(true),
                kind: Some(ProviderKind::Oidc),
                issuer: Some(String::new()),
                auth_url: Some(String::new()),
                token_url: Some(String::new()),
                api_url: Some(String::new()),
                scopes: Some(vec![]),
                client_auth: Some(ClientAuth::ClientSecretBasic),
                timeout_ms: Some(1),
                ..ProviderConfig::default()
            },
        );
        c.keys.private_key_file = Some(PathBuf::new());
        c.keys.public_key_file = Some(PathBuf::new());
        Value::serialize(&c).ok()
    });
    let mut node = probe.as_ref()?;
    for (i, part) in path.iter().enumerate() {
        let key = if i == 1 && path.first().is_some_and(|p| p == "providers") {
            "probe"
        } else {
            part
        };
        node = node.as_dict()?.get(key)?;
    }
    Some(node.clone())
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// The original service's variables; they keep their meaning and override everything else.
struct OriginalEnv(EnvMap);

impl Provider for OriginalEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("the original's environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let env = &self.0;
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let mut root = Dict::new();
        let mut set = |path: &[&str], v: &str| {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            insert_path(&mut root, &path, Value::from(v.to_string()));
        };
        if let Some(v) = get("PRIVATE_KEY") {
            set(&["keys", "private_key"], v);
        }
        if let Some(v) = get("PUBLIC_KEY") {
            set(&["keys", "public_key"], v);
        }
        if let Some(v) = get("PRIVATE_KEY_FILE") {
            set(&["keys", "private_key_file"], v);
        }
        if let Some(v) = get("PUBLIC_KEY_FILE") {
            set(&["keys", "public_key_file"], v);
        }
        // The original enabled a provider only when both halves were set.
        if let (Some(k), Some(s)) = (get("GOOGLE_KEY"), get("GOOGLE_SECRET")) {
            set(&["providers", "google", "client_id"], k);
            set(&["providers", "google", "client_secret"], s);
        }
        if let (Some(k), Some(s)) = (get("GITHUB_KEY"), get("GITHUB_SECRET")) {
            set(&["providers", "github", "client_id"], k);
            set(&["providers", "github", "client_secret"], s);
        }
        if let Some(v) = get("DATABASE_URL") {
            set(&["database", "url"], v);
        }
        if let Some(v) = get("EXTERNAL_ADDRESS") {
            set(&["server", "external_address"], v);
        }
        // Present but empty still counts for the lists: `ALLOWED_SERVICES=` means none.
        if let Some(v) = env.get("ALLOWED_SERVICES") {
            set(&["plugins", "services"], v);
        }
        if let Some(v) = env.get("INSTALLED_EXTENSIONS") {
            set(&["plugins", "extensions"], v);
        }
        Ok(Profile::Default.collect(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_override_in_order() {
        let toml =
            "[server]\nlisten = \"127.0.0.1:9000\"\nexternal_address = \"http://a.example\"\n";
        let c = Config::from_toml_str(toml, &env(&[])).expect("valid");
        assert_eq!(c.server.listen, "127.0.0.1:9000");
        let c = Config::from_toml_str(
            toml,
            &env(&[
                ("AUTHHOST_SERVER__LISTEN", "127.0.0.1:9001"),
                ("AUTHHOST_SERVER__EXTERNAL_ADDRESS", "http://b.example"),
                ("EXTERNAL_ADDRESS", "auth.example.org"),
                ("AUTHHOST_TOKENS__USER_TOKEN_DAYS", "3"),
                ("AUTHHOST_TOKENS__LEGACY_USER_TOKENS", "true"),
                ("AUTHHOST_REDIRECTS__ALLOWED", "[\"https://x.example/\"]"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.server.listen, "127.0.0.1:9001");
        assert_eq!(c.server.external_address, "https://auth.example.org");
        assert_eq!(c.tokens.user_token_days, 3);
        assert!(c.tokens.legacy_user_tokens);
        assert_eq!(c.redirects.allowed, vec!["https://x.example/".to_string()]);
    }

    #[test]
    fn numeric_secrets_stay_strings() {
        let c = Config::from_toml_str(
            "",
            &env(&[("GITHUB_KEY", "12345"), ("GITHUB_SECRET", "67890")]),
        )
        .expect("valid");
        let gh = &c.providers["github"];
        assert_eq!(gh.client_id, "12345");
        assert_eq!(gh.client_secret.expose(), "67890");
        assert!(!c.to_redacted_toml().contains("67890"));
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let toml = r#"
            [server]
            listen = "nope"
            external_address = "ftp://x"
            [tokens]
            user_token_days = 0
            user_token_algorithm = "none"
            [plugins]
            services = "a:x;a:y"
        "#;
        let errs = Config::from_toml_str(toml, &env(&[]))
            .expect_err("invalid")
            .0;
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "server.listen",
            "server.external_address",
            "tokens.user_token_days",
            "tokens.user_token_algorithm",
            "plugins.services",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn type_errors_name_the_key() {
        let errs = Config::from_toml_str("[tokens]\nuser_token_days = \"many\"\n", &env(&[]))
            .expect_err("invalid")
            .0;
        assert_eq!(errs[0].key, "tokens.user_token_days");
        let errs = Config::from_toml_str("[server]\nlisen = \"x\"\n", &env(&[]))
            .expect_err("invalid")
            .0;
        assert!(errs[0].to_string().contains("lisen"), "{}", errs[0]);
    }

    fn error_keys(toml: &str, env_pairs: &[(&str, &str)]) -> Vec<String> {
        Config::from_toml_str(toml, &env(env_pairs))
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn out_of_range_durations_and_sizes_are_named_errors() {
        // Values like these used to panic inside the cache crate at start.
        let toml = r#"
            [server]
            shutdown_grace_seconds = 86400
            max_connections = 2000000
            max_connections_per_client = 0
            idle_timeout_ms = 99
            [database]
            user_cache_ms = 9000000000000000000
            max_connections = 0
            [tokens]
            user_token_days = 3651
            permission_token_seconds = 9000000000000000000
            [plugins]
            call_timeout_ms = 600001
            [providers.corp]
            issuer = "https://idp.example"
            client_id = "x"
            client_secret = "y"
            timeout_ms = 0
        "#;
        let errs = Config::from_toml_str(toml, &env(&[]))
            .expect_err("invalid")
            .0;
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "server.shutdown_grace_seconds",
            "server.max_connections",
            "server.max_connections_per_client",
            "server.idle_timeout_ms",
            "database.user_cache_ms",
            "database.max_connections",
            "tokens.user_token_days",
            "tokens.permission_token_seconds",
            "plugins.call_timeout_ms",
            "providers.corp.timeout_ms",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let pts = errs
            .iter()
            .find(|e| e.key == "tokens.permission_token_seconds")
            .expect("error");
        assert!(pts.message.contains("31536000"), "{pts}");
        // The same through the environment.
        let mut keys = error_keys(
            "",
            &[
                ("AUTHHOST_DATABASE__USER_CACHE_MS", "3600001"),
                ("AUTHHOST_TOKENS__PERMISSION_TOKEN_SECONDS", "31536001"),
            ],
        );
        keys.sort();
        assert_eq!(
            keys,
            ["database.user_cache_ms", "tokens.permission_token_seconds"]
        );
        // The bounds themselves are fine.
        let c = Config::from_toml_str(
            "[database]\nuser_cache_ms = 3600000\n[tokens]\nuser_token_days = 3650\n\
             permission_token_seconds = 31536000\n[plugins]\ncall_timeout_ms = 600000\n\
             [server]\nshutdown_grace_seconds = 3600\nmax_connections = 1000000\n",
            &env(&[]),
        )
        .expect("valid");
        assert_eq!(c.tokens.permission_token_seconds, 31_536_000);
    }

    #[test]
    fn words_are_typed_and_a_typo_is_a_named_error_among_the_others() {
        let toml = r#"
            [server]
            listen = "nope"
            log_format = "JSON"
            [tokens]
            user_token_algorithm = "RS265"
            [providers.corp]
            kind = "oauth"
            client_id = "x"
            client_secret = "y"
            [providers.google]
            client_auth = "client_secret_jwt"
            client_id = "x"
            client_secret = "y"
            [providers.github]
            client_auth = "client_secret_basic"
            client_id = "x"
            client_secret = "y"
        "#;
        let errs = Config::from_toml_str(toml, &env(&[]))
            .expect_err("invalid")
            .0;
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "server.listen",
            "server.log_format",
            "tokens.user_token_algorithm",
            "providers.corp.kind",
            "providers.google.client_auth",
            "providers.github.client_auth",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let alg = errs
            .iter()
            .find(|e| e.key == "tokens.user_token_algorithm")
            .expect("error");
        assert_eq!(alg.message, "`RS265` is not one of: HS256, RS256");

        let c = Config::from_toml_str(
            "[server]\nlog_format = \"json\"\n[providers.corp]\nkind = \"oidc\"\n\
             issuer = \"https://idp.example\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
             client_auth = \"client_secret_post\"\n[providers.gh2]\nkind = \"github\"\n",
            &env(&[("AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM", "RS256")]),
        )
        .expect("valid");
        assert_eq!(c.tokens.user_token_algorithm, UserTokenAlgorithm::Rs256);
        assert_eq!(c.server.log_format, LogFormat::Json);
        let corp = &c.providers["corp"];
        assert_eq!(corp.kind_for("corp"), ProviderKind::Oidc);
        assert_eq!(corp.client_auth, Some(ClientAuth::ClientSecretPost));
        assert_eq!(c.providers["gh2"].kind_for("gh2"), ProviderKind::GitHub);
        assert_eq!(
            ProviderConfig::default().kind_for("google"),
            ProviderKind::Google
        );
        let mut keys = error_keys(
            "",
            &[
                ("AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM", "rs256"),
                ("AUTHHOST_SERVER__LOG_FORMAT", "yaml"),
            ],
        );
        keys.sort();
        assert_eq!(keys, ["server.log_format", "tokens.user_token_algorithm"]);
        // A value of the wrong type is still a type error naming the key.
        let keys = error_keys("[tokens]\nuser_token_algorithm = 256\n", &[]);
        assert_eq!(keys, ["tokens.user_token_algorithm"]);
        // The words come back out as written.
        let text = c.to_redacted_toml();
        assert!(text.contains("user_token_algorithm = \"RS256\""), "{text}");
        assert!(text.contains("log_format = \"json\""), "{text}");
        assert!(
            text.contains("client_auth = \"client_secret_post\""),
            "{text}"
        );
    }

    #[test]
    fn plugin_settings_that_look_secret_are_redacted() {
        let toml = r#"
            [plugins.config.perms]
            default = { read = true }
            api_key = "k-1111"
            url = "https://perms.example"
            [plugins.config.perms.upstream]
            ClientSecret = "s-2222"
            db_PASSWORD = 12345
            timeout_ms = 500
            [[plugins.config.perms.rules]]
            user = "a"
            Token = "t-3333"
            [[plugins.config.perms.rules]]
            user = "b"
            keys = ["k-4444", "k-5555"]
            [plugins.config.other]
            refresh_token = { value = "t-6666" }
            store = "postgres://app:pw-7777@db.example/perms"
            db_passwd = "p-8888"
            aws_credentials = "c-9999"
        "#;
        let c = Config::from_toml_str(toml, &env(&[])).expect("valid");
        let text = c.to_redacted_toml();
        for secret in [
            "k-1111", "s-2222", "12345", "t-3333", "k-4444", "k-5555", "t-6666", "pw-7777",
            "p-8888", "c-9999",
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        for kept in [
            "https://perms.example",
            "db.example/perms",
            "timeout_ms = 500",
            "user = \"b\"",
            "read = true",
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
        // The redacted text is still valid TOML with the same shape.
        let back: toml::Table = toml::from_str(&text).expect("toml");
        assert_eq!(
            back["plugins"]["config"]["perms"]["upstream"]["ClientSecret"].as_str(),
            Some("<redacted>")
        );
        // The plugins still get the real values.
        assert_eq!(
            c.plugins.config["perms"]["api_key"].as_str(),
            Some("k-1111")
        );
        assert!(looks_secret("GITHUB_Token_url") && !looks_secret("username"));
    }

    #[test]
    fn dev_login_refuses_public_listener() {
        let errs = Config::from_toml_str(
            "[server]\nlisten = \"0.0.0.0:8000\"\n[providers.dev]\nenabled = true\n",
            &env(&[]),
        )
        .expect_err("invalid")
        .0;
        assert_eq!(errs[0].key, "providers.dev.enabled");
    }

    #[test]
    fn service_lists_follow_the_original_syntax() {
        let s = parse_services(" example:sample ; ;plain;").expect("valid");
        assert_eq!(
            s,
            vec![
                ServiceEntry {
                    alias: "example".into(),
                    plugin: "sample".into()
                },
                ServiceEntry {
                    alias: "plain".into(),
                    plugin: "plain".into()
                },
            ]
        );
        assert!(parse_services("a:x;a:y").is_err());
        assert_eq!(parse_extensions("x; y;;").expect("valid"), vec!["x", "y"]);
    }
}
