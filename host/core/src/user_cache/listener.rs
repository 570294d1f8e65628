//! The listener for user changes announced by any replica (`crate::user_changes`): each
//! notification drops that user's row from this replica's cache.
//!
//! The listener has a connection of its own (not one of the request pool's: a pool of one would
//! otherwise have none left for requests or the breaker's probe). A connection can look alive
//! and hear nothing (a firewall dropping an idle connection without a reset, a failover leaving
//! a half-open socket, a transaction-mode pooler that accepts `LISTEN` and delivers nothing), so
//! the listener sends itself a heartbeat through the request pool every `HEARTBEAT` and counts
//! itself lost when it hears nothing at all, not even that, for `DEAF_AFTER`.

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DbBackend};
use tokio::sync::watch;

use super::UserCache;
use crate::db::Db;
use crate::user_changes::{self, CHANNEL};

/// The first pause before listening again after a lost connection, doubled up to `MAX_PAUSE`.
/// Half a second: a change committed in that gap is missed, which the short time to live covers.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// How often the listener announces a heartbeat to itself.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Nothing heard for this long (three heartbeats missed): the listener counts as lost.
const DEAF_AFTER: Duration = Duration::from_secs(10);

/// How a listening period ended.
enum Ended {
    /// The connection was lost or closed.
    Lost,
    /// Connected and heard, then nothing heard for `DEAF_AFTER`.
    Deaf,
    /// Connected, but not even the first heartbeat arrived (a pooler that accepts `LISTEN` and
    /// delivers nothing): it never counted as listening.
    Silent,
    /// It could not start listening.
    Failed(sea_orm::sqlx::Error),
}

/// Listens for announced changes and invalidates `cache` for each, until `stop` changes or its
/// sender is dropped; reconnects after a lost connection. Returns at once on SQLite.
pub async fn listen(db: &Db, cache: &UserCache, mut stop: watch::Receiver<bool>) {
    if db.get_database_backend() != DbBackend::Postgres || !cache.can_listen() {
        return;
    }
    let mut pause = FIRST_PAUSE;
    // Whether the last attempt's failure was logged already: one line per outage, not per try.
    let mut said = false;
    loop {
        let ended = tokio::select! {
            ended = listen_once(db, cache) => ended,
            _ = stop.changed() => {
                cache.set_listening(false);
                return;
            }
        };
        cache.set_listening(false);
        metrics::counter!("authhost_user_changes_lost_total").increment(1);
        let fallback_ms = u64::try_from(cache.fallback_ttl().as_millis()).unwrap_or(u64::MAX);
        match ended {
            Ended::Lost | Ended::Deaf => {
                pause = FIRST_PAUSE;
                said = true;
                let deaf = matches!(ended, Ended::Deaf);
                tracing::warn!(
                    fallback_ms,
                    deaf,
                    "stopped listening for user changes (connection lost, or nothing heard, not \
                     even its own heartbeat, for 10 s): user rows are reused for \
                     database.user_cache_ms only, until it listens again"
                );
            }
            Ended::Failed(_) | Ended::Silent => {
                pause = (pause * 2).min(MAX_PAUSE);
                if !std::mem::replace(&mut said, true) {
                    let error = match &ended {
                        Ended::Failed(e) => e.to_string(),
                        _ => "LISTEN accepted, but not even its own heartbeat arrived".into(),
                    };
                    tracing::warn!(
                        error,
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

/// One connection's life: `LISTEN`, then invalidations until the connection ends or goes deaf.
async fn listen_once(db: &Db, cache: &UserCache) -> Ended {
    let mut listener = match PgListener::connect(db.url()).await {
        Ok(l) => l,
        Err(e) => return Ended::Failed(e),
    };
    // A lost connection ends this one; the caller decides when to try again.
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen(CHANNEL).await {
        return Ended::Failed(e);
    }
    // Ended with this function, also when it is cancelled (the server stopping).
    let _heartbeat = AbortOnDrop(tokio::spawn(beat(db.clone())));
    // Listening counts from the first word heard on this connection (the first heartbeat is
    // sent at once), not from `LISTEN`: a connection that accepts it and delivers nothing
    // never lengthens a row's life.
    let mut heard = false;
    loop {
        // A time-out drops the listener mid-wait; it is not used again.
        let message = tokio::time::timeout(DEAF_AFTER, listener.try_recv()).await;
        if matches!(message, Ok(Ok(Some(_)))) && !std::mem::replace(&mut heard, true) {
            cache.set_listening(true);
            tracing::info!("listening for user changes");
        }
        match message {
            Ok(Ok(Some(n))) if n.payload() == user_changes::HEARTBEAT => {}
            Ok(Ok(Some(n))) => cache.invalidate(n.payload()),
            Ok(Ok(None)) => break Ended::Lost,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "user change listener ended");
                break Ended::Lost;
            }
            Err(_) if heard => break Ended::Deaf,
            Err(_) => break Ended::Silent,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Announces a heartbeat every `HEARTBEAT`, through the request pool (while the breaker lets
/// it), so that a listener that hears it knows its own connection still delivers.
async fn beat(db: Db) {
    loop {
        if db.breaker().is_closed()
            && let Err(e) = user_changes::heartbeat(&db).await
        {
            tracing::debug!(error = %e, "user change heartbeat not sent");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}
