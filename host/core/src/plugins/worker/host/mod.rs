//! The host's side of plugin worker processes: one `Worker` per library file, its supervisor
//! task, and the handles calls go through.
//!
//! The supervisor keeps one process running: it starts it (`spawn.rs`), forwards its stdout and
//! stderr to the log (`output.rs`), reads the library's load result, rebuilds the instances
//! after a restart, and waits for the process to end. Calls go through the running process's
//! `Conn` (`conn.rs`). When the process dies, every call in flight fails with
//! `CallError::Crashed` (fail closed), calls fail fast while it restarts with exponential
//! backoff, and the log and `authhost_plugin_worker_restarts_total{plugin, reason}` say why. A
//! process with half its threads still in calls two deadlines past their own deadline is killed
//! and restarted, so hung calls do not pile up. Dropping the last handle (a reload that no
//! longer uses the library, or shutdown) ends the process once its calls are done.

mod conn;
mod output;
mod spawn;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plugins::{CallError, Kind};
use authhost_plugin_api::load::PluginInfo;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use conn::Conn;

use super::protocol::{self, Reply, Request};
pub use spawn::{Spec, passes_to_worker};

/// How long a new process may take to load its library and rebuild its instances.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Restart backoff: doubles from the first to the last; reset after a process ran this long.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Calls queued at once are written together up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// What the supervisor and the calls share.
struct Link {
    spec: Spec,
    /// The plugin's name for logs and metrics (the file's until the library says its own).
    label: String,
    conn: Mutex<Option<Arc<Conn>>>,
    /// Instance number → configuration, to rebuild them in a restarted process.
    instances: Mutex<HashMap<u64, Value>>,
    next_id: AtomicU64,
    up: AtomicBool,
    restarts: AtomicU64,
    timeout: Duration,
}

/// A plugin library running in its own worker process.
pub struct Worker {
    pub info: PluginInfo,
    link: Arc<Link>,
    /// Dropped with the worker: the supervisor then ends the process.
    _stop: watch::Sender<bool>,
}

/// Why a process ended, as the restart metric labels it: `killed` is the host's reason when
/// it killed the process (`hung`, `protocol`).
fn exit_reason(
    status: std::io::Result<std::process::ExitStatus>,
    killed: Option<&'static str>,
) -> (&'static str, String) {
    use std::os::unix::process::ExitStatusExt;
    match killed {
        Some("hung") => {
            return (
                "hung",
                "killed by the host: calls kept overrunning their deadline".into(),
            );
        }
        Some(reason) => {
            return (
                reason,
                "killed by the host: it broke the call protocol".into(),
            );
        }
        None => {}
    }
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => ("exit", format!("exited with status {code}")),
            (None, Some(sig)) => (
                "signal",
                format!("killed by signal {sig} ({})", signal_name(sig)),
            ),
            _ => ("exit", format!("ended: {s}")),
        },
        Err(e) => ("exit", format!("cannot wait for it: {e}")),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "other",
    }
}

/// A started process with its library loaded and instances built.
struct Process {
    child: tokio::process::Child,
    conn: Arc<Conn>,
    loaded: protocol::Loaded,
}

