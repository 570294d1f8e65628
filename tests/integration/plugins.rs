//! Plugins as real shared libraries loaded through the ABI: answers through the HTTP path,
//! misbehaving providers, load failures, hooks, reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_plugin_api::INTERFACE_VERSION;
use authhost_tests::{
    TestServer, jwt_parts, md5_hex, plugin_dir, plugin_options, test_config, try_build,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_answers_travel_the_whole_http_path() {
    let s = TestServer::start_with(plugin_options(
        "alpha:fixture_provider; beta:fixture-provider; perms:static_permissions",
        "",
        r#"
[plugins.config.alpha]
label = "A"
[plugins.config.beta]
label = { nested = [1, 2] }
[plugins.config.perms]
default = { read = false }
rules = [
  { email_domain = "example.org", permissions = { read = true, quota = 5 } },
  { username = "chief", permissions = { admin = true } },
]
"#,
    ))
    .await;
    let token = s.dev_login("x@example.org", "X").await;
    let uid = md5_hex("x@example.org");

    let a = s.authorize(&token, "alpha").await;
    assert_eq!(
        a["permissions"],
        json!({ "mode": "echo", "service": "alpha", "userid": uid, "label": "A" })
    );
    let (_, claims) = jwt_parts(a["token"].as_str().unwrap());
    assert_eq!(
        claims["permissions"], a["permissions"],
        "the token carries the plugin's answer"
    );
    // The same file under another alias: the alias is passed as `service`, with its own config.
    let b = s.authorize(&token, "beta").await;
    assert_eq!(
        b["permissions"],
        json!({ "mode": "echo", "service": "beta", "userid": uid, "label": { "nested": [1, 2] } })
    );

    assert_eq!(
        s.authorize(&token, "perms").await["permissions"],
        json!({ "read": true, "quota": 5 })
    );
    s.client
        .post(s.url(&format!("update?jwt={token}&username=chief")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.authorize(&token, "perms").await["permissions"],
        json!({ "read": true, "quota": 5, "admin": true }),
        "rules see the username"
    );
    let other = s.dev_login("y@elsewhere.net", "Y").await;
    assert_eq!(
        s.authorize(&other, "perms").await["permissions"],
        json!({ "read": false })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_providers_answer_empty_and_are_counted() {
    let mut opts = plugin_options(
        "m_panic:fixture_provider;m_sleep:fixture_provider;m_list:fixture_provider;m_error:fixture_provider;m_ok:fixture_provider",
        "",
        r#"
[plugins.config.m_panic]
mode = "panic"
[plugins.config.m_sleep]
mode = "sleep"
sleep_ms = 3000
[plugins.config.m_list]
mode = "not_object"
[plugins.config.m_error]
mode = "error"
"#,
    );
    opts.env
        .insert("AUTHHOST_PLUGINS__CALL_TIMEOUT_MS".into(), "300".into());
    let s = TestServer::start_with(opts).await;
    let token = s.dev_login("z@example.org", "Z").await;
    for (alias, outcome) in [
        ("m_panic", "panic"),
        ("m_sleep", "timeout"),
        ("m_list", "invalid"),
        ("m_error", "error"),
    ] {
        let body = s.authorize(&token, alias).await;
        assert_eq!(body["permissions"], json!({}), "{alias}");
        assert_eq!(body["service"], alias);
        assert!(
            body["token"].is_string(),
            "{alias}: still a signed (empty) token"
        );
        let sample =
            format!("authhost_plugin_calls_total{{service=\"{alias}\",outcome=\"{outcome}\"}}");
        assert_eq!(s.metric(&sample).await, 1.0, "{sample}");
        // The host keeps serving, and well-behaved plugins keep answering.
        assert_eq!(
            s.authorize(&token, "m_ok").await["permissions"]["mode"],
            "echo"
        );
    }
    // A second panic is contained just like the first.
    assert_eq!(
        s.authorize(&token, "m_panic").await["permissions"],
        json!({})
    );
    assert_eq!(
        s.metric("authhost_plugin_calls_total{service=\"m_panic\",outcome=\"panic\"}")
            .await,
        2.0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_failures_are_reported_together_at_start() {
    let dir = plugin_dir();
    let opts = plugin_options(
        "a:wrong_interface;b:no_such_plugin;c:/nonexistent/libnope.so;d:not_a_plugin;e:sample_extension;f:fixture_provider",
        "sample_permission_provider",
        "[plugins.config.f]\nmode = \"fail_new\"\n",
    );
    let errors = match try_build(&opts).await {
        Ok(_) => panic!("a broken plugin set started"),
        Err(e) => e.0,
    };
    let all = errors.join("\n");
    assert_eq!(errors.len(), 7, "{all}");
    let wrong = dir.join("libwrong_interface.so").display().to_string();
    let expect = [
        // The fixture reports this host's version + 98.
        format!(
            "{wrong}: built for plugin interface version {}, this host expects version {}",
            INTERFACE_VERSION + 98,
            INTERFACE_VERSION
        ),
        "plugin `no_such_plugin` not found: no libno_such_plugin.so in".to_string(),
        "/nonexistent/libnope.so: no such file".to_string(),
        format!("{}: not an authhost plugin", dir.join("libnot_a_plugin.so").display()),
        "libsample_extension.so: is a extension plugin, but is named where a permission provider is expected".to_string(),
        "libfixture_provider.so: refused its configuration: configured to refuse".to_string(),
        "libsample_permission_provider.so: is a permission provider plugin, but is named where a extension is expected".to_string(),
    ];
    for needle in expect {
        assert!(all.contains(&needle), "missing `{needle}` in:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_fire_once_per_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.jsonl");
    let s = TestServer::start_with(plugin_options(
        "",
        "audit_log;fixture_extension;sample_extension",
        &format!(
            "[plugins.config.audit_log]\npath = \"{p}\"\n[plugins.config.sample_extension]\npath = \"{p}\"\n\
             [plugins.config.fixture_extension]\nmode = \"panic\"\n",
            p = log.display()
        ),
    ))
    .await;
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Each event as (audit_log event, sample_extension hook) pairs: the order of
    // INSTALLED_EXTENSIONS, the panicking extension in between changing nothing.
    let events = |lines: &[Value]| -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| match l.get("hook") {
                Some(h) => ("sample".to_string(), h.as_str().unwrap().to_string()),
                None => (
                    "audit".to_string(),
                    l["event"].as_str().unwrap().to_string(),
                ),
            })
            .collect()
    };
    let pair = |a: &str, h: &str| {
        vec![
            ("audit".to_string(), a.to_string()),
            ("sample".to_string(), h.to_string()),
        ]
    };

    let token = s.dev_login("hook@example.org", "Hook").await;
    let mut expected = [
        pair("new_user", "on_new_user"),
        pair("login", "on_user_login"),
    ]
    .concat();
    assert_eq!(events(&read()), expected);
    let lines = read();
    assert_eq!(
        lines[1]["user"]["new"], true,
        "on_new_user gets \"new\": true"
    );
    assert_eq!(lines[1]["user"]["email"], "hook@example.org");
    assert!(lines[3]["user"].get("new").is_none());
    assert_eq!(lines[0]["userid"], md5_hex("hook@example.org").as_str());
    assert_eq!(lines[0]["provider"], "dev");

    s.dev_login("hook@example.org", "Hook").await;
    expected.extend(pair("login", "on_user_login"));
    assert_eq!(
        events(&read()),
        expected,
        "a second login fires on_user_login only"
    );

    s.get_json(&format!("logout?jwt={token}")).await;
    expected.extend(pair("logout", "on_user_logout"));
    assert_eq!(events(&read()), expected);

    // An account created by an operator's token fires on_new_user, and no login.
    s.app
        .sessions()
        .operator_token("ops@example.org", None, None)
        .await
        .unwrap();
    expected.extend(pair("new_user", "on_new_user"));
    assert_eq!(events(&read()), expected);
    s.app
        .sessions()
        .operator_token("ops@example.org", None, None)
        .await
        .unwrap();
    assert_eq!(
        events(&read()),
        expected,
        "an existing account fires nothing"
    );

    // The panicking extension's first event failed; its later events for that user wait their
    // turn behind it (hook events of one user are delivered in order) and are retried
    // in the background, 10 s later by default: after this test.
    let panics = |hook: &str| {
        format!(
            "authhost_hook_calls_total{{extension=\"fixture_extension\",hook=\"{hook}\",outcome=\"panic\"}}"
        )
    };
    assert_eq!(
        s.metric(&panics("on_new_user")).await,
        2.0,
        "one per new account"
    );
    assert_eq!(
        s.metric(&panics("on_user_login")).await,
        0.0,
        "waiting behind on_new_user"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_a_valid_set_and_keeps_the_old_one_otherwise() {
    let s = TestServer::start_with(plugin_options("r:sample_permission_provider", "", "")).await;
    let token = s.dev_login("re@example.org", "Re").await;
    let uid = md5_hex("re@example.org");
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "provider-token": format!("r-{uid}") })
    );
    let before = s.app.plugins();

    let reconfigure = |services: &str, extra: &str| {
        let mut o = plugin_options(services, "", extra);
        o.key = 0;
        test_config(s.dir.path(), &s.db.url, &o)
    };
    s.app
        .reload_plugins(reconfigure(
            "r:static_permissions",
            "[plugins.config.r]\ndefault = { swapped = true }\n",
        ))
        .await
        .unwrap();
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "swapped": true })
    );
    // A request that took the old set before the swap finishes on it.
    let user = authhost::users::provider_view(
        &authhost::users::get(&s.app.db, &uid)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        before.permissions("r", user).await,
        json!({ "provider-token": format!("r-{uid}") })
    );

    let errors = s
        .app
        .reload_plugins(reconfigure("r:no_such_plugin;q:wrong_interface", ""))
        .await
        .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "swapped": true }),
        "the old set stays"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_library_is_loaded_from_a_fresh_copy() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libmine.so");
    std::fs::copy(plugin_dir().join("libstatic_permissions.so"), &lib).unwrap();
    let services = format!("r:{}", lib.display());
    let extra = "[plugins.config.r]\ndefault = { build = 1 }\n";
    // Copies are how the in-process loader takes a new build (a library is never unloaded);
    // workers load the new file in a new process (`tests/isolation.rs`, `a_rebuilt_library_gets_a_new_worker_and_an_unchanged_one_keeps_its_own`).
    let in_process = || {
        let mut o = plugin_options(&services, "", extra);
        o.env
            .insert("AUTHHOST_PLUGINS__ISOLATION".into(), "in_process".into());
        o
    };
    let s = TestServer::start_with(in_process()).await;
    let token = s.dev_login("rb@example.org", "Rb").await;
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "build": 1 })
    );

    // "Rebuild": a different library replaces the file (written aside, then renamed over it,
    // as a build or deploy should; overwriting a mapped library in place corrupts it).
    let staged = dir.path().join("staged.so");
    std::fs::copy(
        plugin_dir().join("libsample_permission_provider.so"),
        &staged,
    )
    .unwrap();
    std::fs::rename(&staged, &lib).unwrap();
    let config = test_config(s.dir.path(), &s.db.url, &in_process());
    s.app.reload_plugins(config.clone()).await.unwrap();
    let uid = md5_hex("rb@example.org");
    assert_eq!(
        s.authorize(&token, "r").await["permissions"],
        json!({ "provider-token": format!("r-{uid}") })
    );
    let copies = std::fs::read_dir(s.dir.path().join("plugin-copies"))
        .unwrap()
        .count();
    assert_eq!(copies, 1);
    // Unchanged since: reloading reuses the loaded library, no new copy.
    s.app.reload_plugins(config).await.unwrap();
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("plugin-copies"))
            .unwrap()
            .count(),
        1
    );
    s.stop().await;
}

