//! A durable key/value store private to the plugin: values survive restarts, other
//! plugins cannot see them. Keys are at most [`MAX_KEY_BYTES`], values at most
//! [`MAX_VALUE_BYTES`].
//!
//! ```
//! use biogate_sdk::kv;
//!
//! kv::set("last/D1/42", "1700000000")?;
//! assert_eq!(kv::get_string("last/D1/42")?.as_deref(), Some("1700000000"));
//! assert_eq!(kv::list_keys("last/D1/", 10)?, vec!["last/D1/42".to_owned()]);
//! kv::delete("last/D1/42")?;
//! # Ok::<(), kv::KvError>(())
//! ```

/// The longest key the gateway stores, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value the gateway stores, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key or the value is over the store's limit (the number the gateway reported,
    /// in bytes). Retrying will not help.
    #[error("kv: key or value over the store's limit ({0} bytes)")]
    TooLarge(u32),
    /// The store failed; the call may succeed later.
    #[error("kv: storage failure: {0}")]
    Storage(String),
    /// [`get_string`] found a value that is not UTF-8.
    #[error("kv: the value of `{key}` is not UTF-8")]
    NotUtf8 {
        /// The key.
        key: String,
    },
}

impl From<crate::bindings::biogate::plugin::kv::KvError> for KvError {
    fn from(err: crate::bindings::biogate::plugin::kv::KvError) -> Self {
        use crate::bindings::biogate::plugin::kv::KvError as Wit;
        match err {
            Wit::TooLarge(limit) => KvError::TooLarge(limit),
            Wit::Storage(message) => KvError::Storage(message),
        }
    }
}

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    crate::backend::kv_get(key)
}

/// The value stored under `key` as UTF-8 text, if any.
pub fn get_string(key: &str) -> Result<Option<String>, KvError> {
    get(key)?.map(|bytes| String::from_utf8(bytes).map_err(|_| KvError::NotUtf8 { key: key.to_owned() })).transpose()
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    crate::backend::kv_set(key, value.as_ref())
}

/// Removes `key` (no error when it was not there).
pub fn delete(key: &str) -> Result<(), KvError> {
    crate::backend::kv_delete(key)
}

/// The keys that start with `prefix`, in byte order, at most `limit` of them.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    crate::backend::kv_list_keys(prefix, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn round_trip_and_listing() {
        set("a/1", b"one").unwrap();
        set("a/2", "two").unwrap();
        set("b/1", "x").unwrap();
        assert_eq!(get("a/1").unwrap(), Some(b"one".to_vec()));
        assert_eq!(get("zz").unwrap(), None);
        assert_eq!(list_keys("a/", 10).unwrap(), vec!["a/1", "a/2"]);
        assert_eq!(list_keys("a/", 1).unwrap(), vec!["a/1"]);
        delete("a/1").unwrap();
        assert_eq!(get("a/1").unwrap(), None);
        assert_eq!(testing::kv_entries().len(), 2);
    }

    #[test]
    fn limits_and_failures() {
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(set(&long_key, "v"), Err(KvError::TooLarge(512)));
        assert_eq!(set("k", vec![0u8; MAX_VALUE_BYTES + 1]), Err(KvError::TooLarge(65536)));
        set("bin", [0xff, 0xfe]).unwrap();
        assert!(matches!(get_string("bin"), Err(KvError::NotUtf8 { .. })));
        testing::set_kv_failure(Some(KvError::Storage("disk full".into())));
        assert_eq!(get("bin"), Err(KvError::Storage("disk full".into())));
        testing::set_kv_failure(None);
        assert!(get("bin").is_ok());
    }
}
