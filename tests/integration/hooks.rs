//! Durable hook events (the outbox): written with the change that causes them, delivered at
//! once, retried in the background after a failure (also after a restart), kept as failed after
//! the last attempt, and delivered once per event when replicas share the database. Runs on
//! SQLite, and on PostgreSQL with `AUTHHOST_TEST_POSTGRES`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use authhost_tests::{Options, TestDb, TestServer, plugin_options};
use serde_json::Value;

/// The fixture extension recording into `record`, failing (or crashing, per `mode`) its first
/// `fail_attempts` attempts of each event; fast retries.
fn options(record: &Path, mode: &str, fail_attempts: u64, retry_ms: u64) -> Options {
    let extra = format!(
        "[plugins.config.fixture_extension]\nmode = \"{mode}\"\nrecord = \"{}\"\nfail_attempts = {fail_attempts}\n",
        record.display()
    );
    let mut opts = plugin_options("", "fixture_extension", &extra);
    for (key, value) in [
        ("AUTHHOST_PLUGINS__HOOK_RETRY_MS", retry_ms.to_string()),
        ("AUTHHOST_PLUGINS__HOOK_POLL_MS", "20".to_string()),
        ("AUTHHOST_PLUGINS__HOOK_MAX_ATTEMPTS", "4".to_string()),
    ] {
        opts.env.insert(key.into(), value);
    }
    opts
}

fn recorded(record: &Path) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("record line"))
        .collect()
}

/// Waits until `record` has `n` lines, at most `within`.
async fn wait_for_lines(record: &Path, n: usize, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines = recorded(record);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < within,
            "{} of {n} deliveries after {within:?}: {lines:?}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deliveries per event id.
fn per_event(lines: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for l in lines {
        *counts
            .entry(l["event"].as_u64().expect("event id"))
            .or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_fails_twice_is_delivered_once_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.jsonl");
    // The database outlives both servers (a server's own SQLite file goes with its folder).
    let db = TestDb::new(dir.path()).await;
    // First server: the first attempts fail, and the retry is 2 s away when it stops.
    let mut opts = options(&record, "error", 2, 2000);
    opts.db = Some(db.clone());
    let s = TestServer::start_with(opts).await;
    s.dev_login("durable@example.org", "Durable").await;
    assert!(recorded(&record).is_empty(), "the first attempts fail");
    let pending = authhost::hooks::list(&s.app.db).await.expect("list");
    assert_eq!(
        pending.len(),
        2,
        "on_new_user and on_user_login wait: {pending:?}"
    );
    assert!(pending.iter().all(|e| e.status == "pending"));
    // The login event waits for the user's earlier event: tried not at all yet.
    assert_eq!(
        pending.iter().map(|e| e.attempts).collect::<Vec<_>>(),
        [1, 0],
        "{pending:?}"
    );
    s.stop_keep_db().await;

    // Second server on the same database: the pending events survived and are delivered.
    let mut opts = options(&record, "error", 2, 100);
    opts.db = Some(db.clone());
    let s = TestServer::start_with(opts).await;
    let lines = wait_for_lines(&record, 2, Duration::from_secs(15)).await;
    assert_eq!(
        lines
            .iter()
            .map(|l| l["hook"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["on_new_user", "on_user_login"],
        "in order"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["attempt"] == 3 && l["duplicate"] == false),
        "{lines:?}"
    );
    assert!(per_event(&lines).values().all(|&n| n == 1));
    // Delivered events leave the outbox.
    let started = Instant::now();
    while !authhost::hooks::list(&s.app.db)
        .await
        .expect("list")
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "outbox not emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop_keep_db().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_always_crashes_ends_failed_and_can_be_requeued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.jsonl");
    let s = TestServer::start_with(options(&record, "abort", 0, 50)).await;
    s.dev_login("crashy@example.org", "Crashy").await;
    let started = Instant::now();
    let events = loop {
        let events = authhost::hooks::list(&s.app.db).await.expect("list");
        if events.len() == 2 && events.iter().all(|e| e.status == "failed") {
            break events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not failed after the attempts: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(events.iter().all(|e| e.attempts == 4), "{events:?}");
    assert!(events.iter().all(|e| e.last_error.is_some()));
    assert!(recorded(&record).is_empty());
    // `authhost hooks retry` requeues them.
    assert_eq!(
        authhost::hooks::retry(&s.app.db, None)
            .await
            .expect("retry"),
        2
    );
    let again = authhost::hooks::list(&s.app.db).await.expect("list");
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|e| e.status == "pending" && e.attempts < 4),
        "requeued with fresh attempts: {again:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_database_deliver_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.jsonl");
    // Every first attempt fails, so both replicas' background loops race for every retry.
    let a = TestServer::start_with(options(&record, "error", 1, 30)).await;
    let mut opts = options(&record, "error", 1, 30);
    opts.db = Some(a.db.clone());
    let b = TestServer::start_with(opts).await;
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        server
            .dev_login(&format!("replica{i}@example.org"), "Replica")
            .await;
    }
    let lines = wait_for_lines(&record, 20, Duration::from_secs(20)).await;
    // A little longer: a second delivery of any event would show now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = if recorded(&record).len() > lines.len() {
        recorded(&record)
    } else {
        lines
    };
    let counts = per_event(&lines);
    assert_eq!(counts.len(), 20, "20 events: {counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "each event delivered once: {counts:?}"
    );
    b.stop_keep_db().await;
    a.stop().await;
}
