//! When this replica heard every user change (`crate::user_changes`): the current or last
//! listening period. A row read within a period is known current for as long as the period
//! lasts; outside one, only for the short time to live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A listener lost this long before the breaker opened counts as lost with the database (the
/// listener hears a stopped server at once; the breaker waits for the pool's time-out first).
pub const LOSS_GRACE: Duration = Duration::from_secs(10);

pub struct Listening {
    epoch: Instant,
    /// Nanoseconds after `epoch`: the period's start (0: never listened) and end (0: still
    /// listening). Stored end-then-start when starting, so a reader never sees a new start with
    /// no end unless it really listens.
    start: AtomicU64,
    end: AtomicU64,
    losses: AtomicU64,
}

/// Up to when, and for which rows, a replica's hearing covers an outage that began at `since`.
pub struct Coverage {
    /// The moment up to which changes would have reached this replica.
    pub until: Instant,
    /// Rows read at or after this, and by `until`, were covered by notifications.
    pub heard_from: Option<Instant>,
}

impl Listening {
    pub fn new() -> Listening {
        Listening {
            epoch: Instant::now(),
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
            losses: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn at(&self, ns: u64) -> Option<Instant> {
        (ns != 0).then(|| self.epoch + Duration::from_nanos(ns))
    }

    /// A period starts: rows read from now on are heard about. (Called after a `stop`: between
    /// the two stores the period reads as the new start with the old end, i.e. not listening.)
    pub fn start(&self) {
        self.start.store(self.now_ns(), Ordering::Release);
        self.end.store(0, Ordering::Release);
    }

    /// The period ends (once per period: `losses` counts them).
    pub fn stop(&self) {
        if self.is_listening() {
            self.end.store(self.now_ns(), Ordering::Release);
            self.losses.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn is_listening(&self) -> bool {
        self.start.load(Ordering::Acquire) != 0 && self.end.load(Ordering::Acquire) == 0
    }

    /// Periods that ended (a lost connection, or deafness), since start.
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Relaxed)
    }

    /// Whether a row read at `read_at` is heard about now (it was read in the current period).
    pub fn hears(&self, read_at: Instant) -> bool {
        if !self.is_listening() {
            return false;
        }
        self.at(self.start.load(Ordering::Acquire))
            .is_some_and(|start| read_at >= start)
    }

    /// How far this replica's hearing reaches into an outage that began at `since`: through it
    /// when still listening then, up to the loss when the listener went within `LOSS_GRACE`
    /// before it, not at all otherwise (the short time to live alone, up to `since`).
    pub fn coverage(&self, since: Instant) -> Coverage {
        let start = self.at(self.start.load(Ordering::Acquire));
        let end = self.at(self.end.load(Ordering::Acquire));
        match (start, end) {
            (Some(start), None) => Coverage {
                until: since,
                heard_from: Some(start),
            },
            (Some(start), Some(end)) if end >= since => Coverage {
                until: since,
                heard_from: Some(start),
            },
            (Some(start), Some(end)) if end + LOSS_GRACE >= since => Coverage {
                until: end,
                heard_from: Some(start),
            },
            _ => Coverage {
                until: since,
                heard_from: None,
            },
        }
    }
}
