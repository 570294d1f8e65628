//! The listener for user changes announced by any replica (`crate::user_changes`): each
//! notification drops that user's row from this replica's cache.

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DbBackend};
use tokio::sync::watch;

use super::UserCache;
use crate::db::Db;
use crate::user_changes::CHANNEL;

/// The first pause before listening again after a lost connection, doubled up to `MAX_PAUSE`.
/// Half a second: a change committed in that gap is missed, which the short time to live covers.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Listens for announced changes and invalidates `cache` for each, until `stop` changes or its
/// sender is dropped; reconnects after a lost connection. Returns at once on SQLite.
pub async fn listen(db: &Db, cache: &UserCache, mut stop: watch::Receiver<bool>) {
    if db.get_database_backend() != DbBackend::Postgres || !cache.can_listen() {
        return;
    }
    let pool = db.raw().get_postgres_connection_pool().clone();
    let mut pause = FIRST_PAUSE;
    // Whether the last attempt's failure was logged already: one line per outage, not per try.
    let mut said = false;
    loop {
        let ended = tokio::select! {
            ended = listen_once(&pool, cache) => ended,
            _ = stop.changed() => {
                cache.set_listening(false);
                return;
            }
        };
        cache.set_listening(false);
        metrics::counter!("authhost_user_changes_lost_total").increment(1);
        let fallback_ms = u64::try_from(cache.fallback_ttl().as_millis()).unwrap_or(u64::MAX);
        match ended {
            // It was listening: the connection ended. Start again soon.
            Ok(()) => {
                pause = FIRST_PAUSE;
                said = true;
                tracing::warn!(
                    fallback_ms,
                    "lost the listener for user changes: user rows are reused for \
                     database.user_cache_ms only, until it listens again"
                );
            }
            Err(e) => {
                pause = (pause * 2).min(MAX_PAUSE);
                if !std::mem::replace(&mut said, true) {
                    tracing::warn!(
                        error = %e,
                        fallback_ms,
                        "cannot listen for user changes: user rows are reused for \
                         database.user_cache_ms only, until it can"
                    );
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection's life: `LISTEN`, then invalidations until the connection ends. `Ok` when it
/// had been listening, `Err` when it could not start.
async fn listen_once(
    pool: &sea_orm::sqlx::PgPool,
    cache: &UserCache,
) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection ends this one; the caller decides when to try again.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    cache.set_listening(true);
    tracing::info!("listening for user changes");
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => cache.invalidate(n.payload()),
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "user change listener ended");
                return Ok(());
            }
        }
    }
}
