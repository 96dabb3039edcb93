//! The ingest step every device transport ends in, whatever its protocol or dialect:
//! command results are annotated with their final status, the events are journaled
//! durably, the device's delivery workers are made sure to run, and the command queue
//! learns from results and enrolments. A device is acknowledged only after
//! [`Ingest::accept`] returns.
use std::sync::Arc;

use crate::delivery::Dispatcher;
use crate::operations::OperationService;
use crate::plugin::bindings::types::EventBody;
use crate::store::{Appended, Device, Journal, StoreError};

/// Stores what devices send and sets the rest of the gateway in motion.
#[derive(Clone)]
pub struct Ingest {
    journal: Journal,
    dispatcher: Arc<Dispatcher>,
    operations: Arc<OperationService>,
}

impl Ingest {
    /// Ingest into `journal`, waking `dispatcher`'s workers and telling `operations`.
    pub fn new(journal: Journal, dispatcher: Arc<Dispatcher>, operations: Arc<OperationService>) -> Self {
        Ingest { journal, dispatcher, operations }
    }

    /// Stores a device's events durably (on disk when this returns) and acts on them.
    pub async fn accept(&self, device: &Device, mut bodies: Vec<EventBody>) -> Result<Appended, StoreError> {
        OperationService::annotate(&mut bodies);
        let observed: Vec<EventBody> = bodies
            .iter()
            .filter(|b| matches!(b, EventBody::CommandResult(_) | EventBody::UserUpdate(_)))
            .cloned()
            .collect();
        let appended = self.journal.append(&device.id, bodies, crate::time::now_ms()).await?;
        metrics::counter!("biogate_events_stored_total").increment(appended.stored() as u64);
        self.dispatcher.ensure(device);
        if !observed.is_empty() {
            self.operations.observe(&device.id, &observed).await?;
        }
        Ok(appended)
    }
}
