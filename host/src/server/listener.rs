//! The HTTP listener: the accept loop that replaces `axum::serve`, owning what a gateway
//! on the open internet needs before a request reaches the router:
//!
//! - the connection caps: at most `max_connections` open in all and
//!   `max_connections_per_ip` from one address (an IPv6 client counts by its /64, the
//!   block one host or home is given, so rotating addresses within it earns no more). A connection over a cap is answered at
//!   once with `503`, `Retry-After` and, on the JSON paths, the error body (Cams code 45,
//!   `API_RESPONSE_GATEWAY_BUSY`), then closed; it never reaches the router. The caps are
//!   logged once per episode (when first hit, and when they have not been hit for a while),
//!   not per connection;
//! - pressure: from [`PRESSURE_PERCENT`] of `max_connections` open until below
//!   [`PRESSURE_OFF_PERCENT`], connections waiting
//!   for a request head or idle between requests run on shortened clocks
//!   ([`connection::PRESSED_HEADER`], [`connection::PRESSED_IDLE`]), so that connections
//!   holding a place without using it give it up before anyone is refused (a slowloris
//!   from many addresses); logged once per episode, gauge `biogate_http_pressure`;
//! - accept errors (`EMFILE`...): logged once per episode, retried after a few
//!   milliseconds (not the second `axum::serve` waits, during which nobody is served);
//! - the clocks of each admitted connection ([`super::connection`]);
//! - graceful shutdown: when `shutdown` resolves, no more connections are accepted, each
//!   open one finishes the request under way, and [`serve`] returns when all are closed;
//! - the metrics `biogate_http_connections_open` (gauge),
//!   `biogate_http_connections_refused_total{reason}` and
//!   `biogate_http_timeouts_total{clock}` (counters).
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::connection::{self, Timeouts};
use crate::web::ApiError;

/// Descriptors kept free of connections for the gateway itself (the store's files, the
/// event log's segments, plugins, outbound HTTP, MQTT) when the connection cap is sized
/// to the open-file limit.
pub const RESERVED_FILES: u64 = 256;

/// Refusals being answered at once; beyond this a refused connection is closed without
/// an answer (each answer holds a descriptor for up to [`REFUSAL_TIME`]).
const REFUSALS_AT_ONCE: usize = 64;

/// Longest a refused connection is kept to read its request head and answer it.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// After an accept error, the pause before accepting again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// An episode (of refusals, of accept errors) is over after this long without one.
const EPISODE_QUIET: Duration = Duration::from_secs(10);

/// The share of `max_connections` open (in percent) from which the listener is under
/// pressure.
pub const PRESSURE_PERCENT: usize = 90;

/// The share (in percent) below which pressure ends: shortened clocks go on closing idle
/// and stalled connections until a tenth of the cap is free beyond the pressure mark.
pub const PRESSURE_OFF_PERCENT: usize = 80;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeouts: Timeouts,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// The `Retry-After` of a refusal, in seconds.
    pub retry_after_secs: u32,
}

impl Limits {
    /// The connection cap that fits in `open_files` (the soft open-file limit, `None`:
    /// unlimited) with [`RESERVED_FILES`] and the refusals kept aside.
    pub fn fitting(mut self, open_files: Option<u64>) -> Self {
        if let Some(files) = open_files {
            let room = files.saturating_sub(RESERVED_FILES + REFUSALS_AT_ONCE as u64).max(1);
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            if room < self.max_connections {
                tracing::warn!(
                    configured = self.max_connections,
                    open_file_limit = files,
                    max_connections = room,
                    "server.max_connections lowered to fit the open-file limit; raise the hard limit (ulimit -Hn, LimitNOFILE=) to allow more"
                );
                self.max_connections = room;
            }
        }
        self.max_connections_per_ip = self.max_connections_per_ip.min(self.max_connections);
        self
    }
}

