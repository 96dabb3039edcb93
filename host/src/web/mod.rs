//! What the HTTP handlers of both sides share: the handler state ([`AppState`]), the error
//! reply ([`ApiError`], one JSON shape with the stable Cams `Status`/`StatusCode`) and the
//! JSON body and query-string extractors ([`ApiJson`], [`ApiQuery`]). `api` (clients)
//! and `ingress` (devices) build on it; it depends on neither.
pub mod error;
pub mod json;
pub mod query;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::gateway::Gateway;

pub use error::{ApiError, CamsStatus, ErrorBody};
pub use json::ApiJson;
pub use query::ApiQuery;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub metrics: Option<PrometheusHandle>,
    /// The MQTT link's health, when `[mqtt]` is configured.
    pub mqtt: Option<LinkState>,
}

/// Whether the gateway is connected to the MQTT broker with every device topic
/// subscribed: until then a device's punch may be held by the broker but is not yet
/// received. Set by the MQTT ingress; shown by `/health` and the `biogate_mqtt_subscribed`
/// gauge.
#[derive(Clone, Default)]
pub struct LinkState(Arc<AtomicBool>);

impl LinkState {
    /// True once the broker acknowledged every subscription of the current connection.
    pub fn subscribed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Records whether the subscriptions are in place.
    pub fn set_subscribed(&self, subscribed: bool) {
        self.0.store(subscribed, Ordering::Relaxed);
        metrics::gauge!("biogate_mqtt_subscribed").set(if subscribed { 1.0 } else { 0.0 });
    }
}
