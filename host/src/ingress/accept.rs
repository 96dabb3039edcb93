//! What every ingress does with the events a device sent, whatever its transport or
//! dialect: annotate command results with their final status, journal everything
//! durably, make sure the device's delivery workers run, and let the command queue learn
//! from results and enrolments. The device is acknowledged only after this returns.
use crate::gateway::Gateway;
use crate::operations::OperationService;
use crate::plugin::bindings::types::EventBody;
use crate::store::{Appended, Device, StoreError};

/// Stores a device's events durably and acts on them.
pub async fn accept_events(gw: &Gateway, device: &Device, mut bodies: Vec<EventBody>) -> Result<Appended, StoreError> {
    OperationService::annotate(&mut bodies);
    let observed: Vec<EventBody> = bodies
        .iter()
        .filter(|b| matches!(b, EventBody::CommandResult(_) | EventBody::UserUpdate(_)))
        .cloned()
        .collect();
    let appended = gw.journal.append(&device.id, bodies, crate::time::now_ms()).await?;
    metrics::counter!("biogate_events_stored_total").increment(appended.stored() as u64);
    gw.dispatcher.ensure(device);
    if !observed.is_empty() {
        gw.operations.observe(&device.id, &observed).await?;
    }
    Ok(appended)
}
