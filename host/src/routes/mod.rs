//! The HTTP surface: one module per route family, assembled here with the request metrics and
//! CORS layers. Unknown routes and wrong methods answer JSON too.

mod admin;
mod auth;
mod dev_login;
mod exchange;
mod hot_check;
mod login;
mod metadata;
mod ops;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
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
    app.config.server.admin_listen.trim().is_empty()
}

/// Every route pattern, as `MatchedPath` reports it (the labels of the request metrics).
pub fn route_patterns(app: &SharedApp) -> Vec<String> {
    let p = &app.config.server.prefix;
    let mut routes: Vec<String> = [
        "check",
        "authorize",
        "update",
        "public-key",
        "resolve",
        "get_profile",
        "logout",
        "login/dev",
        "login/{provider}",
        "oauth_callback",
        "token",
    ]
    .iter()
    .map(|r| format!("{p}{r}"))
    .collect();
    routes.extend(["/.well-known/jwks.json", "/healthz", "/readyz"].map(String::from));
    routes.extend(metadata::paths(app.tokens.issuer()));
    if public_metrics(app) {
        routes.push("/metrics".into());
    }
    routes
}

pub fn router(app: SharedApp, metrics: Arc<RequestMetrics>) -> Router {
    let p = app.config.server.prefix.clone();
    let api = Router::new()
        .route(&format!("{p}check"), get(auth::check))
        .route(&format!("{p}authorize"), get(auth::authorize))
        .route(&format!("{p}update"), post(auth::update))
        .route(&format!("{p}public-key"), get(auth::public_key))
        .route(&format!("{p}resolve"), get(auth::resolve))
        .route(&format!("{p}get_profile"), get(auth::get_profile))
        .route(&format!("{p}logout"), get(auth::logout).post(auth::logout))
        .route(
            &format!("{p}login/dev"),
            get(dev_login::form).post(dev_login::submit),
        )
        .route(&format!("{p}login/{{provider}}"), get(login::start))
        .route(&format!("{p}oauth_callback"), get(login::callback))
        .route(&format!("{p}token"), post(exchange::token))
        .route("/.well-known/jwks.json", get(ops::jwks))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
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
