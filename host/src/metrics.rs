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
