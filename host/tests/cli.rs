//! The `authhost` binary: keygen, token, config, plugins, migrate, start-up errors, and a
//! graceful stop on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn authhost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authhost"));
    // Keep the developer's environment out of the tests.
    for var in [
        "PRIVATE_KEY",
        "PUBLIC_KEY",
        "DATABASE_URL",
        "ALLOWED_SERVICES",
        "INSTALLED_EXTENSIONS",
        "AUTHHOST_CONFIG",
    ] {
        c.env_remove(var);
    }
    // The shipped plugins are built next to the binary.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_authhost"))
        .parent()
        .unwrap()
        .to_path_buf();
    // (`cargo test` leaves dependency cdylibs in deps/; `cargo build` also copies them up.)
    c.env(
        "AUTHHOST_PLUGIN_PATH",
        format!("{}:{}", bin_dir.join("deps").display(), bin_dir.display()),
    );
    c
}

/// A configuration in `dir` with a SQLite database there and the given extra TOML.
/// `authhost --config CONFIG ARGS...`, run to its end.
fn with_config(config: &Path, args: &[&str]) -> std::process::Output {
    authhost()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\nlog_format = \"json\"\n\
         [database]\nurl = \"sqlite://{d}/a.db?mode=rwc\"\n\
         [plugins]\nservices = \"example:sample_permission_provider\"\nextensions = \"sample_extension\"\n{extra}",
        d = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn keygen(dir: &Path) {
    let out = authhost()
        .args(["keygen", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keys_toml(dir: &Path) -> String {
    format!(
        "[keys]\nprivate_key_file = \"{d}/private.pem\"\npublic_key_file = \"{d}/public.pem\"\n",
        d = dir.display()
    )
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let private = std::fs::read_to_string(dir.path().join("private.pem")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("public.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites an existing key.
    let again = authhost()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("private.pem")).unwrap(),
        private
    );
}

#[test]
fn keys_lists_each_key_with_its_role_and_names_a_broken_file() {
    let (current, retired, next, published) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for d in [&current, &retired, &next, &published] {
        keygen(d.path());
    }
    let extra = format!(
        "{}retired_private_key_files = [\"{}/private.pem\"]\nnext_private_key_files = [\"{}/private.pem\"]\n\
         extra_public_key_files = [\"{}/public.pem\"]\n",
        keys_toml(current.path()),
        retired.path().display(),
        next.path().display(),
        published.path().display()
    );
    let config = write_config(current.path(), &extra);
    let out = with_config(&config, &["keys"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let roles: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_once(' ').unwrap().1.trim())
        .collect();
    assert_eq!(
        roles,
        ["signing", "retired", "next", "published only"],
        "{text}"
    );
    // Each kid is 43 characters of base64url (a SHA-256 thumbprint), all different.
    let kids: std::collections::HashSet<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(kids.len(), 4);
    assert!(kids.iter().all(|k| k.len() == 43), "{text}");

    std::fs::write(retired.path().join("private.pem"), "not a key").unwrap();
    let out = with_config(&config, &["keys"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keys.retired_private_key_files[0]") && err.contains("not PEM"),
        "{err}"
    );
}

#[test]
fn token_prints_only_a_user_token_for_the_email() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let config = write_config(dir.path(), &keys_toml(dir.path()));
    let out = with_config(
        &config,
        &["token", "--email", "ops@example.org", "--days", "2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout}");
    let payload = lines[0].split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    use md5::Digest;
    assert_eq!(
        claims["userid"],
        hex::encode(md5::Md5::digest(b"ops@example.org"))
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        2 * 86400
    );
    assert_eq!(claims["typ"], "user");
}

#[test]
fn config_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[plugins.config.example]\napi_key = \"k-1234\"\nlevel = 3\n\
         upstream = { url = \"https://perms.example\", ClientSecret = \"s-5678\" }\n\
         rules = [{ user = \"a\", Password = \"p-9012\" }, { user = \"b\", token = { value = \"t-3456\" } }]\n",
    );
    let out = authhost()
        .arg("--config")
        .arg(&config)
        .arg("config")
        .env("AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM", "RS256")
        .env(
            "PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        )
        .env("GITHUB_KEY", "gh-client")
        .env("GITHUB_SECRET", "123456")
        .env("DATABASE_URL", "postgres://user:hunter2@db.example/auth")
        .env("EXTERNAL_ADDRESS", "auth.example.org")
        .env("AUTHHOST_TOKENS__USER_TOKEN_DAYS", "7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for secret in [
        "AAAA", "123456", "hunter2", "k-1234", "s-5678", "p-9012", "t-3456",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    // Plugin settings that do not look secret stay readable.
    for kept in ["https://perms.example", "level = 3", "user = \"b\""] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
    assert!(text.contains("user_token_algorithm = \"RS256\""), "{text}");
    assert!(text.contains("client_id = \"gh-client\""), "{text}");
    assert!(
        text.contains("external_address = \"https://auth.example.org\""),
        "{text}"
    );
    assert!(text.contains("user_token_days = 7"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn configuration_errors_are_all_reported_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = \"nope\"\n[tokens]\nuser_token_algorithm = \"none\"\n[redirects]\nallowed = [\"javascript:alert(1)\"]\n").unwrap();
    let out = authhost()
        .arg("--config")
        .arg(&path)
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.listen",
        "tokens.user_token_algorithm",
        "redirects.allowed[0]",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    let out = authhost()
        .args(["--config", "/nonexistent/authhost.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/authhost.toml"));
}

#[test]
fn start_up_problems_are_reported_together_and_nothing_serves() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[keys]\nprivate_key_file = \"/nonexistent/private.pem\"\n",
    );
    let out = authhost()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("ALLOWED_SERVICES", "example:no_such_plugin")
        .env(
            "DATABASE_URL",
            "sqlite:///proc/authhost-cannot-write-here/a.db?mode=rwc",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "keys.private_key_file",
        "/nonexistent/private.pem",
        "plugins.services",
        "no_such_plugin",
        "database.url",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[test]
fn plugins_lists_the_configured_set() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let config = write_config(dir.path(), &keys_toml(dir.path()));
    let out = with_config(&config, &["plugins"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("example") && text.contains("sample_permission_provider"),
        "{text}"
    );
    assert!(text.contains("sample_extension"), "{text}");
    // Each library in its own worker process (the default), and running.
    let provider = text
        .lines()
        .find(|l| l.starts_with("provider"))
        .unwrap_or_default();
    assert!(provider.contains(" up "), "{text}");
}

#[test]
fn relative_paths_are_taken_from_the_config_file_folder_not_the_working_directory() {
    let conf = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // The plugin lives beside the configuration, found through a relative `plugins.dirs`.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_authhost")).parent().unwrap();
    let library = [
        bin_dir.join("libsample_permission_provider.so"),
        bin_dir.join("deps/libsample_permission_provider.so"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("the sample provider is built beside the binary");
    std::fs::create_dir(conf.path().join("plugins")).unwrap();
    std::fs::copy(
        &library,
        conf.path().join("plugins/libsample_permission_provider.so"),
    )
    .unwrap();
    let config = conf.path().join("config.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[database]\nurl = \"sqlite://data/a.db?mode=rwc\"\n\
         [plugins]\ndirs = [\"plugins\"]\nservices = \"example:sample_permission_provider\"\n\
         [providers.dev]\nenabled = true\n",
    )
    .unwrap();
    let out = authhost()
        .env_remove("AUTHHOST_PLUGIN_PATH")
        .current_dir(elsewhere.path())
        .arg("--config")
        .arg(&config)
        .arg("plugins")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&conf.path().join("plugins").display().to_string()),
        "the plugin was not found beside the configuration:\n{text}"
    );
    // The development key pair and the database went beside the configuration too.
    assert!(
        conf.path().join("data/dev-private.pem").is_file(),
        "{stderr}"
    );
    assert!(conf.path().join("data/a.db").is_file(), "{stderr}");
    let stray: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(
        stray.is_empty(),
        "files written to the working directory: {stray:?}"
    );
}

/// A fresh setup with dev login and no key: `serve` would generate the development pair, so
/// `check` says so as a warning and writes nothing (no key files, no database).
#[test]
fn check_on_a_fresh_dev_setup_writes_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[providers.dev]\nenabled = true\n");
    let out = with_config(&config, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("WARN keys:") && text.contains("dev-private.pem"),
        "{text}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "config.toml")
        .collect();
    assert!(written.is_empty(), "check wrote {written:?}");
}

#[test]
fn check_reports_every_failure_by_name_and_passes_a_good_configuration() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let good = write_config(dir.path(), &keys_toml(dir.path()));
    // No database file yet: serve would create it and apply every migration, so only a
    // warning, and the check itself creates nothing.
    let out = with_config(&good, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("WARN database:") && text.contains("does not exist yet"),
        "{text}"
    );
    assert!(!dir.path().join("a.db").exists(), "check created the file");
    // A URL that does not let SQLite create the file: serve would fail, so check does.
    let other = dir.path().join("other.db");
    let out = authhost()
        .arg("--config")
        .arg(&good)
        .arg("check")
        .env("DATABASE_URL", format!("sqlite://{}", other.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL database:") && text.contains("mode=rwc"),
        "{text}"
    );
    assert!(!other.exists(), "check created the file");
    // A file without the migrations: they are pending (applied at start, so only a warning).
    std::fs::write(dir.path().join("a.db"), b"").unwrap();
    let out = with_config(&good, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("WARN database:") && text.contains("pending migration"),
        "{text}"
    );
    assert!(with_config(&good, &["migrate"]).status.success());
    let out = with_config(&good, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "OK   configuration:",
        "OK   keys:",
        "OK   database:",
        "OK   plugins:",
        "OK   external_address:",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");

    // Each broken part named on its own line, all in one run.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("bad.pem"), "not a key\n").unwrap();
    let broken = write_config(
        bad.path(),
        &format!(
            "[keys]\nprivate_key_file = \"{}\"\n\
             [providers.corp]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:1/\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
            bad.path().join("bad.pem").display()
        ),
    );
    let out = authhost()
        .arg("--config")
        .arg(&broken)
        .arg("check")
        .env(
            "DATABASE_URL",
            "postgres://authhost@127.0.0.1:1/unreachable",
        )
        .env("ALLOWED_SERVICES", "example:no_such_plugin")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    for (line, reason) in [
        ("FAIL keys:", "bad.pem"),
        ("FAIL database:", "127.0.0.1:1"),
        ("FAIL plugins:", "no_such_plugin"),
        ("FAIL providers.corp:", "discovery"),
    ] {
        let found = text.lines().find(|l| l.starts_with(line));
        assert!(
            found.is_some_and(|l| l.contains(reason)),
            "{line} … {reason} missing:\n{text}"
        );
    }
    // The parts that work still say so.
    assert!(text.contains("OK   configuration:"), "{text}");

    // A configuration that does not load is a FAIL line too.
    let out = authhost()
        .arg("--config")
        .arg(&broken)
        .arg("check")
        .env("AUTHHOST_TOKENS__USER_TOKEN_DAYS", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL configuration: tokens.user_token_days"),
        "{text}"
    );
}

#[test]
fn hooks_lists_pending_and_failed_events_and_requeues() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = with_config(&config, &["hooks"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("id") && text.lines().count() == 1,
        "an empty outbox: {text}"
    );
    let out = with_config(&config, &["hooks", "retry"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0 event(s) requeued"
    );
}

#[test]
fn migrate_prepares_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = with_config(&config, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("a.db").exists());
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[providers.dev]\nenabled = true\n");
    let mut child = authhost()
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    let mut warned = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        warned |= line.contains("DEV LOGIN IS ON") || line.contains("NO SIGNING KEY CONFIGURED");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["fields"]["message"] == "authhost ready"
        {
            addr = v["fields"]["addr"].as_str().map(str::to_string);
            break;
        }
    }
    let addr = addr.expect("ready line with the address");
    assert!(
        warned,
        "dev login and the generated key must be announced loudly"
    );
    assert!(
        dir.path().join("dev-private.pem").exists(),
        "dev key generated into data_dir"
    );
    let answer = http_get(&addr, "/auth/check");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"authenticated\":false"), "{answer}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "authhost did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
}

/// A server started from the binary, its address, and its log lines as they come.
struct Served {
    child: std::process::Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    fn start(config: &Path) -> Served {
        let mut child = authhost()
            .arg("--config")
            .arg(config)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
            lines,
        };
        let ready = served.wait_for("authhost ready");
        let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
        served.addr = v["fields"]["addr"].as_str().unwrap().to_string();
        served
    }

    /// The next log line containing `needle` (panics after 15 s).
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with `{needle}`"),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_swaps_the_plugin_set_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let write = |services: &str, extra: &str| {
        let toml = format!("{}{}", keys_toml(dir.path()), extra);
        let path = write_config(dir.path(), &toml);
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "services = \"example:sample_permission_provider\"",
            &format!("services = \"{services}\""),
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = write("r:sample_permission_provider", "");
    let served = Served::start(&config);
    let out = with_config(&config, &["token", "--email", "hup@example.org"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let ask = || {
        http_get(
            &served.addr,
            &format!("/auth/authorize?service=r&jwt={token}"),
        )
    };
    assert!(ask().contains("provider-token"), "{}", ask());

    write(
        "r:static_permissions",
        "[plugins.config.r]\ndefault = { swapped = true }\n",
    );
    served.signal("HUP");
    served.wait_for("plugins reloaded");
    assert!(ask().contains("\"swapped\":true"), "{}", ask());

    write("r:no_such_plugin", "");
    served.signal("HUP");
    let failure = served.wait_for("reload failed");
    assert!(failure.contains("\"problems\":1"), "{failure}");
    // Then the problem itself, once, on a line of its own.
    let problem = served.wait_for("reload: ");
    assert!(problem.contains("no_such_plugin"), "{problem}");
    assert!(
        ask().contains("\"swapped\":true"),
        "the old set must stay: {}",
        ask()
    );
}

#[test]
fn plugin_logs_reach_the_host_log() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    // sample_extension without a `path` logs each hook through the host.
    let config = write_config(dir.path(), &keys_toml(dir.path()));
    let out = with_config(&config, &["token", "--email", "log@example.org"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("on_new_user"))
        .unwrap_or_else(|| panic!("no hook line in:\n{err}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["target"], "plugin");
    assert_eq!(v["fields"]["plugin"], "sample_extension");
    assert_eq!(v["level"], "INFO");
    // At info level the hook names the user by id only: no e-mail (or other profile field)
    // in the host's log.
    let message = v["fields"]["message"].as_str().unwrap();
    let userid = {
        use md5::{Digest, Md5};
        hex::encode(Md5::digest(b"log@example.org"))
    };
    assert!(message.contains(&userid), "{message}");
    assert!(
        !err.contains("log@example.org"),
        "e-mail in the log:\n{err}"
    );
}
