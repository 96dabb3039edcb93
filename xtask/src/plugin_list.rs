//! The plugins of the plugins/ workspace, read with `cargo metadata`.
//!
//! Plugins are grouped by the SDK world feature they enable (`transform`, `delivery`,
//! `dialect`): the features are mutually exclusive, and cargo unifies the features of
//! every package built in one invocation, so each group is built (and tested) by its own
//! cargo command.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;
use crate::paths::Paths;
use crate::toolchain;

/// A plugin crate of the plugins/ workspace.
pub struct Plugin {
    /// The package name, which names the component (`dedupe-window`).
    pub package: String,
    /// The library target's name, which names cargo's output (`dedupe_window`).
    pub lib_name: String,
    /// The biogate-sdk features it enables (its world), comma-separated.
    pub world: String,
    /// Whether its library has unit tests to run natively (`test = false` turns it off).
    pub has_tests: bool,
}

/// The workspace members that build a cdylib.
pub fn list(paths: &Paths) -> Result<Vec<Plugin>> {
    let json = cmd::stdout(
        Command::new(toolchain::outer_cargo())
            .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
            .arg(paths.plugins_manifest()),
    )
    .context("cannot list the plugins")?;
    let metadata: Value = serde_json::from_str(&json).context("cargo metadata printed invalid JSON")?;
    let packages = metadata["packages"].as_array().context("cargo metadata has no `packages`")?;
    let plugins: Vec<Plugin> = packages.iter().filter_map(plugin_of).collect();
    if plugins.is_empty() {
        bail!("no cdylib crate in {}", paths.plugins_manifest().display());
    }
    Ok(plugins)
}

/// The plugins grouped by world, each group buildable by one cargo command.
pub fn by_world<'a>(plugins: impl IntoIterator<Item = &'a Plugin>) -> Vec<Vec<&'a Plugin>> {
    let mut groups: BTreeMap<&str, Vec<&Plugin>> = BTreeMap::new();
    for plugin in plugins {
        groups.entry(plugin.world.as_str()).or_default().push(plugin);
    }
    groups.into_values().collect()
}

/// `-p <package>` for each plugin of a group.
pub fn package_args(group: &[&Plugin]) -> Vec<String> {
    group.iter().flat_map(|plugin| ["-p".to_owned(), plugin.package.clone()]).collect()
}

fn plugin_of(package: &Value) -> Option<Plugin> {
    let lib = package["targets"]
        .as_array()?
        .iter()
        .find(|target| target["crate_types"].as_array().is_some_and(|types| types.iter().any(|t| t == "cdylib")))?;
    let name = package["name"].as_str()?;
    Some(Plugin {
        package: name.to_owned(),
        lib_name: lib["name"].as_str()?.replace('-', "_"),
        world: sdk_features(package).unwrap_or_else(|| format!("(no biogate-sdk: {name})")),
        has_tests: lib["test"].as_bool().unwrap_or(true),
    })
}

fn sdk_features(package: &Value) -> Option<String> {
    let sdk = package["dependencies"].as_array()?.iter().find(|dep| dep["name"] == "biogate-sdk")?;
    let mut features: Vec<&str> = sdk["features"].as_array()?.iter().filter_map(Value::as_str).collect();
    features.sort_unstable();
    Some(features.join(","))
}
