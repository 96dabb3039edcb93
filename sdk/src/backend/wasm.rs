//! Host calls through the component's WIT imports.

use crate::bindings::biogate::plugin as host;
use crate::kv::KvError;
use crate::log::Level;

pub(crate) fn log_write(level: Level, message: &str, fields: &[(String, String)]) {
    host::log::write(level, message, fields);
}

pub(crate) fn config_get(key: &str) -> Option<String> {
    host::config::get(key)
}

pub(crate) fn config_all() -> Vec<(String, String)> {
    host::config::all()
}

pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    host::kv::get(key).map_err(KvError::from)
}

pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
    host::kv::set(key, value).map_err(KvError::from)
}

pub(crate) fn kv_delete(key: &str) -> Result<(), KvError> {
    host::kv::delete(key).map_err(KvError::from)
}

pub(crate) fn kv_list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    host::kv::list_keys(prefix, limit).map_err(KvError::from)
}

pub(crate) fn now_ms() -> u64 {
    host::clock::now_ms()
}

#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub(crate) fn http_send(request: &crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError> {
    host::outbound_http::send(request)
}

#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub(crate) fn take_pending(device_id: &str, max: u32) -> Vec<crate::prelude::Command> {
    host::commands::take_pending(device_id, max)
}
