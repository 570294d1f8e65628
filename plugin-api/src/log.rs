//! Logging from a plugin into the host's log. A plugin's own `tracing` goes nowhere (its copy
//! of tracing has no subscriber), so the host hands each library a callback at load time.

use std::sync::OnceLock;

use abi_stable::std_types::RStr;

use crate::HostLogger;

static LOGGER: OnceLock<(HostLogger, String)> = OnceLock::new();

/// Called by the host through the root module (once per library).
pub(crate) fn install(logger: HostLogger, plugin: &str) {
    let _ = LOGGER.set((logger, plugin.to_string()));
}

fn emit(level: u8, message: &str) {
    match LOGGER.get() {
        Some((logger, plugin)) => {
            (logger.log)(level, RStr::from_str(plugin), RStr::from_str(message))
        }
        // Outside a host (unit tests of a plugin), stderr is the best place.
        None => eprintln!("[plugin] {message}"),
    }
}

pub fn error(message: &str) {
    emit(1, message);
}

pub fn warn(message: &str) {
    emit(2, message);
}

pub fn info(message: &str) {
    emit(3, message);
}

pub fn debug(message: &str) {
    emit(4, message);
}
