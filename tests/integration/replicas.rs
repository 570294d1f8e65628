//! Two replicas on one database, as behind a load balancer (the same external address and
//! keys): a login started on one finishes on the other (also halfway through a key switch), a
//! logout on one reaches the other within `user_cache_ms`, of two users racing for one name
//! across both exactly one wins, and a key rotation applied to both keeps every user logged in.
//! Runs on SQLite (two servers on one file), and on PostgreSQL with AUTHHOST_TEST_POSTGRES (as
//! CI runs it).

use std::time::{Duration, Instant};

use authhost_tests::fake_github::FakeGitHub;
use authhost_tests::*;
use sea_orm::ConnectionTrait;
use serde_json::Value;

const NEXT: &str = "https://app.example.org/after";

/// Two servers on `db` with the GitHub fake, `key` signing and `keys_toml` appended.
async fn pair(
    db: &TestDb,
    gh: &FakeGitHub,
    key: usize,
    keys_toml: &str,
) -> (TestServer, TestServer) {
    let options = || {
        let mut o = Options {
            key,
            db: Some(db.clone()),
            extra_toml: format!("{}\n{keys_toml}", gh.provider_toml()),
            ..Options::default()
        };
        o.env
            .insert("AUTHHOST_DATABASE__USER_CACHE_MS".into(), "500".into());
        o
    };
    (
        TestServer::start_with(options()).await,
        TestServer::start_with(options()).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_replica_finishes_on_the_other_and_a_logout_reaches_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let gh = FakeGitHub::start().await;
    let (a, b) = pair(&db, &gh, 0, "").await;
    // One browser: the login cookie set by `a` goes to `b` (cookies do not tell ports apart,
    // and behind a load balancer both replicas have one address).
    let token = login_across(&a, &b).await.expect("a login from a to b");
    assert!(a.authenticated(&token).await && b.authenticated(&token).await);

    // A logout on b: at once on b, on a within user_cache_ms (500 ms; a cached the row above).
    let out: Value = b.get_json(&format!("logout?jwt={token}")).await;
    assert_eq!(out["success"], true);
    assert!(!b.authenticated(&token).await);
    let waited = Instant::now();
    while a.authenticated(&token).await {
        assert!(
            waited.elapsed() < Duration::from_millis(1500),
            "the logout did not reach the other replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop_keep_db().await;
    a.stop_keep_db().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_racing_for_one_name_on_two_replicas_get_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let gh = FakeGitHub::start().await;
    let (a, b) = pair(&db, &gh, 0, "").await;
    for round in 0..10 {
        let ta = a.dev_login(&format!("a{round}@example.org"), "A").await;
        let tb = b.dev_login(&format!("b{round}@example.org"), "B").await;
        let name = format!("contested-{round}");
        let ask = |s: &TestServer, token: &str| {
            let (client, url) = (
                s.client.clone(),
                s.url(&format!("update?jwt={token}&username={name}")),
            );
            async move {
                let body: Value = client
                    .post(url)
                    .send()
                    .await
                    .expect("update")
                    .json()
                    .await
                    .expect("json");
                body["success"] == true
            }
        };
        let (wa, wb) = tokio::join!(ask(&a, &ta), ask(&b, &tb));
        assert!(wa ^ wb, "round {round}: a won {wa}, b won {wb}");
    }
    b.stop_keep_db().await;
    a.stop_keep_db().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_applied_to_both_replicas_keeps_users_logged_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let gh = FakeGitHub::start().await;
    let retired = dir.path().join("retired.pem");
    std::fs::write(&retired, &key_pair(0).0).expect("write");
    let (a, b) = pair(&db, &gh, 0, "").await;
    let before = a.dev_login("keep@example.org", "Keep").await;
    assert!(b.authenticated(&before).await);
    b.stop_keep_db().await;
    a.stop_keep_db().await;

    let switched = format!("[keys]\nretired_private_key_files = [{retired:?}]\n");
    let (a, b) = pair(&db, &gh, 1, &switched).await;
    assert!(a.authenticated(&before).await && b.authenticated(&before).await);
    let after = b.dev_login("new@example.org", "New").await;
    assert_ne!(jwt_parts(&after).0["kid"], jwt_parts(&before).0["kid"]);
    assert!(a.authenticated(&after).await);
    b.stop_keep_db().await;
    a.stop_keep_db().await;
    db.drop_database().await;
}

/// One browser starts a GitHub login on `from` and comes back to `to`: the token, or the
/// status and body of the refusal.
async fn login_across(from: &TestServer, to: &TestServer) -> Result<String, (u16, String)> {
    let browser = browser();
    let start = format!("login/github?next={}", url_encode(NEXT));
    let r = browser.get(from.url(&start)).send().await.expect("start");
    let upstream = location(&r);
    let r = browser
        .get(format!("{upstream}&login=private"))
        .send()
        .await
        .expect("upstream");
    let r = browser
        .get(to.on(&location(&r)))
        .send()
        .await
        .expect("callback");
    if r.status() != 302 {
        return Err((r.status().as_u16(), r.text().await.unwrap_or_default()));
    }
    let done = location(&r);
    authhost_tests::try_query_param(&done, "jwt").ok_or((302, done))
}

/// A rolling key switch: replica `a` not yet switched (old key signs, the new one is next),
/// replica `b` switched (new key signs, the old one retired). A login started on either
/// finishes on the other, since each opens the other's sealed cookie. Once the old key is
/// removed, a login still sealed with it is refused with the "start again" answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_in_progress_survives_a_key_switch_across_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let gh = FakeGitHub::start().await;
    let (old, new) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    std::fs::write(&old, &key_pair(0).0).expect("write");
    std::fs::write(&new, &key_pair(1).0).expect("write");
    let options = |key: usize, keys_toml: String| {
        let mut o = Options {
            key,
            db: Some(db.clone()),
            extra_toml: format!("{}\n[keys]\n{keys_toml}", gh.provider_toml()),
            ..Options::default()
        };
        o.env
            .insert("AUTHHOST_DATABASE__USER_CACHE_MS".into(), "500".into());
        o
    };
    let a =
        TestServer::start_with(options(0, format!("next_private_key_files = [{new:?}]\n"))).await;
    let b = TestServer::start_with(options(
        1,
        format!("retired_private_key_files = [{old:?}]\n"),
    ))
    .await;
    for (from, to, what) in [
        (&a, &b, "old key to switched"),
        (&b, &a, "new key to unswitched"),
    ] {
        let token = login_across(from, to)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert!(from.authenticated(&token).await && to.authenticated(&token).await);
    }
    // A login started on `a` (sealed with the old key), finished after every replica dropped
    // the old key.
    let done = TestServer::start_with(options(1, String::new())).await;
    let unknown_key = "authhost_login_callbacks_refused_total{reason=\"unknown_key\"}";
    let before = done.metric(unknown_key).await;
    let refused = login_across(&a, &done)
        .await
        .expect_err("the old key is gone");
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("start the login again"), "{}", refused.1);
    // The process's counter (other servers of this test binary add to it): at least this one.
    assert!(done.metric(unknown_key).await >= before + 1.0);
    done.stop_keep_db().await;
    b.stop_keep_db().await;
    a.stop_keep_db().await;
    db.drop_database().await;
}

/// On PostgreSQL every replica listens for user changes: a logout or `users disable` on one is
/// refused on the other at once, while rows stay cached far longer than `user_cache_ms`; with
/// the listener's connection killed, a change is refused within `user_cache_ms` (the fallback).
/// On SQLite there is no channel and no listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_the_other_at_once_through_notifications() {
    const FALLBACK: Duration = Duration::from_millis(1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let options = || {
        let mut o = Options {
            db: Some(db.clone()),
            ..Options::default()
        };
        o.env.insert(
            "AUTHHOST_DATABASE__USER_CACHE_MS".into(),
            FALLBACK.as_millis().to_string(),
        );
        o.env.insert(
            "AUTHHOST_DATABASE__USER_CACHE_NOTIFIED_SECONDS".into(),
            "600".into(),
        );
        o
    };
    let (a, b) = (
        TestServer::start_with(options()).await,
        TestServer::start_with(options()).await,
    );
    let listening = |s: &TestServer| s.app.user_cache.is_listening();
    if !db.is_postgres() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !listening(&a) && !listening(&b),
            "SQLite has nothing to listen to"
        );
        b.stop_keep_db().await;
        a.stop().await;
        return;
    }
    let started = Instant::now();
    while !(listening(&a) && listening(&b)) {
        assert!(started.elapsed() < Duration::from_secs(5), "not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_on_b_within = |token: String, limit: Duration| {
        let b = &b;
        async move {
            let waited = Instant::now();
            while b.authenticated(&token).await {
                assert!(
                    waited.elapsed() < limit,
                    "still accepted on the other replica after {limit:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            waited.elapsed()
        }
    };

    let t1 = a.dev_login("n1@example.org", "N1").await;
    let t2 = a.dev_login("n2@example.org", "N2").await;
    assert!(b.authenticated(&t1).await && b.authenticated(&t2).await);
    // Past the fallback time to live, b still holds the rows as fresh: it listens.
    tokio::time::sleep(FALLBACK + Duration::from_millis(200)).await;
    let u1 = authhost::users::find(&a.app.db, "n1@example.org")
        .await
        .unwrap();
    let u2 = authhost::users::find(&a.app.db, "n2@example.org")
        .await
        .unwrap();
    assert!(b.app.user_cache.cached(&u1.id).is_some(), "b keeps the row");

    let out: Value = a.get_json(&format!("logout?jwt={t1}")).await;
    assert_eq!(out["success"], true);
    let took = refused_on_b_within(t1, Duration::from_millis(300)).await;
    eprintln!("logout on a refused on b after {took:?}");
    // `authhost users disable` runs this on its own connection.
    a.app.sessions().disable(&u2).await.unwrap();
    let took = refused_on_b_within(t2, Duration::from_millis(300)).await;
    eprintln!("disable refused on b after {took:?}");

    // The listeners' connections killed: a logout in the gap before they listen again is
    // missed, and the row falls back to the short time to live.
    let t3 = a.dev_login("n3@example.org", "N3").await;
    assert!(b.authenticated(&t3).await);
    let losses = (
        a.app.user_cache.listener_losses(),
        b.app.user_cache.listener_losses(),
    );
    let admin = sea_orm::Database::connect(&db.url).await.unwrap();
    let killed = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'LISTEN %' AND pg_terminate_backend(pid)",
        ))
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "both replicas' listeners terminated");
    let out: Value = a.get_json(&format!("logout?jwt={t3}")).await;
    assert_eq!(out["success"], true);
    refused_on_b_within(t3, FALLBACK + Duration::from_millis(700)).await;
    let started = Instant::now();
    while !(listening(&a) && listening(&b)) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not listening again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.app.user_cache.listener_losses() > losses.0);
    assert!(b.app.user_cache.listener_losses() > losses.1);
    admin.close().await.ok();
    b.stop_keep_db().await;
    a.stop_keep_db().await;
    db.drop_database().await;
}
