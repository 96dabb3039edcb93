//! One admitted HTTP/1 connection: served by hyper with the gateway's router, under
//! three clocks the listener's caps depend on (docs/configuration.md, `[server]`):
//!
//! - **header**: a request head (request line and headers) must arrive complete within
//!   `header_timeout` of the connection opening, or of the first byte of a later request
//!   on a kept-alive connection; else the connection is closed (slowloris).
//! - **idle**: a kept-alive connection with no request under way is closed after
//!   `idle_timeout` without a byte.
//! - **body**: a request body must arrive complete within `body_timeout` of its head;
//!   else the handler sees a read error, the client gets 408 and the connection closes.
//!
//! Under pressure (the listener near its connection cap in all) the header and idle
//! clocks shrink to [`PRESSED_HEADER`] and [`PRESSED_IDLE`]: connections that hold a
//! place without a request under way give it up first, before anyone is refused.
//!
//! While a request is being handled (a command long poll the gateway holds for up to
//! `max_poll_wait_ms`, a Cams call waiting for its device) none of the clocks run: only
//! what the client owes is timed, never what the gateway holds.
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::web::ApiError;

/// The three clocks of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

/// The header clock while the listener is under pressure (at most; a shorter configured
/// one stays).
pub const PRESSED_HEADER: Duration = Duration::from_secs(3);

/// The idle clock while the listener is under pressure (at most).
pub const PRESSED_IDLE: Duration = Duration::from_secs(1);

impl Timeouts {
    /// The clocks under pressure: header and idle shortened, body unchanged.
    pub fn pressed(self) -> Timeouts {
        Timeouts { header: self.header.min(PRESSED_HEADER), idle: self.idle.min(PRESSED_IDLE), body: self.body }
    }
}

/// Serves `stream` until the client closes it, a clock runs out, or, after `shutdown`
/// turns true, the request under way is answered (hyper's graceful shutdown). While
/// `pressure` is true the connection runs on [`Timeouts::pressed`].
pub async fn serve(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    mut pressure: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedIo { inner: stream, activity: activity.clone() });
    let service = Handler { router, activity: activity.clone(), body_timeout: timeouts.body };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header clock is ours (below): hyper's would also run on an idle connection.
    builder.header_read_timeout(None::<Duration>).keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = *shutdown.borrow();
    let mut pressure_open = true;
    if shutting_down {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let timeouts = if *pressure.borrow_and_update() { timeouts.pressed() } else { timeouts };
        let deadline = activity.deadline(&timeouts);
        let expiry = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
                return;
            }
            () = expiry => {
                // The phase may have moved on since the deadline was computed.
                if let Some((at, clock)) = activity.deadline(&timeouts)
                    && at <= Instant::now()
                {
                    metrics::counter!("biogate_http_timeouts_total", "clock" => clock).increment(1);
                    tracing::debug!(clock, "closing an HTTP connection: its client ran out of time");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            // The clocks are chosen again (a closed sender leaves the last value).
            changed = pressure.changed(), if pressure_open => pressure_open = changed.is_ok(),
            changed = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                // A dropped sender is a shutdown too.
                let _ = changed;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is between requests, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head (opened, or a byte of the next request arrived).
    Head,
    /// A request is being handled or its response written.
    Busy,
    /// Kept alive, no request under way.
    Idle,
}

struct State {
    phase: Phase,
    since: Instant,
    /// Requests begun: a response that ends after the next request began does not make
    /// the connection idle.
    seq: u64,
}

/// A connection's phase, moved by its reads ([`WatchedIo`]), its requests ([`Handler`])
/// and its responses' ends ([`ResponseBody`]).
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new(State { phase: Phase::Head, since: Instant::now(), seq: 0 }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection's clock runs out, and which clock it is; `None` while busy.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, &'static str)> {
        let state = self.lock();
        match state.phase {
            Phase::Head => Some((state.since + timeouts.header, "header")),
            Phase::Idle => Some((state.since + timeouts.idle, "idle")),
            Phase::Busy => None,
        }
    }

    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Idle {
            state.phase = Phase::Head;
            state.since = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }

    fn request_began(&self) -> u64 {
        let mut state = self.lock();
        state.seq += 1;
        state.phase = Phase::Busy;
        let seq = state.seq;
        drop(state);
        self.changed.notify_one();
        seq
    }

    fn response_ended(&self, seq: u64) {
        let mut state = self.lock();
        if state.seq == seq && state.phase == Phase::Busy {
            state.phase = Phase::Idle;
            state.since = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router as a hyper service: marks the connection busy for each request, times
/// its body, and answers 408 when the body ran out of time.
#[derive(Clone)]
struct Handler {
    router: Router,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let router = self.router.clone();
        let activity = self.activity.clone();
        let body_timeout = self.body_timeout;
        Box::pin(async move {
            let seq = activity.request_began();
            let timed_out = Arc::new(AtomicBool::new(false));
            let request = request.map(|body| TimedBody::new(body, body_timeout, timed_out.clone()));
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if timed_out.load(Ordering::Relaxed) {
                metrics::counter!("biogate_http_timeouts_total", "clock" => "body").increment(1);
                body_timeout_response(body_timeout)
            } else {
                response
            };
            Ok(response.map(|body| ResponseBody { inner: body, end: Some(ResponseEnd { activity, seq }) }))
        })
    }
}

/// 408 with the error body; the connection closes after it (the body was not read).
fn body_timeout_response(limit: Duration) -> Response<Body> {
    let mut response = ApiError::body_timeout(limit).into_response();
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

/// A request body read within a deadline counted from its head.
struct TimedBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, timed_out: Arc<AtomicBool>) -> Self {
        // A body already complete (none, or a GET) needs no clock.
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(limit)));
        TimedBody { inner, deadline, limit, timed_out }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BodyError::from))),
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    this.timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyError::Timeout(this.limit))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Marks the connection idle when dropped: hyper drops a response's body once it is
/// written (or the connection is gone).
struct ResponseEnd {
    activity: Arc<Activity>,
    seq: u64,
}

impl Drop for ResponseEnd {
    fn drop(&mut self) {
        self.activity.response_ended(self.seq);
    }
}

/// The router's response body, ending the request's busy phase when it is done.
pub struct ResponseBody {
    inner: Body,
    end: Option<ResponseEnd>,
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.end.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
