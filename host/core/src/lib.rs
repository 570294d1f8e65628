//! authhost's domain, without HTTP: configuration, keys, tokens, users, the login upstreams,
//! plugins and the database. The server crate (`authhost`) turns requests into calls of this
//! crate and its answers into responses; this crate knows nothing of HTTP servers.
//!
//! # Layout
//!
//! - Settings and secrets: `config` (file, `AUTHHOST_*` and the original's variables,
//!   validation, redaction), `keys` (the key ring and what is derived from it), `crypto`.
//! - Tokens: `tokens` (minting, verifying, their caches), `stats` (hot-path counts).
//! - Users: `db` (connection, migrations, entities), `users`, `user_cache`, `sessions` (login,
//!   logout, disable, delete: the user, its hook events and its token together), `hooks` (the
//!   durable outbox of hook events).
//! - Logging in: `login` (the upstreams; `login::flow` the state machine; `login::sealed` the
//!   login in progress sealed into its cookie), `redirects` (the `next` allowlist),
//!   `client_addr` (who the client is behind trusted proxies).
//! - Plugins: `plugins` (the set, one call path; `plugins::worker` for worker processes),
//!   `call_pool` (the threads plugin calls and signatures run on).
//!
//! docs/architecture.md has the table of modules and what each may use.
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
pub mod oidc_codes;
pub mod oidc_refresh;
pub mod oidc_request;
pub mod plugins;
pub mod redirects;
pub mod sessions;
pub mod stats;
pub mod tokens;
pub mod user_cache;
pub mod user_changes;
pub mod users;
