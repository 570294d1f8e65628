//! The two caches on the hot paths, and what they promise: a permission token is handed out
//! again only while user, service and permissions are unchanged; a logout is seen at once by the
//! replica that took it and within `user_cache_ms` by the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use authhost::config::EnvMap;
use authhost_tests::{Options, TestServer, jwt_parts};

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_token_is_reused_only_while_nothing_changed() {
    let s = TestServer::start_with(Options {
        env: env(&[("ALLOWED_SERVICES", "perms:static_permissions")]),
        extra_toml: "[plugins.config.perms]\ndefault = { read = true }\nrules = [{ username = \"boss\", permissions = { admin = true } }]\n".into(),
        ..Options::default()
    })
    .await;
    let token = s.dev_login("cache@example.org", "C").await;
    let first = s
        .get_json(&format!("authorize?jwt={token}&service=perms"))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = s
        .get_json(&format!("authorize?jwt={token}&service=perms"))
        .await;
    assert_eq!(
        first["token"], second["token"],
        "same user, service and permissions: the cached token"
    );

    // New permissions: a new token carrying them.
    s.client
        .post(s.url(&format!("update?jwt={token}&username=boss")))
        .send()
        .await
        .unwrap();
    let third = s
        .get_json(&format!("authorize?jwt={token}&service=perms"))
        .await;
    assert_ne!(third["token"], second["token"]);
    let (_, claims) = jwt_parts(third["token"].as_str().unwrap());
    assert_eq!(claims["permissions"]["admin"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cache_every_authorize_signs_anew() {
    let s = TestServer::start_with(Options {
        env: env(&[("AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE", "false")]),
        ..Options::default()
    })
    .await;
    let token = s.dev_login("nocache@example.org", "N").await;
    let first = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    assert_ne!(first["token"], second["token"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_the_other_replicas_within_the_user_cache_time() {
    let opts = || Options {
        env: env(&[("AUTHHOST_DATABASE__USER_CACHE_MS", "300")]),
        ..Options::default()
    };
    let a = TestServer::start_with(opts()).await;
    let b = TestServer::start_with(Options {
        db: Some(a.db.clone()),
        ..opts()
    })
    .await;
    let token = a.dev_login("replica@example.org", "R").await;
    assert_eq!(
        b.get_json(&format!("check?jwt={token}")).await["authenticated"],
        true,
        "b has it cached now"
    );

    assert_eq!(
        a.get_json(&format!("logout?jwt={token}")).await["success"],
        true
    );
    assert_eq!(
        a.get_json(&format!("check?jwt={token}")).await["authenticated"],
        false,
        "at once on a"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        b.get_json(&format!("check?jwt={token}")).await["authenticated"],
        false,
        "within 300 ms on b"
    );
    b.stop_keep_db().await;
    a.stop().await;
}

/// A `check` that read the user row just before a logout's UPDATE must not put the old row
/// back in the cache after the logout cleared it. The interleaving is played exactly: the
/// cache fill's ticket is taken and the row read (as `check` does), then the logout runs
/// through HTTP, then the fill lands. Afterwards no `check` on this replica accepts the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_racing_a_logout_never_revives_the_token() {
    let s = TestServer::start().await;
    let token = s.dev_login("race@example.org", "Racer").await;
    let userid = authhost_tests::md5_hex("race@example.org");
    let cache = &s.app.user_cache;

    // The check's half before the logout: ticket, then the row as it is now.
    let ticket = cache.ticket(&userid);
    let stale = authhost::users::get(&s.app.db, &userid)
        .await
        .unwrap()
        .expect("user row");
    let out = s.get_json(&format!("logout?jwt={token}")).await;
    assert_eq!(out["success"], true);
    // The check's other half: its fill arrives after the logout.
    cache.fill(
        ticket,
        &userid,
        std::sync::Arc::new(authhost::user_cache::CachedUser::new(stale)),
    );
    assert!(
        cache.cached(&userid).is_none(),
        "the stale row was put back"
    );
    for how in ["header", "query"] {
        let request = match how {
            "header" => s.client.get(s.url("check")).header("auth-token", &token),
            _ => s.client.get(s.url(&format!("check?jwt={token}"))),
        };
        let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(
            body["authenticated"], false,
            "logged-out token accepted ({how})"
        );
    }
    s.stop().await;
}
