//! Reading: one record by its position (one `pread`, two for a record larger than the
//! first guess), and iteration in log order from a position across segments, which
//! reports damaged regions and missing ranges as errors in the sequence and carries on
//! after them: a caller sees every gap, none is skipped silently.
use std::collections::VecDeque;
use std::sync::Arc;

use super::damage::{CorruptReason, Damage, Missing};
use super::error::LogError;
use super::position::Position;
use super::record::{HEADER_BYTES, Record, check_len, checksum, parse_header};
use super::segment::{Scanner, Segment, Step, file_name};
use super::state::LogState;

/// Bytes read for a record before its length is known: a punch fits.
const FIRST_READ: u64 = 512;

/// The record at `pos`.
pub(super) fn read(state: &LogState, pos: Position) -> Result<Record, LogError> {
    let segment = state.segment_at(pos)?;
    if let Some(damage) = state.damage_at(pos) {
        return Err(LogError::Corrupt(damage));
    }
    let offset = pos.0 - segment.base;
    let available = segment.end().min(state.durable_end()) - pos.0;
    let corrupt = |len: u64, reason| {
        LogError::Corrupt(Damage { segment: segment.path.clone(), position: pos, offset, len, reason })
    };
    if available < HEADER_BYTES {
        return Err(corrupt(available, CorruptReason::ShortHeader { available }));
    }
    let mut buf = vec![0; FIRST_READ.min(available) as usize];
    segment.read_at(&mut buf, offset)?;
    let Some((len, stored)) = parse_header(&buf) else {
        return Err(corrupt(available, CorruptReason::ShortHeader { available }));
    };
    check_len(len).map_err(|reason| corrupt(HEADER_BYTES, reason))?;
    let frame = HEADER_BYTES + u64::from(len);
    if frame > available {
        return Err(corrupt(available, CorruptReason::ShortPayload { len, available: available - HEADER_BYTES }));
    }
    let have = buf.len() as u64;
    if frame > have {
        buf.resize(frame as usize, 0);
        segment.read_at(&mut buf[have as usize..], offset + have)?;
    } else {
        buf.truncate(frame as usize);
    }
    let payload = buf.get(HEADER_BYTES as usize..).unwrap_or_default();
    let computed = checksum(pos.0, payload);
    if computed != stored {
        return Err(corrupt(frame, CorruptReason::Checksum { stored, computed }));
    }
    Record::from_payload(buf, HEADER_BYTES as usize).map_err(|reason| corrupt(frame, reason))
}

/// Records in log order from a position up to the durable end when the iteration began
/// (or an earlier end). Reads through a window of up to 1 MiB, less when the range is
/// shorter: the records of one append are read with one `pread`. Yields `(position, record)`, or an error for a damaged region or a missing range
/// (then goes on after it), or an I/O error (then stops).
pub struct LogIter {
    state: Arc<LogState>,
    /// Segments still to scan, oldest first.
    segments: VecDeque<Arc<Segment>>,
    scanner: Option<(Arc<Segment>, Scanner)>,
    /// Whether the scanner is known to be on a record boundary (it started at its
    /// segment's start, or read an intact record): only then is a damaged region it
    /// finds remembered as damage, not blamed on a position that was no record's.
    aligned: bool,
    /// Where the previous segment ended: a later segment starting after it means a gap.
    expect: u64,
    end: u64,
    pending: VecDeque<LogError>,
    done: bool,
}

impl LogIter {
    /// From `from` up to the durable end, or up to `until` when it comes first.
    pub(super) fn new(state: Arc<LogState>, from: Position, until: Option<Position>) -> LogIter {
        let end = until.map_or(u64::MAX, |u| u.0).min(state.durable_end());
        let segments: VecDeque<Arc<Segment>> = state.segments().into();
        let start = segments.front().map(|s| s.base).unwrap_or(0);
        let mut pending = VecDeque::new();
        let mut from = from.0;
        if from < start {
            pending.push_back(LogError::Retained { position: Position(from), start: Position(start) });
            from = start;
        }
        if from > end {
            pending.push_back(LogError::PastEnd { position: Position(from), end: Position(end) });
        }
        let mut iter =
            LogIter { state, segments, scanner: None, aligned: false, expect: from, end, pending, done: from >= end };
        // Drop segments that end before `from`; start in the one holding it.
        while iter.segments.get(1).is_some_and(|next| next.base <= from) {
            iter.segments.pop_front();
        }
        iter
    }

    /// Opens the next segment's scanner, reporting a gap before it.
    fn advance(&mut self) -> bool {
        // The range ends before the next segment: nothing after it is asked for (a span in
        // a sealed segment must not report the positions up to the next one as missing).
        if self.expect >= self.end {
            return false;
        }
        let Some(segment) = self.segments.pop_front() else { return false };
        let from = self.expect.max(segment.base);
        let limit = segment.end().min(self.end);
        if segment.base > self.expect {
            self.pending.push_back(LogError::Missing(self.missing(self.expect, segment.base)));
        }
        if from < limit {
            let scanner = Scanner::new(segment.clone(), from - segment.base, limit - segment.base);
            self.aligned = from == segment.base;
            self.scanner = Some((segment, scanner));
        }
        self.expect = limit.max(self.expect);
        true
    }

    fn missing(&self, from: u64, to: u64) -> Missing {
        Missing { from: Position(from), to: Position(to), expected_file: self.state.dir.join(file_name(from)) }
    }
}

impl Iterator for LogIter {
    type Item = Result<(Position, Record), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(error) = self.pending.pop_front() {
                return Some(Err(error));
            }
            if self.done {
                return None;
            }
            let Some((segment, scanner)) = self.scanner.as_mut() else {
                if !self.advance() {
                    self.done = true;
                }
                continue;
            };
            let step = match scanner.next_step() {
                Ok(step) => step,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match step {
                Step::Record { offset, len } => {
                    let position = Position(segment.base + offset);
                    self.aligned = true;
                    return Some(scanner.record(offset, len).map(|record| (position, record)));
                }
                Step::Damaged { damage, .. } => {
                    if self.aligned {
                        self.state.note_damage(&damage);
                    }
                    return Some(Err(LogError::Corrupt(damage)));
                }
                Step::End => self.scanner = None,
            }
        }
    }
}
