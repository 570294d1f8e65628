//! The database: adoption of an original dgp-oauth2 database, repeatable migrations, and a
//! database that goes away. Runs on SQLite, and on PostgreSQL with AUTHHOST_TEST_POSTGRES.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::{Options, TestDb, TestServer, md5_hex};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

/// The original's table exactly as SQLAlchemy's `create_all` made it (BEHAVIOUR.md §7).
fn original_schema(postgres: bool) -> String {
    let ts = if postgres {
        "TIMESTAMP WITHOUT TIME ZONE"
    } else {
        "DATETIME"
    };
    format!(
        "CREATE TABLE users (id VARCHAR(128) NOT NULL, provider_id VARCHAR(128), \
         username VARCHAR NOT NULL, name VARCHAR, email VARCHAR, avatar_url VARCHAR(512), \
         join_date {ts}, PRIMARY KEY (id), UNIQUE (username))"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_database_is_adopted_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared(&original_schema(db.is_postgres()))
        .await
        .unwrap();
    let alice = md5_hex("alice@example.org");
    let bob = md5_hex("bob@example.org");
    conn.execute_unprepared(&format!(
        "INSERT INTO users (id, provider_id, username, name, email, avatar_url, join_date) VALUES \
         ('{alice}', 'google:123', 'alice', 'Alice', 'alice@example.org', 'https://img/a.png', '2023-11-18 10:20:30.123456'), \
         ('{bob}', 'github:456', 'bob1', 'Bob', 'bob@example.org', NULL, '2021-01-02 03:04:05')"
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let s = TestServer::start_with(Options {
        db: Some(db),
        ..Options::default()
    })
    .await;
    assert_eq!(
        s.get_json("resolve?username=ALICE").await,
        json!({ "userid": alice })
    );
    let profile = s.get_json("get_profile?username=bob1").await;
    assert_eq!(
        profile,
        json!({ "found": true, "profile": {
            "id": bob, "name": "Bob", "avatar_url": null,
            "join_date": "2021-01-02T03:04:05Z", "gravatar": bob,
        }})
    );

    // An adopted user can use a token and keeps their username.
    let token = s.app.tokens.mint_user_token(&alice, None, None).unwrap();
    let check = s.get_json(&format!("check?jwt={token}")).await;
    assert_eq!(check["authenticated"], true);
    assert_eq!(check["profile"]["username"], "alice");
    assert_eq!(check["profile"]["provider_id"], "google:123");
    assert_eq!(check["profile"]["join_date"], "2023-11-18T10:20:30Z");
    let r: Value = s
        .post_json(&format!("update?jwt={token}&username=alice2"))
        .await;
    assert_eq!(
        r,
        json!({ "success": false, "error": "Cannot modify username, already set" })
    );

    // New users start without a username: the NOT NULL of the original is gone.
    let carol = s.dev_login("carol@example.org", "Carol").await;
    let r: Value = s
        .post_json(&format!("update?jwt={carol}&username=alice"))
        .await;
    assert_eq!(r["error"], "Username taken");
    let r: Value = s
        .post_json(&format!("update?jwt={carol}&username=carol"))
        .await;
    assert_eq!(r, json!({ "success": true }));

    // Logging an adopted user in refreshes the profile but keeps id, e-mail, username, join date.
    let again = s.dev_login("alice@example.org", "Alice New").await;
    let check = s.get_json(&format!("check?jwt={again}")).await;
    assert_eq!(check["profile"]["id"], alice.as_str());
    assert_eq!(check["profile"]["name"], "Alice New");
    assert_eq!(check["profile"]["username"], "alice");
    assert_eq!(check["profile"]["join_date"], "2023-11-18T10:20:30Z");

    // A second start on the same database migrates nothing again and keeps every row.
    let db = s.stop_keep_db().await;
    let s = TestServer::start_with(Options {
        db: Some(db),
        ..Options::default()
    })
    .await;
    let count = s
        .app
        .db
        .query_one_raw(Statement::from_string(
            s.app.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM users",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(
        s.get_json("resolve?username=carol").await["userid"],
        md5_hex("carol@example.org").as_str()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gets_json_errors_not_a_crash() {
    let s = TestServer::start().await;
    let token = s.dev_login("lee@example.org", "Lee").await;
    // Close the pool under the running server: every query now fails.
    s.app.db.clone().close().await.unwrap();
    for path in [
        format!("check?jwt={token}"),
        format!("authorize?jwt={token}&service=example"),
        "resolve?username=lee".into(),
    ] {
        let r = s.client.get(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "error": "service unavailable: database not reachable" })
        );
    }
    let r = s
        .client
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "unavailable");
    let r = s
        .client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// SQLite: another process holding the write lock past the busy timeout (5 s) refuses writes
/// cleanly (a login goes back to `next` with `temporarily_unavailable`, nothing written), while
/// reads go on (WAL) and the circuit breaker stays closed: a busy lock is not an outage.
/// PostgreSQL's outages are `outage.rs`'s (a private server stopped and started); a lock there
/// makes writes wait, it does not refuse them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_write_lock_held_past_the_busy_timeout_refuses_writes_not_reads() {
    let mut options = Options::default();
    // Every check reads the row: the reads below are the database's, not the cache's.
    options
        .env
        .insert("AUTHHOST_DATABASE__USER_CACHE_MS".into(), "0".into());
    options.env.insert(
        "AUTHHOST_DATABASE__STALE_IF_ERROR_SECONDS".into(),
        "0".into(),
    );
    let s = TestServer::start_with(options).await;
    if s.db.is_postgres() {
        s.stop().await;
        return;
    }
    let token = s.dev_login("held@example.org", "Held").await;
    // One connection, so BEGIN and ROLLBACK go to the same one.
    let holder = authhost::db::connect(&s.db.url, Some(1)).await.unwrap();
    holder.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();

    assert!(
        s.authenticated(&token).await,
        "a read while the lock is held"
    );
    let started = std::time::Instant::now();
    let r = s
        .client
        .post(s.url("login/dev"))
        .form(&[
            ("email", "blocked@example.org"),
            ("name", "Blocked"),
            ("next", "https://app.example.org/done"),
        ])
        .send()
        .await
        .unwrap();
    let to = authhost_tests::location(&r);
    assert_eq!(
        authhost_tests::query_param(&to, "error"),
        "temporarily_unavailable",
        "{to} after {:?}",
        started.elapsed()
    );
    assert!(!to.contains("jwt="), "{to}");
    // Writes through the breaker itself (the login's statements run inside its transaction,
    // which the breaker sees only at BEGIN): more than its threshold, at once.
    let writes = (0..=authhost::db::breaker::THRESHOLD).map(|_| {
        let db = s.app.db.clone();
        async move { authhost::hooks::retry(&db, None).await }
    });
    for result in join_all(writes).await {
        let e = result.expect_err("a write while the lock is held");
        assert!(authhost::db::breaker::is_temporary(&e), "{e}");
    }
    assert!(
        s.app.db.breaker().is_closed(),
        "a busy lock is not an outage"
    );
    assert!(s.authenticated(&token).await, "reads still go on");

    holder.execute_unprepared("ROLLBACK").await.unwrap();
    holder.close().await.ok();
    let blocked = authhost::users::find(&s.app.db, "blocked@example.org").await;
    assert!(
        matches!(blocked, Err(authhost::users::FindError::NotFound)),
        "nothing of the refused login: {blocked:?}"
    );
    s.dev_login("blocked@example.org", "Blocked").await;
    s.stop().await;
}

/// On a SQLite file the pool's connections commit without waiting for the disk
/// (`synchronous=NORMAL`), and every write waits for a shared sync of the log instead: a login
/// (a transaction) and an autocommit write each count one, concurrent logins share them, and
/// reads sync nothing. (That a write is not acknowledged before a sync that started after its
/// commit is `wal_sync`'s unit test; a power loss cannot be staged here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_a_shared_sync_of_the_log() {
    let s = TestServer::start().await;
    let Some(wal) = s.app.db.wal_sync() else {
        assert!(s.db.is_postgres(), "a SQLite file without a group sync");
        s.stop().await;
        return;
    };
    let pragma = |name: &str| {
        let sql = format!("PRAGMA {name}");
        let db = s.app.db.clone();
        async move {
            db.query_one_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, sql))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let level: i32 = pragma("synchronous").await.try_get_by_index(0).unwrap();
    assert_eq!(level, 1, "synchronous=NORMAL on the pool's connections");
    let mode: String = pragma("journal_mode").await.try_get_by_index(0).unwrap();
    assert_eq!(mode, "wal");
    let log = s.app.db.wal_log().unwrap();
    assert!(log.exists(), "{} is not SQLite's log", log.display());
    assert_eq!(s.metric("authhost_db_wal_sync_failed").await, 0.0);
    assert_eq!(s.app.db.sync_failure(), None);

    let before = wal.syncs();
    let token = s.dev_login("synced@example.org", "Synced").await;
    assert!(wal.syncs() > before, "a login waited for no sync");
    let before = wal.syncs();
    for _ in 0..20 {
        assert!(s.authenticated(&token).await);
    }
    assert_eq!(wal.syncs(), before, "reads synced the log");

    let writes_before = s.metric("authhost_db_wal_writes_total").await;
    let syncs_before = s.metric("authhost_db_wal_syncs_total").await;
    let logins = (0..16).map(|i| {
        let client = s.client.clone();
        let url = s.url("login/dev");
        async move {
            let email = format!("group{i}@example.org");
            let r = client
                .post(url)
                .form(&[
                    ("email", email.as_str()),
                    ("name", "Group"),
                    ("next", "https://app.example.org/done"),
                ])
                .send()
                .await
                .unwrap();
            authhost_tests::query_param(&authhost_tests::location(&r), "jwt")
        }
    });
    for jwt in join_all(logins).await {
        assert!(!jwt.is_empty());
    }
    let writes = s.metric("authhost_db_wal_writes_total").await - writes_before;
    let syncs = s.metric("authhost_db_wal_syncs_total").await - syncs_before;
    assert!(writes >= 16.0, "16 logins, {writes} writes waited");
    assert!(
        syncs >= 1.0 && syncs <= writes,
        "{syncs} syncs for {writes} writes"
    );
    s.stop().await;
}

/// The log synced is the one SQLite writes, also when the database's path is a symbolic link
/// (SQLite puts the log beside the link's target).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_synced_is_beside_a_linked_databases_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("real/authhost.db"), b"").unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("real/authhost.db"),
        dir.path().join("link.db"),
    )
    .unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("link.db").display());
    let db = authhost::db::connect(&url, Some(2)).await.unwrap();
    authhost::db::migrate(&db).await.unwrap();
    let log = db.wal_log().unwrap().to_path_buf();
    assert_eq!(
        log,
        dir.path()
            .join("real/authhost.db-wal")
            .canonicalize()
            .unwrap()
    );
    assert!(!dir.path().join("link.db-wal").exists());
    let before = db.wal_sync().unwrap().syncs();
    authhost::oidc_codes::sweep(&db, authhost::tokens::now())
        .await
        .unwrap();
    assert!(db.wal_sync().unwrap().syncs() > before);
    db.close().await.unwrap();
}

