//! Transform plugins: one event in, zero or more events out.
use super::bindings::transform::Transform;
use super::bindings::transform::exports::biogate::plugin::transformer::TransformError;
use super::bindings::types::Event;
use super::config::{FailurePolicy, Limits};
use super::fault::{FaultKind, PluginFault};
use super::instance::InstancePool;
use super::size::event_size;

/// What a transform decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum TransformOutcome {
    /// Pass these events on (empty: the event was dropped).
    Events(Vec<Event>),
    /// The plugin refused the event for good: dead-letter it with this reason.
    Reject(String),
    /// The plugin cannot handle the event now: retry it later.
    Retry(String),
}

/// A loaded transform plugin.
pub struct TransformPlugin {
    pool: InstancePool<Transform>,
    policy: FailurePolicy,
}

impl TransformPlugin {
    pub(super) fn new(pool: InstancePool<Transform>, policy: FailurePolicy) -> Self {
        TransformPlugin { pool, policy }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.pool.name()
    }

    /// The operator's failure policy for this plugin.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &super::PluginStats {
        self.pool.stats()
    }

    /// Starts one instance under the plugin's limits (see [`super::LoadedPlugin::probe`]).
    pub fn probe(&self) -> Result<super::StartCost, PluginFault> {
        self.pool.probe()
    }

    /// Runs the plugin on one event. A fault (trap, deadline, memory cap, size limits,
    /// invalid output) is logged and counted here; the caller applies the failure policy.
    pub fn transform(&self, event: &Event) -> Result<TransformOutcome, PluginFault> {
        let limits = self.pool.limits();
        let result = self.run(event, limits);
        if let Err(fault) = &result {
            self.pool.log_budget().log(&fault.plugin, || {
                tracing::warn!(
                    plugin = %fault.plugin,
                    event_id = %event.id,
                    device_id = %event.device_id,
                    fault = fault.kind.as_str(),
                    detail = %fault.detail,
                    "plugin call failed"
                )
            });
        }
        result
    }

    fn run(&self, event: &Event, limits: &Limits) -> Result<TransformOutcome, PluginFault> {
        let input = event_size(event);
        if input > limits.max_input_bytes {
            return Err(self.pool.fault(
                FaultKind::InputTooLarge,
                format!("input of {input} bytes exceeds max_input_bytes = {}", limits.max_input_bytes),
            ));
        }
        let answer = self.pool.call(|world, store| world.biogate_plugin_transformer().call_transform(store, event))?;
        match answer {
            Ok(events) => self.check_output(event, events, limits).map(TransformOutcome::Events),
            Err(TransformError::Reject(reason)) => Ok(TransformOutcome::Reject(reason)),
            Err(TransformError::Retry(reason)) => Ok(TransformOutcome::Retry(reason)),
        }
    }

    /// Enforces the output limits and the contract: same device, same sequence, unique ids.
    fn check_output(&self, input: &Event, mut events: Vec<Event>, limits: &Limits) -> Result<Vec<Event>, PluginFault> {
        if events.len() > limits.output_events() {
            return Err(self.pool.fault(
                FaultKind::OutputTooLarge,
                format!("{} events exceed max_output_events = {}", events.len(), limits.output_events()),
            ));
        }
        let size: usize = events.iter().map(event_size).sum();
        if size > limits.max_output_bytes {
            return Err(self.pool.fault(
                FaultKind::OutputTooLarge,
                format!("output of {size} bytes exceeds max_output_bytes = {}", limits.max_output_bytes),
            ));
        }
        for (i, out) in events.iter_mut().enumerate() {
            if out.device_id != input.device_id {
                return Err(self.pool.fault(
                    FaultKind::InvalidOutput,
                    format!("an output event names device {:?}, not {:?}", out.device_id, input.device_id),
                ));
            }
            out.sequence = input.sequence;
            if i > 0 && out.id == input.id {
                out.id = format!("{}.{i}", input.id);
            }
        }
        Ok(events)
    }
}
