//! Journals written by earlier versions kept each event in sled (`e\0<device>\0<seq>`,
//! with the `t`, `k` and `h` indexes). At open they are moved into the event log once,
//! device by device, in order, [`CHUNK`] events per append; each chunk's old keys go in
//! the sled batch that indexes its records, so a crash half-way resumes where it was
//! (records already in the log are recognised through the index and not written again).
use super::codec::{decode, encode, log_seconds};
use super::entries::{IndexWrites, Indexed, add_entries};
use super::indexed::entry_holding;
use super::keys::{MARKERS, ordered, trailing_u64};
use crate::store::StoreError;
use crate::store::event_log::{EventLog, LogBatch, Position};

/// Events moved per append.
const CHUNK: usize = 1000;

fn legacy_prefix(tag: u8, device: &str) -> Vec<u8> {
    let mut key = vec![tag, 0];
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key
}

/// Whether the tree holds events in the earlier layout.
pub(super) fn present(tree: &sled::Tree) -> Result<bool, StoreError> {
    Ok(tree.scan_prefix(b"e\0").next().transpose()?.is_some())
}

/// Moves every event of the earlier layout into the log; returns how many. Blocks.
pub(super) fn migrate(tree: &sled::Tree, log: &EventLog) -> Result<u64, StoreError> {
    let mut moved = 0;
    let devices: Vec<String> = tree
        .scan_prefix(MARKERS)
        .keys()
        .map(|k| k.map(|k| String::from_utf8_lossy(&k[MARKERS.len()..]).into_owned()))
        .collect::<Result<_, _>>()?;
    for device in devices {
        loop {
            let chunk: Vec<(sled::IVec, sled::IVec)> =
                tree.scan_prefix(legacy_prefix(b'e', &device)).take(CHUNK).collect::<Result<_, _>>()?;
            if chunk.is_empty() {
                break;
            }
            moved += move_chunk(tree, log, &device, chunk)?;
        }
        // The per-hour counters and any index key left without its event.
        let mut batch = sled::Batch::default();
        for tag in [b'h', b't', b'k'] {
            for key in tree.scan_prefix(legacy_prefix(tag, &device)).keys() {
                batch.remove(key?);
            }
        }
        tree.apply_batch(batch)?;
    }
    tree.flush()?;
    Ok(moved)
}

fn move_chunk(
    tree: &sled::Tree,
    log: &EventLog,
    device: &str,
    chunk: Vec<(sled::IVec, sled::IVec)>,
) -> Result<u64, StoreError> {
    let mut index = sled::Batch::default();
    let mut run = Run::default();
    let mut moved = 0;
    for (key, value) in chunk {
        index.remove(key.clone());
        let Some(seq) = trailing_u64(&key) else { continue };
        let event = decode(&value)?;
        let secs = log_seconds(&event.body);
        if let Some(secs) = secs {
            let mut time_key = legacy_prefix(b't', device);
            time_key.extend_from_slice(&ordered(secs));
            time_key.extend_from_slice(&seq.to_be_bytes());
            index.remove(time_key);
        }
        // Already moved by an earlier, interrupted run (and indexed at open).
        if entry_holding(tree, device, seq)?.is_some() {
            continue;
        }
        // One append holds consecutive sequences: a gap (pruned events) starts another.
        if run.next() != Some(seq) {
            moved += run.write(log, device, &mut index)?;
        }
        if run.events.is_empty() {
            run.first = seq;
        }
        run.records.push(device, seq, &encode(&event)?)?;
        run.events.push(Indexed::of(&event));
    }
    moved += run.write(log, device, &mut index)?;
    tree.apply_batch(index)?;
    Ok(moved)
}

/// Consecutive events of a device on their way into the log.
#[derive(Default)]
struct Run {
    first: u64,
    records: LogBatch,
    events: Vec<Indexed>,
}

impl Run {
    /// The sequence that would continue the run.
    fn next(&self) -> Option<u64> {
        (!self.events.is_empty()).then(|| self.first + self.events.len() as u64)
    }

    /// Appends the run to the log, adds its index entries to `index`, and empties it;
    /// returns how many events.
    fn write(&mut self, log: &EventLog, device: &str, index: &mut sled::Batch) -> Result<u64, StoreError> {
        if self.events.is_empty() {
            return Ok(0);
        }
        let records = std::mem::take(&mut self.records);
        let bytes = records.bytes() as u64;
        let positions = log.append_blocking(records)?;
        let end = Position(positions.first().map_or(0, |p| p.0) + bytes);
        let mut entries = IndexWrites::default();
        add_entries(&mut entries, device, self.first, &positions, end, &self.events);
        entries.add_to(index);
        let moved = self.events.len() as u64;
        self.events.clear();
        Ok(moved)
    }
}
