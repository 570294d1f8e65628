//! One running worker process as calls see it: the frames going out, the calls waiting for an
//! answer, and the call slots.
//!
//! A call takes one of `2 × threads` slots before it is sent (waiting for one counts against
//! its deadline): every worker thread has a call running and at most one more queued behind
//! it, so the worker always has work at hand while its answers travel back, and a queued call
//! starts within one call's time. A call past its deadline keeps its slot until the worker
//! answers it. A call that is still unanswered two deadlines after its own therefore holds a
//! worker thread that is stuck (a queued call waits at most one deadline, then runs at most
//! one), and when half the threads are stuck the supervisor kills the process (`hung`). One
//! lock covers waiting calls, overdue calls and the "process gone" flag, so no call can slip
//! in after the calls of a dead process were failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plugins::CallError;
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::plugins::worker::protocol::{self, Request};

/// Calls in the worker per thread: one running, one queued.
const SLOTS_PER_THREAD: usize = 2;

struct Waiting {
    answer: oneshot::Sender<Result<Value, CallError>>,
    slot: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Calls {
    waiting: HashMap<u64, Waiting>,
    /// Calls whose caller gave up at the deadline, since when; their slots stay taken until
    /// answered.
    overdue: HashMap<u64, (Instant, OwnedSemaphorePermit)>,
    /// The process is gone: new calls fail at once.
    closed: bool,
}

pub struct Conn {
    frames: mpsc::Sender<Vec<u8>>,
    calls: Mutex<Calls>,
    slots: Arc<Semaphore>,
    threads: usize,
    kill: Notify,
    kill_reason: Mutex<Option<&'static str>>,
}

impl Conn {
    pub fn new(frames: mpsc::Sender<Vec<u8>>, threads: usize) -> Conn {
        let threads = threads.max(1);
        Conn {
            frames,
            calls: Mutex::new(Calls::default()),
            slots: Arc::new(Semaphore::new(threads * SLOTS_PER_THREAD)),
            threads,
            kill: Notify::new(),
            kill_reason: Mutex::new(None),
        }
    }

    /// Fails every waiting call with `error` and every later one at once (the process is gone).
    pub fn fail_all(&self, error: &CallError) {
        let waiting: Vec<Waiting> = match self.calls.lock() {
            Ok(mut calls) => {
                calls.closed = true;
                calls.overdue.clear();
                calls.waiting.drain().map(|(_, w)| w).collect()
            }
            Err(_) => Vec::new(),
        };
        for w in waiting {
            let _ = w.answer.send(Err(error.clone()));
        }
    }

    /// The worker answered call `id`.
    pub fn answered(&self, id: u64, result: Result<Value, CallError>) {
        let waiting = match self.calls.lock() {
            Ok(mut calls) => {
                let waiting = calls.waiting.remove(&id);
                if waiting.is_none() {
                    calls.overdue.remove(&id);
                }
                waiting
            }
            Err(_) => None,
        };
        if let Some(w) = waiting {
            let _ = w.answer.send(result);
        }
    }

    /// Whether the process looks hung: half its threads (at least one) hold calls that are
    /// still unanswered two `deadline`s after their own. A call merely late in a busy worker
    /// (queued behind one call, then run) is answered within one deadline after its own and
    /// does not count.
    pub fn hung(&self, deadline: Duration) -> bool {
        let grace = deadline * 2;
        let stuck = self.calls.lock().map_or(0, |calls| {
            calls
                .overdue
                .values()
                .filter(|(since, _)| since.elapsed() >= grace)
                .count()
        });
        stuck >= (self.threads / 2).max(1)
    }

    /// Asks the supervisor to kill the process, for `reason` (the restart metric's label).
    pub fn ask_kill(&self, reason: &'static str) {
        if let Ok(mut r) = self.kill_reason.lock() {
            r.get_or_insert(reason);
        }
        self.kill.notify_one();
    }

    /// Resolves when someone asked to kill the process, with the reason.
    pub async fn kill_requested(&self) -> &'static str {
        self.kill.notified().await;
        self.kill_reason
            .lock()
            .ok()
            .and_then(|r| *r)
            .unwrap_or("killed")
    }

    /// Sends a frame that needs no answer (best effort).
    pub fn notify(&self, request: &Request) {
        if let Ok(frame) = protocol::encode(request) {
            let _ = self.frames.try_send(frame);
        }
    }

    /// Sends one request, framed by `encode` with its id, and waits for its answer, all within
    /// `deadline`.
    pub async fn request(
        &self,
        ids: &AtomicU64,
        deadline: Duration,
        encode: impl FnOnce(u64) -> std::io::Result<Vec<u8>>,
    ) -> Result<Value, CallError> {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let frame = encode(id)
            .map_err(|e| CallError::Unavailable(format!("the call cannot be sent: {e}")))?;
        let exchange = async {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| CallError::Crashed("the worker process ended".into()))?;
            let (answer, answered) = oneshot::channel();
            match self.calls.lock() {
                Ok(mut calls) if !calls.closed => {
                    calls.waiting.insert(id, Waiting { answer, slot });
                }
                _ => return Err(CallError::Crashed("the worker process ended".into())),
            }
            if let Err(e) = self.frames.try_send(frame) {
                if let Ok(mut calls) = self.calls.lock() {
                    calls.waiting.remove(&id);
                }
                return Err(match e {
                    TrySendError::Full(_) => CallError::Busy,
                    TrySendError::Closed(_) => {
                        CallError::Crashed("the worker process ended".into())
                    }
                });
            }
            answered
                .await
                .unwrap_or_else(|_| Err(CallError::Crashed("no answer before it ended".into())))
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => {
                if let Ok(mut calls) = self.calls.lock()
                    && let Some(w) = calls.waiting.remove(&id)
                {
                    calls.overdue.insert(id, (Instant::now(), w.slot));
                }
                Err(CallError::Timeout)
            }
        }
    }
}
