//! `Db`: the connection pool behind its circuit breaker. Every statement and every `BEGIN` goes
//! through `Breaker::admit` first and reports its outcome after, so the whole core fails fast
//! in an outage without a check at each call site.

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

use super::breaker::Breaker;

#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    breaker: Arc<Breaker>,
    url: Arc<str>,
}

impl Db {
    /// Wraps a pool opened from `url` (the URL a failure is confirmed against).
    pub fn new(conn: DatabaseConnection, url: &str) -> Db {
        Db {
            conn,
            breaker: Arc::new(Breaker::new(url)),
            url: Arc::from(url),
        }
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

    /// Starts a transaction; the statements inside it go to the pool's connection directly.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guarded(self.conn.begin()).await
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
        self.guarded(self.conn.execute_raw(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.guarded(self.conn.execute_unprepared(sql)).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.guarded(self.conn.query_one_raw(stmt)).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.guarded(self.conn.query_all_raw(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.conn.support_returning()
    }
}
