//! Durable hook events: the outbox. A hook event is written to `hook_events` (one row per
//! extension) in the transaction of the change that causes it, then delivered at once; an event
//! whose delivery fails (error, panic, crash, timeout) stays and is retried in the background
//! with backoff up to `plugins.hook_max_attempts`, then kept as `failed` (`authhost hooks`,
//! `authhost hooks retry`). Delivered events are deleted.
//!
//! Each delivery adds `"hook_event": {"id", "attempt"}` to the profile the extension receives,
//! so it can drop duplicates (a delivery that succeeded in the plugin but whose answer was lost
//! is delivered again). Events of one user reach one extension in order: an event is delivered
//! only when no earlier event of the same user and extension is pending. A delivery takes the
//! event with a lease (a conditional update, the same on SQLite and PostgreSQL), so with several
//! replicas on one database each event is delivered by one of them at a time.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement, Value as DbValue,
};
use serde_json::{Value, json};

use crate::db::hook_event::{self, Entity as HookEvents, Model as HookEvent};
use crate::plugins::{Hook, PluginSet};

const PENDING: &str = "pending";
const FAILED: &str = "failed";
/// Events looked at per background round.
const BATCH: u64 = 32;
/// How long the background leaves a new event to the request that wrote it.
const FIRST_DELIVERY_GRACE_MS: i64 = 60_000;

/// The order rule, shared by the claim and the background's search: no earlier event of the
/// same user and extension is pending.
const FIRST_IN_LINE: &str = "NOT EXISTS (SELECT 1 FROM hook_events AS earlier WHERE \
    earlier.user_id = hook_events.user_id AND earlier.extension = hook_events.extension AND \
    earlier.status = 'pending' AND earlier.id < hook_events.id)";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Writes one row per extension for each `(hook, profile)` event, in the caller's transaction.
/// Returns the new ids in delivery order.
pub async fn enqueue(
    txn: &impl ConnectionTrait,
    user_id: &str,
    events: &[(Hook, Value)],
    extensions: &[String],
) -> Result<Vec<i64>, DbErr> {
    let mut ids = Vec::new();
    let now = now_ms();
    for (hook, profile) in events {
        for extension in extensions {
            let row = hook_event::ActiveModel {
                user_id: Set(user_id.to_string()),
                hook: Set(hook.name().to_string()),
                extension: Set(extension.clone()),
                payload: Set(profile.to_string()),
                status: Set(PENDING.into()),
                attempts: Set(0),
                // The request that wrote it delivers it first; the background only if that
                // never happens (the process ended in between).
                next_attempt_at: Set(now + FIRST_DELIVERY_GRACE_MS),
                locked_until: Set(0),
                last_error: Set(None),
                created_at: Set(now),
                ..Default::default()
            };
            ids.push(row.insert(txn).await?.id);
        }
    }
    Ok(ids)
}

