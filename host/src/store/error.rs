//! What can go wrong in the store.
use std::path::PathBuf;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// Stored bytes could not be decoded.
    #[error("stored record is unreadable: {0}")]
    Decode(String),
    /// The event log (the journal's events) failed.
    #[error(transparent)]
    Log(#[from] super::event_log::LogError),
    /// The flush that makes writes durable failed.
    #[error("flushing to disk failed: {0}")]
    Flush(String),
    /// The data folder's filesystem is below the disk reserve: a write made on behalf of a
    /// device or client was refused before it reached the storage engine. Nothing of it
    /// was written; the sender keeps its data and sends it again later.
    #[error("the disk is below its reserve ({} MiB free, the reserve is {} MiB): nothing was stored", mib(*.free_bytes), mib(*.reserve_bytes))]
    DiskFull { free_bytes: u64, reserve_bytes: u64 },
    /// At start, the data folder's filesystem is already below the disk reserve: the store
    /// is not opened (nothing in it is touched).
    #[error("the data folder {} has {} MiB free, the reserve is {} MiB: free space or lower storage.min_free_mb", .dir.display(), mib(*.free_bytes), mib(*.reserve_bytes))]
    NoRoomToStart { dir: PathBuf, free_bytes: u64, reserve_bytes: u64 },
    /// The free space of the data folder could not be measured.
    #[error("measuring the free space of {}: {source}", .dir.display())]
    FreeSpace { dir: PathBuf, source: std::io::Error },
}

/// MiB with one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}

impl StoreError {
    /// The disk is full: below the reserve before anything was written, or the event log
    /// met a full filesystem (nothing was stored either way; the sender keeps its data and
    /// sends it again later).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            StoreError::Log(e) => e.is_no_space(),
            _ => false,
        }
    }
}
