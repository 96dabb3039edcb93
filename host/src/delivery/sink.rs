//! A route's sink: the callback URL, or a delivery plugin.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::callback::{CallbackSink, PostOutcome, PostReport};
use super::cams_format::CallbackDevice;
use crate::crypto::BodyCipher;
use crate::plugin::bindings::types::Event;
use crate::plugin::{DeliveryOutcome, DeliveryPlugin};

/// Where a route's events go.
pub enum Sink {
    Callback(CallbackSink),
    Plugin(Arc<DeliveryPlugin>),
}

impl Sink {
    /// Sends one event and reports how it went.
    pub async fn send(&self, event: &Event, device: &CallbackDevice, cipher: Option<&BodyCipher>) -> PostReport {
        match self {
            Sink::Callback(sink) => sink.post(event, device, cipher).await,
            Sink::Plugin(plugin) => {
                let plugin = plugin.clone();
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
