//! Test harness: starts a real authhost server on port 0 with a fresh database, and a client.
//!
//! The database is SQLite in a temporary folder, or, when `AUTHHOST_TEST_POSTGRES` holds a
//! PostgreSQL URL (e.g. `postgres://postgres@127.0.0.1:5432/test`), a fresh database created on
//! that server for each test server and dropped when the test stops it, or when the server is
//! dropped without a stop (a test that panicked on the way). A set but unreachable
//! `AUTHHOST_TEST_POSTGRES` fails the tests: nothing is skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake_github;
pub mod pg_cluster;

use std::sync::{Arc, OnceLock};

use authhost::app::{App, SharedApp};
use authhost::config::{Config, EnvMap};
use authhost::server::ServerHandle;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

/// Two RSA key pairs (private PEM, public PEM), generated once per test process.
pub fn key_pair(n: usize) -> &'static (String, String) {
    static PAIRS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    &PAIRS.get_or_init(|| {
        (0..2)
            .map(|_| authhost::keys::generate_pem_pair().expect("keygen"))
            .collect()
    })[n]
}

/// Where cargo put the plugin libraries of this workspace (`target/<profile>`).
pub fn plugin_dir() -> std::path::PathBuf {
    let lib = authhost_plugin_api::testkit::built_library("sample_permission_provider");
    lib.parent().expect("library folder").to_path_buf()
}

/// The `authhost` binary plugin workers run (the tests' own executable is not `authhost`): the
/// one cargo built beside the plugins. `cargo test --workspace` builds it in the same run (the
/// server's own tests need it), so it is as new as the code under test; running this package
/// alone after a change needs `cargo build` first. Building it from here instead would rebuild
/// the workspace with other features and overwrite libraries that running tests have loaded.
pub fn worker_program() -> std::path::PathBuf {
    // target/<profile>/deps/<test binary> → target/<profile>/authhost
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps folder");
    let candidates = [
        deps.parent().map(|p| p.join("authhost")),
        Some(deps.join("authhost")),
        Some(plugin_dir().join("authhost")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no authhost binary beside {}: plugin workers run it; run `cargo test --workspace` (or `cargo build` first)",
                deps.display()
            )
        })
}

/// Options naming the plugins as the original's variables do (`ALLOWED_SERVICES`,
/// `INSTALLED_EXTENSIONS`), with `extra_toml` added to the configuration.
pub fn plugin_options(services: &str, extensions: &str, extra_toml: &str) -> Options {
    let mut env = authhost::config::EnvMap::new();
    env.insert("ALLOWED_SERVICES".into(), services.into());
    env.insert("INSTALLED_EXTENSIONS".into(), extensions.into());
    Options {
        env,
        extra_toml: extra_toml.into(),
        ..Options::default()
    }
}

/// Where test databases live.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

pub fn backend() -> Backend {
    match std::env::var("AUTHHOST_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Backend::Postgres { admin_url: url },
        _ => Backend::Sqlite,
    }
}

/// A database made for one test.
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pg: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    /// A fresh database; a SQLite file goes into `dir`, which must outlive it.
    pub async fn new(dir: &std::path::Path) -> TestDb {
        match backend() {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}/authhost.db?mode=rwc", dir.display()),
                pg: None,
            },
            Backend::Postgres { admin_url } => {
                let name = format!("authhost_t_{:016x}", rand::random::<u64>());
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("AUTHHOST_TEST_POSTGRES is set but PostgreSQL is not reachable at {admin_url}: {e}")
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                let _ = admin.close().await;
                let url = replace_database(&admin_url, &name);
                TestDb {
                    url,
                    pg: Some((admin_url, name)),
                }
            }
        }
    }

    /// A fresh database with every migration applied and a connection to it, for tests of
    /// the core's stores without a server; the folder holds a SQLite file.
    pub async fn migrated() -> (tempfile::TempDir, TestDb, authhost::db::Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let test_db = TestDb::new(dir.path()).await;
        let db = authhost::db::connect(&test_db.url, Some(4))
            .await
            .expect("connect");
        authhost::db::migrate(&db).await.expect("migrate");
        (dir, test_db, db)
    }

    /// A database that exists already (a private cluster's): never dropped by the harness.
    pub fn existing(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            pg: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    pub async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.pg
            && let Ok(admin) = Database::connect(admin_url.as_str()).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// `postgres://user@host:port/db?x` with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub struct TestServer {
    pub base: String,
    pub prefix: String,
    pub app: SharedApp,
    pub client: reqwest::Client,
    pub db: TestDb,
    handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    /// The database was made for this server (not handed in) and is still its own: dropped
    /// with it unless `stop_keep_db` hands it back.
    owns_db: bool,
}

