//! The journal: every event a device reported, in order per device, durable before it is
//! acknowledged.
//!
//! The events are records of the event log (`store::event_log`): an append writes its
//! events as one span of records, with one `fdatasync` shared by every append of the
//! group. sled holds only indexes (`keys.rs`): an entry per append to read by sequence,
//! an entry per append and hour of log time for LoadLog, a marker per device, and how far
//! the index follows the log (`indexed.rs`, caught up at open). De-duplication of punches
//! sent again looks in the recent hours of the device (`recent.rs`). Journals of earlier
//! versions, with events in sled, are moved into the log at open (`legacy.rs`).
//!
//! What was found wrong on disk at open (a torn tail cut off, damaged regions, missing
//! segments) and events found unreadable since are in [`Journal::damage`]; an unreadable
//! event is never served as another and never silently skipped: it is logged, counted
//! (`biogate_journal_unreadable_events_total`) and shown in `/health`.
mod codec;
mod entries;
mod indexed;
mod keys;
mod legacy;
mod recent;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use self::codec::{decode, encode, fingerprint, log_seconds, same_punch};
use self::entries::{IndexWrites, Indexed, add_entries};
use self::indexed::{IndexMark, catch_up, entry_holding, stored_mark};
use self::keys::{BatchEntry, HourEntry, INDEXED_KEY, MARKERS, Span, batch_key, batch_prefix, hour_key, seq_key};
use self::recent::{HourPunches, Lookup, Recent};
use super::error::StoreError;
use super::event_log::{EventLog, LogBatch, LogError, LogOptions, Position, RecoveryReport, Retention};
use super::group_commit::GroupCommit;
use crate::plugin::bindings::types::{Event, EventBody};

/// Per-device writer state: the next sequence number and the durable watermark.
struct DeviceLog {
    /// Next sequence to assign; the lock serialises a device's writers.
    next: tokio::sync::Mutex<u64>,
    /// Highest sequence known to be on disk and indexed; delivery workers watch it.
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

/// What is known to be wrong with the journal on disk.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JournalDamage {
    /// The torn tail cut off at open (an append a crash interrupted, never acknowledged).
    pub torn_tail: Option<String>,
    /// Damaged regions of the log (events in them cannot be read).
    pub damaged: Vec<String>,
    /// Ranges of the log no segment file holds.
    pub missing: Vec<String>,
    /// Events found unreadable since the start (each read that met one counts).
    pub unreadable_events: u64,
}

struct Shared {
    tree: sled::Tree,
    log: EventLog,
    commit: GroupCommit,
    devices: Mutex<HashMap<String, Arc<DeviceLog>>>,
    recent: Mutex<Recent>,
    mark: IndexMark,
    opened: RecoveryReport,
    unreadable: AtomicU64,
}

/// The durable event journal. Clones share it.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

/// How many sequence numbers one write of [`Journal::purge`] covers.
pub const PURGE_BATCH: u64 = 10_000;

/// A position in the log-time order of a device's punches: after (log time, sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PunchCursor {
    pub unix_seconds: i64,
    pub sequence: u64,
}

fn hour_of(secs: i64) -> i64 {
    secs.div_euclid(3600)
}

