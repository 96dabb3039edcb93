//! Server-to-device operations: the catalogue (what may be asked, validated and planned
//! into device commands), the command queue service (submit, hand out, close, expire,
//! announce), and LoadLog answered from the journal. The Cams envelope that maps onto
//! the catalogue is in [`crate::cams::envelope`].
pub mod catalogue;
pub mod load_log;
pub mod presence;
pub mod service;

use std::sync::{Arc, OnceLock, Weak};

pub use catalogue::{OperationRequest, Plan};
pub use service::{OperationService, OperationSettings, SubmitError, Submitted};

use crate::plugin::PendingCommands;
use crate::plugin::bindings::types::Command;

/// A command source bound after the plugins are loaded: dialect plugins are loaded
/// before the service exists (the service needs the routes, which need the plugins).
#[derive(Default)]
pub struct LateCommands(OnceLock<Weak<OperationService>>);

impl LateCommands {
    /// Binds the service; later calls are ignored.
    pub fn bind(&self, service: &Arc<OperationService>) {
        let _ = self.0.set(Arc::downgrade(service));
    }
}

impl PendingCommands for LateCommands {
    fn take_pending(&self, device_id: &str, max: u32) -> Vec<Command> {
        match self.0.get().and_then(Weak::upgrade) {
            Some(service) => service.take_pending(device_id, max),
            None => Vec::new(),
        }
    }
}
