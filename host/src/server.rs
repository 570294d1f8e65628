//! The accept loop: HTTP/1.1 on hyper, a cap on connections, and a graceful shutdown that stops
//! accepting, lets in-flight requests finish (up to the grace period), then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::app::SharedApp;
use crate::client_addr::PeerAddr;

/// Request heads up to this size are read, so an oversized token gets a JSON answer from the
/// route instead of a bare 431 from the parser.
const MAX_HEAD_BYTES: usize = 4 * 1024 * 1024;

/// What the accept loop needs from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(app: SharedApp, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let limits = Limits {
        max_connections: app.config.server.max_connections,
        shutdown_grace: Duration::from_secs(app.config.server.shutdown_grace_seconds),
    };
    serve_service(crate::routes::service(app), limits, listener, shutdown).await;
}

/// The accept loop and HTTP settings behind `serve`, for any service: the benchmark runs its
/// constant-answer ceiling (W0) through exactly this.
pub async fn serve_service<S>(
    service: S,
    limits: Limits,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let grace = limits.shutdown_grace;
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(MAX_HEAD_BYTES)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), with_peer(service.clone(), peer));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

/// `service`, with the connection's peer address in every request's extensions (per-address
/// limits and `X-Forwarded-For` from trusted proxies read it).
fn with_peer<S>(
    service: S,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<axum::body::Body>,
    Error = Infallible,
    Future = S::Future,
> + Clone
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        > + Clone,
{
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        service.call(req)
    })
}

/// A server running in the background (tests, embedding).
pub struct ServerHandle {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// Binds `addr` (port 0 for any free port) and serves `app` on a task.
    pub async fn start(app: SharedApp, addr: SocketAddr) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Stops accepting and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by this call (not when the
/// future is first polled), so call it before announcing that the service is ready.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => tracing::info!("SIGINT received"),
                () = wait(terminate) => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("SIGINT received");
    }
}
