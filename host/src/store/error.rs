//! What can go wrong in the store.

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// Stored bytes could not be decoded.
    #[error("stored record is unreadable: {0}")]
    Decode(String),
    /// The flush that makes writes durable failed.
    #[error("flushing to disk failed: {0}")]
    Flush(String),
}
