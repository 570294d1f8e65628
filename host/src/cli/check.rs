//! `authhost check`: before a deploy, whether this configuration can serve. Each part is tried
//! the way the server would use it (the keys loaded and a token signed and verified, the
//! database connected and its migrations compared, every plugin loaded, every OpenID Connect
//! issuer's discovery document fetched, the public address and the redirect allowlist checked
//! against each other), one line per check: `OK`, `WARN` (works, but look), or `FAIL` and the
//! reason. The exit status is non-zero when any check failed.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::call_pool::CallPool;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::login::Upstreams;
use crate::plugins::LibraryCache;
use crate::redirects::RedirectPolicy;
use crate::tokens::TokenService;

/// What one check found.
enum Verdict {
    Ok(String),
    Warn(String),
    Fail(String),
}

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, check: &str, verdict: Verdict) {
        let (word, text) = match verdict {
            Verdict::Ok(t) => ("OK  ", t),
            Verdict::Warn(t) => ("WARN", t),
            Verdict::Fail(t) => {
                self.failed = true;
                ("FAIL", t)
            }
        };
        println!("{word} {check}: {text}");
    }
}

/// Runs every check on `config` (already loaded and validated, from `source`).
pub async fn run(config: Config, source: &str) -> ExitCode {
    crate::crypto::install();
    let mut report = Report { failed: false };
    report.line("configuration", Verdict::Ok(format!("{source} is valid")));
    for ignored in config.ignored_settings() {
        report.line("configuration", Verdict::Warn(ignored));
    }
    report.line("keys", keys(&config));
    database(&config, &mut report).await;
    plugins(&config, &mut report).await;
    providers(&config, &mut report).await;
    addresses(&config, &mut report);
    if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn keys(config: &Config) -> Verdict {
    // Loading would write the development pair: the check writes nothing, so it says so.
    if let Some(path) = crate::keys::dev_keys_to_generate(config) {
        return Verdict::Warn(format!(
            "no signing key configured: with dev login on, `serve` generates a development pair \
             into {} (check writes nothing)",
            path.display()
        ));
    }
    let ring = match KeyRing::load(config) {
        Ok(ring) => ring,
        Err(errors) => {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Verdict::Fail(all.join("; "));
        }
    };
    let roles: Vec<String> = ring
        .keys()
        .map(|(key, role)| format!("{} {}", role.name(), key.kid))
        .collect();
    let tokens = TokenService::new(config, Arc::new(ring));
    match tokens.self_test() {
        Ok(()) => Verdict::Ok(format!("a token signed and verified; {}", roles.join(", "))),
        Err(e) => Verdict::Fail(format!("sign-and-verify self-test failed: {e}")),
    }
}

/// A SQLite file that does not exist yet, judged without opening it: opening would create it,
/// and a check that leaves an empty database behind (at a mistyped path, say) misleads.
fn missing_sqlite_file(config: &Config) -> Option<Verdict> {
    let url = config.database_url();
    let path = crate::db::sqlite_file(&url)?;
    if std::path::Path::new(&path).exists() {
        return None;
    }
    let creates = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "mode=rwc"));
    Some(if !creates {
        Verdict::Fail(format!(
            "{path} does not exist, and the URL does not let SQLite create it (add ?mode=rwc)"
        ))
    } else if !config.server.run_migrations {
        Verdict::Fail(format!(
            "{path} does not exist yet and server.run_migrations is off: `authhost migrate` creates it"
        ))
    } else {
        Verdict::Warn(format!(
            "{path} does not exist yet: `authhost serve` creates it and applies every migration (all pending)"
        ))
    })
}

async fn database(config: &Config, report: &mut Report) {
    if let Some(verdict) = missing_sqlite_file(config) {
        report.line("database", verdict);
        return;
    }
    let url = crate::config::without_password(&config.database_url());
    let db = match crate::db::connect(&config.database_url(), config.database.max_connections).await
    {
        Ok(db) => db,
        Err(e) => {
            report.line("database", Verdict::Fail(format!("cannot open {url}: {e}")));
            return;
        }
    };
    if let Err(e) = db.ping().await {
        report.line(
            "database",
            Verdict::Fail(format!("{url} does not answer: {e}")),
        );
        return;
    }
    let verdict = match crate::db::pending_migrations(&db).await {
        Ok(pending) if pending.is_empty() => Verdict::Ok(format!("{url}, schema up to date")),
        Ok(pending) if config.server.run_migrations => Verdict::Warn(format!(
            "{url}: {} pending migration(s), applied at start: {}",
            pending.len(),
            pending.join(", ")
        )),
        Ok(pending) => Verdict::Fail(format!(
            "{url}: {} pending migration(s) and server.run_migrations is off (run `authhost migrate`): {}",
            pending.len(),
            pending.join(", ")
        )),
        Err(e) => Verdict::Fail(format!("{url}: cannot read the migrations: {e}")),
    };
    report.line("database", verdict);
    if let Some(verdict) = transport(config, &db).await {
        report.line("database connection", verdict);
    }
    let _ = db.close().await;
}

