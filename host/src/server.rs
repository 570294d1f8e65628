//! The accept loop: HTTP/1.1 on hyper, caps on connections (in all and per client address),
//! deadlines on request heads and idle keep-alive connections, and a graceful shutdown that stops
//! accepting, lets in-flight requests finish (up to the grace period), then returns.
//!
//! Connection deadlines are kept here rather than by hyper: hyper's `header_read_timeout` starts
//! when a connection begins to wait for a request head, so on a kept-alive connection it also
//! bounds the wait for the next request, and one setting cannot give both a short head deadline
//! and a long keep-alive. Each connection's IO (`ConnIo`) knows from its service whether a request
//! is being handled and when bytes of a new head arrive:
//!
//! - a new connection, and a request head once its first bytes arrived, must be complete within
//!   `header_read_timeout` (a slow trickle does not extend it); the connection is then closed
//!   without an answer;
//! - a kept-alive connection with no request for `idle_timeout` is closed;
//! - while a request is handled (its body included) neither applies: the handlers have their own
//!   deadlines and the body its size limit.
//!
//! hyper's own answers to request heads it cannot parse (400, 414, and 431 beyond
//! `MAX_HEAD_BYTES`) are rewritten to carry a JSON body like every other error, and such a
//! connection is closed after reading (and dropping) what the client still sends, up to
//! `LINGER_MAX_BYTES`, so that the client sees the answer instead of a reset.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::app::SharedApp;
use crate::client_addr::{PeerAddr, TrustedProxies};
use crate::config::ServerConfig;

/// The most a request head (request line and headers) may take; a longer one gets a 431 JSON
/// answer. Tokens are at most `tokens::MAX_TOKEN_LEN` (8 KiB), so this leaves room for an
/// oversized token to get the route's own JSON error, while the connections one client may hold
/// (`max_connections_per_client`) cannot make the server hold more than that many times this.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// After answering a head it could not take, the server reads and drops up to this much of what
/// the client still sends (within `header_read_timeout`) before closing, so that closing does
/// not reset the connection before the client has read the answer.
const LINGER_MAX_BYTES: usize = 4 * 1024 * 1024;

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

