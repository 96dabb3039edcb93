//! How a record ends. [`OperationService::settle`] writes a final state (waiters hear of
//! it once it is durable); [`OperationService::close`] also advances the move/copy the
//! record is a step of: a failed or expired step cancels the queued steps and fails the
//! parent with the step's code (a step a client cancelled cancels the parent likewise);
//! when every step is done the parent is done, except a move, whose delete step on the
//! source device is queued then. The caller holds the transitions lock throughout.
use super::announce::{Announcement, result_of};
use super::codes::{RETURN_CANCELLED, state_name};
use super::queue::{OperationService, lock};
use crate::plugin::bindings::types::CommandBody;
use crate::store::{OperationRecord, OperationState, StoreError};

/// Who ended an operation: its device (with a result event of its own) or the gateway
/// (expiry, cancel, an undeliverable command), whose ending must be announced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ClosedBy {
    Device,
    Gateway,
}

impl OperationService {
    /// Closes an open record (the transitions lock is held) and, for a step of a move or
    /// copy, advances its parent. Parents and endings the gateway decided are announced;
    /// a device's own result reaches the routes as the event it sent.
    pub(super) fn close(
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
            let (state, code) = match step.state {
                // A client cancelled the step: the move/copy is cancelled with it.
                OperationState::Cancelled => (OperationState::Cancelled, RETURN_CANCELLED),
                _ => (OperationState::Failed, step.return_code.unwrap_or(-1)),
            };
            let reason = match step.state {
                OperationState::Cancelled => "another step was cancelled",
                _ => "an earlier step failed",
            };
            self.cancel_queued_steps(&parent, reason)?;
            return self.finish_parent(&mut parent, state, code, Some(message), announcements);
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

    /// Cancels the steps of `parent` that no device has taken yet (they do not advance
    /// the parent: the caller ends it). The transitions lock is held.
    pub(super) fn cancel_queued_steps(&self, parent: &OperationRecord, reason: &str) -> Result<(), StoreError> {
        for child in &parent.children {
            if let Some(mut step) = self.log.get(child)?
                && step.state == OperationState::Queued
            {
                self.settle(&mut step, OperationState::Cancelled, RETURN_CANCELLED, Some(reason.to_string()))?;
            }
        }
        Ok(())
    }

    /// Writes a record's final state and wakes whoever waits for it.
    pub(super) fn settle(
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

    pub(super) fn finish_parent(
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
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, user};
    use super::*;
    use crate::operations::catalogue::OperationRequest;

    /// A copy of user 7 from D1 to D2 and D3 under the id `cp`.
    async fn copy(f: &Fixture) {
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into()] };
        f.submit("D1", "cp", request).await;
    }

    /// A copy is done when every step is done, not before; the parent's ending is
    /// announced on the source device, the steps' own results are the devices' events.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_is_done_when_every_step_is_done() {
        let f = Fixture::new();
        copy(&f).await;
        assert_eq!(f.take("D2"), ["cp.1"]);
        assert_eq!(f.take("D3"), ["cp.2"]);
        f.answer("D2", "cp.1", 0).await;
        assert_eq!(f.state("cp"), (OperationState::Queued, None));
        assert!(f.announced("D1").is_empty());
        f.answer("D3", "cp.2", 0).await;
        assert_eq!(f.state("cp"), (OperationState::Done, Some(0)));
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("cp".to_string(), 0)]);
        assert!(f.announced("D2").is_empty() && f.announced("D3").is_empty());
        for device in ["D2", "D3"] {
            assert!(f.service.users().get(device, "7").unwrap().is_some(), "{device} learnt the user");
        }
    }

    /// A move adds the user on the target first, then, once the target confirmed,
    /// deletes it from the source; it is done when the delete is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_move_deletes_from_the_source_once_the_target_confirmed() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.submit("D1", "mv", OperationRequest::MoveUser { user_id: "7".into(), to_device: "D2".into() }).await;
        assert!(f.take("D1").is_empty(), "nothing is deleted before the target confirmed");
        assert_eq!(f.take("D2"), ["mv.1"]);
        f.answer("D2", "mv.1", 0).await;
        let parent = f.record("mv");
        assert_eq!(parent.state, OperationState::Queued);
        assert_eq!(parent.children, ["mv.1", "mv.2"]);
        let delete = f.record("mv.2");
        assert_eq!((delete.device_id.as_str(), delete.kind.as_str()), ("D1", "delete_user"));
        assert_eq!(delete.command.map(|c| c.body), Some(CommandBody::DeleteUser("7".into())));
        assert_eq!(f.take("D1"), ["mv.2"]);
        f.answer("D1", "mv.2", 0).await;
        assert_eq!(f.state("mv"), (OperationState::Done, Some(0)));
        assert_eq!(f.service.users().get("D1", "7").unwrap(), None);
        assert!(f.service.users().get("D2", "7").unwrap().is_some());
        assert_eq!(f.announced("D1").len(), 1);
    }

    /// A failed step fails its parent with the step's code at once, and the steps not
    /// taken yet are cancelled; the parent's ending is announced once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_step_fails_the_parent_and_cancels_the_queued_steps() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let request = OperationRequest::CopyUser {
            user_id: "7".into(),
            to_devices: vec!["D2".into(), "D3".into(), "D3".into(), "D3".into()],
        };
        f.submit("D1", "cp", request).await;
        assert_eq!(f.take("D2"), ["cp.1"]);
        f.answer("D2", "cp.1", -10).await;
        let parent = f.record("cp");
        assert_eq!((parent.state, parent.return_code), (OperationState::Failed, Some(-10)));
        assert_eq!(parent.message.as_deref(), Some("step cp.1 on device D2 ended failed"));
        for step in ["cp.2", "cp.3", "cp.4"] {
            assert_eq!(f.state(step), (OperationState::Cancelled, Some(RETURN_CANCELLED)), "{step}");
        }
        assert!(f.take("D3").is_empty());
        let announced: Vec<_> = f.announced("D1").into_iter().map(|r| (r.operation_id, r.return_code)).collect();
        assert_eq!(announced, [("cp".to_string(), -10)]);
    }

    /// A move whose add on the target fails deletes nothing from the source.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_move_whose_target_refused_deletes_nothing() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.submit("D1", "mv", OperationRequest::MoveUser { user_id: "7".into(), to_device: "D2".into() }).await;
        f.take("D2");
        f.answer("D2", "mv.1", -1002).await;
        let parent = f.record("mv");
        assert_eq!((parent.state, parent.return_code, parent.children.len()), (OperationState::Failed, Some(-1002), 1));
        assert!(f.take("D1").is_empty());
        assert!(f.service.users().get("D1", "7").unwrap().is_some());
    }

    /// A step that ends after its parent ended changes the parent no more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_ending_after_its_parent_leaves_the_parent_as_it_is() {
        let f = Fixture::new();
        copy(&f).await;
        f.take("D2");
        f.take("D3");
        f.answer("D2", "cp.1", -10).await;
        let failed = f.record("cp");
        f.answer("D3", "cp.2", 0).await;
        assert_eq!(f.state("cp.2"), (OperationState::Done, Some(0)));
        assert_eq!(f.record("cp"), failed);
        assert_eq!(f.announced("D1").len(), 1);
    }
}
