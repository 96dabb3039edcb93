//! What the event log found wrong on disk, in terms a caller can report: a damaged region
//! of a segment (where, how long, why), a range no segment file holds, the torn tail that
//! recovery cut off, and the [`RecoveryReport`] that gathers them when the log opens.
//!
//! Nothing here decides anything: the scanner (segment.rs) and recovery (recovery.rs)
//! fill these in, the log keeps the damage it knows of so reads inside it answer with
//! it, and the caller logs them, counts them and shows them in `/health`.
use std::fmt;
use std::path::PathBuf;

use super::position::Position;

/// Why bytes at some offset are not a readable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptReason {
    /// Fewer than a record header's 8 bytes are left in the segment.
    ShortHeader { available: u64 },
    /// The header's length is 0 or above the largest record the log writes.
    LengthOutOfRange { len: u32 },
    /// The header's length runs past the end of the segment.
    ShortPayload { len: u32, available: u64 },
    /// The CRC-32C does not match the payload.
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but the payload is not a record this version can read.
    BadPayload { detail: &'static str },
    /// The segment file runs past the start of the next segment.
    Overlap { next: Position },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::ShortHeader { available } => write!(f, "only {available} bytes left for an 8-byte header"),
            CorruptReason::LengthOutOfRange { len } => write!(f, "record length {len} is out of range"),
            CorruptReason::ShortPayload { len, available } => {
                write!(f, "record length {len} but only {available} bytes left in the segment")
            }
            CorruptReason::Checksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:08x}, computed {computed:08x})")
            }
            CorruptReason::BadPayload { detail } => write!(f, "payload unreadable: {detail}"),
            CorruptReason::Overlap { next } => write!(f, "runs past the start of the next segment ({next})"),
        }
    }
}

/// A region of a segment that holds no readable record: from `offset` (in the segment
/// file) for `len` bytes, up to the next intact record or the end of the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the region starts in the whole log (the segment's first offset + `offset`).
    pub position: Position,
    /// Where the region starts in the segment file.
    pub offset: u64,
    /// How many bytes it spans.
    pub len: u64,
    /// What was wrong with the first record of the region.
    pub reason: CorruptReason,
}

impl Damage {
    /// Whether the global position `pos` lies inside the region.
    pub fn contains(&self, pos: Position) -> bool {
        pos.0 >= self.position.0 && pos.0 < self.position.0.saturating_add(self.len)
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at offset {} of {} (log position {}): {}",
            self.len,
            self.offset,
            self.segment.display(),
            self.position,
            self.reason
        )
    }
}

/// A range of positions that no segment file holds: a segment file is missing (or a
/// sealed one is shorter than the next one's name says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// First missing position.
    pub from: Position,
    /// First position held again (the next segment's first offset).
    pub to: Position,
    /// The segment file that should start at `from`.
    pub expected_file: PathBuf,
}

impl Missing {
    /// Whether the global position `pos` lies inside the range.
    pub fn contains(&self, pos: Position) -> bool {
        pos.0 >= self.from.0 && pos.0 < self.to.0
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log positions {}..{} are in no segment file ({} is missing or a segment before it is short)",
            self.from,
            self.to,
            self.expected_file.display()
        )
    }
}

/// The torn tail that recovery cut off the last segment: bytes after the last intact
/// record with no intact record after them (a write that a crash interrupted; it was
/// never acknowledged, since acknowledgement follows the `fdatasync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the cut was made, in the segment file (the new end of the segment).
    pub offset: u64,
    /// The same, in the whole log.
    pub position: Position,
    /// How many bytes were cut off.
    pub len: u64,
    /// What was wrong with the first of them.
    pub reason: CorruptReason,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "torn tail of {} bytes cut off {} at offset {} (log position {}): {}",
            self.len,
            self.segment.display(),
            self.offset,
            self.position,
            self.reason
        )
    }
}

/// What opening the log found. A clean log has no torn tail, no damage and nothing
/// missing; anything else is for the caller to report (log line, metric, `/health`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: usize,
    /// Intact records read by the scan of the last segment.
    pub records_scanned: u64,
    /// Where that scan started (the last segment's start, or the caller's known-good point).
    pub scanned_from: Position,
    /// The first position still held (older ones were removed by retention).
    pub start: Position,
    /// The end of the log after recovery: the next record goes there.
    pub end: Position,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Damaged regions with intact records after them: kept on disk, unreadable, reported.
    pub damaged: Vec<Damage>,
    /// Ranges no segment holds.
    pub missing: Vec<Missing>,
    /// Files in the log's folder that end in `.seg` but are not named like a segment.
    pub ignored: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.damaged.is_empty() && self.missing.is_empty() && self.ignored.is_empty()
    }
}
