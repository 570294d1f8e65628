//! Plugins in worker processes (`plugins.isolation = "process"`, the default): real `.so`
//! fixtures that abort, segfault, exit, hang and allocate without end, as providers and as an
//! extension. The server stays up, the call fails closed, the worker is restarted and serves
//! again, and the metrics say why.
//!
//! Each test loads its own copy of the fixture under its own file name, so the per-plugin
//! metrics (process-wide in this binary) are its own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use authhost_tests::{Options, TestServer, plugin_dir, plugin_options};
use serde_json::{Value, json};

/// A copy of fixture library `fixture` named `lib<name>.so` in `dir`.
fn copy_fixture(dir: &tempfile::TempDir, fixture: &str, name: &str) -> PathBuf {
    let path = dir.path().join(format!("lib{name}.so"));
    std::fs::copy(plugin_dir().join(format!("lib{fixture}.so")), &path).expect("copy fixture");
    path
}

fn options(services: &str, extensions: &str, extra_toml: &str, timeout_ms: u64) -> Options {
    let mut opts = plugin_options(services, extensions, extra_toml);
    opts.env.insert(
        "AUTHHOST_PLUGINS__CALL_TIMEOUT_MS".into(),
        timeout_ms.to_string(),
    );
    // Bounds the `allocate` fixture (and any worker) to 512 MiB of address space.
    opts.env
        .insert("AUTHHOST_PLUGINS__WORKER_MEMORY_MB".into(), "512".into());
    opts
}

