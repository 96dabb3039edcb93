//! Endings the gateway decides: a client cancels a queued operation
//! ([`RETURN_CANCELLED`]), a push transport cannot hand a command over, a device is
//! deleted ([`RETURN_UNDELIVERABLE`]), a time to live runs out ([`RETURN_EXPIRED`]); and
//! the sweeper that expires operations and puts overdue commands back in their queues.
//! Each ending is announced on the device's routes.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::closing::ClosedBy;
use super::{OperationService, RETURN_CANCELLED, RETURN_EXPIRED, RETURN_UNDELIVERABLE, lock};
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
