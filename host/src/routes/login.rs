//! `login/<provider>` and `oauth_callback`: thin HTTP wrappers around `crate::login::flow`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app::SharedApp;
use crate::http::{ApiError, ClientIp, Params};
use crate::login::flow;

pub async fn start(
    State(app): State<SharedApp>,
    Path(provider): Path<String>,
    ClientIp(client): ClientIp,
    params: Params,
) -> Result<Response, ApiError> {
    flow::start(&app, &provider, client, &params).await
}

pub async fn callback(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    flow::callback(&app, &headers, &params).await
}
