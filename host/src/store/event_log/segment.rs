//! One segment file: its name, its open file and readable end, and the scanner that walks
//! its records (recovery, iteration and verification all walk with it).
//!
//! Segments are named `<first position, 20 digits>.seg`. The scanner reads through a
//! window of at most [`WINDOW`] bytes (more only for a record larger than that), so a
//! segment is never held in memory whole. When the bytes at the scanner's offset are not
//! an intact record it searches forward, byte by byte, for the next offset where one is
//! (length in range, payload shaped like a record, checksum seeded with that offset
//! matching), and reports the region in between as [`Damage`]; when there is none it
//! reports the region up to the end, which recovery treats as a torn tail.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::damage::{CorruptReason, Damage};
use super::error::LogError;
use super::position::Position;
use super::record::{
    HEADER_BYTES, MAX_DEVICE_BYTES, MIN_PAYLOAD, Record, check_len, check_payload, checksum, parse_header,
};

/// How many bytes the scanner reads at once.
pub(super) const WINDOW: usize = 1024 * 1024;

/// The file name of the segment starting at log position `base`.
pub(super) fn file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// The first position of a segment, from its file name.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `.seg` files of a folder.
pub(super) struct Listing {
    /// Segment files by first position, in order.
    pub segments: Vec<(u64, PathBuf)>,
    /// `.seg` files not named like a segment.
    pub ignored: Vec<PathBuf>,
}

/// The segment files of `dir` in order, and `.seg` files not named like one.
pub(super) fn list(dir: &Path) -> Result<Listing, LogError> {
    let mut segments = Vec::new();
    let mut ignored = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("listing", dir))? {
        let path = entry.map_err(LogError::io("listing", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if !name.ends_with(".seg") {
            continue;
        }
        match parse_name(name) {
            Some(base) => segments.push((base, path)),
            None => ignored.push(path),
        }
    }
    segments.sort();
    ignored.sort();
    Ok(Listing { segments, ignored })
}

/// Makes the creation or removal of files in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(LogError::io("syncing the folder", dir))
}

/// An open segment.
#[derive(Debug)]
pub(super) struct Segment {
    /// Its first position.
    pub base: u64,
    pub path: PathBuf,
    pub file: File,
    /// The position after its last readable byte: the file's end for an older segment,
    /// the durable end for the one being written.
    end: AtomicU64,
}

impl Segment {
    pub fn new(base: u64, path: PathBuf, file: File, end: u64) -> Self {
        Segment { base, path, file, end: AtomicU64::new(end) }
    }

    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    pub fn set_end(&self, end: u64) {
        self.end.store(end, Ordering::Release);
    }

    /// Reads exactly `buf.len()` bytes at `offset` of the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), LogError> {
        self.file.read_exact_at(buf, offset).map_err(LogError::io("reading", &self.path))
    }
}

/// What the scanner found next.
#[derive(Debug)]
pub(super) enum Step {
    /// An intact record at `offset` (in the segment file) with `len` payload bytes.
    Record { offset: u64, len: u32 },
    /// A region without an intact record; `to_end` when no intact record follows it.
    Damaged { damage: Damage, to_end: bool },
    /// The end of the scanned range.
    End,
}

/// Walks the records of one segment from an offset up to a limit (offsets in the file).
pub(super) struct Scanner {
    segment: Arc<Segment>,
    pos: u64,
    limit: u64,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    buf_at: u64,
}

impl Scanner {
    /// Scans `segment` from file offset `from` to `limit` (bytes after it are ignored).
    pub fn new(segment: Arc<Segment>, from: u64, limit: u64) -> Self {
        Scanner { segment, pos: from.min(limit), limit, buf: Vec::new(), buf_at: 0 }
    }

