//! The shared wasmtime engine: component model, pooling allocator, epoch interruption.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A call's CPU deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How much of a dropped instance's linear memory is reset with `memset` instead of
/// `madvise`, so that the next instance in the slot takes no page faults on it, when the
/// kernel has PAGEMAP_SCAN (Linux 6.7+) and only the pages the instance touched are reset.
/// Without it each fresh instance of a Rust plugin spent most of its ~30 us in page faults
/// and in the TLB shootdowns of `madvise` (profiled on the plugin_call bench: 31.9 -> 13.9
/// us). On older kernels the allocator would `memset` the whole first megabyte of every
/// memory instead: not measured, so not done (0: `madvise` as before).
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables (a plugin's tables hold a few hundred entries).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Whether this kernel has the PAGEMAP_SCAN ioctl (Linux 6.7 or newer).
fn kernel_has_pagemap_scan() -> bool {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).filter_map(|part| part.parse::<u32>().ok());
    matches!((numbers.next(), numbers.next()), (Some(major), Some(minor)) if (major, minor) >= (6, 7))
}

/// Engine-wide settings (`[engine]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// The largest memory any plugin may be given, in MiB (each plugin's own cap is
    /// `limits.memory_mib`, at most this).
    pub max_memory_mib: u64,
    /// Instances (of all plugins together) that may exist at once.
    pub max_instances: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { max_memory_mib: 128, max_instances: 200 }
    }
}

/// A wasmtime engine configured for plugins, with the thread that advances its epoch.
pub struct PluginEngine {
    engine: Engine,
    settings: EngineSettings,
    ticker: Option<EpochTicker>,
}

impl PluginEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(settings: EngineSettings) -> wasmtime::Result<Self> {
        let n = settings.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instances_per_component(32)
            .max_memory_size((settings.max_memory_mib as usize) << 20)
            .pagemap_scan(Enabled::Auto);
        if kernel_has_pagemap_scan() {
            pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT).table_keep_resident(TABLE_KEEP_RESIDENT);
        }

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(1 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(PluginEngine { engine, settings, ticker: Some(ticker) })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings the engine was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until stopped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("biogate-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
