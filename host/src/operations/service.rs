//! The command queue at work: operations are submitted (validated, planned, stored
//! durably), handed to their devices in FIFO order (long-poll, dialect plugins, MQTT),
//! closed by the devices' results, expired when their time to live runs out, and their
//! final status announced to the device's routes as a `command-result` event.
//!
//! Several operations per device may be outstanding at once. Every state change goes
//! through one lock, so a result, a cancel and an expiry never race on one record.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::catalogue::{FieldError, OperationRequest, Plan};
use crate::delivery::Dispatcher;
use crate::plugin::PendingCommands;
use crate::plugin::bindings::types::{Command, CommandBody, CommandResult, EventBody, User};
use crate::store::{
    DeliveryLog, Device, Journal, OperationLog, OperationRecord, OperationState, Registry, StoreError, UserDirectory,
};

/// Return code of an operation whose time to live ran out.
pub const RETURN_EXPIRED: i32 = -9001;
/// Return code of an operation a client cancelled.
pub const RETURN_CANCELLED: i32 = -9002;
/// Return code of an operation the gateway could not hand to its device (its dialect
/// refused to encode the command for the transport, or encrypting it failed).
pub const RETURN_UNDELIVERABLE: i32 = -9003;

/// Who ended an operation: its device (with a result event of its own) or the gateway
/// (expiry, cancel, an undeliverable command), whose ending must be announced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClosedBy {
    Device,
    Gateway,
}

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

/// Whether carrying `body` out a second time leaves the device as once would (the device
/// may have carried it out already, only its result got lost): true for setting a user
/// or an option to a value and for asking the device for data; false for what acts on
/// the world or on a person at the device (reboot, door, enrolment), wipes what was
/// recorded since (clear, delete all), or sets the clock to a time taken at submission.
fn repeatable(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::UpsertUser(_)
            | CommandBody::DeleteUser(_)
            | CommandBody::SetUserEnabled(_)
            | CommandBody::DeleteTemplate(_)
            | CommandBody::UploadPunches(_)
            | CommandBody::GetDeviceInfo
            | CommandBody::GetUserInfo(_)
            | CommandBody::SetOption(_)
    )
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A field of the request is wrong.
    #[error(transparent)]
    Field(FieldError),
    /// The OperationID is taken by a different request.
    #[error("operation id {0:?} is already used by another request")]
    DuplicateId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a submission produced.
#[derive(Debug)]
pub struct Submitted {
    pub record: OperationRecord,
    /// Users read from the directory (`load_user_info`).
    pub users: Option<Vec<User>>,
    /// True when the id was already used by the same request (an idempotent retry).
    pub replayed: bool,
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

/// Generates an OperationID: 12 lowercase letters and digits, like Cams'.
pub fn generate_operation_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..12).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Checks a client-supplied OperationID: 1 to 64 letters, digits, `-` or `_`.
pub fn valid_operation_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A final status to announce on a device's routes.
struct Announcement {
    device: String,
    result: CommandResult,
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

