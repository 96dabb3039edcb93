//! The command queue at work: operations are submitted (validated, planned, stored
//! durably), handed to their devices in FIFO order (long-poll, dialect plugins, MQTT),
//! closed by the devices' results, expired when their time to live runs out, and their
//! final status announced to the device's routes as a `command-result` event.
//!
//! Several operations per device may be outstanding at once. Every state change goes
//! through one lock, so a result, a cancel and an expiry never race on one record.
//!
//! This module holds the [`OperationService`] itself (its store handles, settings, the
//! transitions lock and the wake-ups of pollers and waiters); each concern has a file:
//!
//! - `submit.rs`: validating, planning and storing new operations, the steps of move/copy;
//! - `handout.rs`: handing queued commands to devices, and redelivering lost ones;
//! - `results.rs`: what devices report back (results, enrolments);
//! - `closing.rs`: how a record ends, and how a step's ending advances its move/copy;
//! - `ending.rs`: endings the gateway decides (cancel, expiry, undeliverable, a deleted
//!   device) and the sweeper that runs expiry and redelivery;
//! - `announce.rs`: journaling the endings the gateway decided, so they reach the callbacks.
//!
//! Each file has the unit tests of its transitions, over a real store (`fixture.rs`).
mod announce;
mod closing;
mod ending;
#[cfg(test)]
mod fixture;
mod handout;
mod results;
mod submit;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

pub use submit::{SubmitError, Submitted, generate_operation_id, valid_operation_id};

use crate::delivery::Dispatcher;
use crate::store::{
    DeliveryLog, Journal, OperationLog, OperationRecord, OperationState, Registry, StoreError, UserDirectory,
};

/// Return code of an operation whose time to live ran out.
pub const RETURN_EXPIRED: i32 = -9001;
/// Return code of an operation a client cancelled.
pub const RETURN_CANCELLED: i32 = -9002;
/// Return code of an operation the gateway could not hand to its device (its dialect
/// refused to encode the command for the transport, or encrypting it failed).
pub const RETURN_UNDELIVERABLE: i32 = -9003;

/// `[operations]` settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationSettings {
    /// How long an operation may wait for its device's confirmation, in seconds, unless
    /// the request sets its own.
    pub ttl_seconds: u64,
    /// How long a Cams call waits for the device's confirmation before it answers with
    /// the operation still open (`Status: "queued"` or `"sent"`), in milliseconds;
    /// `?wait_ms=` overrides it per call.
    pub cams_wait_ms: u64,
    /// Longest a native device's command poll is held open, in milliseconds.
    pub max_poll_wait_ms: u64,
    /// Rows per LoadLog page.
    pub load_log_page_size: usize,
    /// Opt-in: how long a sent command waits for its result before it is handed out
    /// again (the reply that carried it may never have reached the device), in
    /// milliseconds; 0 (the default) hands every command out once. Only for devices that
    /// recognise an operation id they have already carried out (see
    /// docs/device-protocol.md), on the native protocol and the plain MQTT form; commands
    /// of dialect plugins are handed out once. See [`OperationService::redeliver_due`]
    /// for when a command is not handed out again.
    pub redeliver_after_ms: u64,
    /// Most times one command is handed to its device when `redeliver_after_ms` is set.
    pub max_deliveries: u32,
}

impl Default for OperationSettings {
    fn default() -> Self {
        OperationSettings {
            ttl_seconds: 86_400,
            cams_wait_ms: 15_000,
            max_poll_wait_ms: 60_000,
            load_log_page_size: 500,
            redeliver_after_ms: 0,
            max_deliveries: 3,
        }
    }
}

/// The queue and its bookkeeping.
pub struct OperationService {
    log: OperationLog,
    users: UserDirectory,
    journal: Journal,
    registry: Registry,
    delivery: DeliveryLog,
    dispatcher: Arc<Dispatcher>,
    pub settings: OperationSettings,
    transitions: Mutex<()>,
    queues: Mutex<HashMap<String, watch::Sender<u64>>>,
    waiters: Mutex<HashMap<String, watch::Sender<()>>>,
    /// Records closed but not yet known to be durable.
    settled: Mutex<Vec<String>>,
    queued: broadcast::Sender<String>,
    /// How many takes handed out at least one command (see [`OperationService::handed_out`]).
    takes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OperationService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        log: OperationLog,
        users: UserDirectory,
        journal: Journal,
        registry: Registry,
        delivery: DeliveryLog,
        dispatcher: Arc<Dispatcher>,
        settings: OperationSettings,
    ) -> Self {
        OperationService {
            log,
            users,
            journal,
            registry,
            delivery,
            dispatcher,
            settings,
            transitions: Mutex::new(()),
            takes: AtomicU64::new(0),
            queues: Mutex::default(),
            waiters: Mutex::default(),
            settled: Mutex::default(),
            queued: broadcast::channel(1024).0,
        }
    }

    /// The operation records.
    pub fn log(&self) -> &OperationLog {
        &self.log
    }

    /// The user directory.
    pub fn users(&self) -> &UserDirectory {
        &self.users
    }

    /// Device ids, each time a command is queued for them (for push transports).
    pub fn subscribe_queued(&self) -> broadcast::Receiver<String> {
        self.queued.subscribe()
    }

    /// Tells the device's pollers (and push transports) that it may have a queued command.
    fn bump_queue(&self, device: &str) {
        if let Some(tx) = lock(&self.queues).get(device) {
            tx.send_modify(|v| *v += 1);
        }
        let _ = self.queued.send(device.to_string());
    }

    fn wake(&self, id: &str) {
        if let Some(tx) = lock(&self.waiters).get(id) {
            tx.send_modify(|_| {});
        }
    }

    /// The record of `id` once it is closed, or as it stands when `timeout` runs out.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<OperationRecord>, StoreError> {
        let mut rx = lock(&self.waiters).entry(id.to_string()).or_insert_with(|| watch::channel(()).0).subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let result = loop {
            let record = self.log.get(id)?;
            match &record {
                Some(r) if r.state.is_open() => {}
                _ => break record,
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                break self.log.get(id)?;
            }
        };
        drop(rx);
        let mut waiters = lock(&self.waiters);
        if waiters.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            waiters.remove(id);
        }
        Ok(result)
    }

    /// Wakes the waiters of every record settled so far. Call after `journal.durable()`:
    /// a client is never told "done" before the record says so on disk.
    fn wake_settled(&self) {
        let ids = std::mem::take(&mut *lock(&self.settled));
        for id in ids {
            self.wake(&id);
        }
    }
}

/// The name of a state, as the APIs show it.
pub fn state_name(state: OperationState) -> &'static str {
    match state {
        OperationState::Queued => "queued",
        OperationState::Sent => "sent",
        OperationState::Done => "done",
        OperationState::Failed => "failed",
        OperationState::Expired => "expired",
        OperationState::Cancelled => "cancelled",
    }
}