    /// The offset the next step starts at.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// `len` bytes at `offset`, read through the window; the caller checked they are
    /// below the limit.
    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8], LogError> {
        let inside = offset >= self.buf_at && offset + len as u64 <= self.buf_at + self.buf.len() as u64;
        if !inside {
            let want = len.max(WINDOW).min((self.limit - offset) as usize).max(len);
            if self.buf.capacity() > 4 * WINDOW && want <= WINDOW {
                // A large record grew the window: give the memory back.
                self.buf = Vec::new();
            }
            self.buf.resize(want, 0);
            self.segment.read_at(&mut self.buf, offset)?;
            self.buf_at = offset;
        }
        let start = (offset - self.buf_at) as usize;
        Ok(self.buf.get(start..start + len).unwrap_or_default())
    }

    /// Whether an intact record starts at `offset`: its payload length, or what is wrong.
    pub fn check_at(&mut self, offset: u64) -> Result<Result<u32, CorruptReason>, LogError> {
        let available = self.limit.saturating_sub(offset);
        if available < HEADER_BYTES {
            return Ok(Err(CorruptReason::ShortHeader { available }));
        }
        let Some((len, stored)) = parse_header(self.bytes(offset, HEADER_BYTES as usize)?) else {
            return Ok(Err(CorruptReason::ShortHeader { available }));
        };
        if let Err(reason) = check_len(len) {
            return Ok(Err(reason));
        }
        if u64::from(len) > available - HEADER_BYTES {
            return Ok(Err(CorruptReason::ShortPayload { len, available: available - HEADER_BYTES }));
        }
        // The shape first, from the few bytes that hold it: a search past damage tries
        // every offset, and most fail here without reading a long "payload".
        let shape = (len as usize).min(2 + MAX_DEVICE_BYTES + 8);
        if let Err(reason) = check_payload(self.bytes(offset + HEADER_BYTES, shape)?) {
            return Ok(Err(reason));
        }
        let position = self.segment.base + offset;
        let payload = self.bytes(offset + HEADER_BYTES, len as usize)?;
        let computed = checksum(position, payload);
        if computed != stored {
            return Ok(Err(CorruptReason::Checksum { stored, computed }));
        }
        Ok(Ok(len))
    }

    /// The next offset after `from` where an intact record starts, if any.
    fn resync(&mut self, from: u64) -> Result<Option<u64>, LogError> {
        let smallest = HEADER_BYTES + u64::from(MIN_PAYLOAD);
        let mut candidate = from + 1;
        while candidate + smallest <= self.limit {
            if self.check_at(candidate)?.is_ok() {
                return Ok(Some(candidate));
            }
            candidate += 1;
        }
        Ok(None)
    }

    /// The next record or damaged region.
    pub fn next_step(&mut self) -> Result<Step, LogError> {
        if self.pos >= self.limit {
            return Ok(Step::End);
        }
        let offset = self.pos;
        match self.check_at(offset)? {
            Ok(len) => {
                self.pos = offset + HEADER_BYTES + u64::from(len);
                Ok(Step::Record { offset, len })
            }
            Err(reason) => {
                let next = self.resync(offset)?;
                let end = next.unwrap_or(self.limit);
                self.pos = end;
                let damage = Damage {
                    segment: self.segment.path.clone(),
                    position: Position(self.segment.base + offset),
                    offset,
                    len: end - offset,
                    reason,
                };
                Ok(Step::Damaged { damage, to_end: next.is_none() })
            }
        }
    }

    /// The record the last [`Step::Record`] pointed at, copied out of the window.
    pub fn record(&mut self, offset: u64, len: u32) -> Result<Record, LogError> {
        let bytes = self.bytes(offset + HEADER_BYTES, len as usize)?.to_vec();
        Record::from_payload(bytes, 0).map_err(|reason| {
            LogError::Corrupt(Damage {
                segment: self.segment.path.clone(),
                position: Position(self.segment.base + offset),
                offset,
                len: HEADER_BYTES + u64::from(len),
                reason,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_twenty_digits() {
        assert_eq!(file_name(4096), "00000000000000004096.seg");
        assert_eq!(parse_name("00000000000000004096.seg"), Some(4096));
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("4096.seg"), None);
        assert_eq!(parse_name("0000000000000000409a.seg"), None);
        assert_eq!(parse_name("00000000000000004096.seg.bak"), None);
    }
}
