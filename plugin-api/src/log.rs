//! Logging from a plugin into the host's log. A plugin's own `tracing` goes nowhere (its copy
//! of tracing has no subscriber), so the host hands each library a callback at load time.

use std::sync::OnceLock;

use abi_stable::std_types::RStr;

use crate::abi::HostLogger;

/// How serious a log line is. It crosses the boundary (and a worker's stderr) as its
/// [`code`](Level::code), the digits 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The level of a code; an unknown code reads as `Debug` (the least loud).
    pub const fn from_code(code: u8) -> Level {
        match code {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            _ => Level::Debug,
        }
    }
}

static LOGGER: OnceLock<(HostLogger, String)> = OnceLock::new();

/// Called by the host through the root module (once per library).
pub(crate) fn install(logger: HostLogger, plugin: &str) {
    let _ = LOGGER.set((logger, plugin.to_string()));
}

/// Writes `message` to the host's log at `level`, under the plugin's name.
pub fn write(level: Level, message: &str) {
    match LOGGER.get() {
        Some((logger, plugin)) => (logger.log)(
            level.code(),
            RStr::from_str(plugin),
            RStr::from_str(message),
        ),
        // Outside a host (unit tests of a plugin), stderr is the best place.
        None => eprintln!("[plugin] {message}"),
    }
}

pub fn error(message: &str) {
    write(Level::Error, message);
}

pub fn warn(message: &str) {
    write(Level::Warn, message);
}

pub fn info(message: &str) {
    write(Level::Info, message);
}

pub fn debug(message: &str) {
    write(Level::Debug, message);
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn a_level_reads_back_from_its_code() {
        for level in [Level::Error, Level::Warn, Level::Info, Level::Debug] {
            assert_eq!(Level::from_code(level.code()), level);
        }
        assert_eq!(Level::from_code(0), Level::Debug);
    }
}
