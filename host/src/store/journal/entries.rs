//! The index entries of an append: its events in chunks of at most [`ENTRY_EVENTS`], each
//! a `b` entry with its own span of the log and a `p` entry per hour of log time of its
//! punches, so a read of a few events of a large append (a terminal's backlog of
//! thousands of punches) reads a chunk, not the whole append.
use std::collections::BTreeMap;

use super::codec::{fingerprint, log_seconds};
use super::keys::{BatchEntry, HourEntry, Span, batch_key, hour_key};
use crate::plugin::bindings::types::Event;
use crate::store::event_log::Position;

/// Events per index entry at most.
pub(super) const ENTRY_EVENTS: usize = 64;
// A punch's place in its entry is stored in one byte (keys.rs, `HourEntry::encode`).
const _: () = assert!(ENTRY_EVENTS <= 256);

/// Index entries to write, in order (a later insert of a key wins).
///
/// An append inserts its entries one by one, on its own task, right after its records are
/// durable: a plain sled insert takes the read side of sled's concurrency lock, which a
/// flush holds too, so it never waits for one (an `apply_batch` takes the write side and
/// did; it also makes sled write its log buffer each time). Nothing needs the entries of
/// one append to land together: sled recovers a prefix of its writes, and the mark
/// (`m\0indexed`) is inserted after the entries it covers (see `indexed.rs`).
#[derive(Debug, Default)]
pub(super) struct IndexWrites(Vec<(sled::IVec, sled::IVec)>);

impl IndexWrites {
    /// Inserts `value` under `key` when the writes are applied.
    pub fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.0.push((key.into(), value.into()));
    }

    /// Inserts the writes one by one, in order.
    pub fn insert_each(self, tree: &sled::Tree) -> sled::Result<()> {
        for (key, value) in self.0 {
            tree.insert(key, value)?;
        }
        Ok(())
    }

    /// Adds the writes to `batch` (applied atomically with whatever else it holds).
    pub fn add_to(self, batch: &mut sled::Batch) {
        for (key, value) in self.0 {
            batch.insert(key, value);
        }
    }
}

/// What the index keeps of one event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Indexed {
    pub received_at_ms: u64,
    /// The hour of log time and the fingerprint of a punch.
    pub punch: Option<(i64, u64)>,
}

impl Indexed {
    /// What the index keeps of `event`.
    pub fn of(event: &Event) -> Indexed {
        let punch =
            log_seconds(&event.body).zip(fingerprint(&event.body)).map(|(s, print)| (s.div_euclid(3600), print));
        Indexed { received_at_ms: event.received_at_ms, punch }
    }
}

/// Adds to `batch` the entries of consecutive events of `device` from sequence `first`,
/// whose records start at `positions` (one append: contiguous) and end at `end`.
pub(super) fn add_entries(
    batch: &mut IndexWrites,
    device: &str,
    first: u64,
    positions: &[Position],
    end: Position,
    events: &[Indexed],
) {
    for (chunk, (starts, indexed)) in positions.chunks(ENTRY_EVENTS).zip(events.chunks(ENTRY_EVENTS)).enumerate() {
        let offset = chunk * ENTRY_EVENTS;
        let Some(at) = starts.first().copied() else { continue };
        let until = positions.get(offset + starts.len()).copied().unwrap_or(end);
        let span = Span { at, bytes: until.0.saturating_sub(at.0).min(u64::from(u32::MAX)) as u32 };
        let chunk_first = first + offset as u64;
        // Hour -> (fingerprint, offset from `chunk_first`) of its punches.
        let mut hours = BTreeMap::<i64, Vec<(u64, u8)>>::new();
        for (offset, (hour, print)) in indexed.iter().enumerate().filter_map(|(i, e)| Some((i, e.punch?))) {
            // An entry holds at most ENTRY_EVENTS (64) events: the offset fits a byte.
            hours.entry(hour).or_default().push((print, offset as u8));
        }
        for (hour, prints) in &hours {
            let entry = HourEntry { span, punches: prints.len() as u32 };
            batch.insert(hour_key(device, *hour, chunk_first), entry.encode(prints));
        }
        let entry = BatchEntry {
            first: chunk_first,
            count: starts.len() as u32,
            span,
            received_at_ms: indexed.iter().map(|e| e.received_at_ms).max().unwrap_or(0),
            hours: hours.into_keys().collect(),
        };
        batch.insert(batch_key(device, chunk_first), entry.encode());
    }
}
