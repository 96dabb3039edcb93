//! The gateway's configuration: one TOML file (`biogate serve --config FILE`), every key
//! optional. Parsing rejects unknown keys; validation names the file, the key and the
//! fix. Each component's own settings live beside its code (plugins in
//! `plugin::config`, routes in `delivery::route`); this module assembles them.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::delivery::RouteConfig;
use crate::field::SettingError;
use crate::plugin::{EngineSettings, PluginConfig, PluginKind, expect_plugin};

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub engine: EngineSettings,
    /// Plugins by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Routes by name.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Devices declared up front, by id (more can be added through the admin API). The
    /// keys are those of `POST /v1/devices`; `id` is the table's name.
    #[serde(default)]
    pub devices: BTreeMap<String, crate::store::DeviceChanges>,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    /// `[storage]`: the disk reserve (`min_free_mb`).
    #[serde(default)]
    pub storage: crate::store::StorageSettings,
    #[serde(default)]
    pub operations: crate::operations::OperationSettings,
    /// The MQTT broker devices connect through; none: no MQTT.
    #[serde(default)]
    pub mqtt: Option<crate::ingress::mqtt::config::MqttConfig>,
}

/// `[admin]`: the admin and resource API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer keys accepted by `/v1`. Empty: a key is generated into
    /// `<data_dir>/admin-api-key` on first start.
    #[serde(default)]
    pub api_keys: Vec<String>,
}

/// `[journal]`: how long events are kept, and the store's page cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Events older than this are pruned once every route has settled them.
    pub retention_days: u32,
    /// The store's page cache, in MiB (sled's cache of decoded pages; the OS page cache
    /// comes on top). Counted in stored bytes: the memory it takes is a few times this.
    /// Raise it for faster LoadLog pages over large histories, lower it on small boxes.
    pub cache_mb: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig { retention_days: 30, cache_mb: crate::store::DEFAULT_CACHE_BYTES / (1024 * 1024) }
    }
}

/// `[server]`: where the gateway listens and keeps its data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Folder of the embedded store and the compiled-plugin cache (relative to the
    /// config file's folder, or to the working directory without a config file).
    pub data_dir: PathBuf,
    /// Accept unknown devices as `pending` (refused until approved) instead of refusing
    /// them outright.
    pub auto_register: bool,
    /// Largest request body accepted from a device or client, in bytes.
    pub max_body_bytes: usize,
    /// Serve `/metrics` without the admin API key (for a scraper that cannot send one).
    pub public_metrics: bool,
    /// A request head (request line and headers) must arrive complete within this many
    /// milliseconds of the connection opening (or of the first byte of a later request
    /// on a kept-alive connection); else the connection is closed.
    pub header_timeout_ms: u64,
    /// A request body must arrive complete within this many milliseconds of its head;
    /// else 408 and the connection is closed.
    pub body_timeout_ms: u64,
    /// A kept-alive connection with no request under way is closed after this many
    /// milliseconds without a byte. A request the gateway is holding (a command long
    /// poll) is never cut by it.
    pub idle_timeout_ms: u64,
    /// Connections open at once, in all (lowered at start to fit the open-file limit).
    /// Over it, a new connection is answered 503 with `Retry-After` and closed.
    pub max_connections: usize,
    /// Connections open at once from one IP address (devices behind one NAT share it).
    pub max_connections_per_ip: usize,
}

/// Milliseconds allowed for the `[server]` timeouts.
const SERVER_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            data_dir: PathBuf::from("biogate-data"),
            auto_register: false,
            max_body_bytes: 4 << 20,
            public_metrics: false,
            header_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            max_connections: 16_384,
            max_connections_per_ip: 256,
        }
    }
}

/// A configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file, or `None` for the embedded defaults.
    pub file: Option<PathBuf>,
    /// The folder relative paths are resolved against.
    pub base_dir: PathBuf,
}

/// A configuration problem, with where it is and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: `{key}`: {problem}. Fix: {fix}")]
    Invalid { file: PathBuf, key: String, problem: String, fix: String },
}

impl LoadedConfig {
    /// The embedded defaults (no file): a gateway on 127.0.0.1 with a local data folder.
    pub fn defaults() -> Self {
        LoadedConfig { config: Config::default(), file: None, base_dir: PathBuf::from(".") }
    }

    /// Reads, parses and validates a config file.
    pub fn from_file(file: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(file).map_err(|source| ConfigError::Read { file: file.to_path_buf(), source })?;
        Self::from_str(&text, file)
    }

