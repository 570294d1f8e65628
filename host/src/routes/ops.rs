//! Operations routes: JWKS, liveness, readiness, metrics.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::{App, SharedApp};
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

/// Ready when the database answers (plugins are loaded before the server starts). While the
/// database's circuit breaker is open the answer is 503 at once, without a query.
pub async fn readyz(State(app): State<SharedApp>) -> Response {
    let unavailable = |since_ms: Option<u128>| {
        let body = match since_ms {
            Some(ms) => json!({
                "status": "unavailable",
                "database": "unreachable",
                "unreachable_for_ms": u64::try_from(ms).unwrap_or(u64::MAX),
            }),
            None => json!({ "status": "unavailable", "database": "unreachable" }),
        };
        json_response(StatusCode::SERVICE_UNAVAILABLE, &body)
    };
    if let Some(outage) = app.db.breaker().outage() {
        return unavailable(Some(outage.since.elapsed().as_millis()));
    }
    if let Some(why) = app.db.sync_failure() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "status": "unavailable",
                "database": "writes refused: a sync of its log to disk failed; restart",
                "error": why,
            }),
        );
    }
    match app.db.ping().await {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({ "status": "ready", "database": "ok" }),
        ),
        Err(e) => {
            crate::db::count_error(&e);
            tracing::warn!(error = %e, "readiness: database not reachable");
            unavailable(None)
        }
    }
}

pub async fn metrics(State(app): State<SharedApp>) -> Response {
    refresh(&app);
    app.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Brings the figures read at scrape time up to date: the counts the core keeps as atomics,
/// cache sizes, the database pool, the process.
fn refresh(app: &App) {
    use metrics::{counter, gauge};
    let stats = &app.tokens.stats;
    let issued = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    counter!("authhost_tokens_issued_total", "kind" => "user")
        .absolute(issued(&stats.user_tokens_issued));
    counter!("authhost_tokens_issued_total", "kind" => "permission")
        .absolute(issued(&stats.permission_tokens_issued));
    for (kind, n) in [
        ("id", &stats.id_tokens_issued),
        ("access", &stats.access_tokens_issued),
        ("refresh", &stats.refresh_tokens_issued),
    ] {
        counter!("authhost_tokens_issued_total", "kind" => kind).absolute(issued(n));
    }
    for (why, n) in stats.refusals() {
        counter!("authhost_tokens_refused_total", "reason" => why.label()).absolute(n);
    }
    let (permission_bytes, verified_bytes) = app.tokens.cache_bytes();
    let caches = [
        (
            "users",
            app.user_cache.stats.get(),
            app.user_cache.weighted_size(),
        ),
        (
            "verified_tokens",
            stats.verified_cache.get(),
            verified_bytes,
        ),
        (
            "permission_tokens",
            stats.permission_cache.get(),
            permission_bytes,
        ),
    ];
    for (cache, (hits, misses), bytes) in caches {
        counter!("authhost_cache_hits_total", "cache" => cache).absolute(hits);
        counter!("authhost_cache_misses_total", "cache" => cache).absolute(misses);
        // Bytes of a bounded cache: far below 2^53, exact as an f64.
        #[allow(clippy::cast_precision_loss)]
        gauge!("authhost_cache_bytes", "cache" => cache).set(bytes as f64);
    }
    gauge!("authhost_db_up").set(if app.db.breaker().is_closed() {
        1.0
    } else {
        0.0
    });
    if app.db.wal_sync().is_some() {
        let failed = app.db.sync_failure().is_some();
        gauge!("authhost_db_wal_sync_failed").set(if failed { 1.0 } else { 0.0 });
    }
    if sea_orm::ConnectionTrait::get_database_backend(&app.db) == sea_orm::DbBackend::Postgres {
        let listening = app.user_cache.is_listening();
        gauge!("authhost_user_changes_listening").set(if listening { 1.0 } else { 0.0 });
    }
    if let Some(pool) = crate::db::pool_state(&app.db) {
        gauge!("authhost_db_pool_connections", "state" => "in_use").set(f64::from(pool.in_use));
        gauge!("authhost_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
        gauge!("authhost_db_pool_max_connections").set(f64::from(pool.max));
    }
    crate::metrics::process_collector().collect();
}
