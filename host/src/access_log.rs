//! The access log (`server.access_log`): one line per request at info level under the target
//! `authhost::access`. It names the route template, never the path or query a client sent (a
//! query may carry `jwt=`), and the user id only once a token named a valid user: nothing in it
//! is a secret.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::Method;

/// The tracing target of access lines (kept on by `logging::init` when the log is on).
pub const TARGET: &str = "authhost::access";

/// One request, as the access log writes it.
pub struct Line<'a> {
    pub method: &'a Method,
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub client: IpAddr,
    pub user: Option<&'a str>,
}

impl Line<'_> {
    pub fn write(&self) {
        tracing::info!(
            target: TARGET,
            method = %self.method,
            route = self.route,
            status = self.status,
            duration_ms = self.elapsed.as_secs_f64() * 1000.0,
            client = %self.client,
            user = self.user.unwrap_or("-"),
            "request"
        );
    }
}
