//! The ingest step every device transport ends in, whatever its protocol or dialect:
//! command results are annotated with their final status, the events are journaled
//! durably, the device's delivery workers are made sure to run, and the command queue
//! learns from results and enrolments. A device is acknowledged only after
//! [`Ingest::accept`] returns.
use std::sync::Arc;

use crate::delivery::Dispatcher;
use crate::operations::OperationService;
use crate::plugin::bindings::types::EventBody;
use crate::store::{Appended, Device, DiskReserve, Journal, StoreError};

/// Stores what devices send and sets the rest of the gateway in motion.
#[derive(Clone)]
pub struct Ingest {
    journal: Journal,
    dispatcher: Arc<Dispatcher>,
    operations: Arc<OperationService>,
    reserve: DiskReserve,
}

/// What an event is estimated to take on disk besides its photo and templates, for the
/// disk reserve (it only decides when the free space is measured again). Measured on a
/// tmpfs: sled's data file grew by about 370-380 bytes per stored punch, indexes included,
/// single or in batches of 100; 1 KiB leaves a margin.
const EVENT_BYTES: u64 = 1024;

/// Roughly what `bodies` will take on disk once journaled.
fn estimated_bytes(bodies: &[EventBody]) -> u64 {
    bodies
        .iter()
        .map(|body| {
            let payload = match body {
                EventBody::Punch(p) => p.photo.as_ref().map_or(0, Vec::len),
                EventBody::UserUpdate(u) => {
                    u.user.photo.as_ref().map_or(0, Vec::len)
                        + u.user.templates.iter().map(|t| t.data.len()).sum::<usize>()
                }
                _ => 0,
            };
            EVENT_BYTES + payload as u64
        })
        .sum()
}

impl Ingest {
    /// Ingest into `journal`, waking `dispatcher`'s workers and telling `operations`;
    /// refused below `reserve`.
    pub fn new(
        journal: Journal,
        dispatcher: Arc<Dispatcher>,
        operations: Arc<OperationService>,
        reserve: DiskReserve,
    ) -> Self {
        Ingest { journal, dispatcher, operations, reserve }
    }

    /// Stores a device's events durably (on disk when this returns) and acts on them.
    /// Below the disk reserve nothing is stored: [`StoreError::DiskFull`], and the device
    /// keeps its events and sends them again.
    pub async fn accept(&self, device: &Device, mut bodies: Vec<EventBody>) -> Result<Appended, StoreError> {
        self.reserve.admit(estimated_bytes(&bodies))?;
        self.operations.presence.touch(&device.id);
        if let Some(online) = bodies.iter().rev().find_map(|b| match b {
            EventBody::DeviceStatus(s) => Some(s.online),
            _ => None,
        }) {
            // A connected MQTT session is the MQTT path's to report (it knows the session).
            self.operations.presence.reported(&device.id, online, false);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::watch;

    use super::Ingest;
    use crate::delivery::{Dispatcher, WorkerContext};
    use crate::operations::{OperationRequest, OperationService, OperationSettings};
    use crate::plugin::bindings::types::{CommandResult, DeviceTime, EventBody, InputType, Punch, PunchType};
    use crate::store::{DeviceChanges, DiskReserve, OperationState, Store};

    fn punch(user_id: &str) -> EventBody {
        EventBody::Punch(Punch {
            user_id: user_id.into(),
            log_time: DeviceTime { unix_seconds: 1_600_309_102, utc_offset_minutes: 330 },
            punch_type: PunchType::CheckIn,
            input_type: InputType::Face,
            temperature: None,
            face_mask: None,
            work_code: None,
            photo: None,
        })
    }

    /// The ingest step on a real store, without a gateway: punches are journaled in order
    /// and a command result closes its operation.
    #[tokio::test]
    async fn stores_events_in_order_and_closes_operations_from_results() {
        let store = Store::temporary().expect("store");
        let (journal, registry, delivery_log) =
            (store.journal().unwrap(), store.registry().unwrap(), store.delivery_log().unwrap());
        let device = DeviceChanges::default().apply("SN1", None, &[]).expect("device");
        registry.put(device.clone()).expect("register");
        let (_stop, shutdown) = watch::channel(false);
        let ctx =
            WorkerContext { journal: journal.clone(), log: delivery_log.clone(), registry: registry.clone(), shutdown };
        let dispatcher = Arc::new(Dispatcher::new(Arc::new(ctx), Vec::new()));
        let operations = Arc::new(OperationService::new(
            store.operations().unwrap(),
            store.users().unwrap(),
            journal.clone(),
            registry,
            delivery_log,
            dispatcher.clone(),
            OperationSettings::default(),
        ));
        let ingest = Ingest::new(journal.clone(), dispatcher, operations.clone(), DiskReserve::disabled());

        let appended = ingest.accept(&device, vec![punch("7"), punch("8")]).await.expect("accepted");
        assert_eq!(appended.stored(), 2);
        let stored: Vec<String> = journal
            .read("SN1", 0, u64::MAX, 10)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.body {
                EventBody::Punch(p) => Some(p.user_id),
                _ => None,
            })
            .collect();
        assert_eq!(stored, ["7", "8"]);

        let submitted = operations.submit(&device, None, OperationRequest::Reboot, None).await.expect("submitted");
        let taken = operations.take("SN1", 10, false).expect("taken");
        assert_eq!(taken.len(), 1);
        let result = CommandResult { operation_id: submitted.record.id.clone(), return_code: 0, details: vec![] };
        ingest.accept(&device, vec![EventBody::CommandResult(result)]).await.expect("result accepted");
        let record = operations.log().get(&submitted.record.id).unwrap().expect("record");
        assert_eq!(record.state, OperationState::Done);
    }
}
