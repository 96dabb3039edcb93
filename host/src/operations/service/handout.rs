//! Handing commands out: a device's queued commands leave in FIFO order (a native long
//! poll, a dialect plugin's `commands.take-pending`, an MQTT push) and are marked `sent`
//! on disk before the reply that carries them leaves. With redelivery on, a sent command
//! whose result is overdue goes back to its place in the queue, unless repeating it could
//! do harm ([`repeatable`]) or a later command of the device overtook it
//! ([`OperationService::redeliver_due`]).
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::queue::{OperationService, lock};
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
    /// [`Self::take_durably`]; otherwise a gateway killed right after the hand-out would
    /// hand them out again). Expired ones are skipped and not counted against `max` (the
    /// sweeper closes them); so is a queue entry whose record has ended or is not the one
    /// it was made for (see [`crate::store::OperationLog::queued`]): a command is never
    /// handed out twice in one take, nor reopened once it ended. `recognises_repeats`: the
    /// transport's devices know an operation id they have already carried out (native
    /// protocol, plain MQTT form), so a repeatable command gets a redelivery time when
    /// `redeliver_after_ms` is set (see [`Self::redeliver_due`]).
    pub fn take(&self, device: &str, max: usize, recognises_repeats: bool) -> Result<Vec<Command>, StoreError> {
        // A take is the device asking for its commands (a poll), or a push to a device
        // whose MQTT session is up: either way it is there.
        self.presence.touch(device);
        let _t = lock(&self.transitions);
        let now = crate::time::now_ms();
        let mut out = Vec::new();
        let handable = |r: &OperationRecord| r.expires_at_ms > now && r.command.is_some();
        for mut record in self.log.queued_where(device, max, handable)? {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::OperationSettings;
    use super::super::fixture::{Fixture, add_user, delete_user, tick};
    use super::*;
    use crate::operations::catalogue::OperationRequest;
    use crate::plugin::bindings::types::{DeviceTime, StartEnrollmentArgs, TemplateKind, TimeRange};

    /// Redelivery after 1 ms, at most 3 deliveries in all.
    fn redelivery() -> OperationSettings {
        OperationSettings { redeliver_after_ms: 1, max_deliveries: 3, ..OperationSettings::default() }
    }

    /// Commands leave in the order they were submitted, per device, at most `max` at a
    /// time; each is marked sent (time, one delivery) and never handed out again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn take_hands_commands_out_in_order_once() {
        let f = Fixture::new();
        for (device, id) in [("D1", "a"), ("D2", "other"), ("D1", "b"), ("D1", "c")] {
            f.submit(device, id, add_user(id, id)).await;
        }
        let first = f.service.take("D1", 2, true).unwrap();
        let ids: Vec<_> = first.iter().map(|c| c.operation_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        for id in ["a", "b"] {
            let record = f.record(id);
            assert_eq!(record.state, OperationState::Sent, "{id}");
            assert!(record.sent_at_ms.is_some(), "{id}");
            assert_eq!((record.deliveries, record.redeliver_at_ms), (1, None), "{id}");
        }
        assert_eq!(f.state("c"), (OperationState::Queued, None));
        assert_eq!(f.take("D1"), ["c"]);
        assert!(f.take("D1").is_empty());
        // Redelivery is off: nothing goes back, however long the results take.
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 0);
        assert!(f.take("D1").is_empty());
        assert_eq!(f.take("D2"), ["other"]);
    }

    /// A queue entry whose record is not the one it was made for (written over with
    /// another FIFO position, as a step once overwrote a client's operation of the same
    /// id), or whose record has ended, is dropped: the command is handed out once, and a
    /// later take neither hands out nor reopens a closed operation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_queue_entry_is_never_handed_out() {
        let f = Fixture::new();
        let a = f.submit("D1", "a", add_user("7", "Ann")).await.record;
        let over = OperationRecord { order: f.service.log.next_order().unwrap(), ..a };
        f.service.log.insert(std::slice::from_ref(&over)).unwrap();
        assert_eq!(f.take("D1"), ["a"]);
        f.answer("D1", "a", 0).await;
        assert!(f.take("D1").is_empty());
        assert_eq!(f.state("a"), (OperationState::Done, Some(0)));

        let b = f.submit("D1", "b", add_user("8", "Bob")).await.record;
        let ended = OperationRecord { state: OperationState::Done, return_code: Some(0), ..b };
        f.service.log.insert(std::slice::from_ref(&ended)).unwrap();
        assert!(f.take("D1").is_empty());
        assert_eq!(f.record("b"), ended);
        assert!(f.fresh_log().queued("D1", 10).unwrap().is_empty());
    }

    /// A take is recorded on disk before `take_durably` returns, and `handed_out` counts
    /// the takes that handed something out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn take_durably_records_the_commands_sent() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        let before = f.service.handed_out();
        let taken = f.service.take_durably("D1", 10, true).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(f.record("a").state, OperationState::Sent);
        assert_eq!(f.service.handed_out(), before + 1);
        assert!(f.service.take_durably("D1", 10, true).await.unwrap().is_empty());
        assert_eq!(f.service.handed_out(), before + 1, "an empty take is not counted");
    }

    /// A command whose time to live ran out is not handed out (the sweeper closes it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_command_is_not_handed_out() {
        let f = Fixture::new();
        f.submit_with_ttl("D1", "old", add_user("7", "Ann"), Duration::ZERO).await;
        f.submit("D1", "new", add_user("8", "Bob")).await;
        assert_eq!(f.take("D1"), ["new"]);
        assert_eq!(f.state("old"), (OperationState::Queued, None));
    }

    /// An expired command does not take a place in a take: a poll for one command behind
    /// it gets the next one at once, not nothing until the sweeper has run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_command_does_not_count_against_max() {
        let f = Fixture::new();
        f.submit_with_ttl("D1", "old", add_user("7", "Ann"), Duration::ZERO).await;
        f.submit("D1", "new", add_user("8", "Bob")).await;
        f.submit("D1", "newer", add_user("9", "Cid")).await;
        let taken: Vec<_> = f.service.take("D1", 1, true).unwrap().into_iter().map(|c| c.operation_id).collect();
        assert_eq!(taken, ["new"]);
        assert_eq!(f.state("newer"), (OperationState::Queued, None));
    }

    /// A long poll returns as soon as a command is queued for its device.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_poll_gets_a_command_queued_meanwhile() {
        let f = Fixture::new();
        let service = f.service.clone();
        let device = f.device("D1");
        let poll = tokio::spawn(async move {
            service.wait_for_commands(&device, Duration::from_secs(30), 10, true).await.unwrap()
        });
        f.submit("D2", "elsewhere", add_user("7", "Ann")).await;
        f.submit("D1", "a", add_user("7", "Ann")).await;
        let commands = tokio::time::timeout(Duration::from_secs(10), poll).await.expect("in time").unwrap();
        let ids: Vec<_> = commands.into_iter().map(|c| c.operation_id).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(f.record("a").state, OperationState::Sent);
    }

    /// A poll of a registration that is no longer active ends empty and takes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_of_a_disabled_device_takes_nothing() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        let device = f.device("D1");
        f.registry.put(Device { enabled: false, ..(*device).clone() }).unwrap();
        let taken = f.service.wait_for_commands(&device, Duration::from_secs(30), 10, true).await.unwrap();
        assert!(taken.is_empty());
        assert_eq!(f.state("a"), (OperationState::Queued, None));
    }

    /// With redelivery on, a sent command with no result goes back to its queue after
    /// `redeliver_after_ms` and is handed out again, `max_deliveries` times in all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_command_is_handed_out_again_at_most_max_deliveries() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "a", add_user("7", "Ann")).await;
        assert_eq!(f.take("D1"), ["a"]);
        for delivery in 2..=3 {
            assert!(f.record("a").redeliver_at_ms.is_some());
            tick().await;
            assert_eq!(f.service.redeliver_due().await.unwrap(), 1, "delivery {delivery}");
            let record = f.record("a");
            assert_eq!((record.state, record.redeliver_at_ms), (OperationState::Sent, None));
            assert_eq!(f.take("D1"), ["a"], "delivery {delivery}");
            assert_eq!(f.record("a").deliveries, delivery);
        }
        // The third delivery was the last.
        assert_eq!(f.record("a").redeliver_at_ms, None);
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 0);
        assert!(f.take("D1").is_empty());
        // Its result still closes it.
        f.answer("D1", "a", 0).await;
        assert_eq!(f.state("a"), (OperationState::Done, Some(0)));
    }

    /// A command handed out again stays sent meanwhile: it cannot be cancelled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_put_back_for_redelivery_cannot_be_cancelled() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        tick().await;
        f.service.redeliver_due().await.unwrap();
        let record = f.service.cancel("a").await.unwrap().unwrap();
        assert_eq!(record.state, OperationState::Sent);
        assert_eq!(f.take("D1"), ["a"]);
    }

    /// Commands of dialect plugins are handed out once, whatever the setting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_taken_by_a_dialect_plugin_are_handed_out_once() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "a", add_user("7", "Ann")).await;
        let taken = PendingCommands::take_pending(&*f.service, "D1", 10);
        assert_eq!(taken.len(), 1);
        assert_eq!(f.record("a").redeliver_at_ms, None);
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 0);
        assert!(PendingCommands::take_pending(&*f.service, "D1", 10).is_empty());
    }

    /// An `unlock_door` (like every command whose repetition could do harm) is never
    /// handed out twice, even with redelivery on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unlock_door_is_never_handed_out_twice() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "door", OperationRequest::UnlockDoor).await;
        assert_eq!(f.take("D1"), ["door"]);
        assert_eq!(f.record("door").redeliver_at_ms, None);
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 0);
        assert!(f.take("D1").is_empty());
        assert_eq!(f.state("door"), (OperationState::Sent, None));
    }

    /// The commands that may be repeated are exactly the documented ones.
    #[test]
    fn only_commands_that_are_safe_to_repeat_are_repeatable() {
        let time = DeviceTime { unix_seconds: 0, utc_offset_minutes: 0 };
        let user = super::super::fixture::user("7", "Ann");
        let safe = [
            CommandBody::UpsertUser(user),
            CommandBody::DeleteUser("7".into()),
            CommandBody::SetUserEnabled(("7".into(), false)),
            CommandBody::DeleteTemplate(crate::plugin::bindings::types::DeleteTemplateArgs {
                user_id: "7".into(),
                kind: TemplateKind::Face,
                index: None,
            }),
            CommandBody::UploadPunches(TimeRange { start: time, end: time }),
            CommandBody::GetDeviceInfo,
            CommandBody::GetUserInfo(None),
            CommandBody::SetOption(("k".into(), "v".into())),
        ];
        let harmful = [
            CommandBody::Reboot,
            CommandBody::UnlockDoor,
            CommandBody::StartEnrollment(StartEnrollmentArgs {
                user_id: "7".into(),
                kind: TemplateKind::Fingerprint,
                index: None,
            }),
            CommandBody::SetTime(time),
            CommandBody::ClearPunches,
            CommandBody::ClearPhotos,
            CommandBody::ClearAllData,
            CommandBody::DeleteAllUsers,
        ];
        for body in &safe {
            assert!(repeatable(body), "{body:?}");
        }
        for body in &harmful {
            assert!(!repeatable(body), "{body:?}");
        }
    }

    /// Commands lost in one reply go back ahead of later commands, in their order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_lost_together_are_handed_out_again_in_order_ahead_of_later_ones() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.submit("D1", "b", delete_user("8")).await;
        assert_eq!(f.take("D1"), ["a", "b"]);
        f.submit("D1", "c", add_user("9", "Cid")).await;
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 2);
        assert_eq!(f.take("D1"), ["a", "b", "c"]);
    }

    /// Once a later command of the device was answered, the device did get the reply: an
    /// earlier command of that reply is not handed out again (it could undo the later one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_is_not_handed_out_again_once_a_later_one_was_answered() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "add", add_user("7", "Ann")).await;
        f.submit("D1", "del", delete_user("7")).await;
        assert_eq!(f.take("D1"), ["add", "del"]);
        f.answer("D1", "del", 0).await;
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 0);
        assert!(f.take("D1").is_empty());
        let record = f.record("add");
        assert_eq!((record.state, record.redeliver_at_ms, record.deliveries), (OperationState::Sent, None, 1));
        // It still waits for its result, or its TTL.
        f.answer("D1", "add", 0).await;
        assert_eq!(f.state("add"), (OperationState::Done, Some(0)));
    }

    /// Nor once a later command reached the device in a later reply; the later one, whose
    /// result is overdue too, is handed out again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_is_not_handed_out_again_once_a_later_reply_carried_another() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "first", add_user("7", "Ann")).await;
        assert_eq!(f.take("D1"), ["first"]);
        tick().await;
        f.submit("D1", "second", add_user("8", "Bob")).await;
        assert_eq!(f.take("D1"), ["second"]);
        assert_ne!(f.record("first").sent_at_ms, f.record("second").sent_at_ms);
        tick().await;
        assert_eq!(f.service.redeliver_due().await.unwrap(), 1);
        assert_eq!(f.take("D1"), ["second"]);
        assert_eq!(f.record("first").redeliver_at_ms, None);
    }

    /// The sweeper runs redelivery on its own, and stops on shutdown.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_puts_overdue_commands_back_and_stops_on_shutdown() {
        let f = Fixture::with_settings(redelivery());
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sweeper = tokio::spawn(Arc::clone(&f.service).run_expiry(stopped));
        let device = f.device("D1");
        let again = f.service.wait_for_commands(&device, Duration::from_secs(10), 10, true).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(f.record("a").deliveries, 2);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), sweeper).await.expect("stopped").unwrap();
    }
}
