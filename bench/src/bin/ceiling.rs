//! W0, the HTTP ceiling: a fixed JSON body of a given size with no work at all.
//! `bench-ceiling PORT SIZE` serves it through authhost's own accept loop and HTTP settings
//! (`authhost::server::serve_service`: the same hyper builder, header timeout, connection cap,
//! graceful-shutdown watch, allocator and runtime), so W1/W0 measures what authhost does per
//! request beyond its HTTP stack. `bench-ceiling PORT SIZE bare` serves it from plain hyper
//! with default settings, for reference.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(8090);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let bare = args.get(3).is_some_and(|a| a == "bare");
    // A JSON object of exactly `size` bytes.
    let filler = "x".repeat(size.saturating_sub(8));
    let body = Bytes::from(format!("{{\"x\":\"{filler}\"}}"));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    if bare {
        return serve_bare(listener, body).await;
    }
    let service = service_fn(move |_req: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(fixed::<Body>(&body)))
    });
    let limits = authhost::server::Limits {
        max_connections: 4096,
        shutdown_grace: Duration::from_secs(1),
    };
    authhost::server::serve_service(service, limits, listener, std::future::pending()).await;
    Ok(())
}

async fn serve_bare(listener: tokio::net::TcpListener, body: Bytes) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<Incoming>| {
                std::future::ready(Ok::<_, Infallible>(fixed::<Full<Bytes>>(&body)))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The constant answer: `body` as JSON.
fn fixed<B: From<Bytes>>(body: &Bytes) -> Response<B> {
    let mut r = Response::new(B::from(body.clone()));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
