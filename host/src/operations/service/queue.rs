//! The [`OperationService`] itself: the store handles of the command queue, its
//! settings, the lock every state change goes through, and the wake-ups of device polls
//! (a command was queued) and of clients waiting for an operation (it was closed). The
//! other files of the folder add its methods, one concern each.
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

use super::settings::OperationSettings;
use crate::delivery::Dispatcher;
use crate::operations::presence::Presence;
use crate::store::{DeliveryLog, Journal, OperationLog, OperationRecord, Registry, StoreError, UserDirectory};

/// The queue and its bookkeeping.
pub struct OperationService {
    pub(super) log: OperationLog,
    pub(super) users: UserDirectory,
    pub(super) journal: Journal,
    pub(super) registry: Registry,
    pub(super) delivery: DeliveryLog,
    pub(super) dispatcher: Arc<Dispatcher>,
    pub settings: OperationSettings,
    pub(super) transitions: Mutex<()>,
    /// OperationIDs being submitted, each held by one submission from its lookup to its
    /// record on disk (see `submit.rs`); a submission of the same id waits its turn.
    pub(super) submitting: Mutex<HashMap<String, Arc<Notify>>>,
    pub(super) queues: Mutex<HashMap<String, watch::Sender<u64>>>,
    pub(super) waiters: Mutex<HashMap<String, watch::Sender<()>>>,
    /// Records closed but not yet known to be durable.
    pub(super) settled: Mutex<Vec<String>>,
    pub(super) queued: broadcast::Sender<String>,
    /// How many takes handed out at least one command (see [`OperationService::handed_out`]).
    pub(super) takes: AtomicU64,
    /// When each device was last heard from.
    pub presence: Presence,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
            submitting: Mutex::default(),
            takes: AtomicU64::new(0),
            queues: Mutex::default(),
            waiters: Mutex::default(),
            settled: Mutex::default(),
            queued: broadcast::channel(1024).0,
            presence: Presence::default(),
        }
    }

    /// Whether `device` was heard from within `operations.offline_after_ms`.
    pub fn device_seen(&self, device: &str) -> bool {
        self.presence.seen_within(device, Duration::from_millis(self.settings.offline_after_ms))
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
    pub(super) fn bump_queue(&self, device: &str) {
        if let Some(tx) = lock(&self.queues).get(device) {
            tx.send_modify(|v| *v += 1);
        }
        let _ = self.queued.send(device.to_string());
    }

    pub(super) fn wake(&self, id: &str) {
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
    pub(super) fn wake_settled(&self) {
        let ids = std::mem::take(&mut *lock(&self.settled));
        for id in ids {
            self.wake(&id);
        }
    }
}