/// Asks `service` until it answers with `mode` (its worker is back), at most `within`.
async fn served_again(s: &TestServer, token: &str, service: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let body = s.authorize(token, service).await;
        if body["permissions"]["mode"] == "echo" {
            return started.elapsed();
        }
        if started.elapsed() >= within {
            let text = s.metrics_text().await;
            let plugin_lines: Vec<&str> = text.lines().filter(|l| l.contains("plugin")).collect();
            panic!(
                "{service} not served again within {within:?}: {body}\n{}",
                plugin_lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_takes_its_process_down_fails_closed_and_is_served_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = copy_fixture(&dir, "fixture_provider", "crashing_provider");
    let modes = ["abort", "segfault", "exit", "allocate"];
    let mut services: Vec<String> = modes
        .iter()
        .map(|m| format!("m_{m}:{}", lib.display()))
        .collect();
    services.push(format!("m_ok:{}", lib.display()));
    let extra: String = modes
        .iter()
        .map(|m| format!("[plugins.config.m_{m}]\nmode = \"{m}\"\n"))
        .collect();
    authhost::logging::init(authhost::config::LogFormat::Text, false);
    let s = TestServer::start_with(options(&services.join(";"), "", &extra, 2000)).await;
    let token = s.dev_login("crash@example.org", "Crash").await;
    assert_eq!(
        s.authorize(&token, "m_ok").await["permissions"]["mode"],
        "echo"
    );

    let expected_reason = [
        ("abort", "signal"),
        ("segfault", "signal"),
        ("exit", "exit"),
        ("allocate", "signal"),
    ];
    for (mode, reason) in expected_reason {
        let alias = format!("m_{mode}");
        let restarts = format!(
            "authhost_plugin_worker_restarts_total{{plugin=\"crashing_provider\",reason=\"{reason}\"}}"
        );
        let before = s.metric(&restarts).await;
        let body = s.authorize(&token, &alias).await;
        assert_eq!(body["permissions"], json!({}), "{mode}: fails closed");
        assert!(
            body["token"].is_string(),
            "{mode}: still a signed (empty) token"
        );
        let crashed =
            format!("authhost_plugin_calls_total{{service=\"{alias}\",outcome=\"crash\"}}");
        assert_eq!(s.metric(&crashed).await, 1.0, "{crashed}");
        // The host itself stays ready while the worker restarts.
        let ready = s
            .client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .expect("GET /readyz");
        assert_eq!(ready.status(), 200, "{mode}: /readyz while restarting");
        let took = served_again(&s, &token, "m_ok", Duration::from_secs(10)).await;
        assert!(
            s.metric(&restarts).await > before,
            "{mode}: {restarts} counts it"
        );
        eprintln!("{mode}: served again after {took:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_answers_at_its_deadline_and_its_worker_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = copy_fixture(&dir, "fixture_provider", "hanging_provider");
    let services = format!("m_hang:{0};m_ok:{0}", lib.display());
    let mut opts = options(
        &services,
        "",
        "[plugins.config.m_hang]\nmode = \"hang\"\n",
        400,
    );
    // Two threads per worker: one stuck call is half of them.
    opts.env
        .insert("AUTHHOST_PLUGINS__MAX_CONCURRENT_CALLS".into(), "2".into());
    let s = TestServer::start_with(opts).await;
    let token = s.dev_login("hang@example.org", "Hang").await;
    let started = Instant::now();
    let body = s.authorize(&token, "m_hang").await;
    let took = started.elapsed();
    assert_eq!(body["permissions"], json!({}));
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "answered at the deadline, took {took:?}"
    );
    assert_eq!(
        s.metric("authhost_plugin_calls_total{service=\"m_hang\",outcome=\"timeout\"}")
            .await,
        1.0
    );
    // Its thread stays stuck past another deadline: the worker is killed and replaced.
    let restarted =
        "authhost_plugin_worker_restarts_total{plugin=\"hanging_provider\",reason=\"hung\"}";
    let waited = Instant::now();
    while s.metric(restarted).await < 1.0 {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the hung worker was not replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served_again(&s, &token, "m_ok", Duration::from_secs(10)).await;
    assert_eq!(s.metric(restarted).await, 1.0, "replaced once");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_that_aborts_costs_its_hook_not_the_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = copy_fixture(&dir, "fixture_extension", "crashing_extension");
    let name = lib.display().to_string();
    let extra = format!("[plugins.config.\"{name}\"]\nmode = \"abort\"\n");
    let s = TestServer::start_with(options("", &name, &extra, 2000)).await;
    // Every login fires on_new_user / on_user_login; the extension aborts on each.
    for i in 0..3 {
        let token = s.dev_login(&format!("ext{i}@example.org"), "Ext").await;
        let check = s.get_json(&format!("check?jwt={token}")).await;
        assert_eq!(check["authenticated"], true, "login {i} still completes");
    }
    let crashes = s
        .metric("authhost_hook_calls_total{extension=\"fixture_extension\",hook=\"on_new_user\",outcome=\"crash\"}")
        .await;
    assert!(crashes >= 1.0, "hook crashes are counted, got {crashes}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_isolation_keeps_todays_behaviour() {
    let mut opts = options(
        "m_panic_in_process:fixture_provider;m_ok:fixture_provider",
        "",
        "[plugins.config.m_panic_in_process]\nmode = \"panic\"\nlabel = \"in-process\"\n",
        2000,
    );
    opts.env
        .insert("AUTHHOST_PLUGINS__ISOLATION".into(), "in_process".into());
    let s = TestServer::start_with(opts).await;
    let token = s.dev_login("inproc@example.org", "In").await;
    assert_eq!(
        s.authorize(&token, "m_panic_in_process").await["permissions"],
        json!({})
    );
    assert_eq!(
        s.authorize(&token, "m_ok").await["permissions"]["mode"],
        "echo"
    );
    let plugins = s.app.plugins();
    assert!(
        plugins.entries().all(|e| e.worker().is_none()),
        "no worker processes in_process"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_behind_a_busy_worker_time_out_without_killing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = copy_fixture(&dir, "fixture_provider", "busy_provider");
    let services = format!("m_slow:{}", lib.display());
    let extra = "[plugins.config.m_slow]\nmode = \"sleep\"\nsleep_ms = 300\n";
    let mut opts = options(&services, "", extra, 1000);
    opts.env
        .insert("AUTHHOST_PLUGINS__MAX_CONCURRENT_CALLS".into(), "2".into());
    opts.env.insert(
        "AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE".into(),
        "false".into(),
    );
    let s = TestServer::start_with(opts).await;
    let token = s.dev_login("busy@example.org", "Busy").await;
    // 16 calls of 300 ms on 2 threads: the last ones wait past their deadline for a slot.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (url, client) = (
                s.url(&format!("authorize?jwt={token}&service=m_slow")),
                s.client.clone(),
            );
            tokio::spawn(async move {
                let body: Value = client
                    .get(url)
                    .send()
                    .await
                    .expect("send")
                    .json()
                    .await
                    .expect("json");
                body["permissions"]["mode"] == "sleep"
            })
        })
        .collect();
    let mut answered = 0;
    for call in calls {
        answered += usize::from(call.await.expect("joined"));
    }
    assert!(
        (4..16).contains(&answered),
        "{answered} of 16 answered in time"
    );
    assert!(
        s.metric("authhost_plugin_calls_total{service=\"m_slow\",outcome=\"timeout\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        s.metric("authhost_plugin_worker_restarts_total{plugin=\"busy_provider\",reason=\"hung\"}")
            .await,
        0.0,
        "waiting for a busy worker is not hanging in it"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_flooding_its_output_is_still_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = copy_fixture(&dir, "fixture_provider", "loud_provider");
    let services = format!("m_spew:{}", lib.display());
    let extra = "[plugins.config.m_spew]\nmode = \"spew\"\n";
    let mut opts = options(&services, "", extra, 5000);
    opts.env.insert(
        "AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE".into(),
        "false".into(),
    );
    let s = TestServer::start_with(opts).await;
    let token = s.dev_login("loud@example.org", "Loud").await;
    for round in 0..3 {
        let body = s.authorize(&token, "m_spew").await;
        assert_eq!(body["permissions"]["mode"], "spew", "round {round}: {body}");
    }
    assert_eq!(
        s.metric(
            "authhost_plugin_worker_restarts_total{plugin=\"loud_provider\",reason=\"signal\"}"
        )
        .await,
        0.0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_library_gets_a_new_worker_and_an_unchanged_one_keeps_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let changing = copy_fixture(&dir, "static_permissions", "changing");
    let steady = copy_fixture(&dir, "fixture_provider", "steady");
    let services = format!("r:{};e:{}", changing.display(), steady.display());
    let extra = "[plugins.config.r]\ndefault = { build = 1 }\n";
    let s = TestServer::start_with(options(&services, "", extra, 2000)).await;
    let token = s.dev_login("rebuilt@example.org", "Rebuilt").await;
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "build": 1 })
    );
    let worker_of = |alias: &str| {
        s.app
            .plugins()
            .entries()
            .find(|e| e.name == alias)
            .and_then(|e| e.worker().cloned())
            .expect("a worker")
    };
    let (r_before, e_before) = (worker_of("r"), worker_of("e"));

    // A new build replaces the file (written aside, renamed over it); then a reload.
    let staged = dir.path().join("staged.so");
    std::fs::copy(
        plugin_dir().join("libsample_permission_provider.so"),
        &staged,
    )
    .expect("copy");
    std::fs::rename(&staged, &changing).expect("rename");
    let config = authhost_tests::test_config(
        s.dir.path(),
        &s.db.url,
        &options(&services, "", extra, 2000),
    );
    s.app.reload_plugins(config).await.expect("reload");
    let uid = authhost_tests::md5_hex("rebuilt@example.org");
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "provider-token": format!("r-{uid}") }),
        "the new build answers"
    );
    assert!(
        !std::sync::Arc::ptr_eq(&r_before, &worker_of("r")),
        "a changed file gets a new worker"
    );
    assert!(
        std::sync::Arc::ptr_eq(&e_before, &worker_of("e")),
        "an unchanged file keeps its worker"
    );
    assert_eq!(
        s.authorize(&token, "e").await["permissions"]["mode"],
        "echo"
    );
    s.stop().await;
}
