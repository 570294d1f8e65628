//! A fixed set of threads fed by one queue, for work that must not run on the async workers:
//! plugin calls (plugin code may block or hang; `[plugins] max_concurrent_calls` threads) and
//! RSA signatures (about 0.4 ms of CPU each; one thread per core).
//!
//! tokio's blocking pool was used for plugin calls before; under load it started a thread
//! whenever none was idle at that instant and grew to its cap of 64 threads for calls that take
//! microseconds, each thread with its own stack and allocator heap (RSS 71 MB in the
//! `authorize` benchmark) and a costlier hand-off. A fixed pool keeps both bounded.
//!
//! A call that overruns its caller's deadline keeps its thread until it returns (Rust cannot
//! stop a thread); the pool then has one thread fewer, which is what bounds the damage a hanging
//! plugin can do, and `authhost_pool_busy_threads{pool}` shows it. The waiting caller is
//! answered at its deadline either way. The queue is bounded (a full one answers "busy" at
//! once) and a queued call whose caller has given up is skipped, so a stall neither piles up
//! memory nor leaves a backlog of dead work to run once the threads are free again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

type Job = Box<dyn FnOnce() + Send>;

/// Calls that may wait for a thread, per thread.
const QUEUE_PER_THREAD: usize = 256;

pub struct CallPool {
    queue: Sender<Job>,
}

impl CallPool {
    /// Starts `threads` threads named `name-N`; they end when the pool is dropped and the
    /// queue is empty.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Arc<CallPool>> {
        let threads = threads.max(1);
        let (queue, jobs) = crossbeam_channel::bounded::<Job>(threads * QUEUE_PER_THREAD);
        let busy = metrics::gauge!("authhost_pool_busy_threads", "pool" => name.to_string());
        for n in 0..threads {
            let jobs: Receiver<Job> = jobs.clone();
            let busy = busy.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    for job in jobs {
                        busy.increment(1.0);
                        job();
                        busy.decrement(1.0);
                    }
                })?;
        }
        Ok(Arc::new(CallPool { queue }))
    }

    /// Runs `call` on a pool thread and waits for its answer (no deadline here: the caller
    /// wraps this in its own). A panic in `call` comes back as an error.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return; // the caller gave up while this waited
            }
            let result = catch_unwind(AssertUnwindSafe(call))
                .unwrap_or_else(|_| Err("panicked in the host's call".to_string()));
            // The caller may have given up at its deadline; then nobody is listening.
            let _ = answer.send(result);
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                "busy: every thread is taken and the queue is full".to_string()
            }
            TrySendError::Disconnected(_) => "the pool's threads are gone".to_string(),
        })?;
        answered
            .await
            .map_err(|_| "a pool thread ended without answering".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn answers_contains_panics_and_loses_a_thread_to_a_hang() {
        let pool = CallPool::new("test", 2).expect("threads");
        assert_eq!(pool.run(|| Ok(41 + 1)).await, Ok(42));
        let panicked: Result<(), String> = pool.run(|| panic!("plugin glue bug")).await;
        assert!(panicked.is_err_and(|e| e.contains("panicked")));
        // One thread hangs past the caller's deadline; the other still answers.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hung = tokio::time::timeout(
            Duration::from_millis(50),
            pool.run(move || {
                let _ = hold.recv();
                Ok(())
            }),
        )
        .await;
        assert!(hung.is_err(), "the hanging call must hit the deadline");
        assert_eq!(pool.run(|| Ok("still serving")).await, Ok("still serving"));
        release.send(()).expect("release the hung call");
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
                    Ok(())
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
                    Ok(())
                }),
            )
            .await;
            assert!(gave_up.is_err());
        }
        let busy: Result<(), String> = pool.run(|| Ok(())).await;
        assert!(
            busy.is_err_and(|e| e.starts_with("busy")),
            "a full queue answers at once"
        );
        release.send(()).expect("release");
        assert_eq!(blocker.await.expect("joined"), Ok(()));
        assert_eq!(pool.run(|| Ok(7)).await, Ok(7));
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "calls nobody waits for any more must not run"
        );
    }
}