impl Drop for TestServer {
    /// A server dropped without `stop` (a panicking test) still leaves no PostgreSQL database
    /// behind. The drop runs on a thread of its own: `Drop` cannot await, and the test's
    /// runtime may be unwinding.
    fn drop(&mut self) {
        drop(self.handle.take());
        if !std::mem::take(&mut self.owns_db) || !self.db.is_postgres() {
            return;
        }
        let db = self.db.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(db.drop_database()))
        });
        let _ = dropped.join();
    }
}

/// The configuration every test server starts from; `extra` TOML is appended to it.
pub fn base_toml(dir: &std::path::Path, db_url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
external_address = "http://127.0.0.1:1"
data_dir = "{dir}"
[database]
url = "{db_url}"
[redirects]
allowed = ["https://app.example.org/", "http://127.0.0.1:1/"]
[cors]
allowed_origins = ["https://app.example.org"]
[plugins]
services = "example:sample_permission_provider;example2:sample_permission_provider"
[providers.dev]
enabled = true
"#,
        dir = dir.display()
    )
}

#[derive(Default, Clone)]
pub struct Options {
    pub extra_toml: String,
    pub env: EnvMap,
    /// Use this database instead of a fresh one.
    pub db: Option<TestDb>,
    /// Key pair number (0 or 1).
    pub key: usize,
}

/// The configuration a test server with `options` runs with: `base_toml` plus the options'
/// TOML, the test keys and plugin folder in the environment unless the options set them.
pub fn test_config(dir: &std::path::Path, db_url: &str, options: &Options) -> Config {
    let mut env = options.env.clone();
    let (private, public) = key_pair(options.key);
    env.entry("PRIVATE_KEY".into())
        .or_insert_with(|| private.clone());
    env.entry("PUBLIC_KEY".into())
        .or_insert_with(|| public.clone());
    env.entry("AUTHHOST_PLUGIN_PATH".into())
        .or_insert_with(|| plugin_dir().display().to_string());
    env.entry("AUTHHOST_PLUGINS__WORKER_PROGRAM".into())
        .or_insert_with(|| worker_program().display().to_string());
    let toml = format!("{}\n{}", base_toml(dir, db_url), options.extra_toml);
    Config::from_toml_str(&toml, &env).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// Builds the app as a server would, returning the start-up errors instead of panicking.
pub async fn try_build(options: &Options) -> Result<App, authhost::app::StartupErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let result = App::build(test_config(dir.path(), &db.url, options)).await;
    if let Ok(app) = &result {
        app.db.clone().close().await.ok();
    }
    db.drop_database().await;
    result
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let owns_db = options.db.is_none();
        let db = match options.db {
            Some(ref db) => db.clone(),
            None => TestDb::new(dir.path()).await,
        };
        let config = test_config(dir.path(), &db.url, &options);
        let prefix = config.server.prefix.clone();
        let app = Arc::new(App::build(config).await.unwrap_or_else(|e| panic!("{e}")));
        let handle = ServerHandle::start(app.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let client = browser();
        TestServer {
            base: format!("http://{}", handle.addr),
            prefix,
            app,
            client,
            db,
            handle: Some(handle),
            dir,
            owns_db,
        }
    }

    /// `http://addr/auth/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.base, self.prefix, path)
    }

    /// The value of one Prometheus sample line of `/metrics`, 0 when absent. (Metrics are
    /// process-wide: tests in one binary share them, so give each test its own labels.)
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    }

    /// The whole `/metrics` answer.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `authorize?service` for the user of `token`: the whole JSON answer.
    pub async fn authorize(&self, token: &str, service: &str) -> Value {
        self.get_json(&format!("authorize?jwt={token}&service={service}"))
            .await
    }

    /// Whether `check` takes `token` as a logged-in user's.
    pub async fn authenticated(&self, token: &str) -> bool {
        self.get_json(&format!("check?jwt={token}")).await["authenticated"] == true
    }

    /// `url`, built from the external address (a redirect's target), as a request to this
    /// server: what a load balancer in front of it would do.
    pub fn on(&self, url: &str) -> String {
        let (_, path) = url.split_once(&self.prefix).expect("under the prefix");
        self.url(path)
    }

    pub async fn get_json(&self, path_and_query: &str) -> Value {
        let r = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "GET {path_and_query}");
        r.json().await.expect("json body")
    }

    /// `GET` with `token` in the `auth-token` header; the JSON answer, whatever its status.
    pub async fn get_json_as(&self, path_and_query: &str, token: &str) -> Value {
        self.client
            .get(self.url(path_and_query))
            .header("auth-token", token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    /// `POST` to `path_and_query` with no body; the answer must be 200 JSON.
    pub async fn post_json(&self, path_and_query: &str) -> Value {
        let r = self
            .client
            .post(self.url(path_and_query))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "POST {path_and_query}");
        r.json().await.expect("json body")
    }

    /// Logs in through the dev form, returning the user token.
    pub async fn dev_login(&self, email: &str, name: &str) -> String {
        let r = self
            .client
            .post(self.url("login/dev"))
            .form(&[
                ("email", email),
                ("name", name),
                ("next", "https://app.example.org/done"),
            ])
            .send()
            .await
            .expect("dev login");
        assert_eq!(r.status(), 302, "dev login status");
        query_param(&location(&r), "jwt")
    }

    /// Stops the server and drops its database.
    pub async fn stop(self) {
        let db = self.stop_keep_db().await;
        db.drop_database().await;
    }

    /// Stops the server and hands its database back, e.g. to start another server on it.
    pub async fn stop_keep_db(mut self) -> TestDb {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        self.app.db.clone().close().await.ok();
        self.owns_db = false;
        self.db.clone()
    }
}

