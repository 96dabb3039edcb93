//! The Wasm plugin runtime: loads components that implement the `biogate:plugin` worlds
//! (sdk/wit/), runs them sandboxed (CPU deadline, memory cap, size limits, deny-by-default
//! WASI), reuses instances across calls and throws away any instance that faulted.
pub mod bindings;
mod cache;
pub mod config;
mod delivery;
mod dialect;
mod engine;
mod fault;
mod host;
mod http;
pub mod inspect;
mod instance;
mod loader;
pub mod log_budget;
mod size;
mod stats;
mod stdio;
mod transform;

pub use cache::{CacheOutcome, CompileCache};
pub use config::{FailurePolicy, Limits, PluginConfig, PluginConfigs, PluginKind, expect_plugin};
pub use delivery::{DeliveryOutcome, DeliveryPlugin};
pub use dialect::{DialectMount, DialectPlugin};
pub use engine::{EngineSettings, PluginEngine};
pub use fault::{FaultKind, PluginFault};
pub use host::{NoCommands, PendingCommands};
pub use instance::StartCost;
pub use loader::{LoadError, LoadedPlugin, PluginRuntime};
pub use stats::PluginStats;
pub use transform::{TransformOutcome, TransformPlugin};
