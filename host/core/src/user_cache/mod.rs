//! A short-lived cache of user rows for token checks: `check` and `authorize` need the user on
//! every request, and most requests come from the same few users again and again. Writes made
//! by this replica invalidate at once, with no window (see `fill`); the time to live bounds how
//! late another replica's write (a logout) is seen here. Entries are weighed in bytes against a
//! budget, so the cache cannot grow past it whatever the requests.
//!
//! Rows are kept past their time to live, up to `database.stale_if_error_seconds`, for one use
//! only: answering `check`, `authorize` and token exchange while the database is unreachable
//! (`get_or_stale`). Only a row read within that window serves; a write on this replica still
//! removes the row at once, so an invalidated row never comes back.

pub mod listener;
mod listening;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sea_orm::DbErr;

use crate::db::user::Model as User;
use crate::users;

/// Shards of the fill generations.
const SHARDS: usize = 256;

/// Bytes counted for an entry on top of its strings (the `Arc`, the row's fixed fields, the
/// cache's own bookkeeping).
const ENTRY_OVERHEAD: usize = 256;

/// A user row and its `check` answer, rendered once per cache fill.
pub struct CachedUser {
    pub user: User,
    pub check_body: Bytes,
    /// When the row was read from the database.
    read_at: Instant,
}

impl CachedUser {
    pub fn new(user: User) -> CachedUser {
        CachedUser::read_at(user, Instant::now())
    }

    /// A row whose read started at `read_at` (before the query: a change committed while it ran
    /// may be missing from it).
    pub fn read_at(user: User, read_at: Instant) -> CachedUser {
        let body =
            serde_json::json!({ "authenticated": true, "profile": users::full_profile(&user) });
        CachedUser {
            user,
            check_body: Bytes::from(body.to_string()),
            read_at,
        }
    }

    /// Bytes this entry holds, roughly.
    fn weight(&self) -> usize {
        let u = &self.user;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD
            + 2 * u.id.len()
            + text(&u.provider_id)
            + text(&u.username)
            + text(&u.name)
            + text(&u.email)
            + text(&u.avatar_url)
            + self.check_body.len()
    }
}

impl std::ops::Deref for CachedUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

/// Taken before reading a row from the database; a fill with a ticket older than the latest
/// invalidation is dropped.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket(u64);

pub struct UserCache {
    cache: Option<moka::sync::Cache<String, Arc<CachedUser>>>,
    /// How long a row answers as read from the database (`database.user_cache_ms`).
    fresh_for: Duration,
    /// How long while this replica listens for user changes (`crate::user_changes`).
    notified_for: Duration,
    listening: listening::Listening,
    /// How long it may answer while the database is unreachable.
    stale_for: Duration,
    /// Bumped by every invalidation of an id of their shard (`shard`): an invalidation drops
    /// the fills in flight of about 1/256 of the users, not all of them (every replica's
    /// logins and logouts reach every replica).
    generations: [AtomicU64; SHARDS],
    /// Fills hold it shared from comparing their ticket to inserting; invalidations hold it
    /// exclusively around the bump and the removal. So a row read before a logout's UPDATE
    /// is either inserted before the removal (and removed by it) or not inserted at all.
    gate: RwLock<()>,
    /// Lookups that found the user, and those that went to the database.
    pub stats: crate::stats::CacheStats,
}

impl UserCache {
    /// `ttl` zero turns the cache off (and with it stale answers and listening);
    /// `budget_bytes` bounds what it holds.
    pub fn new(ttl: Duration, stale_if_error: Duration, budget_bytes: u64) -> UserCache {
        UserCache::with_notifications(ttl, Duration::ZERO, stale_if_error, budget_bytes)
    }

