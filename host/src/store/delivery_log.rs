//! Delivery bookkeeping: each route's cursor per device, every attempt, dead letters and
//! replay requests, and when each route was first started.
//!
//! Trees: `cursors` (`<route>\0<device>` -> last settled seq; an entry also marks that the
//! route was attached to the device: it is written when the route is first put on the
//! device, at the place the route starts there), `attempts`
//! (`<device>\0<seq>\0<route>\0<n>` -> [`Attempt`]), `dead-letters`
//! (`<route>\0<device>\0<seq>` -> [`DeadLetter`]), `replays` (`<route>\0<device>\0<seq>` -> empty, or [`RESEND`] for a Cams `Resend.PunchLog`),
//! `route-state` (`<route>` -> disabled reason), `route-starts` (`<route>` ->
//! [`RouteRecord`]; `\0` -> () once a gateway that writes these records has started on the
//! store: a store without it comes from an earlier version, whose routes and cursors
//! predate the records).
use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// The value of a replay requested by a Cams `Resend.PunchLog`.
const RESEND: &[u8] = b"resend";

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The normal, in-order delivery (and its retries).
    Scheduled,
    /// An operator's replay.
    Replay,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub event_id: String,
    pub route: String,
    pub device_id: String,
    pub sequence: u64,
    /// 1 for the first attempt of this event on this route.
    pub attempt: u32,
    pub at_ms: u64,
    /// HTTP status, when the receiver answered.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// The start of the response body (at most 256 bytes), or the error.
    pub response: String,
    pub success: bool,
    pub trigger: Trigger,
}

/// An event a route gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub event_id: String,
    pub route: String,
    pub device_id: String,
    pub sequence: u64,
    pub reason: String,
    pub at_ms: u64,
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part);
    }
    out
}

/// Removes every key of `tree` under `prefix`, a thousand at a time.
fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let keys = tree.scan_prefix(prefix).keys().take(1000).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Ok(removed);
        }
        let mut batch = sled::Batch::default();
        removed += keys.len();
        keys.into_iter().for_each(|k| batch.remove(k));
        tree.apply_batch(batch)?;
    }
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Decode(e.to_string()))
}

fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

/// The first byte of an attempt stored compactly: postcard follows (about a third of the
/// JSON of earlier versions, which starts with `{` and is still read). One attempt is
/// written per request, so its size is much of what the attempt log costs. postcard is
/// not self-describing: a change to [`Attempt`] needs a new byte and a decoder for this
/// one (the golden test fails until then).
const COMPACT_ATTEMPT: u8 = 1;

fn encode_attempt(attempt: &Attempt) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(attempt, vec![COMPACT_ATTEMPT]).map_err(|e| StoreError::Decode(e.to_string()))
}

fn decode_attempt(bytes: &[u8]) -> Result<Attempt, StoreError> {
    match bytes.split_first() {
        Some((&COMPACT_ATTEMPT, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Decode(e.to_string())),
        _ => decode(bytes),
    }
}

/// What the store keeps of a route's life: when the gateway first started with it, and
/// when it last attached it to the devices it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// Milliseconds since the epoch of the first start with this route.
    pub created_ms: u64,
    /// Milliseconds since the epoch of the last start with this route.
    pub attached_ms: u64,
}

/// The key of `route-starts` that says the records are kept.
const RECORDS_KEPT: &[u8] = b"\0";

/// Delivery bookkeeping.
#[derive(Clone)]
pub struct DeliveryLog {
    cursors: sled::Tree,
    attempts: sled::Tree,
    dead: sled::Tree,
    replays: sled::Tree,
    routes: sled::Tree,
    secrets: sled::Tree,
    starts: sled::Tree,
}

