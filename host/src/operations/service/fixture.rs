//! What the unit tests of the queue share: the service over a real sled store in a
//! temporary folder (no delivery routes), registered devices, and short ways to submit,
//! answer and read back operations.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{OperationService, OperationSettings, Submitted};
use crate::delivery::{Dispatcher, WorkerContext};
use crate::operations::catalogue::{OperationRequest, UserSpec};
use crate::plugin::bindings::types::{CommandResult, EventBody, User};
use crate::store::{Device, DeviceChanges, Journal, OperationLog, OperationRecord, OperationState, Registry, Store};

/// The service and the store under it.
pub(super) struct Fixture {
    pub(super) service: Arc<OperationService>,
    pub(super) store: Store,
    pub(super) journal: Journal,
    pub(super) registry: Registry,
    _shutdown: watch::Sender<bool>,
    /// Dropped last: the store lives in it.
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A service with the default settings and devices D1, D2 and D3.
    pub(super) fn new() -> Self {
        Self::with_settings(OperationSettings::default())
    }

    /// A service with `settings` and devices D1, D2 and D3. Call inside a tokio runtime.
    pub(super) fn with_settings(settings: OperationSettings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        let registry = store.registry().expect("registry");
        let delivery = store.delivery_log().expect("delivery log");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(WorkerContext {
            journal: journal.clone(),
            log: delivery.clone(),
            registry: registry.clone(),
            shutdown: shutdown_rx,
        });
        let dispatcher = Arc::new(Dispatcher::new(ctx, Vec::new()));
        let service = Arc::new(OperationService::new(
            store.operations().expect("operations"),
            store.users().expect("users"),
            journal.clone(),
            registry.clone(),
            delivery,
            dispatcher,
            settings,
        ));
        let fixture = Fixture { service, store, journal, registry, _shutdown: shutdown, _dir: dir };
        for id in ["D1", "D2", "D3"] {
            fixture.register(id);
        }
        fixture
    }

    /// Registers (or registers again) an approved, enabled device.
    pub(super) fn register(&self, id: &str) -> Arc<Device> {
        let device = DeviceChanges::default().apply(id, None, &[]).expect("a valid device");
        self.registry.put(device).expect("registered")
    }

    /// The registered device `id`.
    pub(super) fn device(&self, id: &str) -> Arc<Device> {
        self.registry.get(id).expect("a registered device")
    }

    /// Submits `request` to `device` under the OperationID `id`; panics when refused.
    pub(super) async fn submit(&self, device: &str, id: &str, request: OperationRequest) -> Submitted {
        self.service.submit(&self.device(device), Some(id.to_string()), request, None).await.expect("submitted")
    }

    /// Submits `request` with a time to live of its own.
    pub(super) async fn submit_with_ttl(
        &self,
        device: &str,
        id: &str,
        request: OperationRequest,
        ttl: Duration,
    ) -> Submitted {
        self.service.submit(&self.device(device), Some(id.to_string()), request, Some(ttl)).await.expect("submitted")
    }

    /// The device answers operation `id` with `code`.
    pub(super) async fn answer(&self, device: &str, id: &str, code: i32) {
        self.service.observe(device, &[result(id, code)]).await.expect("observed");
    }

    /// Operation `id` as stored, read through a log opened afresh on the store.
    pub(super) fn record(&self, id: &str) -> OperationRecord {
        self.fresh_log().get(id).expect("readable").unwrap_or_else(|| panic!("no operation {id:?}"))
    }

    /// The state and return code of operation `id`, as stored.
    pub(super) fn state(&self, id: &str) -> (OperationState, Option<i32>) {
        let record = self.record(id);
        (record.state, record.return_code)
    }

    /// A log opened afresh on the store, not the service's handle.
    pub(super) fn fresh_log(&self) -> OperationLog {
        self.store.operations().expect("operations")
    }

    /// Takes every queued command of `device` (a native poll: its device recognises
    /// repeats) and returns their operation ids, in the order they were handed out.
    pub(super) fn take(&self, device: &str) -> Vec<String> {
        self.service.take(device, 100, true).expect("taken").into_iter().map(|c| c.operation_id).collect()
    }

    /// The `command-result` events journaled on `device`, in order.
    pub(super) fn announced(&self, device: &str) -> Vec<CommandResult> {
        self.journal
            .read(device, 0, u64::MAX, 1000)
            .expect("journal")
            .into_iter()
            .filter_map(|e| match e.body {
                EventBody::CommandResult(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

/// A device's result for operation `id`.
pub(super) fn result(id: &str, code: i32) -> EventBody {
    EventBody::CommandResult(CommandResult { operation_id: id.to_string(), return_code: code, details: Vec::new() })
}

/// `add_user` of `user_id` named `name`.
pub(super) fn add_user(user_id: &str, name: &str) -> OperationRequest {
    OperationRequest::AddUser {
        user: UserSpec { user_id: user_id.into(), first_name: Some(name.into()), ..UserSpec::default() },
    }
}

/// `delete_user` of `user_id`.
pub(super) fn delete_user(user_id: &str) -> OperationRequest {
    OperationRequest::DeleteUser { user_id: user_id.into() }
}

/// A user record named `name`, as the directory keeps it.
pub(super) fn user(user_id: &str, name: &str) -> User {
    User {
        user_id: user_id.into(),
        first_name: Some(name.into()),
        last_name: None,
        role: None,
        enabled: None,
        valid_from: None,
        valid_until: None,
        templates: Vec::new(),
        photo: None,
    }
}

/// Lets the wall clock move on by a couple of milliseconds (redelivery times are in ms).
pub(super) async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}
