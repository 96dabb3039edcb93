//! Dialect plugins: vendor device protocols over HTTP and MQTT.
use std::sync::Arc;

use super::bindings::dialect::Dialect;
use super::bindings::dialect::exports::biogate::plugin::dialect_handler::{
    DeviceContext, DialectError, DialectReply, HttpRequest, MqttMessage,
};
use super::bindings::types::{Command, EventBody};
use super::fault::{FaultKind, PluginFault};
use super::instance::InstancePool;

/// A loaded dialect plugin.
pub struct DialectPlugin {
    pool: InstancePool<Dialect>,
}

impl DialectPlugin {
    pub(super) fn new(pool: InstancePool<Dialect>) -> Self {
        DialectPlugin { pool }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.pool.name()
    }

    /// How many log lines the plugin may cause.
    pub fn log_budget(&self) -> &super::log_budget::LogBudget {
        self.pool.log_budget()
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &super::PluginStats {
        self.pool.stats()
    }

    /// Starts one instance under the plugin's limits (see [`super::LoadedPlugin::probe`]).
    pub fn probe(&self) -> Result<super::StartCost, PluginFault> {
        self.pool.probe()
    }

    fn check_input(&self, size: usize) -> Result<(), PluginFault> {
        let max = self.pool.limits().max_input_bytes;
        if size > max {
            return Err(self
                .pool
                .fault(FaultKind::InputTooLarge, format!("request of {size} bytes exceeds max_input_bytes = {max}")));
        }
        Ok(())
    }

    /// Which device sent `request`.
    pub fn identify_http(&self, request: &HttpRequest) -> Result<Result<String, DialectError>, PluginFault> {
        self.check_input(request.body.len())?;
        self.pool.call(|w, store| w.biogate_plugin_dialect_handler().call_identify_http(store, request))
    }

    /// Handles one request of a registered device. A reply carrying more events than
    /// `max_output_events`, or a body over `max_output_bytes`, is a fault.
    pub fn handle_http(
        &self,
        device: &DeviceContext,
        request: &HttpRequest,
    ) -> Result<Result<DialectReply, DialectError>, PluginFault> {
        self.check_input(request.body.len())?;
        let reply =
            self.pool.call(|w, store| w.biogate_plugin_dialect_handler().call_handle_http(store, device, request))?;
        if let Ok(reply) = &reply {
            self.check_output(reply.events.len(), reply.body.len())?;
        }
        Ok(reply)
    }

    fn check_output(&self, events: usize, bytes: usize) -> Result<(), PluginFault> {
        let limits = self.pool.limits();
        if events > limits.output_events() {
            return Err(self.pool.fault(
                FaultKind::OutputTooLarge,
                format!("{events} events exceed max_output_events = {}", limits.output_events()),
            ));
        }
        if bytes > limits.max_output_bytes {
            return Err(self.pool.fault(
                FaultKind::OutputTooLarge,
                format!("a reply of {bytes} bytes exceeds max_output_bytes = {}", limits.max_output_bytes),
            ));
        }
        Ok(())
    }

    /// Handles one MQTT message of a registered device.
    pub fn handle_mqtt(
        &self,
        device: &DeviceContext,
        topic: &str,
        payload: &[u8],
    ) -> Result<Result<Vec<EventBody>, DialectError>, PluginFault> {
        self.check_input(payload.len())?;
        let events = self
            .pool
            .call(|w, store| w.biogate_plugin_dialect_handler().call_handle_mqtt(store, device, topic, payload))?;
        if let Ok(events) = &events {
            self.check_output(events.len(), 0)?;
        }
        Ok(events)
    }

    /// Encodes a command as an MQTT message.
    pub fn encode_mqtt_command(
        &self,
        device: &DeviceContext,
        command: &Command,
    ) -> Result<Result<MqttMessage, DialectError>, PluginFault> {
        self.pool.call(|w, store| w.biogate_plugin_dialect_handler().call_encode_mqtt_command(store, device, command))
    }
}

/// A dialect plugin and the path prefix it answers (lower case).
#[derive(Clone)]
pub struct DialectMount {
    pub prefix: String,
    pub plugin: Arc<DialectPlugin>,
}

impl DialectMount {
    /// Whether `path` is under this mount (`/iclock`, `/iclock/...`, `/iclock.aspx`).
    pub fn matches(&self, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        lower
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('.'))
    }
}
