//! Announcing the endings the gateway decided (expiry, cancel, an undeliverable command,
//! the parents of move/copy, a resend): each is journaled on its device as a
//! `command-result` event, so it reaches the device's callback routes like a result the
//! device sent. A device's own results are journaled by the ingress, not here.
use super::queue::OperationService;
use crate::plugin::bindings::types::{CommandResult, EventBody};
use crate::store::OperationRecord;

/// A final status to announce on a device's routes.
pub(super) struct Announcement {
    pub(super) device: String,
    pub(super) result: CommandResult,
}

/// The `command-result` event that tells a record's final status.
pub(super) fn result_of(record: &OperationRecord) -> CommandResult {
    let mut details = record.details.clone();
    if let Some(message) = &record.message {
        details.push(("Message".into(), message.clone()));
    }
    CommandResult { operation_id: record.id.clone(), return_code: record.return_code.unwrap_or(0), details }
}

impl OperationService {
    /// Journals final statuses the gateway decided, so they reach the callbacks.
    pub(super) async fn announce(&self, announcements: Vec<Announcement>) {
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
