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
//! plugin can do. The waiting caller is answered at its deadline either way.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

type Job = Box<dyn FnOnce() + Send>;

pub struct CallPool {
    queue: Sender<Job>,
}

impl CallPool {
    /// Starts `threads` threads named `name-N`; they end when the pool is dropped and the
    /// queue is empty.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Arc<CallPool>> {
        let (queue, jobs) = crossbeam_channel::unbounded::<Job>();
        for n in 0..threads.max(1) {
            let jobs: Receiver<Job> = jobs.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    for job in jobs {
                        job();
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
            let result = catch_unwind(AssertUnwindSafe(call))
                .unwrap_or_else(|_| Err("panicked in the host's call".to_string()));
            // The caller may have given up at its deadline; then nobody is listening.
            let _ = answer.send(result);
        });
        self.queue
            .send(job)
            .map_err(|_| "the pool's threads are gone".to_string())?;
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
}
