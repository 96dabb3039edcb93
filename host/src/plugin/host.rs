//! The state of one plugin instance (its wasmtime `Store` data) and the host functions
//! the WIT contract imports: log, config, kv, clock, outbound HTTP and pending commands.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{clock, config, kv, log, types};
use super::bindings::{delivery::biogate::plugin::outbound_http, dialect::biogate::plugin::commands};
use super::http::OutboundHttp;
use super::stdio::{LogStream, Stream};
use crate::store::{KvError, PluginKv};

/// Where a dialect plugin takes the commands waiting for a device from.
pub trait PendingCommands: Send + Sync {
    /// Up to `max` queued commands of `device_id`, oldest first, marked as sent.
    fn take_pending(&self, device_id: &str, max: u32) -> Vec<types::Command>;
}

/// No command source (plugins that are not dialects, or a gateway without a queue).
pub struct NoCommands;

impl PendingCommands for NoCommands {
    fn take_pending(&self, _: &str, _: u32) -> Vec<types::Command> {
        Vec::new()
    }
}

/// What every instance of one plugin shares: its name, config values and capabilities.
pub struct PluginContext {
    /// The plugin's name in the config file (tags its logs and metrics).
    pub name: Arc<str>,
    /// Its config values.
    pub config: BTreeMap<String, String>,
    /// Its private key/value space.
    pub kv: PluginKv,
    /// Outbound HTTP (delivery plugins); `None` refuses every request.
    pub http: Option<OutboundHttp>,
    /// Queued commands (dialect plugins).
    pub commands: Arc<dyn PendingCommands>,
    /// How many log lines the plugin may cause (its output, its log calls, its faults).
    pub log_budget: Arc<super::log_budget::LogBudget>,
}

/// The data of one instance's `Store`.
pub struct HostState {
    ctx: Arc<PluginContext>,
    wasi: WasiCtx,
    /// The guest's stdout and stderr (their unfinished lines are logged when a call ends).
    output: [LogStream; 2],
    table: ResourceTable,
    memory_cap: usize,
    /// Set when the guest asked for more memory than its cap.
    pub(super) memory_limit_hit: bool,
    /// The largest size any of its memories was granted, in bytes.
    pub(super) peak_memory: usize,
    call_started: Instant,
    host_time: Duration,
    budget: Duration,
}

impl HostState {
    /// Fresh state for a new instance of the plugin.
    pub fn new(ctx: Arc<PluginContext>, memory_cap: usize) -> Self {
        let stdout = LogStream::new(ctx.name.clone(), ctx.log_budget.clone(), Stream::Stdout);
        let stderr = LogStream::new(ctx.name.clone(), ctx.log_budget.clone(), Stream::Stderr);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            ctx,
            wasi,
            output: [stdout, stderr],
            table: ResourceTable::new(),
            memory_cap,
            memory_limit_hit: false,
            peak_memory: 0,
            call_started: Instant::now(),
            host_time: Duration::ZERO,
            budget: Duration::ZERO,
        }
    }

    /// Starts the clock of a call with `budget` of guest time.
    pub(super) fn begin_call(&mut self, budget: Duration) {
        self.call_started = Instant::now();
        self.host_time = Duration::ZERO;
        self.budget = budget;
    }

    /// Ends a call: logs what the guest left of an unfinished line of output.
    pub(super) fn end_call(&self) {
        self.output.iter().for_each(LogStream::finish_line);
    }

    /// Guest time used so far in this call (host functions excluded).
    pub(super) fn guest_time(&self) -> Duration {
        self.call_started.elapsed().saturating_sub(self.host_time)
    }

    /// Guest time left in this call: wall time minus time spent in host functions.
    pub(super) fn guest_time_left(&self) -> Option<Duration> {
        self.budget.checked_sub(self.guest_time()).filter(|left| !left.is_zero())
    }

    /// Runs a host function whose time does not count against the guest's deadline.
    fn off_the_clock<R>(&mut self, f: impl FnOnce(&PluginContext) -> R) -> R {
        let start = Instant::now();
        let result = f(&self.ctx);
        self.host_time += start.elapsed();
        result
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        let plugin = &*self.ctx.name;
        let fields = FieldList(&fields);
        match level {
            log::Level::Trace => tracing::trace!(target: "biogate::plugin", plugin, %fields, "{message}"),
            log::Level::Debug => tracing::debug!(target: "biogate::plugin", plugin, %fields, "{message}"),
            log::Level::Info => self
                .ctx
                .log_budget
                .log(plugin, || tracing::info!(target: "biogate::plugin", plugin, %fields, "{message}")),
            log::Level::Warn => self
                .ctx
                .log_budget
                .log(plugin, || tracing::warn!(target: "biogate::plugin", plugin, %fields, "{message}")),
            log::Level::Error => self
                .ctx
                .log_budget
                .log(plugin, || tracing::error!(target: "biogate::plugin", plugin, %fields, "{message}")),
        }
    }
}

/// Displays plugin log fields as `k=v k=v`.
struct FieldList<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.ctx.config.get(&key).cloned()
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.ctx.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn kv_error(error: KvError) -> kv::KvError {
    match error {
        KvError::TooLarge(limit) => kv::KvError::TooLarge(limit),
        KvError::Storage(e) => kv::KvError::Storage(e.to_string()),
    }
}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.off_the_clock(|c| c.kv.get(&key)).map_err(kv_error)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        self.off_the_clock(|c| c.kv.set(&key, &value)).map_err(kv_error)
    }

    fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        self.off_the_clock(|c| c.kv.delete(&key)).map_err(kv_error)
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, kv::KvError> {
        self.off_the_clock(|c| c.kv.list_keys(&prefix, limit as usize)).map_err(kv_error)
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> u64 {
        crate::time::now_ms()
    }
}

impl outbound_http::Host for HostState {
    fn send(&mut self, request: outbound_http::Request) -> Result<outbound_http::Response, outbound_http::HttpError> {
        self.off_the_clock(|c| match &c.http {
            Some(http) => http.send_blocking(request),
            None => Err(outbound_http::HttpError::Denied("this plugin may not make HTTP requests".into())),
        })
    }
}

impl commands::Host for HostState {
    fn take_pending(&mut self, device_id: String, max: u32) -> Vec<types::Command> {
        self.off_the_clock(|c| c.commands.take_pending(&device_id, max))
    }
}

impl types::Host for HostState {}
