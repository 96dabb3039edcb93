//! The embedded store (sled). Every durable thing biogate keeps goes through this module,
//! so that the storage engine can be replaced behind it.
mod plugin_kv;

use std::path::Path;

pub use plugin_kv::{PluginKv, KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// Stored bytes could not be decoded.
    #[error("stored record is unreadable: {0}")]
    Decode(String),
}

/// The opened database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Store { db })
    }

    /// A throw-away database in memory (for `plugin run` and examples; tests use a real
    /// one in a temporary folder).
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Store { db })
    }

    /// The key/value space of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> Result<PluginKv, StoreError> {
        Ok(PluginKv::new(self.db.open_tree("plugin-kv")?, plugin))
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
