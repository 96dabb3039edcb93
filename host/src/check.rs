//! `biogate check`: validates a config file the way `serve` would start it, without
//! touching anything `serve` owns: no store opened, no admin key written, no worker
//! started, so it runs beside a gateway that uses the same config and data folder.
//!
//! Every plugin is loaded (compiled into the user's cache folder, with a throw-away
//! key/value store) and started once under its configured limits: a limit it
//! cannot start within is reported with what it needs and the key to change; an import the
//! gateway cannot provide, or a delivery plugin that makes requests with no
//! `allowed_hosts`, fails the load as it would fail `serve`. Devices and routes are built
//! against the loaded plugins, as at a start.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::config::LoadedConfig;
use crate::plugin::{
    CompileCache, FaultKind, PluginConfig, PluginEngine, PluginFault, PluginKind, PluginRuntime, StartCost,
};
use crate::store::Store;

/// What a good config holds.
#[derive(Debug)]
pub struct Report {
    /// Each plugin with what its start took, by name.
    pub plugins: Vec<PluginReport>,
    /// Routes declared.
    pub routes: usize,
    /// Devices declared.
    pub devices: usize,
}

/// One plugin that started within its limits.
#[derive(Debug)]
pub struct PluginReport {
    pub name: String,
    pub kind: PluginKind,
    /// What its start took.
    pub start: StartCost,
    /// Its memory cap, in bytes.
    pub memory_cap: usize,
}

/// Where `check` and `plugin inspect` keep compiled plugins: outside any data folder, in
/// the user's own cache folder (`$XDG_CACHE_HOME/biogate/plugin-cache`, else
/// `~/.cache/biogate/plugin-cache`). Never a fixed path in a shared folder such as /tmp:
/// a compiled plugin is native code, loaded as it is found. Without a home, a new private
/// temporary folder (nothing is reused).
pub fn scratch_compile_cache() -> anyhow::Result<CompileCache> {
    let home_cache =
        std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|dir| !dir.is_empty()).map(|home| PathBuf::from(home).join(".cache"))
        });
    let dir = match home_cache {
        Some(cache) => cache.join("biogate").join("plugin-cache"),
        None => tempfile::tempdir().map(tempfile::TempDir::keep).context("creating a folder for compiled plugins")?,
    };
    Ok(CompileCache::new(dir))
}

/// Checks `loaded`. Must run inside a tokio runtime (delivery plugins get its handle).
pub fn check(loaded: &LoadedConfig) -> anyhow::Result<Report> {
    let config = &loaded.config;
    let scratch = Store::temporary().map_err(|e| anyhow!("opening a scratch store: {e}"))?;
    let engine = PluginEngine::new(config.engine.clone()).map_err(|e| anyhow!("starting the Wasm engine: {e:#}"))?;
    let runtime = PluginRuntime::new(engine, scratch_compile_cache()?, scratch.clone());

    let mut plugins = std::collections::BTreeMap::new();
    let mut reports = Vec::new();
    for (name, declared) in &config.plugins {
        let (plugin, _) = runtime.load(name, declared, &loaded.base_dir)?;
        let start = plugin.probe().map_err(|fault| start_failure(&runtime, name, declared, &loaded.base_dir, fault))?;
        let limits = declared.effective_limits();
        // The deadline fires on a 1 ms tick, so a start a little over the limit can slip
        // through; every later start (after a fault) could as well be cut. Over is over.
        if start.guest_time > limits.cpu() {
            return Err(cpu_too_small(name, limits.cpu(), start.guest_time));
        }
        let memory_cap = limits.memory_bytes();
        reports.push(PluginReport { name: name.clone(), kind: declared.kind, start, memory_cap });
        plugins.insert(name.clone(), plugin);
    }

    let route_names: Vec<String> = config.routes.keys().cloned().collect();
    for (id, declared) in &config.devices {
        declared.clone().apply(id, None, &route_names).map_err(|e| anyhow!("devices.{id}.{e}"))?;
    }
    let delivery_log = scratch.delivery_log().map_err(|e| anyhow!("opening a scratch store: {e}"))?;
    for (name, route) in &config.routes {
        route.build(name, &plugins, &delivery_log).with_context(|| format!("routes.{name}"))?;
    }
    Ok(Report { plugins: reports, routes: config.routes.len(), devices: config.devices.len() })
}

/// Says why a plugin could not start under its limits and, for a limit, what it needs:
/// the plugin is started again with the engine's largest memory and a minute of CPU, and
/// what that start took is the need.
fn start_failure(
    runtime: &PluginRuntime,
    name: &str,
    declared: &PluginConfig,
    base_dir: &Path,
    fault: PluginFault,
) -> anyhow::Error {
    let limits = declared.effective_limits();
    let engine_max_mib = runtime.engine().settings().max_memory_mib;
    let mut generous = declared.clone();
    generous.limits.memory_mib = Some(engine_max_mib);
    generous.limits.cpu_ms = Some(60_000);
    let need = runtime.load(name, &generous, base_dir).ok().and_then(|(p, _)| p.probe().ok());
    match (fault.kind, need) {
        (FaultKind::MemoryLimit, Some(need)) => {
            let mib = need.memory_bytes.div_ceil(1 << 20);
            anyhow!(
                "plugin {name:?} cannot start within its memory cap of {} MiB: it needs {mib} MiB to start. \
                 Set `plugins.{name}.limits.memory_mib` to at least {mib} (and more for its work).",
                limits.memory_bytes() >> 20
            )
        }
        (FaultKind::MemoryLimit, None) => anyhow!(
            "plugin {name:?} cannot start within {} MiB, nor within {engine_max_mib} MiB, the engine's maximum: \
             raise `engine.max_memory_mib` and `plugins.{name}.limits.memory_mib`, or make the plugin smaller ({})",
            limits.memory_bytes() >> 20,
            fault.detail
        ),
        (FaultKind::Deadline, Some(need)) => cpu_too_small(name, limits.cpu(), need.guest_time),
        _ => anyhow!("plugin {name:?} fails to start: {fault}"),
    }
}

fn cpu_too_small(name: &str, limit: Duration, start: Duration) -> anyhow::Error {
    anyhow!(
        "plugin {name:?} cannot start within its CPU limit of {} ms: its start takes {:.1} ms. \
         Set `plugins.{name}.limits.cpu_ms` to at least {}.",
        limit.as_millis(),
        start.as_secs_f64() * 1000.0,
        suggested_cpu_ms(start)
    )
}

/// A CPU limit with room over what a start took: twice it, rounded up, at least 2 ms.
fn suggested_cpu_ms(took: Duration) -> u64 {
    (took.as_micros() as u64 * 2).div_ceil(1000).max(2)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for plugin in &self.plugins {
            writeln!(
                f,
                "  plugin {} ({}): starts in {:.2} ms of CPU, with {:.1} MiB of its {} MiB",
                plugin.name,
                plugin.kind.world(),
                plugin.start.guest_time.as_secs_f64() * 1000.0,
                plugin.start.memory_bytes as f64 / f64::from(1 << 20),
                plugin.memory_cap >> 20
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggested_cpu_limit_leaves_room_over_the_measured_start() {
        assert_eq!(suggested_cpu_ms(Duration::from_micros(300)), 2);
        assert_eq!(suggested_cpu_ms(Duration::from_micros(7_400)), 15);
        assert_eq!(suggested_cpu_ms(Duration::from_millis(40)), 80);
    }
}