impl DeliveryLog {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(DeliveryLog {
            cursors: db.open_tree("cursors")?,
            attempts: db.open_tree("attempts")?,
            dead: db.open_tree("dead-letters")?,
            replays: db.open_tree("replays")?,
            routes: db.open_tree("route-state")?,
            secrets: db.open_tree("route-secrets")?,
            starts: db.open_tree("route-starts")?,
        })
    }

    /// The last sequence `route` settled (delivered or dead-lettered) for `device`.
    pub fn cursor(&self, route: &str, device: &str) -> Result<u64, StoreError> {
        Ok(self
            .cursors
            .get(key(&[route.as_bytes(), device.as_bytes()]))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Moves the cursor forward (in memory: durable with the next flush, see
    /// `Journal::durable`).
    pub fn set_cursor(&self, route: &str, device: &str, seq: u64) -> Result<(), StoreError> {
        self.cursors.insert(key(&[route.as_bytes(), device.as_bytes()]), &be(seq))?;
        Ok(())
    }

    /// Whether `route` has a cursor for `device` (it was attached to the device before).
    pub fn has_cursor(&self, route: &str, device: &str) -> Result<bool, StoreError> {
        Ok(self.cursors.contains_key(key(&[route.as_bytes(), device.as_bytes()]))?)
    }

    /// Starts `route`'s cursor for `device` at `seq` (the route delivers what comes after),
    /// unless the route has one for the device already. Returns whether it was set.
    pub fn start_cursor(&self, route: &str, device: &str, seq: u64) -> Result<bool, StoreError> {
        let set = self.cursors.compare_and_swap(
            key(&[route.as_bytes(), device.as_bytes()]),
            None as Option<&[u8]>,
            Some(&be(seq)[..]),
        )?;
        Ok(set.is_ok())
    }

    /// What the store keeps of `route`'s life, if the gateway started with it before.
    pub fn route_record(&self, route: &str) -> Result<Option<RouteRecord>, StoreError> {
        self.starts.get(route.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    /// Keeps `route`'s record.
    pub fn set_route_record(&self, route: &str, record: &RouteRecord) -> Result<(), StoreError> {
        self.starts.insert(route.as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Whether a gateway that keeps route records started on this store before (`false`
    /// for a store of an earlier version, or a new one).
    pub fn keeps_route_records(&self) -> Result<bool, StoreError> {
        Ok(self.starts.contains_key(RECORDS_KEPT)?)
    }

    /// Marks the store as keeping route records.
    pub fn keep_route_records(&self) -> Result<(), StoreError> {
        self.starts.insert(RECORDS_KEPT, &[])?;
        Ok(())
    }

    /// Waits until the delivery bookkeeping written so far is on disk. Blocks: async code
    /// shares the group commit's flush instead (`Journal::durable`).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.starts.flush()?;
        self.cursors.flush()?;
        Ok(())
    }

    /// Records an attempt.
    pub fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let k = key(&[
            attempt.device_id.as_bytes(),
            &be(attempt.sequence),
            attempt.route.as_bytes(),
            &be(attempt.attempt.into()),
        ]);
        self.attempts.insert(k, encode_attempt(attempt)?)?;
        Ok(())
    }

    /// Attempts for `device`'s events with sequence in `from..=to`, oldest first.
    pub fn attempts(&self, device: &str, from: u64, to: u64, limit: usize) -> Result<Vec<Attempt>, StoreError> {
        let start = key(&[device.as_bytes(), &be(from)]);
        let end = key(&[device.as_bytes(), &be(to), &[0xff]]);
        self.attempts.range(start..end).values().take(limit).map(|v| decode_attempt(&v?)).collect()
    }

    /// Removes what is recorded about `device`'s deliveries (its registration was deleted
    /// with its journal): its attempts, and its dead letters and waiting replays on each
    /// of `routes`. Cursors stay: the device's sequence carries on after a purge, so a
    /// device registered again under the id is delivered from its next event. Returns how
    /// many records went.
    pub fn forget_device(&self, device: &str, routes: &[String]) -> Result<usize, StoreError> {
        let mut removed = remove_prefix(&self.attempts, &key(&[device.as_bytes(), b""]))?;
        for route in routes {
            let prefix = key(&[route.as_bytes(), device.as_bytes(), b""]);
            removed += remove_prefix(&self.dead, &prefix)?;
            removed += remove_prefix(&self.replays, &prefix)?;
        }
        Ok(removed)
    }

    /// Dead-letters an event.
    pub fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let k = key(&[letter.route.as_bytes(), letter.device_id.as_bytes(), &be(letter.sequence)]);
        self.dead.insert(k, encode(letter)?)?;
        Ok(())
    }

    /// Dead letters, optionally of one route, oldest first per route and device.
    pub fn dead_letters(&self, route: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let prefix = route.map(|r| key(&[r.as_bytes(), b""])).unwrap_or_default();
        self.dead.scan_prefix(prefix).values().take(limit).map(|v| decode(&v?)).collect()
    }

    /// Asks `route` to deliver `device`'s event `seq` again.
    pub fn request_replay(&self, route: &str, device: &str, seq: u64) -> Result<(), StoreError> {
        self.replays.insert(key(&[route.as_bytes(), device.as_bytes(), &be(seq)]), &[])?;
        self.dead.remove(key(&[route.as_bytes(), device.as_bytes(), &be(seq)]))?;
        Ok(())
    }

    /// [`Self::request_replay`] for a Cams `Resend.PunchLog`: a route that batches resends
    /// (`resend_batch`) may deliver it with its neighbours in one `PunchLog` body.
    pub fn request_resend(&self, route: &str, device: &str, seq: u64) -> Result<(), StoreError> {
        self.replays.insert(key(&[route.as_bytes(), device.as_bytes(), &be(seq)]), RESEND)?;
        self.dead.remove(key(&[route.as_bytes(), device.as_bytes(), &be(seq)]))?;
        Ok(())
    }

    /// The oldest replays waiting for `route` and `device`, at most `max`, as long as each
    /// was requested by a `Resend.PunchLog` (empty when the oldest was not).
    pub fn next_resends(&self, route: &str, device: &str, max: usize) -> Result<Vec<u64>, StoreError> {
        let prefix = key(&[route.as_bytes(), device.as_bytes(), b""]);
        let mut out = Vec::new();
        for entry in self.replays.scan_prefix(prefix).take(max) {
            let (k, v) = entry?;
            if &*v != RESEND {
                break;
            }
            match k.get(k.len().saturating_sub(8)..).and_then(|t| t.try_into().ok()).map(u64::from_be_bytes) {
                Some(seq) => out.push(seq),
                None => break,
            }
        }
        Ok(out)
    }

    /// The oldest replay waiting for `route` and `device`.
    pub fn next_replay(&self, route: &str, device: &str) -> Result<Option<u64>, StoreError> {
        let prefix = key(&[route.as_bytes(), device.as_bytes(), b""]);
        Ok(match self.replays.scan_prefix(prefix).keys().next() {
            Some(k) => {
                let k = k?;
                k.get(k.len().saturating_sub(8)..).and_then(|t| t.try_into().ok()).map(u64::from_be_bytes)
            }
            None => None,
        })
    }

    /// Marks a replay as done.
    pub fn finish_replay(&self, route: &str, device: &str, seq: u64) -> Result<(), StoreError> {
        self.replays.remove(key(&[route.as_bytes(), device.as_bytes(), &be(seq)]))?;
        Ok(())
    }

    /// Why `route` is disabled (a receiver answered 410 Gone), if it is.
    pub fn route_disabled(&self, route: &str) -> Result<Option<String>, StoreError> {
        Ok(self.routes.get(route.as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Disables or (with `None`) re-enables a route.
    pub fn set_route_disabled(&self, route: &str, reason: Option<&str>) -> Result<(), StoreError> {
        match reason {
            Some(reason) => self.routes.insert(route.as_bytes(), reason.as_bytes())?,
            None => self.routes.remove(route.as_bytes())?,
        };
        self.routes.flush()?;
        Ok(())
    }

    /// The signing secret generated for `route`, if any.
    pub fn route_secret(&self, route: &str) -> Result<Option<String>, StoreError> {
        Ok(self.secrets.get(route.as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps a generated signing secret.
    pub fn set_route_secret(&self, route: &str, secret: &str) -> Result<(), StoreError> {
        self.secrets.insert(route.as_bytes(), secret.as_bytes())?;
        self.secrets.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> Attempt {
        Attempt {
            event_id: "0192f4c3-7d1e-7a00-8000-000000000001".into(),
            route: "hr".into(),
            device_id: "D1".into(),
            sequence: 3,
            attempt: 2,
            at_ms: 1_750_000_000_000,
            status: Some(503),
            duration_ms: 12,
            response: "down".into(),
            success: false,
            trigger: Trigger::Scheduled,
        }
    }

    /// Attempts are stored compactly; those stored as JSON by earlier versions are still
    /// read, in key order with new ones.
    #[test]
    fn attempts_are_compact_and_earlier_json_ones_are_still_read() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = DeliveryLog::open(&db).unwrap();
        let old = attempt();
        let key =
            |a: &Attempt| key(&[a.device_id.as_bytes(), &be(a.sequence), a.route.as_bytes(), &be(a.attempt.into())]);
        log.attempts.insert(key(&old), serde_json::to_vec(&old).unwrap()).unwrap();
        let new = Attempt { attempt: 3, status: Some(200), success: true, ..attempt() };
        log.record_attempt(&new).unwrap();
        let stored = log.attempts.get(key(&new)).unwrap().unwrap();
        assert!(stored.len() * 2 < serde_json::to_vec(&new).unwrap().len(), "{} bytes", stored.len());
        assert_eq!(log.attempts("D1", 0, 10, 10).unwrap(), vec![old, new]);
    }

    /// The stored form of an attempt is a format: if this fails, `Attempt` changed; give
    /// the new form a new first byte, keep decoding this one, then update the bytes here.
    #[test]
    fn the_compact_attempt_form_is_stable() {
        let stored = encode_attempt(&attempt()).unwrap();
        assert_eq!(hex::encode(&stored), GOLDEN);
        assert_eq!(decode_attempt(&hex::decode(GOLDEN).unwrap()).unwrap(), attempt());
    }

    const GOLDEN: &str = "012430313932663463332d376431652d376130302d383030302d303030303030303030303031026872024431030280b883a1f73201f7030c04646f776e0000";
}
