//! An in-memory stand-in for the gateway, so that plugin logic runs under plain
//! `cargo test` on the developer's machine (native builds only; absent on `wasm32`).
//!
//! Every host service the SDK offers (config, key/value store, clock, logging, outbound
//! HTTP, pending commands) is answered from per-thread state here. `cargo test` runs each
//! test on its own thread, so tests do not see each other's state; call [`reset`] to start
//! over within a test.
//!
//! ```
//! use biogate_sdk::testing;
//!
//! testing::set_config(&[("window_seconds", "30")]);
//! testing::set_now_ms(1_700_000_000_000);
//! assert_eq!(biogate_sdk::config::get_or("window_seconds", 60u32), Ok(30));
//! assert_eq!(biogate_sdk::now_ms(), 1_700_000_000_000);
//! ```

mod events;
pub(crate) mod state;

use std::collections::BTreeMap;
use std::fmt;

pub use events::{punch_event, user_update_event};

use crate::kv::KvError;
use crate::log::Level;

/// Forgets everything this thread's fake host holds: config, kv, clock, logs, injected
/// failures, HTTP handler and requests, pending commands.
pub fn reset() {
    state::with(|s| *s = state::State::default());
}

/// Replaces the plugin's configuration with these key/value pairs.
pub fn set_config(pairs: &[(&str, &str)]) {
    state::with(|s| {
        s.config = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    });
}

/// Sets (or replaces) one configuration value, keeping the others.
pub fn set_config_value(key: &str, value: &str) {
    state::with(|s| {
        s.config.insert(key.to_owned(), value.to_owned());
    });
}

/// Freezes the gateway clock at `ms` milliseconds since the Unix epoch. Until a test
/// calls this, [`crate::now_ms`] returns the real time.
pub fn set_now_ms(ms: u64) {
    state::with(|s| s.now_ms = Some(ms));
}

/// Moves the frozen clock forward by `ms` (starting from the real time if it was not
/// frozen yet).
pub fn advance_ms(ms: u64) {
    let now = crate::now_ms();
    state::with(|s| s.now_ms = Some(now.saturating_add(ms)));
}

/// A copy of the plugin's key/value store.
pub fn kv_entries() -> BTreeMap<String, Vec<u8>> {
    state::with(|s| s.kv.clone())
}

/// Puts a value in the key/value store directly, as if an earlier call had stored it.
pub fn kv_insert(key: &str, value: impl AsRef<[u8]>) {
    state::with(|s| {
        s.kv.insert(key.to_owned(), value.as_ref().to_vec());
    });
}

/// Makes every key/value call fail with `failure` (`None` restores normal behaviour), to
/// test how the plugin copes with a store outage.
pub fn set_kv_failure(failure: Option<KvError>) {
    state::with(|s| s.kv_failure = failure);
}

/// Every log line written so far on this thread, oldest first.
pub fn logs() -> Vec<LogRecord> {
    state::with(|s| s.logs.clone())
}

/// Like [`logs`], and forgets them.
pub fn take_logs() -> Vec<LogRecord> {
    state::with(|s| std::mem::take(&mut s.logs))
}

/// Whether log lines are also printed to stderr (on by default; `cargo test` shows them
/// only for failing tests).
pub fn echo_logs(on: bool) {
    state::with(|s| s.echo_logs = on);
}

/// Answers the plugin's outbound HTTP requests with `handler` from now on. Without a
/// handler, every request fails with `HttpError::Denied`.
#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub fn set_http_handler(
    handler: impl FnMut(&crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError> + 'static,
) {
    state::with(|s| s.http_handler = Some(Box::new(handler)));
}

/// Every outbound HTTP request the plugin made so far on this thread, oldest first.
#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub fn http_requests() -> Vec<crate::http::Request> {
    state::with(|s| s.http_requests.clone())
}

/// Queues a command for `device_id`, as the REST API would; the plugin receives it from
/// [`crate::commands::take_pending`].
#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub fn push_command(device_id: &str, command: crate::prelude::Command) {
    state::with(|s| {
        s.pending.entry(device_id.to_owned()).or_default().push_back(command);
    });
}

/// One line the plugin logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The severity.
    pub level: Level,
    /// The message.
    pub message: String,
    /// The structured `key = value` fields, in the order given.
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// The value of field `key`, if the line has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for LogRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[plugin {:?}] {}", self.level, self.message)?;
        for (key, value) in &self.fields {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}