/// Serves `app` on `listener` and, when `admin` is given (`server.admin_listen`), `/metrics`,
/// `/healthz` and `/readyz` on `admin`, until `shutdown` resolves; returns when both are done.
pub async fn serve_all(
    app: SharedApp,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
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

/// The accept loop and HTTP settings behind `serve`, for any service, with the default
/// per-connection limits: the benchmark runs its constant-answer ceiling (W0) through exactly
/// this.
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
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
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

/// Open connections by client address (`client_addr::bucket`), for the per-client cap.
struct ClientCounts {
    max: usize,
    trusted: TrustedProxies,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in its client's count, given back when dropped.
struct ClientSlot {
    counts: Option<Arc<ClientCounts>>,
    key: IpAddr,
}

impl ClientCounts {
    fn new(max: usize, trusted: TrustedProxies) -> ClientCounts {
        ClientCounts {
            max,
            trusted,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a connection from `ip`, or `None` when its address already holds `max`.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = crate::client_addr::bucket(ip);
        if self.trusted.contains(ip) {
            return Some(ClientSlot { counts: None, key });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: Some(self.clone()),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(counts) = self.counts.take() else {
            return;
        };
        let mut open = counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection's service tells its IO. Both run on the connection's task.
#[derive(Default)]
struct ConnState {
    /// Requests whose heads were complete (the service was called).
    requests: AtomicU32,
    /// Requests being handled (the service's answer not ready yet).
    active: AtomicU32,
    /// A read that found nothing while a request was active waits here: the deadlines apply
    /// again once the answer is ready, and hyper may not poll the read again by itself.
    read_waiting: Mutex<Option<std::task::Waker>>,
}

/// The connection's service: every request gets the peer address in its extensions, and
/// `ConnState` learns when a request starts and when its answer is ready.
#[derive(Clone)]
struct Tracked<S> {
    service: S,
    peer: SocketAddr,
    state: Arc<ConnState>,
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        >,
    S::Future: Unpin,
{
    type Response = Response<axum::body::Body>;
    type Error = Infallible;
    type Future = TrackedAnswer<S::Future>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(PeerAddr(self.peer));
        self.state.requests.fetch_add(1, Ordering::Relaxed);
        self.state.active.fetch_add(1, Ordering::Relaxed);
        TrackedAnswer {
            answer: self.service.call(req),
            state: Some(self.state.clone()),
        }
    }
}

/// The service's answer; the request stops counting as active when it is ready (or dropped).
struct TrackedAnswer<F> {
    answer: F,
    state: Option<Arc<ConnState>>,
}

impl<F> TrackedAnswer<F> {
    fn done(&mut self) {
        if let Some(state) = self.state.take() {
            state.active.fetch_sub(1, Ordering::Relaxed);
            let waiting = state
                .read_waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waiting {
                waker.wake();
            }
        }
    }
}

impl<F: Future + Unpin> Future for TrackedAnswer<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let out = ready!(Pin::new(&mut this.answer).poll(cx));
        this.done();
        Poll::Ready(out)
    }
}

impl<F> Drop for TrackedAnswer<F> {
    fn drop(&mut self) {
        self.done();
    }
}

#[derive(Debug, Clone, Copy)]
struct Deadlines {
    header_read: Duration,
    idle: Duration,
}

/// What the connection is waiting for when a read finds nothing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The rest of a request head (or, on a new connection, its first request).
    Head,
    /// The next request on a kept-alive connection.
    Idle,
}

/// The connection's socket, keeping the head and idle deadlines, turning hyper's bare error
/// answers into JSON ones, and lingering before it closes after one.
struct ConnIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    deadlines: Deadlines,
    /// Armed when a read finds nothing while a deadline applies (created on first use).
    timer: Option<Pin<Box<Sleep>>>,
    /// What `timer` is armed for; `None` re-arms it at the next wait.
    armed: Option<Wait>,
    /// Bytes of a request head arrived (or the connection is new) and no request came of them
    /// yet: the head deadline applies.
    head_started: bool,
    /// `ConnState::requests` when last looked at.
    requests_seen: u32,
    /// A JSON answer being written in place of hyper's bare one: (bytes, written, hyper's length).
    rewrite: Option<(Vec<u8>, usize, usize)>,
    /// Such an answer went out: read what the client still sends before closing.
    linger: Option<Linger>,
}

/// Reading and dropping after an error answer (see `LINGER_MAX_BYTES`).
#[derive(Debug, Clone, Copy)]
struct Linger {
    write_closed: bool,
    drained: usize,
    armed: bool,
}

impl ConnIo {
    fn new(stream: TcpStream, state: Arc<ConnState>, deadlines: Deadlines) -> ConnIo {
        ConnIo {
            stream,
            state,
            deadlines,
            timer: None,
            armed: None,
            head_started: true,
            requests_seen: 0,
            rewrite: None,
            linger: None,
        }
    }

    /// Takes in the requests the service saw since last time: their heads are complete.
    fn sync(&mut self) {
        let requests = self.state.requests.load(Ordering::Relaxed);
        if requests != self.requests_seen {
            self.requests_seen = requests;
            self.head_started = false;
            self.armed = None;
        }
    }

    fn on_bytes_read(&mut self) {
        self.sync();
        if !self.head_started && self.state.active.load(Ordering::Relaxed) == 0 {
            // The first bytes of the next request: its head has `header_read` from here on,
            // however slowly the rest trickles in.
            self.head_started = true;
            self.armed = None;
        }
    }

    /// `timer` at `now + after` (re-armed, or made on first use).
    fn arm(&mut self, after: Duration) {
        let deadline = Instant::now() + after;
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    fn timer_fired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }

    /// A read found nothing: `Pending`, or an error once the applicable deadline has passed
    /// (hyper then closes the connection; an idle one as cleanly as on the client's EOF).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sync();
        if self.state.active.load(Ordering::Relaxed) > 0 {
            *self
                .state
                .read_waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            // The answer may have become ready between the load and the registration.
            if self.state.active.load(Ordering::Relaxed) > 0 {
                return Poll::Pending;
            }
        }
        let wait = if self.head_started {
            Wait::Head
        } else {
            Wait::Idle
        };
        if self.armed != Some(wait) {
            self.arm(match wait {
                Wait::Head => self.deadlines.header_read,
                Wait::Idle => self.deadlines.idle,
            });
            self.armed = Some(wait);
        }
        if !self.timer_fired(cx) {
            return Poll::Pending;
        }
        let message = match wait {
            Wait::Head => "request head not complete within server.header_read_timeout_ms",
            Wait::Idle => "kept-alive connection idle for server.idle_timeout_ms",
        };
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
    }

    /// The JSON answer to send instead of `head`, when `head` is hyper's own bare answer to a
    /// request head it could not parse (a 400, 414 or 431 with an empty body, written before any
    /// request of that head reached the service).
    fn json_error_for(&mut self, head: &[u8]) -> Option<Vec<u8>> {
        const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
        if head.len() < 13 || !head.starts_with(b"HTTP/1.") {
            return None;
        }
        let message = match &head[8..13] {
            b" 400 " => "malformed request",
            b" 414 " => "request target too long",
            b" 431 " => "request head too large",
            _ => return None,
        };
        self.sync();
        if !self.head_started || !head.ends_with(b"\r\n\r\n") {
            return None;
        }
        let at = head.windows(EMPTY.len()).position(|w| w == EMPTY)?;
        let body = format!("{{\"error\":\"{message}\"}}");
        let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
        answer.extend_from_slice(&head[..at]);
        answer.extend_from_slice(b"\r\ncontent-type: application/json");
        answer.extend_from_slice(format!("\r\ncontent-length: {}\r\n", body.len()).as_bytes());
        answer.extend_from_slice(&head[at + EMPTY.len()..]);
        answer.extend_from_slice(body.as_bytes());
        Some(answer)
    }

    /// Writes the pending rewritten answer; `Ready(Ok(n))` reports hyper's `n` bytes as written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, _)) = &mut self.rewrite {
            if *written >= bytes.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let reported = self.rewrite.take().map_or(0, |(_, _, reported)| reported);
        self.linger = Some(Linger {
            write_closed: false,
            drained: 0,
            armed: false,
        });
        Poll::Ready(Ok(reported))
    }

    /// After an error answer: close the sending side, then read and drop what the client still
    /// sends (up to `LINGER_MAX_BYTES`, within `header_read`), so that its answer is not lost to
    /// a reset.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(mut linger) = self.linger else {
            return Poll::Ready(Ok(()));
        };
        if !linger.write_closed {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            linger.write_closed = true;
        }
        if !linger.armed {
            self.arm(self.deadlines.header_read);
            linger.armed = true;
        }
        let mut scratch = [0u8; 8192];
        let result = loop {
            if linger.drained >= LINGER_MAX_BYTES {
                break Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => linger.drained += buf.filled().len(),
                Poll::Ready(Err(_)) => break Poll::Ready(Ok(())),
                Poll::Pending => {
                    if self.timer_fired(cx) {
                        break Poll::Ready(Ok(()));
                    }
                    break Poll::Pending;
                }
            }
        };
        self.linger = if result.is_ready() {
            None
        } else {
            Some(linger)
        };
        result
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.on_bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none()
            && let Some(answer) = this.json_error_for(buf)
        {
            this.rewrite = Some((answer, 0, buf.len()));
        }
        if this.rewrite.is_some() {
            return this.poll_rewrite(cx);
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none()
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(answer) = this.json_error_for(first)
        {
            this.rewrite = Some((answer, 0, first.len()));
        }
        if this.rewrite.is_some() {
            return this.poll_rewrite(cx);
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.linger.is_some() {
            return this.poll_linger(cx);
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// `server.admin_listen` as an address; `None` when it is off (empty). Configuration
/// validation has refused anything else.
pub fn admin_listen_addr(server: &ServerConfig) -> Option<SocketAddr> {
    server.admin_listen.trim().parse().ok()
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
        let admin = match admin_listen_addr(&app.config.server) {
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
