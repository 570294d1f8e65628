//! The worker process's side (`authhost plugin-worker`): load one plugin library through the
//! same checks as the host, say so, then answer calls from the socket on fd 3 with a fixed set
//! of threads, until the host closes the socket.
//!
//! Calls run on up to `threads` threads (`threads.rs`: usually one, reading and running
//! requests inline; more while calls are slow). Answers are gathered and sent together when the
//! reading thread is about to wait for more requests, so under load one system call carries
//! many messages each way.
//!
//! Log lines go to stderr as `<level digit> <message>`; the host reads them into its own log
//! under the plugin's name. The process has no stdin and a scrubbed environment (`host/spawn.rs`).

mod threads;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use authhost_plugin_api::Level;
use authhost_plugin_api::abi::{HostLogger, Kind};
use authhost_plugin_api::abi_stable::std_types::RStr;
use authhost_plugin_api::load::CallError;
use authhost_plugin_api::load::{Instance, Library};
use serde_json::value::RawValue;

use super::protocol::{self, Loaded, PROTOCOL_VERSION, ReplyOut, Request, SOCKET_FD, WireError};
use threads::Threads;

/// Answers ready at once are sent together up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

extern "C" fn stderr_log(level: u8, _plugin: RStr<'_>, message: RStr<'_>) {
    // One line per message: the host splits on newlines.
    let line = message.as_str().replace('\n', " ");
    let code = Level::from_code(level).code();
    let _ = writeln!(std::io::stderr().lock(), "{code} {line}");
}

/// The library's instances by the host's number for them. An instance dropped while it was
/// still being built is remembered, so that its build does not add it back.
#[derive(Default)]
struct Instances {
    live: HashMap<u64, Arc<Instance>>,
    dropped: HashSet<u64>,
}

type Shared = Arc<RwLock<Instances>>;

/// An answer as a frame. An answer too large for a frame still answers: with an error, not
/// silence.
fn answer_frame(id: u64, result: Result<&RawValue, WireError>) -> Option<Vec<u8>> {
    protocol::encode(&ReplyOut::Answer { id, result })
        .or_else(|e| {
            protocol::encode(&ReplyOut::Answer {
                id,
                result: Err(WireError::BadAnswer(format!("cannot send the answer: {e}"))),
            })
        })
        .ok()
}

/// A plugin call's outcome as a frame: the answer is sent as the plugin wrote it once its
/// syntax is checked (a frame the host cannot read gets the worker killed), and as the
/// in-process loader's `BadAnswer` when it is not JSON. The host reads the text into a value
/// itself (`protocol::answer_value`), with the in-process limits: numbers out of range, lone
/// surrogates and nesting past 128 levels pass this check and fail that call only.
fn call_answer(id: u64, answer: Result<&str, &CallError>) -> Option<Vec<u8>> {
    match answer {
        Ok(text) => match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => answer_frame(id, Ok(raw)),
            Err(e) => answer_frame(id, Err(CallError::not_json(e).into())),
        },
        Err(e) => answer_frame(id, Err(e.clone().into())),
    }
}

/// Ends this process when the host that started it is gone, even if every call thread is
/// stuck in a plugin and nobody reads the socket's end.
fn watch_parent() {
    let parent = std::os::unix::process::parent_id();
    let _ = std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(0);
                }
            }
        });
}

/// Answers not yet sent, and the socket they go to.
struct Outbox {
    pending: Mutex<(Vec<u8>, UnixStream)>,
    /// A thread waits in the socket for requests: an answer added now is sent at once.
    reader_waits: AtomicBool,
}

impl Outbox {
    fn add(&self, frame: &[u8]) {
        if let Ok(mut out) = self.pending.lock() {
            out.0.extend_from_slice(frame);
        }
        if self.reader_waits.load(Ordering::SeqCst) {
            self.flush();
        }
    }

    /// Sends every pending answer. A write error means the host is gone; the reading thread
    /// then sees the socket end and the process exits.
    fn flush(&self) {
        if let Ok(mut out) = self.pending.lock() {
            let (pending, socket) = &mut *out;
            if !pending.is_empty() {
                let _ = socket.write_all(pending);
                pending.clear();
                pending.shrink_to(WRITE_BATCH);
            }
        }
    }
}

