//! The punches of recent hours, by identity, for de-duplication: a device that did not
//! get its acknowledgement sends the same punches again, and they must not be stored
//! twice. An hour of a device is loaded from the log (through its `p` keys) the first
//! time a punch of that hour arrives, then kept up to date by the appends; the whole
//! cache keeps to a budget, dropping the devices used longest ago.
use std::collections::HashMap;

use super::codec::Identity;

/// Bytes of identities the cache holds at most (about 100,000 punches).
pub(super) const BUDGET_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct DeviceHours {
    hours: HashMap<i64, HashMap<Identity, u64>>,
    used: u64,
    weight: usize,
}

/// Identities of stored punches per device and hour of log time -> their sequence.
#[derive(Default)]
pub(super) struct Recent {
    devices: HashMap<String, DeviceHours>,
    clock: u64,
    weight: usize,
}

impl Recent {
    /// Whether the hour of `device` is loaded.
    pub fn has_hour(&self, device: &str, hour: i64) -> bool {
        self.devices.get(device).is_some_and(|d| d.hours.contains_key(&hour))
    }

    /// The sequence of the stored punch with `identity`, when its hour is loaded.
    pub fn find(&mut self, device: &str, hour: i64, identity: &Identity) -> Option<u64> {
        self.clock += 1;
        let entry = self.devices.get_mut(device)?;
        entry.used = self.clock;
        entry.hours.get(&hour)?.get(identity).copied()
    }

    /// Loads an hour (what the log holds of it).
    pub fn load_hour(&mut self, device: &str, hour: i64, punches: HashMap<Identity, u64>) {
        let weight: usize = punches.keys().map(Identity::weight).sum();
        let entry = self.devices.entry(device.to_string()).or_default();
        if let Some(old) = entry.hours.insert(hour, punches) {
            let old: usize = old.keys().map(Identity::weight).sum();
            entry.weight -= old;
            self.weight -= old;
        }
        entry.weight += weight;
        self.weight += weight;
        self.keep_to_budget(device);
    }

    /// Records punches just stored, into the hours that are loaded (an hour not loaded
    /// is read from the log when needed, and will hold them).
    pub fn stored(&mut self, device: &str, punches: impl IntoIterator<Item = (i64, Identity, u64)>) {
        let Some(entry) = self.devices.get_mut(device) else { return };
        for (hour, identity, seq) in punches {
            if let Some(set) = entry.hours.get_mut(&hour) {
                let weight = identity.weight();
                if set.insert(identity, seq).is_none() {
                    entry.weight += weight;
                    self.weight += weight;
                }
            }
        }
        self.keep_to_budget(device);
    }

    /// Forgets a device (its punches were pruned or purged).
    pub fn forget(&mut self, device: &str) {
        if let Some(entry) = self.devices.remove(device) {
            self.weight -= entry.weight;
        }
    }

    /// Drops the devices used longest ago (never `keep`) until a quarter of the budget
    /// is free again.
    fn keep_to_budget(&mut self, keep: &str) {
        if self.weight <= BUDGET_BYTES {
            return;
        }
        let mut by_use: Vec<(u64, String)> =
            self.devices.iter().filter(|(id, _)| id.as_str() != keep).map(|(id, d)| (d.used, id.clone())).collect();
        by_use.sort_unstable();
        for (_, id) in by_use {
            if self.weight <= BUDGET_BYTES * 3 / 4 {
                break;
            }
            self.forget(&id);
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn weight(&self) -> usize {
        self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::tests::punch;

    fn id(user: &str, t: i64) -> Identity {
        Identity::of(&punch(user, t)).expect("a punch")
    }

    #[test]
    fn a_loaded_hour_answers_and_follows_the_appends() {
        let mut recent = Recent::default();
        assert!(!recent.has_hour("D1", 0));
        recent.load_hour("D1", 0, HashMap::from([(id("7", 10), 1)]));
        assert_eq!(recent.find("D1", 0, &id("7", 10)), Some(1));
        recent.stored("D1", [(0, id("8", 11), 2), (1, id("9", 3601), 3)]);
        assert_eq!(recent.find("D1", 0, &id("8", 11)), Some(2));
        assert!(!recent.has_hour("D1", 1), "an hour not loaded is not made up from appends");
        recent.forget("D1");
        assert_eq!(recent.weight(), 0);
    }

    #[test]
    fn the_cache_keeps_to_its_budget_dropping_the_least_recently_used() {
        let mut recent = Recent::default();
        let per_device = 2_000;
        let mut devices = 0;
        while devices * per_device * 60 < BUDGET_BYTES * 2 {
            let punches = (0..per_device).map(|i| (id(&format!("user-{i}"), i as i64), i as u64)).collect();
            recent.load_hour(&format!("D{devices}"), 0, punches);
            // D0 stays in use.
            recent.find("D0", 0, &id("x", 0));
            devices += 1;
        }
        assert!(recent.weight() <= BUDGET_BYTES, "{} bytes held", recent.weight());
        assert!(recent.has_hour("D0", 0), "the device in use is kept");
        assert!(!recent.has_hour("D1", 0), "the one used longest ago went");
        assert!(recent.has_hour(&format!("D{}", devices - 1), 0));
    }
}
