//! Instances of one plugin: created from its `InstancePre`, reused across calls, and
//! thrown away after any fault, or before they would fault on memory: an instance whose
//! memory grew past half of the room its start left under the cap is retired after its
//! call. (A linear memory never shrinks: a runtime whose garbage grows with every call,
//! as jco's JavaScript engine does, ~12 KiB a punch, would otherwise hit the cap every
//! few hundred calls, and that call's event would follow the failure policy.) Each call
//! runs under the plugin's CPU deadline and memory cap.
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::transform::{Transform, TransformPre};
use super::bindings::{delivery::Delivery, delivery::DeliveryPre, dialect::Dialect, dialect::DialectPre};
use super::config::Limits;
use super::engine::EPOCH_TICK;
use super::fault::{DeadlineExceeded, FaultKind, PluginFault, classify};
use super::host::{HostState, PluginContext};
use super::stats::PluginStats;

/// A WIT world's generated bindings, as the pool needs them.
pub trait World: Sized + Send + 'static {
    /// The pre-instantiated form (imports resolved, exports looked up once).
    type Pre: Send + Sync + 'static;
    /// Adds the world's imports (and WASI) to a linker.
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()>;
    /// Resolves the world's exports on a pre-instantiated component.
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    /// Instantiates into `store`.
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
}

macro_rules! world {
    ($world:ty, $pre:ty) => {
        impl World for $world {
            type Pre = $pre;
            fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
                wasmtime_wasi::p2::add_to_linker_sync(linker)?;
                <$world>::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
            }
            fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
                <$pre>::new(instance_pre)
            }
            fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
        }
    };
}

world!(Transform, TransformPre<HostState>);
world!(Delivery, DeliveryPre<HostState>);
world!(Dialect, DialectPre<HostState>);

/// An instance and its store.
struct Slot<W> {
    store: Store<HostState>,
    world: W,
    /// Past this much linear memory (bytes), the instance is retired after its call.
    retire_above: usize,
    /// Calls made on it.
    calls: u64,
}

/// The instances of one plugin.
pub struct InstancePool<W: World> {
    engine: Engine,
    pre: W::Pre,
    ctx: Arc<PluginContext>,
    limits: Limits,
    idle: Mutex<Vec<Slot<W>>>,
    stats: Arc<PluginStats>,
    /// `biogate_plugin_call_seconds{plugin}`: how long calls take, against `cpu_ms`.
    call_seconds: metrics::Histogram,
    /// Whether the operator was told that instances are retired after one call.
    warned_retiring_every_call: std::sync::atomic::AtomicBool,
}