    /// Validates, plans and durably stores an operation for `device`.
    pub async fn submit(
        &self,
        device: &Device,
        id: Option<String>,
        request: OperationRequest,
        ttl: Option<Duration>,
    ) -> Result<Submitted, SubmitError> {
        let request_json = serde_json::to_value(&request).map_err(|e| StoreError::Decode(e.to_string()))?;
        if let Some(id) = &id {
            if !valid_operation_id(id) {
                return Err(SubmitError::Field(FieldError::new("OperationID", "1 to 64 letters, digits, '-' or '_'")));
            }
            if let Some(existing) = self.log.get(id)? {
                if existing.device_id == device.id && existing.request == request_json {
                    return Ok(Submitted { record: existing, users: None, replayed: true });
                }
                return Err(SubmitError::DuplicateId(id.clone()));
            }
        }
        let id = id.unwrap_or_else(generate_operation_id);
        let now_ms = crate::time::now_ms();
        let plan = request.plan(device, &self.users, (now_ms / 1000) as i64).map_err(SubmitError::Field)?;
        let ttl = ttl.unwrap_or(Duration::from_secs(self.settings.ttl_seconds));
        let mut record = OperationRecord {
            id: id.clone(),
            device_id: device.id.clone(),
            kind: request.kind().to_string(),
            request: request_json,
            command: None,
            state: OperationState::Queued,
            order: self.log.next_order()?,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl.as_millis() as u64),
            sent_at_ms: None,
            finished_at_ms: None,
            return_code: None,
            details: Vec::new(),
            message: None,
            parent: None,
            children: Vec::new(),
            deliveries: 0,
            redeliver_at_ms: None,
        };
        let mut users = None;
        let mut records = Vec::new();
        let mut notify = Vec::new();
        match plan {
            Plan::Command(body) => {
                record.command = Some(Command { operation_id: id.clone(), body });
                notify.push(device.id.clone());
            }
            Plan::Spread { user, targets, .. } => {
                for (i, target) in targets.iter().enumerate() {
                    if self.registry.get(target).is_none() {
                        let field = if record.kind == "move_user" {
                            "to_device".to_string()
                        } else {
                            format!("to_devices[{i}]")
                        };
                        return Err(SubmitError::Field(FieldError::new(
                            field,
                            format!("no device {target:?} is registered"),
                        )));
                    }
                    let child = self.child(&record, target, CommandBody::UpsertUser(user.clone()))?;
                    record.children.push(child.id.clone());
                    notify.push(target.clone());
                    records.push(child);
                }
            }
            Plan::ResendPunches { from, to } => {
                let queued = self.resend_punches(device, from, to)?;
                record.state = OperationState::Done;
                record.return_code = Some(0);
                record.finished_at_ms = Some(now_ms);
                record.details = vec![("Status".into(), "done".into()), ("Punches".into(), queued.to_string())];
            }
            Plan::ReadUsers { user_id } => {
                let found = match user_id {
                    Some(uid) => self.users.get(&device.id, &uid)?.into_iter().collect(),
                    None => self.users.list(&device.id, None, usize::MAX)?,
                };
                record.state = OperationState::Done;
                record.return_code = Some(0);
                record.finished_at_ms = Some(now_ms);
                record.details = vec![("Status".into(), "done".into()), ("Users".into(), found.len().to_string())];
                users = Some(found);
            }
        }
        records.insert(0, record.clone());
        self.log.insert(&records)?;
        self.journal.durable().await?;
        for target in notify {
            self.bump_queue(&target);
        }
        if record.kind == "resend_punch_log" {
            self.dispatcher.ensure(device);
            self.announce(vec![Announcement { device: device.id.clone(), result: result_of(&record) }]).await;
        }
        Ok(Submitted { record, users, replayed: false })
    }

    fn child(&self, parent: &OperationRecord, device: &str, body: CommandBody) -> Result<OperationRecord, StoreError> {
        let id = format!("{}-{}", parent.id, parent.children.len() + 1);
        Ok(OperationRecord {
            id: id.clone(),
            device_id: device.to_string(),
            kind: match &body {
                CommandBody::DeleteUser(_) => "delete_user",
                _ => "add_user",
            }
            .to_string(),
            request: serde_json::json!({ "step_of": parent.id }),
            command: Some(Command { operation_id: id, body }),
            state: OperationState::Queued,
            order: self.log.next_order()?,
            created_at_ms: crate::time::now_ms(),
            expires_at_ms: parent.expires_at_ms,
            sent_at_ms: None,
            finished_at_ms: None,
            return_code: None,
            details: Vec::new(),
            message: None,
            parent: Some(parent.id.clone()),
            children: Vec::new(),
            deliveries: 0,
            redeliver_at_ms: None,
        })
    }

    /// Queues a replay of every punch of `device` logged in `from..=to` on each of its
    /// routes; returns how many punches.
    fn resend_punches(&self, device: &Device, from: i64, to: i64) -> Result<usize, StoreError> {
        let routes: Vec<_> =
            self.dispatcher.routes().iter().filter(|r| r.applies_to(device)).map(|r| r.name.clone()).collect();
        let mut after = None;
        let mut count = 0;
        loop {
            let page = self.journal.punches(&device.id, from, to, after, u64::MAX, 1000)?;
            let Some(last) = page.last() else { break };
            after = crate::operations::load_log::cursor_of(last);
            for event in &page {
                for route in &routes {
                    self.delivery.request_replay(route, &device.id, event.sequence)?;
                }
            }
            count += page.len();
        }
        Ok(count)
    }

    /// Takes up to `max` queued commands of `device`, oldest first, and marks them sent
    /// (applied, not yet on disk: hand them to the device only after a flush, e.g. with
    /// [`Self::take_durably`]; otherwise a gateway
    /// killed right after the hand-out would hand them out again).
    /// Expired ones are skipped (the sweeper closes them). `recognises_repeats`: the
    /// transport's devices know an operation id they have already carried out (native
    /// protocol, plain MQTT form), so a repeatable command gets a redelivery time when
    /// `redeliver_after_ms` is set (see [`Self::redeliver_due`]).
    pub fn take(&self, device: &str, max: usize, recognises_repeats: bool) -> Result<Vec<Command>, StoreError> {
        let _t = lock(&self.transitions);
        let now = crate::time::now_ms();
        let mut out = Vec::new();
        for mut record in self.log.queued(device, max)? {
            if record.expires_at_ms <= now {
                continue;
            }
            let Some(command) = record.command.clone() else { continue };
            record.state = OperationState::Sent;
            record.sent_at_ms = Some(now);
            record.deliveries += 1;
            let again = recognises_repeats
                && self.settings.redeliver_after_ms > 0
                && record.deliveries < self.settings.max_deliveries
                && repeatable(&command.body);
            record.redeliver_at_ms = again.then(|| now.saturating_add(self.settings.redeliver_after_ms));
            self.log.update(&record)?;
            self.wake(&record.id);
            out.push(command);
        }
        if !out.is_empty() {
            self.takes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(out)
    }

    /// [`Self::take`], returning once the commands are recorded as sent on disk: with
    /// redelivery off a command is handed out once, a crash of the gateway included.
    pub async fn take_durably(
        &self,
        device: &str,
        max: usize,
        recognises_repeats: bool,
    ) -> Result<Vec<Command>, StoreError> {
        let commands = self.take(device, max, recognises_repeats)?;
        if !commands.is_empty() {
            self.journal.durable().await?;
        }
        Ok(commands)
    }

    /// A count that changes whenever a take hands out commands: a caller that lets a
    /// plugin take commands (`commands.take-pending`) reads it before and after the call,
    /// and flushes before replying to the device when it changed.
    pub fn handed_out(&self) -> u64 {
        self.takes.load(Ordering::Relaxed)
    }

    /// Waits until `device` may have a queued command, or `timeout`, and takes them (see
    /// [`Self::take`]). Ends with nothing once the device is no longer the same active
    /// registration (disabled, or deleted and registered again: the new one's commands are
    /// not for this poll).
    pub async fn wait_for_commands(
        &self,
        registration: &Device,
        timeout: Duration,
        max: usize,
        recognises_repeats: bool,
    ) -> Result<Vec<Command>, StoreError> {
        let device = registration.id.as_str();
        let mut changes = {
            let mut queues = lock(&self.queues);
            queues.entry(device.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.registry.get(device);
            if !current.is_some_and(|d| d.created_at_ms == registration.created_at_ms && d.is_active()) {
                return Ok(Vec::new());
            }
            let commands = self.take_durably(device, max, recognises_repeats).await?;
            if !commands.is_empty() {
                return Ok(commands);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok(Vec::new()),
            }
        }
    }

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

    /// Adds the operation's final `Status` (`done` or `failed`) to device results before
    /// they are journaled, so the callback sees it.
    pub fn annotate(bodies: &mut [EventBody]) {
        for body in bodies {
            if let EventBody::CommandResult(r) = body
                && !r.details.iter().any(|(k, _)| k == "Status")
            {
                let status = if r.return_code == 0 { "done" } else { "failed" };
                r.details.insert(0, ("Status".into(), status.into()));
            }
        }
    }

    /// Learns from events a device reported (already journaled): results close their
    /// operations; enrolments update the user directory.
    pub async fn observe(&self, device: &str, bodies: &[EventBody]) -> Result<(), StoreError> {
        let mut announcements = Vec::new();
        let mut changed = false;
        {
            let _t = lock(&self.transitions);
            for body in bodies {
                match body {
                    EventBody::CommandResult(result) => {
                        changed |= self.close_from_device(device, result, &mut announcements)?;
                    }
                    EventBody::UserUpdate(update) => {
                        self.users.apply(device, &update.user)?;
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        if changed {
            self.journal.durable().await?;
            self.wake_settled();
        }
        self.announce(announcements).await;
        Ok(())
    }

    fn close_from_device(
        &self,
        device: &str,
        result: &CommandResult,
        announcements: &mut Vec<Announcement>,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = self.log.get(&result.operation_id)? else {
            tracing::warn!(device, operation = %result.operation_id, "a result for an unknown operation");
            return Ok(false);
        };
        if record.device_id != device {
            tracing::warn!(device, operation = %record.id, "a result from another device than the operation's; ignored");
            return Ok(false);
        }
        if !record.state.is_open() {
            return Ok(false);
        }
        let state = if result.return_code == 0 { OperationState::Done } else { OperationState::Failed };
        if state == OperationState::Done
            && let Some(command) = &record.command
        {
            self.learn(device, &command.body)?;
        }
        record.details = result.details.iter().filter(|(k, _)| k != "Status").cloned().collect();
        self.close(&mut record, (state, result.return_code, ClosedBy::Device), None, announcements)?;
        Ok(true)
    }

    /// What a confirmed command tells about the users on the device.
    fn learn(&self, device: &str, body: &CommandBody) -> Result<(), StoreError> {
        match body {
            CommandBody::UpsertUser(user) => {
                self.users.apply(device, user)?;
            }
            CommandBody::DeleteUser(id) => self.users.remove(device, id)?,
            CommandBody::DeleteAllUsers | CommandBody::ClearAllData => self.users.clear(device)?,
            CommandBody::SetUserEnabled((id, enabled)) => {
                if let Some(mut change) = self.users.get(device, id)? {
                    change.templates.clear();
                    change.photo = None;
                    change.enabled = Some(*enabled);
                    self.users.apply(device, &change)?;
                }
            }
            CommandBody::DeleteTemplate(args) => {
                self.users.remove_template(device, &args.user_id, args.kind, args.index)?
            }
            _ => {}
        }
        Ok(())
    }

    /// Closes an open record (the transitions lock is held) and, for a step of a move or
    /// copy, advances its parent. Parents and endings the gateway decided are announced;
    /// a device's own result reaches the routes as the event it sent.
    fn close(
        &self,
        record: &mut OperationRecord,
        (state, return_code, by): (OperationState, i32, ClosedBy),
        message: Option<String>,
        announcements: &mut Vec<Announcement>,
    ) -> Result<(), StoreError> {
        self.settle(record, state, return_code, message)?;
        if by == ClosedBy::Gateway && record.parent.is_none() {
            announcements.push(Announcement { device: record.device_id.clone(), result: result_of(record) });
        }
        if let Some(parent_id) = record.parent.clone() {
            self.advance_parent(&parent_id, record, announcements)?;
        }
        Ok(())
    }

    fn advance_parent(
        &self,
        parent_id: &str,
        step: &OperationRecord,
        announcements: &mut Vec<Announcement>,
    ) -> Result<(), StoreError> {
        let Some(mut parent) = self.log.get(parent_id)? else { return Ok(()) };
        if !parent.state.is_open() {
            return Ok(());
        }
        if step.state != OperationState::Done {
            let message = format!("step {} on device {} ended {}", step.id, step.device_id, state_name(step.state));
            for child in &parent.children {
                if let Some(mut c) = self.log.get(child)?
                    && c.state == OperationState::Queued
                {
                    self.close(
                        &mut c,
                        (OperationState::Cancelled, RETURN_CANCELLED, ClosedBy::Gateway),
                        Some("an earlier step failed".into()),
                        &mut Vec::new(),
                    )?;
                }
            }
            let code = step.return_code.unwrap_or(-1);
            return self.finish_parent(&mut parent, OperationState::Failed, code, Some(message), announcements);
        }
        let mut all_done = true;
        for child in &parent.children {
            all_done &= self.log.get(child)?.is_some_and(|c| c.state == OperationState::Done);
        }
        if !all_done {
            return Ok(());
        }
        let deleted = parent.children.iter().any(|c| {
            self.log
                .get(c)
                .ok()
                .flatten()
                .and_then(|r| r.command)
                .is_some_and(|cmd| matches!(cmd.body, CommandBody::DeleteUser(_)))
        });
        if parent.kind == "move_user" && !deleted {
            let user_id = parent.request.get("user_id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let child = self.child(&parent, &parent.device_id.clone(), CommandBody::DeleteUser(user_id))?;
            parent.children.push(child.id.clone());
            self.log.insert(std::slice::from_ref(&child))?;
            self.log.update(&parent)?;
            self.bump_queue(&parent.device_id);
            return Ok(());
        }
        self.finish_parent(&mut parent, OperationState::Done, 0, None, announcements)
    }

    /// Writes a record's final state and wakes whoever waits for it.
    fn settle(
        &self,
        record: &mut OperationRecord,
        state: OperationState,
        code: i32,
        message: Option<String>,
    ) -> Result<(), StoreError> {
        record.state = state;
        record.return_code = Some(code);
        record.finished_at_ms = Some(crate::time::now_ms());
        record.message = message;
        record.details.insert(0, ("Status".into(), state_name(state).into()));
        self.log.update(record)?;
        // Waiters hear of it once the change is durable (`wake_settled`).
        lock(&self.settled).push(record.id.clone());
        Ok(())
    }

    /// Wakes the waiters of every record settled so far. Call after `journal.durable()`:
    /// a client is never told "done" before the record says so on disk.
    fn wake_settled(&self) {
        let ids = std::mem::take(&mut *lock(&self.settled));
        for id in ids {
            self.wake(&id);
        }
    }

    fn finish_parent(
        &self,
        parent: &mut OperationRecord,
        state: OperationState,
        code: i32,
        message: Option<String>,
        announcements: &mut Vec<Announcement>,
    ) -> Result<(), StoreError> {
        self.settle(parent, state, code, message)?;
        announcements.push(Announcement { device: parent.device_id.clone(), result: result_of(parent) });
        Ok(())
    }

    /// Cancels an operation that no device has taken yet.
    pub async fn cancel(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        let mut announcements = Vec::new();
        let record = {
            let _t = lock(&self.transitions);
            let Some(mut record) = self.log.get(id)? else { return Ok(None) };
            if record.state == OperationState::Queued {
                if record.children.is_empty() {
                    self.close(
                        &mut record,
                        (OperationState::Cancelled, RETURN_CANCELLED, ClosedBy::Gateway),
                        Some("cancelled by a client".into()),
                        &mut announcements,
                    )?;
                } else {
                    self.cancel_queued_steps(&record, "cancelled by a client")?;
                    self.finish_parent(
                        &mut record,
                        OperationState::Cancelled,
                        RETURN_CANCELLED,
                        Some("cancelled by a client".into()),
                        &mut announcements,
                    )?;
                }
            }
            record
        };
        self.journal.durable().await?;
        self.wake_settled();
        self.announce(announcements).await;
        Ok(Some(record))
    }

    /// Closes an operation taken for a push transport that could not be handed to its
    /// device (see [`RETURN_UNDELIVERABLE`]): failed with `reason` at once and announced,
    /// instead of sitting `sent` until it expires.
    pub async fn fail_undeliverable(&self, id: &str, reason: String) -> Result<Option<OperationRecord>, StoreError> {
        let mut announcements = Vec::new();
        let record = {
            let _t = lock(&self.transitions);
            let Some(mut record) = self.log.get(id)? else { return Ok(None) };
            if !record.state.is_open() {
                return Ok(Some(record));
            }
            self.close(
                &mut record,
                (OperationState::Failed, RETURN_UNDELIVERABLE, ClosedBy::Gateway),
                Some(reason),
                &mut announcements,
            )?;
            record
        };
        self.journal.durable().await?;
        self.wake_settled();
        self.announce(announcements).await;
        Ok(Some(record))
    }

    /// Cancels the steps of `parent` that no device has taken yet. The caller holds the
    /// transitions lock and closes the parent.
    fn cancel_queued_steps(&self, parent: &OperationRecord, reason: &str) -> Result<(), StoreError> {
        for child in &parent.children {
            if let Some(mut step) = self.log.get(child)?
                && step.state == OperationState::Queued
            {
                self.settle(&mut step, OperationState::Cancelled, RETURN_CANCELLED, Some(reason.to_string()))?;
            }
        }
        Ok(())
    }

    /// Forgets a deleted device: its open operations fail ([`RETURN_UNDELIVERABLE`]; a
    /// device registered again under the id, maybe someone else's, must not receive them)
    /// and what the gateway knew of its users (templates and photos included) goes.
    /// Returns how many operations were closed.
    pub async fn forget_device(&self, device: &str) -> Result<usize, StoreError> {
        let mut announcements = Vec::new();
        let mut closed = 0;
        {
            let _t = lock(&self.transitions);
            let message = format!("device {device:?} was deleted");
            for listed in self.log.list(device, 0, usize::MAX)? {
                // Read again: closing a parent earlier in the loop may have closed this step.
                let Some(mut record) = self.log.get(&listed.id)? else { continue };
                if !record.state.is_open() {
                    continue;
                }
                if record.children.is_empty() {
                    self.close(
                        &mut record,
                        (OperationState::Failed, RETURN_UNDELIVERABLE, ClosedBy::Gateway),
                        Some(message.clone()),
                        &mut announcements,
                    )?;
                } else {
                    // Steps on other devices not taken yet are not carried out any more.
                    self.cancel_queued_steps(&record, &message)?;
                    self.finish_parent(
                        &mut record,
                        OperationState::Failed,
                        RETURN_UNDELIVERABLE,
                        Some(message.clone()),
                        &mut announcements,
                    )?;
                }
                closed += 1;
            }
            self.users.clear(device)?;
        }
        self.journal.durable().await?;
        self.wake_settled();
        // Announcements for the deleted device itself are dropped (it has no routes now);
        // a move's parent on another device is announced there.
        self.announce(announcements).await;
        Ok(closed)
    }

    /// Closes every open operation whose time to live ran out.
    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        let mut announcements = Vec::new();
        let mut expired = 0;
        {
            let _t = lock(&self.transitions);
            for id in self.log.due(crate::time::now_ms())? {
                let Some(mut record) = self.log.get(&id)? else { continue };
                if !record.state.is_open() {
                    continue;
                }
                if record.children.is_empty() {
                    let message = format!("no confirmation from device {:?} in time", record.device_id);
                    self.close(
                        &mut record,
                        (OperationState::Expired, RETURN_EXPIRED, ClosedBy::Gateway),
                        Some(message),
                        &mut announcements,
                    )?;
                } else {
                    self.finish_parent(
                        &mut record,
                        OperationState::Expired,
                        RETURN_EXPIRED,
                        Some("its steps did not finish in time".into()),
                        &mut announcements,
                    )?;
                }
                expired += 1;
            }
        }
        if expired > 0 {
            self.journal.durable().await?;
            self.wake_settled();
            self.announce(announcements).await;
        }
        Ok(expired)
    }

    /// Puts every sent command whose result is overdue back at its place in its device's
    /// queue (still `sent`: it cannot be cancelled), so the device's next poll (or the MQTT
    /// push) hands it out again, ahead of later commands. Not when that could reorder
    /// what the device carries out: a command of the device queued after it was handed
    /// out in a later reply, or answered (the device did get the reply; it may still be
    /// working on this one). Such a command stays `sent` until a result or its TTL.
    pub async fn redeliver_due(&self) -> Result<usize, StoreError> {
        let now = crate::time::now_ms();
        let mut devices = Vec::new();
        {
            let _t = lock(&self.transitions);
            for id in self.log.redeliveries_due(now)? {
                let Some(mut record) = self.log.get(&id)? else { continue };
                if record.state != OperationState::Sent || record.expires_at_ms <= now {
                    continue;
                }
                let Some(due_at) = record.redeliver_at_ms.take() else { continue };
                let overtaken = self.overtaken_by(&record)?;
                self.log.end_redelivery_wait(&record, due_at, overtaken.is_none())?;
                match overtaken {
                    None => {
                        tracing::info!(operation = %record.id, device = %record.device_id, deliveries = record.deliveries, "no result for a sent command; it is handed out again");
                        metrics::counter!("biogate_operations_redelivered_total").increment(1);
                        devices.push(record.device_id);
                    }
                    Some(later) => {
                        tracing::warn!(operation = %record.id, device = %record.device_id, later = %later, "no result for a sent command, but a later one reached the device: not handed out again (it waits for its result or its TTL)");
                    }
                }
            }
        }
        if devices.is_empty() {
            return Ok(0);
        }
        self.journal.durable().await?;
        let count = devices.len();
        devices.sort();
        devices.dedup();
        for device in devices {
            self.bump_queue(&device);
        }
        Ok(count)
    }

    /// A command of the same device, queued after `record`, that the device got in a later
    /// reply than `record`'s last, or answered: handing `record` out again would let the
    /// device carry it out after that one.
    fn overtaken_by(&self, record: &OperationRecord) -> Result<Option<String>, StoreError> {
        /// Later operations looked at; more than this many and the command is not repeated.
        const LOOK_AHEAD: usize = 1000;
        let later = self.log.list(&record.device_id, record.order, LOOK_AHEAD + 1)?;
        if later.len() > LOOK_AHEAD {
            return Ok(Some(format!("more than {LOOK_AHEAD} later operations")));
        }
        for other in later {
            let same_reply = other.sent_at_ms == record.sent_at_ms && other.state == OperationState::Sent;
            let handed_out = other.sent_at_ms.is_some();
            if handed_out && !same_reply {
                return Ok(Some(other.id));
            }
        }
        Ok(None)
    }

    /// Runs [`Self::expire_due`] and [`Self::redeliver_due`] every quarter second until
    /// `shutdown`.
    pub async fn run_expiry(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.expire_due().await {
                tracing::error!(%error, "expiring operations failed");
            }
            if let Err(error) = self.redeliver_due().await {
                tracing::error!(%error, "putting overdue commands back in their queues failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Journals final statuses the gateway decided, so they reach the callbacks.
    async fn announce(&self, announcements: Vec<Announcement>) {
        for a in announcements {
            let Some(device) = self.registry.get(&a.device) else { continue };
            match self.journal.append(&a.device, vec![EventBody::CommandResult(a.result)], crate::time::now_ms()).await
            {
                Ok(_) => self.dispatcher.ensure(&device),
                Err(error) => {
                    tracing::error!(%error, device = %a.device, "journaling an operation's final status failed")
                }
            }
        }
    }
}

impl PendingCommands for OperationService {
    fn take_pending(&self, device_id: &str, max: u32) -> Vec<Command> {
        // Dialect plugins give commands ids of their own: their devices cannot recognise a
        // repeat, so their commands are handed out once.
        self.take(device_id, max as usize, false).unwrap_or_else(|error| {
            tracing::error!(%error, device = device_id, "reading the command queue failed");
            Vec::new()
        })
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

fn result_of(record: &OperationRecord) -> CommandResult {
    let mut details = record.details.clone();
    if let Some(message) = &record.message {
        details.push(("Message".into(), message.clone()));
    }
    CommandResult { operation_id: record.id.clone(), return_code: record.return_code.unwrap_or(0), details }
}
