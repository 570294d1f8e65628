//! The HTTP surface: one module per route family, assembled here with the request metrics and
//! CORS layers. Unknown routes and wrong methods answer JSON too.

mod auth;
mod dev_login;
mod login;
mod ops;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::SharedApp;
use crate::http::ApiError;

pub fn router(app: SharedApp) -> Router {
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
        .route("/.well-known/jwks.json", get(ops::jwks))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(cors(&app.config.cors.allowed_origins))
        .layer(middleware::from_fn(observe));
    api.with_state(app)
}

/// Counts and times every request by route pattern and status.
async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    tracing::debug!(%method, route, status, elapsed_ms = elapsed * 1000.0, "request");
    metrics::counter!("authhost_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("authhost_http_request_duration_seconds", "route" => route).record(elapsed);
    response
}

/// Browsers may call the API with credentials from the configured origins; `"*"` echoes any
/// origin as the original's hosts did.
fn cors(origins: &[String]) -> CorsLayer {
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
