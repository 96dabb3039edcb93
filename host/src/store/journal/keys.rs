//! The journal's keys and values in sled (its tree `journal`), where only indexes live:
//! the events themselves are records of the event log (`store::event_log`). Device ids
//! never contain NUL.
//!
//! - `b\0<device>\0<first seq: u64 BE>` -> [`BatchEntry`]: one append of a device (its
//!   events have consecutive sequences from `first`), where its records are in the log
//!   (one span, read with one `pread`), when it was received, the hours of log time of
//!   its punches. Reads by sequence go through these.
//! - `p\0<device>\0<log hour: i64 as ordered u64 BE><first seq: u64 BE>` -> [`HourEntry`]:
//!   an append that holds punches with a log time in that hour, how many, and the
//!   fingerprint of each. LoadLog pages and counts by these; the de-duplication of
//!   punches loads an hour's fingerprints from them, without reading the log.
//! - `s\0<device>` -> `<seq: u64 BE>`: the device's marker (written with its first event,
//!   so `devices` lists it) and, after a prune, the last sequence at that time: sequences
//!   never restart, even when every event is pruned.
//! - `m\0indexed` -> `<position: u64 BE>`: every log record before this position is in
//!   the index; at open, the records after it are indexed again (sled writes are not
//!   flushed with each append: the log's `fdatasync` is what makes an event durable).
//!
//! Earlier versions kept the events in sled (`e`, `t`, `k`, `h` keys); `legacy.rs`
//! moves them into the log once.
use crate::store::event_log::Position;

pub(super) const INDEXED_KEY: &[u8] = b"m\0indexed";
/// Prefix of the device markers.
pub(super) const MARKERS: &[u8] = b"s\0";

fn prefixed(tag: u8, device: &str, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 3 + extra);
    key.push(tag);
    key.push(0);
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key
}

/// An i64 as a u64 whose big-endian bytes sort like the signed value.
pub(super) fn ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn batch_prefix(device: &str) -> Vec<u8> {
    prefixed(b'b', device, 8)
}

pub(super) fn batch_key(device: &str, first: u64) -> Vec<u8> {
    let mut key = batch_prefix(device);
    key.extend_from_slice(&first.to_be_bytes());
    key
}

pub(super) fn hour_key(device: &str, hour: i64, first: u64) -> Vec<u8> {
    let mut key = prefixed(b'p', device, 16);
    key.extend_from_slice(&ordered(hour));
    key.extend_from_slice(&first.to_be_bytes());
    key
}

pub(super) fn seq_key(device: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 2);
    key.extend_from_slice(MARKERS);
    key.extend_from_slice(device.as_bytes());
    key
}

/// The trailing u64 of a key (a sequence), or a value that is one u64.
pub(super) fn trailing_u64(bytes: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = bytes.get(bytes.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The log hour in an hour key (the 8 bytes before the trailing sequence).
pub(super) fn hour_of_key(key: &[u8]) -> Option<i64> {
    let at = key.len().checked_sub(16)?;
    let bytes: [u8; 8] = key.get(at..at + 8)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// Where an append's records are in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub at: Position,
    pub bytes: u32,
}

/// One append of a device, as its `b` key's value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BatchEntry {
    pub first: u64,
    pub count: u32,
    pub span: Span,
    /// When the append was received (every event of it has this `received_at_ms`, but
    /// for batches moved from an earlier layout: then the latest of theirs).
    pub received_at_ms: u64,
    /// The hours of log time of its punches (each has an `p` key).
    pub hours: Vec<i64>,
}

impl BatchEntry {
    /// The last sequence of the append.
    pub fn last(&self) -> u64 {
        self.first + u64::from(self.count.max(1)) - 1
    }

    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last()).contains(&seq)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(26 + self.hours.len() * 8);
        value.extend_from_slice(&self.span.at.0.to_be_bytes());
        value.extend_from_slice(&self.span.bytes.to_be_bytes());
        value.extend_from_slice(&self.count.to_be_bytes());
        value.extend_from_slice(&self.received_at_ms.to_be_bytes());
        value.extend_from_slice(&(self.hours.len() as u16).to_be_bytes());
        for hour in &self.hours {
            value.extend_from_slice(&hour.to_be_bytes());
        }
        value
    }

    /// The entry of the `b` key `key` with value `value`; `None` when either is not one.
    pub fn decode(key: &[u8], value: &[u8]) -> Option<BatchEntry> {
        let u64_at = |at: usize| value.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        let u32_at = |at: usize| value.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
        let hours_len = usize::from(u16::from_be_bytes(value.get(24..26)?.try_into().ok()?));
        let hours = (0..hours_len).map(|i| u64_at(26 + i * 8).map(|h| h as i64)).collect::<Option<Vec<_>>>()?;
        Some(BatchEntry {
            first: trailing_u64(key)?,
            span: Span { at: Position(u64_at(0)?), bytes: u32_at(8)? },
            count: u32_at(12)?,
            received_at_ms: u64_at(16)?,
            hours,
        })
    }
}

