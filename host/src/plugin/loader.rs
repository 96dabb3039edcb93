//! Loads the plugins the config file declares: reads, compiles (or takes from the
//! cache), checks the world, links and pre-instantiates each one.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::cache::{CacheOutcome, CompileCache};
use super::config::{PluginConfig, PluginKind};
use super::delivery::DeliveryPlugin;
use super::dialect::DialectPlugin;
use super::engine::PluginEngine;
use super::host::{PendingCommands, PluginContext};
use super::http::OutboundHttp;
use super::inspect::{describe, exports_interface, unsupported_imports};
use super::instance::StartCost;
use super::instance::{InstancePool, World};
use super::stats::PluginStats;
use super::transform::TransformPlugin;
use crate::outbound::{OriginPattern, UrlGuard, guarded_client};
use crate::store::Store;

/// Why a plugin could not be loaded. Each names the plugin and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "plugin {plugin:?}: cannot read {path}: {source}. Check `path`, or build the plugin (`cargo xtask plugins`)."
    )]
    Read { plugin: String, path: PathBuf, source: std::io::Error },
    #[error(
        "plugin {plugin:?}: {path} is not a valid Wasm component: {detail}. Build it as a component (target wasm32-wasip2)."
    )]
    Compile { plugin: String, path: PathBuf, detail: String },
    #[error(
        "plugin {plugin:?}: {path} does not implement the `{expected}` world (it exports: {found}). Fix `kind`, or build the plugin against that world."
    )]
    WrongWorld { plugin: String, path: PathBuf, expected: &'static str, found: String },
    #[error("plugin {plugin:?}: {path} needs an import this gateway does not provide: {detail}")]
    Link { plugin: String, path: PathBuf, detail: String },
    #[error("plugin {plugin:?}: {path} imports what this gateway does not provide: {list}")]
    Unsupported { plugin: String, path: PathBuf, list: String },
    #[error(
        "plugin {plugin:?}: this delivery plugin makes HTTP requests (it imports biogate:plugin/outbound-http) but `plugins.{plugin}.allowed_hosts` is empty, so every request would be refused: list the origins it may call, e.g. allowed_hosts = [\"https://hr.example.com\"]"
    )]
    NoAllowedHosts { plugin: String },
    #[error("plugin {plugin:?}: allowed_hosts entry {entry:?}: {detail}")]
    AllowedHost { plugin: String, entry: String, detail: String },
    #[error("plugin {plugin:?}: {detail}")]
    Other { plugin: String, detail: String },
}

/// A loaded plugin of any kind.
#[derive(Clone)]
pub enum LoadedPlugin {
    Transform(Arc<TransformPlugin>),
    Delivery(Arc<DeliveryPlugin>),
    Dialect(Arc<DialectPlugin>),
}

impl LoadedPlugin {
    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        match self {
            LoadedPlugin::Transform(_) => PluginKind::Transform,
            LoadedPlugin::Delivery(_) => PluginKind::Delivery,
            LoadedPlugin::Dialect(_) => PluginKind::Dialect,
        }
    }

    /// Starts one instance under the plugin's limits (kept for its first call): what the
    /// start took, or the fault that stopped it.
    pub fn probe(&self) -> Result<StartCost, super::PluginFault> {
        match self {
            LoadedPlugin::Transform(p) => p.probe(),
            LoadedPlugin::Delivery(p) => p.probe(),
            LoadedPlugin::Dialect(p) => p.probe(),
        }
    }

    /// The plugin's counters.
    pub fn stats(&self) -> &PluginStats {
        match self {
            LoadedPlugin::Transform(p) => p.stats(),
            LoadedPlugin::Delivery(p) => p.stats(),
            LoadedPlugin::Dialect(p) => p.stats(),
        }
    }
}

/// Compiles and instantiates plugins: one engine, one compile cache, one store for the
/// plugins' key/value spaces.
pub struct PluginRuntime {
    engine: PluginEngine,
    cache: CompileCache,
    store: Store,
    commands: Arc<dyn PendingCommands>,
    runtime: Option<tokio::runtime::Handle>,
}

