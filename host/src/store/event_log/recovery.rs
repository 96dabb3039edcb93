//! Opening the log: find the segments, check that they follow each other, scan the last
//! one, cut off a torn tail, and say what was found ([`RecoveryReport`]).
//!
//! The rules:
//! - Segments must follow each other: each starts where the one before it ends. A range
//!   between them is [`Missing`] (a segment file deleted, or a sealed one shortened);
//!   a segment running past the next one's start is damage from there on.
//! - Only the last segment is scanned (from its start, or from a known-good position
//!   the caller gives, e.g. the end of what its index holds). Older segments were
//!   complete when the writer left them; damage in them is found when they are read
//!   (every read checks the checksum) or verified.
//! - In the last segment, bytes after the last intact record with no intact record
//!   after them are a torn tail: a write a crash interrupted (short header, short
//!   payload, or a checksum mismatch in the last record). It was never acknowledged,
//!   since an append is acknowledged after its `fdatasync`. It is cut off and reported.
//! - A damaged region with intact records after it is NOT a torn write: it is kept on
//!   disk, marked unreadable and reported, and the records after it stay readable.
//! - Positions are never reused: when the caller knows the log reached further than
//!   what is on disk (its index points past it), the missing range is reported and
//!   writing resumes after it in a new segment.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::damage::{CorruptReason, Damage, Missing, RecoveryReport, TornTail};
use super::error::LogError;
use super::position::Position;
use super::segment::{Scanner, Segment, Step, file_name, list, sync_dir};

/// What opening found and built.
pub(super) struct Recovered {
    pub segments: BTreeMap<u64, Arc<Segment>>,
    /// The last segment, which the writer takes.
    pub tail: Arc<Segment>,
    pub report: RecoveryReport,
}

fn open_file(path: &Path, write: bool) -> Result<File, LogError> {
    OpenOptions::new().read(true).write(write).open(path).map_err(LogError::io("opening", path))
}

fn create_segment(dir: &Path, base: u64) -> Result<Arc<Segment>, LogError> {
    let path = dir.join(file_name(base));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(LogError::io("creating", &path))?;
    sync_dir(dir)?;
    Ok(Arc::new(Segment::new(base, path, file, base)))
}

/// Opens the segments of `dir` (creating it and a first segment when there is none).
/// `scan_from`: a position known to start an intact record (or to be the end) in the last
/// segment, where its scan may start. `known_end`: a position the log is known to have
/// reached.
pub(super) fn recover(
    dir: &Path,
    scan_from: Option<Position>,
    known_end: Option<Position>,
) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(LogError::io("creating", dir))?;
    let listing = list(dir)?;
    let names = listing.segments;
    let mut report = RecoveryReport { segments: names.len(), ignored: listing.ignored, ..RecoveryReport::default() };
    if names.is_empty() {
        let base = known_end.map_or(0, |p| p.0);
        if base > 0 {
            report.missing.push(Missing {
                from: Position(0),
                to: Position(base),
                expected_file: dir.join(file_name(0)),
            });
        }
        let tail = create_segment(dir, base)?;
        report.start = Position(base);
        report.end = Position(base);
        report.scanned_from = Position(base);
        return Ok(Recovered { segments: BTreeMap::from([(base, tail.clone())]), tail, report });
    }

    // Open every segment; check each ends where the next starts.
    let mut segments = BTreeMap::new();
    let last = names.len() - 1;
    for (i, (base, path)) in names.iter().enumerate() {
        let file = open_file(path, i == last)?;
        let len = file.metadata().map_err(LogError::io("reading the size of", path))?.len();
        let mut end = base + len;
        if let Some((next, _)) = names.get(i + 1) {
            if end < *next {
                report.missing.push(Missing {
                    from: Position(end),
                    to: Position(*next),
                    expected_file: dir.join(file_name(end)),
                });
            } else if end > *next {
                report.damaged.push(Damage {
                    segment: path.clone(),
                    position: Position(*next),
                    offset: next - base,
                    len: end - next,
                    reason: CorruptReason::Overlap { next: Position(*next) },
                });
                end = *next;
            }
        }
        segments.insert(*base, Arc::new(Segment::new(*base, path.clone(), file, end)));
    }
    let Some(mut tail) = segments.values().next_back().cloned() else {
        return Err(LogError::Invalid("no segment after listing some".into()));
    };
    report.start = Position(names[0].0);

    // Scan the last segment.
    let len = tail.end() - tail.base;
    let mut scanner = Scanner::new(tail.clone(), 0, len);
    if let Some(from) = scan_from.filter(|p| p.0 >= tail.base && p.0 <= tail.end()) {
        let offset = from.0 - tail.base;
        if offset == len || scanner.check_at(offset)?.is_ok() {
            scanner = Scanner::new(tail.clone(), offset, len);
        }
    }
    report.scanned_from = Position(tail.base + scanner.offset());
    loop {
        match scanner.next_step()? {
            Step::Record { .. } => report.records_scanned += 1,
            Step::Damaged { damage, to_end: false } => report.damaged.push(damage),
            Step::Damaged { damage, to_end: true } => {
                report.torn_tail = Some(TornTail {
                    segment: damage.segment,
                    offset: damage.offset,
                    position: damage.position,
                    len: damage.len,
                    reason: damage.reason,
                });
            }
            Step::End => break,
        }
    }
    if let Some(torn) = &report.torn_tail {
        tail.file.set_len(torn.offset).map_err(LogError::io("cutting the torn tail off", &tail.path))?;
        tail.file.sync_all().map_err(LogError::io("syncing", &tail.path))?;
        tail.set_end(torn.position.0);
    }

    // Never write at positions something may already point at.
    if let Some(known) = known_end.filter(|k| k.0 > tail.end()) {
        report.missing.push(Missing {
            from: Position(tail.end()),
            to: known,
            expected_file: dir.join(file_name(tail.end())),
        });
        tail = create_segment(dir, known.0)?;
        segments.insert(known.0, tail.clone());
    }
    report.end = Position(tail.end());
    Ok(Recovered { segments, tail, report })
}
