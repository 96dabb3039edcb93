//! The per-plugin key/value space behind the WIT `kv` interface.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::Tree;

/// Longest key a plugin may use.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value a plugin may store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why a key/value operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// Key or value over its limit (the limit is given).
    #[error("key or value larger than {0} bytes")]
    TooLarge(u32),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
}

/// One plugin's keys, stored as `<plugin>\0<key>` in a shared tree.
#[derive(Clone)]
pub struct PluginKv {
    tree: Tree,
    prefix: Vec<u8>,
    /// Writes of every plugin of the store (see `Store::plugin_kv_writes`).
    writes: Arc<AtomicU64>,
}

impl PluginKv {
    pub(super) fn new(tree: Tree, plugin: &str, writes: Arc<AtomicU64>) -> Self {
        let mut prefix = plugin.as_bytes().to_vec();
        prefix.push(0);
        PluginKv { tree, prefix, writes }
    }

    fn full_key(&self, key: &str) -> Result<Vec<u8>, KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::TooLarge(MAX_KEY_BYTES as u32));
        }
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key.as_bytes());
        Ok(full)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.tree.get(self.full_key(key)?)?.map(|v| v.to_vec()))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        self.tree.insert(self.full_key(key)?, value)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        self.tree.remove(self.full_key(key)?)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Keys starting with `prefix`, in byte order, at most `limit`.
    pub fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let start = self.full_key(prefix)?;
        let mut keys = Vec::new();
        for entry in self.tree.scan_prefix(start).keys().take(limit) {
            let key = entry?;
            let own = &key[self.prefix.len()..];
            keys.push(String::from_utf8_lossy(own).into_owned());
        }
        Ok(keys)
    }
}
