//! Operations routes: JWKS, liveness, readiness, metrics.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::SharedApp;
use crate::http::json_response;

/// The JWKS with `Cache-Control: public, max-age` (`keys.jwks_max_age_seconds`) and an
/// `ETag`; a request whose `If-None-Match` names the current tag gets 304 and no body.
pub async fn jwks(State(app): State<SharedApp>, request: HeaderMap) -> Response {
    let (body, etag) = app.tokens.keys().jwks_document();
    let unchanged = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut r = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    let max_age = app.config.keys.jwks_max_age_seconds;
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
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
