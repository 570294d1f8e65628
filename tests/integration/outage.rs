//! The database going away under a running server (issue 22): a private PostgreSQL server
//! (`authhost_tests::pg_cluster`) that the test stops and starts. Once the server finds the
//! database gone, requests that need it answer at once (the circuit breaker); a user whose row
//! was read within `database.stale_if_error_seconds` is still answered from memory by `check`,
//! `authorize` and token exchange; writes fail cleanly, nothing half-written; all recovers
//! without a restart when the database answers again.
//!
//! Bounds are generous (hundreds of milliseconds where the breaker answers in microseconds);
//! the precise figures belong in `bench/outage.sh`.

use std::time::{Duration, Instant};

use authhost_tests::pg_cluster::PgCluster;
use authhost_tests::{
    Options, TOKEN_TYPE_JWT, TestDb, TestServer, exchange_form, location, query_param,
};
use sea_orm::ConnectionTrait;
use serde_json::Value;

/// What "at once" means here: far below the pool's 5 s acquire timeout.
const FAST: Duration = Duration::from_millis(500);
const STALE_WINDOW_SECONDS: u64 = 12;

async fn timed_get(server: &TestServer, url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = server.client.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

/// Polls `url` until it answers `status`, for at most `limit`; how long that took.
async fn until_status(server: &TestServer, url: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (got, body, _) = timed_get(server, url).await;
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} still answers {got} {body} after {limit:?}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_fast_serves_warm_users_from_memory_and_recovers() {
    let pg = PgCluster::start();
    let mut options = Options {
        db: Some(TestDb::existing(&pg.url())),
        // A public client of the OpenID Provider (its authorization requests during the outage).
        extra_toml: "[clients.app]\nredirect_uris = [\"https://app.example.org/cb\"]\n".into(),
        ..Options::default()
    };
    // A short user cache, so the answers during the outage are the stale path's, not a hit.
    for (k, v) in [
        ("AUTHHOST_DATABASE__USER_CACHE_MS", "100".to_string()),
        (
            "AUTHHOST_DATABASE__STALE_IF_ERROR_SECONDS",
            STALE_WINDOW_SECONDS.to_string(),
        ),
    ] {
        options.env.insert(k.into(), v);
    }
    let server = TestServer::start_with(options).await;
    let warm = server.dev_login("warm@example.org", "Warm").await;
    let cold = server.dev_login("cold@example.org", "Cold").await;
    let check = |token: &str| server.url(&format!("check?jwt={token}"));
    let (status, body, _) = timed_get(&server, &check(&warm)).await;
    assert_eq!((status, &body["authenticated"]), (200, &Value::Bool(true)));
    let warm_read = Instant::now();
    let warm_id = body["profile"]["id"].as_str().unwrap().to_string();
    let stale = |route: &str| format!("authhost_stale_answers_total{{route=\"{route}\"}}");
    let stale_checks = server.metric(&stale("check")).await;
    let stale_authorizes = server.metric(&stale("authorize")).await;
    let stale_exchanges = server.metric(&stale("token")).await;
    let opened = r#"authhost_db_breaker_transitions_total{to="open"}"#;
    let opened_before = server.metric(opened).await;

    pg.stop();

    // The first request to need the database finds out the slow way (the pool's acquire
    // timeout); a TCP connect to the server then confirms it is gone and opens the breaker.
    let (status, body, took) = timed_get(&server, &check(&cold)).await;
    assert_eq!(status, 503, "cold user during the outage: {body}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    until_status(
        &server,
        &format!("{}/readyz", server.base),
        503,
        Duration::from_secs(3),
    )
    .await;

    // From now on, everything answers at once.
    let (status, body, took) = timed_get(&server, &format!("{}/readyz", server.base)).await;
    assert_eq!(
        (status, body["database"].as_str()),
        (503, Some("unreachable"))
    );
    assert!(took < FAST, "/readyz took {took:?}");
    assert!(body["unreachable_for_ms"].as_u64().is_some(), "{body}");

    let (status, body, took) = timed_get(&server, &check(&warm)).await;
    assert_eq!(status, 200, "warm check from memory: {body}");
    assert_eq!(body["authenticated"], true);
    assert_eq!(body["profile"]["email"], "warm@example.org");
    assert!(took < FAST, "warm check took {took:?}");

    let (status, body, took) = timed_get(
        &server,
        &server.url(&format!("authorize?jwt={warm}&service=example")),
    )
    .await;
    assert_eq!(status, 200, "warm authorize from memory: {body}");
    assert_eq!(
        body["permissions"]["provider-token"],
        format!("example-{warm_id}")
    );
    assert!(
        body["token"].as_str().is_some_and(|t| t.len() > 100),
        "{body}"
    );
    assert!(took < FAST, "warm authorize took {took:?}");

    let started = Instant::now();
    let r = server
        .client
        .post(server.url("token"))
        .form(&exchange_form(&warm, TOKEN_TYPE_JWT, "example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "warm token exchange from memory");
    assert!(started.elapsed() < FAST);

    let (status, body, took) = timed_get(&server, &check(&cold)).await;
    assert_eq!(status, 503, "cold check: {body}");
    assert!(body["error"].as_str().is_some(), "JSON error: {body}");
    assert!(took < FAST, "cold check took {took:?}");

    // Writes: 503 (or, for a login, back to `next` with the error) at once.
    for (post, path) in [
        (true, format!("update?jwt={warm}&username=warmer")),
        (false, format!("logout?jwt={warm}")),
    ] {
        let started = Instant::now();
        let request = if post {
            server.client.post(server.url(&path))
        } else {
            server.client.get(server.url(&path))
        };
        let r = request.send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "{path}");
        let body: Value = r.json().await.expect("a JSON error");
        assert!(body["error"].as_str().is_some(), "{body}");
        assert!(took < FAST, "{path} took {took:?}");
    }
    let started = Instant::now();
    let r = server
        .client
        .post(server.url("login/dev"))
        .form(&[
            ("email", "new@example.org"),
            ("name", "New"),
            ("next", "https://app.example.org/done"),
        ])
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert_eq!(query_param(&to, "error"), "temporarily_unavailable", "{to}");
    assert!(!to.contains("jwt="), "{to}");
    assert!(started.elapsed() < FAST);

    // An authorization request from a browser with a session: the client hears
    // temporarily_unavailable at its registered redirect URI, not a 503 page.
    let r = server
        .client
        .get(server.url(
            "oidc/authorize?response_type=code&client_id=app\
             &redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb&scope=openid&state=s1\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        ))
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert!(to.starts_with("https://app.example.org/cb?"), "{to}");
    assert_eq!(query_param(&to, "error"), "temporarily_unavailable", "{to}");
    assert_eq!(query_param(&to, "state"), "s1", "{to}");

    assert_eq!(server.metric("authhost_db_up").await, 0.0);
    assert!(server.metric(opened).await > opened_before);
    assert!(server.metric(&stale("check")).await > stale_checks);
    assert!(server.metric(&stale("authorize")).await > stale_authorizes);
    assert!(server.metric(&stale("token")).await > stale_exchanges);

    // The window ends: the warm user's row is too old to answer for.
    let window_end = warm_read + Duration::from_secs(STALE_WINDOW_SECONDS);
    tokio::time::sleep_until((window_end + Duration::from_millis(300)).into()).await;
    let (status, body, took) = timed_get(&server, &check(&warm)).await;
    assert_eq!(status, 503, "past the window: {body}");
    assert!(took < FAST);

    // Recovery: within about a second of the database answering, without a restart.
    pg.resume();
    let took = until_status(
        &server,
        &format!("{}/readyz", server.base),
        200,
        Duration::from_secs(3),
    )
    .await;
    eprintln!("recovered {took:?} after the database came back");
    for _ in 0..10 {
        for token in [&warm, &cold] {
            let (status, body, _) = timed_get(&server, &check(token)).await;
            assert_eq!((status, &body["authenticated"]), (200, &Value::Bool(true)));
        }
    }
    assert_eq!(server.metric("authhost_db_up").await, 1.0);
    // Nothing of the refused writes is there: no user from the failed login, no new name, and
    // the refused logout did not happen.
    let missing = authhost::users::find(&server.app.db, "new@example.org").await;
    assert!(
        matches!(missing, Err(authhost::users::FindError::NotFound)),
        "{missing:?}"
    );
    let user = authhost::users::find(&server.app.db, &warm_id)
        .await
        .unwrap();
    assert_eq!(user.username, None);
    assert!(server.authenticated(&warm).await);
    server.stop().await;
}

/// A listener whose connection stays open but delivers nothing (here: its PostgreSQL backend
/// stopped with SIGSTOP, as a half-open socket or a pooler that swallows notifications would
/// look) counts as lost once it has heard nothing, not even its own heartbeat, for 10 s: rows
/// fall back to the short time to live. It listens again on a new connection afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_hears_nothing_counts_as_lost() {
    let pg = PgCluster::start();
    let server = TestServer::start_with(Options {
        db: Some(TestDb::existing(&pg.url())),
        ..Options::default()
    })
    .await;
    let cache = &server.app.user_cache;
    let started = Instant::now();
    while !cache.is_listening() {
        assert!(started.elapsed() < Duration::from_secs(5), "not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let admin = sea_orm::Database::connect(&pg.url()).await.unwrap();
    let pid: i32 = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %'",
        ))
        .await
        .unwrap()
        .expect("the listener's backend")
        .try_get("", "pid")
        .unwrap();
    let losses = cache.listener_losses();
    // SAFETY: kill(2) on a process id read from the server; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGSTOP) },
        0,
        "SIGSTOP {pid}"
    );
    let stopped = Instant::now();
    while cache.is_listening() {
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "still counted as listening after 20 s of silence"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deaf_after = stopped.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    eprintln!("counted as lost after {deaf_after:?} of silence");
    assert!(deaf_after >= Duration::from_secs(5), "{deaf_after:?}");
    assert!(cache.listener_losses() > losses);
    let lost_at = Instant::now();
    while !cache.is_listening() {
        assert!(
            lost_at.elapsed() < Duration::from_secs(5),
            "not listening again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A stopped server leaves no connection behind (its listener's included).
    server.stop_keep_db().await;
    let count = || async {
        admin
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            ))
            .await
            .unwrap()
            .and_then(|row| row.try_get::<i64>("", "n").ok())
            .unwrap()
    };
    let stopped = Instant::now();
    while count().await > 0 {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "connections of a stopped server remain: {}",
            count().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.close().await.ok();
}
