//! The punches of recent hours, by the fingerprint of their identity, for
//! de-duplication: a device that did not get its acknowledgement sends the same punches
//! again, and they must not be stored twice. An hour of a device is loaded from the
//! fingerprints its `p` index entries keep the first time a punch of that hour arrives, then kept up to
//! date by the appends; the whole cache keeps to a budget, dropping the hours used
//! longest ago.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes the cache holds at most (about 1.2 million punches). Every hour in use must fit:
/// when the hours appended to exceed it, the least recently used is dropped and loaded
/// again at its next punch (cheap for a terminal's hour of a few hundred punches; an
/// hour of tens of thousands of punches costs milliseconds each time).
pub(super) const BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// Bytes per punch held, about (a fingerprint and a sequence in a hash table).
const ENTRY_BYTES: usize = 28;

/// The keys are fingerprints already: hashed no further.
#[derive(Default)]
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

struct Hour {
    punches: HourPunches,
    used: u64,
}

/// The loaded hours, by device and hour of log time.
#[derive(Default)]
pub(super) struct Recent {
    devices: HashMap<String, HashMap<i64, Hour>>,
    clock: u64,
    entries: usize,
}

impl Recent {
    /// Whether the hour of `device` is loaded.
    pub fn has_hour(&self, device: &str, hour: i64) -> bool {
        self.devices.get(device).is_some_and(|hours| hours.contains_key(&hour))
    }

    /// The sequence of the stored punch with this fingerprint, when its hour is loaded.
    pub fn find(&mut self, device: &str, hour: i64, fingerprint: u64) -> Option<u64> {
        self.clock += 1;
        let entry = self.devices.get_mut(device)?.get_mut(&hour)?;
        entry.used = self.clock;
        entry.punches.get(&fingerprint).copied()
    }

    /// Loads an hour (what the log holds of it).
    pub fn load_hour(&mut self, device: &str, hour: i64, punches: HourPunches) {
        self.clock += 1;
        self.entries += punches.len();
        let loaded = Hour { punches, used: self.clock };
        if let Some(old) = self.devices.entry(device.to_string()).or_default().insert(hour, loaded) {
            self.entries -= old.punches.len();
        }
        self.keep_to_budget();
    }

    /// Records punches just stored (`(hour, fingerprint, sequence)`), into the hours that
    /// are loaded (an hour not loaded is read from the log when needed, and holds them).
    pub fn stored(&mut self, device: &str, punches: impl IntoIterator<Item = (i64, u64, u64)>) {
        let Some(hours) = self.devices.get_mut(device) else { return };
        for (hour, fingerprint, seq) in punches {
            if let Some(loaded) = hours.get_mut(&hour)
                && loaded.punches.insert(fingerprint, seq).is_none()
            {
                self.entries += 1;
            }
        }
        self.keep_to_budget();
    }

    /// Forgets a device (its punches were pruned or purged).
    pub fn forget(&mut self, device: &str) {
        if let Some(hours) = self.devices.remove(device) {
            self.entries -= hours.values().map(|h| h.punches.len()).sum::<usize>();
        }
    }

    /// Drops the hours used longest ago until a quarter of the budget is free again.
    fn keep_to_budget(&mut self) {
        if self.entries * ENTRY_BYTES <= BUDGET_BYTES {
            return;
        }
        let mut by_use: Vec<(u64, &str, i64)> = self
            .devices
            .iter()
            .flat_map(|(id, hours)| hours.iter().map(move |(hour, h)| (h.used, id.as_str(), *hour)))
            .collect();
        by_use.sort_unstable();
        let mut entries = self.entries;
        let mut drop: Vec<(String, i64)> = Vec::new();
        for (_, id, hour) in by_use {
            if entries * ENTRY_BYTES <= BUDGET_BYTES * 3 / 4 {
                break;
            }
            entries -= self.devices.get(id).and_then(|h| h.get(&hour)).map_or(0, |h| h.punches.len());
            drop.push((id.to_string(), hour));
        }
        for (id, hour) in drop {
            if let Some(hours) = self.devices.get_mut(&id) {
                hours.remove(&hour);
                if hours.is_empty() {
                    self.devices.remove(&id);
                }
            }
        }
        self.entries = entries;
    }

    /// Bytes held, about.
    #[cfg(test)]
    pub fn weight(&self) -> usize {
        self.entries * ENTRY_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_of(punches: impl IntoIterator<Item = (u64, u64)>) -> HourPunches {
        punches.into_iter().collect()
    }

    #[test]
    fn a_loaded_hour_answers_and_follows_the_appends() {
        let mut recent = Recent::default();
        assert!(!recent.has_hour("D1", 0));
        recent.load_hour("D1", 0, hour_of([(10, 1)]));
        assert_eq!(recent.find("D1", 0, 10), Some(1));
        recent.stored("D1", [(0, 11, 2), (1, 12, 3)]);
        assert_eq!(recent.find("D1", 0, 11), Some(2));
        assert!(!recent.has_hour("D1", 1), "an hour not loaded is not made up from appends");
        recent.forget("D1");
        assert_eq!(recent.weight(), 0);
    }

    #[test]
    fn the_cache_keeps_to_its_budget_dropping_the_hours_used_longest_ago() {
        let mut recent = Recent::default();
        let per_hour = 20_000u64;
        let mut hours = 0;
        while (hours as usize) * per_hour as usize * ENTRY_BYTES < BUDGET_BYTES * 2 {
            recent.load_hour("D1", hours, hour_of((0..per_hour).map(|i| (i, i))));
            // Hour 0 stays in use.
            recent.find("D1", 0, 1);
            hours += 1;
        }
        assert!(recent.weight() <= BUDGET_BYTES, "{} bytes held", recent.weight());
        assert!(recent.has_hour("D1", 0), "the hour in use is kept");
        assert!(!recent.has_hour("D1", 1), "the one used longest ago went");
        assert!(recent.has_hour("D1", hours - 1));
    }
}
