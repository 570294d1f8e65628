//! The HTTP surface: one module per route family, assembled here with the request metrics and
//! CORS layers. Unknown routes and wrong methods answer JSON too.

mod admin;
mod auth;
mod dev_login;
mod exchange;
mod hot_check;
mod login;
mod metadata;
mod oidc;
mod ops;
mod page;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::access_log;
use crate::app::SharedApp;
use crate::http::{ApiError, ClientIp, KnownUser};
use crate::metrics::RequestMetrics;

pub use admin::AdminService;
pub use exchange::GRANT_TYPE as TOKEN_EXCHANGE_GRANT;
pub use hot_check::AppService;

/// What the server runs: the router behind the `check` fast path.
pub fn service(app: SharedApp) -> AppService {
    let metrics = Arc::new(RequestMetrics::new(route_patterns(&app)));
    let router = router(app.clone(), metrics.clone());
    AppService::new(app, router, metrics)
}

/// What the admin listener (`server.admin_listen`) runs: `/metrics`, `/healthz`, `/readyz`.
pub fn admin_service(app: SharedApp) -> AdminService {
    admin::service(app)
}

/// `/metrics` is served on the public listener unless `server.admin_listen` takes it.
fn public_metrics(app: &SharedApp) -> bool {
    app.config.server.admin_listen.is_none()
}

/// The route table: every path the router serves, relative to the prefix (or from the root
/// when it starts with `/`), with its handlers. The router, the request metrics' labels and the
/// tests' random requests all read it; the RFC 8414 metadata paths and `/metrics` depend on the
/// configuration and are added where they are used.
fn table() -> Vec<(&'static str, MethodRouter<SharedApp>)> {
    vec![
        ("check", get(auth::check)),
        ("authorize", get(auth::authorize)),
        ("update", post(auth::update)),
        ("public-key", get(auth::public_key)),
        ("resolve", get(auth::resolve)),
        ("get_profile", get(auth::get_profile)),
        ("logout", get(auth::logout).post(auth::logout)),
        ("login/dev", get(dev_login::form).post(dev_login::submit)),
        ("login/{provider}", get(login::start)),
        ("oauth_callback", get(login::callback)),
        ("token", post(exchange::token)),
        (
            "oidc/authorize",
            get(oidc::authorize::authorize).post(oidc::authorize::authorize),
        ),
        (
            "oidc/userinfo",
            get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        ),
        (
            "oidc/logout",
            get(oidc::logout::logout).post(oidc::logout::logout),
        ),
        ("/.well-known/jwks.json", get(ops::jwks)),
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
    ]
}

/// The paths of the route table, as written there.
pub fn paths() -> Vec<&'static str> {
    table().into_iter().map(|(path, _)| path).collect()
}

/// A path of the table under `prefix`.
fn full_path(prefix: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{prefix}{path}")
    }
}

/// Every route pattern, as `MatchedPath` reports it (the labels of the request metrics).
pub fn route_patterns(app: &SharedApp) -> Vec<String> {
    let p = &app.config.server.prefix;
    let mut routes: Vec<String> = paths().iter().map(|r| full_path(p, r)).collect();
    routes.extend(metadata::paths(app.tokens.issuer()));
    if public_metrics(app) {
        routes.push("/metrics".into());
    }
    routes
}

pub fn router(app: SharedApp, metrics: Arc<RequestMetrics>) -> Router {
    let p = app.config.server.prefix.clone();
    let api = table()
        .into_iter()
        .fold(Router::new(), |api, (path, methods)| {
            api.route(&full_path(&p, path), methods)
        });
    let api = metadata::paths(app.tokens.issuer())
        .iter()
        .fold(api, |api, path| api.route(path, get(metadata::metadata)));
    let api = if public_metrics(&app) {
        api.route("/metrics", get(ops::metrics))
    } else {
        api
    };
    let api = api
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(cors(&app.config.cors.allowed_origins))
        .layer(middleware::from_fn_with_state(
            Observer {
                metrics,
                access_log: app.config.server.access_log.then(|| app.clone()),
            },
            observe,
        ));
    api.with_state(app)
}

/// What `observe` needs: the metric handles, and the app when the access log is on.
#[derive(Clone)]
struct Observer {
    metrics: Arc<RequestMetrics>,
    access_log: Option<SharedApp>,
}

/// Counts and times every request by route pattern and status, writes its access line, and
/// adds the headers every answer carries.
async fn observe(State(observer): State<Observer>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let client = observer
        .access_log
        .as_ref()
        .map(|app| ClientIp::of(app, req.headers(), req.extensions()).0);
    let started = Instant::now();
    let mut response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    crate::headers::secure(response.headers_mut());
    match client {
        Some(client) => access_log::Line {
            method: &method,
            route,
            status,
            elapsed,
            client,
            user: response
                .extensions()
                .get::<KnownUser>()
                .map(|u| u.0.as_str()),
        }
        .write(),
        None => {
            tracing::debug!(%method, route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
        }
    }
    observer.metrics.record(route, status, elapsed);
    response
}

/// Browsers may call the API with credentials from the configured origins; `"*"` echoes any
/// origin as the original's hosts did.
pub(crate) fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| crate::redirects::parse_origin(o))
            .filter_map(|o| HeaderValue::from_str(&o).ok())
            .collect();
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("auth-token"),
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ])
        .max_age(std::time::Duration::from_secs(600))
}