/// `authhost plugins call ...` as a plugin author runs it, against the test server's database.
fn plugins_call(s: &TestServer, args: &[&str]) -> std::process::Output {
    let config = s.dir.path().join("call.toml");
    let audit = s.dir.path().join("call-audit.jsonl");
    std::fs::write(
        &config,
        format!(
            "{}\n[plugins.config.failing]\nmode = \"error\"\n[plugins.config.audit_log]\npath = \"{}\"\n",
            authhost_tests::base_toml(s.dir.path(), &s.db.url),
            audit.display()
        ),
    )
    .unwrap();
    let (private, public) = authhost_tests::key_pair(0);
    authhost_tests::authhost_command()
        .arg("--config")
        .arg(&config)
        .args(["plugins", "call"])
        .args(args)
        .env("PRIVATE_KEY", private)
        .env("PUBLIC_KEY", public)
        .env(
            "ALLOWED_SERVICES",
            "example:sample_permission_provider;failing:fixture_provider",
        )
        .env("INSTALLED_EXTENSIONS", "audit_log")
        .env("AUTHHOST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_call_asks_a_provider_and_delivers_a_hook_as_serve_would() {
    let s = TestServer::start().await;
    s.dev_login("caller@example.org", "Caller").await;
    let uid = md5_hex("caller@example.org");

    let ok = plugins_call(&s, &["example", "--user", "caller@example.org"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr),
    );
    assert!(ok.status.success(), "{stdout}\n{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(
        answer,
        json!({ "provider-token": format!("example-{uid}") })
    );
    assert!(stderr.contains("example: ok in "), "{stderr}");

    let failed = plugins_call(&s, &["failing", "--user", &uid]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(failed.stdout.is_empty());
    assert!(
        stderr.contains("failing: failed in ")
            && stderr.contains("fixture provider fails on purpose"),
        "{stderr}"
    );

    let unknown = plugins_call(&s, &["nope", "--user", &uid]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert!(
        stderr.contains("no provider serves `nope`; aliases: example, failing"),
        "{stderr}"
    );

    let nobody = plugins_call(&s, &["example", "--user", "nobody@example.org"]);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("--user nobody@example.org"));

    let hook = plugins_call(&s, &["--hook", "on_user_logout", "--user", &uid]);
    let stderr = String::from_utf8_lossy(&hook.stderr);
    assert!(hook.status.success(), "{stderr}");
    assert!(
        stderr.contains("audit_log on_user_logout: ok in "),
        "{stderr}"
    );
    let audit = std::fs::read_to_string(s.dir.path().join("call-audit.jsonl")).unwrap();
    let line: Value = serde_json::from_str(audit.lines().last().expect("a line")).unwrap();
    assert_eq!(line["event"], "logout");
    assert_eq!(line["userid"], uid.as_str());
}
