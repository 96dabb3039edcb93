//! The journal: every event a device reported, in order per device, durable before it is
//! acknowledged.
//!
//! Layout in the `journal` tree (device ids never contain NUL):
//! - `e\0<device>\0<seq: u64 BE>` -> the event, in its compact form (see `encode`; JSON
//!   in earlier versions, still read);
//! - `s\0<device>` -> `<seq: u64 BE>`: the device's marker (written with its first event,
//!   so `devices` lists it) and, after a prune, the last sequence at that time: sequences
//!   never restart, even when every event is pruned. The last sequence is the larger of
//!   this and the device's last `e` key, so appends do not rewrite it (one insert less);
//! - `t\0<device>\0<log time: i64 as ordered u64 BE><seq: u64 BE>` -> `<punch type: u8>
//!   <user id>`: punches by their log time (LoadLog pages by this index). The value is the
//!   rest of the punch's identity, so a punch sent again (same device, user, log time,
//!   punch type) is found by scanning the few punches of that second, without a key of
//!   its own: one insert per punch less on the (serial) commit path;
//! - `k\0<device>\0<user>\0<log time><punch type>` -> `<seq: u64 BE>`: the identity key
//!   of earlier versions (their time-index values are empty); still honoured and pruned,
//!   no longer written.
//! - `h\0<device>\0<log hour: i64 as ordered u64 BE>` -> `<count: u64 BE>`: punches per
//!   hour of log time, so a range is counted without reading every punch in it.
//!
//! All are written in one atomic sled batch, so a crash never leaves an index entry
//! without its event.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::error::StoreError;
use super::group_commit::GroupCommit;
use crate::plugin::bindings::types::{Event, EventBody};

/// Per-device writer state: the next sequence number and the durable watermark.
struct DeviceLog {
    /// Next sequence to assign; the lock serialises a device's writers.
    next: tokio::sync::Mutex<u64>,
    /// Highest sequence known to be on disk; delivery workers watch it.
    durable: watch::Sender<u64>,
}

/// What an append did with each event it was given, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// `(event id, sequence, was it a duplicate of a stored event)`.
    pub events: Vec<(String, u64, bool)>,
}

impl Appended {
    /// How many events were new.
    pub fn stored(&self) -> usize {
        self.events.iter().filter(|(_, _, dup)| !dup).count()
    }

    /// How many were duplicates of stored events.
    pub fn duplicates(&self) -> usize {
        self.events.len() - self.stored()
    }
}

/// The durable event journal.
#[derive(Clone)]
pub struct Journal {
    tree: sled::Tree,
    commit: GroupCommit,
    devices: Arc<Mutex<HashMap<String, Arc<DeviceLog>>>>,
}

/// How many sequence numbers one write of [`Journal::purge`] covers.
pub const PURGE_BATCH: u64 = 10_000;

fn event_key(device: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 11);
    key.extend_from_slice(b"e\0");
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn seq_key(device: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 2);
    key.extend_from_slice(b"s\0");
    key.extend_from_slice(device.as_bytes());
    key
}

/// The identity of a punch for de-duplication (also the legacy `k` key); other events
/// are never duplicates.
fn dedupe_key(device: &str, body: &EventBody) -> Option<Vec<u8>> {
    let EventBody::Punch(p) = body else {
        return None;
    };
    let mut key = Vec::with_capacity(device.len() + p.user_id.len() + 16);
    key.extend_from_slice(b"k\0");
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key.extend_from_slice(p.user_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&p.log_time.unix_seconds.to_be_bytes());
    key.push(p.punch_type as u8);
    Some(key)
}

/// An i64 as a u64 whose big-endian bytes sort like the signed value.
fn ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_prefix(device: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 19);
    key.extend_from_slice(b"t\0");
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key
}

fn time_key(device: &str, unix_seconds: i64, seq: u64) -> Vec<u8> {
    let mut key = time_prefix(device);
    key.extend_from_slice(&ordered(unix_seconds));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The time-index value of a punch: the rest of its identity (punch type, user id).
fn identity_value(body: &EventBody) -> Option<Vec<u8>> {
    let EventBody::Punch(p) = body else {
        return None;
    };
    let mut value = Vec::with_capacity(1 + p.user_id.len());
    value.push(p.punch_type as u8);
    value.extend_from_slice(p.user_id.as_bytes());
    Some(value)
}

fn hour_key(device: &str, hour: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.len() + 11);
    key.extend_from_slice(b"h\0");
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    key.extend_from_slice(&ordered(hour));
    key
}

