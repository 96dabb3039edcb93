//! Host calls answered by the in-memory test double (native builds).

use crate::kv::KvError;
use crate::log::Level;
use crate::testing::state;

pub(crate) fn log_write(level: Level, message: &str, fields: &[(String, String)]) {
    state::log_write(level, message, fields);
}

pub(crate) fn config_get(key: &str) -> Option<String> {
    state::with(|s| s.config.get(key).cloned())
}

pub(crate) fn config_all() -> Vec<(String, String)> {
    state::with(|s| s.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    state::with(|s| {
        s.kv_check(key, &[])?;
        Ok(s.kv.get(key).cloned())
    })
}

pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
    state::with(|s| {
        s.kv_check(key, value)?;
        s.kv.insert(key.to_owned(), value.to_vec());
        Ok(())
    })
}

pub(crate) fn kv_delete(key: &str) -> Result<(), KvError> {
    state::with(|s| {
        s.kv_check(key, &[])?;
        s.kv.remove(key);
        Ok(())
    })
}

pub(crate) fn kv_list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    state::with(|s| {
        s.kv_injected_failure()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(s.kv
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect())
    })
}

pub(crate) fn now_ms() -> u64 {
    state::with(|s| s.now_ms).unwrap_or_else(state::system_now_ms)
}

#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub(crate) fn http_send(request: &crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError> {
    state::http_send(request)
}

#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub(crate) fn take_pending(device_id: &str, max: u32) -> Vec<crate::prelude::Command> {
    state::with(|s| {
        let queue = s.pending.entry(device_id.to_owned()).or_default();
        let n = queue.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        queue.drain(..n).collect()
    })
}