    /// Parses and validates config text that was read from `file`.
    pub fn from_str(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { file: file.to_path_buf(), message: e.to_string() })?;
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
        let loaded = LoadedConfig { config, file: Some(file.to_path_buf()), base_dir };
        loaded.validate()?;
        Ok(loaded)
    }

    /// The data folder, resolved.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.server.data_dir)
    }

    fn invalid(&self, key: String, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone().unwrap_or_else(|| PathBuf::from("<defaults>")),
            key,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// Cross-checks what parsing alone cannot: files exist, limits are sane, routes name
    /// plugins of the right kind, URLs are URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        for (name, plugin) in &c.plugins {
            let path = self.base_dir.join(&plugin.path);
            if !path.is_file() {
                return Err(self.invalid(
                    format!("plugins.{name}.path"),
                    format!("file {} does not exist", path.display()),
                    "build the plugin (`cargo xtask plugins`) or correct the path (relative to the config file)",
                ));
            }
            if let Err(e) = plugin.limits.validate(c.engine.max_memory_mib) {
                return Err(self.invalid(
                    format!("plugins.{name}.limits.{}", e.field),
                    e.problem,
                    "set a value in range or remove the key to use the default",
                ));
            }
            if !plugin.allowed_hosts.is_empty() && plugin.kind != PluginKind::Delivery {
                return Err(self.invalid(
                    format!("plugins.{name}.allowed_hosts"),
                    "only delivery plugins may make outbound HTTP requests",
                    "remove the key, or set kind = \"delivery\"",
                ));
            }
        }
        if let Some(mqtt) = &c.mqtt {
            if let Err(e) = mqtt.validate() {
                return Err(self.invalid(format!("mqtt.{}", e.field), e.problem, "see docs/mqtt.md"));
            }
            if let Some(dialect) = &mqtt.dialect {
                expect_plugin(&c.plugins, "mqtt.dialect", dialect, PluginKind::Dialect).map_err(|e| self.refused(e))?;
            }
        }
        let mut mounts: BTreeMap<String, &String> = BTreeMap::new();
        for (name, plugin) in &c.plugins {
            let key = format!("plugins.{name}.http_mount");
            if plugin.http_mount.is_some() && plugin.kind != PluginKind::Dialect {
                return Err(self.invalid(
                    key,
                    "only dialect plugins answer device requests",
                    "remove the key, or set kind = \"dialect\"",
                ));
            }
            let Some(mount) = plugin.dialect_mount() else { continue };
            let reserved = ["/v1", "/device", "/external", "/health", "/metrics"];
            let lower = mount.to_ascii_lowercase();
            if !mount.starts_with('/')
                || mount.len() < 2
                || mount.ends_with('/')
                || reserved.iter().any(|r| lower == *r || lower.starts_with(&format!("{r}/")))
            {
                return Err(self.invalid(key, format!("{mount:?} is not a free path prefix"), "write a path like \"/iclock\" that does not start with /v1, /device, /external, /health or /metrics"));
            }
            if let Some(other) = mounts.insert(lower, name) {
                return Err(self.invalid(
                    key,
                    format!("{mount:?} is already the mount of plugin {other:?}"),
                    "give each dialect plugin its own http_mount",
                ));
            }
        }
        for (name, route) in &c.routes {
            route.validate(&c.plugins).map_err(|e| self.refused(e.within(&format!("routes.{name}"))))?;
        }
        self.validate_server()?;
        self.validate_operations()?;
        self.validate_devices()
    }

    fn validate_operations(&self) -> Result<(), ConfigError> {
        let o = &self.config.operations;
        // A device holding a long poll is not heard from again until the poll ends.
        let longest_poll = o.max_poll_wait_ms.min(120_000); // a device asks for 120000 ms at most
        if o.offline_after_ms <= longest_poll {
            return Err(self.invalid(
                "operations.offline_after_ms".into(),
                format!(
                    "{} ms is not longer than a command long poll ({longest_poll} ms, operations.max_poll_wait_ms): a device waiting in one would count as offline",
                    o.offline_after_ms
                ),
                "write a number of milliseconds larger than operations.max_poll_wait_ms, or remove the key to use the default (180000)",
            ));
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.config.server;
        for (key, value) in [
            ("header_timeout_ms", s.header_timeout_ms),
            ("body_timeout_ms", s.body_timeout_ms),
            ("idle_timeout_ms", s.idle_timeout_ms),
        ] {
            if !SERVER_TIMEOUT_RANGE_MS.contains(&value) {
                return Err(self.invalid(
                    format!("server.{key}"),
                    format!("{value} is out of range"),
                    "write a number of milliseconds from 100 to 3600000, or remove the key to use the default",
                ));
            }
        }
        for (key, value) in
            [("max_connections", s.max_connections), ("max_connections_per_ip", s.max_connections_per_ip)]
        {
            if value == 0 {
                return Err(self.invalid(
                    format!("server.{key}"),
                    "0 would refuse every connection",
                    "write a positive number, or remove the key to use the default",
                ));
            }
        }
        Ok(())
    }

    fn validate_devices(&self) -> Result<(), ConfigError> {
        let routes: Vec<String> = self.config.routes.keys().cloned().collect();
        for (id, device) in &self.config.devices {
            if let Err(e) = device.clone().apply(id, None, &routes) {
                let key = if e.field == "id" { format!("devices.{id}") } else { format!("devices.{id}.{}", e.field) };
                return Err(self.invalid(key, e.problem, "correct the value, or remove the key to use the default"));
            }
        }
        Ok(())
    }

    fn refused(&self, error: SettingError) -> ConfigError {
        self.invalid(error.key, error.problem, error.fix)
    }
}