/// The listener failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("the listening socket failed: {0}")]
    Socket(#[from] std::io::Error),
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves and every
/// open connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ListenerError> {
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a clone; `recv` returns `None` when all are gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let counts = Arc::new(Counts::new(limits.max_connections));
    let mut pressure = counts.pressure();
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let mut refused = Episode::new("refusing connections over the cap with 503");
    let mut accept_errors = Episode::new("accept errors");
    tokio::pin!(shutdown);
    metrics::gauge!("biogate_http_connections_open").set(0.0);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            Ok(()) = pressure.changed() => {
                let pressed = *pressure.borrow_and_update();
                metrics::gauge!("biogate_http_pressure").set(if pressed { 1.0 } else { 0.0 });
                if pressed {
                    tracing::warn!(
                        open = counts.total(),
                        max_connections = limits.max_connections,
                        "near the connection cap: connections without a request under way get shortened clocks"
                    );
                } else {
                    tracing::info!(open = counts.total(), "no longer near the connection cap");
                }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                metrics::counter!("biogate_http_accept_errors_total").increment(1);
                if accept_errors.hit() {
                    tracing::error!(%error, open = counts.total(), "accept error; retrying (logged once until accepts succeed again)");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        accept_errors.quiet_for(EPISODE_QUIET);
        let ip = peer.ip().to_canonical();
        match counts.admit(ip, &limits) {
            Ok(slot) => {
                refused.quiet_for(EPISODE_QUIET);
                let router = router.clone();
                let stopping = stopping.clone();
                let alive = alive.clone();
                let pressure = counts.pressure();
                tokio::spawn(async move {
                    connection::serve(stream, router, limits.timeouts, pressure, stopping).await;
                    drop(slot);
                    drop(alive);
                });
            }
            Err(cap) => {
                metrics::counter!("biogate_http_connections_refused_total", "reason" => cap.reason()).increment(1);
                if refused.hit() {
                    tracing::warn!(
                        cap = cap.reason(),
                        peer = %ip,
                        open = counts.total(),
                        max_connections = limits.max_connections,
                        max_connections_per_ip = limits.max_connections_per_ip,
                        "connection cap reached: refusing new connections with 503 (logged once per episode)"
                    );
                }
                match refusals.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(refuse(stream, limits.retry_after_secs, permit));
                    }
                    Err(_) => drop(stream),
                }
            }
        }
    }
    drop(listener);
    tracing::info!(open = counts.total(), "no longer accepting connections; waiting for the open ones to finish");
    let _ = stop.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Accept errors about one connection (it was reset before it was accepted): nothing to
/// wait for.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    Total,
    PerIp,
}

impl Cap {
    fn reason(self) -> &'static str {
        match self {
            Cap::Total => "max_connections",
            Cap::PerIp => "max_connections_per_ip",
        }
    }
}

/// Open connections, in all and per address, and whether that is near the cap.
struct Counts {
    inner: Mutex<CountsInner>,
    /// From [`PRESSURE_PERCENT`] of `max_connections` open (in whole connections).
    pressure_from: usize,
    /// Below [`PRESSURE_OFF_PERCENT`] of `max_connections` open.
    pressure_until: usize,
    pressure: watch::Sender<bool>,
}

struct CountsInner {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Counts {
    fn new(max_connections: usize) -> Self {
        Counts {
            inner: Mutex::new(CountsInner { total: 0, per_ip: HashMap::new() }),
            pressure_from: (max_connections * PRESSURE_PERCENT).div_ceil(100).max(1),
            pressure_until: (max_connections * PRESSURE_OFF_PERCENT).div_ceil(100).max(1),
            pressure: watch::channel(false).0,
        }
    }

    /// Whether the listener is under pressure, followed by each connection.
    fn pressure(&self) -> watch::Receiver<bool> {
        self.pressure.subscribe()
    }

