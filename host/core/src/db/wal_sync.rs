//! Group commit for SQLite: the pool's connections run `synchronous=NORMAL` in WAL mode (a
//! commit writes its frames to the write-ahead log but does not wait for the disk), and every
//! write waits here, before it is acknowledged, for one `fsync` of the log that started after
//! its commit. Concurrent writes share that `fsync`, and the write lock is not held while the
//! disk works: as durable as `synchronous=FULL` (an answer is sent only once its write is on
//! disk) without one `fsync` per commit in a row behind the write lock, which bounded every
//! write-heavy route (the token endpoint's grants) by the disk's sync latency.
//!
//! Why syncing our own descriptor is enough: SQLite writes log frames with `write(2)` (it maps
//! only the `-shm` index), and `fsync` flushes the file's pages whichever descriptor wrote them.
//! Checkpoints and a log's reuse are synced by SQLite itself in NORMAL mode. What NORMAL alone
//! would lose on power loss is exactly the commits since the last log sync; this closes that.
//!
//! The log's path is SQLite's own (`PRAGMA database_list`, symbolic links resolved), read by
//! `db::connect` after it checked that the file is in WAL mode.
//!
//! Differences to FULL: another request may read a commit in the moment between the commit and
//! its sync (a power loss then can undo something that request saw, never something a caller
//! was told had happened); and a failed sync cannot undo the commits it was for. So a failed
//! sync is final: every later write fails until a restart (as PostgreSQL stops on a failed
//! `fsync`), because after a failure Linux may mark the lost pages clean and a second sync would
//! report success for data that never reached the disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// What makes the log durable: `fsync` of the file in production, a counter in tests.
pub trait Syncer: Send + Sync + 'static {
    fn sync(&self) -> io::Result<()>;
}

/// Syncs the log `<database>-wal`, and its folder for each new log file (a log SQLite created
/// is only found after a power loss if its directory entry is on disk too; SQLite's FULL mode
/// syncs the folder on a log's first sync too).
pub struct WalFile {
    wal: PathBuf,
    /// The log file whose directory entry was synced last, kept open: while it is open its
    /// inode cannot be reused, so a log SQLite deleted and created again is always told apart.
    known: std::sync::Mutex<Option<std::fs::File>>,
}

