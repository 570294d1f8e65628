//! Logging in: the upstreams (from `authhost_core::login`) and the flow's HTTP side.

pub use authhost_core::login::*;

pub mod flow;
