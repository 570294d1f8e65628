//! The database's circuit breaker: once the database is known unreachable, requests that need
//! it fail in microseconds instead of each waiting out the pool's acquire timeout (5 s), and one
//! background probe at a time (with back-off) finds out when it answers again.
//!
//! Closed: every call goes through; a run of `THRESHOLD` consecutive failures of the connection
//! kind (`is_unreachable`) opens it, and so does a single one confirmed by a failed TCP connect
//! to the PostgreSQL server. Pool time-outs count: sqlx reports a server that refuses or is
//! still starting as one, after retrying until the acquire timeout. A saturated pool still
//! answers some requests in between, and every success resets the count. Open: calls fail at once with a connection error; the probe pings
//! every 100 ms, then every 250 ms, and the first ping answered closes it. Query errors (a
//! constraint, a syntax error) say nothing about reachability and reset nothing.
//!
//! One breaker per connection pool (per `App`): never process-global, tests run many servers
//! in one process.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

/// Consecutive connection failures that open the breaker.
pub const THRESHOLD: u32 = 3;
/// The probe's first pause, doubled after each failed ping up to `PROBE_MAX_PAUSE`.
const PROBE_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// At most this between two pings: recovery is noticed within about half a second (the
/// pause, plus the pool's own retry pauses inside a ping).
const PROBE_MAX_PAUSE: Duration = Duration::from_millis(250);
/// A ping not answered within this counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `e` says the database cannot be reached (as opposed to refusing one statement).
pub fn is_unreachable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    match sqlx_error(e) {
        Some(
            Sqlx::Io(_)
            | Sqlx::Tls(_)
            | Sqlx::Protocol(_)
            | Sqlx::PoolTimedOut
            | Sqlx::PoolClosed
            | Sqlx::WorkerCrashed,
        ) => true,
        Some(_) => database_code(e).is_some_and(|c| unreachable_code(&c)),
        None => false,
    }
}

/// The sqlx error under a statement's `DbErr`, if it came from sqlx.
fn sqlx_error(e: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// The database's own error code (a SQLSTATE, or SQLite's number), if the database refused.
fn database_code(e: &DbErr) -> Option<String> {
    match sqlx_error(e)? {
        sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// PostgreSQL's connection exceptions (class 08) and shutdowns (57P01-57P03); SQLite's
/// primary codes for an I/O error (10) and a file it cannot open (14), which come as the
/// extended code's number. A busy SQLite lock is not among them: it blocks writes, while reads
/// go on (WAL), so it must not stop every request (`is_temporary` covers it).
fn unreachable_code(code: &str) -> bool {
    if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
        return true;
    }
    sqlite_primary(code).is_some_and(|n| matches!(n, 10 | 14))
}

/// SQLite's primary result code, when `code` is one of SQLite's (a number of at most four
/// digits, as sqlx gives its extended codes); PostgreSQL's SQLSTATEs have five characters,
/// some all digits, and are never taken for one.
fn sqlite_primary(code: &str) -> Option<i32> {
    (code.len() < 5)
        .then(|| code.parse::<i32>().ok())
        .flatten()
        .map(|n| n & 0xff)
}

/// Whether `e` may pass by itself, so the user may simply try again (a login answers
/// `temporarily_unavailable` rather than `server_error`): the database unreachable, or a
/// SQLite lock held past the busy timeout (5, 6), a full disk (SQLite 13, PostgreSQL class 53).
pub fn is_temporary(e: &DbErr) -> bool {
    is_unreachable(e)
        || database_code(e).is_some_and(|c| {
            (c.len() == 5 && c.starts_with("53"))
                || sqlite_primary(&c).is_some_and(|n| matches!(n, 5 | 6 | 13))
        })
}

/// Why the breaker is open, for the log and `/readyz`.
#[derive(Debug, Clone)]
pub struct Outage {
    pub since: Instant,
    pub cause: String,
}

pub struct Breaker {
    open: AtomicBool,
    failures: AtomicU32,
    /// Set while an outage is open (and while a confirmation is in flight: `confirming`).
    outage: Mutex<Option<Outage>>,
    confirming: AtomicBool,
    /// The PostgreSQL URL a single failure is confirmed against with a TCP connect.
    url: String,
}

impl Breaker {
    pub fn new(url: &str) -> Breaker {
        Breaker {
            open: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            outage: Mutex::new(None),
            confirming: AtomicBool::new(false),
            url: url.to_string(),
        }
    }

    /// Whether calls go through (the database is believed reachable).
    pub fn is_closed(&self) -> bool {
        !self.open.load(Ordering::Acquire)
    }

    /// The outage in progress, if the breaker is open.
    pub fn outage(&self) -> Option<Outage> {
        if self.is_closed() {
            return None;
        }
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `Ok` when a call may go to the database; the error to answer with at once otherwise.
    pub fn admit(&self) -> Result<(), DbErr> {
        if self.is_closed() {
            return Ok(());
        }
        Err(DbErr::Conn(RuntimeErr::Internal(
            "database unreachable (circuit open; a background probe is watching for it)".into(),
        )))
    }

    /// Takes note of a call's outcome; opens the breaker (and starts its probe) when the
    /// failures say the database is gone. `db` is what the probe pings.
    pub fn observe<T>(self: &Arc<Self>, result: &Result<T, DbErr>, db: &DatabaseConnection) {
        match result {
            Ok(_) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            Err(e) if is_unreachable(e) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= THRESHOLD {
                    self.trip(e.to_string(), db);
                } else {
                    self.confirm(e.to_string(), db);
                }
            }
            Err(_) => {}
        }
    }

    /// A first failure: if the server does not even take a TCP connection, it is gone; no
    /// need to wait for two more requests to each spend the pool's timeout finding out.
    fn confirm(self: &Arc<Self>, cause: String, db: &DatabaseConnection) {
        if self.confirming.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.confirming.store(false, Ordering::Release);
            return;
        };
        let breaker = Arc::downgrade(self);
        let url = self.url.clone();
        let db = db.clone();
        runtime.spawn(async move {
            let why = super::unreachable_because(&url).await;
            let Some(breaker) = breaker.upgrade() else {
                return;
            };
            breaker.confirming.store(false, Ordering::Release);
            if let Some(why) = why {
                breaker.trip(format!("{cause} ({why})"), &db);
            }
        });
    }

    /// Opens the breaker (once per outage) and starts its probe.
    fn trip(self: &Arc<Self>, cause: String, db: &DatabaseConnection) {
        {
            let mut outage = self.outage.lock().unwrap_or_else(|e| e.into_inner());
            if outage.is_some() {
                return;
            }
            *outage = Some(Outage {
                since: Instant::now(),
                cause: cause.clone(),
            });
            self.open.store(true, Ordering::Release);
        }
        tracing::error!(
            cause = %cause,
            "database unreachable: requests that need it fail at once until a probe reaches it"
        );
        metrics::counter!("authhost_db_breaker_transitions_total", "to" => "open").increment(1);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(probe(Arc::downgrade(self), db.clone()));
            }
            // No runtime to probe from: close again, the next call finds out for itself.
            Err(_) => self.close(),
        }
    }

    fn close(&self) {
        // Under the lock that `trip` takes: a trip racing this close either lands before
        // (and is closed with it) or after (and opens a new outage), never half of each.
        let outage = {
            let mut outage = self.outage.lock().unwrap_or_else(|e| e.into_inner());
            self.failures.store(0, Ordering::Relaxed);
            self.open.store(false, Ordering::Release);
            outage.take()
        };
        if let Some(outage) = outage {
            tracing::warn!(
                after_ms = u64::try_from(outage.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "database reachable again: requests go through"
            );
            metrics::counter!("authhost_db_breaker_transitions_total", "to" => "closed")
                .increment(1);
        }
    }
}

