//! A callback receiver: an HTTP server on loopback that records every delivery (headers
//! and exact body) and answers with a status the test controls.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One recorded delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `stgid` query parameter.
    pub stgid: Option<String>,
    /// Lower-case header names.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: String,
    /// The status this receiver answered.
    pub answered: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Delivery {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    status: AtomicU16,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
    /// The callback URL (`http://127.0.0.1:<port>/callback`).
    pub url: String,
}

#[derive(serde::Deserialize)]
struct Params {
    stgid: Option<String>,
}

async fn record(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = shared.status.load(Ordering::SeqCst);
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    shared.deliveries.lock().expect("lock").push(Delivery {
        stgid: p.stgid,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: status,
        at: std::time::Instant::now(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// Starts a receiver answering 200, on the current tokio runtime.
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared { deliveries: Mutex::default(), status: AtomicU16::new(200) });
        let app = Router::new().route("/callback", post(record)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Receiver { shared, url: format!("http://{addr}/callback") }
    }

    /// The status answered from now on (e.g. 503 for "down").
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().expect("lock").clone()
    }

    /// The deliveries that were answered 2xx.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| (200..300).contains(&d.answered)).collect()
    }

    /// Waits until `n` deliveries were accepted, or panics after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("only {} of {n} deliveries accepted after {timeout:?}", accepted.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
