//! The plugin sink (`type = "plugin"`): events handed to a delivery plugin (the `delivery`
//! world), which sends them wherever it was written for through the host's outbound HTTP.
//! Its settings, their check and its construction live here too.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Deserialize;

use super::{PostOutcome, PostReport, SinkContext};
use crate::field::SettingError;
use crate::plugin::bindings::types::Event;
use crate::plugin::{DeliveryOutcome, DeliveryPlugin, LoadedPlugin, PluginKind, expect_plugin};

/// `sink = { type = "plugin", plugin = "<name of a delivery plugin>" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSinkConfig {
    /// The delivery plugin, by its name in `[plugins]`.
    pub plugin: String,
}

impl PluginSinkConfig {
    /// Checks that the plugin is declared and is a delivery plugin.
    pub fn validate(&self, plugins: &crate::plugin::PluginConfigs) -> Result<(), SettingError> {
        expect_plugin(plugins, "plugin", &self.plugin, PluginKind::Delivery)
    }

    /// The sink of route `route`.
    pub fn build(&self, route: &str, ctx: &SinkContext<'_>) -> anyhow::Result<PluginSink> {
        match ctx.plugins.get(&self.plugin) {
            Some(LoadedPlugin::Delivery(plugin)) => Ok(PluginSink(plugin.clone())),
            _ => Err(anyhow!("routes.{route}.sink.plugin: {:?} is not a delivery plugin", self.plugin)),
        }
    }
}

/// A route's delivery plugin.
pub struct PluginSink(Arc<DeliveryPlugin>);

impl PluginSink {
    /// Hands one event to the plugin (on a blocking thread) and reports how it went.
    pub async fn send(&self, event: &Event) -> PostReport {
        let plugin = self.0.clone();
        let batch = vec![event.clone()];
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || plugin.deliver(&batch)).await;
        let (outcome, response) = match result {
            Ok(Ok(outcome)) => {
                let text = format!("{outcome:?}");
                (PostOutcome::from(outcome), text)
            }
            // A faulty delivery plugin is retried like a failing receiver.
            Ok(Err(fault)) => (PostOutcome::Retry { retry_after: None }, fault.to_string()),
            Err(join) => (PostOutcome::Retry { retry_after: None }, join.to_string()),
        };
        PostReport { outcome, status: None, duration: started.elapsed(), response }
    }
}

/// A delivery plugin's answer, in the terms of the callback sink.
impl From<DeliveryOutcome> for PostOutcome {
    fn from(outcome: DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Delivered => PostOutcome::Delivered,
            DeliveryOutcome::Reject(_) => PostOutcome::Abort,
            DeliveryOutcome::Retry { retry_after_ms, .. } => {
                PostOutcome::Retry { retry_after: retry_after_ms.map(Duration::from_millis) }
            }
        }
    }
}