impl<W: World> InstancePool<W> {
    /// A pool over a pre-instantiated component.
    pub fn new(engine: Engine, pre: W::Pre, ctx: Arc<PluginContext>, limits: Limits, stats: Arc<PluginStats>) -> Self {
        let call_seconds = metrics::histogram!("biogate_plugin_call_seconds", "plugin" => ctx.name.to_string());
        InstancePool {
            engine,
            pre,
            ctx,
            limits,
            idle: Mutex::new(Vec::new()),
            stats,
            call_seconds,
            warned_retiring_every_call: Default::default(),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// The plugin's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many log lines the plugin may cause.
    pub fn log_budget(&self) -> &super::log_budget::LogBudget {
        &self.ctx.log_budget
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.stats
    }

    /// Builds a fault of this plugin (and counts it).
    pub fn fault(&self, kind: FaultKind, detail: impl Into<String>) -> PluginFault {
        self.stats.record_fault(&self.ctx.name, kind);
        PluginFault { plugin: self.ctx.name.to_string(), kind, detail: detail.into() }
    }

    /// Runs `f` on an instance under the plugin's deadline and memory cap. The instance
    /// goes back to the pool on success and is thrown away on any error.
    pub fn call<R>(&self, f: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R, PluginFault> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut slot = match pooled {
            Some(slot) => slot,
            None => self.fresh().map_err(|e| self.fault(FaultKind::Unavailable, format!("{:#}", e.error)))?,
        };
        self.stats.record_call();
        slot.calls += 1;
        slot.store.data_mut().begin_call(self.limits.cpu());
        slot.store.set_epoch_deadline(ticks(self.limits.cpu()));
        let started = std::time::Instant::now();
        let result = f(&slot.world, &mut slot.store);
        self.call_seconds.record(started.elapsed().as_secs_f64());
        slot.store.data().end_call();
        self.stats.record_memory(slot.store.data().peak_memory);
        match result {
            Ok(value) if !slot.store.data().memory_limit_hit => {
                if slot.store.data().peak_memory > slot.retire_above {
                    self.retire(&slot);
                    return Ok(value);
                }
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.limits.max_idle_instances {
                    idle.push(slot);
                }
                Ok(value)
            }
            Ok(_) => Err(self.fault(FaultKind::MemoryLimit, "memory cap reached")),
            Err(error) => {
                let (kind, detail) = classify(&error, slot.store.data().memory_limit_hit);
                Err(self.fault(kind, detail))
            }
        }
    }

    /// Counts an instance retired for its memory; says so once when it happens after a
    /// single call (every call then pays a start: the cap is too tight for the work).
    fn retire(&self, slot: &Slot<W>) {
        self.stats.record_retired(&self.ctx.name);
        let memory = slot.store.data().peak_memory;
        if slot.calls == 1 && !self.warned_retiring_every_call.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                plugin = %self.ctx.name,
                memory_mib = memory >> 20,
                cap_mib = self.limits.memory_bytes() >> 20,
                "plugin instances use most of their memory cap in one call, so each is replaced after it \
                 (a start per call): raise `limits.memory_mib`"
            );
        } else {
            tracing::debug!(plugin = %self.ctx.name, memory, "plugin instance retired: its memory grew near its cap");
        }
    }

    /// Starts an instance under the plugin's limits, as its first call would, and keeps
    /// it for that call. Says what the start took, or why it failed (`biogate check`).
    pub fn probe(&self) -> Result<StartCost, PluginFault> {
        match self.fresh() {
            Ok(slot) => {
                let state = slot.store.data();
                let cost = StartCost { memory_bytes: state.peak_memory, guest_time: state.guest_time() };
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(slot);
                Ok(cost)
            }
            Err(failed) => {
                let (kind, detail) = classify(&failed.error, failed.memory_limit_hit);
                Err(self.fault(kind, detail))
            }
        }
    }

    /// A new instance with its own store.
    fn fresh(&self) -> Result<Slot<W>, StartFailure> {
        let state = HostState::new(self.ctx.clone(), self.limits.memory_bytes());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        store.epoch_deadline_callback(|ctx| match ctx.data().guest_time_left() {
            Some(left) => Ok(UpdateDeadline::Continue(ticks(left))),
            None => Err(DeadlineExceeded.into()),
        });
        // Instantiation runs guest start-up code: give it the call budget too.
        store.data_mut().begin_call(self.limits.cpu());
        store.set_epoch_deadline(ticks(self.limits.cpu()));
        let world = W::instantiate(&self.pre, &mut store);
        store.data().end_call();
        match world {
            Ok(world) => {
                self.stats.record_instance();
                let start = store.data().peak_memory;
                let retire_above = start + self.limits.memory_bytes().saturating_sub(start) / 2;
                Ok(Slot { store, world, retire_above, calls: 0 })
            }
            Err(error) => Err(StartFailure { error, memory_limit_hit: store.data().memory_limit_hit }),
        }
    }
}

/// What starting an instance took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartCost {
    /// The largest linear memory it asked for, in bytes.
    pub memory_bytes: usize,
    /// Guest time its start-up code ran.
    pub guest_time: Duration,
}

/// An instance that could not be started.
struct StartFailure {
    error: wasmtime::Error,
    memory_limit_hit: bool,
}

/// Epoch ticks covering `d` (at least one).
fn ticks(d: Duration) -> u64 {
    (d.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64).max(1)
}