/// The punches of one hour of log time in one append, as its `p` key's value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HourEntry {
    pub span: Span,
    /// How many punches of the append have a log time in the hour.
    pub punches: u32,
}

/// Bytes of a `p` value before its fingerprints.
const HOUR_HEAD: usize = 16;
/// Bytes per fingerprint in a `p` value: the fingerprint (u64 BE), then the punch's
/// sequence as an offset from the entry's first (an entry holds at most 64 events).
const PRINT_BYTES: usize = 9;

impl HourEntry {
    /// The value: the entry, then `prints` (fingerprint, offset of the punch's sequence
    /// from the key's first sequence) of its punches.
    pub fn encode(&self, prints: &[(u64, u8)]) -> Vec<u8> {
        let mut value = Vec::with_capacity(HOUR_HEAD + prints.len() * PRINT_BYTES);
        value.extend_from_slice(&self.span.at.0.to_be_bytes());
        value.extend_from_slice(&self.span.bytes.to_be_bytes());
        value.extend_from_slice(&self.punches.to_be_bytes());
        for (print, offset) in prints {
            value.extend_from_slice(&print.to_be_bytes());
            value.push(*offset);
        }
        value
    }

    /// The (fingerprint, sequence) of each punch of the `p` value `value` whose key's
    /// first sequence is `first`; `None` when the value holds no fingerprints for them
    /// (written by a version that did not keep them: the punches are read from the log).
    pub fn prints(value: &[u8], first: u64) -> Option<impl Iterator<Item = (u64, u64)> + '_> {
        let punches = usize::try_from(Self::decode(value)?.punches).ok()?;
        let prints = value.get(HOUR_HEAD..)?;
        (prints.len() == punches * PRINT_BYTES).then(|| {
            prints.chunks_exact(PRINT_BYTES).map(move |chunk| {
                let mut print = [0; 8];
                print.copy_from_slice(&chunk[..8]);
                (u64::from_be_bytes(print), first + u64::from(chunk[8]))
            })
        })
    }

    pub fn decode(value: &[u8]) -> Option<HourEntry> {
        let at = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        let bytes = u32::from_be_bytes(value.get(8..12)?.try_into().ok()?);
        let punches = u32::from_be_bytes(value.get(12..16)?.try_into().ok()?);
        Some(HourEntry { span: Span { at: Position(at), bytes }, punches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back() {
        let entry = BatchEntry {
            first: 7,
            count: 3,
            span: Span { at: Position(4096), bytes: 300 },
            received_at_ms: 1_750_000_000_000,
            hours: vec![-1, 486_111],
        };
        let key = batch_key("D1", 7);
        assert_eq!(BatchEntry::decode(&key, &entry.encode()), Some(entry.clone()));
        assert_eq!(entry.last(), 9);
        assert!(entry.contains(9) && !entry.contains(10) && !entry.contains(6));
        let hour = HourEntry { span: entry.span, punches: 2 };
        let value = hour.encode(&[(u64::MAX, 0), (5, 63)]);
        assert_eq!(HourEntry::decode(&value), Some(hour));
        let prints: Vec<(u64, u64)> = HourEntry::prints(&value, 7).expect("prints").collect();
        assert_eq!(prints, [(u64::MAX, 7), (5, 70)]);
        // A value of an earlier version (no fingerprints) says so.
        assert!(HourEntry::prints(&value[..16], 7).is_none());
        assert!(HourEntry::prints(&hour.encode(&[(1, 0)]), 7).is_none(), "fewer prints than punches");
        assert_eq!(hour_of_key(&hour_key("D1", -5, 9)), Some(-5));
        assert!(hour_key("D1", -1, 0) < hour_key("D1", 0, 0), "hours sort like their values");
        assert!(BatchEntry::decode(&key, b"short").is_none());
    }
}
