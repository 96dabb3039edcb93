//! What devices report back: results close their operations (done on 0, failed with the
//! device's code otherwise; a step's result advances its move/copy), and a confirmed
//! command, like a reported enrolment, teaches the user directory what is on the device.
//! A device's own result reaches the routes as the event it sent, annotated with the
//! final `Status` before it is journaled.
use super::OperationService;
use super::announce::Announcement;
use super::closing::ClosedBy;
use super::lock;
use crate::plugin::bindings::types::{CommandBody, CommandResult, EventBody};
use crate::store::{OperationState, StoreError};

impl OperationService {
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
}