/// `?` placeholders as the backend wants them.
fn statement(backend: DbBackend, sql: &str, values: Vec<DbValue>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_string(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Takes event `id` for one delivery if it is free, first in its user's and extension's line,
/// and (for the background, `due`) due. Returns the lease it holds (its `locked_until`): the
/// outcome is written only while the row still carries it. Whoever's update changes the row
/// has it.
async fn claim(
    db: &crate::db::Db,
    id: i64,
    due: bool,
    lease: Duration,
) -> Result<Option<i64>, DbErr> {
    let now = now_ms();
    let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let sql = format!(
        "UPDATE hook_events SET locked_until = ? WHERE id = ? AND status = 'pending' \
         AND next_attempt_at <= ? AND locked_until <= ? AND {FIRST_IN_LINE}"
    );
    let due_by = if due { now } else { i64::MAX };
    let done = db
        .execute_raw(statement(
            db.get_database_backend(),
            &sql,
            vec![until.into(), id.into(), due_by.into(), now.into()],
        ))
        .await?;
    Ok((done.rows_affected() == 1).then_some(until))
}

/// Retry delay after `attempts` failed deliveries: the base doubling, at most an hour.
fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// Delivers one claimed event (held until `lease`) and records the outcome, unless the lease
/// was lost meanwhile (then whoever holds it now records theirs).
async fn deliver(
    db: &crate::db::Db,
    plugins: &PluginSet,
    event: HookEvent,
    lease: i64,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let attempt = u32::try_from(event.attempts).unwrap_or(0).saturating_add(1);
    let mut profile: Value = serde_json::from_str(&event.payload).unwrap_or_else(|_| json!({}));
    if let Some(obj) = profile.as_object_mut() {
        obj.insert(
            "hook_event".into(),
            json!({ "id": event.id, "attempt": attempt }),
        );
    }
    let result = match Hook::from_name(&event.hook) {
        Some(hook) => plugins
            .deliver(&event.extension, hook, profile)
            .await
            .map_err(|e| e.to_string()),
        None => Err(format!("unknown hook `{}`", event.hook)),
    };
    let policy = plugins.hook_policy();
    let mine = sea_orm::Condition::all()
        .add(hook_event::Column::Id.eq(event.id))
        .add(hook_event::Column::LockedUntil.eq(lease));
    let (written, outcome) = match result {
        Ok(()) => {
            let done = HookEvents::delete_many().filter(mine).exec(db).await?;
            (done.rows_affected, "delivered")
        }
        Err(error) => {
            let last = attempt >= policy.max_attempts;
            let wait = backoff(policy.retry_base, attempt);
            let next = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            let mut update = HookEvents::update_many()
                .col_expr(
                    hook_event::Column::Attempts,
                    Expr::value(i32::try_from(attempt).unwrap_or(i32::MAX)),
                )
                .col_expr(hook_event::Column::LastError, Expr::value(error))
                .col_expr(hook_event::Column::LockedUntil, Expr::value(0i64));
            update = if last {
                update.col_expr(hook_event::Column::Status, Expr::value(FAILED))
            } else {
                update.col_expr(hook_event::Column::NextAttemptAt, Expr::value(next))
            };
            let done = update.filter(mine).exec(db).await?;
            (done.rows_affected, if last { "failed" } else { "retried" })
        }
    };
    if written == 0 {
        tracing::warn!(
            event = event.id,
            "hook event's lease ran out during its delivery; its outcome is not recorded"
        );
        return Ok(false);
    }
    metrics::counter!("authhost_hook_events_total", "outcome" => outcome).increment(1);
    Ok(outcome == "delivered")
}

/// Claims and delivers event `id` now, due or not; `false` when it was not its turn (an
/// earlier event of its user and extension is pending) or someone else holds it.
async fn try_deliver(db: &crate::db::Db, plugins: &PluginSet, id: i64) -> Result<bool, DbErr> {
    let Some(lease) = claim(db, id, false, plugins.hook_policy().lease).await? else {
        return Ok(false);
    };
    if let Some(event) = HookEvents::find_by_id(id).one(db).await? {
        deliver(db, plugins, event, lease).await?;
    }
    Ok(true)
}

/// Hands event `id`, not tried by its request, to the background at once (it waits behind an
/// earlier event of its user, so the background keeps the order).
async fn hand_over(db: &crate::db::Db, id: i64) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    HookEvents::update_many()
        .col_expr(hook_event::Column::NextAttemptAt, Expr::value(now_ms()))
        .filter(hook_event::Column::Id.eq(id))
        .filter(hook_event::Column::Attempts.eq(0))
        .filter(hook_event::Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// The first delivery of events just written, in order, on the request's path (as hooks were
/// always called). Failures stay pending for the background. A database error is logged: the
/// change itself is committed, and the background delivers the events later.
/// The deliveries run on their own task, awaited: a client that goes away mid-request does
/// not cut a delivery off between its claim and its outcome.
pub async fn deliver_now(db: &crate::db::Db, plugins: &Arc<PluginSet>, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    let (db, plugins, ids) = (db.clone(), plugins.clone(), ids.to_vec());
    let run = tokio::spawn(async move {
        for id in ids {
            let tried = match try_deliver(&db, &plugins, id).await {
                Ok(true) => Ok(()),
                Ok(false) => hand_over(&db, id).await,
                Err(e) => Err(e),
            };
            if let Err(e) = tried {
                crate::db::count_error(&e);
                tracing::error!(error = %e, event = id, "hook event stays queued: database error");
            }
        }
    });
    let _ = run.await;
}

/// One background round: delivers the events that are due and first in their line; how many
/// were tried.
pub async fn deliver_due(db: &crate::db::Db, plugins: &PluginSet) -> Result<usize, DbErr> {
    let now = now_ms();
    let sql = format!(
        "SELECT * FROM hook_events WHERE status = 'pending' AND next_attempt_at <= ? AND \
         locked_until <= ? AND {FIRST_IN_LINE} ORDER BY id LIMIT {BATCH}"
    );
    let due = HookEvents::find()
        .from_raw_sql(statement(
            db.get_database_backend(),
            &sql,
            vec![now.into(), now.into()],
        ))
        .all(db)
        .await?;
    let lease = plugins.hook_policy().lease;
    let mut tried = 0;
    for event in due {
        if let Some(held) = claim(db, event.id, true, lease).await? {
            tried += 1;
            if let Some(event) = HookEvents::find_by_id(event.id).one(db).await? {
                deliver(db, plugins, event, held).await?;
            }
        }
    }
    Ok(tried)
}

/// Pending events now (for the gauge).
async fn pending(db: &crate::db::Db) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    HookEvents::find()
        .filter(hook_event::Column::Status.eq(PENDING))
        .count(db)
        .await
}

/// The background delivery loop: every `poll`, delivers what is due with the plugin set of the
/// moment, until `stop` changes.
pub async fn run(
    db: crate::db::Db,
    plugins: impl Fn() -> Arc<PluginSet> + Send + 'static,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let gauge = metrics::gauge!("authhost_hook_events_pending");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
        // The breaker logged the outage once; rounds wait for the database quietly.
        if !db.breaker().is_closed() {
            continue;
        }
        let set = plugins();
        match deliver_due(&db, &set).await {
            Ok(_) => {}
            Err(e) => {
                crate::db::count_error(&e);
                tracing::warn!(error = %e, "hook delivery round failed; retrying later");
            }
        }
        if let Ok(n) = pending(&db).await {
            gauge.set(n as f64);
        }
    }
}

/// Pending and failed events, oldest first (`authhost hooks`).
pub async fn list(db: &crate::db::Db) -> Result<Vec<HookEvent>, DbErr> {
    HookEvents::find()
        .order_by_asc(hook_event::Column::Id)
        .all(db)
        .await
}

/// Requeues failed events (`id`, or all): pending again, due now, attempts from zero.
pub async fn retry(db: &crate::db::Db, id: Option<i64>) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Expr;
    let mut update = HookEvents::update_many()
        .col_expr(hook_event::Column::Status, Expr::value(PENDING))
        .col_expr(hook_event::Column::Attempts, Expr::value(0))
        .col_expr(hook_event::Column::NextAttemptAt, Expr::value(now_ms()))
        .col_expr(hook_event::Column::LockedUntil, Expr::value(0i64))
        .filter(hook_event::Column::Status.eq(FAILED));
    if let Some(id) = id {
        update = update.filter(hook_event::Column::Id.eq(id));
    }
    Ok(update.exec(db).await?.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let s = statement(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = statement(DbBackend::Sqlite, "a = ?", vec![1.into()]);
        assert_eq!(s.sql, "a = ?");
    }
}
