//! `login/<provider>` and `oauth_callback`: thin HTTP wrappers around `crate::login::flow`.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::app::SharedApp;
use crate::http::{ApiError, Params};
use crate::login::flow;

pub async fn start(
    State(app): State<SharedApp>,
    Path(provider): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    flow::start(&app, &provider, &params).await
}

pub async fn callback(State(app): State<SharedApp>, params: Params) -> Result<Response, ApiError> {
    flow::callback(&app, &params).await
}
