//! Transform plugins: change, drop, split, reject or retry events on their way to a
//! route's sink.
//!
//! Implement [`Transform`] on a unit struct and export it with
//! [`export_transform!`](crate::export_transform):
//!
//! ```
//! use biogate_sdk::prelude::*;
//!
//! /// Drops punches made with a password (only biometrics count).
//! struct BiometricOnly;
//!
//! impl Transform for BiometricOnly {
//!     fn transform(event: Event) -> Result<Vec<Event>, TransformError> {
//!         match event.punch() {
//!             Some(punch) if punch.input_type == InputType::Password => Ok(vec![]),
//!             _ => Ok(vec![event]),
//!         }
//!     }
//! }
//!
//! export_transform!(BiometricOnly);
//! ```

use crate::config::ConfigError;
use crate::kv::KvError;
use crate::prelude::Event;

/// Why an event did not pass: `Reject` dead-letters it with the reason, `Retry` makes the
/// gateway try the same event again later (keeping the device's order).
pub use crate::bindings::exports::biogate::plugin::transformer::TransformError;

/// A transform plugin.
pub trait Transform {
    /// Transforms one event. Return it (changed or not) to pass it on, an empty list to
    /// drop it, or several events to split it; or an error to reject or retry it.
    ///
    /// The same event may be transformed more than once (after a failed delivery, or in
    /// a replay), so the result should depend on the event and the plugin's state, not
    /// on the wall clock, and the plugin should recognise an event it has already seen
    /// (its `id` is stable).
    fn transform(event: Event) -> Result<Vec<Event>, TransformError>;
}

impl TransformError {
    /// The event must never be delivered: dead-letter it with `reason`.
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }

    /// The event cannot be handled now: retry it later.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry(reason.into())
    }
}

/// A bad or missing config value means retry: the events wait (in order) until the
/// operator fixes the configuration, instead of being dead-lettered by a typo.
impl From<ConfigError> for TransformError {
    fn from(err: ConfigError) -> Self {
        Self::Retry(err.to_string())
    }
}

/// A store failure means retry; a key or value over the limit, or undecodable stored
/// data, will not improve with time and rejects the event.
impl From<KvError> for TransformError {
    fn from(err: KvError) -> Self {
        match err {
            KvError::Storage(_) => Self::Retry(err.to_string()),
            KvError::TooLarge(_) | KvError::NotUtf8 { .. } => Self::Reject(err.to_string()),
        }
    }
}

/// Exports a type implementing [`Transform`] as the component's
/// `biogate:plugin/transformer` interface. Use it once, at the crate's top level, with
/// the name of a type declared in the crate.
#[macro_export]
macro_rules! export_transform {
    ($ty:ident) => {
        impl $crate::bindings::exports::biogate::plugin::transformer::Guest for $ty {
            fn transform(
                event: $crate::prelude::Event,
            ) -> ::core::result::Result<
                $crate::__private::Vec<$crate::prelude::Event>,
                $crate::prelude::TransformError,
            > {
                <$ty as $crate::transform::Transform>::transform(event)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use crate::bindings::exports::biogate::plugin::transformer::Guest;
    use crate::prelude::*;

    struct Split;

    impl Transform for Split {
        fn transform(event: Event) -> Result<Vec<Event>, TransformError> {
            if event.user_id() == Some("bad") {
                return Err(TransformError::reject("bad user"));
            }
            let copies: usize = config::get_or("copies", 2)?;
            Ok(vec![event; copies])
        }
    }

    crate::export_transform!(Split);

    #[test]
    fn exported_guest_calls_the_trait() {
        let event = testing::punch_event("D1", "7", 0, PunchType::CheckIn);
        assert_eq!(<Split as Guest>::transform(event.clone()).unwrap().len(), 2);
        let bad = testing::punch_event("D1", "bad", 0, PunchType::CheckIn);
        assert_eq!(<Split as Guest>::transform(bad), Err(TransformError::Reject("bad user".into())));
        testing::set_config(&[("copies", "many")]);
        assert!(matches!(<Split as Guest>::transform(event), Err(TransformError::Retry(_))));
    }

    #[test]
    fn kv_errors_map_to_retry_or_reject() {
        let retry: TransformError = KvError::Storage("down".into()).into();
        assert!(matches!(retry, TransformError::Retry(_)));
        let reject: TransformError = KvError::TooLarge(512).into();
        assert!(matches!(reject, TransformError::Reject(_)));
    }
}
