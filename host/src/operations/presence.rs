//! When the gateway last heard from each device, in memory: a device is seen when it
//! sends events (punches, results, status), asks for its commands (a native long poll, a
//! dialect plugin's `commands.take-pending`), or, on MQTT, while its last `status` said it
//! is online. A device that reports itself offline is offline at once. Nothing is kept
//! across a restart: until a device is heard from again, it counts as not seen.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Seen {
    /// Last heard from at this instant.
    At(Instant),
    /// Connected through a session that reports its end (MQTT, with its last will): seen
    /// until it says otherwise.
    Connected,
}

/// When each device was last heard from.
#[derive(Debug, Default)]
pub struct Presence(Mutex<HashMap<String, Seen>>);

impl Presence {
    /// The device was heard from now. A connected session stays connected.
    pub fn touch(&self, device: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get_mut(device) {
            Some(Seen::Connected) => {}
            Some(at) => *at = Seen::At(Instant::now()),
            None => {
                seen.insert(device.to_string(), Seen::At(Instant::now()));
            }
        }
    }

    /// The device reported itself online (`true`) or offline (`false`). `session`: the
    /// transport reports the session's end (MQTT), so an online device stays seen until
    /// then; otherwise online is heard from now.
    pub fn reported(&self, device: &str, online: bool, session: bool) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match (online, session) {
            (true, true) => seen.insert(device.to_string(), Seen::Connected),
            (true, false) => seen.insert(device.to_string(), Seen::At(Instant::now())),
            (false, _) => seen.remove(device),
        };
    }

    /// Whether the device was heard from within `window` (or is connected).
    pub fn seen_within(&self, device: &str, window: Duration) -> bool {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).get(device) {
            Some(Seen::Connected) => true,
            Some(Seen::At(at)) => at.elapsed() <= window,
            None => false,
        }
    }

    /// Forgets a deleted device.
    pub fn forget(&self, device: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn a_device_is_seen_once_heard_from_and_not_before() {
        let p = Presence::default();
        assert!(!p.seen_within("D1", WINDOW));
        p.touch("D1");
        assert!(p.seen_within("D1", WINDOW));
        assert!(!p.seen_within("D2", WINDOW));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!p.seen_within("D1", Duration::from_millis(10)), "heard from longer ago than the window");
    }

    #[test]
    fn reports_of_online_and_offline() {
        let p = Presence::default();
        p.reported("M1", true, true);
        std::thread::sleep(Duration::from_millis(20));
        assert!(p.seen_within("M1", Duration::from_millis(10)), "a connected session is seen until it ends");
        p.touch("M1");
        assert!(p.seen_within("M1", Duration::from_millis(10)), "a touch does not end a session");
        p.reported("M1", false, true);
        assert!(!p.seen_within("M1", WINDOW), "offline at once");

        p.touch("N1");
        p.reported("N1", false, false);
        assert!(!p.seen_within("N1", WINDOW));
        p.reported("N1", true, false);
        assert!(p.seen_within("N1", WINDOW));
        p.forget("N1");
        assert!(!p.seen_within("N1", WINDOW));
    }
}
