//! What every simulated device shares: the gateway's address, the punch schedule, a few
//! HTTP clients (connection pools) for thousands of devices, the checker, the counters and
//! the stop signal. One `Arc<Context>` per device is all a device holds besides its own
//! small state.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::checker::Checker;
use super::plan::Schedule;

/// Counters of the whole fleet.
#[derive(Default, Debug)]
pub struct Stats {
    /// Punches acknowledged by the gateway (native `200`, ADMS `OK: n`) or the broker
    /// (MQTT PUBACK is not awaited: counted when handed to the client).
    pub punches_acked: AtomicU64,
    /// Punches a native device sent again that the gateway answered as already stored
    /// (`"duplicates"` of its reply): an upload whose first answer the device never got.
    pub punches_duplicate: AtomicU64,
    /// Upload requests that failed (network error, non-200, short `OK: n`); retried.
    pub upload_errors: AtomicU64,
    /// Command polls made (native long-polls, ADMS `getrequest`).
    pub polls: AtomicU64,
    /// Polls that failed.
    pub poll_errors: AtomicU64,
    /// Commands received by devices.
    pub commands: AtomicU64,
    /// Command results the devices sent.
    pub results: AtomicU64,
    /// Devices whose first connection (ADMS handshake, MQTT CONNACK) succeeded.
    pub connected: AtomicU64,
    /// MQTT connection errors (each followed by a reconnect).
    pub mqtt_errors: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A one-line summary.
    pub fn line(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "connected {}, punches acked {} ({} already stored), upload errors {}, polls {} ({} failed), commands {}, results {}, mqtt errors {}",
            get(&self.connected),
            get(&self.punches_acked),
            get(&self.punches_duplicate),
            get(&self.upload_errors),
            get(&self.polls),
            get(&self.poll_errors),
            get(&self.commands),
            get(&self.results),
            get(&self.mqtt_errors)
        )
    }
}

/// Shared by the devices of one run.
pub struct Context {
    /// The gateway, `http://127.0.0.1:<port>`.
    pub base: String,
    /// The broker as (host, port), for MQTT devices.
    pub mqtt: Option<(String, u16)>,
    /// The MQTT topic prefix.
    pub prefix: String,
    /// Log time of punch 0, in seconds since the Unix epoch.
    pub epoch: u64,
    /// When punches are due.
    pub schedule: Schedule,
    /// Set once punching stops: no punch due after this instant is sent (the punches due
    /// until then still are, and an upload that was not acknowledged is still retried).
    pub punching_until: OnceLock<Instant>,
    /// Most punches in one upload when a device is behind (native, ADMS).
    pub max_batch: usize,
    /// How long a device waits before sending an upload that failed again.
    pub upload_retry: Duration,
    /// Native devices' long-poll `wait_ms`.
    pub long_poll_ms: u64,
    /// ADMS devices' time between `getrequest` polls.
    pub adms_poll: Duration,
    /// HTTP clients; device `i` uses `clients[i % len]`.
    pub clients: Vec<reqwest::Client>,
    /// The checker.
    pub checker: Arc<Checker>,
    /// The counters.
    pub stats: Stats,
    /// Becomes `true` when the run stops.
    pub stop: watch::Receiver<bool>,
}

impl Context {
    /// The HTTP client of device `index`.
    pub fn client(&self, index: usize) -> &reqwest::Client {
        &self.clients[index % self.clients.len()]
    }

    /// Whether the run was stopped.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps for `duration`; returns `false` when the run stopped meanwhile.
    pub async fn sleep(&self, duration: Duration) -> bool {
        self.sleep_until(tokio::time::Instant::now() + duration).await
    }

    /// Sleeps until `at`; returns `false` when the run stopped meanwhile.
    pub async fn sleep_until(&self, at: tokio::time::Instant) -> bool {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at) => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Whether punch `seq` of device `index` is to be sent at all: within the schedule's
    /// limit and not due after punching stopped.
    pub fn allows(&self, index: usize, seq: u64) -> bool {
        self.schedule.allows(seq)
            && self.punching_until.get().is_none_or(|&until| self.schedule.due(index, seq) <= until)
    }

    /// The punches of device `index` due now, from `next` on, at most `max_batch`: the
    /// range of sequence numbers to send (empty when none is due).
    pub fn due_now(&self, index: usize, next: u64) -> std::ops::Range<u64> {
        let now = std::time::Instant::now();
        let mut end = next;
        while end - next < self.max_batch as u64 && self.allows(index, end) && self.schedule.due(index, end) <= now {
            end += 1;
        }
        next..end
    }

    /// Waits until punch `seq` of device `index` is due; `false` when the run stopped or
    /// the device's punches are all sent (the limit, or punching stopped).
    pub async fn wait_due(&self, index: usize, seq: u64) -> bool {
        if !self.allows(index, seq) {
            let mut stop = self.stop.clone();
            let _ = stop.wait_for(|s| *s).await;
            return false;
        }
        self.sleep_until(self.schedule.due(index, seq).into()).await
    }
}

/// HTTP clients for `devices` simulated devices: one per 2,500 devices (at least one),
/// with idle connections kept (a device's requests reuse pooled connections).
pub fn http_clients(devices: usize) -> Vec<reqwest::Client> {
    let n = devices.div_ceil(2500).max(1);
    (0..n)
        .map(|_| {
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
        .collect()
}
