//! The per-thread state of the test double, and the host calls that need more than a
//! one-line lookup.

use std::cell::RefCell;
use std::collections::BTreeMap;
#[cfg(not(any(feature = "transform", feature = "delivery")))]
use std::collections::VecDeque;

use super::LogRecord;
use crate::kv::{KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::log::Level;

/// A handler that answers the plugin's outbound HTTP requests in tests.
#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub(crate) type HttpHandler =
    Box<dyn FnMut(&crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError>>;

/// Everything the fake host knows, for the current thread.
pub(crate) struct State {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) kv: BTreeMap<String, Vec<u8>>,
    pub(crate) kv_failure: Option<KvError>,
    pub(crate) now_ms: Option<u64>,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) echo_logs: bool,
    #[cfg(not(any(feature = "transform", feature = "dialect")))]
    pub(crate) http_handler: Option<HttpHandler>,
    #[cfg(not(any(feature = "transform", feature = "dialect")))]
    pub(crate) http_requests: Vec<crate::http::Request>,
    #[cfg(not(any(feature = "transform", feature = "delivery")))]
    pub(crate) pending: BTreeMap<String, VecDeque<crate::prelude::Command>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            config: BTreeMap::new(),
            kv: BTreeMap::new(),
            kv_failure: None,
            now_ms: None,
            logs: Vec::new(),
            echo_logs: true,
            #[cfg(not(any(feature = "transform", feature = "dialect")))]
            http_handler: None,
            #[cfg(not(any(feature = "transform", feature = "dialect")))]
            http_requests: Vec::new(),
            #[cfg(not(any(feature = "transform", feature = "delivery")))]
            pending: BTreeMap::new(),
        }
    }
}

impl State {
    /// The failure injected with `testing::set_kv_failure`, if any.
    pub(crate) fn kv_injected_failure(&self) -> Result<(), KvError> {
        match &self.kv_failure {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// The same size checks as the gateway's store, plus any injected failure.
    pub(crate) fn kv_check(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.kv_injected_failure()?;
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::TooLarge(MAX_KEY_BYTES as u32));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        Ok(())
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` on this thread's state. `f` must not call back into the SDK.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// The real wall clock, used until a test sets the fake one.
pub(crate) fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Records a log line and, unless disabled, echoes it to stderr (which `cargo test`
/// captures and shows for failing tests).
pub(crate) fn log_write(level: Level, message: &str, fields: &[(String, String)]) {
    let record = LogRecord { level, message: message.to_owned(), fields: fields.to_vec() };
    let echo = with(|s| {
        s.logs.push(record.clone());
        s.echo_logs
    });
    if echo {
        eprintln!("{record}");
    }
}

/// Records the request and answers it with the test's handler. The handler runs outside
/// the state borrow, so it may itself use the SDK (kv, logging...).
#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub(crate) fn http_send(request: &crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError> {
    let handler = with(|s| {
        s.http_requests.push(request.clone());
        s.http_handler.take()
    });
    let Some(mut handler) = handler else {
        return Err(crate::http::HttpError::Denied(format!(
            "no HTTP handler in this test (call biogate_sdk::testing::set_http_handler): {} {}",
            request.method, request.url
        )));
    };
    let answer = handler(request);
    with(|s| {
        // Keep a handler the test may have installed from inside the handler.
        if s.http_handler.is_none() {
            s.http_handler = Some(handler);
        }
    });
    answer
}