/// Everything a call thread uses.
struct Worker {
    library: Library,
    instances: Shared,
    reader: Mutex<BufReader<UnixStream>>,
    outbox: Outbox,
    threads: Arc<Threads>,
    /// The exit code, sent by the first thread that sees the socket end.
    done: crossbeam_channel::Sender<i32>,
}

/// Whether `buffered` holds a whole frame (so reading the next one does not wait).
fn holds_frame(buffered: &[u8]) -> bool {
    match buffered.split_first_chunk::<4>() {
        Some((header, body)) => body.len() >= u32::from_be_bytes(*header) as usize,
        None => false,
    }
}

/// Runs the worker; returns the process exit code.
pub fn serve(path: &Path, kind: Kind, threads: usize) -> i32 {
    // SAFETY: the host started this process with the socket as fd 3 (host/spawn.rs), and nothing
    // else in this process owns that descriptor.
    let socket = unsafe { UnixStream::from_raw_fd(SOCKET_FD) };
    // Not for the plugin's own child processes: they could write calls' answers.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        libc::fcntl(SOCKET_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    watch_parent();
    let mut writer = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("1 cannot use the host's socket: {e}");
            return 2;
        }
    };
    let (library, loaded) = match Library::load(path, kind) {
        Ok(lib) => {
            let loaded = Loaded {
                name: lib.info.name.clone(),
                version: lib.info.version.clone(),
                interface_version: lib.info.interface_version,
            };
            (Some(lib), Ok(loaded))
        }
        Err(e) => {
            if let Some(details) = e.details() {
                eprintln!("4 plugin layout report: {}", details.replace('\n', " "));
            }
            (None, Err(e.to_string()))
        }
    };
    let ready = protocol::encode(&ReplyOut::Ready {
        protocol: PROTOCOL_VERSION,
        loaded,
    });
    if let Ok(frame) = ready {
        let _ = writer.write_all(&frame);
    }
    let Some(library) = library else { return 0 };
    library.set_logger(HostLogger { log: stderr_log });

    let (done, finished) = crossbeam_channel::bounded::<i32>(threads.max(1));
    let worker = Arc::new(Worker {
        library,
        instances: Arc::default(),
        reader: Mutex::new(BufReader::with_capacity(WRITE_BATCH, socket)),
        outbox: Outbox {
            pending: Mutex::new((Vec::with_capacity(WRITE_BATCH), writer)),
            reader_waits: AtomicBool::new(false),
        },
        threads: Threads::new(threads),
        done,
    });
    for n in 0..threads.max(1) {
        let worker = worker.clone();
        let spawned = std::thread::Builder::new()
            .name("plugin-call".into())
            .spawn(move || {
                if n > 0 {
                    worker.threads.wait_turn();
                }
                let code = call_thread(&worker);
                let _ = worker.done.send(code);
            });
        if let Err(e) = spawned {
            eprintln!("1 cannot start a call thread: {e}");
            return 2;
        }
    }
    let monitor = worker.clone();
    let spawned = std::thread::Builder::new()
        .name("plugin-monitor".into())
        .spawn(move || {
            let waiting = || {
                // The reader lock is free only while no thread reads: then requests wait if
                // a whole one is buffered or the socket has bytes.
                monitor
                    .reader
                    .try_lock()
                    .is_ok_and(|r| holds_frame(r.buffer()) || readable(r.get_ref()))
            };
            monitor
                .threads
                .monitor(&waiting, &|| monitor.outbox.flush());
        });
    if let Err(e) = spawned {
        eprintln!("1 cannot start the call monitor: {e}");
        return 2;
    }
    // The first thread to see the socket end (or a broken message) ends the process; calls
    // still running on other threads are abandoned.
    finished.recv().unwrap_or(2)
}

/// Whether `socket` has bytes to read now.
fn readable(socket: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    unsafe { libc::poll(&mut fd, 1, 0) > 0 }
}

