//! The arrival checker: devices tell it when they start sending each punch, the callback
//! receiver tells it what arrived; it finds punches that are missing, arrived more than
//! once, or arrived after a later punch of the same device, and measures the
//! punch-to-callback latency (first send attempt to arrival).
//!
//! Memory: per device a vector of send offsets (4 bytes per punch) and of arrival counts
//! (1 byte per punch), behind one mutex per device; per arrival 4 bytes of latency.
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A send offset that was never recorded.
const UNKNOWN: u32 = u32::MAX;

#[derive(Default)]
struct Track {
    /// Microseconds from the checker's start to the first send of punch `seq`.
    sent: Vec<u32>,
    /// How many times punch `seq` arrived.
    seen: Vec<u8>,
    /// The highest sequence number that arrived.
    max_seen: Option<u64>,
    duplicates: u64,
    out_of_order: u64,
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Punches the devices sent (at least attempted).
    pub sent: u64,
    /// Distinct punches that arrived.
    pub delivered: u64,
    /// Punches sent that never arrived.
    pub missing: u64,
    /// Arrivals of a punch that had arrived before.
    pub duplicates: u64,
    /// Arrivals of a punch after a later punch of the same device.
    pub out_of_order: u64,
    /// Arrivals of a device or punch the checker does not know (not sent by this run).
    pub unknown: u64,
    /// Other deliveries (device status events and such), not punches.
    pub other: u64,
}

impl CheckReport {
    /// Every punch arrived, once, in order, and nothing unknown arrived.
    pub fn is_clean(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.unknown == 0
            && self.delivered == self.sent
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, delivered {}, missing {}, duplicates {}, out of order {}, unknown {}, other deliveries {}",
            self.sent, self.delivered, self.missing, self.duplicates, self.out_of_order, self.unknown, self.other
        )
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of samples in microseconds (sorted in place).
    pub fn of_micros(samples: &mut [u32]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
        Latency { count: samples.len(), p50: at(0.5), p99: at(0.99), max: at(1.0) }
    }
}

