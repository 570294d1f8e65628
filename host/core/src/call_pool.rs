//! A fixed set of threads fed by one queue, for work that must not run on the async workers:
//! plugin calls (plugin code may block or hang; `[plugins] max_concurrent_calls` threads) and
//! RSA signatures (about 0.4 ms of CPU each; one thread per core).
//!
//! tokio's blocking pool was used for plugin calls before; under load it started a thread
//! whenever none was idle at that instant and grew to its cap of 64 threads for calls that take
//! microseconds, each thread with its own stack and allocator heap (RSS 71 MB in the
//! `authorize` benchmark) and a costlier hand-off. A fixed pool keeps both bounded.
//!
//! A call that overruns its deadline keeps its thread until it returns (Rust cannot stop a
//! thread); the pool starts a stand-in thread for it, up to three per thread of its size, and
//! the extra thread leaves once the overdue call has come back. Past that cap, hung calls take
//! capacity until they return, which is what bounds the threads a hanging plugin can cost;
//! `authhost_pool_busy_threads{pool}` shows them. The waiting caller is answered at its
//! deadline either way. The queue is bounded (a full one answers `Busy` at
//! once) and a queued call whose caller has given up is skipped, so a stall neither piles up
//! memory nor leaves a backlog of dead work to run once the threads are free again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

type Job = Box<dyn FnOnce() + Send>;

/// Calls that may wait for a thread, per thread.
const QUEUE_PER_THREAD: usize = 256;

/// Threads a pool may run beyond its size, as stand-ins for threads held by overdue calls.
const STAND_INS_PER_THREAD: usize = 3;

/// Why the pool gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The deadline passed (waiting for a thread included).
    Timeout,
    /// Every thread is taken and the queue is full.
    Busy,
    /// The call panicked on the pool's thread.
    Panicked,
    /// The pool's threads are gone.
    Gone,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolError::Timeout => "no answer within the deadline",
            PoolError::Busy => "busy: every thread is taken and the queue is full",
            PoolError::Panicked => "the call panicked",
            PoolError::Gone => "the pool's threads are gone",
        })
    }
}

impl std::error::Error for PoolError {}

pub struct CallPool {
    queue: Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    size: usize,
    /// Threads running now: `size`, plus stand-ins while overdue calls hold threads.
    live: AtomicUsize,
    jobs: Receiver<Job>,
    busy: metrics::Gauge,
}

