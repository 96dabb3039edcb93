//! Submission: a request is validated and planned (partial user changes merged with the
//! directory), then stored durably in one batch: one record with its command, or the
//! parent of a move/copy with one step per target device, or an operation the gateway
//! answers itself at once (`resend_punch_log`, `load_user_info`). An OperationID used
//! again with the same request returns the first submission.
use std::time::Duration;

use super::OperationService;
use super::announce::{Announcement, result_of};
use crate::operations::catalogue::{FieldError, OperationRequest, Plan};
use crate::plugin::bindings::types::{Command, CommandBody, User};
use crate::store::{Device, OperationRecord, OperationState, StoreError};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A field of the request is wrong.
    #[error("{}: {}", .0.0, .0.1)]
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

impl OperationService {
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
                return Err(SubmitError::Field(("OperationID".into(), "1 to 64 letters, digits, '-' or '_'".into())));
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
                        return Err(SubmitError::Field((field, format!("no device {target:?} is registered"))));
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

    pub(super) fn child(
        &self,
        parent: &OperationRecord,
        device: &str,
        body: CommandBody,
    ) -> Result<OperationRecord, StoreError> {
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
}