/// Starts a process and waits for its library's load result; then rebuilds `link`'s instances.
async fn start(link: &Arc<Link>) -> Result<Process, String> {
    let spawned = spawn::spawn(&link.spec).map_err(|e| {
        format!(
            "{}: cannot start its worker process ({}): {e}",
            link.spec.library.display(),
            link.spec.program.display()
        )
    })?;
    let mut child = spawned.child;
    if let Some(out) = child.stdout.take() {
        output::forward(link.label.clone(), out);
    }
    if let Some(err) = child.stderr.take() {
        output::forward(link.label.clone(), err);
    }
    let (reader, mut writer) = spawned.socket.into_split();
    // Buffered: one read syscall takes every answer that has arrived.
    let mut reader = BufReader::new(reader);
    let ready =
        tokio::time::timeout(START_TIMEOUT, protocol::read_async::<Reply>(&mut reader)).await;
    let loaded = match ready {
        Ok(Ok(Some(Reply::Ready { protocol, loaded })))
            if protocol == protocol::PROTOCOL_VERSION =>
        {
            loaded?
        }
        Ok(Ok(Some(Reply::Ready { protocol, .. }))) => {
            return Err(format!(
                "{}: its worker speaks protocol {protocol}, this host {}: is {} the same build as this host?",
                link.spec.library.display(),
                protocol::PROTOCOL_VERSION,
                link.spec.program.display()
            ));
        }
        other => {
            let _ = child.start_kill();
            let why = match other {
                Err(_) => "no answer within 10 s".to_string(),
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(_)) => "it ended before loading the library".to_string(),
            };
            return Err(format!(
                "{}: its worker process failed to start: {why}",
                link.spec.library.display()
            ));
        }
    };
    // Calls are bounded by the slots; the rest of the room is for `Drop` notices.
    let (frames, mut outbox) = mpsc::channel::<Vec<u8>>(link.spec.threads.max(1) * 4 + 64);
    tokio::spawn(async move {
        // Frames queued meanwhile go out in the same write: under load, one syscall carries
        // many calls.
        let mut batch = Vec::new();
        while let Some(frame) = outbox.recv().await {
            batch.clear();
            batch.extend_from_slice(&frame);
            // The tasks ready on this runtime thread run first (a yielded task waits until the
            // thread's queue is empty or the scheduler's next pass, a few dozen task polls at
            // most), so the calls they make join this write: each write wakes the worker, and
            // a worker woken for one call costs more than the call.
            tokio::task::yield_now().await;
            while batch.len() < WRITE_BATCH
                && let Ok(more) = outbox.try_recv()
            {
                batch.extend_from_slice(&more);
            }
            if writer.write_all(&batch).await.is_err() {
                break;
            }
        }
    });
    let conn = Arc::new(Conn::new(frames, link.spec.threads));
    // Answers go to their callers. The loop ends when the process closes the socket (it is
    // ending; the supervisor sees it exit) or sends something that is not an answer, which
    // gets it killed: it can no longer be trusted to answer.
    let answers = conn.clone();
    tokio::spawn(async move {
        loop {
            match protocol::read_async::<Reply>(&mut reader).await {
                Ok(Some(Reply::Answer { id, result })) => {
                    answers.answered(id, protocol::answer_value(result));
                }
                Ok(None) => break,
                Ok(Some(Reply::Ready { .. })) | Err(_) => {
                    answers.ask_kill("protocol");
                    break;
                }
            }
        }
    });
    // A restarted process gets the instances the previous one had.
    let configs: Vec<(u64, Value)> = link
        .instances
        .lock()
        .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
        .unwrap_or_default();
    for (instance, config) in configs {
        conn.request(&link.next_id, START_TIMEOUT, |id| {
            protocol::encode(&protocol::RequestOut::Instantiate {
                id,
                instance,
                config,
            })
        })
        .await
        .map_err(|e| {
            format!(
                "{}: rebuilding instance {instance}: {e}",
                link.spec.library.display()
            )
        })?;
    }
    Ok(Process {
        child,
        conn,
        loaded,
    })
}

