//! Changes to a user's row, announced to every replica on PostgreSQL: each write that affects a
//! user's tokens or profile (login, logout, `users disable/enable/logout/delete`, username)
//! runs `announce` in its own transaction, so `NOTIFY` goes out exactly when the change commits;
//! every server listens (`crate::user_cache::listener`) and drops that user's cache entry at
//! once. While its listener is connected, a replica keeps user rows for `database.user_cache_notified_seconds`; when the
//! connection is lost it says so (log, `authhost_user_changes_listening`) and rows fall back to
//! `database.user_cache_ms` until it listens again (rows read before that stay on the short
//! time to live: a change may have been missed meanwhile). SQLite has no such channel: there
//! the short time to live is all there is, as before.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// The `LISTEN`/`NOTIFY` channel; the payload is the user's id.
pub const CHANNEL: &str = "authhost_user_changed";
/// The payload of a listener's heartbeat to itself: no user id looks like it (ids are hex).
pub const HEARTBEAT: &str = "-heartbeat-";

/// Announces, inside the transaction `db`, that user `id` changed; nothing on SQLite.
pub async fn announce(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// A heartbeat on the channel (`crate::user_cache::listener`), outside any transaction.
pub async fn heartbeat(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    announce(db, HEARTBEAT).await
}
