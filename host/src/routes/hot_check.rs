//! The service the server runs: `check` with a valid token in a header, which is most of an
//! auth host's traffic, is answered here without going through the router; every other request
//! goes to the router.
//!
//! The shortcut only ever answers what the router would have answered, byte for byte apart from
//! the date: it takes a plain `GET {prefix}check` (no query string, so no `callback`, `jwt` or
//! `next`; no `Origin`, so no CORS decision) whose token verifies and whose user is already in
//! the user cache and not logged out since. Anything else (no token, a refused token, a user
//! not cached yet, a browser request) is routed, and the router fills the cache.
//! `tests/integration/api.rs` compares both answers.

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use tower::ServiceExt;

use crate::app::SharedApp;
use crate::http::{KnownUser, header_token};
use crate::metrics::{RequestMetrics, RouteMetrics};
use crate::users;

/// The router behind the `check` shortcut.
#[derive(Clone)]
pub struct AppService {
    inner: Arc<Inner>,
}

struct Inner {
    app: SharedApp,
    router: Router,
    /// The `check` route's metric handles.
    metrics: Arc<RouteMetrics>,
    check_path: String,
    /// The headers the router's CORS layer adds to an answer to a request without `Origin`,
    /// taken from the layer itself at start so that both paths answer the same. `None` (the
    /// layer did not answer its probe at once) turns the shortcut off.
    cors_headers: Option<HeaderMap>,
}

impl AppService {
    pub fn new(app: SharedApp, router: Router, metrics: Arc<RequestMetrics>) -> AppService {
        let check_path = format!("{}check", app.config.server.prefix);
        let cors_headers = cors_headers_without_origin(&app.config.cors.allowed_origins);
        if cors_headers.is_none() {
            tracing::warn!("CORS layer probe gave no answer; every check goes through the router");
        }
        let metrics = metrics.route(&check_path);
        AppService {
            inner: Arc::new(Inner {
                app,
                router,
                metrics,
                check_path,
                cors_headers,
            }),
        }
    }

    /// The answer to `req` if the shortcut can give it; `None` sends it to the router.
    pub fn answer_check<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let inner = &*self.inner;
        let cors_headers = inner.cors_headers.as_ref()?;
        if req.method() != Method::GET
            || req.uri().path() != inner.check_path
            || req.uri().query().is_some()
            || req.headers().contains_key(header::ORIGIN)
        {
            return None;
        }
        let token = header_token(req.headers())?;
        // Only the fast verification: a token it does not accept is routed and verified there
        // once, in full, rather than twice.
        let verified = inner.app.tokens.accept_own_token(&token)?;
        let user = inner.app.user_cache.cached(&verified.userid)?;
        if !users::token_still_valid(&user, verified.issued_at) {
            return None;
        }
        inner.app.user_cache.stats.hit();
        let mut response = Response::new(Body::from(user.check_body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in cors_headers {
            headers.append(name, value.clone());
        }
        crate::headers::secure(headers);
        if inner.app.config.server.access_log {
            response
                .extensions_mut()
                .insert(KnownUser(verified.userid.clone()));
        }
        Some(response)
    }
}

/// Runs the CORS layer once on a request without `Origin` and keeps what it added.
fn cors_headers_without_origin(origins: &[String]) -> Option<HeaderMap> {
    use tower::Layer;
    let probe = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let mut cors = super::cors(origins).layer(probe);
    let request = Request::new(Body::empty());
    // The service above is ready at once and answers at once: poll the future a single time.
    let mut future = std::pin::pin!(tower::Service::call(&mut cors, request));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => Some(response.headers().clone()),
        _ => None,
    }
}

/// The answer future: ready at once from the shortcut (no allocation), or the router's.
pub enum Answer {
    Now(Ready<Result<Response<Body>, Infallible>>),
    Routed(Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>),
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(ready) => Pin::new(ready).poll(cx),
            Answer::Routed(routed) => routed.as_mut().poll(cx),
        }
    }
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for AppService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Answer {
        let started = Instant::now();
        if let Some(response) = self.answer_check(&req) {
            let inner = &self.inner;
            let elapsed = started.elapsed();
            if inner.app.config.server.access_log {
                let client = crate::http::ClientIp::of(&inner.app, req.headers(), req.extensions());
                let user = response.extensions().get::<KnownUser>();
                crate::access_log::Line {
                    method: req.method(),
                    route: &inner.check_path,
                    status: 200,
                    elapsed,
                    client: client.0,
                    user: user.map(|u| u.0.as_str()),
                }
                .write();
            } else {
                tracing::debug!(method = %req.method(), route = inner.check_path, status = 200, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
            }
            inner.metrics.record(StatusCode::OK.as_u16(), elapsed);
            return Answer::Now(std::future::ready(Ok(response)));
        }
        Answer::Routed(Box::pin(
            self.inner.router.clone().oneshot(req.map(Body::new)),
        ))
    }
}
