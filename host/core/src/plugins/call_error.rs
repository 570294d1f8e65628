//! Why a plugin call gave no answer, as the host sees it: what the plugin did (the ABI crate's
//! `CallError`, read from the boundary's typed failure) or what went wrong on the host's side of
//! the call (a deadline, full queues, a worker process that died or is restarting). The
//! variant's label is the `outcome` of the call metrics.

use std::fmt;

pub use authhost_plugin_api::load::CallError as PluginError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin failed: an error, a panic, a bad answer or a call it does not implement.
    Plugin(PluginError),
    /// No answer within the call deadline.
    Timeout,
    /// Every call thread was taken and the queue was full: refused at once.
    Busy,
    /// The host could not run the call at all (its call threads are gone, the plugin's worker
    /// process is restarting, the extension is no longer installed).
    Unavailable(String),
    /// The plugin's worker process died during the call (signal or exit).
    Crashed(String),
}

impl CallError {
    /// A plugin's answer that JSON cannot read (in this process or a worker's host alike).
    pub fn not_json(e: serde_json::Error) -> CallError {
        CallError::Plugin(PluginError::not_json(e))
    }

    /// The `outcome` label of the call metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Plugin(PluginError::Failed(_)) => "error",
            CallError::Plugin(PluginError::Panicked(_)) => "panic",
            CallError::Plugin(PluginError::BadAnswer(_)) => "invalid",
            CallError::Plugin(PluginError::NotImplemented(_)) => "not_implemented",
            // Not the plugin's doing (its worker is restarting, the call threads are gone).
            CallError::Unavailable(_) => "unavailable",
            CallError::Timeout => "timeout",
            CallError::Busy => "busy",
            CallError::Crashed(_) => "crash",
        }
    }
}

impl From<PluginError> for CallError {
    fn from(e: PluginError) -> CallError {
        CallError::Plugin(e)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Plugin(e) => e.fmt(f),
            CallError::Unavailable(m) => f.write_str(m),
            CallError::Timeout => f.write_str("no answer within the call deadline"),
            CallError::Busy => {
                f.write_str("busy: every call thread is taken and the queue is full")
            }
            CallError::Crashed(m) => write!(f, "the plugin's worker process died: {m}"),
        }
    }
}

impl std::error::Error for CallError {}
