//! User administration: `authhost users ...` run as a separate process
//! against the database of a running server, as an operator would. A disabled user's tokens
//! stop working within `user_cache_ms`, their logins end with `error=account_disabled`; logout
//! revokes, delete removes the row after `on_user_logout` reached the extension.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;
use std::time::{Duration, Instant};

use authhost_tests::{
    Options, TOKEN_TYPE_JWT, TestServer, base_toml, exchange_form, key_pair, md5_hex,
};
use serde_json::{Value, json};

/// The server's cache of user rows: changes made by another process show within this.
const USER_CACHE_MS: u64 = 300;

/// `authhost --config CONFIG users ARGS...` against the server's database.
/// Runs `authhost users ARGS` with its configuration in `conf/` and the working directory
/// elsewhere: the audit log's relative `path` lands beside the configuration (`AUTHHOST_CONFIG_DIR`
/// reaches the extension's worker), where `audit_lines` reads it.
fn users(s: &TestServer, args: &[&str]) -> Output {
    let conf = s.dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let config = conf.join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[plugins.config.audit_log]\npath = \"audit.jsonl\"\n",
            base_toml(s.dir.path(), &s.db.url),
        ),
    )
    .unwrap();
    let (private, public) = key_pair(0);
    authhost_tests::authhost_command()
        .current_dir(s.dir.path())
        .arg("--config")
        .arg(&config)
        .arg("users")
        .args(args)
        .env("PRIVATE_KEY", private)
        .env("PUBLIC_KEY", public)
        .env("INSTALLED_EXTENSIONS", "audit_log")
        .env("AUTHHOST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Waits (polling) until `check` gives `expected` for `token`; the time it took.
async fn until_check(s: &TestServer, token: &str, expected: bool) -> Duration {
    let started = Instant::now();
    while s.authenticated(token).await != expected {
        assert!(
            started.elapsed() < Duration::from_millis(USER_CACHE_MS * 10),
            "check still {} after {:?}",
            !expected,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// The dev login's redirect for `email`: its `jwt`, or its `error`.
async fn login(s: &TestServer, email: &str) -> Result<String, String> {
    let r = s
        .client
        .post(s.url("login/dev"))
        .form(&[("email", email), ("next", "https://app.example.org/done")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = authhost_tests::location(&r);
    let param = |name: &str| authhost_tests::try_query_param(&location, name);
    match (param("jwt"), param("error")) {
        (Some(jwt), None) => Ok(jwt),
        (None, Some(error)) => Err(error),
        other => panic!("redirect with {other:?}: {location}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_show_disable_enable_logout_and_delete_users() {
    let mut env = authhost::config::EnvMap::new();
    env.insert(
        "AUTHHOST_DATABASE__USER_CACHE_MS".into(),
        USER_CACHE_MS.to_string(),
    );
    let s = TestServer::start_with(Options {
        env,
        ..Options::default()
    })
    .await;
    let mallory = login(&s, "Mallory@Example.org").await.unwrap();
    let alice = login(&s, "alice@example.org").await.unwrap();
    let mallory_id = md5_hex("Mallory@Example.org");
    assert_eq!(
        s.post_json(&format!("update?jwt={mallory}&username=mal_1"))
            .await["success"],
        true
    );

    // list and show, by each kind of name.
    let listed = ok(&users(&s, &["list"]));
    assert!(
        listed.contains(&mallory_id) && listed.contains(&md5_hex("alice@example.org")),
        "{listed}"
    );
    let listed = ok(&users(&s, &["list", "--query", "MALLORY"]));
    assert!(
        listed.contains(&mallory_id) && !listed.contains("alice@"),
        "{listed}"
    );
    // `_` in a query is a character, not a wildcard.
    let listed = ok(&users(&s, &["list", "--query", "l_1"]));
    assert!(listed.contains("mal_1"), "{listed}");
    assert!(!ok(&users(&s, &["list", "--query", "a_i"])).contains("alice"));
    for name in [mallory_id.as_str(), "mal_1", "mallory@example.org"] {
        let shown = ok(&users(&s, &["show", name]));
        assert!(
            shown.contains(&format!("id                  {mallory_id}")),
            "{shown}"
        );
        assert!(shown.contains("state               active"), "{shown}");
    }
    let missing = users(&s, &["show", "nobody@example.org"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no user"),
        "{missing:?}"
    );

    // disable: every replica's check refuses within user_cache_ms; authorize gives {}.
    assert!(s.authenticated(&mallory).await);
    ok(&users(&s, &["disable", "mal_1"]));
    let took = until_check(&s, &mallory, false).await;
    assert!(took <= Duration::from_millis(USER_CACHE_MS * 3), "{took:?}");
    let auth = s
        .get_json(&format!("authorize?service=example&jwt={mallory}"))
        .await;
    assert_eq!(auth, json!({ "permissions": {} }));
    // The same token in a header (the `check` shortcut's path, which reads the user cache),
    // and traded at the token endpoint.
    for _ in 0..2 {
        let by_header = s.get_json_as("check", &mallory).await;
        assert_eq!(by_header["authenticated"], false);
    }
    let exchanged = s
        .client
        .post(s.url("token"))
        .form(&exchange_form(&mallory, TOKEN_TYPE_JWT, "example"))
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), 400);
    assert_eq!(
        exchanged.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert!(ok(&users(&s, &["show", &mallory_id])).contains("state               disabled"));
    // A login of a disabled user: an error and no token.
    assert_eq!(
        login(&s, "Mallory@Example.org").await,
        Err("account_disabled".into())
    );
    // Others are untouched.
    assert!(s.authenticated(&alice).await);

    // enable: logins work again, the tokens from before the disable stay revoked.
    ok(&users(&s, &["enable", &mallory_id]));
    tokio::time::sleep(Duration::from_millis(USER_CACHE_MS * 2)).await;
    let fresh = login(&s, "Mallory@Example.org").await.unwrap();
    assert!(s.authenticated(&fresh).await);
    assert!(!s.authenticated(&mallory).await);

    // logout: every token issued so far.
    ok(&users(&s, &["logout", "mallory@example.org"]));
    until_check(&s, &fresh, false).await;

    // delete: needs --yes; on_user_logout reaches the extension; the row is gone.
    let refused = users(&s, &["delete", &mallory_id]);
    assert!(!refused.status.success(), "{refused:?}");
    ok(&users(&s, &["delete", "--yes", &mallory_id]));
    assert!(
        authhost::users::get(&s.app.db, &mallory_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !s.dir.path().join("audit.jsonl").exists(),
        "written in the working directory"
    );
    let audit = std::fs::read_to_string(s.dir.path().join("conf/audit.jsonl")).unwrap();
    let events: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logouts = events
        .iter()
        .filter(|e| e["event"] == "logout" && e["userid"] == mallory_id.as_str())
        .count();
    // disable, logout and delete each fired one.
    assert_eq!(logouts, 3, "{audit}");
    assert!(!ok(&users(&s, &["list"])).contains(&mallory_id));
    assert!(!users(&s, &["show", &mallory_id]).status.success());
    assert!(s.authenticated(&alice).await);
    // The same e-mail logs in again: the same id (md5 of the e-mail), a new account, and
    // none of the deleted account's tokens works for it.
    let after = login(&s, "Mallory@Example.org").await.unwrap();
    assert!(s.authenticated(&after).await);
    tokio::time::sleep(Duration::from_millis(USER_CACHE_MS * 2)).await;
    for old in [&mallory, &fresh] {
        assert!(
            !s.authenticated(old).await,
            "a token of the deleted account came back"
        );
    }

    // A username shaped like another user's id names two users: refused, nobody changed.
    let alice_id = md5_hex("alice@example.org");
    let bob = login(&s, "bob@example.org").await.unwrap();
    assert_eq!(
        s.post_json(&format!("update?jwt={bob}&username={alice_id}"))
            .await["success"],
        true
    );
    let ambiguous = users(&s, &["disable", &alice_id]);
    assert!(!ambiguous.status.success(), "{ambiguous:?}");
    let why = String::from_utf8_lossy(&ambiguous.stderr).to_string();
    assert!(why.contains("several users"), "{why}");
    tokio::time::sleep(Duration::from_millis(USER_CACHE_MS * 2)).await;
    assert!(s.authenticated(&alice).await && s.authenticated(&bob).await);
    s.stop().await;
}
