//! Python modules as plugins, through the bridge (`plugins/python_bridge`): real interpreters,
//! real modules, real worker processes. Compiled only with `--features python` and run by
//! `bash plugins/python_bridge/test.sh`, which builds the bridge and the test venv first; asked
//! to run without them, every test fails, naming what is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use authhost_tests::{Options, TestServer, md5_hex, plugin_dir, plugin_options};
use serde_json::{Value, json};

/// Where the built bridge libraries are (`AUTHHOST_TEST_PYTHON_BRIDGE`, else the bridge's own
/// release folder).
fn bridge_dir() -> PathBuf {
    let dir = std::env::var_os("AUTHHOST_TEST_PYTHON_BRIDGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("plugins/python_bridge/target/release"));
    for lib in ["libpython_provider.so", "libpython_extension.so"] {
        assert!(
            dir.join(lib).is_file(),
            "{lib} is not in {}: run `bash plugins/python_bridge/test.sh` (it builds the bridge)",
            dir.display()
        );
    }
    dir
}

/// The test venv, with the original's wheel and PyJWT (`AUTHHOST_TEST_PYTHON_VENV`, else
/// `target/python-test-venv`).
fn venv() -> PathBuf {
    let venv = std::env::var_os("AUTHHOST_TEST_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/python-test-venv"));
    assert!(
        venv.join("bin/python").is_file(),
        "no venv at {}: run `bash plugins/python_bridge/test.sh` (it makes one)",
        venv.display()
    );
    venv
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The fixture modules, copied into a folder of the test's own.
fn modules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = workspace().join("tests/fixtures/python");
    for entry in std::fs::read_dir(&fixtures).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

/// Services and extensions named as the original's variables do, Python configured with the
/// venv and `mods`; only the bridge on the plugin path unless `rust_plugins`.
fn options(services: &str, extensions: &str, mods: &Path, rust_plugins: bool) -> Options {
    let extra = format!(
        "[plugins.python]\nvenv = \"{}\"\npath = [\"{}\"]\n",
        venv().display(),
        mods.display()
    );
    let mut opts = plugin_options(services, extensions, &extra);
    let mut path = bridge_dir().display().to_string();
    if rust_plugins {
        path = format!("{path}:{}", plugin_dir().display());
    }
    for (key, value) in [
        ("AUTHHOST_PLUGIN_PATH", path),
        ("AUTHHOST_PLUGINS__DIRS", "[]".to_string()),
        ("AUTHHOST_PLUGINS__HOOK_RETRY_MS", "50".to_string()),
        ("AUTHHOST_PLUGINS__HOOK_POLL_MS", "20".to_string()),
        ("AUTHHOST_PLUGINS__CALL_TIMEOUT_MS", "5000".to_string()),
    ] {
        opts.env.insert(key.into(), value);
    }
    opts
}

/// The plugin name an alias is served by, as `authhost plugins` and the logs show it.
fn served_by(s: &TestServer, alias: &str) -> String {
    s.app
        .plugins()
        .providers()
        .into_iter()
        .find(|(a, _)| *a == alias)
        .map(|(_, info)| info.name.clone())
        .unwrap_or_else(|| panic!("no provider for {alias}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_originals_sample_provider_answers_and_its_verifyer_accepts_the_token() {
    let mods = modules();
    let s = TestServer::start_with(options(
        "example:sample_permission_provider",
        "",
        mods.path(),
        false,
    ))
    .await;
    assert_eq!(
        served_by(&s, "example"),
        "python:sample_permission_provider"
    );
    let user = s.dev_login("orig@example.org", "Orig").await;
    let uid = md5_hex("orig@example.org");
    let answer = s.authorize(&user, "example").await;
    let expected = json!({ "provider-token": format!("example-{uid}") });
    assert_eq!(answer["permissions"], expected);

    // Token exchange hands out the same permissions.
    let exchanged: Value = s
        .client
        .post(s.url("token"))
        .form(&authhost_tests::exchange_form(
            &user,
            authhost_tests::TOKEN_TYPE_JWT,
            "example",
        ))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = exchanged["access_token"].as_str().expect("access_token");
    assert_eq!(authhost_tests::jwt_parts(token).1["permissions"], expected);

    // The original's own client library verifies the token with the public key.
    let public_key = reqwest::get(s.url("public-key"))
        .await
        .expect("public-key")
        .text()
        .await
        .expect("text");
    let out = std::process::Command::new(venv().join("bin/python"))
        .args([
            "-c",
            "import json, sys\nfrom dgp_oauth2.lib import Verifyer\n\
             claims = Verifyer(public_key=sys.argv[1]).extract_permissions(sys.argv[2])\n\
             print(json.dumps(claims['permissions'] if claims else None))",
            &public_key,
            token,
        ])
        // Importing the original's package reads its service settings, as in its clients.
        .env("PRIVATE_KEY", "unused by the client")
        .env("PUBLIC_KEY", &public_key)
        .env("DATABASE_URL", "sqlite://")
        .output()
        .expect("python");
    assert!(out.status.success(), "{out:?}");
    let verified: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verified, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_library_of_the_same_name_wins_over_a_module() {
    let mods = modules();
    let s = TestServer::start_with(options(
        "example:sample_permission_provider",
        "",
        mods.path(),
        true,
    ))
    .await;
    assert_eq!(served_by(&s, "example"), "sample_permission_provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_imports_packages_from_the_venv_and_c_modules_of_the_standard_library() {
    let mods = modules();
    let s = TestServer::start_with(options("v:uses_venv", "", mods.path(), false)).await;
    let user = s.dev_login("venv@example.org", "Venv").await;
    let permissions = &s.authorize(&user, "v").await["permissions"];
    assert_eq!(permissions["jwt"], "2.8.0", "{permissions}");
    assert_eq!(permissions["ssl"], "OpenSSL", "{permissions}");
    assert_eq!(permissions["sqlite"], 3, "{permissions}");
    assert_eq!(permissions["decimal"], "3.30", "{permissions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_answers_exceptions_and_an_abort_fail_closed_and_the_rest_keeps_serving() {
    let mods = modules();
    let wrong = ["raises", "set", "none", "list", "datetime", "nan"];
    let mut services: Vec<String> = wrong.iter().map(|a| format!("{a}:misbehaving")).collect();
    services.push("fine:misbehaving".into());
    services.push("keys:misbehaving".into());
    services.push("mapping:misbehaving".into());
    services.push("abort:aborting".into());
    services.push("example:sample_permission_provider".into());
    let s = TestServer::start_with(options(&services.join(";"), "", mods.path(), false)).await;
    let user = s.dev_login("wrong@example.org", "Wrong").await;
    for alias in wrong {
        let answer = s.authorize(&user, alias).await;
        assert_eq!(answer["permissions"], json!({}), "{alias}: {answer}");
        let sample =
            format!("authhost_plugin_calls_total{{service=\"{alias}\",outcome=\"error\"}}");
        assert_eq!(s.metric(&sample).await, 1.0, "{alias}");
    }
    assert_eq!(
        s.authorize(&user, "fine").await["permissions"],
        json!({ "fine": true })
    );
    // What json.dumps accepted, the original's answer, keeps its meaning.
    assert_eq!(
        s.authorize(&user, "keys").await["permissions"],
        json!({ "1": true, "null": 0, "false": "f", "nested": { "a": [1, 2.5, null, [3, "t"]] }, "big": 9223372036854775808u64 })
    );
    assert_eq!(
        s.authorize(&user, "mapping").await["permissions"],
        json!({ "read": true })
    );
    // os.abort() costs that module's worker only, again and again.
    for _ in 0..3 {
        let answer = s.authorize(&user, "abort").await;
        assert_eq!(answer["permissions"], json!({}), "{answer}");
        assert_eq!(
            s.authorize(&user, "fine").await["permissions"],
            json!({ "fine": true })
        );
        let uid = md5_hex("wrong@example.org");
        assert_eq!(
            s.authorize(&user, "example").await["permissions"],
            json!({ "provider-token": format!("example-{uid}") })
        );
    }
    assert!(
        s.metric("authhost_plugin_calls_total{service=\"abort\",outcome=\"crash\"}")
            .await
            >= 1.0
    );
}

/// The lines `recording_hooks` wrote, once there are `n`, within `within`.
async fn recorded(mods: &Path, n: usize, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(mods.join("hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record line"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < within,
            "{} of {n}: {lines:?}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_reach_the_module_once_each_with_a_datetime_and_a_raising_hook_is_retried() {
    let mods = modules();
    let s = TestServer::start_with(options("", "recording_hooks", mods.path(), false)).await;
    let uid = md5_hex("hooks@example.org");
    s.dev_login("hooks@example.org", "Hooks").await;
    s.dev_login("hooks@example.org", "Hooks").await;
    // One on_new_user, two on_user_login (each delivered on its third attempt).
    let lines = recorded(mods.path(), 3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines_after = recorded(mods.path(), 3, Duration::from_secs(1)).await;
    assert_eq!(
        lines.len(),
        lines_after.len(),
        "no second delivery: {lines_after:?}"
    );
    let new_users: Vec<_> = lines
        .iter()
        .filter(|l| l["hook"] == "on_new_user")
        .collect();
    let logins: Vec<_> = lines
        .iter()
        .filter(|l| l["hook"] == "on_user_login")
        .collect();
    assert_eq!(new_users.len(), 1, "{lines:?}");
    assert_eq!(new_users[0]["new"], true);
    assert_eq!(logins.len(), 2, "{lines:?}");
    for line in &lines {
        assert_eq!(line["id"], uid.as_str());
        assert_eq!(line["join_date_type"], "datetime.datetime", "{line}");
        assert_eq!(line["join_year"].as_str().map(str::len), Some(4), "{line}");
        for key in [
            "id",
            "provider_id",
            "username",
            "name",
            "email",
            "avatar_url",
            "join_date",
            "hook_event",
        ] {
            assert!(
                line["keys"]
                    .as_array()
                    .is_some_and(|k| k.contains(&json!(key))),
                "{key} missing: {line}"
            );
        }
    }
    for login in &logins {
        assert_eq!(
            login["attempt"], 3,
            "delivered by the second retry: {login}"
        );
    }
    assert_ne!(logins[0]["event"], logins[1]["event"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_module_is_picked_up_by_a_reload_under_load_without_a_failed_request() {
    let mods = modules();
    let opts = options("ver:versioned", "", mods.path(), false);
    let s = std::sync::Arc::new(TestServer::start_with(opts.clone()).await);
    let user = s.dev_login("reload@example.org", "Reload").await;
    assert_eq!(
        s.authorize(&user, "ver").await["permissions"],
        json!({ "version": 1 })
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (s, user, stop) = (s.clone(), user.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = s
                    .client
                    .get(s.url(&format!("authorize?jwt={user}&service=ver")))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.expect("json");
                seen.push(body["permissions"]["version"].as_i64().unwrap_or(0));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let file = mods.path().join("versioned.py");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("VERSION = 1", "VERSION = 2")).expect("edit");
    // What `kill -HUP` does: read the configuration again and reload the plugins.
    let config = authhost_tests::test_config(s.dir.path(), &s.db.url, &opts);
    s.app.reload_plugins(config).await.expect("reload");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = Vec::new();
    for task in load {
        answers.extend(task.await.expect("load task"));
    }
    assert!(answers.len() > 20, "{} requests", answers.len());
    assert!(
        answers.iter().all(|v| *v == 1 || *v == 2),
        "every answer from the old or the new module: {answers:?}"
    );
    assert_eq!(answers.last(), Some(&2), "the edit is served");
    assert!(answers.contains(&1));
}

async fn startup_errors(options: &Options) -> String {
    match authhost_tests::try_build(options).await {
        Ok(_) => panic!("started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_up_errors_name_the_module_and_every_place_looked() {
    let mods = modules();
    let missing = startup_errors(&options("m:acme.nowhere", "", mods.path(), false)).await;
    for needle in [
        "plugins.services: `m:acme.nowhere`",
        "libacme.nowhere.so",
        &bridge_dir().display().to_string(),
        "No module named 'acme'",
        &mods.path().display().to_string(),
        "site-packages",
    ] {
        assert!(missing.contains(needle), "{needle} not in: {missing}");
    }

    let no_function =
        startup_errors(&options("n:no_get_permissions", "", mods.path(), false)).await;
    assert!(
        no_function.contains("Python module `no_get_permissions` has no get_permissions"),
        "{no_function}"
    );

    // A venv made for another Python.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        other.path().join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 3.9.18\n",
    )
    .expect("write");
    let mut opts = options("v:uses_venv", "", mods.path(), false);
    opts.extra_toml = format!(
        "[plugins.python]\nvenv = \"{}\"\npath = [\"{}\"]\n",
        other.path().display(),
        mods.path().display()
    );
    let version = startup_errors(&opts).await;
    assert!(
        version.contains("is for Python 3.9, but this bridge runs Python 3.11"),
        "{version}"
    );

    // In process, a module is refused with the reason.
    let mut opts = options("v:uses_venv", "", mods.path(), false);
    opts.env
        .insert("AUTHHOST_PLUGINS__ISOLATION".into(), "in_process".into());
    let in_process = startup_errors(&opts).await;
    assert!(
        in_process.contains("needs plugins.isolation = \"process\""),
        "{in_process}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugins_call_shows_a_python_answer_and_a_python_traceback() {
    let mods = modules();
    let s = TestServer::start().await;
    s.dev_login("call@example.org", "Call").await;
    let config = s.dir.path().join("call.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[plugins.python]\nvenv = \"{}\"\npath = [\"{}\"]\n",
            authhost_tests::base_toml(s.dir.path(), &s.db.url),
            venv().display(),
            mods.path().display()
        ),
    )
    .expect("write");
    let (private, public) = authhost_tests::key_pair(0);
    let call = |service: &str| {
        authhost_tests::authhost_command()
            .arg("--config")
            .arg(&config)
            .args(["plugins", "call", service, "--user", "call@example.org"])
            .env("PRIVATE_KEY", private)
            .env("PUBLIC_KEY", public)
            .env("AUTHHOST_PLUGIN_PATH", bridge_dir())
            .env("AUTHHOST_PLUGINS__DIRS", "[]")
            .env("ALLOWED_SERVICES", "fine:misbehaving;raises:misbehaving")
            .env("AUTHHOST_LOG", "info")
            .output()
            .expect("authhost")
    };
    let ok = call("fine");
    assert!(ok.status.success(), "{ok:?}");
    let answer: Value = serde_json::from_slice(&ok.stdout).expect("JSON");
    assert_eq!(answer, json!({ "fine": true }));
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(stderr.contains("fine: ok in "), "{stderr}");
    // print and logging reach authhost's log under the module's name.
    for needle in [
        "misbehaving: misbehaving asked for fine",
        "misbehaving: answering normally for fine",
    ] {
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }

    let failed = call("raises");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    for needle in [
        "raises: failed in ",
        "Traceback (most recent call last):",
        "misbehaving.py\", line",
        "ValueError: no permissions for you",
    ] {
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_module_answers_as_its_readme_says() {
    let example = workspace().join("examples/python-provider");
    let s = TestServer::start_with(options("datasets:acme_permissions", "", &example, false)).await;
    let user = s.dev_login("ada@example.org", "Ada").await;
    assert_eq!(
        s.authorize(&user, "datasets").await["permissions"],
        json!({ "read": true, "service": "datasets" })
    );
}