fn log_seconds(body: &EventBody) -> Option<i64> {
    match body {
        EventBody::Punch(p) => Some(p.log_time.unix_seconds),
        _ => None,
    }
}

/// A position in the log-time order of a device's punches: after (log time, sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PunchCursor {
    pub unix_seconds: i64,
    pub sequence: u64,
}

fn seq_of_key(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

impl Journal {
    pub(super) fn open(db: &sled::Db, commit: GroupCommit) -> Result<Self, StoreError> {
        Ok(Journal { tree: db.open_tree("journal")?, commit, devices: Arc::default() })
    }

    fn device(&self, device: &str) -> Result<Arc<DeviceLog>, StoreError> {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = devices.get(device) {
            return Ok(log.clone());
        }
        let last = self.last_seq(device)?;
        let log = Arc::new(DeviceLog { next: tokio::sync::Mutex::new(last + 1), durable: watch::Sender::new(last) });
        devices.insert(device.to_string(), log.clone());
        Ok(log)
    }

    /// Returns once every write made so far (to any tree of the store) is on disk,
    /// sharing the flush with concurrent writers.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.durable().await.map_err(StoreError::Flush)
    }

    /// The highest sequence `device` ever stored (0 when none), pruned or not.
    pub fn last_seq(&self, device: &str) -> Result<u64, StoreError> {
        let marker = self.tree.get(seq_key(device))?.and_then(|v| seq_of_key(&v)).unwrap_or(0);
        let last_event = match self.tree.range(event_key(device, 0)..=event_key(device, u64::MAX)).keys().next_back() {
            Some(key) => seq_of_key(&key?).unwrap_or(0),
            None => 0,
        };
        Ok(marker.max(last_event))
    }

    /// Appends events of one device and returns once they are on disk. Punches already
    /// stored are not stored again: they report the stored event's id and sequence.
    pub async fn append(
        &self,
        device: &str,
        bodies: Vec<EventBody>,
        received_at_ms: u64,
    ) -> Result<Appended, StoreError> {
        // The batch is applied on the group-commit thread and the sequence recorded once
        // it is: run that in a task of its own, so a caller dropped half-way (a device
        // hanging up) never leaves a batch applied with its sequences handed out again.
        let (journal, device) = (self.clone(), device.to_string());
        match tokio::spawn(async move { journal.append_to_completion(&device, bodies, received_at_ms).await }).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Flush(format!("the append was cancelled: {e}"))),
        }
    }

    async fn append_to_completion(
        &self,
        device: &str,
        bodies: Vec<EventBody>,
        received_at_ms: u64,
    ) -> Result<Appended, StoreError> {
        let log = self.device(device)?;
        let mut next = log.next.lock().await;
        let mut batch = sled::Batch::default();
        let mut events = Vec::with_capacity(bodies.len());
        let mut in_batch: HashMap<Vec<u8>, (String, u64)> = HashMap::new();
        let mut seq = *next;
        let mut hours: HashMap<i64, u64> = HashMap::new();
        for body in bodies {
            let dedupe = dedupe_key(device, &body);
            if let Some(key) = &dedupe {
                if let Some((id, s)) = in_batch.get(key) {
                    events.push((id.clone(), *s, true));
                    continue;
                }
                if let Some((id, s)) = self.stored_duplicate(device, &body, key)? {
                    events.push((id, s, true));
                    continue;
                }
            }
            let event = Event {
                id: uuid::Uuid::now_v7().to_string(),
                device_id: device.to_string(),
                sequence: seq,
                received_at_ms,
                body,
            };
            let bytes = encode(&event)?;
            batch.insert(event_key(device, seq), bytes);
            if let (Some(secs), Some(identity)) = (log_seconds(&event.body), identity_value(&event.body)) {
                batch.insert(time_key(device, secs, seq), identity);
                *hours.entry(secs.div_euclid(3600)).or_insert(0) += 1;
            }
            if let Some(key) = dedupe {
                in_batch.insert(key, (event.id.clone(), seq));
            }
            events.push((event.id, seq, false));
            seq += 1;
        }
        let last_new = seq - 1;
        let pending = if seq != *next {
            // No sequence handed out yet: the device's first event, which writes its marker.
            if *next == 1 {
                batch.insert(seq_key(device), &last_new.to_be_bytes());
            }
            self.count_hours(&mut batch, device, &hours, true)?;
            // Applied between two flushes by the group-commit thread (see group_commit.rs
            // for why not here); still one atomic batch.
            let pending = self.commit.apply(self.tree.clone(), batch).await.map_err(StoreError::Flush)?;
            *next = seq;
            Some(pending)
        } else {
            None
        };
        drop(next);
        match pending {
            Some(pending) => pending.durable().await,
            // Only duplicates: the events they point at may still be on their way to disk.
            None => self.commit.durable().await,
        }
        .map_err(StoreError::Flush)?;
        log.durable.send_if_modified(|durable| {
            let advance = last_new > *durable;
            if advance {
                *durable = last_new;
            }
            advance
        });
        Ok(Appended { events })
    }

    /// The stored punch with the identity of `body` (same user, log time, punch type), if
    /// any: found among the punches of that second in the time index, or (for punches
    /// stored by earlier versions) by the legacy identity key `legacy_key`.
    fn stored_duplicate(
        &self,
        device: &str,
        body: &EventBody,
        legacy_key: &[u8],
    ) -> Result<Option<(String, u64)>, StoreError> {
        let (Some(secs), Some(identity)) = (log_seconds(body), identity_value(body)) else {
            return Ok(None);
        };
        let mut legacy_entries = false;
        for entry in self.tree.range(time_key(device, secs, 0)..=time_key(device, secs, u64::MAX)) {
            let (key, value) = entry?;
            if value.is_empty() {
                legacy_entries = true;
            } else if *value == *identity {
                let Some(seq) = seq_of_key(&key) else { continue };
                return Ok(self.get(device, seq)?.map(|e| (e.id, seq)));
            }
        }
        if !legacy_entries {
            return Ok(None);
        }
        let Some(seq) = self.tree.get(legacy_key)? else {
            return Ok(None);
        };
        let Some(seq) = seq_of_key(&seq) else {
            return Ok(None);
        };
        Ok(self.get(device, seq)?.map(|e| (e.id, seq)))
    }

    /// One event.
    pub fn get(&self, device: &str, seq: u64) -> Result<Option<Event>, StoreError> {
        self.tree.get(event_key(device, seq))?.map(|v| decode(&v)).transpose()
    }

    /// Whether event `seq` of `device` is still stored (not pruned or purged).
    pub fn contains(&self, device: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(event_key(device, seq))?)
    }

    /// Removes every event of `device` (its registration was deleted), in batches of
    /// [`PURGE_BATCH`] so that a large journal never becomes one huge write. The sequence
    /// carries on: the id's next event does not reuse a number. Returns how many events
    /// went. Blocks: call it outside async code (`spawn_blocking`).
    pub fn purge(&self, device: &str) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut upto = 0u64;
        let last = self.last_seq(device)?;
        while upto < last {
            upto = upto.saturating_add(PURGE_BATCH).min(last);
            removed += self.prune(device, u64::MAX, upto)?;
        }
        Ok(removed)
    }

    /// Up to `limit` events of `device` with `after < sequence <= upto`, in order.
    pub fn read(&self, device: &str, after: u64, upto: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let range = event_key(device, after + 1)..=event_key(device, upto);
        self.tree.range(range).values().take(limit).map(|v| decode(&v?)).collect()
    }

    /// Watches the durable watermark of `device` (the highest sequence on disk).
    pub fn watch(&self, device: &str) -> Result<watch::Receiver<u64>, StoreError> {
        Ok(self.device(device)?.durable.subscribe())
    }

    /// Every device that ever stored an event, in id order.
    pub fn devices(&self) -> Result<Vec<String>, StoreError> {
        self.tree.scan_prefix(b"s\0").keys().map(|k| Ok(String::from_utf8_lossy(&k?[2..]).into_owned())).collect()
    }

    /// Removes events of `device` received before `before_ms` whose sequence is at most
    /// `upto` (what every route has delivered or dead-lettered). Returns how many. Blocks
    /// on the device's writer lock: call it outside async code (`spawn_blocking`).
    pub fn prune(&self, device: &str, before_ms: u64, upto: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut hours: HashMap<i64, u64> = HashMap::new();
        let log = self.device(device)?;
        // Counters are read-modify-write: hold the device's writer lock.
        let next = log.next.blocking_lock();
        for entry in self.tree.range(event_key(device, 0)..=event_key(device, upto)) {
            let (key, value) = entry?;
            let event = decode(&value)?;
            if event.received_at_ms >= before_ms {
                break;
            }
            // The identity key of earlier versions, if this punch has one.
            if let Some(dedupe) = dedupe_key(device, &event.body) {
                batch.remove(dedupe);
            }
            if let Some(secs) = log_seconds(&event.body) {
                batch.remove(time_key(device, secs, event.sequence));
                *hours.entry(secs.div_euclid(3600)).or_insert(0) += 1;
            }
            batch.remove(key);
            removed += 1;
        }
        if removed > 0 {
            self.count_hours(&mut batch, device, &hours, false)?;
            // The last sequence outlives the events: the next one never restarts.
            batch.insert(seq_key(device), &(*next - 1).to_be_bytes());
            self.tree.apply_batch(batch)?;
        }
        Ok(removed)
    }

    /// Adds (or subtracts) per-hour punch counts into `batch`. The caller holds the
    /// device's writer lock.
    fn count_hours(
        &self,
        batch: &mut sled::Batch,
        device: &str,
        hours: &HashMap<i64, u64>,
        add: bool,
    ) -> Result<(), StoreError> {
        for (hour, n) in hours {
            let key = hour_key(device, *hour);
            let current = self.tree.get(&key)?.and_then(|v| seq_of_key(&v)).unwrap_or(0);
            let next = if add { current + n } else { current.saturating_sub(*n) };
            batch.insert(key, &next.to_be_bytes());
        }
        Ok(())
    }

    /// The highest sequence written so far, with no write of `device` in progress: every
    /// event up to it is in the tree (a consistent snapshot for paging).
    pub async fn snapshot(&self, device: &str) -> Result<u64, StoreError> {
        let log = self.device(device)?;
        let next = log.next.lock().await;
        Ok(*next - 1)
    }

    /// How many punches of `device` have a log time in `from..=to` (Unix seconds).
    /// Whole hours are read from the per-hour counters; only the partial hours at the
    /// edges are scanned.
    pub fn count_punches(&self, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        if to < from {
            return Ok(0);
        }
        let first_full = from.div_euclid(3600) + i64::from(from.rem_euclid(3600) != 0);
        let last_full = (to + 1).div_euclid(3600) - 1;
        if first_full > last_full {
            return self.scan_count(device, from, to);
        }
        let mut count = 0;
        if from < first_full * 3600 {
            count += self.scan_count(device, from, first_full * 3600 - 1)?;
        }
        for v in self.tree.range(hour_key(device, first_full)..=hour_key(device, last_full)).values() {
            count += seq_of_key(&v?).unwrap_or(0);
        }
        if (last_full + 1) * 3600 <= to {
            count += self.scan_count(device, (last_full + 1) * 3600, to)?;
        }
        Ok(count)
    }

    fn scan_count(&self, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        let range = time_key(device, from, 0)..=time_key(device, to, u64::MAX);
        let mut n = 0;
        for k in self.tree.range(range).keys() {
            k?;
            n += 1;
        }
        Ok(n)
    }

    /// Punches of `device` with a log time in `from..=to`, in (log time, sequence)
    /// order, strictly after `after`, with a sequence at most `upto`; at most `limit`.
    pub fn punches(
        &self,
        device: &str,
        from: i64,
        to: i64,
        after: Option<PunchCursor>,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let start = match after {
            Some(c) if c.unix_seconds >= from => {
                let mut k = time_key(device, c.unix_seconds, c.sequence);
                k.push(0);
                k
            }
            _ => time_key(device, from, 0),
        };
        let end = time_key(device, to, u64::MAX);
        if start > end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        for key in self.tree.range(start..=end).keys() {
            if out.len() >= limit {
                break;
            }
            let Some(seq) = seq_of_key(&key?) else { continue };
            if seq > upto {
                continue;
            }
            if let Some(event) = self.get(device, seq)? {
                out.push(event);
            }
        }
        Ok(out)
    }
}

