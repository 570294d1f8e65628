//! Prometheus metrics: one recorder per process, rendered by `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's metrics handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            process_collector().describe();
            metrics::gauge!("authhost_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("AUTHHOST_BUILD_COMMIT"))
                .set(1.0);
            // Histogram samples queue up in memory until upkeep folds them into the buckets:
            // without this, every request's latency stays in RSS until `/metrics` is scraped.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start metrics upkeep; histogram samples wait for /metrics");
            }
            handle
        })
        .clone()
}

/// The `process_*` figures every Prometheus client exports (resident memory, CPU seconds, open
/// file descriptors, start time, threads), read from /proc at each scrape.
pub fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// `# HELP` text for every family authhost exports (the `process_*` ones describe
/// themselves). `tests/integration/operators.rs` checks that a scrape has no family without it.
const HELP: &[(&str, &str)] = &[
    (
        "authhost_build_info",
        "Always 1; the labels name the version and the git commit of this build.",
    ),
    (
        REQUESTS,
        "HTTP requests answered, by route template and status.",
    ),
    (
        DURATION,
        "Time from request head to answer, by route template, in seconds.",
    ),
    (
        "authhost_connections_refused_total",
        "Connections closed unanswered, by reason (per_client: over server.max_connections_per_client).",
    ),
    (
        "authhost_tokens_issued_total",
        "Tokens handed out, by kind (user: logins and `authhost token`; permission: authorize and token exchange, cached or newly signed; id, access, refresh: the OpenID Provider's token endpoint).",
    ),
    (
        "authhost_oidc_grants_refused_total",
        "Token requests of the OpenID Provider (authorization_code, refresh_token) refused, by reason.",
    ),
    (
        "authhost_oidc_authorize_refused_total",
        "Authorization requests of the OpenID Provider answered with an error sent back to the client, by error.",
    ),
    (
        "authhost_oidc_userinfo_refused_total",
        "userinfo requests refused for their access token (invalid, expired, or its user logged out since).",
    ),
    (
        "authhost_tokens_refused_total",
        "User tokens refused, by reason (malformed, bad_signature, expired, unknown_key, wrong_type, wrong_algorithm, invalid_claims, revoked, unknown_user, disabled).",
    ),
    (
        "authhost_cache_hits_total",
        "Cache lookups that found their entry, by cache (users, verified_tokens, permission_tokens).",
    ),
    (
        "authhost_cache_misses_total",
        "Cache lookups that did not find their entry, by cache.",
    ),
    (
        "authhost_cache_bytes",
        "Bytes a cache holds by its own weighing, by cache (each is bounded by its [caches] budget).",
    ),
    (
        "authhost_db_pool_connections",
        "Database pool connections, by state (in_use, idle).",
    ),
    (
        "authhost_db_pool_max_connections",
        "The database pool's size limit (database.max_connections); in_use at this value means requests wait for a connection.",
    ),
    (
        "authhost_db_errors_total",
        "Database errors seen by requests and background work, by kind (acquire_timeout, connection, query).",
    ),
    (
        "authhost_db_wal_writes_total",
        "(SQLite) Writes that waited for a sync of the write-ahead log before they were acknowledged.",
    ),
    (
        "authhost_db_wal_syncs_total",
        "(SQLite) Syncs of the write-ahead log; writes_total / syncs_total is how many writes one sync covered.",
    ),
    (
        "authhost_db_wal_sync_failed",
        "(SQLite) 1 once a sync of the write-ahead log failed: every write is refused and /readyz answers 503 until a restart.",
    ),
    (
        "authhost_db_up",
        "1 while the database's circuit breaker is closed (requests go to the database), 0 while it is open (they fail at once and a probe watches for the database).",
    ),
    (
        "authhost_db_breaker_transitions_total",
        "Times the database's circuit breaker changed state, by the state it went to (open, closed).",
    ),
    (
        "authhost_user_changes_listening",
        "1 while this replica listens for user changes on PostgreSQL (rows cached for database.user_cache_notified_seconds), 0 while it does not (database.user_cache_ms).",
    ),
    (
        "authhost_user_changes_lost_total",
        "Times the listener for user changes lost its connection or could not listen.",
    ),
    (
        "authhost_stale_answers_total",
        "Answers given from a user row kept in memory while the database was unreachable (database.stale_if_error_seconds), by route.",
    ),
    ("authhost_logins_total", "Completed logins, by provider."),
    (
        "authhost_login_failures_total",
        "Logins that ended in an error redirect, by provider and error code.",
    ),
    (
        "authhost_login_callbacks_refused_total",
        "Login callbacks refused before any upstream call because the browser holds no login for them that opens, by reason (no_state, no_cookie, unreadable, unknown_key, other_login).",
    ),
    (
        "authhost_authorize_unknown_service_total",
        "authorize requests for a service alias no provider serves (answered {}, as the original did).",
    ),
    (
        "authhost_plugin_calls_total",
        "get_permissions calls, by service alias and outcome (ok, error, panic, invalid, not_implemented, timeout, busy, crash, unavailable).",
    ),
    (
        "authhost_plugin_call_duration_seconds",
        "get_permissions call time, by service alias, in seconds.",
    ),
    (
        "authhost_hook_calls_total",
        "Hook deliveries to extensions, by extension, hook and outcome.",
    ),
    (
        "authhost_hook_events_total",
        "Durable hook events, by outcome (delivered, retried, failed).",
    ),
    (
        "authhost_hook_events_pending",
        "Hook events waiting in the outbox (pending and not yet delivered).",
    ),
    (
        "authhost_plugin_worker_restarts_total",
        "Plugin worker process restarts, by plugin and reason (signal, exit, hung, protocol, start_failed).",
    ),
    (
        "authhost_plugin_workers_up",
        "Plugin worker processes running and answering.",
    ),
    (
        "authhost_pool_busy_threads",
        "Threads of a fixed pool busy now, by pool (plugin-call: in-process plugin calls; sign: RSA signatures).",
    ),
];

