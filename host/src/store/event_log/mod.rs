//! The event log: an append-only store of event records in segment files, the place of
//! event bodies (punches, and later their photos) once the journal uses it; sled keeps
//! indexes and state. Not used by the journal yet.
//!
//! - `record`: the frame (`[len][crc32c][payload]`), the payload (device, sequence,
//!   event bytes), [`LogBatch`] and [`Record`].
//! - `position`: [`Position`], a record's place in the whole log.
//! - `segment`: one segment file (`<first position, 20 digits>.seg`) and the scanner
//!   that walks its records and finds damaged regions.
//! - `recovery`: opening: segments in order, gaps, the scan of the last segment, the
//!   torn tail cut off; the rules are in its documentation.
//! - `writer`: the group-commit thread (one write and one `fdatasync` per group).
//! - `reader`: a record by position, and [`LogIter`].
//! - `state`: what handles, readers and the writer share.
//! - `damage`: what is reported ([`RecoveryReport`], [`Damage`], [`Missing`]).
//! - `handle`: [`EventLog`].
//! - `error`: [`LogError`].
mod damage;
mod error;
mod handle;
mod position;
mod reader;
mod record;
mod recovery;
mod segment;
mod state;
mod writer;

#[cfg(test)]
mod tests;

pub use damage::{CorruptReason, Damage, Missing, RecoveryReport, TornTail};
pub use error::LogError;
pub use handle::{DEFAULT_SEGMENT_BYTES, EventLog, LogOptions, Retention, SegmentInfo};
pub use position::Position;
pub use reader::LogIter;
pub use record::{HEADER_BYTES, LogBatch, MAX_PAYLOAD, Record};
