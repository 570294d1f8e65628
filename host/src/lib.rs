//! authhost: logs users in, issues user tokens, and trades them for per-service permission
//! tokens. The successor of dgp-oauth2, with the same routes, variables and token claims.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod call_pool;
pub mod client_addr;
pub mod config;
pub mod crypto;
pub mod db;
pub mod http;
pub mod keys;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod plugins;
pub mod redirects;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod tokens;
pub mod user_cache;
pub mod users;
