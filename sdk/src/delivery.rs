//! Delivery plugins: custom sinks that send batches of events somewhere, using the
//! gateway's outbound HTTP ([`crate::http`]).
//!
//! ```
//! use biogate_sdk::prelude::*;
//! use biogate_sdk::http::{self, Request};
//!
//! struct Ping;
//!
//! impl Delivery for Ping {
//!     fn deliver(batch: Vec<Event>) -> Result<(), DeliveryError> {
//!         let url: String = config::require("url")?;
//!         let body = batch.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join("\n");
//!         let response = http::send(&Request::new("POST", url).with_body(body))?;
//!         DeliveryError::check_response(&response)
//!     }
//! }
//!
//! export_delivery!(Ping);
//! ```

use crate::config::ConfigError;
use crate::http::{HttpError, Response};
use crate::kv::KvError;
use crate::prelude::Event;

/// Why a batch was not delivered: `Reject` dead-letters its events, `Retry` makes the
/// gateway send the same batch again later, with backoff.
pub use crate::bindings::exports::biogate::plugin::deliverer::{DeliveryError, RetryInfo};

/// A delivery plugin.
pub trait Delivery {
    /// Delivers a batch of events of one device, in journal order. `Ok` means every
    /// event was accepted by the destination. The same batch may be delivered again after
    /// an error or a crash, so destinations should de-duplicate on the event `id`.
    fn deliver(batch: Vec<Event>) -> Result<(), DeliveryError>;
}

impl DeliveryError {
    /// The batch can never be delivered: dead-letter its events with `reason`.
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }

    /// Delivery failed for now: retry with the gateway's backoff.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry(RetryInfo { reason: reason.into(), retry_after_ms: None })
    }

    /// Delivery failed for now: retry no sooner than `retry_after_ms` from now.
    pub fn retry_after(reason: impl Into<String>, retry_after_ms: u64) -> Self {
        Self::Retry(RetryInfo { reason: reason.into(), retry_after_ms: Some(retry_after_ms) })
    }

    /// `Ok` for a 2xx response; otherwise a retry, honouring a `Retry-After` header given
    /// in seconds. Plugins that know their destination better (e.g. that a 422 will never
    /// succeed) should decide to reject themselves.
    pub fn check_response(response: &Response) -> Result<(), DeliveryError> {
        if response.is_success() {
            return Ok(());
        }
        let reason = format!("destination answered HTTP {}", response.status);
        let after = response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        Err(match after {
            Some(seconds) => Self::retry_after(reason, seconds.saturating_mul(1000)),
            None => Self::retry(reason),
        })
    }
}

/// A bad or missing config value means retry (the batch waits for the operator's fix).
impl From<ConfigError> for DeliveryError {
    fn from(err: ConfigError) -> Self {
        Self::retry(err.to_string())
    }
}

/// A store failure means retry; a value over the limit or undecodable data rejects.
impl From<KvError> for DeliveryError {
    fn from(err: KvError) -> Self {
        match err {
            KvError::Storage(_) => Self::retry(err.to_string()),
            KvError::TooLarge(_) | KvError::NotUtf8 { .. } => Self::reject(err.to_string()),
        }
    }
}

/// An invalid request is the plugin's bug and rejects the batch; every other outbound
/// failure (denied by the allowlist, timeout, connection) retries.
impl From<HttpError> for DeliveryError {
    fn from(err: HttpError) -> Self {
        let reason = format!("outbound HTTP failed: {err:?}");
        match err {
            HttpError::InvalidRequest(_) => Self::reject(reason),
            HttpError::Denied(_) | HttpError::Timeout | HttpError::Connection(_) => Self::retry(reason),
        }
    }
}

/// Exports a type implementing [`Delivery`] as the component's `biogate:plugin/deliverer`
/// interface. Use it once, at the crate's top level, with the name of a type declared in
/// the crate.
#[macro_export]
macro_rules! export_delivery {
    ($ty:ident) => {
        impl $crate::bindings::exports::biogate::plugin::deliverer::Guest for $ty {
            fn deliver(
                batch: $crate::__private::Vec<$crate::prelude::Event>,
            ) -> ::core::result::Result<(), $crate::prelude::DeliveryError> {
                <$ty as $crate::delivery::Delivery>::deliver(batch)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::exports::biogate::plugin::deliverer::Guest;
    use crate::http::{self, Request};
    use crate::prelude::*;

    struct Post;

    impl Delivery for Post {
        fn deliver(batch: Vec<Event>) -> Result<(), DeliveryError> {
            let url: String = config::require("url")?;
            let response = http::send(&Request::new("POST", url).with_body(batch[0].id.clone()))?;
            DeliveryError::check_response(&response)
        }
    }

    crate::export_delivery!(Post);

    fn answer(status: u16, headers: Vec<(String, String)>) -> Response {
        Response { status, headers, body: Vec::new() }
    }

    #[test]
    fn delivery_maps_http_outcomes() {
        let batch = vec![testing::punch_event("D1", "7", 0, PunchType::CheckIn)];
        assert!(matches!(<Post as Guest>::deliver(batch.clone()), Err(DeliveryError::Retry(_))));
        testing::set_config(&[("url", "https://hr.example/in")]);
        testing::set_http_handler(|_| Ok(answer(200, vec![])));
        assert_eq!(<Post as Guest>::deliver(batch.clone()), Ok(()));
        testing::set_http_handler(|_| Ok(answer(503, vec![("Retry-After".into(), "7".into())])));
        assert_eq!(
            <Post as Guest>::deliver(batch.clone()),
            Err(DeliveryError::retry_after("destination answered HTTP 503", 7000))
        );
        testing::set_http_handler(|_| Err(HttpError::InvalidRequest("bad url".into())));
        assert!(matches!(<Post as Guest>::deliver(batch), Err(DeliveryError::Reject(_))));
        assert_eq!(testing::http_requests().len(), 3);
    }
}
