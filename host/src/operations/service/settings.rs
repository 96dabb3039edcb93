//! The `[operations]` section of the config file: times to live, waits, LoadLog pages,
//! the opt-in redelivery of commands whose result is overdue, and when a device counts as
//! offline.

/// `[operations]` settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationSettings {
    /// How long an operation may wait for its device's confirmation, in seconds, unless
    /// the request sets its own.
    pub ttl_seconds: u64,
    /// How long a Cams call waits for the device's confirmation before it answers with
    /// the operation still open (`Status: "queued"` or `"sent"`), in milliseconds;
    /// `?wait_ms=` overrides it per call.
    pub cams_wait_ms: u64,
    /// Longest a native device's command poll is held open, in milliseconds.
    pub max_poll_wait_ms: u64,
    /// Rows per LoadLog page.
    pub load_log_page_size: usize,
    /// Opt-in: how long a sent command waits for its result before it is handed out
    /// again (the reply that carried it may never have reached the device), in
    /// milliseconds; 0 (the default) hands every command out once. Only for devices that
    /// recognise an operation id they have already carried out (see
    /// docs/device-protocol.md), on the native protocol and the plain MQTT form; commands
    /// of dialect plugins are handed out once. See [`OperationService::redeliver_due`](super::queue::OperationService::redeliver_due)
    /// for when a command is not handed out again.
    pub redeliver_after_ms: u64,
    /// Most times one command is handed to its device when `redeliver_after_ms` is set.
    pub max_deliveries: u32,
    /// A device not heard from for this long counts as offline, in milliseconds (see
    /// [`crate::operations::presence`]).
    pub offline_after_ms: u64,
    /// Opt-in: a Cams operation for a device not heard from within `offline_after_ms` is
    /// refused with StatusCode 5 and nothing is queued; off (the default), it is queued
    /// and answered 0 like any other, and the device takes it when it comes back.
    pub cams_offline_code: bool,
}

impl Default for OperationSettings {
    fn default() -> Self {
        OperationSettings {
            ttl_seconds: 86_400,
            cams_wait_ms: 15_000,
            max_poll_wait_ms: 60_000,
            load_log_page_size: 500,
            redeliver_after_ms: 0,
            max_deliveries: 3,
            offline_after_ms: 180_000,
            cams_offline_code: false,
        }
    }
}