/// One call thread: read the next request, run it, repeat; returns the exit code when the
/// socket ends (0) or carries something unreadable (2).
fn call_thread(w: &Worker) -> i32 {
    loop {
        let next = match w.reader.lock() {
            Ok(mut reader) => {
                let waits = !holds_frame(reader.buffer());
                if waits {
                    // About to wait for requests: send the answers gathered meanwhile first.
                    w.outbox.reader_waits.store(true, Ordering::SeqCst);
                    w.outbox.flush();
                }
                let next = protocol::read_blocking::<Request>(&mut *reader);
                w.outbox.reader_waits.store(false, Ordering::SeqCst);
                next
            }
            Err(_) => return 2,
        };
        match next {
            Ok(Some(Request::Drop { instance })) => {
                if let Ok(mut set) = w.instances.write()
                    && set.live.remove(&instance).is_none()
                {
                    set.dropped.insert(instance);
                }
            }
            Ok(Some(request)) => {
                w.threads.enter();
                let answer = run(request, &w.library, &w.instances);
                if let Some(frame) = answer {
                    w.outbox.add(&frame);
                }
                w.threads.leave();
            }
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("1 broken message from the host: {e}");
                return 2;
            }
        }
    }
}

/// Runs one request; its answer as a frame.
fn run(request: Request, library: &Library, instances: &Shared) -> Option<Vec<u8>> {
    match request {
        Request::Instantiate {
            id,
            instance,
            config,
        } => {
            let built = library.instantiate(&config).map(|made| {
                if let Ok(mut set) = instances.write()
                    && !set.dropped.remove(&instance)
                {
                    set.live.insert(instance, Arc::new(made));
                }
                RawValue::NULL
            });
            answer_frame(id, built.map_err(Into::into))
        }
        Request::Call {
            id,
            instance,
            call,
            service,
            user,
        } => {
            let target = instances
                .read()
                .ok()
                .and_then(|set| set.live.get(&instance).cloned());
            // Text in, text out: the profile goes to the plugin as it came, and only the
            // answer's syntax is checked here (the host reads it, as it would in-process).
            let answer = match target {
                Some(target) => target.invoke_text(call, &service, user.get()),
                None => Err(CallError::Failed(format!("no instance {instance}"))),
            };
            call_answer(id, answer.as_ref().map(|text| text.as_str()))
        }
        Request::Drop { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{call_answer, holds_frame};
    use crate::plugins::worker::protocol::{self, Reply};
    use crate::plugins::{CallError, PluginError};

    /// What the host makes of a frame: the call's id and what its caller gets.
    fn on_host(frame: Option<Vec<u8>>) -> (u64, Result<serde_json::Value, CallError>) {
        let frame = frame.expect("a frame");
        let reply: Reply = protocol::read_blocking(&mut frame.as_slice())
            .expect("the host can read the frame")
            .expect("one message");
        match reply {
            Reply::Answer { id, result } => (id, protocol::answer_value(result)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_answer_goes_out_as_written() {
        let written = r#"{"docs": {"read": true}}"#;
        let frame = call_answer(1, Ok(&format!(" {written}\n"))).expect("a frame");
        let body = String::from_utf8_lossy(&frame[4..]);
        assert!(body.contains(written), "copied as written: {body}");
        assert_eq!(
            on_host(Some(frame)),
            (1, Ok(serde_json::json!({"docs": {"read": true}})))
        );
        let failed = PluginError::Panicked("boom".into());
        assert_eq!(
            on_host(call_answer(4, Err(&failed))),
            (4, Err(CallError::Plugin(failed)))
        );
    }

    #[test]
    fn an_answer_json_cannot_read_fails_its_call_as_in_process_and_keeps_the_frame_readable() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for (id, text) in [
            (2, "{not json"),
            (3, "{} {}"),
            (4, r#"{"n": 1e400}"#),
            (5, r#"{"s": "\ud800"}"#),
            (6, deep.as_str()),
        ] {
            let (answered, result) = on_host(call_answer(id, Ok(text)));
            assert_eq!(answered, id);
            // The same error, in the same words, as the in-process loader's.
            let in_process = serde_json::from_str::<serde_json::Value>(text)
                .map_err(CallError::not_json)
                .expect_err("not readable in-process either");
            assert!(matches!(
                &in_process,
                CallError::Plugin(PluginError::BadAnswer(_))
            ));
            assert_eq!(result, Err(in_process), "{text}");
        }
    }

    #[test]
    fn a_frame_is_whole_only_with_its_header_and_every_byte_of_its_body() {
        assert!(!holds_frame(&[]));
        assert!(!holds_frame(&[0, 0, 0]));
        assert!(holds_frame(&[0, 0, 0, 0]));
        assert!(!holds_frame(&[0, 0, 0, 2, b'{']));
        assert!(holds_frame(&[0, 0, 0, 2, b'{', b'}']));
        assert!(holds_frame(&[0, 0, 0, 2, b'{', b'}', 0]));
    }
}