impl Journal {
    /// Opens the journal: its index in `db`, its events in the log in `log_dir`. Catches
    /// the index up with the log and moves a journal of an earlier version into the log.
    /// Blocks (reads what the index lacks).
    pub(super) fn open(db: &sled::Db, commit: GroupCommit, log_dir: &Path) -> Result<Self, StoreError> {
        let tree = db.open_tree("journal")?;
        let mark = stored_mark(&tree)?;
        let options = LogOptions { scan_from: mark, known_end: mark, ..LogOptions::default() };
        let (log, opened) = EventLog::open_with(log_dir, options)?;
        report_recovery(&opened);
        let caught = catch_up(&tree, &log, mark.unwrap_or_default())?;
        if caught.indexed > 0 {
            tracing::info!(
                records = caught.records,
                indexed = caught.indexed,
                "journal index caught up with the event log"
            );
        }
        if legacy::present(&tree)? {
            let started = std::time::Instant::now();
            let moved = legacy::migrate(&tree, &log)?;
            tracing::info!(events = moved, took = ?started.elapsed(), "journal of an earlier version moved into the event log");
            tree.insert(INDEXED_KEY, &log.end().0.to_be_bytes())?;
        }
        tree.flush()?;
        let shared = Shared {
            tree,
            log,
            commit,
            devices: Mutex::default(),
            recent: Mutex::default(),
            mark: IndexMark::default(),
            opened,
            unreadable: AtomicU64::new(caught.unreadable),
        };
        Ok(Journal { shared: Arc::new(shared) })
    }

    fn tree(&self) -> &sled::Tree {
        &self.shared.tree
    }

    fn device(&self, device: &str) -> Result<Arc<DeviceLog>, StoreError> {
        let mut devices = self.shared.devices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = devices.get(device) {
            return Ok(log.clone());
        }
        let last = self.last_seq(device)?;
        let log = Arc::new(DeviceLog { next: tokio::sync::Mutex::new(last + 1), durable: watch::Sender::new(last) });
        devices.insert(device.to_string(), log.clone());
        Ok(log)
    }

