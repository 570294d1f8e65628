//! The worker process's side (`authhost plugin-worker`): load one plugin library through the
//! same checks as the host, say so, then answer calls from the socket on fd 3 with a fixed set
//! of threads, until the host closes the socket.
//!
//! Log lines go to stderr as `<level digit> <message>`; the host reads them into its own log
//! under the plugin's name. The process has no stdin and a scrubbed environment (`spawn.rs`).

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use authhost_plugin_api::abi_stable::std_types::RStr;
use authhost_plugin_api::load::{Instance, Library};
use authhost_plugin_api::{CallError, HostLogger, Kind};
use serde_json::Value;

use super::frame::{self, Loaded, PROTOCOL_VERSION, Reply, Request, WireError};

/// The socket the host hands every worker.
pub const SOCKET_FD: i32 = 3;

extern "C" fn stderr_log(level: u8, _plugin: RStr<'_>, message: RStr<'_>) {
    // One line per message: the host splits on newlines.
    let line = message.as_str().replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "{level} {line}");
}

type Writer = Arc<Mutex<UnixStream>>;

fn send(writer: &Writer, reply: &Reply) {
    let frame = match frame::encode(reply) {
        Ok(frame) => frame,
        // An answer too large for a frame still answers: with an error, not silence.
        Err(e) => match reply {
            Reply::Answer { id, .. } => match frame::encode(&Reply::Answer {
                id: *id,
                result: Err(WireError::BadAnswer(format!("cannot send the answer: {e}"))),
            }) {
                Ok(frame) => frame,
                Err(_) => return,
            },
            Reply::Ready { .. } => return,
        },
    };
    if let Ok(mut socket) = writer.lock() {
        // A write error means the host is gone; the read loop ends the process.
        let _ = socket.write_all(&frame);
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

/// Runs the worker; returns the process exit code.
pub fn serve(path: &Path, kind: Kind, threads: usize) -> i32 {
    // SAFETY: the host started this process with the socket as fd 3 (spawn.rs), and nothing
    // else in this process owns that descriptor.
    let socket = unsafe { UnixStream::from_raw_fd(SOCKET_FD) };
    // Not for the plugin's own child processes: they could write calls' answers.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        libc::fcntl(SOCKET_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    watch_parent();
    let writer: Writer = match socket.try_clone() {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            eprintln!("1 cannot use the host's socket: {e}");
            return 2;
        }
    };
    let library = match Library::load(path, kind) {
        Ok(lib) => lib,
        Err(e) => {
            if let Some(details) = e.details() {
                eprintln!("4 plugin layout report: {}", details.replace('\n', " "));
            }
            send(
                &writer,
                &Reply::Ready {
                    protocol: PROTOCOL_VERSION,
                    loaded: Err(e.to_string()),
                },
            );
            return 0;
        }
    };
    library.set_logger(HostLogger { log: stderr_log });
    send(
        &writer,
        &Reply::Ready {
            protocol: PROTOCOL_VERSION,
            loaded: Ok(Loaded {
                name: library.info.name.clone(),
                version: library.info.version.clone(),
                interface_version: library.info.interface_version,
            }),
        },
    );
    let instances: Arc<RwLock<HashMap<u64, Arc<Instance>>>> = Arc::default();
    // Leader/follower: each thread takes the next message itself and answers it, so a call
    // crosses no queue between threads (a hand-off costs more than a small plugin call).
    let reader = Arc::new(Mutex::new(BufReader::new(socket)));
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let (reader, writer, instances, library) = (
            reader.clone(),
            writer.clone(),
            instances.clone(),
            library.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("plugin-call".into())
            .spawn(move || follow(&reader, &library, &instances, &writer));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                eprintln!("1 cannot start a call thread: {e}");
                return 2;
            }
        }
    }
    // The first thread to finish saw the end of the socket (or a broken message): the host is
    // done with this worker, or gone. Calls still running on other threads are abandoned.
    let (done, finished) = crossbeam_channel::bounded::<i32>(handles.len());
    for handle in handles {
        let done = done.clone();
        std::thread::spawn(move || {
            let _ = done.send(handle.join().unwrap_or(2));
        });
    }
    finished.recv().unwrap_or(2)
}

type Reader = Mutex<BufReader<UnixStream>>;

/// One call thread: read the next message, answer it, repeat; returns the exit code when the
/// socket ends (0) or carries something unreadable (2).
fn follow(
    reader: &Reader,
    library: &Library,
    instances: &RwLock<HashMap<u64, Arc<Instance>>>,
    writer: &Writer,
) -> i32 {
    loop {
        let next = match reader.lock() {
            Ok(mut socket) => frame::read_blocking::<Request>(&mut *socket),
            Err(_) => return 2,
        };
        match next {
            Ok(Some(Request::Drop { instance })) => {
                if let Ok(mut map) = instances.write() {
                    map.remove(&instance);
                }
            }
            Ok(Some(request)) => run(request, library, instances, writer),
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("1 broken message from the host: {e}");
                return 2;
            }
        }
    }
}

fn run(
    request: Request,
    library: &Library,
    instances: &RwLock<HashMap<u64, Arc<Instance>>>,
    writer: &Writer,
) {
    let (id, result) = match request {
        Request::Instantiate {
            id,
            instance,
            config,
        } => {
            let built = library.instantiate(&config).map(|made| {
                if let Ok(mut map) = instances.write() {
                    map.insert(instance, Arc::new(made));
                }
                Value::Null
            });
            (id, built)
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
                .and_then(|map| map.get(&instance).cloned());
            let result = match target {
                Some(target) => target.invoke(call, &service, &user),
                None => Err(CallError::Failed(format!("no instance {instance}"))),
            };
            (id, result)
        }
        Request::Drop { .. } => return,
    };
    send(
        writer,
        &Reply::Answer {
            id,
            result: result.map_err(Into::into),
        },
    );
}