/// The real `authhost` binary as a command, the one way the tests run it: the developer's
/// variables that would change what it loads are removed, and the shipped and fixture plugins
/// are on its plugin path.
pub fn authhost_command() -> std::process::Command {
    let mut command = std::process::Command::new(worker_program());
    for var in [
        "PRIVATE_KEY",
        "PUBLIC_KEY",
        "DATABASE_URL",
        "ALLOWED_SERVICES",
        "INSTALLED_EXTENSIONS",
        "AUTHHOST_CONFIG",
    ] {
        command.env_remove(var);
    }
    command.env("AUTHHOST_PLUGIN_PATH", plugin_dir());
    command
}

/// A spawned `authhost` process that is killed (and reaped) when dropped, also when the test
/// panics on the way.
pub struct Running(pub std::process::Child);

impl Running {
    /// Stops the process now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The target of a redirect (asserting that `r` is one).
pub fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 302, "expected a redirect");
    r.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_string()
}

/// The query parameter `name` of `url` (panics when it has none).
pub fn query_param(url: &str, name: &str) -> String {
    try_query_param(url, name).unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// The query parameter `name` of `url`, if it has one (panics when `url` is not absolute).
pub fn try_query_param(url: &str, name: &str) -> Option<String> {
    query_params(url).remove(name)
}

/// Every query parameter of `url`, decoded (the last one wins when a name repeats).
pub fn query_params(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

/// `s` percent-encoded for a query string.
pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A client that acts like one browser: keeps its cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The form of an RFC 8693 token exchange at `POST {prefix}token`: `subject` of type `kind`
/// (a token-type URN) for the service `audience`.
pub fn exchange_form<'a>(
    subject: &'a str,
    kind: &'a str,
    audience: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", authhost::routes::TOKEN_EXCHANGE_GRANT),
        ("subject_token", subject),
        ("subject_token_type", kind),
        ("audience", audience),
    ]
}

/// The token-type URN of a JWT (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Decodes a JWT's header and payload without verifying.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut parts = token.split('.');
    let mut next = || {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next().expect("part"))
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    (next(), next())
}

/// The JSON text of a JWT's payload, keys in the order the issuer wrote them.
pub fn jwt_payload_text(token: &str) -> String {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("payload part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    String::from_utf8(bytes).expect("utf-8")
}

/// md5 hex, the original's user id rule.
pub fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
