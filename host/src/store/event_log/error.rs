//! The errors of the event log.
use std::path::PathBuf;

use super::damage::{Damage, Missing};
use super::position::Position;

/// What an event log call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("event log: {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record at the position is damaged on disk (see [`Damage`]).
    #[error("event log record unreadable: {0}")]
    Corrupt(Damage),
    /// The position is in a range no segment file holds.
    #[error("event log record unreadable: {0}")]
    Missing(Missing),
    /// The position is before the log's start: retention removed it.
    #[error("event log position {position} was removed by retention (the log starts at {start})")]
    Retained { position: Position, start: Position },
    /// The position is at or past the durable end of the log.
    #[error("event log position {position} is past the durable end ({end})")]
    PastEnd { position: Position, end: Position },
    /// A record that the log cannot hold.
    #[error("event log: {0}")]
    Invalid(String),
    /// The group write or its `fdatasync` failed; the records of the group are not stored.
    #[error("event log write failed: {0}")]
    Write(String),
    /// The group write found the filesystem full (ENOSPC); nothing of it is stored and
    /// the log takes writes again once there is space.
    #[error("event log write failed, the disk is full: {0}")]
    NoSpace(String),
    /// An `fdatasync` failed earlier: what the kernel kept of the file is unknown, so the
    /// log takes no more writes until it is opened again (recovery then checks the tail).
    #[error("event log stopped taking writes after a failed fdatasync: {0}")]
    Poisoned(String),
    /// The writer thread is gone (the log is closing).
    #[error("event log writer has stopped")]
    Stopped,
}

impl LogError {
    /// Whether the filesystem was full (a write or the creation of a segment).
    pub fn is_no_space(&self) -> bool {
        match self {
            LogError::NoSpace(_) => true,
            LogError::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    pub(super) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { action, path, source }
    }
}