/// The first byte of an event stored compactly: postcard follows. Events stored by
/// earlier versions are JSON (they start with `{`) and are still read. postcard is not
/// self-describing: this byte is the schema version, and a change to the WIT `event`
/// type needs a new byte and a decoder for the old one (the golden test below fails
/// until then).
const COMPACT_EVENT: u8 = 1;

/// An event as stored: [`COMPACT_EVENT`] then postcard, about a fifth of its JSON. sled
/// rewrites a whole leaf (up to 16 entries) every few inserts, so the bytes written per
/// punch, and the punches sled's cache holds, follow the size of the stored event.
fn encode(event: &Event) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(event, vec![COMPACT_EVENT]).map_err(|e| StoreError::Decode(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Event, StoreError> {
    match bytes.split_first() {
        Some((&COMPACT_EVENT, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Decode(e.to_string())),
        _ => serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::types::{DeviceTime, InputType, Punch, PunchType};

    fn punch(user: &str, t: i64) -> EventBody {
        EventBody::Punch(Punch {
            user_id: user.into(),
            log_time: DeviceTime { unix_seconds: t, utc_offset_minutes: 0 },
            punch_type: PunchType::CheckIn,
            input_type: InputType::Card,
            temperature: None,
            face_mask: None,
            work_code: None,
            photo: None,
        })
    }

    /// New events are stored compactly; events stored as JSON by earlier versions are
    /// still read, alone and mixed with new ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_stored_as_json_by_earlier_versions_are_still_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        journal.append("D1", vec![punch("7", 500), punch("8", 501)], 1).await.expect("append");
        let compact = journal.tree.get(event_key("D1", 1)).expect("get").expect("stored");
        let first = journal.get("D1", 1).expect("get").expect("stored");
        let json = serde_json::to_vec(&first).expect("json");
        assert_eq!(compact[0], COMPACT_EVENT);
        assert!(compact.len() * 3 < json.len(), "{} bytes stored for {} bytes of JSON", compact.len(), json.len());
        // Rewrite the first the way earlier versions stored it.
        journal.tree.insert(event_key("D1", 1), json).expect("insert");
        let read = journal.read("D1", 0, 2, 10).expect("read");
        assert_eq!(read[0], first);
        assert_eq!(read[1].sequence, 2);
        let by_time = journal.punches("D1", 0, 1000, None, u64::MAX, 10).expect("punches");
        assert_eq!(by_time, read);
    }

    /// The stored form of an event is a format: events written by this version must stay
    /// readable by later ones. If this fails, the event type changed: give the new form a
    /// new first byte, keep decoding this one, then update the bytes here.
    #[test]
    fn the_compact_event_form_is_stable() {
        let event = Event {
            id: "0192f4c3-7d1e-7a00-8000-000000000001".into(),
            device_id: "D1".into(),
            sequence: 3,
            received_at_ms: 1_750_000_000_000,
            body: punch("1042", 1_750_000_000),
        };
        let stored = encode(&event).expect("encode");
        assert_eq!(hex::encode(&stored), GOLDEN);
        assert_eq!(decode(&hex::decode(GOLDEN).expect("hex")).expect("decode"), event);
    }

    const GOLDEN: &str = "012430313932663463332d376431652d376130302d383030302d3030303030303030303030310244310380b883a1f7320004313034328086f7840d00000600000000";

    /// A punch stored by an earlier version (empty time-index value, identity under its
    /// own `k` key) is still recognised when the device sends it again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn punches_in_the_earlier_layout_are_still_deduplicated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::Store::open(dir.path()).expect("store");
        let journal = store.journal().expect("journal");
        let stored = journal.append("D1", vec![punch("7", 500)], 1).await.expect("append");
        let (id, seq, _) = stored.events[0].clone();
        // Rewrite it the way earlier versions stored it.
        let body = punch("7", 500);
        journal.tree.insert(time_key("D1", 500, seq), &[]).expect("insert");
        journal.tree.insert(dedupe_key("D1", &body).expect("a punch"), &seq.to_be_bytes()).expect("insert");
        let again = journal.append("D1", vec![punch("7", 500), punch("8", 500)], 2).await.expect("append");
        assert_eq!(again.events[0], (id, seq, true));
        assert_eq!(again.stored(), 1, "another user at the same second is new");
        // Pruning removes the earlier identity key with the event.
        let removed = tokio::task::block_in_place(|| journal.prune("D1", u64::MAX, u64::MAX)).expect("prune");
        assert_eq!(removed, 2);
        assert!(journal.tree.get(dedupe_key("D1", &body).expect("a punch")).expect("get").is_none());
    }
}
