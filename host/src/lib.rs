//! authhost: logs users in, issues user tokens, and trades them for per-service permission
//! tokens. The successor of dgp-oauth2, with the same routes, variables and token claims.
//!
//! This crate is the server (HTTP, routes, the accept loop, the CLI); the domain lives in
//! `authhost_core` and is re-exported here under its own module names.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub use authhost_core::{
    call_pool, client_addr, config, crypto, db, hooks, keys, login, plugins, redirects, sessions,
    stats, tokens, user_cache, users,
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