/// Pings until the database answers, then closes the breaker; ends early when the breaker's
/// owner (the app) is gone.
async fn probe(breaker: Weak<Breaker>, db: DatabaseConnection) {
    let mut pause = PROBE_FIRST_PAUSE;
    loop {
        tokio::time::sleep(pause).await;
        if breaker.strong_count() == 0 {
            return;
        }
        let answered = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await,
            Ok(Ok(()))
        );
        let Some(b) = breaker.upgrade() else { return };
        if answered {
            b.close();
            return;
        }
        pause = (pause * 2).min(PROBE_MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> DbErr {
        DbErr::Conn(RuntimeErr::Internal("connection refused".into()))
    }

    #[test]
    fn sorts_errors_by_what_they_say_about_reachability() {
        assert!(is_unreachable(&refused()));
        assert!(is_unreachable(&DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout
        )));
        let io = sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_unreachable(&DbErr::Query(RuntimeErr::SqlxError(
            Arc::new(io)
        ))));
        assert!(!is_unreachable(&DbErr::Query(RuntimeErr::SqlxError(
            Arc::new(sea_orm::sqlx::Error::RowNotFound)
        ))));
        assert!(!is_unreachable(&DbErr::RecordNotFound("x".into())));
        for code in ["08006", "57P01", "10", "266", "14"] {
            assert!(unreachable_code(code), "{code}");
        }
        for code in [
            "23505", "19", "2067", "13", "5", "517", "53100", "22026", "22030",
        ] {
            assert!(!unreachable_code(code), "{code}");
        }
    }

    #[tokio::test]
    async fn opens_after_consecutive_failures_and_a_probe_closes_it() {
        // A memory database always answers the probe; SQLite never gets the TCP confirmation.
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("memory database");
        let breaker = Arc::new(Breaker::new("sqlite::memory:"));
        let fail: Result<(), DbErr> = Err(refused());
        for _ in 0..THRESHOLD - 1 {
            breaker.observe(&fail, &db);
        }
        // A success between failures resets the run.
        breaker.observe(&Ok(()), &db);
        for _ in 0..THRESHOLD - 1 {
            breaker.observe(&fail, &db);
        }
        assert!(breaker.is_closed() && breaker.admit().is_ok());
        // A query error is not a connection failure.
        breaker.observe::<()>(&Err(DbErr::RecordNotFound("x".into())), &db);
        assert!(breaker.is_closed());
        breaker.observe(&fail, &db);
        assert!(!breaker.is_closed(), "threshold reached");
        let refusal = breaker.admit().expect_err("open");
        assert!(is_unreachable(&refusal), "{refusal}");
        assert!(
            breaker
                .outage()
                .is_some_and(|o| o.cause.contains("refused"))
        );
        tokio::time::sleep(PROBE_FIRST_PAUSE * 5).await;
        assert!(breaker.is_closed(), "the probe reached the database");
        assert!(breaker.outage().is_none());
    }
}