impl CallPool {
    /// Starts `threads` threads named `name-N`; they end when the pool is dropped and the
    /// queue is empty.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Arc<CallPool>> {
        let size = threads.max(1);
        let (queue, jobs) = crossbeam_channel::bounded::<Job>(size * QUEUE_PER_THREAD);
        let shared = Arc::new(Shared {
            name: name.to_string(),
            size,
            live: AtomicUsize::new(size),
            jobs,
            busy: metrics::gauge!("authhost_pool_busy_threads", "pool" => name.to_string()),
        });
        for n in 0..size {
            spawn_worker(&shared, n)?;
        }
        Ok(Arc::new(CallPool { queue, shared }))
    }

    /// Threads running now (stand-ins included).
    pub fn threads(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Runs `call` on a pool thread and waits for its answer (no deadline). A panic in `call`
    /// comes back as an error.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        self.run_tracked(call, None).await
    }

    /// `run` with a deadline (waiting for a thread included): `Timeout` when it passes. If
    /// the call had started, its thread stays with it, and the pool starts a stand-in thread
    /// (up to `STAND_INS_PER_THREAD` per thread) so that one hanging plugin does not take
    /// the capacity of the others; the extra thread leaves once the pool is back above size.
    pub async fn run_within<T: Send + 'static>(
        &self,
        deadline: Duration,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let started = Arc::new(AtomicBool::new(false));
        let tracked = self.run_tracked(call, Some(started.clone()));
        match tokio::time::timeout(deadline, tracked).await {
            Ok(result) => result,
            Err(_) => {
                if started.load(Ordering::SeqCst) {
                    self.add_stand_in();
                }
                Err(PoolError::Timeout)
            }
        }
    }

    async fn run_tracked<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
        started: Option<Arc<AtomicBool>>,
    ) -> Result<T, PoolError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return; // the caller gave up while this waited
            }
            if let Some(started) = started {
                started.store(true, Ordering::SeqCst);
            }
            let result = catch_unwind(AssertUnwindSafe(call)).map_err(|_| PoolError::Panicked);
            // The caller may have given up at its deadline; then nobody is listening.
            let _ = answer.send(result);
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Busy,
            TrySendError::Disconnected(_) => PoolError::Gone,
        })?;
        answered.await.map_err(|_| PoolError::Gone)?
    }

    fn add_stand_in(&self) {
        let shared = &self.shared;
        let cap = shared.size * (1 + STAND_INS_PER_THREAD);
        let Ok(before) = shared
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
        else {
            tracing::error!(pool = %shared.name, threads = cap, "a call overran its deadline and every stand-in thread is taken; calls wait for a thread until one returns");
            return;
        };
        tracing::warn!(pool = %shared.name, threads = before + 1, "a call overran its deadline and keeps its thread; started a stand-in");
        if let Err(e) = spawn_worker(shared, before) {
            shared.live.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(pool = %shared.name, error = %e, "cannot start a stand-in thread");
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>, n: usize) -> std::io::Result<()> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("{}-{n}", shared.name))
        .spawn(move || {
            while let Ok(job) = shared.jobs.recv() {
                shared.busy.increment(1.0);
                job();
                shared.busy.decrement(1.0);
                // Back above size (an overdue call came back): this thread leaves.
                let retire = shared
                    .live
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n > shared.size).then(|| n - 1)
                    });
                if retire.is_ok() {
                    return;
                }
            }
            shared.live.fetch_sub(1, Ordering::SeqCst);
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_contains_panics_and_stands_in_for_a_hung_call() {
        let pool = CallPool::new("test", 1).expect("threads");
        assert_eq!(pool.run(|| 41 + 1).await, Ok(42));
        let panicked: Result<(), PoolError> = pool.run(|| panic!("plugin glue bug")).await;
        assert_eq!(panicked, Err(PoolError::Panicked));
        // The only thread hangs past the deadline: a stand-in serves the next call in time.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (returned, came_back) = std::sync::mpsc::channel::<()>();
        let hung: Result<(), PoolError> = pool
            .run_within(Duration::from_millis(500), move || {
                let _ = hold.recv();
                let _ = returned.send(());
            })
            .await;
        assert_eq!(hung, Err(PoolError::Timeout));
        assert_eq!(pool.threads(), 2, "a stand-in was started");
        let next = pool
            .run_within(Duration::from_secs(5), || "still serving")
            .await;
        assert_eq!(next, Ok("still serving"));
        // The hung call comes back; one thread leaves after its next job.
        release.send(()).expect("release the hung call");
        came_back.recv().expect("the hung call returned");
        for _ in 0..2 {
            assert_eq!(pool.run(|| ()).await, Ok(()));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.threads() != 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.threads(), 1, "back to its size");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_and_abandoned_calls_are_skipped() {
        let pool = CallPool::new("test", 1).expect("threads");
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started.send(());
                    let _ = hold.recv();
                })
                .await
            }
        });
        running.recv().expect("the only thread is taken");
        // Fill the queue with calls whose callers give up at once.
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..QUEUE_PER_THREAD {
            let ran = ran.clone();
            let gave_up = tokio::time::timeout(
                Duration::from_millis(1),
                pool.run(move || {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }),
            )
            .await;
            assert!(gave_up.is_err());
        }
        let busy: Result<(), PoolError> = pool.run(|| ()).await;
        assert_eq!(busy, Err(PoolError::Busy), "a full queue answers at once");
        release.send(()).expect("release");
        assert_eq!(blocker.await.expect("joined"), Ok(()));
        // The freed thread first drains the abandoned calls; until the queue has room again a
        // new call is still turned away as busy.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let answer = loop {
            match pool.run(|| 7).await {
                Err(PoolError::Busy) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                answer => break answer,
            }
        };
        assert_eq!(answer, Ok(7));
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "calls nobody waits for any more must not run"
        );
    }
}
