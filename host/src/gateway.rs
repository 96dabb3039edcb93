//! Assembles a running gateway from its configuration: the store (journal, registry,
//! delivery bookkeeping), the plugin runtime and plugins, the routes and their workers,
//! the command queue and the ingest step. Each part builds itself from its own settings;
//! this file only puts them together.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::watch;

use crate::config::LoadedConfig;
use crate::delivery::{Dispatcher, TransformChain, WorkerContext};
use crate::ingest::Ingest;
use crate::operations::{LateCommands, OperationService};
use crate::plugin::{CompileCache, DialectMount, LoadedPlugin, PluginEngine, PluginRuntime};
use crate::store::{DeliveryLog, DiskReserve, Journal, Registry, Store};

/// Everything the gateway runs with.
pub struct Gateway {
    pub config: LoadedConfig,
    pub store: Store,
    pub journal: Journal,
    pub registry: Registry,
    pub delivery_log: DeliveryLog,
    pub runtime: PluginRuntime,
    /// Loaded plugins by name.
    pub plugins: BTreeMap<String, LoadedPlugin>,
    /// Each route's transform chain, by route name.
    pub chains: BTreeMap<String, TransformChain>,
    pub dispatcher: Arc<Dispatcher>,
    /// The command queue and operation records.
    pub operations: Arc<OperationService>,
    /// Where device transports hand their events.
    pub ingest: Ingest,
    /// Dialect plugins mounted on HTTP paths.
    pub dialects: Vec<DialectMount>,
    /// Admin API keys.
    pub admin_keys: Vec<String>,
    /// Each route's signing secret (`whsec_...`), for the operator.
    pub route_secrets: BTreeMap<String, String>,
    shutdown: watch::Sender<bool>,
}

impl Gateway {
    /// Opens the store, loads plugins, devices and routes, and starts the delivery
    /// workers. Must run inside a tokio runtime.
    pub fn build(config: LoadedConfig) -> anyhow::Result<Arc<Gateway>> {
        let data_dir = config.data_dir();
        // Before anything is created or opened: sled recovering on a full disk leaves
        // a store that no longer opens (docs/storage.md).
        let reserve = DiskReserve::at_start(&data_dir, &config.config.storage)?;
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let cache_bytes = config.config.journal.cache_mb.saturating_mul(1024 * 1024);
        let store = Store::open_with_cache(&data_dir.join("store"), cache_bytes, reserve.clone())
            .with_context(|| format!("opening the store in {}", data_dir.display()))?;
        let journal = store.journal()?;
        let registry = store.registry()?;
        let delivery_log = store.delivery_log()?;

        let engine =
            PluginEngine::new(config.config.engine.clone()).map_err(|e| anyhow!("starting the Wasm engine: {e:#}"))?;
        let commands = Arc::new(LateCommands::default());
        let runtime = PluginRuntime::new(engine, CompileCache::new(data_dir.join("plugin-cache")), store.clone())
            .with_commands(commands.clone());
        let mut plugins = BTreeMap::new();
        for (name, plugin) in &config.config.plugins {
            let (loaded, _) = runtime.load(name, plugin, &config.base_dir)?;
            plugins.insert(name.clone(), loaded);
        }

        let route_names: Vec<String> = config.config.routes.keys().cloned().collect();
        for (id, declared) in &config.config.devices {
            let changes = declared.clone();
            let current = registry.get(id);
            let device =
                changes.apply(id, current.as_deref(), &route_names).map_err(|e| anyhow!("devices.{id}.{e}"))?;
            if current.as_deref() != Some(&device) {
                registry.put(device)?;
            }
        }

        let mut routes = Vec::new();
        for (name, route) in &config.config.routes {
            routes.push(Arc::new(route.build(name, &plugins, &delivery_log)?));
        }
        let chains = routes.iter().map(|r| (r.name.clone(), r.chain.clone())).collect();
        let route_secrets = routes.iter().filter_map(|r| Some((r.name.clone(), r.sink.signing_secret()?))).collect();

        let dialects = config
            .config
            .plugins
            .iter()
            .filter_map(|(name, declared)| match (plugins.get(name), declared.dialect_mount()) {
                (Some(LoadedPlugin::Dialect(p)), Some(mount)) => {
                    Some(DialectMount { prefix: mount.to_ascii_lowercase(), plugin: p.clone() })
                }
                _ => None,
            })
            .collect();
        let admin_keys = admin_keys(&config, &data_dir)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(WorkerContext {
            journal: journal.clone(),
            log: delivery_log.clone(),
            registry: registry.clone(),
            shutdown: shutdown_rx,
        });
        let dispatcher = Arc::new(Dispatcher::new(ctx, routes));
        dispatcher.start_existing()?;
        let operations = Arc::new(OperationService::new(
            store.operations()?,
            store.users()?,
            journal.clone(),
            registry.clone(),
            delivery_log.clone(),
            dispatcher.clone(),
            config.config.operations.clone(),
        ));
        commands.bind(&operations);
        let ingest = Ingest::new(journal.clone(), dispatcher.clone(), operations.clone(), reserve.clone());
        tokio::spawn(reserve.watch(Duration::from_secs(1), shutdown.subscribe()));
        tokio::spawn(operations.clone().run_expiry(shutdown.subscribe()));
        let retention = Duration::from_secs(u64::from(config.config.journal.retention_days) * 86_400);
        tokio::spawn(crate::delivery::retention::run(dispatcher.clone(), retention));
        Ok(Arc::new(Gateway {
            config,
            store,
            journal,
            registry,
            delivery_log,
            runtime,
            plugins,
            chains,
            dispatcher,
            operations,
            ingest,
            dialects,
            admin_keys,
            route_secrets,
            shutdown,
        }))
    }

    /// A receiver that changes when the gateway shuts down (for background tasks).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops the delivery workers (they finish the attempt in flight).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The configured admin keys, or the one kept in `<data_dir>/admin-api-key` (generated
/// on first start, readable by the owner only).
fn admin_keys(config: &LoadedConfig, data_dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    if !config.config.admin.api_keys.is_empty() {
        return Ok(config.config.admin.api_keys.clone());
    }
    let path = data_dir.join("admin-api-key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(vec![text.trim().to_string()]);
    }
    let key = format!("bgk_{}", crate::store::generate_token());
    std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    tracing::info!(path = %path.display(), "generated an admin API key");
    Ok(vec![key])
}