impl WalFile {
    /// The log of the SQLite database file `database` (the path SQLite itself resolved).
    pub fn new(database: &Path) -> WalFile {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalFile {
            wal: PathBuf::from(wal),
            known: std::sync::Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.wal
    }
}

impl Syncer for WalFile {
    fn sync(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // Which file is the log now. SQLite deletes it when its last connection closes (after a
        // synced checkpoint) and creates a new one; no log means everything is in the database
        // file, which SQLite synced itself.
        let inode = match std::fs::metadata(&self.wal) {
            Ok(m) => m.ino(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let replaced = match known.as_ref() {
            Some(k) => k.metadata()?.ino() != inode,
            None => true,
        };
        if replaced {
            let file = match std::fs::File::open(&self.wal) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let dir = match self.wal.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            match std::fs::File::open(dir)?.sync_all() {
                // A filesystem that cannot sync a folder (SQLite ignores that too).
                Err(e) if e.kind() != io::ErrorKind::InvalidInput => return Err(e),
                _ => {}
            }
            *known = Some(file);
        }
        // Through the descriptor kept since the log was found: Linux reports a write-back error
        // to every descriptor open when it happened, also after another (SQLite's checkpoint)
        // saw it; a descriptor opened later would be told nothing.
        match known.as_ref() {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

/// Coalesces the syncs of concurrent writes (leader and followers): a write takes a ticket
/// after its commit; whoever holds the lock syncs for every ticket taken so far, and a write
/// whose ticket a finished sync already covers returns without one.
pub struct GroupSync {
    syncer: Arc<dyn Syncer>,
    /// Tickets handed out: one per finished commit.
    tickets: AtomicU64,
    /// The highest ticket a finished sync covers.
    synced: Mutex<u64>,
    /// Syncs done (for `/metrics` and tests).
    syncs: AtomicU64,
    /// Set by the first failed sync (in the sync's own task, so that a request dropped while
    /// it waits cannot lose the failure): from then on every write fails.
    failed: Arc<std::sync::OnceLock<String>>,
}

impl GroupSync {
    pub fn new(syncer: Arc<dyn Syncer>) -> GroupSync {
        GroupSync {
            syncer,
            tickets: AtomicU64::new(0),
            synced: Mutex::new(0),
            syncs: AtomicU64::new(0),
            failed: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Returns once a sync that started after this call has finished (call it after a commit).
    pub async fn wait_durable(&self) -> io::Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::counter!("authhost_db_wal_writes_total").increment(1);
        let mut synced = self.synced.lock().await;
        self.check_failed()?;
        if *synced >= ticket {
            return Ok(());
        }
        // Every ticket up to `upto` was taken after its commit had finished, and the sync
        // below starts after this read: it covers them all.
        let upto = self.tickets.load(Ordering::Acquire);
        let syncer = Arc::clone(&self.syncer);
        let failed = Arc::clone(&self.failed);
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = syncer.sync();
            if let Err(e) = &outcome {
                record_failure(&failed, &e.to_string());
            }
            outcome
        })
        .await
        .map_err(|e| {
            // The sync panicked: nothing says the log is on disk.
            record_failure(&self.failed, &e.to_string());
            io::Error::other(e)
        })
        .and_then(|r| r);
        if let Err(e) = outcome {
            return Err(io::Error::other(e.to_string()));
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("authhost_db_wal_syncs_total").increment(1);
        *synced = upto;
        Ok(())
    }

    /// Why writes are refused, once a sync failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    fn check_failed(&self) -> io::Result<()> {
        match self.failed.get() {
            Some(why) => Err(io::Error::other(format!(
                "an earlier sync of the log failed ({why}): writes are refused until a restart"
            ))),
            None => Ok(()),
        }
    }

    /// How many syncs were done.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

fn record_failure(failed: &std::sync::OnceLock<String>, why: &str) {
    if failed.set(why.to_string()).is_ok() {
        tracing::error!(
            error = %why,
            "syncing the SQLite log failed: what was committed may not be on disk; every write \
             fails from now on (and /readyz), restart authhost once the disk is fixed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    /// Counts syncs started and finished, each taking a little while, and records whether two
    /// ever overlapped.
    #[derive(Default)]
    struct Slow {
        started: AtomicU64,
        count: AtomicU64,
        running: AtomicBool,
        overlapped: AtomicBool,
    }

    impl Syncer for Slow {
        fn sync(&self) -> io::Result<()> {
            if self.running.swap(true, Ordering::SeqCst) {
                self.overlapped.store(true, Ordering::SeqCst);
            }
            self.started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            self.count.fetch_add(1, Ordering::SeqCst);
            self.running.store(false, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_syncs_and_each_waits_for_one_that_started_after_it() {
        let slow = Arc::new(Slow::default());
        let group = Arc::new(GroupSync::new(slow.clone()));
        let mut writes = Vec::new();
        for _ in 0..64 {
            let group = Arc::clone(&group);
            let slow = Arc::clone(&slow);
            writes.push(tokio::spawn(async move {
                // Syncs run one at a time, so the one numbered `started + 1` starts after this
                // write came, and must have finished when it returns: one already running could
                // not cover it.
                let started = slow.started.load(Ordering::SeqCst);
                group.wait_durable().await.unwrap();
                let finished = slow.count.load(Ordering::SeqCst);
                assert!(
                    finished > started,
                    "returned before a sync that started after it ({started} started, {finished} finished)"
                );
            }));
        }
        for w in writes {
            w.await.unwrap();
        }
        let n = slow.count.load(Ordering::SeqCst);
        assert!((1..64).contains(&n), "64 concurrent writes took {n} syncs");
        assert_eq!(group.syncs(), n);
        assert!(
            !slow.overlapped.load(Ordering::SeqCst),
            "two syncs ran at once"
        );
    }

    #[tokio::test]
    async fn a_write_after_a_sync_gets_a_new_one() {
        let slow = Arc::new(Slow::default());
        let group = GroupSync::new(slow.clone());
        group.wait_durable().await.unwrap();
        group.wait_durable().await.unwrap();
        assert_eq!(slow.count.load(Ordering::SeqCst), 2);
    }

    /// Fails its first sync only (as a disk whose error Linux reports once).
    #[derive(Default)]
    struct FailsOnce {
        calls: AtomicU64,
    }
    impl Syncer for FailsOnce {
        fn sync(&self) -> io::Result<()> {
            std::thread::sleep(Duration::from_millis(20));
            match self.calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(io::Error::other("disk gone")),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_sync_fails_every_later_write_though_a_new_sync_would_succeed() {
        let syncer = Arc::new(FailsOnce::default());
        let group = Arc::new(GroupSync::new(syncer.clone()));
        // One leads (its sync fails); the others queue behind it meanwhile.
        let writes: Vec<_> = (0..8)
            .map(|_| {
                let group = Arc::clone(&group);
                tokio::spawn(async move { group.wait_durable().await })
            })
            .collect();
        for w in writes {
            assert!(
                w.await.unwrap().is_err(),
                "a write acknowledged after a failed sync"
            );
        }
        let later = group.wait_durable().await.unwrap_err();
        assert!(later.to_string().contains("disk gone"), "{later}");
        assert_eq!(
            syncer.calls.load(Ordering::SeqCst),
            1,
            "synced again after a failure"
        );
        assert_eq!(group.syncs(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_is_kept_when_the_write_that_ran_the_sync_is_dropped() {
        let syncer = Arc::new(FailsOnce::default());
        let group = Arc::new(GroupSync::new(syncer.clone()));
        let leader = {
            let group = Arc::clone(&group);
            tokio::spawn(async move { group.wait_durable().await })
        };
        // Dropped while its sync runs (a client that went away).
        tokio::time::sleep(Duration::from_millis(5)).await;
        leader.abort();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(group.failure().is_some_and(|f| f.contains("disk gone")));
        assert!(group.wait_durable().await.is_err());
        assert_eq!(
            syncer.calls.load(Ordering::SeqCst),
            1,
            "synced again after a failure"
        );
    }

    #[test]
    fn syncs_the_log_beside_the_database_and_tolerates_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let wal = WalFile::new(&db);
        assert_eq!(wal.path(), dir.path().join("a.db-wal"));
        wal.sync().unwrap();
        assert!(wal.known.lock().unwrap().is_none());
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        wal.sync().unwrap();
        use std::os::unix::fs::MetadataExt;
        let known_inode = || {
            let known = wal.known.lock().unwrap();
            known.as_ref().unwrap().metadata().unwrap().ino()
        };
        let first = known_inode();
        // A log deleted and made again is a new file, its folder synced again.
        std::fs::remove_file(dir.path().join("a.db-wal")).unwrap();
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        wal.sync().unwrap();
        let second = known_inode();
        assert_ne!(first, second);
    }
}