impl PluginRuntime {
    /// A runtime whose compiled components are cached in `cache`.
    pub fn new(engine: PluginEngine, cache: CompileCache, store: Store) -> Self {
        PluginRuntime {
            engine,
            cache,
            store,
            commands: Arc::new(super::host::NoCommands),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Where dialect plugins take queued commands from.
    pub fn with_commands(mut self, commands: Arc<dyn PendingCommands>) -> Self {
        self.commands = commands;
        self
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Loads one plugin. `base_dir` resolves a relative `path` (the config file's folder).
    pub fn load(
        &self,
        name: &str,
        config: &PluginConfig,
        base_dir: &Path,
    ) -> Result<(LoadedPlugin, CacheOutcome), LoadError> {
        let path = base_dir.join(&config.path);
        let plugin = name.to_string();
        let wasm = std::fs::read(&path).map_err(|source| LoadError::Read {
            plugin: plugin.clone(),
            path: path.clone(),
            source,
        })?;
        let engine = self.engine.engine();
        let (component, outcome) = self.cache.load_or_compile(engine, &wasm).map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            path: path.clone(),
            detail: format!("{e:#}"),
        })?;

        let expected = config.kind.export_interface();
        let description = describe(engine, &component);
        if !description.exports.iter().any(|e| exports_interface(&e.name, expected)) {
            let found = description.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(LoadError::WrongWorld {
                plugin,
                path,
                expected: config.kind.world(),
                found: if found.is_empty() { "nothing".into() } else { found },
            });
        }

        let unsupported = unsupported_imports(&description.imports, Some(config.kind));
        if !unsupported.is_empty() {
            // Imports that share a fix (the interfaces of one package) are named together.
            let mut by_fix: Vec<(&str, Vec<&str>)> = Vec::new();
            for u in &unsupported {
                match by_fix.iter_mut().find(|(fix, _)| *fix == u.fix) {
                    Some((_, names)) => names.push(&u.name),
                    None => by_fix.push((&u.fix, vec![&u.name])),
                }
            }
            let list = by_fix
                .iter()
                .map(|(fix, names)| format!("{} ({fix})", names.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(LoadError::Unsupported { plugin, path, list });
        }
        let makes_requests = description.imports.iter().any(|i| i.name.starts_with("biogate:plugin/outbound-http"));
        if config.kind == PluginKind::Delivery && makes_requests && config.allowed_hosts.is_empty() {
            return Err(LoadError::NoAllowedHosts { plugin });
        }

        let ctx = Arc::new(self.context(name, config)?);
        let stats = Arc::new(PluginStats::default());
        let loaded = match config.kind {
            PluginKind::Transform => LoadedPlugin::Transform(Arc::new(TransformPlugin::new(
                self.pool(&component, ctx, config, stats, &path, name)?,
                config.failure_policy,
            ))),
            PluginKind::Delivery => LoadedPlugin::Delivery(Arc::new(DeliveryPlugin::new(
                self.pool(&component, ctx, config, stats, &path, name)?,
            ))),
            PluginKind::Dialect => LoadedPlugin::Dialect(Arc::new(DialectPlugin::new(
                self.pool(&component, ctx, config, stats, &path, name)?,
            ))),
        };
        tracing::info!(plugin = name, kind = config.kind.world(), cache = ?outcome, "plugin loaded");
        Ok((loaded, outcome))
    }

    fn context(&self, name: &str, config: &PluginConfig) -> Result<PluginContext, LoadError> {
        let other = |detail: String| LoadError::Other { plugin: name.to_string(), detail };
        let kv = self.store.plugin_kv(name).map_err(|e| other(e.to_string()))?;
        let http = if config.kind == PluginKind::Delivery && !config.allowed_hosts.is_empty() {
            let mut patterns = Vec::new();
            for entry in &config.allowed_hosts {
                let pattern = OriginPattern::parse(entry).map_err(|detail| LoadError::AllowedHost {
                    plugin: name.to_string(),
                    entry: entry.clone(),
                    detail,
                })?;
                patterns.push(pattern);
            }
            // An explicitly listed private origin is the operator's decision.
            let allow_private = true;
            let timeout =
                config.effective_limits().cpu().max(std::time::Duration::from_millis(config.limits.http_timeout_ms));
            let client = guarded_client(allow_private, timeout).map_err(|e| other(e.to_string()))?;
            let runtime =
                self.runtime.clone().ok_or_else(|| other("delivery plugins need the async runtime".into()))?;
            Some(OutboundHttp::new(
                client,
                UrlGuard::new(patterns, allow_private),
                std::time::Duration::from_millis(config.limits.http_timeout_ms),
                config.limits.max_output_bytes,
                runtime,
            ))
        } else {
            None
        };
        Ok(PluginContext {
            name: Arc::from(name),
            config: config.plugin_values(),
            kv,
            http,
            commands: self.commands.clone(),
            log_budget: Default::default(),
        })
    }

    fn pool<W: World>(
        &self,
        component: &Component,
        ctx: Arc<PluginContext>,
        config: &PluginConfig,
        stats: Arc<PluginStats>,
        path: &Path,
        name: &str,
    ) -> Result<InstancePool<W>, LoadError> {
        let link = |e: wasmtime::Error| LoadError::Link {
            plugin: name.to_string(),
            path: path.to_path_buf(),
            detail: format!("{e:#}"),
        };
        let engine = self.engine.engine();
        let mut linker = Linker::new(engine);
        W::add_to_linker(&mut linker).map_err(link)?;
        let instance_pre = linker.instantiate_pre(component).map_err(link)?;
        let pre = W::pre(instance_pre).map_err(link)?;
        Ok(InstancePool::new(engine.clone(), pre, ctx, config.effective_limits(), stats))
    }
}
