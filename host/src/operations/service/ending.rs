//! Endings the gateway decides: a client cancels a queued operation
//! ([`RETURN_CANCELLED`]), a push transport cannot hand a command over, a device is
//! deleted ([`RETURN_UNDELIVERABLE`]), a time to live runs out ([`RETURN_EXPIRED`]); and
//! the sweeper that expires operations and puts overdue commands back in their queues.
//! Each ending is announced on the device's routes.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::closing::ClosedBy;
use super::codes::{RETURN_CANCELLED, RETURN_EXPIRED, RETURN_UNDELIVERABLE};
use super::queue::{OperationService, lock};
use crate::store::{OperationRecord, OperationState, StoreError};

impl OperationService {
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

    /// Forgets a deleted device: its open operations fail ([`RETURN_UNDELIVERABLE`]; a
    /// device registered again under the id, maybe someone else's, must not receive them)
    /// and what the gateway knew of its users (templates and photos included) goes.
    /// Nothing is announced on the device itself, whose journal and delivery workers are
    /// going (announcing would start its workers again); a move/copy it was a step of is
    /// announced on the parent's device. Returns how many operations were closed.
    pub async fn forget_device(&self, device: &str) -> Result<usize, StoreError> {
        self.presence.forget(device);
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
        // Announcements for the deleted device itself are dropped; a move/copy's parent on
        // another device is announced there.
        announcements.retain(|a| a.device != device);
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
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, add_user, user};
    use super::*;
    use crate::operations::catalogue::OperationRequest;