/// Keeps `process` (and its successors) running until `stop` is dropped.
async fn supervise(link: Arc<Link>, first: Process, mut stop: watch::Receiver<bool>) {
    // What the library said it was at start: a restart that loads something else (the file
    // was replaced without a reload) is refused, so the set keeps what it was checked with.
    let expected = first.loaded.clone();
    let restarts = |reason: &'static str| metrics::counter!("authhost_plugin_worker_restarts_total", "plugin" => link.label.clone(), "reason" => reason);
    let up = metrics::gauge!("authhost_plugin_workers_up");
    let mut backoff = BACKOFF_FIRST;
    let mut current = Some(first);
    loop {
        if let Some(mut process) = current.take() {
            let started = Instant::now();
            if let Ok(mut conn) = link.conn.lock() {
                *conn = Some(process.conn.clone());
            }
            link.up.store(true, Ordering::SeqCst);
            up.increment(1.0);
            let mut killed = None;
            // Hung calls are looked for twice per deadline.
            let mut check =
                tokio::time::interval((link.timeout / 2).max(Duration::from_millis(50)));
            let status = loop {
                tokio::select! {
                    status = process.child.wait() => break status,
                    reason = process.conn.kill_requested() => killed = Some(reason),
                    _ = check.tick() => {
                        if process.conn.hung(link.timeout) {
                            killed = Some("hung");
                        }
                    }
                    _ = stop.changed() => {
                        // The host is done with this library: close the socket, make sure.
                        let _ = process.child.start_kill();
                        let _ = process.child.wait().await;
                        up.decrement(1.0);
                        return;
                    }
                }
                if killed.is_some() {
                    let _ = process.child.start_kill();
                    break process.child.wait().await;
                }
            };
            link.up.store(false, Ordering::SeqCst);
            up.decrement(1.0);
            if let Ok(mut conn) = link.conn.lock() {
                *conn = None;
            }
            let (reason, text) = exit_reason(status, killed);
            process.conn.fail_all(&CallError::Crashed(text.clone()));
            restarts(reason).increment(1);
            link.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::error!(plugin = %link.label, file = %link.spec.library.display(), reason, "plugin worker process {text}; restarting it in {} ms (calls fail closed meanwhile)", backoff.as_millis());
            if started.elapsed() > HEALTHY_AFTER {
                backoff = BACKOFF_FIRST;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        match start(&link).await {
            Ok(process) if process.loaded == expected => current = Some(process),
            Ok(mut other) => {
                let _ = other.child.start_kill();
                restarts("start_failed").increment(1);
                tracing::error!(plugin = %link.label, file = %link.spec.library.display(), "the library file changed since it was loaded ({} {} now); the worker stays down until a reload (SIGHUP) takes the new file", other.loaded.name, other.loaded.version);
            }
            Err(e) => {
                restarts("start_failed").increment(1);
                tracing::error!(plugin = %link.label, error = %e, "plugin worker process did not start; retrying in {} ms", backoff.as_millis());
            }
        }
    }
}

impl Worker {
    /// Starts the worker for `spec`, reporting a library that does not load (not a plugin,
    /// another interface version or kind, a refused layout) as the in-process loader would.
    pub async fn start(spec: Spec, timeout: Duration) -> Result<Arc<Worker>, String> {
        let label = spec
            .library
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.trim_start_matches("lib").to_string())
            .unwrap_or_else(|| "plugin".into());
        let link = Arc::new(Link {
            spec,
            label,
            conn: Mutex::new(None),
            instances: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            up: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            timeout,
        });
        let process = start(&link).await?;
        let info = PluginInfo {
            path: link.spec.library.clone(),
            kind: link.spec.kind,
            name: process.loaded.name.clone(),
            version: process.loaded.version.clone(),
            interface_version: process.loaded.interface_version,
        };
        let (stop, stop_rx) = watch::channel(false);
        if let Ok(mut conn) = link.conn.lock() {
            *conn = Some(process.conn.clone());
        }
        tokio::spawn(supervise(link.clone(), process, stop_rx));
        Ok(Arc::new(Worker {
            info,
            link,
            _stop: stop,
        }))
    }

    fn conn(&self) -> Result<Arc<Conn>, CallError> {
        self.link
            .conn
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| {
                CallError::Unavailable("the plugin's worker process is restarting".into())
            })
    }

    /// Builds an instance with `config` in the worker (and in every process that replaces it).
    /// While the worker restarts, waits for it (up to the start timeout).
    pub async fn instantiate(self: &Arc<Self>, config: Value) -> Result<WorkerInstance, CallError> {
        let instance = self.link.next_id.fetch_add(1, Ordering::Relaxed);
        let waited = Instant::now();
        let conn = loop {
            match self.conn() {
                Ok(conn) => break conn,
                Err(e) if waited.elapsed() >= START_TIMEOUT => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        // Recorded first: a restart while this is under way rebuilds it too.
        if let Ok(mut map) = self.link.instances.lock() {
            map.insert(instance, config.clone());
        }
        let built = conn
            .request(
                &self.link.next_id,
                START_TIMEOUT.max(self.link.timeout),
                |id| {
                    protocol::encode(&protocol::RequestOut::Instantiate {
                        id,
                        instance,
                        config,
                    })
                },
            )
            .await;
        let made = WorkerInstance {
            worker: self.clone(),
            instance,
        };
        // On failure, dropping `made` forgets the instance and tells the worker.
        built.map(|_| made)
    }

    /// Whether a process is serving now, and how many times it was restarted.
    pub fn state(&self) -> (bool, u64) {
        (
            self.link.up.load(Ordering::SeqCst),
            self.link.restarts.load(Ordering::Relaxed),
        )
    }

    pub fn library(&self) -> &Path {
        &self.link.spec.library
    }

    pub fn kind(&self) -> Kind {
        self.link.spec.kind
    }
}

/// One plugin instance living in a worker process.
pub struct WorkerInstance {
    worker: Arc<Worker>,
    instance: u64,
}

impl WorkerInstance {
    /// Calls the instance, answering at `deadline` at the latest.
    pub async fn invoke(
        &self,
        call: u8,
        service: &str,
        user: &Value,
        deadline: Duration,
    ) -> Result<Value, CallError> {
        let conn = self.worker.conn()?;
        let instance = self.instance;
        conn.request(&self.worker.link.next_id, deadline, |id| {
            protocol::encode(&protocol::RequestOut::Call {
                id,
                instance,
                call,
                service,
                user,
            })
        })
        .await
    }

    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }
}

impl Drop for WorkerInstance {
    fn drop(&mut self) {
        if let Ok(mut map) = self.worker.link.instances.lock() {
            map.remove(&self.instance);
        }
        if let Ok(conn) = self.worker.conn() {
            conn.notify(&Request::Drop {
                instance: self.instance,
            });
        }
    }
}
