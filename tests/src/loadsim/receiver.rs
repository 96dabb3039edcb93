//! The load simulator's callback receiver: an HTTP server on loopback that reads each
//! Cams v3 `RealTime` delivery just far enough to tell the checker which punch of which
//! device arrived (the `stgid` query parameter and `PunchLog.UserId`), and keeps nothing
//! else. It can be taken down (answering 503) and brought back, for outage scenarios.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;

use super::checker::Checker;
use super::plan;

struct Shared {
    checker: Arc<Checker>,
    status: AtomicU16,
}

/// A running receiver.
#[derive(Clone)]
pub struct LoadReceiver {
    shared: Arc<Shared>,
    /// The callback URL (`http://<addr>/callback`).
    pub url: String,
}

#[derive(Deserialize)]
struct Params {
    stgid: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "RealTime")]
    real_time: Option<RealTime>,
}

#[derive(Deserialize)]
struct RealTime {
    #[serde(rename = "PunchLog")]
    punch_log: Option<PunchLog>,
}

#[derive(Deserialize)]
struct PunchLog {
    #[serde(rename = "UserId")]
    user_id: Option<String>,
}

async fn record(State(shared): State<Arc<Shared>>, Query(params): Query<Params>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let status = shared.status.load(Ordering::Relaxed);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    let checker = &shared.checker;
    let punch = serde_json::from_slice::<Body>(&body).ok().and_then(|b| b.real_time).map(|r| r.punch_log);
    match punch {
        Some(Some(punch)) => {
            let device = params.stgid.as_deref().and_then(plan::device_index);
            let seq = punch.user_id.as_deref().and_then(plan::seq_of_user);
            match (device, seq) {
                (Some(device), Some(seq)) => checker.arrived(device, seq, at),
                _ => checker.unreadable_arrived(),
            }
        }
        _ => checker.other_arrived(),
    }
    StatusCode::OK
}

impl LoadReceiver {
    /// Starts a receiver answering 200 on `listen` (`127.0.0.1:0` for any free port), on
    /// the current tokio runtime.
    pub async fn start(checker: Arc<Checker>, listen: SocketAddr) -> std::io::Result<LoadReceiver> {
        let shared = Arc::new(Shared { checker, status: AtomicU16::new(200) });
        let app = Router::new().route("/callback", post(record)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Ok(LoadReceiver { shared, url: format!("http://{addr}/callback") })
    }

    /// Answers `status` from now on without recording (503: down), or 200 (up again).
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// The checker it reports to.
    pub fn checker(&self) -> &Arc<Checker> {
        &self.shared.checker
    }
}