    /// Returns once every sled write made so far (device registry, delivery state,
    /// operations) is on disk, sharing the flush with concurrent writers. Events are
    /// durable when [`Journal::append`] returns, without this.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.shared.commit.durable().await.map_err(StoreError::Flush)
    }

    /// The highest sequence `device` ever stored (0 when none), pruned or not.
    pub fn last_seq(&self, device: &str) -> Result<u64, StoreError> {
        let marker = self.tree().get(seq_key(device))?.and_then(|v| keys::trailing_u64(&v)).unwrap_or(0);
        let last_entry = match self.tree().scan_prefix(batch_prefix(device)).next_back() {
            Some(found) => {
                let (key, value) = found?;
                BatchEntry::decode(&key, &value).map_or(0, |e| e.last())
            }
            None => 0,
        };
        Ok(marker.max(last_entry))
    }

    /// Appends events of one device and returns once they are on disk. Punches already
    /// stored are not stored again: they report the stored event's id and sequence.
    pub async fn append(
        &self,
        device: &str,
        bodies: Vec<EventBody>,
        received_at_ms: u64,
    ) -> Result<Appended, StoreError> {
        // Sequences are handed out once the records are written: run that in a task of
        // its own, so a caller dropped half-way (a device hanging up) never leaves records
        // written with their sequences handed out again.
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
        // (hour of log time, fingerprint) of each punch, and the stored punch each may be.
        let probes: Vec<Option<(i64, u64)>> =
            bodies.iter().map(|b| Some((hour_of(log_seconds(b)?), fingerprint(b)?))).collect();
        let candidates = self.recent_candidates(device, &probes)?;
        let first = *next;
        let mut seq = first;
        let mut events = Vec::with_capacity(bodies.len());
        let mut records = LogBatch::with_capacity(bodies.len(), bodies.len() * 128);
        let mut new_events: Vec<Event> = Vec::with_capacity(bodies.len());
        // Fingerprint -> index in `new_events`: a punch twice in one append.
        let mut in_batch: HourPunches = HourPunches::default();
        let mut indexed: Vec<Indexed> = Vec::with_capacity(bodies.len());
        let mut fresh: Vec<(i64, u64, u64)> = Vec::new();
        for ((body, probe), candidate) in bodies.into_iter().zip(probes).zip(candidates) {
            if let Some((_, print)) = probe {
                if let Some(earlier) = in_batch.get(&print).and_then(|i| new_events.get(*i as usize))
                    && same_punch(&earlier.body, &body)
                {
                    events.push((earlier.id.clone(), earlier.sequence, true));
                    continue;
                }
                if let Some(stored_seq) = candidate
                    && let Some(stored) = self.get(device, stored_seq)?
                    && same_punch(&stored.body, &body)
                {
                    events.push((stored.id, stored_seq, true));
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
            records.push(device, seq, &encode(&event)?)?;
            indexed.push(Indexed { received_at_ms, punch: probe });
            if let Some((hour, print)) = probe {
                fresh.push((hour, print, seq));
                in_batch.insert(print, new_events.len() as u64);
            }
            events.push((event.id.clone(), seq, false));
            new_events.push(event);
            seq += 1;
        }
        if records.is_empty() {
            // Only duplicates: what they point at is on disk (found through the index).
            return Ok(Appended { events });
        }
        let ticket = self.shared.mark.begin(self.shared.log.end());
        let written = self.write(device, records, first, &indexed, ticket).await;
        self.shared.mark.finish(ticket);
        written?;
        *next = seq;
        self.shared.recent.lock().unwrap_or_else(|p| p.into_inner()).stored(device, fresh);
        drop(next);
        let last_new = seq - 1;
        log.durable.send_if_modified(|durable| {
            let advance = last_new > *durable;
            if advance {
                *durable = last_new;
            }
            advance
        });
        Ok(Appended { events })
    }

    /// For each probe (hour, fingerprint) of a punch, the sequence of the stored punch of
    /// `device` with that fingerprint, if any: the hours the cache cannot answer for are
    /// loaded from the index first. A candidate is checked against the stored punch by the
    /// caller.
    fn recent_candidates(&self, device: &str, probes: &[Option<(i64, u64)>]) -> Result<Vec<Option<u64>>, StoreError> {
        let recent = || self.shared.recent.lock().unwrap_or_else(|p| p.into_inner());
        if probes.iter().all(Option::is_none) {
            return Ok(vec![None; probes.len()]);
        }
        let lookup = |cache: &mut Recent| -> Vec<Lookup> {
            probes.iter().map(|p| p.map_or(Lookup::Absent, |(hour, print)| cache.lookup(device, hour, print))).collect()
        };
        let first = lookup(&mut recent());
        let mut missing: Vec<i64> = probes
            .iter()
            .zip(&first)
            .filter(|(_, found)| **found == Lookup::Unknown)
            .filter_map(|(probe, _)| probe.map(|(hour, _)| hour))
            .collect();
        if missing.is_empty() {
            return Ok(first.into_iter().map(Lookup::found).collect());
        }
        missing.sort_unstable();
        missing.dedup();
        for hour in missing {
            let punches = self.hour_punches(device, hour)?;
            recent().load_hour(device, hour, punches);
        }
        let second = lookup(&mut recent());
        let mut out = Vec::with_capacity(probes.len());
        for (probe, found) in probes.iter().zip(second) {
            out.push(match (found, probe) {
                // Loading a later hour dropped this one again (hours bigger than the
                // cache): looked up in a table of its own.
                (Lookup::Unknown, Some((hour, print))) => self.hour_punches(device, *hour)?.get(print).copied(),
                (found, _) => found.found(),
            });
        }
        Ok(out)
    }

    /// Writes the records, then their index entries (visible to readers when this
    /// returns).
    async fn write(
        &self,
        device: &str,
        records: LogBatch,
        first: u64,
        indexed: &[Indexed],
        ticket: u64,
    ) -> Result<(), StoreError> {
        let bytes = records.bytes() as u64;
        let positions = self.shared.log.append(records).await?;
        let end = Position(positions.first().map_or(0, |p| p.0) + bytes);
        let mut batch = IndexWrites::default();
        add_entries(&mut batch, device, first, &positions, end, indexed);
        if first == 1 {
            // The device's first event writes its marker.
            batch.insert(seq_key(device), (first + indexed.len() as u64 - 1).to_be_bytes().to_vec());
        }
        if let Some(mark) = self.shared.mark.due(ticket, self.shared.log.end()) {
            batch.insert(INDEXED_KEY, mark.0.to_be_bytes().to_vec());
        }
        // Inserted one by one on this task, the mark last (see `entries::IndexWrites`).
        Ok(batch.insert_each(self.tree())?)
    }

    /// The events of one span of the log that belong to `device` (all, for a span of
    /// one of its appends). Unreadable records are reported and left out.
    fn read_span(&self, device: &str, span: Span) -> Result<Vec<Event>, StoreError> {
        self.read_span_seqs(device, span, 0..=u64::MAX, usize::MAX)
    }

    /// [`Journal::read_span`] for the sequences in `seqs`, at most `limit`: only those
    /// are decoded (a span holds up to 64 events; a delivery worker reads 8 at a time).
    fn read_span_seqs(
        &self,
        device: &str,
        span: Span,
        seqs: std::ops::RangeInclusive<u64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for item in self.shared.log.iter_span(span.at, u64::from(span.bytes)) {
            match item {
                Ok((_, record)) if record.device() == device => {
                    if record.seq() > *seqs.end() || out.len() >= limit {
                        break;
                    }
                    if record.seq() < *seqs.start() {
                        continue;
                    }
                    match decode(record.body()) {
                        Ok(event) => out.push(event),
                        Err(error) => self.unreadable(device, span, &error.to_string()),
                    }
                }
                Ok(_) => {}
                Err(e @ (LogError::Corrupt(_) | LogError::Missing(_) | LogError::Retained { .. })) => {
                    self.unreadable(device, span, &e.to_string())
                }
                Err(LogError::PastEnd { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    fn unreadable(&self, device: &str, span: Span, error: &str) {
        self.shared.unreadable.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("biogate_journal_unreadable_events_total").increment(1);
        tracing::error!(device, position = %span.at, error, "journal events unreadable (reported in /health)");
    }

    /// One event.
    pub fn get(&self, device: &str, seq: u64) -> Result<Option<Event>, StoreError> {
        let Some(entry) = entry_holding(self.tree(), device, seq)? else { return Ok(None) };
        Ok(self.read_span_seqs(device, entry.span, seq..=seq, 1)?.into_iter().next())
    }

    /// Whether event `seq` of `device` is still stored (not pruned or purged).
    pub fn contains(&self, device: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(entry_holding(self.tree(), device, seq)?.is_some())
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
        if upto <= after || limit == 0 {
            return Ok(Vec::new());
        }
        // From the append holding `after + 1` (or the first after it).
        let start = match entry_holding(self.tree(), device, after + 1)? {
            Some(entry) => batch_key(device, entry.first),
            None => batch_key(device, after + 1),
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for found in self.tree().range(start..=batch_key(device, upto)) {
            let (key, value) = found?;
            let Some(entry) = BatchEntry::decode(&key, &value) else { continue };
            out.extend(self.read_span_seqs(device, entry.span, after + 1..=upto, limit - out.len())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Watches the durable watermark of `device` (the highest sequence on disk).
    pub fn watch(&self, device: &str) -> Result<watch::Receiver<u64>, StoreError> {
        Ok(self.device(device)?.durable.subscribe())
    }

    /// Every device that ever stored an event, in id order.
    pub fn devices(&self) -> Result<Vec<String>, StoreError> {
        self.tree()
            .scan_prefix(MARKERS)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[MARKERS.len()..]).into_owned()))
            .collect()
    }

    /// Removes the appends of `device` received before `before_ms` whose sequences are
    /// all at most `upto` (what every route has delivered or dead-lettered), from the
    /// index; [`Journal::release_space`] then removes the log segments no longer used.
    /// Returns how many events went. Blocks on the device's writer lock: call it outside
    /// async code (`spawn_blocking`).
    pub fn prune(&self, device: &str, before_ms: u64, upto: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let log = self.device(device)?;
        let next = log.next.blocking_lock();
        for found in self.tree().scan_prefix(batch_prefix(device)) {
            let (key, value) = found?;
            let Some(entry) = BatchEntry::decode(&key, &value) else { continue };
            if entry.received_at_ms >= before_ms || entry.last() > upto {
                break;
            }
            for hour in &entry.hours {
                batch.remove(hour_key(device, *hour, entry.first));
            }
            batch.remove(key);
            removed += entry.count as usize;
        }
        if removed > 0 {
            // The last sequence outlives the events: the next one never restarts.
            batch.insert(seq_key(device), &(*next - 1).to_be_bytes());
            self.tree().apply_batch(batch)?;
            self.shared.recent.lock().unwrap_or_else(|p| p.into_inner()).forget(device);
        }
        Ok(removed)
    }

    /// Removes the log segments that hold no event still indexed (after
    /// [`Journal::prune`] and [`Journal::purge`]). Blocks.
    pub fn release_space(&self) -> Result<Retention, StoreError> {
        let mut oldest = self.shared.log.end();
        for device in self.devices()? {
            if let Some(found) = self.tree().scan_prefix(batch_prefix(&device)).next() {
                let (key, value) = found?;
                if let Some(entry) = BatchEntry::decode(&key, &value) {
                    oldest = oldest.min(entry.span.at);
                }
            }
        }
        Ok(self.shared.log.retain_from(oldest)?)
    }

    /// The highest sequence written so far, with no write of `device` in progress: every
    /// event up to it is in the journal (a consistent snapshot for paging).
    pub async fn snapshot(&self, device: &str) -> Result<u64, StoreError> {
        let log = self.device(device)?;
        let next = log.next.lock().await;
        Ok(*next - 1)
    }

    /// The appends of `device` with punches in hours `first..=last`, hour by hour.
    fn hours(&self, device: &str, first: i64, last: i64) -> impl Iterator<Item = Result<(i64, HourEntry), StoreError>> {
        let range = hour_key(device, first, 0)..=hour_key(device, last, u64::MAX);
        self.tree().range(range).map(|found| {
            let (key, value) = found?;
            let hour = keys::hour_of_key(&key);
            let entry = HourEntry::decode(&value);
            hour.zip(entry).ok_or_else(|| StoreError::Decode("a journal hour entry".into()))
        })
    }

    /// The fingerprints of the punches of `device` with a log time in `hour`, with their
    /// sequences: from the index, or from the log for entries of an earlier version.
    fn hour_punches(&self, device: &str, hour: i64) -> Result<HourPunches, StoreError> {
        // Collected first, so the table is sized once.
        let mut prints: Vec<(u64, u64)> = Vec::new();
        for found in self.tree().range(hour_key(device, hour, 0)..=hour_key(device, hour, u64::MAX)) {
            let (key, value) = found?;
            let first = keys::trailing_u64(&key).ok_or_else(|| StoreError::Decode("a journal hour key".into()))?;
            if let Some(entry_prints) = HourEntry::prints(&value, first) {
                prints.extend(entry_prints);
                continue;
            }
            let entry = HourEntry::decode(&value).ok_or_else(|| StoreError::Decode("a journal hour entry".into()))?;
            for event in self.read_span(device, entry.span)? {
                if log_seconds(&event.body).is_some_and(|s| hour_of(s) == hour)
                    && let Some(print) = fingerprint(&event.body)
                {
                    prints.push((print, event.sequence));
                }
            }
        }
        Ok(prints.into_iter().collect())
    }

    /// The punches of `device` with a log time in `hour`.
    fn hour_events(&self, device: &str, hour: i64) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for found in self.hours(device, hour, hour) {
            let (_, entry) = found?;
            out.extend(
                self.read_span(device, entry.span)?
                    .into_iter()
                    .filter(|e| log_seconds(&e.body).is_some_and(|s| hour_of(s) == hour)),
            );
        }
        Ok(out)
    }

    /// How many punches of `device` have a log time in `from..=to` (Unix seconds).
    /// Whole hours are counted from the index; only the partial hours at the edges are
    /// read.
    pub fn count_punches(&self, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        if to < from {
            return Ok(0);
        }
        let (first, last) = (hour_of(from), hour_of(to));
        let mut count = 0u64;
        for edge in [first, last].into_iter().take(if first == last { 1 } else { 2 }) {
            if from > edge * 3600 || to < edge * 3600 + 3599 {
                count += self
                    .hour_events(device, edge)?
                    .iter()
                    .filter(|e| log_seconds(&e.body).is_some_and(|s| (from..=to).contains(&s)))
                    .count() as u64;
            }
        }
        for found in self.hours(device, first, last) {
            let (hour, entry) = found?;
            let partial = (hour == first && from > hour * 3600) || (hour == last && to < hour * 3600 + 3599);
            if !partial {
                count += u64::from(entry.punches);
            }
        }
        Ok(count)
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
        let start = after.map_or(from, |c| c.unix_seconds.max(from));
        if start > to || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut hour_punches: Vec<(PunchCursor, Event)> = Vec::new();
        let mut current: Option<i64> = None;
        let flush = |hour_punches: &mut Vec<(PunchCursor, Event)>, out: &mut Vec<Event>| {
            hour_punches.sort_by_key(|(cursor, _)| *cursor);
            out.extend(hour_punches.drain(..).map(|(_, e)| e).take(limit - out.len()));
        };
        for found in self.hours(device, hour_of(start), hour_of(to)) {
            let (hour, entry) = found?;
            if current != Some(hour) {
                flush(&mut hour_punches, &mut out);
                if out.len() >= limit {
                    return Ok(out);
                }
                current = Some(hour);
            }
            for event in self.read_span(device, entry.span)? {
                let Some(secs) = log_seconds(&event.body) else { continue };
                let cursor = PunchCursor { unix_seconds: secs, sequence: event.sequence };
                if hour_of(secs) == hour
                    && (start..=to).contains(&secs)
                    && event.sequence <= upto
                    && after.is_none_or(|a| cursor > a)
                {
                    hour_punches.push((cursor, event));
                }
            }
        }
        flush(&mut hour_punches, &mut out);
        Ok(out)
    }

    /// What is known to be wrong with the journal on disk (for `/health`).
    pub fn damage(&self) -> JournalDamage {
        let opened = &self.shared.opened;
        let mut damaged: Vec<String> = self.shared.log.damage().iter().map(ToString::to_string).collect();
        damaged.dedup();
        JournalDamage {
            torn_tail: opened.torn_tail.as_ref().map(ToString::to_string),
            damaged,
            missing: self.shared.log.missing().iter().map(ToString::to_string).collect(),
            unreadable_events: self.shared.unreadable.load(Ordering::Relaxed),
        }
    }
}

/// Logs and counts what opening the log found.
fn report_recovery(report: &RecoveryReport) {
    if let Some(torn) = &report.torn_tail {
        // An append a crash interrupted: never acknowledged, the device sends it again.
        tracing::warn!(%torn, "journal: a torn tail was cut off the event log");
        metrics::counter!("biogate_journal_torn_tail_bytes_total").increment(torn.len);
    }
    for damage in &report.damaged {
        tracing::error!(%damage, "journal: a damaged region in the event log; its events cannot be read");
    }
    for missing in &report.missing {
        tracing::error!(%missing, "journal: part of the event log is missing");
    }
    for ignored in &report.ignored {
        tracing::warn!(file = %ignored.display(), "journal: a file in the event log folder was ignored");
    }
    metrics::gauge!("biogate_journal_damaged_regions").set((report.damaged.len() + report.missing.len()) as f64);
}