    /// Publishes the count: the gauge, and pressure when it turns on or off.
    fn counted(&self, total: usize) {
        metrics::gauge!("biogate_http_connections_open").set(total as f64);
        self.pressure.send_if_modified(|now| {
            let pressed = if *now { total >= self.pressure_until } else { total >= self.pressure_from };
            let changed = *now != pressed;
            *now = pressed;
            changed
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CountsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn total(&self) -> usize {
        self.lock().total
    }

    /// Counts a connection from `ip` in, unless a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Result<Slot, Cap> {
        let ip = source_of(ip);
        let mut inner = self.lock();
        if inner.total >= limits.max_connections {
            return Err(Cap::Total);
        }
        let from_ip = inner.per_ip.entry(ip).or_insert(0);
        if *from_ip >= limits.max_connections_per_ip {
            return Err(Cap::PerIp);
        }
        *from_ip += 1;
        inner.total += 1;
        self.counted(inner.total);
        Ok(Slot { counts: self.clone(), ip })
    }
}

/// The source a connection counts against for the per-address cap: an IPv4 address (an
/// IPv4-mapped IPv6 address is its IPv4), or an IPv6 address's /64 network.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// An admitted connection's place in [`Counts`], given back when dropped.
struct Slot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.counts.lock();
        inner.total = inner.total.saturating_sub(1);
        if let Some(n) = inner.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_ip.remove(&self.ip);
            }
        }
        self.counts.counted(inner.total);
    }
}

/// Something that happens in bursts, logged once when it starts and once when it is over.
struct Episode {
    what: &'static str,
    started: Option<Instant>,
    last: Instant,
    count: u64,
}

impl Episode {
    fn new(what: &'static str) -> Self {
        Episode { what, started: None, last: Instant::now(), count: 0 }
    }

    /// Counts one; true when it starts an episode (log it then).
    fn hit(&mut self) -> bool {
        let now = Instant::now();
        self.last = now;
        self.count += 1;
        if self.started.is_none() {
            self.started = Some(now);
            return true;
        }
        false
    }

    /// Ends the episode (and logs its total) when the last hit is `quiet` ago.
    fn quiet_for(&mut self, quiet: Duration) {
        if let Some(started) = self.started
            && self.last.elapsed() >= quiet
        {
            tracing::info!(
                count = self.count,
                lasted_s = (self.last - started).as_secs(),
                "episode over: {}",
                self.what
            );
            self.started = None;
            self.count = 0;
        }
    }
}

/// Answers a connection over a cap with 503 and `Retry-After`, reading only its head
/// (within [`REFUSAL_TIME`]), then closes it.
async fn refuse(stream: TcpStream, retry_after: u32, _permit: OwnedSemaphorePermit) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(REFUSAL_TIME).keep_alive(false);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(refusal(request.uri().path(), retry_after)))
    });
    let _ = tokio::time::timeout(REFUSAL_TIME, builder.serve_connection(TokioIo::new(stream), service)).await;
}

