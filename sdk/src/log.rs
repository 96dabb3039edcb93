//! Structured logging into the gateway's log. Lines are tagged with the plugin's name by
//! the gateway.
//!
//! Use the macros: [`info!`](crate::info), [`warn!`](crate::warn),
//! [`error!`](crate::error), [`debug!`](crate::debug), [`trace!`](crate::trace). They take
//! a `format!` message, optionally preceded by `key = value` fields and a semicolon
//! (the same shape as the `log` crate's key-values):
//!
//! ```
//! use biogate_sdk::prelude::*;
//!
//! let user = "42";
//! info!("plugin started");
//! warn!(user = user, window_seconds = 60; "dropped a duplicate punch of {user}");
//! # let lines = biogate_sdk::testing::logs();
//! # assert_eq!(lines[1].field("window_seconds"), Some("60"));
//! ```
//!
//! Field values are formatted with `Display`. Never log secrets: log lines are kept and
//! shipped by the operator.

/// Severity of a log line (the WIT `log.level`).
pub use crate::bindings::biogate::plugin::log::Level;

/// Writes one log line with structured fields. The macros call this; use it directly
/// when the fields are built at run time.
pub fn write(level: Level, message: &str, fields: &[(String, String)]) {
    crate::backend::log_write(level, message, fields);
}

/// Shared body of the logging macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        $crate::log::write(
            $level,
            &::std::format!($($arg)+),
            &[$((
                $crate::__private::ToString::to_string(::core::stringify!($key)),
                $crate::__private::ToString::to_string(&$value),
            )),+],
        )
    };
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+), &[])
    };
}

/// Logs at `error` level: something failed and an operator should look.
///
/// `error!("message {}", x)` or `error!(key = value, other = value; "message {}", x)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Error, $($arg)+) };
}

/// Logs at `warn` level: something unexpected that the plugin handled.
///
/// `warn!("message {}", x)` or `warn!(key = value, other = value; "message {}", x)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Warn, $($arg)+) };
}

/// Logs at `info` level: what the plugin did, in normal operation.
///
/// `info!("message {}", x)` or `info!(key = value, other = value; "message {}", x)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Info, $($arg)+) };
}

/// Logs at `debug` level: details for whoever is chasing a problem.
///
/// `debug!("message {}", x)` or `debug!(key = value, other = value; "message {}", x)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Debug, $($arg)+) };
}

/// Logs at `trace` level: very verbose details.
///
/// `trace!("message {}", x)` or `trace!(key = value, other = value; "message {}", x)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Trace, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use crate::log::Level;
    use crate::testing;

    #[test]
    fn macros_capture_message_and_fields() {
        let device = "D1";
        crate::info!("plain {}", 1);
        crate::warn!(device = device, n = 3; "with fields {}", "x");
        crate::error!(code = -10; "failed");
        crate::debug!("named {device}");
        let lines = testing::take_logs();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].level, Level::Info);
        assert_eq!(lines[0].message, "plain 1");
        assert!(lines[0].fields.is_empty());
        assert_eq!(lines[1].level, Level::Warn);
        assert_eq!(lines[1].message, "with fields x");
        assert_eq!(lines[1].field("device"), Some("D1"));
        assert_eq!(lines[1].field("n"), Some("3"));
        assert_eq!(lines[2].field("code"), Some("-10"));
        assert_eq!(lines[3].message, "named D1");
        assert!(testing::logs().is_empty());
    }
}
