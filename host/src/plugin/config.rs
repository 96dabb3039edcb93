//! How the operator declares a plugin in the config file (`[plugins.<name>]`).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::field::{FieldError, SettingError};

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

/// Defaults that depend on the plugin's kind. A transform runs once per event on the
/// delivery path: short. A dialect handles a whole device request, and a terminal back
/// online uploads its backlog in batches of thousands of lines; a batch refused would be
/// re-sent forever with the device's punches stuck behind it, so it gets room.
pub mod kind_defaults {
    /// `cpu_ms` of transforms and delivery plugins.
    pub const CPU_MS: u64 = 50;
    /// `cpu_ms` of dialects: a 10,000-line ATTLOG upload takes the ADMS dialect ~32 ms
    /// (release build, this 2-core machine idle); room for a loaded machine.
    pub const DIALECT_CPU_MS: u64 = 2_000;
    /// `max_output_events` of transforms: events one input event may become.
    pub const MAX_OUTPUT_EVENTS: usize = 100;
    /// `max_output_events` of dialects: events one device request may carry (10,000
    /// ATTLOG lines are about 500 KB, within `max_input_bytes`).
    pub const DIALECT_MAX_OUTPUT_EVENTS: usize = 10_000;
    /// `memory_mib` of transforms and delivery plugins.
    pub const MEMORY_MIB: u64 = 16;
    /// `memory_mib` of dialects: a big upload's events are held in the guest at once.
    pub const DIALECT_MEMORY_MIB: u64 = 64;
}

/// Resource limits of one plugin. Every field has a safe default; the ones left unset
/// (`None`) take their kind's default when the plugin is loaded ([`Limits::for_kind`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time a call may run in the guest (host calls excluded), in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Linear memory cap of one instance, in MiB.
    pub memory_mib: Option<u64>,
    /// Largest input of one call (the event, its strings and photo), in bytes.
    pub max_input_bytes: usize,
    /// Largest output of one call, in bytes.
    pub max_output_bytes: usize,
    /// Most events one call may return (a transform for one event, a dialect for one
    /// device request).
    pub max_output_events: Option<usize>,
    /// Idle instances kept for reuse.
    pub max_idle_instances: usize,
    /// Time limit of one outbound HTTP request (delivery plugins), in milliseconds.
    pub http_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_ms: None,
            memory_mib: None,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_output_events: None,
            max_idle_instances: 4,
            http_timeout_ms: 15_000,
        }
    }
}

impl Limits {
    /// These limits with every unset value taken from `kind`'s defaults.
    pub fn for_kind(&self, kind: PluginKind) -> Limits {
        use kind_defaults::*;
        let dialect = kind == PluginKind::Dialect;
        Limits {
            cpu_ms: Some(self.cpu_ms.unwrap_or(if dialect { DIALECT_CPU_MS } else { CPU_MS })),
            memory_mib: Some(self.memory_mib.unwrap_or(if dialect { DIALECT_MEMORY_MIB } else { MEMORY_MIB })),
            max_output_events: Some(self.max_output_events.unwrap_or(if dialect {
                DIALECT_MAX_OUTPUT_EVENTS
            } else {
                MAX_OUTPUT_EVENTS
            })),
            ..self.clone()
        }
    }

    /// The CPU deadline as a duration.
    pub fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ms.unwrap_or(kind_defaults::CPU_MS))
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib.unwrap_or(kind_defaults::MEMORY_MIB) as usize).saturating_mul(1 << 20)
    }

    /// The most events one call may return.
    pub fn output_events(&self) -> usize {
        self.max_output_events.unwrap_or(kind_defaults::MAX_OUTPUT_EVENTS)
    }

    /// Checks the values, returning the offending key and what is wrong.
    pub fn validate(&self, max_memory_mib: u64) -> Result<(), FieldError> {
        if self.cpu_ms.is_some_and(|ms| ms == 0 || ms > 60_000) {
            return Err(FieldError::new("cpu_ms", "must be between 1 and 60000 (milliseconds)"));
        }
        if self.memory_mib.is_some_and(|mib| mib == 0 || mib > max_memory_mib) {
            return Err(FieldError::new(
                "memory_mib",
                format!("must be between 1 and {max_memory_mib} (MiB; the engine's maximum)"),
            ));
        }
        if self.max_input_bytes == 0 || self.max_output_bytes == 0 {
            return Err(FieldError::new("max_input_bytes", "sizes must be at least 1 byte"));
        }
        if self.max_output_events == Some(0) {
            return Err(FieldError::new("max_output_events", "must be at least 1"));
        }
        if self.http_timeout_ms == 0 {
            return Err(FieldError::new("http_timeout_ms", "must be at least 1 (milliseconds)"));
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
    /// The limits the plugin runs under: the operator's, with its kind's defaults for
    /// what they leave unset.
    pub fn effective_limits(&self) -> Limits {
        self.limits.for_kind(self.kind)
    }

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

/// The `[plugins]` table: each plugin's declaration by name.
pub type PluginConfigs = BTreeMap<String, PluginConfig>;

/// Checks that setting `key` names a declared plugin `name` of `kind`.
pub fn expect_plugin(plugins: &PluginConfigs, key: &str, name: &str, kind: PluginKind) -> Result<(), SettingError> {
    match plugins.get(name) {
        None => Err(SettingError::new(
            key,
            format!("no plugin named {name:?} is declared"),
            format!("declare it in [plugins.{name}] or correct the name"),
        )),
        Some(p) if p.kind != kind => Err(SettingError::new(
            key,
            format!("plugin {name:?} is a {} plugin, not a {} plugin", p.kind.world(), kind.world()),
            "name a plugin of the right kind",
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_limits_take_their_kinds_defaults_and_set_ones_win() {
        let unset: Limits = toml::from_str("").expect("empty limits");
        let dialect = unset.for_kind(PluginKind::Dialect);
        assert_eq!(
            (dialect.output_events(), dialect.cpu(), dialect.memory_bytes()),
            (10_000, Duration::from_secs(2), 64 << 20)
        );
        let transform = unset.for_kind(PluginKind::Transform);
        assert_eq!(
            (transform.output_events(), transform.cpu(), transform.memory_bytes()),
            (100, Duration::from_millis(50), 16 << 20)
        );
        let set: Limits = toml::from_str("max_output_events = 7\ncpu_ms = 9\nmemory_mib = 3").expect("limits");
        let dialect = set.for_kind(PluginKind::Dialect);
        assert_eq!(
            (dialect.output_events(), dialect.cpu(), dialect.memory_bytes()),
            (7, Duration::from_millis(9), 3 << 20)
        );
        assert_eq!(
            toml::from_str::<Limits>("max_output_events = 0").expect("limits").validate(128).map_err(|e| e.field),
            Err("max_output_events".to_string())
        );
    }
}
