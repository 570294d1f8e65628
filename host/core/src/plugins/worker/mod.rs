//! Plugin libraries in worker processes (`plugins.isolation = "process"`, the default): a plugin
//! that aborts, segfaults, exits or hangs costs its own calls, never the host.
//!
//! - `host`: the host's side: one `Worker` per library file (a supervisor keeping one process
//!   running), `WorkerInstance` handles for the plugin set, the connection calls go through.
//! - `child`: the worker process's side, `authhost plugin-worker`: loads the library with the
//!   host's own checks and answers calls on fd 3.
//! - `protocol`: what crosses the socket between them, defined once for both sides.
//!
//! ## The life of a call
//!
//! 1. `PluginSet::permissions` (or a hook delivery) calls `WorkerInstance::invoke` with the
//!    service, the user's profile and the deadline.
//! 2. `host::conn::Conn` gives the call an id, encodes a `protocol::Request::Call` (the profile
//!    as the JSON text it already is) and queues the frame; the host's writer task writes every
//!    frame queued by then in one write, and the call waits for its answer under its deadline.
//! 3. In the child, the reading thread (`child/threads.rs`) runs the call inline, or hands it to
//!    another thread while a call is slow; the plugin answers through the ABI as in-process.
//! 4. The child checks the answer's syntax and sends `protocol::Reply::Answer` with the text
//!    as written (answers ready together go in one write).
//! 5. The host's reader task matches the id to the waiting call and hands it the answer, which
//!    the host reads into a value (`protocol::answer_value`), so an answer JSON cannot hold
//!    fails its own call like an in-process one.
//! 6. If the deadline passes first, the call fails with `Timeout` and its late answer is
//!    dropped; if the process dies, every waiting call fails with `Crashed` and the supervisor
//!    starts a new process (step 1 then fails fast with `Unavailable` until it is up).

pub mod child;
mod host;
mod protocol;

pub use host::{Spec, Worker, WorkerInstance, passes_to_worker};
pub use protocol::parse_kind;
