//! What the simulated fleet looks like: which device speaks which protocol (by a mix
//! ratio), its id, and the numbering of its punches (sequence number, user id, log time,
//! and when each punch is due).
//!
//! Punch `seq` (0, 1, 2, ...) of a device has user id `seq + 1` and log time
//! `epoch + seq` seconds (device-local time, the devices are at UTC+00:00): log times are
//! unique per device, so the journal's de-duplication (device, user, log time, type) never
//! merges two punches, and the callback's `UserId` tells the checker which punch arrived.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::adms_device::protocol;

/// The AuthToken every simulated device uses.
pub const TOKEN: &str = "simtok0123456789abcdef0123456789";

/// The protocol a simulated device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// biogate's native HTTP + JSON protocol, commands by long-poll.
    Native,
    /// ZKTeco ADMS ("iclock" push) through the `zkteco-adms` dialect plugin.
    Adms,
    /// MQTT through a broker.
    Mqtt,
}

impl Protocol {
    /// Every protocol, in report order.
    pub const ALL: [Protocol; 3] = [Protocol::Native, Protocol::Adms, Protocol::Mqtt];

    /// The first letter of its devices' ids.
    pub fn letter(self) -> char {
        match self {
            Protocol::Native => 'N',
            Protocol::Adms => 'A',
            Protocol::Mqtt => 'M',
        }
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Adms => "adms",
            Protocol::Mqtt => "mqtt",
        }
    }
}

/// The share of each protocol in the fleet (`native:adms:mqtt`, e.g. `4:3:3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Parts of native devices.
    pub native: u32,
    /// Parts of ADMS devices.
    pub adms: u32,
    /// Parts of MQTT devices.
    pub mqtt: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix { native: 4, adms: 3, mqtt: 3 }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// Parses `native:adms:mqtt` (`4:3:3`, `1:0:0`).
    fn from_str(text: &str) -> Result<Mix, String> {
        let parts: Vec<u32> = text
            .split(':')
            .map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        match parts.as_slice() {
            [native, adms, mqtt] if native + adms + mqtt > 0 => Ok(Mix { native: *native, adms: *adms, mqtt: *mqtt }),
            _ => Err(format!("{text:?}: write three parts native:adms:mqtt, not all zero (e.g. 4:3:3)")),
        }
    }
}

impl Mix {
    /// The protocol of device `index`: devices are dealt out in the ratio, interleaved
    /// (with 4:3:3, of every ten consecutive devices four are native).
    pub fn protocol(&self, index: usize) -> Protocol {
        let total = (self.native + self.adms + self.mqtt).max(1) as usize;
        let slot = index % total;
        if slot < self.native as usize {
            Protocol::Native
        } else if slot < (self.native + self.adms) as usize {
            Protocol::Adms
        } else {
            Protocol::Mqtt
        }
    }

    /// Whether any device of `devices` speaks `protocol`.
    pub fn uses(&self, protocol: Protocol, devices: usize) -> bool {
        (0..devices.min(64)).any(|i| self.protocol(i) == protocol)
    }
}

/// The id (`stgid`, ADMS `SN`) of device `index`: its protocol's letter and the index
/// (`N0`, `A1`, `M7`).
pub fn device_id(protocol: Protocol, index: usize) -> String {
    format!("{}{index}", protocol.letter())
}

/// The device index of an id made by [`device_id`], or `None` for another id.
pub fn device_index(id: &str) -> Option<usize> {
    let mut chars = id.chars();
    let letter = chars.next()?;
    if !Protocol::ALL.iter().any(|p| p.letter() == letter) {
        return None;
    }
    chars.as_str().parse().ok()
}

/// The user id of punch `seq`.
pub fn user_id(seq: u64) -> String {
    (seq + 1).to_string()
}

/// The punch sequence number a callback's `UserId` stands for.
pub fn seq_of_user(user_id: &str) -> Option<u64> {
    user_id.parse::<u64>().ok()?.checked_sub(1)
}

/// The device-local log time of punch `seq`: `epoch + seq` seconds, `YYYY-MM-DD HH:MM:SS`.
pub fn log_time(epoch: u64, seq: u64) -> String {
    protocol::wall_time(UNIX_EPOCH + Duration::from_secs(epoch + seq), 0)
}

/// A default epoch for a run: now, rounded down to a day, minus 30 days (far enough back
/// that ten million punches of a device stay in the past; distinct runs on one data dir
/// should pass their own epochs).
pub fn default_epoch() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1_782_000_000);
    now / 86_400 * 86_400 - 200 * 86_400
}

/// When the punches of each device are due: every `interval`, from `start` plus a phase
/// that spreads the devices evenly over one interval (so that the fleet's punches are a
/// steady stream, not a herd).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// When the run started.
    pub start: Instant,
    /// Time between two punches of one device.
    pub interval: Duration,
    /// Punches per device at most (`None`: until stopped).
    pub limit: Option<u64>,
}

impl Schedule {
    /// A schedule of `per_minute` punches per device per minute (none at all when 0).
    pub fn per_minute(start: Instant, per_minute: f64, limit: Option<u64>) -> Schedule {
        if per_minute > 0.0 {
            Schedule { start, interval: Duration::from_secs_f64(60.0 / per_minute), limit }
        } else {
            Schedule { start, interval: Duration::from_secs(86_400), limit: Some(0) }
        }
    }

    /// When punch `seq` of device `index` is due.
    pub fn due(&self, index: usize, seq: u64) -> Instant {
        // Golden-ratio spreading: any number of devices covers the interval evenly.
        let phase = (index as f64 * 0.618_033_988_749_895).fract();
        self.start + self.interval.mul_f64(phase + seq as f64)
    }

    /// Whether punch `seq` is within the limit.
    pub fn allows(&self, seq: u64) -> bool {
        self.limit.is_none_or(|limit| seq < limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_numbers_and_mix() {
        assert_eq!(device_index(&device_id(Protocol::Adms, 42)), Some(42));
        assert_eq!(device_index("X1"), None);
        assert_eq!(seq_of_user(&user_id(7)), Some(7));
        assert_eq!(seq_of_user("0"), None);
        let mix: Mix = "4:3:3".parse().expect("a mix");
        let counts = Protocol::ALL.map(|p| (0..100).filter(|&i| mix.protocol(i) == p).count());
        assert_eq!(counts, [40, 30, 30]);
        assert!("0:0:0".parse::<Mix>().is_err());
        assert_eq!(log_time(1_782_000_000, 61), "2026-06-21 00:01:01");
    }
}
