//! Each connection's IO and service, keeping the connection deadlines.
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
//!   deadlines (a form body gets `header_read_timeout` of its own, see `http::Params`) and the
//!   body its size limit.
//!
//! hyper's own answers to request heads it cannot parse (400, 414, and 431 beyond
//! `MAX_HEAD_BYTES`) are rewritten to carry a JSON body like every other error, and such a
//! connection is closed after reading (and dropping) what the client still sends, up to
//! `LINGER_MAX_BYTES`, so that the client sees the answer instead of a reset.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::client_addr::PeerAddr;

/// After answering a head it could not take, the server reads and drops up to this much of what
/// the client still sends (within `header_read_timeout`) before closing, so that closing does
/// not reset the connection before the client has read the answer.
const LINGER_MAX_BYTES: usize = 4 * 1024 * 1024;

/// What a connection's service tells its IO. Both run on the connection's task.
#[derive(Default)]
pub(super) struct ConnState {
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
pub(super) struct Tracked<S> {
    pub(super) service: S,
    pub(super) peer: SocketAddr,
    pub(super) state: Arc<ConnState>,
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
pub(super) struct TrackedAnswer<F> {
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
pub(super) struct Deadlines {
    pub(super) header_read: Duration,
    pub(super) idle: Duration,
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
pub(super) struct ConnIo {
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
    pub(super) fn new(stream: TcpStream, state: Arc<ConnState>, deadlines: Deadlines) -> ConnIo {
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
        let message = match head.get(8..13)? {
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
        answer.extend_from_slice(head.get(..at)?);
        answer.extend_from_slice(b"\r\ncontent-type: application/json");
        answer.extend_from_slice(crate::headers::RAW_LINES.as_bytes());
        answer.extend_from_slice(format!("\r\ncontent-length: {}\r\n", body.len()).as_bytes());
        answer.extend_from_slice(head.get(at + EMPTY.len()..)?);
        answer.extend_from_slice(body.as_bytes());
        Some(answer)
    }

    /// Writes the pending rewritten answer; `Ready(Ok(n))` reports hyper's `n` bytes as written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, _)) = &mut self.rewrite {
            if *written >= bytes.len() {
                break;
            }
            let rest = bytes.get(*written..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, rest))?;
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
