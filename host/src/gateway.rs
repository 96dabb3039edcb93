//! Assembles a running gateway from its configuration: the store, the plugin runtime,
//! the loaded plugins and the routes' transform chains.
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;

use crate::config::LoadedConfig;
use crate::delivery::TransformChain;
use crate::plugin::{CompileCache, LoadedPlugin, PluginEngine, PluginRuntime};
use crate::store::Store;

/// Everything the gateway runs with.
pub struct Gateway {
    pub config: LoadedConfig,
    pub store: Store,
    pub runtime: PluginRuntime,
    /// Loaded plugins by name.
    pub plugins: BTreeMap<String, LoadedPlugin>,
    /// Each route's transform chain, by route name.
    pub chains: BTreeMap<String, TransformChain>,
}

impl Gateway {
    /// Opens the store and loads every plugin and route of the configuration.
    pub fn build(config: LoadedConfig) -> anyhow::Result<Arc<Gateway>> {
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let store = Store::open(&data_dir.join("store"))
            .with_context(|| format!("opening the store in {}", data_dir.display()))?;
        let engine = PluginEngine::new(config.config.engine.clone())
            .map_err(|e| anyhow::anyhow!("starting the Wasm engine: {e:#}"))?;
        let runtime = PluginRuntime::new(engine, CompileCache::new(data_dir.join("plugin-cache")), store.clone());

        let mut plugins = BTreeMap::new();
        for (name, plugin) in &config.config.plugins {
            let (loaded, _) = runtime.load(name, plugin, &config.base_dir)?;
            plugins.insert(name.clone(), loaded);
        }
        let mut chains = BTreeMap::new();
        for (name, route) in &config.config.routes {
            let steps = route
                .transforms
                .iter()
                .filter_map(|t| match plugins.get(t) {
                    Some(LoadedPlugin::Transform(p)) => Some(p.clone()),
                    _ => None,
                })
                .collect();
            chains.insert(name.clone(), TransformChain::new(steps));
        }
        Ok(Arc::new(Gateway { config, store, runtime, plugins, chains }))
    }
}
