//! The punches of recent hours, by the fingerprint of their identity, for
//! de-duplication: a device that did not get its acknowledgement sends the same punches
//! again, and they must not be stored twice. An hour of a device is loaded from the
//! fingerprints its `p` index entries keep the first time a punch of that hour arrives, then kept up to
//! date by the appends; the whole cache keeps to a budget, dropping the hours used
//! longest ago.
//!
//! A big hour dropped from the cache leaves a Bloom filter of its fingerprints behind
//! (10 bits a punch): a new punch of that hour, which the filter says was never stored
//! (99% of new punches), needs no reload. Without it, more hot hours than the budget holds
//! (a backlog of many terminals in the same hour) reload an hour of tens of thousands of
//! punches at every request, each evicting the next. A filter says "maybe" for every
//! punch stored (no false negatives), so a repeat is always looked up in the full hour.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use fastbloom::BloomFilter;

/// Bytes the cache of full hours holds at most (about 1.2 million punches). When the
/// hours appended to exceed it, the least recently used is dropped (a big one leaving a
/// filter) and loaded again when a punch of it may be a repeat.
pub(super) const BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// Bytes per punch held, about (a fingerprint and a sequence in a hash table).
const ENTRY_BYTES: usize = 28;
/// Hours of at least this many punches leave a filter when dropped; smaller ones reload
/// in well under a millisecond.
const FILTER_MIN_PUNCHES: usize = 2_048;
/// Bits of a filter per punch it is sized for (about 1% false positives).
const FILTER_BITS_PER_PUNCH: usize = 10;
/// Bytes the filters hold at most (about 3 million punches at twice their size).
const FILTER_BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// The keys are fingerprints already: hashed no further.
#[derive(Default, Clone)]
pub(super) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Fingerprint -> sequence of the punches of one hour of a device.
pub(super) type HourPunches = HashMap<u64, u64, BuildHasherDefault<Prehashed>>;

/// What the cache knows of a punch's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// A stored punch of the hour has it: its sequence.
    Found(u64),
    /// No stored punch of the hour has it.
    Absent,
    /// The hour must be loaded to know.
    Unknown,
}

impl Lookup {
    /// The sequence found, if any.
    pub fn found(self) -> Option<u64> {
        match self {
            Lookup::Found(seq) => Some(seq),
            Lookup::Absent | Lookup::Unknown => None,
        }
    }
}

/// The fingerprints of a dropped hour, approximately, and how many it was sized for.
struct Filter {
    bloom: BloomFilter<BuildHasherDefault<Prehashed>>,
    len: usize,
    capacity: usize,
}

impl Filter {
    /// A filter of `punches`, with room for as many again.
    fn of(punches: &HourPunches) -> Filter {
        let capacity = punches.len() * 2;
        let mut bloom = BloomFilter::with_num_bits(capacity * FILTER_BITS_PER_PUNCH)
            .hasher(BuildHasherDefault::<Prehashed>::default())
            .expected_items(capacity);
        for print in punches.keys() {
            bloom.insert(print);
        }
        Filter { bloom, len: punches.len(), capacity }
    }

    fn bytes(&self) -> usize {
        self.capacity * FILTER_BITS_PER_PUNCH / 8
    }
}

/// One hour of a device: its full table while cached, else the filter it left.
enum Held {
    Full(HourPunches),
    Filtered(Filter),
}

struct Hour {
    held: Held,
    used: u64,
}

/// The loaded hours, by device and hour of log time.
#[derive(Default)]
pub(super) struct Recent {
    devices: HashMap<String, HashMap<i64, Hour>>,
    clock: u64,
    /// Punches held in full tables.
    entries: usize,
    /// Bytes held in filters.
    filter_bytes: usize,
}

impl Recent {
    /// What the cache knows of `fingerprint` in the hour of `device`.
    pub fn lookup(&mut self, device: &str, hour: i64, fingerprint: u64) -> Lookup {
        self.clock += 1;
        let Some(entry) = self.devices.get_mut(device).and_then(|hours| hours.get_mut(&hour)) else {
            return Lookup::Unknown;
        };
        entry.used = self.clock;
        match &entry.held {
            Held::Full(punches) => punches.get(&fingerprint).map_or(Lookup::Absent, |seq| Lookup::Found(*seq)),
            Held::Filtered(filter) if !filter.bloom.contains(&fingerprint) => Lookup::Absent,
            Held::Filtered(_) => Lookup::Unknown,
        }
    }

