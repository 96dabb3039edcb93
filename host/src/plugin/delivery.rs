//! Delivery plugins: custom sinks that take a batch of one device's events.
use super::bindings::delivery::Delivery;
use super::bindings::delivery::exports::biogate::plugin::deliverer::DeliveryError;
use super::bindings::types::Event;
use super::fault::{FaultKind, PluginFault};
use super::instance::InstancePool;
use super::size::event_size;

/// What a delivery plugin answered.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Every event of the batch was delivered.
    Delivered,
    /// The batch can never be delivered: dead-letter it.
    Reject(String),
    /// Try again later, no sooner than `retry_after_ms` when given.
    Retry { reason: String, retry_after_ms: Option<u64> },
}

/// A loaded delivery plugin.
pub struct DeliveryPlugin {
    pool: InstancePool<Delivery>,
}

impl DeliveryPlugin {
    pub(super) fn new(pool: InstancePool<Delivery>) -> Self {
        DeliveryPlugin { pool }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.pool.name()
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &super::PluginStats {
        self.pool.stats()
    }

    /// Starts one instance under the plugin's limits (see [`super::LoadedPlugin::probe`]).
    pub fn probe(&self) -> Result<super::StartCost, PluginFault> {
        self.pool.probe()
    }

    /// Hands a batch to the plugin. Blocks while the plugin makes HTTP calls: call it
    /// from a blocking thread (`tokio::task::spawn_blocking`).
    pub fn deliver(&self, batch: &[Event]) -> Result<DeliveryOutcome, PluginFault> {
        let limits = self.pool.limits();
        let input: usize = batch.iter().map(event_size).sum();
        if input > limits.max_input_bytes {
            return Err(self.pool.fault(
                FaultKind::InputTooLarge,
                format!("batch of {input} bytes exceeds max_input_bytes = {}", limits.max_input_bytes),
            ));
        }
        let answer = self.pool.call(|world, store| world.biogate_plugin_deliverer().call_deliver(store, batch))?;
        Ok(match answer {
            Ok(()) => DeliveryOutcome::Delivered,
            Err(DeliveryError::Reject(reason)) => DeliveryOutcome::Reject(reason),
            Err(DeliveryError::Retry(info)) => {
                DeliveryOutcome::Retry { reason: info.reason, retry_after_ms: info.retry_after_ms }
            }
        })
    }
}
