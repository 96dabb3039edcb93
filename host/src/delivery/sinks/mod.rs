//! Sinks: where a route's events go. Each kind lives in its own file with its settings,
//! their checks, its construction and its sending (`callback`, `plugin`); this file
//! registers the kinds: a new sink is a new file and one variant in [`SinkConfig`] and
//! [`Sink`].
mod callback;
mod plugin;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use callback::{CallbackSink, CallbackSinkConfig};
pub use plugin::{PluginSink, PluginSinkConfig};

use crate::cams::CallbackDevice;
use crate::crypto::BodyCipher;
use crate::field::SettingError;
use crate::plugin::bindings::types::Event;
use crate::plugin::{LoadedPlugin, PluginConfigs};
use crate::store::DeliveryLog;

/// A route's `sink = { type = "...", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SinkConfig {
    /// HTTP POST to the customer's callback URL.
    Callback(CallbackSinkConfig),
    /// A delivery plugin.
    Plugin(PluginSinkConfig),
}

/// What building a sink may use.
pub struct SinkContext<'a> {
    /// The loaded plugins, by name.
    pub plugins: &'a BTreeMap<String, LoadedPlugin>,
    /// Where generated signing secrets are kept.
    pub delivery_log: &'a DeliveryLog,
    /// Time limit of one request to a receiver.
    pub timeout: Duration,
    /// Whether receivers may be on private, loopback and link-local addresses.
    pub allow_private_networks: bool,
}

impl SinkConfig {
    /// Checks the settings; keys are relative to the sink's table.
    pub fn validate(&self, plugins: &PluginConfigs) -> Result<(), SettingError> {
        match self {
            SinkConfig::Callback(sink) => sink.validate(),
            SinkConfig::Plugin(sink) => sink.validate(plugins),
        }
    }

    /// The sink of route `route`.
    pub fn build(&self, route: &str, ctx: &SinkContext<'_>) -> anyhow::Result<Sink> {
        Ok(match self {
            SinkConfig::Callback(sink) => Sink::Callback(sink.build(route, ctx)?),
            SinkConfig::Plugin(sink) => Sink::Plugin(sink.build(route, ctx)?),
        })
    }
}

/// A route's sink, ready to send.
pub enum Sink {
    Callback(CallbackSink),
    Plugin(PluginSink),
}

impl Sink {
    /// Sends one event and reports how it went. `cipher` encrypts callback bodies for
    /// devices in encrypted mode.
    pub async fn send(&self, event: &Event, device: &CallbackDevice, cipher: Option<&BodyCipher>) -> PostReport {
        match self {
            Sink::Callback(sink) => sink.post(event, device, cipher).await,
            Sink::Plugin(sink) => sink.send(event).await,
        }
    }

    /// The callback sink, if this is one.
    pub fn callback(&self) -> Option<&CallbackSink> {
        match self {
            Sink::Callback(sink) => Some(sink),
            Sink::Plugin(_) => None,
        }
    }

    /// The signing secret receivers verify with, when the sink signs.
    pub fn signing_secret(&self) -> Option<String> {
        match self {
            Sink::Callback(sink) => Some(sink.secret()),
            Sink::Plugin(_) => None,
        }
    }
}

/// What one send came to.
#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver wants no more; the route is disabled.
    Gone,
    /// The receiver asked to stop retrying this message (`webhook-delivery: abort-message`).
    Abort,
    /// Try again (timeout, connection error, 429, 5xx, any other status).
    Retry { retry_after: Option<Duration> },
    /// The event has no body in this route's format; nothing to send.
    Skipped,
}

/// The record of one send, for the attempt log.
#[derive(Debug, Clone)]
pub struct PostReport {
    pub outcome: PostOutcome,
    pub status: Option<u16>,
    pub duration: Duration,
    pub response: String,
}
