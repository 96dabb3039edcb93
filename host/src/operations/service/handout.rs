//! Handing commands out: a device's queued commands leave in FIFO order (a native long
//! poll, a dialect plugin's `commands.take-pending`, an MQTT push) and are marked `sent`
//! on disk before the reply that carries them leaves. With redelivery on, a sent command
//! whose result is overdue goes back to its place in the queue, unless repeating it could
//! do harm ([`repeatable`]) or a later command of the device overtook it
//! ([`OperationService::redeliver_due`]).
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::{OperationService, lock};
use crate::plugin::PendingCommands;
use crate::plugin::bindings::types::{Command, CommandBody};
use crate::store::{Device, OperationRecord, OperationState, StoreError};

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

impl OperationService {
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