/// How the connections to PostgreSQL travel, and whether that fits where the server is: TLS
/// to a loopback server costs throughput for nothing (the URL's default `sslmode=prefer`
/// negotiates it anyway); clear text to another host exposes every token check.
async fn transport(config: &Config, db: &crate::db::Db) -> Option<Verdict> {
    let transport = match crate::db::transport(db).await {
        Ok(t) => t?,
        Err(e) => {
            return Some(Verdict::Warn(format!(
                "cannot tell whether it uses TLS: {e}"
            )));
        }
    };
    let url = config.database_url();
    let parsed = url::Url::parse(&url).ok();
    // A `host=` parameter overrides the URL's authority (libpq's rule, which sqlx follows).
    let host = parsed
        .as_ref()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "host")
                .map(|(_, v)| v.into_owned())
                .or_else(|| u.host_str().map(str::to_string))
        })
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let mode = parsed
        .as_ref()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "sslmode")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "prefer (the default)".into());
    // No host, or a socket folder: a Unix socket, local like loopback.
    let local = host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Some(match (transport, local) {
        (crate::db::Transport::Tls { version, cipher }, true) => Verdict::Warn(format!(
            "TLS ({version}, {cipher}) to a server on this machine, sslmode={mode}: a handshake \
             per new connection and encryption per query for nothing; add ?sslmode=disable \
             (README, PostgreSQL)"
        )),
        (crate::db::Transport::Tls { version, cipher }, false) => {
            Verdict::Ok(format!("TLS ({version}, {cipher}), sslmode={mode}"))
        }
        (crate::db::Transport::Clear, true) => Verdict::Ok(format!(
            "clear text to a server on this machine, sslmode={mode}"
        )),
        (crate::db::Transport::Clear, false) => Verdict::Warn(format!(
            "clear text to {host}, sslmode={mode}: tokens and profiles cross the network \
             unencrypted; use sslmode=verify-full (or require)"
        )),
    })
}

async fn plugins(config: &Config, report: &mut Report) {
    let pool = match CallPool::new("plugin-call", config.plugins.max_concurrent_calls) {
        Ok(pool) => pool,
        Err(e) => {
            report.line(
                "plugins",
                Verdict::Fail(format!("cannot start the call threads: {e}")),
            );
            return;
        }
    };
    let cache = Arc::new(Mutex::new(LibraryCache::new(&config.server.data_dir)));
    match crate::app::load_plugins(config.clone(), cache, pool).await {
        Ok(set) => {
            let mut loaded: Vec<String> = set
                .providers()
                .iter()
                .map(|(alias, p)| format!("{alias}:{} {}", p.name, p.version))
                .collect();
            loaded.extend(
                set.extensions()
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version)),
            );
            let text = if loaded.is_empty() {
                "none configured".to_string()
            } else {
                format!("loaded {}", loaded.join(", "))
            };
            report.line("plugins", Verdict::Ok(text));
        }
        Err(errors) => {
            for e in errors {
                report.line("plugins", Verdict::Fail(e));
            }
        }
    }
}

async fn providers(config: &Config, report: &mut Report) {
    let upstreams = match Upstreams::from_config(config) {
        Ok(u) => u,
        Err(errors) => {
            for e in errors {
                report.line("providers", Verdict::Fail(e));
            }
            return;
        }
    };
    if config.dev_login_enabled() {
        report.line(
            "providers.dev",
            Verdict::Warn("dev login is on: anyone reaching the listener logs in as anyone".into()),
        );
    }
    for name in upstreams.names() {
        let Some(upstream) = upstreams.get(name) else {
            continue;
        };
        let verdict = match upstream.reachable().await {
            Ok(text) => Verdict::Ok(text),
            Err(e) => Verdict::Fail(e.to_string()),
        };
        report.line(&format!("providers.{name}"), verdict);
    }
}

/// A host tokens may travel to over plain http: this machine only.
fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The public address, the callback upstreams must have registered, and the redirect
/// allowlist: tokens travel in redirects, so every target must be https (or this machine).
fn addresses(config: &Config, report: &mut Report) {
    let external = &config.server.external_address;
    let callback = crate::login::callback_url(config);
    let verdict = match url::Url::parse(external) {
        Err(e) => Verdict::Fail(format!("server.external_address `{external}`: {e}")),
        Ok(u) if u.scheme() == "https" => Verdict::Ok(format!(
            "{external}; upstreams must have {callback} registered as the redirect URI"
        )),
        Ok(u) if loopback(&u) => Verdict::Ok(format!(
            "{external} (this machine only); upstreams must have {callback} registered"
        )),
        Ok(_) => Verdict::Fail(format!(
            "server.external_address `{external}` is plain http on a public host: tokens and login cookies would cross the network unencrypted"
        )),
    };
    report.line("external_address", verdict);
    if let Err(e) = RedirectPolicy::new(&config.redirects.allowed, external) {
        report.line("redirects.allowed", Verdict::Fail(e));
        return;
    }
    let plain: Vec<&String> = config
        .redirects
        .allowed
        .iter()
        .filter(|entry| url::Url::parse(entry).is_ok_and(|u| u.scheme() == "http" && !loopback(&u)))
        .collect();
    let verdict = if !plain.is_empty() {
        Verdict::Fail(format!(
            "plain http targets get tokens in their URL: {}",
            plain
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else if config.redirects.allowed.is_empty() {
        Verdict::Warn("empty: `next` may only name paths on this host".into())
    } else {
        Verdict::Ok(format!("{} target(s)", config.redirects.allowed.len()))
    };
    report.line("redirects.allowed", verdict);
    if config.cors.allowed_origins.iter().any(|o| o == "*") {
        report.line(
            "cors.allowed_origins",
            Verdict::Warn("\"*\" lets any site call the API with the user's credentials".into()),
        );
    }
}
