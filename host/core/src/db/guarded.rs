//! `Db`: the connection pool behind its circuit breaker. Every statement and every `BEGIN` goes
//! through `Breaker::admit` first and reports its outcome after, so the whole core fails fast
//! in an outage without a check at each call site. On a SQLite file, every write also waits
//! for its group sync (`wal_sync`) before it returns: a commit is acknowledged once on disk.

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

use super::breaker::Breaker;
use super::wal_sync::{GroupSync, WalFile};

#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    breaker: Arc<Breaker>,
    url: Arc<str>,
    /// The write-ahead log's group sync, for a SQLite file (`connect` opens those with
    /// `synchronous=NORMAL`).
    wal: Option<Arc<GroupSync>>,
    /// The log that group sync syncs.
    wal_log: Option<Arc<std::path::Path>>,
}

impl Db {
    /// Wraps a pool opened from `url` (the URL a failure is confirmed against).
    pub fn new(conn: DatabaseConnection, url: &str) -> Db {
        Db {
            conn,
            breaker: Arc::new(Breaker::new(url)),
            url: Arc::from(url),
            wal: None,
            wal_log: None,
        }
    }

    /// Makes every write wait for a sync of the SQLite log beside `database` (the database
    /// file's path as SQLite resolved it; the pool runs `synchronous=NORMAL`).
    pub(super) fn with_wal_sync(mut self, database: &std::path::Path) -> Db {
        let log = WalFile::new(database);
        self.wal_log = Some(Arc::from(log.path()));
        self.wal = Some(Arc::new(GroupSync::new(Arc::new(log))));
        self
    }

    /// The SQLite log every write waits to be synced (`None` without group sync).
    pub fn wal_log(&self) -> Option<&std::path::Path> {
        self.wal_log.as_deref()
    }

    /// The group sync of a SQLite file's log (`None` on PostgreSQL and in-memory SQLite).
    pub fn wal_sync(&self) -> Option<&GroupSync> {
        self.wal.as_deref()
    }

    /// The URL the pool was opened with (secrets included: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool itself, for what the breaker has no say in (migrations, pool figures, closing).
    pub fn raw(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Runs `call` unless the breaker is open, and reports how it went.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
        self.breaker.admit()?;
        let result = call.await;
        self.breaker.observe(&result, &self.conn);
        result
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.guarded(self.conn.ping()).await
    }

    /// Runs the write `call`, then waits until it is on disk.
    async fn write<T>(&self, call: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
        self.guarded(async {
            let done = call.await?;
            self.durable().await?;
            Ok(done)
        })
        .await
    }

    /// Waits for a sync of the log that started after the last commit (nothing to wait for on
    /// PostgreSQL: its commit returns once durable).
    pub(super) async fn durable(&self) -> Result<(), DbErr> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        wal.wait_durable().await.map_err(|e| {
            DbErr::Custom(format!(
                "the database's write-ahead log could not be synced to disk: {e}"
            ))
        })
    }

    /// Starts a transaction; the statements inside it go to the pool's connection directly.
    /// End it with `Db::commit`, which waits for the commit to be on disk.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guarded(self.conn.begin()).await
    }

    /// Commits `txn` (from `begin`) and returns once it is on disk.
    /// Not refused by an open breaker: the transaction already holds a working connection, and
    /// throwing its work away would help nobody.
    #[allow(clippy::disallowed_methods)] // the one place a transaction is committed
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), DbErr> {
        let result = async {
            txn.commit().await?;
            self.durable().await
        }
        .await;
        self.breaker.observe(&result, &self.conn);
        result
    }

    /// Why writes are refused for good, once a sync of the SQLite log failed.
    pub fn sync_failure(&self) -> Option<&str> {
        self.wal.as_deref().and_then(GroupSync::failure)
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.conn.close().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.write(self.conn.execute_raw(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.write(self.conn.execute_unprepared(sql)).await
    }

    // Queries are reads, except `INSERT/UPDATE/DELETE … RETURNING`.
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if is_read(&stmt.sql) {
            return self.guarded(self.conn.query_one_raw(stmt)).await;
        }
        self.write(self.conn.query_one_raw(stmt)).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if is_read(&stmt.sql) {
            return self.guarded(self.conn.query_all_raw(stmt)).await;
        }
        self.write(self.conn.query_all_raw(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.conn.support_returning()
    }
}

/// Whether a statement only reads: a `SELECT` (anything else may write, and is synced).
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_selects_count_as_reads() {
        assert!(super::is_read("SELECT 1"));
        assert!(super::is_read("  select \"id\" FROM users"));
        assert!(!super::is_read("UPDATE t SET a = 1 RETURNING a"));
        assert!(!super::is_read("INSERT INTO t VALUES (1) RETURNING id"));
        assert!(!super::is_read(
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"
        ));
        assert!(!super::is_read("SEL"));
    }
}
