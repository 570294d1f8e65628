//! authhost's domain, without HTTP: configuration, keys, tokens, users, the login upstreams,
//! plugins and the database. The server crate (`authhost`) turns requests into calls of this
//! crate and its answers into responses; this crate knows nothing of HTTP servers.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod call_pool;
pub mod client_addr;
pub mod config;
pub mod crypto;
pub mod db;
pub mod hooks;
pub mod keys;
pub mod login;
pub mod plugins;
pub mod redirects;
pub mod sessions;
pub mod stats;
pub mod tokens;
pub mod user_cache;
pub mod users;
