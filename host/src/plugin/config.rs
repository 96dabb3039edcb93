//! How the operator declares a plugin in the config file (`[plugins.<name>]`).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `biogate:plugin/transform`: changes events on their way to a sink.
    Transform,
    /// `biogate:plugin/delivery`: a custom sink.
    Delivery,
    /// `biogate:plugin/dialect`: a vendor device protocol.
    Dialect,
}

impl PluginKind {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Transform => "transform",
            PluginKind::Delivery => "delivery",
            PluginKind::Dialect => "dialect",
        }
    }

    /// The interface the world exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            PluginKind::Transform => "biogate:plugin/transformer",
            PluginKind::Delivery => "biogate:plugin/deliverer",
            PluginKind::Dialect => "biogate:plugin/dialect-handler",
        }
    }
}

/// What happens to an event when the plugin fails on it (trap, deadline, memory cap,
/// oversized or invalid output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The event passes on unchanged, as if the plugin were not there.
    FailOpen,
    /// The event is dead-lettered with the reason.
    #[default]
    FailClosed,
}

/// Resource limits of one plugin. Every field has a safe default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time a call may run in the guest (host calls excluded), in milliseconds.
    pub cpu_ms: u64,
    /// Linear memory cap of one instance, in MiB.
    pub memory_mib: u64,
    /// Largest input of one call (the event, its strings and photo), in bytes.
    pub max_input_bytes: usize,
    /// Largest output of one call, in bytes.
    pub max_output_bytes: usize,
    /// Most events a transform may return for one input.
    pub max_output_events: usize,
    /// Idle instances kept for reuse.
    pub max_idle_instances: usize,
    /// Time limit of one outbound HTTP request (delivery plugins), in milliseconds.
    pub http_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_ms: 50,
            memory_mib: 16,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_output_events: 100,
            max_idle_instances: 4,
            http_timeout_ms: 15_000,
        }
    }
}

impl Limits {
    /// The CPU deadline as a duration.
    pub fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }

    /// Checks the values, returning the offending key and what is wrong.
    pub fn validate(&self, max_memory_mib: u64) -> Result<(), (&'static str, String)> {
        if self.cpu_ms == 0 || self.cpu_ms > 60_000 {
            return Err(("cpu_ms", "must be between 1 and 60000 (milliseconds)".into()));
        }
        if self.memory_mib == 0 || self.memory_mib > max_memory_mib {
            return Err((
                "memory_mib",
                format!("must be between 1 and {max_memory_mib} (MiB; the engine's maximum)"),
            ));
        }
        if self.max_input_bytes == 0 || self.max_output_bytes == 0 {
            return Err(("max_input_bytes", "sizes must be at least 1 byte".into()));
        }
        if self.max_output_events == 0 {
            return Err(("max_output_events", "must be at least 1".into()));
        }
        if self.http_timeout_ms == 0 {
            return Err(("http_timeout_ms", "must be at least 1 (milliseconds)".into()));
        }
        Ok(())
    }
}

/// One plugin as declared in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The world the component must implement.
    pub kind: PluginKind,
    /// Path of the `.wasm` component, relative to the config file's folder.
    pub path: PathBuf,
    /// What happens to an event when the plugin fails on it.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Values the plugin reads through the `config` interface.
    /// Nested tables are flattened to dotted keys (`[plugins.x.config.map] 1 = "E7"`
    /// is the key `map.1`).
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Origins (`https://host[:port]`, `*.example.com` wildcards allowed) a delivery
    /// plugin may call. Empty: none.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Dialect plugins: the HTTP path prefix whose requests they answer, matched without
    /// regard to case (default `/iclock`, where ZKTeco-protocol devices call).
    #[serde(default)]
    pub http_mount: Option<String>,
}

impl PluginConfig {
    /// The HTTP mount of a dialect plugin (`None` for other kinds).
    pub fn dialect_mount(&self) -> Option<String> {
        (self.kind == PluginKind::Dialect).then(|| self.http_mount.clone().unwrap_or_else(|| "/iclock".into()))
    }
}

/// A plugin config value: strings, numbers and booleans are all handed to the plugin as
/// strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Table(BTreeMap<String, ConfigValue>),
}

impl PluginConfig {
    /// The config values as the plugin sees them: strings, nested tables flattened.
    pub fn plugin_values(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in &self.config {
            value.flatten_into(key, &mut out);
        }
        out
    }
}

impl ConfigValue {
    fn flatten_into(&self, key: &str, out: &mut BTreeMap<String, String>) {
        let text = match self {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Integer(i) => i.to_string(),
            ConfigValue::Float(f) => f.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Table(table) => {
                for (inner, value) in table {
                    value.flatten_into(&format!("{key}.{inner}"), out);
                }
                return;
            }
        };
        out.insert(key.to_string(), text);
    }
}
