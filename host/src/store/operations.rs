//! The command queue: every operation a REST client asked for, and the per-device FIFO of
//! commands waiting for their device.
//!
//! Layout in the `operations` tree (device ids and operation ids never contain NUL):
//! - `o\0<operation id>` -> the [`OperationRecord`] (JSON);
//! - `q\0<device>\0<order: u64 BE>` -> operation id: commands waiting to be handed out,
//!   oldest first (queued ones, and sent ones put back for redelivery);
//! - `d\0<device>\0<order: u64 BE>` -> operation id: every operation of a device, for listing;
//! - `x\0<expires at ms: u64 BE>\0<operation id>` -> (): open operations by deadline;
//! - `r\0<redeliver at ms: u64 BE>\0<operation id>` -> (): sent commands that go back to
//!   their queue if no result has come back by then (a reply lost on its way to the
//!   device).
//!
//! `order` comes from sled's monotonic id generator, so FIFO order survives restarts.
//! Each change is one atomic batch; callers make it durable with the group commit.
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::plugin::bindings::types::Command;

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Waiting for its device (or, for a move/copy, for its steps).
    Queued,
    /// Handed to the device; its result has not come back yet.
    Sent,
    /// The device (or the gateway, for operations it answers itself) confirmed it.
    Done,
    /// The device answered with an error code.
    Failed,
    /// Its time to live ran out before the device confirmed it.
    Expired,
    /// Cancelled by a client before the device took it.
    Cancelled,
}

impl OperationState {
    /// Whether the operation can still change.
    pub fn is_open(self) -> bool {
        matches!(self, OperationState::Queued | OperationState::Sent)
    }
}

/// One operation, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// The OperationID (client-supplied or generated).
    pub id: String,
    /// The device it is for.
    pub device_id: String,
    /// The catalogue name (`add_user`, `delete_user`, `move_user`...).
    pub kind: String,
    /// The request as validated (the `/v1` form).
    pub request: serde_json::Value,
    /// What the device is sent; `None` for operations the gateway carries out itself
    /// (move/copy parents, resends).
    pub command: Option<Command>,
    pub state: OperationState,
    /// FIFO position among the device's operations.
    pub order: u64,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub sent_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// The device's return code, once it answered.
    pub return_code: Option<i32>,
    /// What the device returned with its answer (device info, user data...).
    pub details: Vec<(String, String)>,
    /// Why it failed, expired or was cancelled, in words.
    pub message: Option<String>,
    /// The move/copy operation this one is a step of.
    pub parent: Option<String>,
    /// The steps of a move/copy operation.
    pub children: Vec<String>,
    /// How many times the command was handed to its device.
    #[serde(default)]
    pub deliveries: u32,
    /// While `sent`: when it goes back to the queue unless its result has come back.
    #[serde(default)]
    pub redeliver_at_ms: Option<u64>,
}

/// The operations tree.
#[derive(Clone)]
pub struct OperationLog {
    db: sled::Db,
    tree: sled::Tree,
}

fn key(tag: u8, device: &str, order: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + 11);
    k.push(tag);
    k.push(0);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&order.to_be_bytes());
    k
}

