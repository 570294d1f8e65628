//! The admin listener (`server.admin_listen`): `/metrics`, `/healthz` and `/readyz` on an address
//! of their own, so that metrics can stay off the public one. Unknown routes answer JSON 404.
//! Requests here are not counted in the request metrics (scrapes and probes would drown the
//! public routes of the same names).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::routing::get;
use tower::ServiceExt;

use super::ops;
use crate::app::SharedApp;
use crate::http::ApiError;

/// The admin router as a hyper service.
#[derive(Clone)]
pub struct AdminService {
    router: Router,
}

pub fn service(app: SharedApp) -> AdminService {
    AdminService {
        router: router(app),
    }
}

pub fn router(app: SharedApp) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::map_response(secure))
        .with_state(app)
}

async fn secure(mut response: Response<Body>) -> Response<Body> {
    crate::headers::secure(response.headers_mut());
    response
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for AdminService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Answer {
        Box::pin(self.router.clone().oneshot(req.map(Body::new)))
    }
}
