//! How a record ends. [`OperationService::settle`] writes a final state (waiters hear of
//! it once it is durable); [`OperationService::close`] also advances the move/copy the
//! record is a step of: a failed, expired or cancelled step cancels the queued steps and
//! fails the parent with the step's code; when every step is done the parent is done,
//! except a move, whose delete step on the source device is queued then. The caller
//! holds the transitions lock throughout.
use super::announce::{Announcement, result_of};
use super::{OperationService, RETURN_CANCELLED, lock, state_name};
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
