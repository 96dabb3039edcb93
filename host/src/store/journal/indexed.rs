//! How far the index (sled) follows the log, and catching it up at open.
//!
//! An append writes its records to the log (one `fdatasync` per group), then its index
//! entries to sled, which are not flushed with it: after a crash, sled may have lost the
//! entries of the last moments while the log holds their records. The mark
//! (`m\0indexed`) says up to where every record is indexed; at open, the records after
//! it are read and indexed again (entries already there are left as they are).
//!
//! The mark written with an append's entries is the lowest log end seen by an append
//! still in flight (each takes a ticket with the log's end before it writes, and its
//! records land at or after it), or the log's end when none is: every record before it
//! belongs to an append whose entries were applied.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::codec::decode;
use super::entries::{IndexWrites, Indexed, add_entries};
use super::keys::{BatchEntry, INDEXED_KEY, batch_key, batch_prefix, seq_key, trailing_u64};
use crate::store::StoreError;
use crate::store::event_log::{EventLog, LogError, Position, Record};

/// How often an append carries the mark with its entries.
const MARK_EVERY: Duration = Duration::from_secs(1);

struct Inflight {
    next_ticket: u64,
    /// Ticket -> the log's end when the append began.
    bounds: BTreeMap<u64, u64>,
    last_mark: Instant,
}

/// The appends in flight, for the mark.
pub(super) struct IndexMark(Mutex<Inflight>);

impl Default for IndexMark {
    fn default() -> Self {
        IndexMark(Mutex::new(Inflight { next_ticket: 0, bounds: BTreeMap::new(), last_mark: Instant::now() }))
    }
}

impl IndexMark {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inflight> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An append begins; `log_end` is the log's end now (read before the append writes).
    pub fn begin(&self, log_end: Position) -> u64 {
        let mut inflight = self.lock();
        let ticket = inflight.next_ticket;
        inflight.next_ticket += 1;
        inflight.bounds.insert(ticket, log_end.0);
        ticket
    }

    /// The mark that `ticket`'s index entries may carry (inserted after them), when one
    /// is due. `log_end` is read before the call.
    pub fn due(&self, ticket: u64, log_end: Position) -> Option<Position> {
        let mut inflight = self.lock();
        if inflight.last_mark.elapsed() < MARK_EVERY {
            return None;
        }
        inflight.last_mark = Instant::now();
        let others = inflight.bounds.iter().filter(|(t, _)| **t != ticket).map(|(_, b)| *b).min();
        Some(Position(others.map_or(log_end.0, |b| b.min(log_end.0))))
    }

    /// The append's entries are applied (or it failed).
    pub fn finish(&self, ticket: u64) {
        self.lock().bounds.remove(&ticket);
    }
}

/// The mark stored in `tree` (the log's start when there is none).
pub(super) fn stored_mark(tree: &sled::Tree) -> Result<Option<Position>, StoreError> {
    Ok(tree.get(INDEXED_KEY)?.and_then(|v| trailing_u64(&v)).map(Position))
}

/// What [`catch_up`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct CatchUp {
    /// Records read after the mark.
    pub records: u64,
    /// Of them, records that were not indexed and now are.
    pub indexed: u64,
    /// Damaged or missing regions met (reported by the caller from the log's damage).
    pub unreadable: u64,
}

/// Consecutive records of one device (one append, or several in a row) being indexed.
struct Run {
    device: String,
    first: u64,
    positions: Vec<Position>,
    events: Vec<Indexed>,
    end: u64,
}

impl Run {
    fn start(pos: Position, record: &Record) -> Run {
        Run {
            device: record.device().to_string(),
            first: record.seq(),
            positions: Vec::new(),
            events: Vec::new(),
            end: pos.0,
        }
    }

    fn follows(&self, pos: Position, record: &Record) -> bool {
        self.device == record.device() && self.end == pos.0 && self.first + self.positions.len() as u64 == record.seq()
    }

    fn push(&mut self, pos: Position, record: &Record, event: Indexed) {
        self.positions.push(pos);
        self.events.push(event);
        self.end = pos.0 + record.frame_bytes();
    }

    fn write(self, batch: &mut IndexWrites, tree: &sled::Tree) -> Result<(), StoreError> {
        add_entries(batch, &self.device, self.first, &self.positions, Position(self.end), &self.events);
        let marker = seq_key(&self.device);
        if tree.get(&marker)?.is_none() {
            batch.insert(marker, (self.first + self.positions.len() as u64 - 1).to_be_bytes().to_vec());
        }
        Ok(())
    }
}

/// The index entry of `device` holding `seq`, if any.
pub(super) fn entry_holding(tree: &sled::Tree, device: &str, seq: u64) -> Result<Option<BatchEntry>, StoreError> {
    let Some(found) = tree.range(batch_prefix(device)..=batch_key(device, seq)).next_back() else {
        return Ok(None);
    };
    let (key, value) = found?;
    Ok(BatchEntry::decode(&key, &value).filter(|e| e.contains(seq)))
}

/// Indexes the records of `log` from `from` that the index lacks, and stores the new
/// mark (the log's end). Blocks.
pub(super) fn catch_up(tree: &sled::Tree, log: &EventLog, from: Position) -> Result<CatchUp, StoreError> {
    let mut done = CatchUp::default();
    let mut batch = IndexWrites::default();
    let mut run: Option<Run> = None;
    let end = log.end();
    for item in log.iter_from(from.max(log.start())) {
        let (pos, record) = match item {
            Ok(found) => found,
            Err(LogError::Corrupt(_) | LogError::Missing(_)) => {
                done.unreadable += 1;
                if let Some(run) = run.take() {
                    run.write(&mut batch, tree)?;
                }
                continue;
            }
            Err(LogError::Retained { .. } | LogError::PastEnd { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        done.records += 1;
        if entry_holding(tree, record.device(), record.seq())?.is_some() {
            if let Some(run) = run.take() {
                run.write(&mut batch, tree)?;
            }
            continue;
        }
        let Ok(event) = decode(record.body()) else {
            // Intact but not an event this version reads: reported, never indexed.
            tracing::error!(device = record.device(), seq = record.seq(), position = %pos, "a journal record is not a readable event");
            done.unreadable += 1;
            if let Some(run) = run.take() {
                run.write(&mut batch, tree)?;
            }
            continue;
        };
        let indexed = Indexed::of(&event);
        done.indexed += 1;
        if !run.as_ref().is_some_and(|current| current.follows(pos, &record)) {
            if let Some(previous) = run.take() {
                previous.write(&mut batch, tree)?;
            }
            run = Some(Run::start(pos, &record));
        }
        if let Some(current) = run.as_mut() {
            current.push(pos, &record, indexed);
        }
    }
    if let Some(run) = run.take() {
        run.write(&mut batch, tree)?;
    }
    batch.insert(INDEXED_KEY, end.0.to_be_bytes().to_vec());
    let mut atomic = sled::Batch::default();
    batch.add_to(&mut atomic);
    tree.apply_batch(atomic)?;
    Ok(done)
}