fn describe() {
    for (name, help) in HELP {
        let kind = if name.ends_with("_total") {
            Kind::Counter
        } else if name.ends_with("_seconds") {
            Kind::Histogram
        } else {
            Kind::Gauge
        };
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
        }
    }
}

enum Kind {
    Counter,
    Histogram,
    Gauge,
}

/// Statuses whose request counters are kept as handles; any other status goes through the
/// registry by name (slower, but rare).
const COMMON_STATUSES: [u16; 9] = [200, 302, 400, 401, 404, 405, 413, 500, 503];

/// Request counters and latency histograms by route pattern. Handles are created on first use
/// and kept, so recording a request is a map lookup and two atomic updates instead of building
/// owned labels and finding them in the registry on every request.
pub struct RequestMetrics {
    routes: HashMap<String, Arc<RouteMetrics>>,
}

/// One route's handles.
pub struct RouteMetrics {
    route: String,
    duration: OnceLock<Histogram>,
    by_status: [OnceLock<Counter>; COMMON_STATUSES.len()],
}

const REQUESTS: &str = "authhost_http_requests_total";
const DURATION: &str = "authhost_http_request_duration_seconds";

impl RequestMetrics {
    /// `routes`: every route pattern the router knows; other labels (e.g. "unmatched") are
    /// recorded by name.
    pub fn new<I: IntoIterator<Item = String>>(routes: I) -> RequestMetrics {
        let routes = routes
            .into_iter()
            .map(|route| (route.clone(), Arc::new(RouteMetrics::new(route))))
            .collect();
        RequestMetrics { routes }
    }

    /// The handles of `route`, to keep where one route is recorded again and again.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        self.routes
            .get(route)
            .cloned()
            .unwrap_or_else(|| Arc::new(RouteMetrics::new(route.to_string())))
    }

    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        match self.routes.get(route) {
            Some(handles) => handles.record(status, elapsed),
            None => {
                let status = status.to_string();
                metrics::counter!(REQUESTS, "route" => route.to_string(), "status" => status)
                    .increment(1);
                metrics::histogram!(DURATION, "route" => route.to_string())
                    .record(elapsed.as_secs_f64());
            }
        }
    }
}

impl RouteMetrics {
    fn new(route: String) -> RouteMetrics {
        RouteMetrics {
            route,
            duration: OnceLock::new(),
            by_status: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    pub fn record(&self, status: u16, elapsed: Duration) {
        let route = &self.route;
        self.duration
            .get_or_init(|| metrics::histogram!(DURATION, "route" => route.clone()))
            .record(elapsed.as_secs_f64());
        let counter = |status: u16| metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status.to_string());
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(i) => match self.by_status.get(i) {
                Some(handle) => handle.get_or_init(|| counter(status)).increment(1),
                None => counter(status).increment(1),
            },
            None => counter(status).increment(1),
        }
    }
}
