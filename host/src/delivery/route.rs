//! A route: how the operator declares it (`[routes.<name>]`: which devices, which
//! transform plugins in which order, which sink, how to retry, where it starts), the checks of those
//! settings, and the route built from them, ready for its workers ([`RouteRuntime`]).
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use serde::Deserialize;

use super::receiver_health::ReceiverHealth;
use super::sinks::{Sink, SinkConfig, SinkContext};
use super::{RetrySchedule, TransformChain};
use crate::cams::CallbackFormat;
use crate::field::SettingError;
use crate::plugin::{LoadedPlugin, PluginConfigs, PluginKind, expect_plugin};
use crate::store::{DeliveryLog, Device};

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Device ids this route takes events from; `["*"]` (the default) means every device.
    #[serde(default = "every_device")]
    pub devices: Vec<String>,
    /// Transform plugins applied in order before the sink.
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Where the events go.
    pub sink: SinkConfig,
    /// Waits between attempts (`["5s", "5m", ...]`); default: Standard Webhooks' schedule.
    #[serde(default)]
    pub retry_schedule: Option<Vec<String>>,
    /// Time limit of one callback request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Allow callback URLs on private, loopback and link-local addresses (off by default:
    /// server-side request forgery protection).
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Where the route starts on a device that already has history when the route is
    /// first attached to it: `"now"` (the default: only events stored from then on) or
    /// `"oldest"` (the retained journal first). See [`super::start`].
    #[serde(default)]
    pub start: StartAt,
    /// A Cams `Resend.PunchLog` reaches this route as the contract's historical batch
    /// `{"PunchLog":{"ReturnRowCount","Log":[..]}}`, at most this many punches per body;
    /// 0 (the default): one `RealTime` callback per punch. Callback sinks in the `cams-v3`
    /// format without transforms only.
    #[serde(default)]
    pub resend_batch: usize,
}

/// Most punches in one `resend_batch` body.
pub const MAX_RESEND_BATCH: usize = 1000;

/// Where a route starts on a device it was just attached to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// After the device's last stored event: only new events.
    #[default]
    Now,
    /// At the oldest event still in the journal (a backfill).
    Oldest,
}

fn default_timeout_ms() -> u64 {
    15_000
}

fn every_device() -> Vec<String> {
    vec!["*".into()]
}

impl RouteConfig {
    /// Whether the route takes events of `device_id`.
    pub fn matches_device(&self, device_id: &str) -> bool {
        self.devices.iter().any(|d| d == "*" || d == device_id)
    }
}

impl RouteConfig {
    /// Checks the settings: transforms and sink plugins declared and of the right kind,
    /// the sink's own settings, the retry schedule, a device list. Keys are relative to
    /// the route's table.
    pub fn validate(&self, plugins: &PluginConfigs) -> Result<(), SettingError> {
        for (i, transform) in self.transforms.iter().enumerate() {
            expect_plugin(plugins, &format!("transforms[{i}]"), transform, PluginKind::Transform)?;
        }
        self.sink.validate(plugins).map_err(|e| e.within("sink"))?;
        if let Some(schedule) = &self.retry_schedule
            && let Err(problem) = RetrySchedule::parse(schedule)
        {
            return Err(SettingError::new("retry_schedule", problem, "write durations such as \"5s\", \"5m\", \"2h\""));
        }
        if self.resend_batch > 0 {
            let fix = "remove resend_batch, or use a callback sink in the cams-v3 format without transforms";
            if self.resend_batch > MAX_RESEND_BATCH {
                return Err(SettingError::new(
                    "resend_batch",
                    format!("{} is more than {MAX_RESEND_BATCH} punches per body", self.resend_batch),
                    format!("write 1 to {MAX_RESEND_BATCH}, or 0 for one callback per punch"),
                ));
            }
            match &self.sink {
                SinkConfig::Callback(c) if c.format == CallbackFormat::CamsV3 => {}
                _ => {
                    return Err(SettingError::new(
                        "resend_batch",
                        "the PunchLog batch is a Cams v3 callback body",
                        fix,
                    ));
                }
            }
            if !self.transforms.is_empty() {
                return Err(SettingError::new(
                    "resend_batch",
                    "a batch is sent as stored: transforms would be skipped",
                    fix,
                ));
            }
        }
        if self.devices.is_empty() {
            return Err(SettingError::new(
                "devices",
                "the list is empty",
                "list device ids, or [\"*\"] for every device",
            ));
        }
        Ok(())
    }

    /// The route `name` ready to run, with the loaded `plugins`.
    pub fn build(
        &self,
        name: &str,
        plugins: &BTreeMap<String, LoadedPlugin>,
        delivery_log: &DeliveryLog,
    ) -> anyhow::Result<RouteRuntime> {
        let steps = self
            .transforms
            .iter()
            .filter_map(|t| match plugins.get(t) {
                Some(LoadedPlugin::Transform(p)) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let sink = self.sink.build(
            name,
            &SinkContext {
                plugins,
                delivery_log,
                timeout: Duration::from_millis(self.timeout_ms),
                allow_private_networks: self.allow_private_networks,
            },
        )?;
        let schedule = match &self.retry_schedule {
            Some(items) => RetrySchedule::parse(items).map_err(|e| anyhow!("routes.{name}.retry_schedule: {e}"))?,
            None => RetrySchedule::default(),
        };
        Ok(RouteRuntime {
            name: name.to_string(),
            config: self.clone(),
            chain: TransformChain::new(steps),
            sink,
            schedule,
            health: ReceiverHealth::default(),
            delivered: metrics::counter!("biogate_deliveries_total", "route" => name.to_string()),
            dead_lettered: metrics::counter!("biogate_dead_letters_total", "route" => name.to_string()),
        })
    }
}

/// A route ready to run: its transform chain, sink and retry schedule, and what its
/// workers know together about its receiver.
pub struct RouteRuntime {
    pub name: String,
    pub config: RouteConfig,
    pub chain: TransformChain,
    pub sink: Sink,
    pub schedule: RetrySchedule,
    pub health: ReceiverHealth,
    /// `biogate_deliveries_total{route}`.
    pub delivered: metrics::Counter,
    /// `biogate_dead_letters_total{route}`.
    pub dead_lettered: metrics::Counter,
}

impl RouteRuntime {
    /// Punches per `Resend.PunchLog` batch body; 0: no batches (also for sinks that are not
    /// Cams v3 callbacks, which validation refuses anyway).
    pub fn resend_batch(&self) -> usize {
        match self.sink.callback() {
            Some(sink) if sink.format() == CallbackFormat::CamsV3 && self.chain.is_empty() => {
                self.config.resend_batch.min(MAX_RESEND_BATCH)
            }
            _ => 0,
        }
    }

    /// Whether this route takes `device`'s events.
    pub fn applies_to(&self, device: &Device) -> bool {
        match &device.routes {
            Some(routes) => routes.iter().any(|r| r == &self.name),
            None => self.config.matches_device(&device.id),
        }
    }
}
