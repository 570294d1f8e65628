//! The integration tests: one binary (each test binary links the whole stack, so one binary
//! instead of sixteen saves most of the suite's build time and disk), one module per area.
//! Black-box over HTTP against servers on port 0 (SQLite, or PostgreSQL with
//! `AUTHHOST_TEST_POSTGRES`), real `.so` plugins, the real `authhost` binary where a test needs
//! a process. The harness is `authhost_tests` (`tests/support/`).
//!
//! Five suites keep binaries of their own, because they need the process to themselves:
//! `memory` (measures this process's resident memory), `metrics` and `admin` (assert exact
//! values, or the absence, of series in the process-wide metrics recorder, which every server
//! of a process shares), `connections` (floods of sockets with millisecond deadlines, under a
//! raised file limit) and `login` (100,000 login starts, both cores for half a minute).
//! `host/tests/cli.rs` runs the CLI and stays beside the binary it tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abi_evolution;
mod api;
mod architecture;
mod caches;
mod database;
mod docs;
mod exchange;
mod hooks;
mod isolation;
mod oidc_codes;
mod oidc_provider;
mod oidc_refresh;
mod operators;
// Needs PostgreSQL's server binaries: `cargo test -p authhost-tests --features outage`.
#[cfg(feature = "outage")]
mod outage;
mod plugins;
// Needs the Python bridge built and a venv: `bash plugins/python_bridge/test.sh`.
mod properties;
#[cfg(feature = "python")]
mod python;
mod redirects;
mod replicas;
mod rotation;
mod tokens;
mod users;
