//! W0, the HTTP ceiling: the same stack as authhost (hyper 1 HTTP/1.1 on a multi-threaded
//! tokio runtime) answering a fixed JSON body of a given size, with no work at all.
//! `bench-ceiling PORT SIZE`

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(8090);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    // A JSON object of exactly `size` bytes.
    let filler = "x".repeat(size.saturating_sub(8));
    let body = Bytes::from(format!("{{\"x\":\"{filler}\"}}"));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let mut r = Response::new(Full::new(body));
                    r.headers_mut()
                        .insert("content-type", "application/json".parse().expect("header"));
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
