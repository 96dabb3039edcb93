//! The index entries of an append: its events in chunks of at most [`ENTRY_EVENTS`], each
//! a `b` entry with its own span of the log and a `p` entry per hour of log time of its
//! punches, so a read of a few events of a large append (a terminal's backlog of
//! thousands of punches) reads a chunk, not the whole append.
use std::collections::BTreeMap;

use super::keys::{BatchEntry, HourEntry, Span, batch_key, hour_key};
use crate::store::event_log::Position;

/// Events per index entry at most.
pub(super) const ENTRY_EVENTS: usize = 64;

/// What the index keeps of one event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Indexed {
    pub received_at_ms: u64,
    /// The hour of log time of a punch.
    pub hour: Option<i64>,
}

/// Adds to `batch` the entries of consecutive events of `device` from sequence `first`,
/// whose records start at `positions` (one append: contiguous) and end at `end`.
pub(super) fn add_entries(
    batch: &mut sled::Batch,
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
        let mut hours = BTreeMap::<i64, u32>::new();
        for hour in indexed.iter().filter_map(|e| e.hour) {
            *hours.entry(hour).or_insert(0) += 1;
        }
        for (hour, punches) in &hours {
            batch.insert(hour_key(device, *hour, chunk_first), &HourEntry { span, punches: *punches }.encode());
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
