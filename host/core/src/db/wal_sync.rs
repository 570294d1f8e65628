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
//! One difference to FULL remains: another request may read a commit in the moment between the
//! commit and its sync. A power loss then can undo something that request saw, never something
//! a caller was told had happened.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// What makes the log durable: `fsync` of the file in production, a counter in tests.
pub trait Syncer: Send + Sync + 'static {
    fn sync(&self) -> io::Result<()>;
}

/// Syncs `<database>-wal`, and its folder once per new log file (a log SQLite created is only
/// found after a power loss if its directory entry is on disk too; SQLite's FULL mode does
/// the same on the log's first sync).
pub struct WalFile {
    wal: PathBuf,
    /// The inode of the log whose directory entry was synced last.
    dir_synced_for: AtomicU64,
}

impl WalFile {
    pub fn new(database: &Path) -> WalFile {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalFile {
            wal: PathBuf::from(wal),
            dir_synced_for: AtomicU64::new(0),
        }
    }
}

impl Syncer for WalFile {
    fn sync(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        // Opened each time: SQLite may delete the log (last connection closed) and create a
        // new one; a kept descriptor would sync a file nobody writes. No log means everything
        // was checkpointed into the database file, which SQLite syncs itself.
        let file = match std::fs::File::open(&self.wal) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.sync_data()?;
        let inode = file.metadata()?.ino();
        if self.dir_synced_for.load(Ordering::Acquire) != inode {
            if let Some(dir) = self.wal.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            self.dir_synced_for.store(inode, Ordering::Release);
        }
        Ok(())
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
}

impl GroupSync {
    pub fn new(syncer: Arc<dyn Syncer>) -> GroupSync {
        GroupSync {
            syncer,
            tickets: AtomicU64::new(0),
            synced: Mutex::new(0),
            syncs: AtomicU64::new(0),
        }
    }

    /// Returns once a sync that started after this call has finished (call it after a commit).
    pub async fn wait_durable(&self) -> io::Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::counter!("authhost_db_wal_writes_total").increment(1);
        let mut synced = self.synced.lock().await;
        if *synced >= ticket {
            return Ok(());
        }
        // Every ticket up to `upto` was taken after its commit had finished, and the sync
        // below starts after this read: it covers them all.
        let upto = self.tickets.load(Ordering::Acquire);
        let syncer = Arc::clone(&self.syncer);
        tokio::task::spawn_blocking(move || syncer.sync())
            .await
            .map_err(io::Error::other)??;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("authhost_db_wal_syncs_total").increment(1);
        *synced = upto;
        Ok(())
    }

    /// How many syncs were done.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
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

    struct Failing;
    impl Syncer for Failing {
        fn sync(&self) -> io::Result<()> {
            Err(io::Error::other("disk gone"))
        }
    }

    #[tokio::test]
    async fn a_failed_sync_fails_the_write_and_covers_nothing() {
        let group = GroupSync::new(Arc::new(Failing));
        assert!(group.wait_durable().await.is_err());
        assert!(group.wait_durable().await.is_err());
        assert_eq!(group.syncs(), 0);
    }

    #[test]
    fn syncs_the_log_beside_the_database_and_tolerates_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let wal = WalFile::new(&db);
        assert_eq!(wal.wal, dir.path().join("a.db-wal"));
        wal.sync().unwrap();
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        wal.sync().unwrap();
        assert_ne!(wal.dir_synced_for.load(Ordering::SeqCst), 0);
    }
}