    /// A queued operation is cancelled: never handed out, announced with -9002.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_ends_a_queued_operation() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.submit("D1", "b", add_user("8", "Bob")).await;
        let record = f.service.cancel("a").await.unwrap().expect("known");
        assert_eq!((record.state, record.return_code), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert_eq!(record.message.as_deref(), Some("cancelled by a client"));
        assert_eq!(f.record("a"), record);
        assert_eq!(f.take("D1"), ["b"]);
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("a".to_string(), RETURN_CANCELLED)]);
        // Cancelling it again changes nothing.
        assert_eq!(f.service.cancel("a").await.unwrap(), Some(record));
        assert_eq!(f.announced("D1").len(), 1);
    }

    /// A sent operation cannot be recalled: cancel returns it unchanged (the API answers
    /// 35), and its result still closes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_refuses_a_sent_operation() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        let record = f.service.cancel("a").await.unwrap().expect("known");
        assert_eq!((record.state, record.return_code), (OperationState::Sent, None));
        assert_eq!(f.state("a"), (OperationState::Sent, None));
        assert!(f.announced("D1").is_empty());
        f.answer("D1", "a", 0).await;
        assert_eq!(f.state("a"), (OperationState::Done, Some(0)));
        assert_eq!(f.service.cancel("nope").await.unwrap(), None);
    }

    /// Cancelling a copy cancels its steps not taken yet; a step already sent stays sent
    /// and its result no longer changes the parent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_a_copy_cancels_its_queued_steps() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into()] };
        f.submit("D1", "cp", request).await;
        assert_eq!(f.take("D2"), ["cp.1"]);
        let parent = f.service.cancel("cp").await.unwrap().expect("known");
        assert_eq!((parent.state, parent.return_code), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert_eq!(f.state("cp.2"), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert_eq!(f.state("cp.1"), (OperationState::Sent, None));
        assert!(f.take("D3").is_empty());
        f.answer("D2", "cp.1", 0).await;
        assert_eq!(f.state("cp"), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("cp".to_string(), RETURN_CANCELLED)]);
    }

    /// An operation past its time to live, queued or sent, ends expired (-9001) and is
    /// announced on its device; one within its time is left alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_past_its_ttl_expires_and_is_announced() {
        let f = Fixture::new();
        f.submit_with_ttl("D1", "queued", add_user("7", "Ann"), Duration::ZERO).await;
        f.submit_with_ttl("D2", "sent", add_user("8", "Bob"), Duration::from_secs(1)).await;
        f.submit("D1", "fresh", add_user("9", "Cid")).await;
        assert_eq!(f.take("D2"), ["sent"]);
        let deadline = f.record("sent").expires_at_ms;
        while crate::time::now_ms() <= deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(f.service.expire_due().await.unwrap(), 2);
        for (id, device) in [("queued", "D1"), ("sent", "D2")] {
            let record = f.record(id);
            assert_eq!((record.state, record.return_code), (OperationState::Expired, Some(RETURN_EXPIRED)), "{id}");
            assert_eq!(record.message, Some(format!("no confirmation from device {device:?} in time")));
            let announced = f.announced(device);
            assert_eq!(announced.len(), 1, "{device}");
            assert_eq!((announced[0].operation_id.as_str(), announced[0].return_code), (id, RETURN_EXPIRED));
            assert!(announced[0].details.contains(&("Status".into(), "expired".into())), "{:?}", announced[0]);
        }
        assert_eq!(f.state("fresh"), (OperationState::Queued, None));
        assert_eq!(f.service.expire_due().await.unwrap(), 0);
        // A late result does not revive an expired operation.
        f.answer("D2", "sent", 0).await;
        assert_eq!(f.state("sent"), (OperationState::Expired, Some(RETURN_EXPIRED)));
        assert_eq!(f.take("D1"), ["fresh"]);
    }

    /// Cancelling a step of a copy cancels the copy (announced once, on its source) and
    /// its other steps not taken yet; a step already sent stays sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_a_step_cancels_its_copy() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request =
            OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into(), "D3".into()] };
        f.submit("D1", "cp", request).await;
        assert_eq!(f.take("D2"), ["cp.1"]);
        let step = f.service.cancel("cp.2").await.unwrap().expect("known");
        assert_eq!((step.state, step.return_code), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        let parent = f.record("cp");
        assert_eq!((parent.state, parent.return_code), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert_eq!(parent.message.as_deref(), Some("step cp.2 on device D3 ended cancelled"));
        assert_eq!(f.state("cp.3"), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert_eq!(f.state("cp.1"), (OperationState::Sent, None));
        assert!(f.take("D3").is_empty());
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("cp".to_string(), RETURN_CANCELLED)]);
        assert!(f.announced("D3").is_empty());
    }

    /// A move or copy past its time to live expires with its open steps; only the
    /// parent is announced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_past_its_ttl_expires_with_its_steps() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into()] };
        f.submit_with_ttl("D1", "cp", request, Duration::ZERO).await;
        assert_eq!(f.service.expire_due().await.unwrap(), 3);
        for id in ["cp", "cp.1", "cp.2"] {
            assert_eq!(f.state(id), (OperationState::Expired, Some(RETURN_EXPIRED)), "{id}");
        }
        assert_eq!(f.record("cp").message.as_deref(), Some("its steps did not finish in time"));
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| r.operation_id).collect();
        assert_eq!(announced, ["cp"]);
        assert!(f.announced("D2").is_empty() && f.announced("D3").is_empty());
    }

    /// The sweeper expires operations on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_expires_operations() {
        let f = Fixture::new();
        f.submit_with_ttl("D1", "a", add_user("7", "Ann"), Duration::ZERO).await;
        let (stop, stopped) = watch::channel(false);
        let sweeper = tokio::spawn(Arc::clone(&f.service).run_expiry(stopped));
        let record = f.service.wait("a", Duration::from_secs(10)).await.unwrap().expect("known");
        assert_eq!((record.state, record.return_code), (OperationState::Expired, Some(RETURN_EXPIRED)));
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), sweeper).await.expect("stopped").unwrap();
    }

    /// A command a push transport could not hand over fails at once (-9003) and is
    /// announced; a closed operation is left as it is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_undeliverable_command_fails_at_once() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        let record = f.service.fail_undeliverable("a", "no form for it".into()).await.unwrap().expect("known");
        assert_eq!((record.state, record.return_code), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
        assert_eq!(f.record("a").message.as_deref(), Some("no form for it"));
        assert_eq!(f.announced("D1").len(), 1);
        let again = f.service.fail_undeliverable("a", "again".into()).await.unwrap().expect("known");
        assert_eq!(again, record);
        assert_eq!(f.announced("D1").len(), 1);
        assert_eq!(f.service.fail_undeliverable("nope", "x".into()).await.unwrap(), None);
    }

    /// Forgetting a device ends its open operations (-9003) and drops what the gateway
    /// knew of its users; its closed operations, and other devices', are left alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forget_device_ends_its_open_operations_and_forgets_its_users() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.service.users().apply("D2", &user("7", "Ann")).unwrap();
        f.submit("D1", "done", add_user("8", "Bob")).await;
        f.take("D1");
        f.answer("D1", "done", 0).await;
        f.submit("D1", "sent", add_user("9", "Cid")).await;
        f.take("D1");
        f.submit("D1", "queued", add_user("10", "Dan")).await;
        f.submit("D2", "other", add_user("11", "Eve")).await;
        assert_eq!(f.service.forget_device("D1").await.unwrap(), 2);
        for id in ["sent", "queued"] {
            let record = f.record(id);
            assert_eq!(
                (record.state, record.return_code),
                (OperationState::Failed, Some(RETURN_UNDELIVERABLE)),
                "{id}"
            );
            assert_eq!(record.message.as_deref(), Some("device \"D1\" was deleted"));
        }
        assert_eq!(f.state("done"), (OperationState::Done, Some(0)));
        assert!(f.take("D1").is_empty());
        assert!(f.service.users().list("D1", None, 10).unwrap().is_empty());
        assert_eq!(f.service.users().list("D2", None, 10).unwrap().len(), 1);
        assert_eq!(f.state("other"), (OperationState::Queued, None));
    }

    /// Forgetting the source of a move fails the move and cancels its step on the target
    /// before that device takes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forgetting_the_source_of_a_move_cancels_its_step() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.submit("D1", "mv", OperationRequest::MoveUser { user_id: "7".into(), to_device: "D2".into() }).await;
        assert_eq!(f.service.forget_device("D1").await.unwrap(), 1);
        assert_eq!(f.state("mv"), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
        assert_eq!(f.state("mv.1"), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        assert!(f.take("D2").is_empty());
    }

    /// Forgetting a target of a copy fails the copy (announced on its source) and
    /// cancels its other queued steps.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forgetting_a_target_of_a_copy_fails_the_copy() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into()] };
        f.submit("D1", "cp", request).await;
        assert_eq!(f.service.forget_device("D2").await.unwrap(), 1);
        assert_eq!(f.state("cp.1"), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
        assert_eq!(f.state("cp"), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
        assert_eq!(f.state("cp.2"), (OperationState::Cancelled, Some(RETURN_CANCELLED)));
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("cp".to_string(), RETURN_UNDELIVERABLE)]);
        assert!(f.take("D3").is_empty());
    }

    /// `DELETE /v1/devices/{id}` forgets the device while it is still registered
    /// (disabled; it is removed last): its -9003 endings are not journaled on it, so no
    /// delivery worker of it is started again (`announce` once did), while a copy it was a
    /// target of is still announced on its source.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forget_device_announces_nothing_on_the_deleted_device() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.service.users().apply("D2", &user("7", "Ann")).unwrap();
        let copy = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D1".into()] };
        f.submit("D2", "cp", copy).await;
        // As DELETE /v1/devices/{id} does: disabled first, forgotten, removed last.
        let device = f.device("D1");
        f.registry.put(crate::store::Device { enabled: false, ..(*device).clone() }).unwrap();
        assert_eq!(f.service.forget_device("D1").await.unwrap(), 2);
        assert_eq!(f.state("a"), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert!(announced.is_empty(), "announced on the device being deleted: {announced:?}");
        let on_source: Vec<_> = f.announced("D2").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(on_source, [("cp".to_string(), RETURN_UNDELIVERABLE)]);
    }
}
