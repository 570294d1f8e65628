//! The accept loop: HTTP/1.1 on hyper, caps on connections (in all and per client address,
//! `client_counts`), deadlines on request heads and idle keep-alive connections (`conn`), and a
//! graceful shutdown that stops accepting, lets in-flight requests finish (up to the grace
//! period), then returns.

mod client_counts;
mod conn;

use client_counts::ClientCounts;
use conn::{ConnIo, ConnState, Deadlines, Tracked};

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
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::SharedApp;
use crate::client_addr::TrustedProxies;
use crate::config::ServerConfig;

/// The most a request head (request line and headers) may take; a longer one gets a 431 JSON
/// answer. Tokens are at most `tokens::MAX_TOKEN_LEN` (8 KiB), so this leaves room for an
/// oversized token to get the route's own JSON error, while the connections one client may hold
/// (`max_connections_per_client`) cannot make the server hold more than that many times this.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Connections the admin listener (`server.admin_listen`) serves at once: a few scrapers and
/// probes, kept apart from the public listener's cap so that they get through a flood.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// What the accept loop needs from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Per-connection limits from `[server]` (`serve_service` applies the defaults).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections one client address (IPv6: its /64) may hold at once.
    pub max_per_client: usize,
    /// Connections from these peers are not counted per address (they carry many clients).
    pub trusted_proxies: TrustedProxies,
    /// A request head must arrive whole within this time.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(server: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            max_per_client: server.max_connections_per_client,
            trusted_proxies: TrustedProxies::new(&server.trusted_proxies),
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::from_config(&ServerConfig::default())
    }
}

/// `[server]`'s limits for a listener that serves `max_connections` at once.
fn limits_of(app: &SharedApp, max_connections: usize) -> (Limits, ConnectionLimits) {
    let limits = Limits {
        max_connections,
        shutdown_grace: Duration::from_secs(app.config.server.shutdown_grace_seconds),
    };
    (limits, ConnectionLimits::from_config(&app.config.server))
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(app: SharedApp, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let (limits, connection_limits) = limits_of(&app, app.config.server.max_connections);
    let service = crate::routes::service(app);
    serve_service_with(service, limits, connection_limits, listener, shutdown).await;
}

/// Removes the OpenID Provider's spent and expired codes and refresh tokens every ten minutes
/// (after they are kept long enough to recognise a replay), until `stop` changes or its sender
/// is dropped. Every replica sweeps; the deletes are idempotent.
async fn sweep_oidc_rows(app: SharedApp, mut stop: watch::Receiver<bool>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    loop {
        let now = crate::tokens::now();
        let codes = crate::oidc_codes::sweep(&app.db, now).await;
        let refresh = crate::oidc_refresh::sweep(&app.db, now).await;
        match (codes, refresh) {
            (Ok(c), Ok(r)) if c + r > 0 => {
                tracing::debug!(codes = c, refresh_tokens = r, "expired OpenID rows removed");
            }
            (Ok(_), Ok(_)) => {}
            (c, r) => {
                let error = c.err().or(r.err()).map(|e| e.to_string());
                tracing::warn!(
                    error,
                    "sweeping expired OpenID rows failed; tried again later"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}

/// Serves `app` on `listener` and, when `admin` is given (`server.admin_listen`), `/metrics`,
/// `/healthz` and `/readyz` on `admin`, until `shutdown` resolves; returns when both are done.
pub async fn serve_all(
    app: SharedApp,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
    // Hook events that failed their first delivery are retried in the background while the
    // server runs; the loop ends with it (its sender dropped).
    let (_hooks_running, hooks_stop) = watch::channel(false);
    let hooks_stop_for_sweep = hooks_stop.clone();
    let hooks_app = app.clone();
    tokio::spawn(crate::hooks::run(
        app.db.clone(),
        move || hooks_app.plugins(),
        std::time::Duration::from_millis(app.config.plugins.hook_poll_ms),
        hooks_stop,
    ));
    let changes_stop = hooks_stop_for_sweep.clone();
    tokio::spawn(sweep_oidc_rows(app.clone(), hooks_stop_for_sweep));
    let changes_app = app.clone();
    tokio::spawn(async move {
        crate::user_cache::listener::listen(&changes_app.db, &changes_app.user_cache, changes_stop)
            .await;
    });
    let Some(admin) = admin else {
        return serve(app, listener, shutdown).await;
    };
    let (stop, mut stopped) = watch::channel(false);
    let admin_task = tokio::spawn(serve_admin(app.clone(), admin, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    serve(app, listener, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = admin_task.await;
}

/// The admin listener: the operations routes, with the same per-connection limits.
pub async fn serve_admin(
    app: SharedApp,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let (limits, connection_limits) = limits_of(&app, ADMIN_MAX_CONNECTIONS);
    let service = crate::routes::admin_service(app);
    serve_service_with(service, limits, connection_limits, listener, shutdown).await;
}

/// What the accept loop serves: a hyper service answering with axum bodies, never failing,
/// cloned per connection.
pub trait AppHttpService:
    hyper::service::Service<
        Request<Incoming>,
        Response = Response<axum::body::Body>,
        Error = Infallible,
    > + Clone
    + Send
    + 'static
{
}

impl<S> AppHttpService for S where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static
{
}

/// The accept loop and HTTP settings behind `serve`, for any service, with the default
/// per-connection limits: the benchmark runs its constant-answer ceiling (W0) through exactly
/// this.
pub async fn serve_service<S>(
    service: S,
    limits: Limits,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) where
    S: AppHttpService,
    S::Future: Send + Unpin + 'static,
{
    serve_service_with(
        service,
        limits,
        ConnectionLimits::default(),
        listener,
        shutdown,
    )
    .await;
}

/// `serve_service` with the given per-connection limits.
pub async fn serve_service_with<S>(
    service: S,
    limits: Limits,
    connection_limits: ConnectionLimits,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) where
    S: AppHttpService,
    S::Future: Send + Unpin + 'static,
{
    let grace = limits.shutdown_grace;
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(ClientCounts::new(
        connection_limits.max_per_client,
        connection_limits.trusted_proxies.clone(),
    ));
    let deadlines = Deadlines {
        header_read: connection_limits.header_read_timeout,
        idle: connection_limits.idle_timeout,
    };
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        // The head limit itself; the buffer limit keeps hyper from reading far beyond it.
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES)
        .timer(TokioTimer::new())
        // `ConnIo` keeps the head and idle deadlines (see the module documentation).
        .header_read_timeout(None);
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
        let Some(slot) = clients.admit(peer.ip()) else {
            // Over its address's cap: closed at once, unread, so that one address cannot take
            // the connections every other client needs.
            metrics::counter!("authhost_connections_refused_total", "reason" => "per_client")
                .increment(1);
            tracing::debug!(%peer, "connection refused: too many connections from this client");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let io = ConnIo::new(stream, state.clone(), deadlines);
        let service = Tracked {
            service: service.clone(),
            peer,
            state,
        };
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
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

/// A server running in the background (tests, embedding).
pub struct ServerHandle {
    pub addr: SocketAddr,
    /// Where the operations routes are served when `server.admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// Binds `addr` (port 0 for any free port), and `server.admin_listen` when set (port 0
    /// works there too), and serves `app` on a task.
    pub async fn start(app: SharedApp, addr: SocketAddr) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let admin = match app.config.server.admin_listen {
            Some(admin) => Some(TcpListener::bind(admin).await?),
            None => None,
        };
        let admin_addr = match &admin {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_all(app, listener, admin, async move {
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            addr,
            admin_addr,
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