    /// Loads an hour (what the log holds of it), in full.
    pub fn load_hour(&mut self, device: &str, hour: i64, punches: HourPunches) {
        self.clock += 1;
        self.entries += punches.len();
        let loaded = Hour { held: Held::Full(punches), used: self.clock };
        if let Some(old) = self.devices.entry(device.to_string()).or_default().insert(hour, loaded) {
            self.release(&old.held);
        }
        self.keep_to_budget();
    }

    /// Records punches just stored (`(hour, fingerprint, sequence)`), into the hours that
    /// are held (an hour not held is loaded from the index when needed, and has them).
    pub fn stored(&mut self, device: &str, punches: impl IntoIterator<Item = (i64, u64, u64)>) {
        let Some(hours) = self.devices.get_mut(device) else { return };
        let mut full = Vec::new();
        for (hour, fingerprint, seq) in punches {
            let Some(held) = hours.get_mut(&hour).map(|h| &mut h.held) else { continue };
            match held {
                Held::Full(punches) => {
                    if punches.insert(fingerprint, seq).is_none() {
                        self.entries += 1;
                    }
                }
                Held::Filtered(filter) => {
                    filter.bloom.insert(&fingerprint);
                    filter.len += 1;
                    if filter.len > filter.capacity {
                        full.push(hour);
                    }
                }
            }
        }
        // A filter past its size would answer "maybe" too often: the hour is loaded in
        // full when next needed.
        for hour in full {
            if let Some(old) = hours.remove(&hour) {
                self.filter_bytes -= match &old.held {
                    Held::Filtered(filter) => filter.bytes(),
                    Held::Full(_) => 0,
                };
            }
        }
        if hours.is_empty() {
            self.devices.remove(device);
        }
        self.keep_to_budget();
    }

    /// Forgets a device (its punches were pruned or purged).
    pub fn forget(&mut self, device: &str) {
        if let Some(hours) = self.devices.remove(device) {
            hours.values().for_each(|h| self.release(&h.held));
        }
    }

    /// Takes what `held` weighs off the totals.
    fn release(&mut self, held: &Held) {
        match held {
            Held::Full(punches) => self.entries -= punches.len(),
            Held::Filtered(filter) => self.filter_bytes -= filter.bytes(),
        }
    }

    /// Drops the full hours used longest ago until a quarter of the budget is free again
    /// (a big one leaves a filter), then the filters used longest ago while they are
    /// over theirs.
    fn keep_to_budget(&mut self) {
        if self.entries * ENTRY_BYTES > BUDGET_BYTES {
            let mut by_use = self.by_use(|held| matches!(held, Held::Full(_)));
            by_use.sort_unstable();
            for (_, id, hour) in by_use {
                if self.entries * ENTRY_BYTES <= BUDGET_BYTES * 3 / 4 {
                    break;
                }
                let Some(entry) = self.devices.get_mut(&id).and_then(|h| h.get_mut(&hour)) else { continue };
                let Held::Full(punches) = &entry.held else { continue };
                self.entries -= punches.len();
                if punches.len() >= FILTER_MIN_PUNCHES {
                    let filter = Filter::of(punches);
                    self.filter_bytes += filter.bytes();
                    entry.held = Held::Filtered(filter);
                    continue;
                }
                self.remove(&id, hour);
            }
        }
        if self.filter_bytes > FILTER_BUDGET_BYTES {
            let mut by_use = self.by_use(|held| matches!(held, Held::Filtered(_)));
            by_use.sort_unstable();
            for (_, id, hour) in by_use {
                if self.filter_bytes <= FILTER_BUDGET_BYTES * 3 / 4 {
                    break;
                }
                if let Some(old) = self.remove(&id, hour) {
                    self.release(&old.held);
                }
            }
        }
    }

    /// (last use, device, hour) of the hours held as `which` says.
    fn by_use(&self, which: impl Fn(&Held) -> bool) -> Vec<(u64, String, i64)> {
        self.devices
            .iter()
            .flat_map(|(id, hours)| hours.iter().map(move |(hour, h)| (id, hour, h)))
            .filter(|(_, _, h)| which(&h.held))
            .map(|(id, hour, h)| (h.used, id.clone(), *hour))
            .collect()
    }

    /// Removes an hour (its weight is the caller's to take off).
    fn remove(&mut self, device: &str, hour: i64) -> Option<Hour> {
        let hours = self.devices.get_mut(device)?;
        let removed = hours.remove(&hour);
        if hours.is_empty() {
            self.devices.remove(device);
        }
        removed
    }