    /// As `new`; rows read while this replica listens for user changes stay fresh for
    /// `notified` (zero: never listen).
    pub fn with_notifications(
        ttl: Duration,
        notified: Duration,
        stale_if_error: Duration,
        budget_bytes: u64,
    ) -> UserCache {
        // `ttl` zero reads the database on every request: nothing to keep, not even for outages
        // (no row would be current at an outage's start).
        let keep = ttl.max(stale_if_error).max(notified);
        let cache = (!ttl.is_zero() && budget_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|key: &String, value: &Arc<CachedUser>| {
                    u32::try_from(key.len() + value.weight()).unwrap_or(u32::MAX)
                })
                .time_to_live(keep)
                .build()
        });
        UserCache {
            cache,
            fresh_for: ttl,
            notified_for: notified,
            listening: listening::Listening::new(),
            stale_for: stale_if_error,
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
            gate: RwLock::new(()),
            stats: crate::stats::CacheStats::default(),
        }
    }

    /// The user `id` if the cache holds a fresh row; never touches the database. Fresh: read
    /// within `ttl`, or, while this replica listens for changes and the row was read since it
    /// started listening, within the notified time to live.
    pub fn cached(&self, id: &str) -> Option<Arc<CachedUser>> {
        let user = self.cache.as_ref()?.get(id)?;
        let age = user.read_at.elapsed();
        let fresh =
            age < self.fresh_for || (age < self.notified_for && self.listening.hears(user.read_at));
        fresh.then_some(user)
    }

    /// Whether listening for changes would lengthen anything: a notified time to live longer
    /// than `user_cache_ms`, which is not 0 (0 reads the database on every request).
    pub fn can_listen(&self) -> bool {
        self.cache.is_some() && !self.fresh_for.is_zero() && self.notified_for > self.fresh_for
    }

    /// Whether this replica listens for user changes now.
    pub fn is_listening(&self) -> bool {
        self.listening.is_listening()
    }

    /// How often this replica stopped listening (lost or deaf listener) since it started.
    pub fn listener_losses(&self) -> u64 {
        self.listening.losses()
    }

    /// Starts (rows read from now on get the notified time to live) or stops listening (every
    /// row falls back to the short one at once).
    pub fn set_listening(&self, on: bool) {
        if on {
            self.listening.start();
        } else {
            self.listening.stop();
        }
    }

    /// The time to live without notifications (`database.user_cache_ms`).
    pub fn fallback_ttl(&self) -> Duration {
        self.fresh_for
    }

    /// The row of `id` for an answer during an outage that began at `since`: read within
    /// `stale_if_error` of now, and still current when this replica stopped hearing of changes
    /// (at `since`, or when its listener went just before): fresh by `ttl` then, or read while
    /// listening and fresh by the notified time to live then. A row this replica could have
    /// missed a change to before the outage does not answer.
    fn held_for_outage(&self, id: &str, since: Instant) -> Option<Arc<CachedUser>> {
        let user = self.cache.as_ref()?.get(id)?;
        if user.read_at.elapsed() >= self.stale_for {
            return None;
        }
        let coverage = self.listening.coverage(since);
        // Read within the period that covers the outage, and fresh by the notified time to
        // live when it ended; or fresh by the short time to live when the outage began.
        let heard = coverage
            .heard_from
            .is_some_and(|from| user.read_at >= from && user.read_at <= coverage.until);
        let current = since.saturating_duration_since(user.read_at) < self.fresh_for
            || (heard
                && coverage.until.saturating_duration_since(user.read_at) < self.notified_for);
        current.then_some(user)
    }

    /// The user `id`, from the cache or the database. Unknown users are not cached.
    pub async fn get(
        &self,
        db: &crate::db::Db,
        id: &str,
    ) -> Result<Option<Arc<CachedUser>>, DbErr> {
        if let Some(user) = self.stats.record(self.cached(id)) {
            return Ok(Some(user));
        }
        let ticket = self.ticket(id);
        let started = Instant::now();
        let user = users::get(db, id)
            .await?
            .map(|u| Arc::new(CachedUser::read_at(u, started)));
        if let Some(user) = &user {
            self.fill(ticket, id, user.clone());
        }
        Ok(user)
    }

    /// As `get`, but while the database's circuit breaker is open, a row that
    /// `held_for_outage` accepts answers instead of the error (counted for `route` in
    /// `authhost_stale_answers_total`). Any other error, and any error while the breaker is
    /// closed (the first requests of an outage, a busy pool), is returned as is.
    pub async fn get_or_stale(
        &self,
        db: &crate::db::Db,
        id: &str,
        route: &'static str,
    ) -> Result<Option<Arc<CachedUser>>, DbErr> {
        match self.get(db, id).await {
            Err(e) if crate::db::breaker::is_unreachable(&e) => {
                let outage = db.breaker().outage();
                match outage.and_then(|o| self.held_for_outage(id, o.since)) {
                    Some(user) => {
                        metrics::counter!("authhost_stale_answers_total", "route" => route)
                            .increment(1);
                        Ok(Some(user))
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    fn generation(&self, id: &str) -> &AtomicU64 {
        use std::hash::BuildHasher;
        let h = foldhash::fast::FixedState::with_seed(0).hash_one(id);
        let i = usize::try_from(h % SHARDS as u64).unwrap_or(0);
        // `i < SHARDS`, the array's length, by the modulo above.
        #[expect(clippy::indexing_slicing, reason = "in bounds by the modulo")]
        &self.generations[i]
    }

    /// Take before reading the row of `id` that `fill` will insert.
    pub fn ticket(&self, id: &str) -> FillTicket {
        FillTicket(self.generation(id).load(Ordering::Acquire))
    }

    /// Inserts a row read after `ticket` was taken, unless an invalidation came in between
    /// (the row may predate it). An invalidation drops the concurrent fills of the users of its
    /// shard; the next request fills again.
    pub fn fill(&self, ticket: FillTicket, id: &str, user: Arc<CachedUser>) {
        let Some(cache) = &self.cache else { return };
        let _shared = self.gate.read().unwrap_or_else(|e| e.into_inner());
        if self.generation(id).load(Ordering::Acquire) == ticket.0 {
            cache.insert(id.to_string(), user);
        }
    }

    /// Forget `id` after a write (login, username, logout).
    pub fn invalidate(&self, id: &str) {
        let _exclusive = self.gate.write().unwrap_or_else(|e| e.into_inner());
        self.generation(id).fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.cache {
            cache.invalidate(id);
        }
    }

    /// Bytes held now, by the cache's own count (tests, metrics).
    pub fn weighted_size(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str) -> Arc<CachedUser> {
        Arc::new(CachedUser::new(User {
            id: id.into(),
            provider_id: None,
            username: None,
            name: Some(name.into()),
            email: Some(format!("{id}@example.org")),
            avatar_url: None,
            join_date: None,
            last_login: None,
            tokens_valid_after: None,
            disabled_at: None,
        }))
    }

    #[test]
    fn a_fill_read_before_an_invalidation_is_dropped() {
        let cache = UserCache::new(Duration::from_secs(60), Duration::ZERO, 1 << 20);
        let ticket = cache.ticket("u1");
        // A logout's UPDATE and invalidation land between the read and the fill.
        cache.invalidate("u1");
        cache.fill(ticket, "u1", user("u1", "stale"));
        assert!(cache.cached("u1").is_none(), "stale row put back");
        // A fill that read after the invalidation is kept.
        let ticket = cache.ticket("u1");
        cache.fill(ticket, "u1", user("u1", "fresh"));
        assert_eq!(
            cache.cached("u1").map(|u| u.user.name.clone()),
            Some(Some("fresh".into()))
        );
    }

    #[test]
    fn a_row_past_its_time_to_live_is_kept_only_for_outages() {
        let short = Duration::from_millis(30);
        let cache = UserCache::new(short, Duration::from_secs(60), 1 << 20);
        cache.fill(cache.ticket("u1"), "u1", user("u1", "kept"));
        assert!(cache.cached("u1").is_some(), "fresh");
        // An outage that began while the row was fresh: it answers, past its time to live.
        let outage = Instant::now();
        std::thread::sleep(short * 2);
        assert!(
            cache.cached("u1").is_none(),
            "past the time to live, not fresh"
        );
        assert!(
            cache.held_for_outage("u1", outage).is_some(),
            "kept for outages"
        );
        // One that began after the row's time to live: a change may have been missed.
        assert!(cache.held_for_outage("u1", Instant::now()).is_none());
        // An invalidation removes it for outages too: a logout is never undone.
        cache.invalidate("u1");
        assert!(cache.held_for_outage("u1", outage).is_none());
        // Off: nothing is kept past the time to live.
        let cache = UserCache::new(short, Duration::ZERO, 1 << 20);
        cache.fill(cache.ticket("u1"), "u1", user("u1", "kept"));
        let outage = Instant::now();
        std::thread::sleep(short * 2);
        assert!(cache.held_for_outage("u1", outage).is_none());
    }

    #[test]
    fn an_outage_answers_only_rows_this_replica_would_have_heard_changes_to() {
        let short = Duration::from_millis(20);
        let minute = Duration::from_secs(60);
        let cache = UserCache::with_notifications(short, minute, minute, 1 << 20);
        cache.fill(cache.ticket("unheard"), "unheard", user("unheard", "u"));
        cache.set_listening(true);
        cache.fill(cache.ticket("heard"), "heard", user("heard", "h"));
        std::thread::sleep(short * 2);
        // Listening when the outage began: a row read while listening answers, one read before
        // (past its short time to live) does not.
        let outage = Instant::now();
        assert!(cache.held_for_outage("heard", outage).is_some());
        assert!(cache.held_for_outage("unheard", outage).is_none());
        // The listener lost with the database (within the grace): still covered to the loss.
        cache.set_listening(false);
        assert!(cache.held_for_outage("heard", Instant::now()).is_some());
        // A row read after the loss was never heard about: only its short time to live counts.
        cache.fill(cache.ticket("late"), "late", user("late", "l"));
        std::thread::sleep(short * 2);
        assert!(cache.held_for_outage("late", Instant::now()).is_none());
        // Lost long before the outage: rows fall back to the short time to live.
        let later = Instant::now() + listening::LOSS_GRACE + Duration::from_secs(1);
        assert!(cache.held_for_outage("heard", later).is_none());
        assert_eq!(cache.listener_losses(), 1);
    }

    #[test]
    fn rows_read_while_listening_stay_fresh_longer_and_fall_back_when_it_stops() {
        let short = Duration::from_millis(30);
        let cache =
            UserCache::with_notifications(short, Duration::from_secs(60), Duration::ZERO, 1 << 20);
        assert!(cache.can_listen() && !cache.is_listening());
        // Read before listening started: the short time to live, even once it listens.
        cache.fill(cache.ticket("before"), "before", user("before", "b"));
        cache.set_listening(true);
        cache.fill(cache.ticket("after"), "after", user("after", "a"));
        std::thread::sleep(short * 2);
        assert!(cache.cached("before").is_none(), "read before listening");
        assert!(cache.cached("after").is_some(), "read while listening");
        // The listener lost: every row falls back at once (a change may be missed meanwhile).
        cache.set_listening(false);
        assert!(cache.cached("after").is_none());
        cache.set_listening(true);
        assert!(
            cache.cached("after").is_none(),
            "read before listening again"
        );
    }

    #[test]
    fn the_budget_bounds_the_bytes_held() {
        let budget = 64 * 1024;
        let cache = UserCache::new(Duration::from_secs(60), Duration::ZERO, budget);
        for i in 0..2_000 {
            let id = format!("{i:032x}");
            cache.fill(cache.ticket(&id), &id, user(&id, &"n".repeat(500)));
        }
        let held = cache.weighted_size();
        assert!(
            held > 0 && held <= budget,
            "{held} bytes held, budget {budget}"
        );
    }
}