fn record_key(id: &str) -> Vec<u8> {
    let mut k = b"o\0".to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn expiry_key(at_ms: u64, id: &str) -> Vec<u8> {
    deadline_key(b'x', at_ms, id)
}

fn redelivery_key(at_ms: u64, id: &str) -> Vec<u8> {
    deadline_key(b'r', at_ms, id)
}

fn deadline_key(tag: u8, at_ms: u64, id: &str) -> Vec<u8> {
    let mut k = vec![tag, 0];
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn prefix(tag: u8, device: &str) -> Vec<u8> {
    let mut k = vec![tag, 0];
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k
}

fn encode(record: &OperationRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Decode(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<OperationRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

impl OperationLog {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(OperationLog { db: db.clone(), tree: db.open_tree("operations")? })
    }

    /// A fresh FIFO position (monotonic across restarts; never 0, so `after = 0` lists all).
    pub fn next_order(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// One operation.
    pub fn get(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        self.tree.get(record_key(id))?.map(|v| decode(&v)).transpose()
    }

    /// Whether an operation with this id exists.
    pub fn contains(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(record_key(id))?)
    }

    /// Stores new operations (all or none). Open operations with a command join their
    /// device's queue.
    pub fn insert(&self, records: &[OperationRecord]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for record in records {
            batch.insert(record_key(&record.id), encode(record)?);
            batch.insert(key(b'd', &record.device_id, record.order), record.id.as_bytes());
            if record.state.is_open() {
                batch.insert(expiry_key(record.expires_at_ms, &record.id), &[]);
                if record.state == OperationState::Queued && record.command.is_some() {
                    batch.insert(key(b'q', &record.device_id, record.order), record.id.as_bytes());
                }
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Writes a changed operation, keeping the queue and deadline indexes in step with
    /// its state.
    pub fn update(&self, record: &OperationRecord) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(record_key(&record.id), encode(record)?);
        if record.state != OperationState::Queued {
            batch.remove(key(b'q', &record.device_id, record.order));
        }
        if let Some(at) = record.redeliver_at_ms {
            if record.state == OperationState::Sent {
                batch.insert(redelivery_key(at, &record.id), &[]);
            } else {
                batch.remove(redelivery_key(at, &record.id));
            }
        }
        if !record.state.is_open() {
            batch.remove(expiry_key(record.expires_at_ms, &record.id));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Ends the redelivery wait of a sent command that was due at `due_at_ms` (stored with
    /// no redelivery time): put back at its place in its device's queue when `requeue`
    /// (it stays `sent`, so it cannot be cancelled), else left to wait for its result.
    pub fn end_redelivery_wait(
        &self,
        record: &OperationRecord,
        due_at_ms: u64,
        requeue: bool,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(record_key(&record.id), encode(record)?);
        batch.remove(redelivery_key(due_at_ms, &record.id));
        if requeue {
            batch.insert(key(b'q', &record.device_id, record.order), record.id.as_bytes());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The queued operations of `device`, oldest first, at most `limit`. Only an entry
    /// whose record is still open and is the one the entry was made for (same device,
    /// same FIFO position) counts: an entry left behind by a record closed or written
    /// over is dropped from the index, so a command is never handed out twice in one
    /// take, nor reopened once it ended.
    pub fn queued(&self, device: &str, limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        self.queued_where(device, limit, |_| true)
    }

    /// [`Self::queued`], keeping only the records `wanted` accepts: up to `limit` of
    /// those, the others not counted.
    pub fn queued_where(
        &self,
        device: &str,
        limit: usize,
        mut wanted: impl FnMut(&OperationRecord) -> bool,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        let mut out = Vec::new();
        let mut stale = sled::Batch::default();
        let mut any_stale = false;
        for entry in self.tree.scan_prefix(prefix(b'q', device)) {
            if out.len() >= limit {
                break;
            }
            let (key, id) = entry?;
            let order = key.get(key.len().saturating_sub(8)..).and_then(|b| <[u8; 8]>::try_from(b).ok());
            let record = self.get(&String::from_utf8_lossy(&id))?;
            let Some(record) =
                record.filter(|r| r.state.is_open() && r.device_id == device && order == Some(r.order.to_be_bytes()))
            else {
                tracing::warn!(device, operation = %String::from_utf8_lossy(&id), "a stale entry in the command queue; dropped");
                stale.remove(key);
                any_stale = true;
                continue;
            };
            if wanted(&record) {
                out.push(record);
            }
        }
        if any_stale {
            self.tree.apply_batch(stale)?;
        }
        Ok(out)
    }

    /// Operations of `device` after FIFO position `after`, oldest first, at most `limit`.
    pub fn list(&self, device: &str, after: u64, limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        let start = key(b'd', device, after.saturating_add(1));
        let end = key(b'd', device, u64::MAX);
        let mut out = Vec::new();
        for entry in self.tree.range(start..=end).values().take(limit) {
            if let Some(record) = self.get(&String::from_utf8_lossy(&entry?))? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Ids of open operations whose deadline is at or before `now_ms`.
    pub fn due(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.deadlines(b'x', now_ms)
    }

    /// Ids of sent commands whose redelivery time is at or before `now_ms`.
    pub fn redeliveries_due(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.deadlines(b'r', now_ms)
    }

    fn deadlines(&self, tag: u8, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let end = deadline_key(tag, now_ms, "\u{10FFFF}");
        self.tree
            .range(vec![tag, 0]..end)
            .keys()
            .map(|k| {
                let k = k?;
                Ok(String::from_utf8_lossy(k.get(11..).unwrap_or_default()).into_owned())
            })
            .collect()
    }
}