    /// Bytes held, about.
    #[cfg(test)]
    pub fn weight(&self) -> usize {
        self.entries * ENTRY_BYTES + self.filter_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_of(punches: impl IntoIterator<Item = (u64, u64)>) -> HourPunches {
        punches.into_iter().collect()
    }

    /// Fingerprints as the journal makes them: spread over all 64 bits.
    fn print(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    fn is_full(recent: &Recent, device: &str, hour: i64) -> bool {
        recent.devices.get(device).and_then(|h| h.get(&hour)).is_some_and(|h| matches!(h.held, Held::Full(_)))
    }

    #[test]
    fn a_loaded_hour_answers_and_follows_the_appends() {
        let mut recent = Recent::default();
        assert_eq!(recent.lookup("D1", 0, 10), Lookup::Unknown);
        recent.load_hour("D1", 0, hour_of([(10, 1)]));
        assert_eq!(recent.lookup("D1", 0, 10), Lookup::Found(1));
        assert_eq!(recent.lookup("D1", 0, 99), Lookup::Absent);
        recent.stored("D1", [(0, 11, 2), (1, 12, 3)]);
        assert_eq!(recent.lookup("D1", 0, 11), Lookup::Found(2));
        assert_eq!(recent.lookup("D1", 1, 12), Lookup::Unknown, "an hour not loaded is not made up from appends");
        recent.forget("D1");
        assert_eq!(recent.weight(), 0);
    }

    #[test]
    fn the_cache_keeps_to_its_budget_dropping_the_hours_used_longest_ago() {
        let mut recent = Recent::default();
        let per_hour = 20_000u64;
        let mut hours = 0;
        while (hours as usize) * per_hour as usize * ENTRY_BYTES < BUDGET_BYTES * 2 {
            recent.load_hour("D1", hours, hour_of((0..per_hour).map(|i| (print(i + hours as u64 * per_hour), i))));
            // Hour 0 stays in use.
            recent.lookup("D1", 0, 1);
            hours += 1;
        }
        assert!(recent.weight() <= BUDGET_BYTES + FILTER_BUDGET_BYTES, "{} bytes held", recent.weight());
        assert!(is_full(&recent, "D1", 0), "the hour in use is kept");
        assert!(!is_full(&recent, "D1", 1), "the one used longest ago went");
        assert!(is_full(&recent, "D1", hours - 1));
    }

    #[test]
    fn a_big_hour_dropped_leaves_a_filter_that_never_misses_a_stored_punch() {
        let mut recent = Recent::default();
        let per_hour = 100_000u64;
        recent.load_hour("D1", 0, hour_of((0..per_hour).map(|i| (print(i), i))));
        // Punches appended while the hour is held in full, then while it is filtered.
        recent.stored("D1", [(0, print(per_hour), per_hour)]);
        let mut hour = 1;
        while is_full(&recent, "D1", 0) {
            recent.load_hour("D2", hour, hour_of((0..per_hour).map(|i| (print(i + hour as u64 * per_hour), i))));
            hour += 1;
        }
        recent.stored("D1", [(0, print(per_hour + 1), per_hour + 1)]);

        // Every stored punch of the dropped hour is "maybe": it is looked up in full.
        for i in 0..=per_hour + 1 {
            assert_eq!(recent.lookup("D1", 0, print(i)), Lookup::Unknown, "punch {i}");
        }
        // New punches are mostly known to be new, without a reload.
        let new = 10_000u64;
        let absent = (0..new).filter(|i| recent.lookup("D1", 0, print(1_000_000_000 + i)) == Lookup::Absent).count();
        assert!(absent as f64 / new as f64 > 0.97, "{absent} of {new} known to be new");

        // Loaded again, the hour answers exactly.
        recent.load_hour("D1", 0, hour_of((0..=per_hour + 1).map(|i| (print(i), i))));
        assert_eq!(recent.lookup("D1", 0, print(per_hour + 1)), Lookup::Found(per_hour + 1));
        recent.forget("D1");
        recent.forget("D2");
        assert_eq!(recent.weight(), 0, "what is forgotten weighs nothing");
    }

    #[test]
    fn a_filter_that_outgrows_its_size_goes_and_the_hour_is_loaded_again() {
        let mut recent = Recent::default();
        let per_hour = FILTER_MIN_PUNCHES as u64;
        recent.load_hour("D1", 0, hour_of((0..per_hour).map(|i| (print(i), i))));
        let mut hour = 1;
        while is_full(&recent, "D1", 0) {
            recent.load_hour("D2", hour, hour_of((0..100_000).map(|i| (print(i + hour as u64 * 100_000), i))));
            hour += 1;
        }
        recent.stored("D1", (per_hour..per_hour * 3 + 1).map(|i| (0, print(i), i)));
        assert_eq!(recent.lookup("D1", 0, print(1_000_000_000)), Lookup::Unknown);
    }
}
