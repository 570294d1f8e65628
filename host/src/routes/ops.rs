//! Operations routes: JWKS, liveness, readiness, metrics.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::SharedApp;
use crate::http::json_response;

pub async fn jwks(State(app): State<SharedApp>) -> Response {
    let mut r = json_response(StatusCode::OK, &app.tokens.keys().jwks());
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Ready when the database answers (plugins are loaded before the server starts).
pub async fn readyz(State(app): State<SharedApp>) -> Response {
    match app.db.ping().await {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({ "status": "ready", "database": "ok" }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database not reachable");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "database": "unreachable" }),
            )
        }
    }
}

pub async fn metrics(State(app): State<SharedApp>) -> Response {
    app.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