/// The 503 of a refused connection: the JSON error body on the JSON paths (the API,
/// the native device protocol), plain text on the others (dialect plugins' paths, which
/// speak their vendor's text protocols).
fn refusal(path: &str, retry_after: u32) -> Response<Body> {
    let error = ApiError::busy(retry_after);
    let json = ["/v1", "/external/", "/device/", "/health", "/metrics"].iter().any(|prefix| path.starts_with(prefix));
    let mut response = if json {
        error.into_response()
    } else {
        let mut response = (error.http, format!("{}: {}", error.cams.name(), error.message)).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        response
    };
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Limits {
        let t = Duration::from_secs(1);
        Limits {
            timeouts: Timeouts { header: t, body: t, idle: t },
            max_connections: total,
            max_connections_per_ip: per_ip,
            retry_after_secs: 1,
        }
    }

    #[test]
    fn caps_count_per_address_and_in_all_and_give_back_on_drop() {
        let counts = Arc::new(Counts::new(3));
        let limits = limits(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = counts.admit(a, &limits).unwrap();
        let _a2 = counts.admit(a, &limits).unwrap();
        assert_eq!(counts.admit(a, &limits).err(), Some(Cap::PerIp));
        let _b1 = counts.admit(b, &limits).unwrap();
        assert_eq!(counts.admit(b, &limits).err(), Some(Cap::Total));
        drop(a1);
        assert_eq!(counts.total(), 2);
        assert!(counts.admit(a, &limits).is_ok());
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let counts = Arc::new(Counts::new(10));
        let limits = limits(10, 2);
        let in_one_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:abcd::9"];
        let slots: Vec<_> = in_one_64[..2].iter().map(|ip| counts.admit(ip.parse().unwrap(), &limits)).collect();
        assert!(slots.iter().all(Result::is_ok));
        assert_eq!(counts.admit(in_one_64[2].parse().unwrap(), &limits).err(), Some(Cap::PerIp));
        assert!(counts.admit("2001:db8:1:3::1".parse().unwrap(), &limits).is_ok(), "another /64");
        let _v4 = counts.admit("192.0.2.7".parse().unwrap(), &limits).unwrap();
        let _mapped = counts.admit("::ffff:192.0.2.7".parse().unwrap(), &limits).unwrap();
        assert_eq!(counts.admit("192.0.2.7".parse().unwrap(), &limits).err(), Some(Cap::PerIp), "mapped = IPv4");
        drop(slots);
        assert!(counts.admit(in_one_64[2].parse().unwrap(), &limits).is_ok(), "given back on drop");
    }

    #[test]
    fn pressure_turns_on_at_90_percent_of_the_cap_and_off_below_80() {
        let counts = Arc::new(Counts::new(10));
        let limits = limits(10, 10);
        let pressure = counts.pressure();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut slots: Vec<_> = (0..8).map(|_| counts.admit(ip, &limits).unwrap()).collect();
        assert!(!*pressure.borrow(), "8 of 10 open");
        slots.push(counts.admit(ip, &limits).unwrap());
        assert!(*pressure.borrow(), "9 of 10 open");
        slots.pop();
        assert!(*pressure.borrow(), "8 of 10: still pressed");
        slots.pop();
        assert!(!*pressure.borrow(), "7 of 10: off");
    }

    #[test]
    fn pressed_clocks_shorten_header_and_idle_only() {
        let t =
            Timeouts { header: Duration::from_secs(10), body: Duration::from_secs(60), idle: Duration::from_secs(60) };
        let pressed = t.pressed();
        assert_eq!(
            (pressed.header, pressed.idle, pressed.body),
            (connection::PRESSED_HEADER, connection::PRESSED_IDLE, t.body)
        );
        let short = Timeouts { header: Duration::from_millis(500), ..t };
        assert_eq!(short.pressed().header, Duration::from_millis(500), "a shorter configured clock stays");
    }

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        assert_eq!(limits(4096, 256).fitting(Some(1024)).max_connections, 1024 - 256 - 64);
        assert_eq!(limits(4096, 256).fitting(None).max_connections, 4096);
        assert_eq!(limits(100, 256).fitting(Some(1 << 20)).max_connections_per_ip, 100);
    }

    #[test]
    fn an_episode_is_logged_once_until_quiet() {
        let mut episode = Episode::new("test");
        assert!(episode.hit());
        assert!(!episode.hit());
        episode.quiet_for(Duration::from_secs(60));
        assert!(!episode.hit(), "not quiet long enough: the same episode");
        episode.quiet_for(Duration::ZERO);
        assert!(episode.hit(), "a new episode");
    }

    #[test]
    fn refusals_carry_retry_after_and_the_error_body_on_json_paths() {
        let api = refusal("/device/v1/events", 7);
        assert_eq!(api.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.headers()[header::RETRY_AFTER], "7");
        assert_eq!(api.headers()[header::CONTENT_TYPE], "application/json");
        let dialect = refusal("/iclock/cdata", 7);
        assert_eq!(dialect.headers()[header::RETRY_AFTER], "7");
        assert!(dialect.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    }
}
