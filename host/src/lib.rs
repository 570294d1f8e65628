//! authhost: logs users in, issues user tokens, and trades them for per-service permission
//! tokens. The successor of dgp-oauth2, with the same routes, variables and token claims.
//!
//! This crate is the server (HTTP, routes, the accept loop, the CLI); the domain lives in
//! `authhost_core` and is re-exported here under its own module names.
//!
//! # Layout
//!
//! - `cli`: the command line, one file per subcommand (`main.rs` only calls `cli::main`).
//! - `app`: `App`, everything a request needs, built and validated once at start.
//! - `server`: the accept loop, connection caps and deadlines, graceful shutdown, the admin
//!   listener.
//! - `routes`: one route table, one file per route family, the `check` shortcut, request
//!   metrics and access lines; `http` (parameters, tokens, errors as JSON), `headers`,
//!   `access_log`, `metrics` (the Prometheus families), `logging`.
//!
//! docs/architecture.md has the table of modules and where a request goes.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub use authhost_core::{
    call_pool, client_addr, config, crypto, db, hooks, keys, login, oidc_codes, oidc_refresh,
    oidc_request, plugins, redirects, sessions, stats, tokens, user_cache, user_changes, users,
};

pub mod access_log;
pub mod app;
pub mod cli;
pub mod headers;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod routes;
pub mod server;