/// Runs the futures at once on the test's runtime, results in order.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `authhost check`'s lines for the database at `url`, run as an operator would.
fn check_lines(dir: &std::path::Path, url: &str) -> String {
    let (private, public) = authhost_tests::key_pair(0);
    std::fs::write(dir.join("private.pem"), private).unwrap();
    std::fs::write(dir.join("public.pem"), public).unwrap();
    let config = dir.join("check.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nexternal_address = \"http://127.0.0.1:1\"\n\
             data_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n[keys]\n\
             private_key_file = \"{d}/private.pem\"\npublic_key_file = \"{d}/public.pem\"\n\
             [plugins]\nservices = \"example:sample_permission_provider\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let out = authhost_tests::authhost_command()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_how_the_database_connection_travels() {
    let (dir, db, conn) = TestDb::migrated().await;
    let lines = check_lines(dir.path(), &db.url);
    let connection = |lines: &str| {
        lines
            .lines()
            .find(|l| l.contains("database connection:"))
            .map(str::to_string)
    };
    if !db.is_postgres() {
        assert_eq!(
            connection(&lines),
            None,
            "SQLite has no connection to describe: {lines}"
        );
        return;
    }
    // The server's own word on whether it offers TLS decides what `prefer` must have given.
    let offered = conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SHOW ssl",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<String>("", "ssl").ok())
        .unwrap();
    let line = connection(&lines).unwrap_or_else(|| panic!("no connection line: {lines}"));
    let separator = if db.url.contains('?') { '&' } else { '?' };
    if offered == "on" && !db.url.contains("sslmode") {
        assert!(
            line.starts_with("WARN") && line.contains("TLS (TLSv"),
            "{line}"
        );
    }
    let clear = check_lines(dir.path(), &format!("{}{separator}sslmode=disable", db.url));
    let line = connection(&clear).unwrap_or_else(|| panic!("no connection line: {clear}"));
    assert!(
        line.starts_with("OK") && line.contains("clear text"),
        "{line}"
    );
    conn.close().await.ok();
    db.drop_database().await;
}

#[test]
fn a_cli_command_names_an_unreachable_database_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nowhere");
    let (private, public) = authhost_tests::key_pair(0);
    std::fs::write(dir.path().join("private.pem"), private).unwrap();
    std::fs::write(dir.path().join("public.pem"), public).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\n[keys]\nprivate_key_file = \"{d}/private.pem\"\n\
             public_key_file = \"{d}/public.pem\"\n[server]\ndata_dir = \"{d}\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = authhost_tests::authhost_command()
        .arg("--config")
        .arg(&config)
        .args(["users", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("TCP connection to 127.0.0.1:{port}"))
            && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