/// The checker of one run, shared by the devices and the receiver.
pub struct Checker {
    start: Instant,
    devices: Vec<Mutex<Track>>,
    latencies: Mutex<Vec<u32>>,
    arrivals: AtomicU64,
    unknown: AtomicU64,
    other: AtomicU64,
    /// Microseconds from start to the first and last punch arrival since the last
    /// [`Checker::reset_marks`] (0: none).
    first_arrival: AtomicU64,
    last_arrival: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Checker {
    /// A checker of devices `0..devices`.
    pub fn new(devices: usize) -> Checker {
        Checker {
            start: Instant::now(),
            devices: (0..devices).map(|_| Mutex::default()).collect(),
            latencies: Mutex::default(),
            arrivals: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            other: AtomicU64::new(0),
            first_arrival: AtomicU64::new(0),
            last_arrival: AtomicU64::new(0),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    /// Device `device` starts sending punch `seq` now (a repeat keeps the first time).
    pub fn sending(&self, device: usize, seq: u64) {
        self.sending_at(device, seq, Instant::now());
    }

    /// Device `device` started sending punch `seq` at `at`.
    pub fn sending_at(&self, device: usize, seq: u64, at: Instant) {
        let Some(track) = self.devices.get(device) else {
            return;
        };
        let offset = self.micros(at).min(UNKNOWN as u64 - 1) as u32;
        let mut track = lock(track);
        let seq = seq as usize;
        if seq >= track.sent.len() {
            track.sent.resize(seq, UNKNOWN);
            track.sent.push(offset);
        } else if track.sent[seq] == UNKNOWN {
            track.sent[seq] = offset;
        }
    }

    /// Punch `seq` of device `device` arrived at `at`.
    pub fn arrived(&self, device: usize, seq: u64, at: Instant) {
        let Some(track) = self.devices.get(device) else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = self.micros(at);
        let latency = {
            let mut track = lock(track);
            let index = seq as usize;
            if index >= track.sent.len() {
                drop(track);
                self.unknown.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if index >= track.seen.len() {
                track.seen.resize(index + 1, 0);
            }
            track.seen[index] = track.seen[index].saturating_add(1);
            if track.seen[index] > 1 {
                track.duplicates += 1;
                None
            } else {
                if track.max_seen.is_some_and(|max| max > seq) {
                    track.out_of_order += 1;
                }
                track.max_seen = Some(track.max_seen.map_or(seq, |max| max.max(seq)));
                let sent = track.sent[index];
                (sent != UNKNOWN).then(|| now.saturating_sub(sent as u64).min(UNKNOWN as u64 - 1) as u32)
            }
        };
        if let Some(latency) = latency {
            lock(&self.latencies).push(latency);
        }
        self.arrivals.fetch_add(1, Ordering::Relaxed);
        let mark = now.max(1);
        let _ = self.first_arrival.compare_exchange(0, mark, Ordering::Relaxed, Ordering::Relaxed);
        self.last_arrival.fetch_max(mark, Ordering::Relaxed);
    }

    /// A delivery that is not a punch arrived (a device status event).
    pub fn other_arrived(&self) {
        self.other.fetch_add(1, Ordering::Relaxed);
    }

    /// A punch delivery the checker could not read (no device, no user id).
    pub fn unreadable_arrived(&self) {
        self.unknown.fetch_add(1, Ordering::Relaxed);
    }

    /// Punch arrivals so far (duplicates included).
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// When the first punch arrived since the last reset.
    pub fn first_arrival(&self) -> Option<Instant> {
        let m = self.first_arrival.load(Ordering::Relaxed);
        (m > 0).then(|| self.start + Duration::from_micros(m))
    }

    /// When the last punch arrived since the last reset.
    pub fn last_arrival(&self) -> Option<Instant> {
        let m = self.last_arrival.load(Ordering::Relaxed);
        (m > 0).then(|| self.start + Duration::from_micros(m))
    }

    /// Forgets the first and last arrival times.
    pub fn reset_marks(&self) {
        self.first_arrival.store(0, Ordering::Relaxed);
        self.last_arrival.store(0, Ordering::Relaxed);
    }

    /// Takes the latency samples recorded so far (the next call starts afresh).
    pub fn take_latency(&self) -> Latency {
        let mut samples = std::mem::take(&mut *lock(&self.latencies));
        Latency::of_micros(&mut samples)
    }

    /// Sent and distinct delivered punches so far (cheap enough to poll every second).
    pub fn progress(&self) -> (u64, u64) {
        let mut sent = 0;
        let mut delivered = 0;
        for track in &self.devices {
            let track = lock(track);
            sent += track.sent.len() as u64;
            delivered += track.seen.iter().filter(|&&n| n > 0).count() as u64;
        }
        (sent, delivered)
    }

    /// Whether every punch first sent before `at` arrived (the backlog of an outage that
    /// ended at `at` is drained), with how many of them are still missing.
    pub fn missing_sent_before(&self, at: Instant) -> u64 {
        let limit = self.micros(at);
        let mut missing = 0;
        for track in &self.devices {
            let track = lock(track);
            for (seq, &sent) in track.sent.iter().enumerate() {
                if sent != UNKNOWN && (sent as u64) < limit && track.seen.get(seq).is_none_or(|&n| n == 0) {
                    missing += 1;
                }
            }
        }
        missing
    }

    /// The first `at_most` punches sent that never arrived, as (device, seq), by device.
    pub fn missing_punches(&self, at_most: usize) -> Vec<(usize, u64)> {
        let mut missing = Vec::new();
        for (device, track) in self.devices.iter().enumerate() {
            let track = lock(track);
            let lost = (0..track.sent.len()).filter(|&seq| track.seen.get(seq).is_none_or(|&n| n == 0));
            missing.extend(lost.map(|seq| (device, seq as u64)).take(at_most - missing.len()));
            if missing.len() == at_most {
                break;
            }
        }
        missing
    }

    /// Waits until every punch sent arrived, or `timeout` passed; returns whether it did.
    pub async fn wait_all_delivered(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let (sent, delivered) = self.progress();
            if delivered >= sent {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the checker found so far.
    pub fn report(&self) -> CheckReport {
        let mut report = CheckReport {
            unknown: self.unknown.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
            ..CheckReport::default()
        };
        for track in &self.devices {
            let track = lock(track);
            report.sent += track.sent.len() as u64;
            let delivered = track.seen.iter().filter(|&&n| n > 0).count() as u64;
            report.delivered += delivered;
            report.missing += track.sent.len() as u64 - delivered;
            report.duplicates += track.duplicates;
            report.out_of_order += track.out_of_order;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_once_in_order_is_clean() {
        let checker = Checker::new(2);
        for seq in 0..3 {
            checker.sending(0, seq);
            checker.sending(1, seq);
        }
        let now = Instant::now();
        for seq in 0..3 {
            checker.arrived(1, seq, now);
            checker.arrived(0, seq, now);
        }
        let report = checker.report();
        assert!(report.is_clean(), "{report}");
        assert_eq!((report.sent, report.delivered), (6, 6));
        assert_eq!(checker.take_latency().count, 6);
    }

    #[test]
    fn flags_missing_duplicate_out_of_order_and_unknown() {
        let checker = Checker::new(1);
        for seq in 0..5 {
            checker.sending(0, seq);
        }
        let now = Instant::now();
        checker.arrived(0, 0, now);
        checker.arrived(0, 2, now); // 1 is late
        checker.arrived(0, 1, now); // out of order
        checker.arrived(0, 2, now); // duplicate
        assert_eq!(checker.missing_punches(10), [(0, 3), (0, 4)]);
        assert_eq!(checker.missing_punches(1), [(0, 3)]);
        checker.arrived(0, 9, now); // never sent
        checker.arrived(5, 0, now); // no such device
        // 3 and 4 never arrive.
        let report = checker.report();
        assert_eq!(
            report,
            CheckReport { sent: 5, delivered: 3, missing: 2, duplicates: 1, out_of_order: 1, unknown: 2, other: 0 },
            "{report}"
        );
        assert!(!report.is_clean());
    }

    #[test]
    fn latency_is_from_the_first_send() {
        let checker = Checker::new(1);
        let t0 = Instant::now();
        checker.sending_at(0, 0, t0);
        checker.sending_at(0, 0, t0 + Duration::from_millis(500)); // a retry keeps the first time
        checker.arrived(0, 0, t0 + Duration::from_millis(20));
        let latency = checker.take_latency();
        assert_eq!(latency.count, 1);
        assert!((latency.p50 - 20.0).abs() < 0.01, "{latency:?}");
    }
}
