//! Event stores on the journal's workload (issue 16, "take events out of the B-tree"),
//! measured in the same run:
//!
//! 1. `sled journal`: today's `Journal::append` (dedupe lookup, event insert, time-index
//!    insert, hour counters; sled group commit with its fsync).
//! 2. `fjall`: the maintained LSM crate, keyspaces `events` keyed (device, seq) and
//!    `time` keyed (device, log time, seq), plus hour counters, the same dedupe lookup;
//!    batches committed by one committer thread between persists, one
//!    `persist(PersistMode::SyncData)` per group (the sled journal's structure: fjall's
//!    persist holds its journal lock through the fsync, as sled's flush does).
//! 3. `event log`: biogate's segment log (store::event_log) alone: the bodies, one write
//!    and one fdatasync per group, no index.
//! 4. `event log + sled index per punch`: the log for durability, then the index
//!    entries of the append (seq -> position, time index -> position + identity, hour
//!    counters; the same dedupe lookup before) applied to sled without a flush (the index
//!    lags the log and is caught up from it after a crash), by one applier thread that
//!    makes one sled batch of every waiting append's entries.
//! 5. `event log + sled index per append`: the same, but the sled index holds one entry
//!    per append (the append's records are contiguous in the log: one `pread` reads
//!    them) and one per log-time hour it touches, dedupe in memory (see `LogSpans`).
//! 6. `event log + fjall index per append`: option 5 with the index in a fjall keyspace
//!    (committed by one applier thread, never persisted: the log is what is durable).
//!
//! Workload: WRITERS tokio tasks, each its own device, appending batches of 1 and of 100
//! punches (the journal's compact `Event` encoding), each append waiting until its batch
//! is durable before the next; RUN per store and batch size; punches/s and CPU time per
//! punch (getrusage: all threads of this process, background ones included). Reads, on
//! a store filled the same way for each (WRITERS devices x FILL_PER_DEVICE punches):
//! one device's events in sequence order, and a LoadLog-like scan of one device's
//! punches in a log-time range, both in pages of 500.
//!
//! Data lives in a temporary folder under the target folder (a real disk, so that
//! fdatasync means something). Run: `cargo bench -p biogate --bench event_store`
//! (`EVENT_STORE_RUN_SECS`, `EVENT_STORE_ROUNDS` to change the run length and repeats).
//! Prints a Markdown table.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use biogate::plugin::bindings::types::{DeviceTime, Event, EventBody, InputType, Punch, PunchType};
use biogate::store::event_log::{EventLog, LogBatch, Position};
use biogate::store::{Journal, Store};
use tokio::sync::oneshot;

const WRITERS: usize = 64;
const PAGE: usize = 500;
const FILL_PER_DEVICE: u64 = 3_000;
/// 2026-06-01 00:00:00 UTC; device punches are 37 s apart.
const START_UNIX: i64 = 1_780_272_000;
const STEP_SECONDS: i64 = 37;
const COMPACT_EVENT: u8 = 1;

fn run_length() -> Duration {
    let secs = std::env::var("EVENT_STORE_RUN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

fn rounds() -> usize {
    std::env::var("EVENT_STORE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn device(i: usize) -> String {
    format!("SN7A23{i:05}")
}

fn punch(seq: u64) -> EventBody {
    EventBody::Punch(Punch {
        user_id: (1000 + seq % 500).to_string(),
        log_time: DeviceTime { unix_seconds: START_UNIX + seq as i64 * STEP_SECONDS, utc_offset_minutes: 330 },
        punch_type: if seq.is_multiple_of(2) { PunchType::CheckIn } else { PunchType::CheckOut },
        input_type: InputType::Face,
        temperature: None,
        face_mask: None,
        work_code: None,
        photo: None,
    })
}

/// The journal's stored form of an event (journal.rs `encode`).
fn encode(event: &Event) -> Vec<u8> {
    postcard::to_extend(event, vec![COMPACT_EVENT]).expect("encode")
}

fn decode(bytes: &[u8]) -> Event {
    assert_eq!(bytes.first(), Some(&COMPACT_EVENT));
    postcard::from_bytes(&bytes[1..]).expect("decode")
}

fn new_event(device: &str, seq: u64, body: EventBody) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        device_id: device.to_string(),
        sequence: seq,
        received_at_ms: 1_780_272_000_000 + seq,
        body,
    }
}

// Keys as the journal lays them out (journal.rs).
fn key(tag: u8, device: &str, tail: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![tag, 0];
    key.extend_from_slice(device.as_bytes());
    key.push(0);
    for part in tail {
        key.extend_from_slice(part);
    }
    key
}

fn ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn seq_key(device: &str, seq: u64) -> Vec<u8> {
    key(b'e', device, &[&seq.to_be_bytes()])
}

fn time_key(device: &str, secs: i64, seq: u64) -> Vec<u8> {
    key(b't', device, &[&ordered(secs), &seq.to_be_bytes()])
}

fn hour_key(device: &str, hour: i64) -> Vec<u8> {
    key(b'h', device, &[&ordered(hour)])
}

fn seq_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"))
}

/// The punch's identity beyond its time: punch type, user.
fn identity(body: &EventBody) -> (i64, Vec<u8>) {
    let EventBody::Punch(p) = body else { panic!("a punch") };
    let mut value = vec![p.punch_type as u8];
    value.extend_from_slice(p.user_id.as_bytes());
    (p.log_time.unix_seconds, value)
}

/// A group-commit thread: runs each job's work between syncs, then one sync for all.
struct Committer<W: Send + 'static> {
    tx: mpsc::Sender<(W, oneshot::Sender<()>)>,
}

impl<W: Send + 'static> Committer<W> {
    fn start(mut apply: impl FnMut(W) + Send + 'static, mut sync: impl FnMut() + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<(W, oneshot::Sender<()>)>();
        std::thread::spawn(move || {
            let mut waiting = Vec::new();
            while let Ok(first) = rx.recv() {
                for (work, reply) in std::iter::once(first).chain(rx.try_iter()) {
                    apply(work);
                    waiting.push(reply);
                }
                sync();
                for reply in waiting.drain(..) {
                    let _ = reply.send(());
                }
            }
        });
        Committer { tx }
    }

    async fn commit(&self, work: W) {
        let (reply, rx) = oneshot::channel();
        self.tx.send((work, reply)).expect("committer");
        rx.await.expect("committed");
    }
}

/// Index entries to write to sled.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Applies the index entries of every waiting append as one sled batch, on one thread:
/// sled's `apply_batch` from many tasks at once contends on its concurrency-control
/// lock, and per-batch overhead is shared by the group. No flush: the index lags the log
/// and is caught up from it after a crash.
fn index_applier(tree: sled::Tree) -> Committer<Entries> {
    let pending = Arc::new(std::sync::Mutex::new(sled::Batch::default()));
    let add = pending.clone();
    Committer::start(
        move |entries: Entries| {
            let mut batch = add.lock().expect("lock");
            for (k, v) in entries {
                batch.insert(k, v);
            }
        },
        move || {
            let batch = std::mem::take(&mut *pending.lock().expect("lock"));
            tree.apply_batch(batch).expect("apply");
        },
    )
}

struct Fjall {
    events: fjall::Keyspace,
    time: fjall::Keyspace,
    hours: fjall::Keyspace,
    db: fjall::Database,
    committer: Committer<fjall::OwnedWriteBatch>,
}

impl Fjall {
    fn open(dir: &Path) -> Self {
        let db = fjall::Database::builder(dir).cache_size(64 * 1024 * 1024).open().expect("fjall");
        let ks = |name| db.keyspace(name, fjall::KeyspaceCreateOptions::default).expect("keyspace");
        let (events, time, hours) = (ks("events"), ks("time"), ks("hours"));
        let persist = db.clone();
        let committer = Committer::start(
            |batch: fjall::OwnedWriteBatch| batch.commit().expect("commit"),
            move || persist.persist(fjall::PersistMode::SyncData).expect("persist"),
        );
        Fjall { events, time, hours, db, committer }
    }

    async fn append(&self, device: &str, first_seq: u64, bodies: Vec<EventBody>) {
        let mut batch = self.db.batch();
        let mut hours: HashMap<i64, u64> = HashMap::new();
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            let (secs, id) = identity(&body);
            // Dedupe: the punches of that second (none in this workload, as usually).
            for kv in self.time.range(time_key(device, secs, 0)..=time_key(device, secs, u64::MAX)) {
                let (_, value) = kv.into_inner().expect("read");
                assert_ne!(&*value, &id[..], "no duplicates in this workload");
            }
            batch.insert(&self.events, seq_key(device, seq), encode(&new_event(device, seq, body)));
            batch.insert(&self.time, time_key(device, secs, seq), id);
            *hours.entry(secs.div_euclid(3600)).or_default() += 1;
        }
        for (hour, n) in hours {
            let key = hour_key(device, hour);
            let now = self.hours.get(&key).expect("get").map(|v| seq_of(&v)).unwrap_or(0);
            batch.insert(&self.hours, key, (now + n).to_be_bytes().to_vec());
        }
        self.committer.commit(batch).await;
    }

    fn read_seq(&self, device: &str, after: u64, upto: u64, limit: usize) -> Vec<Event> {
        self.events
            .range(seq_key(device, after + 1)..=seq_key(device, upto))
            .take(limit)
            .map(|kv| decode(&kv.value().expect("value")))
            .collect()
    }

    fn punches(&self, device: &str, from: i64, to: i64, after: Option<Vec<u8>>, limit: usize) -> Vec<Event> {
        let start = after.unwrap_or_else(|| time_key(device, from, 0));
        self.time
            .range(start..=time_key(device, to, u64::MAX))
            .take(limit)
            .map(|kv| {
                let seq = seq_of(&kv.key().expect("key"));
                decode(&self.events.get(seq_key(device, seq)).expect("get").expect("indexed event"))
            })
            .collect()
    }
}

/// The segment log plus a sled index (option 4).
struct LogIndexed {
    log: EventLog,
    index: sled::Tree,
    applier: Committer<Entries>,
    _db: sled::Db,
}

impl LogIndexed {
    fn open(dir: &Path) -> Self {
        let (log, report) = EventLog::open(&dir.join("log")).expect("log");
        assert!(report.is_clean());
        let db = sled::Config::new().path(dir.join("index")).cache_capacity(64 * 1024 * 1024).open().expect("sled");
        let index = db.open_tree("index").expect("tree");
        LogIndexed { log, applier: index_applier(index.clone()), index, _db: db }
    }

    async fn append(&self, device: &str, first_seq: u64, bodies: Vec<EventBody>) {
        let mut batch = LogBatch::with_capacity(bodies.len(), bodies.len() * 80);
        let mut identities = Vec::with_capacity(bodies.len());
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            let (secs, id) = identity(&body);
            for kv in self.index.range(time_key(device, secs, 0)..=time_key(device, secs, u64::MAX)) {
                let (_, value) = kv.expect("read");
                assert_ne!(&value[8..], &id[..], "no duplicates in this workload");
            }
            batch.push(device, seq, &encode(&new_event(device, seq, body))).expect("push");
            identities.push((secs, id));
        }
        let positions = self.log.append(batch).await.expect("append");
        let mut index: Entries = Vec::new();
        let mut hours: HashMap<i64, u64> = HashMap::new();
        for (i, ((secs, id), pos)) in identities.into_iter().zip(positions).enumerate() {
            let seq = first_seq + i as u64;
            let at = pos.0.to_be_bytes();
            index.push((seq_key(device, seq), at.to_vec()));
            index.push((time_key(device, secs, seq), [&at[..], &id].concat()));
            *hours.entry(secs.div_euclid(3600)).or_default() += 1;
        }
        for (hour, n) in hours {
            let key = hour_key(device, hour);
            let now = self.index.get(&key).expect("get").map(|v| seq_of(&v)).unwrap_or(0);
            index.push((key, (now + n).to_be_bytes().to_vec()));
        }
        self.applier.commit(index).await;
    }

    fn read_at(&self, value: &[u8]) -> Event {
        let pos = Position(u64::from_be_bytes(value[..8].try_into().expect("position")));
        decode(self.log.read(pos).expect("read").body())
    }

    fn read_seq(&self, device: &str, after: u64, upto: u64, limit: usize) -> Vec<Event> {
        self.index
            .range(seq_key(device, after + 1)..=seq_key(device, upto))
            .take(limit)
            .map(|kv| self.read_at(&kv.expect("read").1))
            .collect()
    }

    fn punches(&self, device: &str, from: i64, to: i64, after: Option<Vec<u8>>, limit: usize) -> Vec<Event> {
        let start = after.unwrap_or_else(|| time_key(device, from, 0));
        self.index
            .range(start..=time_key(device, to, u64::MAX))
            .take(limit)
            .map(|kv| self.read_at(&kv.expect("read").1))
            .collect()
    }
}

/// The segment log plus a sled index per append, not per punch (option 5): the records
/// of one append are contiguous in the log, so one entry `(device, first seq) ->
/// (position, count, bytes)` finds them, and one entry per log-time hour the append
/// touches, `(device, hour, first seq) -> the same`, serves LoadLog (plus the hour
/// counters, as today). Dedupe in memory (a set of punch identities per device; the
/// journal would fill it from the log for an hour it has not seen).
struct LogSpans {
    log: EventLog,
    index: IndexTree,
    applier: Committer<Entries>,
    seen: std::sync::Mutex<HashMap<String, Identities>>,
}

/// Where an index lives: a sled tree, or a fjall keyspace (written without persist: the
/// log is what is durable).
enum IndexTree {
    Sled(sled::Tree),
    Fjall(fjall::Keyspace),
}

type Pairs<'a> = Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a>;

impl IndexTree {
    fn open(fjall: bool, dir: &Path) -> (IndexTree, Committer<Entries>) {
        if !fjall {
            let db = sled::Config::new().path(dir).cache_capacity(64 * 1024 * 1024).open().expect("sled");
            let tree = db.open_tree("index").expect("tree");
            return (IndexTree::Sled(tree.clone()), index_applier(tree));
        }
        let db = fjall::Database::builder(dir).cache_size(64 * 1024 * 1024).open().expect("fjall");
        let ks = db.keyspace("index", fjall::KeyspaceCreateOptions::default).expect("keyspace");
        let pending = Arc::new(std::sync::Mutex::new(Vec::new()));
        let add = pending.clone();
        let (apply_db, apply_ks) = (db.clone(), ks.clone());
        let applier = Committer::start(
            move |entries: Entries| add.lock().expect("lock").extend(entries),
            move || {
                let mut batch = apply_db.batch();
                for (k, v) in std::mem::take(&mut *pending.lock().expect("lock")) {
                    batch.insert(&apply_ks, k, v);
                }
                batch.commit().expect("commit");
            },
        );
        (IndexTree::Fjall(ks), applier)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self {
            IndexTree::Sled(t) => t.get(key).expect("get").map(|v| v.to_vec()),
            IndexTree::Fjall(k) => k.get(key).expect("get").map(|v| v.to_vec()),
        }
    }

    /// The last key at or before `key`.
    fn last_key_upto(&self, key: Vec<u8>) -> Option<Vec<u8>> {
        match self {
            IndexTree::Sled(t) => t.range(..=key).next_back().map(|kv| kv.expect("read").0.to_vec()),
            IndexTree::Fjall(k) => k.range(..=key).next_back().map(|kv| kv.key().expect("key").to_vec()),
        }
    }

    fn range(&self, from: Vec<u8>, to: Vec<u8>) -> Pairs<'_> {
        match self {
            IndexTree::Sled(t) => Box::new(t.range(from..=to).map(|kv| {
                let (k, v) = kv.expect("read");
                (k.to_vec(), v.to_vec())
            })),
            IndexTree::Fjall(ks) => Box::new(ks.range(from..=to).map(|kv| {
                let (k, v) = kv.into_inner().expect("read");
                (k.to_vec(), v.to_vec())
            })),
        }
    }
}

/// The punches of one device: (log time, punch type + user).
type Identities = std::collections::HashSet<(i64, Vec<u8>)>;

fn span_value(pos: Position, count: usize, bytes: usize) -> Vec<u8> {
    let mut v = pos.0.to_be_bytes().to_vec();
    v.extend_from_slice(&(count as u32).to_be_bytes());
    v.extend_from_slice(&(bytes as u32).to_be_bytes());
    v
}

fn span_of(value: &[u8]) -> (Position, u64) {
    let pos = u64::from_be_bytes(value[..8].try_into().expect("position"));
    let bytes = u32::from_be_bytes(value[12..16].try_into().expect("bytes"));
    (Position(pos), u64::from(bytes))
}

fn append_key(device: &str, first_seq: u64) -> Vec<u8> {
    key(b'a', device, &[&first_seq.to_be_bytes()])
}

fn bucket_key(device: &str, hour: i64, first_seq: u64) -> Vec<u8> {
    key(b'b', device, &[&ordered(hour), &first_seq.to_be_bytes()])
}

impl LogSpans {
    fn open(dir: &Path, fjall: bool) -> Self {
        let (log, report) = EventLog::open(&dir.join("log")).expect("log");
        assert!(report.is_clean());
        let (index, applier) = IndexTree::open(fjall, &dir.join("index"));
        LogSpans { log, index, applier, seen: Default::default() }
    }

    async fn append(&self, device: &str, first_seq: u64, bodies: Vec<EventBody>) {
        let mut hours: HashMap<i64, u64> = HashMap::new();
        {
            let mut seen = self.seen.lock().expect("lock");
            let seen = seen.entry(device.to_string()).or_default();
            for body in &bodies {
                let (secs, id) = identity(body);
                *hours.entry(secs.div_euclid(3600)).or_default() += 1;
                assert!(seen.insert((secs, id)), "no duplicates in this workload");
            }
        }
        let count = bodies.len();
        let mut batch = LogBatch::with_capacity(count, count * 80);
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            batch.push(device, seq, &encode(&new_event(device, seq, body))).expect("push");
        }
        let bytes = batch.bytes();
        let positions = self.log.append(batch).await.expect("append");
        let value = span_value(positions[0], count, bytes);
        let mut index: Entries = Vec::new();
        index.push((append_key(device, first_seq), value.clone()));
        for (hour, n) in hours {
            index.push((bucket_key(device, hour, first_seq), value.clone()));
            let key = hour_key(device, hour);
            let now = self.index.get(&key).map(|v| seq_of(&v)).unwrap_or(0);
            index.push((key, (now + n).to_be_bytes().to_vec()));
        }
        self.applier.commit(index).await;
    }

    fn events_in(&self, span: &[u8]) -> impl Iterator<Item = Event> + '_ {
        let (pos, bytes) = span_of(span);
        self.log.iter_span(pos, bytes).map(|r| decode(r.expect("intact").1.body()))
    }

    fn read_seq(&self, device: &str, after: u64, upto: u64, limit: usize) -> Vec<Event> {
        // The append holding `after + 1`, then the following ones.
        let first = self.index.last_key_upto(append_key(device, after + 1));
        let start = first.filter(|k| k.starts_with(&append_key(device, 0)[..device.len() + 3]));
        let start = start.unwrap_or_else(|| append_key(device, 0));
        let mut out = Vec::with_capacity(limit);
        for (_, span) in self.index.range(start, append_key(device, upto)) {
            for event in self.events_in(&span) {
                if event.sequence > after && event.sequence <= upto && out.len() < limit {
                    out.push(event);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        out
    }

    fn punches(&self, device: &str, from: i64, to: i64, after: Option<(i64, u64)>, limit: usize) -> Vec<Event> {
        let mut out = Vec::with_capacity(limit);
        let first_hour = after.map_or(from, |(secs, _)| secs.max(from)).div_euclid(3600);
        for hour in first_hour..=to.div_euclid(3600) {
            let mut punches = Vec::new();
            for (_, span) in self.index.range(bucket_key(device, hour, 0), bucket_key(device, hour, u64::MAX)) {
                for event in self.events_in(&span) {
                    let EventBody::Punch(p) = &event.body else { continue };
                    let at = (p.log_time.unix_seconds, event.sequence);
                    if at.0.div_euclid(3600) == hour && at.0 >= from && at.0 <= to && after.is_none_or(|a| at > a) {
                        punches.push((at, event));
                    }
                }
            }
            punches.sort_by_key(|(at, _)| *at);
            out.extend(punches.into_iter().map(|(_, e)| e).take(limit - out.len()));
            if out.len() >= limit {
                break;
            }
        }
        out
    }
}

/// The segment log alone; the positions of each device are kept in memory (as if an
/// index cost nothing), for the read figures.
struct LogOnly {
    log: EventLog,
    positions: std::sync::Mutex<HashMap<String, Vec<Position>>>,
}

impl LogOnly {
    async fn append(&self, device: &str, first_seq: u64, bodies: Vec<EventBody>) {
        let mut batch = LogBatch::with_capacity(bodies.len(), bodies.len() * 80);
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            batch.push(device, seq, &encode(&new_event(device, seq, body))).expect("push");
        }
        let positions = self.log.append(batch).await.expect("append");
        self.positions.lock().expect("lock").entry(device.to_string()).or_default().extend(positions);
    }
}

enum Subject {
    Sled(Journal),
    Fjall(Fjall),
    Log(LogOnly),
    LogIndexed(LogIndexed),
    LogSpans(LogSpans),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sled,
    Fjall,
    Log,
    LogIndexed,
    LogSpans,
    LogSpansFjall,
}

const KINDS: [Kind; 6] = [Kind::Sled, Kind::Fjall, Kind::Log, Kind::LogIndexed, Kind::LogSpans, Kind::LogSpansFjall];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sled => "sled journal (today)",
            Kind::Fjall => "fjall 3 (events + time keyspaces)",
            Kind::Log => "event log alone",
            Kind::LogIndexed => "event log + sled index per punch",
            Kind::LogSpans => "event log + sled index per append",
            Kind::LogSpansFjall => "event log + fjall index per append",
        }
    }
}

impl Subject {
    fn open(kind: Kind, dir: &Path) -> Subject {
        match kind {
            Kind::Sled => Subject::Sled(Store::open(dir).expect("store").journal().expect("journal")),
            Kind::Fjall => Subject::Fjall(Fjall::open(dir)),
            Kind::Log => {
                let (log, report) = EventLog::open(dir).expect("log");
                assert!(report.is_clean());
                Subject::Log(LogOnly { log, positions: Default::default() })
            }
            Kind::LogIndexed => Subject::LogIndexed(LogIndexed::open(dir)),
            Kind::LogSpans => Subject::LogSpans(LogSpans::open(dir, false)),
            Kind::LogSpansFjall => Subject::LogSpans(LogSpans::open(dir, true)),
        }
    }

    async fn append(&self, device: &str, first_seq: u64, bodies: Vec<EventBody>) {
        match self {
            Subject::Sled(journal) => {
                let n = bodies.len();
                let appended = journal.append(device, bodies, 1_780_272_000_000).await.expect("append");
                assert_eq!(appended.stored(), n, "no duplicates in this workload");
                assert_eq!(appended.events[0].1, first_seq);
            }
            Subject::Fjall(f) => f.append(device, first_seq, bodies).await,
            Subject::Log(l) => l.append(device, first_seq, bodies).await,
            Subject::LogIndexed(l) => l.append(device, first_seq, bodies).await,
            Subject::LogSpans(l) => l.append(device, first_seq, bodies).await,
        }
    }

    /// Up to `limit` events of `device` with `after < seq <= upto`.
    fn read_seq(&self, device: &str, after: u64, upto: u64, limit: usize) -> Vec<Event> {
        match self {
            Subject::Sled(journal) => journal.read(device, after, upto, limit).expect("read"),
            Subject::Fjall(f) => f.read_seq(device, after, upto, limit),
            Subject::Log(l) => {
                let positions = l.positions.lock().expect("lock");
                let list = &positions[device];
                let from = after as usize; // sequences start at 1: seq s is list[s - 1]
                list[from.min(list.len())..(upto as usize).min(list.len())]
                    .iter()
                    .take(limit)
                    .map(|p| decode(l.log.read(*p).expect("read").body()))
                    .collect()
            }
            Subject::LogIndexed(l) => l.read_seq(device, after, upto, limit),
            Subject::LogSpans(l) => l.read_seq(device, after, upto, limit),
        }
    }

    /// A page of punches in (log time, seq) order with a log time in `from..=to`, after
    /// the punch `after` (log time, seq).
    fn punches(&self, device: &str, from: i64, to: i64, after: Option<(i64, u64)>) -> Option<Vec<Event>> {
        let after_key = after.map(|(secs, seq)| {
            let mut k = time_key(device, secs, seq);
            k.push(0);
            k
        });
        Some(match self {
            Subject::Sled(journal) => {
                let cursor =
                    after.map(|(unix_seconds, sequence)| biogate::store::PunchCursor { unix_seconds, sequence });
                journal.punches(device, from, to, cursor, u64::MAX, PAGE).expect("punches")
            }
            Subject::Fjall(f) => f.punches(device, from, to, after_key, PAGE),
            Subject::Log(_) => return None,
            Subject::LogIndexed(l) => l.punches(device, from, to, after_key, PAGE),
            Subject::LogSpans(l) => l.punches(device, from, to, after, PAGE),
        })
    }
}

/// One write run: punches/s and CPU microseconds per punch.
async fn write_run(kind: Kind, batch: usize, run: Duration, dir: &Path) -> (f64, f64) {
    let store = Arc::new(Subject::open(kind, dir));
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS + 1));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, start, stop) = (store.clone(), start.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let device = device(w);
            let mut seq = 1u64;
            start.wait().await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bodies = (seq..seq + batch as u64).map(punch).collect();
                store.append(&device, seq, bodies).await;
                seq += batch as u64;
            }
            seq - 1
        }));
    }
    start.wait().await;
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    tokio::time::sleep(run).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut punches = 0;
    for task in tasks {
        punches += task.await.expect("writer");
    }
    let (elapsed, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    drop(store);
    (punches as f64 / elapsed, cpu / punches as f64 * 1e6)
}

/// Fills a store for the read figures: every device FILL_PER_DEVICE punches in
/// batches of 100 (the writers concurrently, so devices interleave in the log).
async fn fill(kind: Kind, dir: &Path) -> (Arc<Subject>, f64) {
    let store = Arc::new(Subject::open(kind, dir));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let device = device(w);
            for first in (1..=FILL_PER_DEVICE).step_by(100) {
                let bodies = (first..first + 100).map(punch).collect();
                store.append(&device, first, bodies).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("filler");
    }
    (store, t0.elapsed().as_secs_f64())
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() { disk_bytes(&entry.path()) } else { meta.len() };
    }
    total
}

struct ReadFigures {
    seq_us_per_event: f64,
    time_us_per_event: Option<f64>,
    time_rows: usize,
    page_ms_p50_p99: (f64, f64),
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads device 7's events in sequence order and its punches of the middle half of its
/// log-time span, in pages of PAGE, a few passes (warm).
fn reads(store: &Subject) -> ReadFigures {
    let device = device(7);
    let passes = 5;
    let mut pages = Vec::new();
    let t0 = Instant::now();
    let mut events = 0;
    for _ in 0..passes {
        let mut after = 0;
        loop {
            let t = Instant::now();
            let page = store.read_seq(&device, after, FILL_PER_DEVICE, PAGE);
            if page.is_empty() {
                break;
            }
            pages.push(t.elapsed().as_secs_f64() * 1e3);
            for (i, e) in page.iter().enumerate() {
                assert_eq!(e.sequence, after + 1 + i as u64);
            }
            after = page.last().map(|e| e.sequence).unwrap_or(after);
            events += page.len();
        }
    }
    assert_eq!(events as u64, FILL_PER_DEVICE * passes);
    let seq_us = t0.elapsed().as_secs_f64() * 1e6 / events as f64;
    pages.sort_by(f64::total_cmp);

    let span = FILL_PER_DEVICE as i64 * STEP_SECONDS;
    let (from, to) = (START_UNIX + span / 4, START_UNIX + 3 * span / 4);
    let t0 = Instant::now();
    let mut rows = 0;
    let mut supported = true;
    for _ in 0..passes {
        let mut after = None;
        loop {
            let Some(page) = store.punches(&device, from, to, after) else {
                supported = false;
                break;
            };
            let Some(last) = page.last() else { break };
            let EventBody::Punch(p) = &last.body else { panic!("a punch") };
            after = Some((p.log_time.unix_seconds, last.sequence));
            rows += page.len();
        }
        if !supported {
            break;
        }
    }
    let time_us = supported.then(|| t0.elapsed().as_secs_f64() * 1e6 / rows as f64);
    ReadFigures {
        seq_us_per_event: seq_us,
        time_us_per_event: time_us,
        time_rows: rows / passes as usize,
        page_ms_p50_p99: (percentile(&pages, 0.5), percentile(&pages, 0.99)),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // A real disk: the target folder (not /tmp, which may be a tmpfs).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-event-store");
    let root = std::env::var_os("EVENT_STORE_DIR").map(PathBuf::from).unwrap_or(root);
    std::fs::create_dir_all(&root).expect("bench folder");
    let run = run_length();
    let rounds = rounds();
    println!(
        "event stores: {WRITERS} writers, {:.1} s per run, {rounds} rounds, data in {} (load average {})",
        run.as_secs_f64(),
        root.display(),
        load_average()
    );

    // (kind, batch) -> [(punches/s, cpu us/punch)] over the rounds.
    let mut writes: HashMap<(usize, usize), Vec<(f64, f64)>> = HashMap::new();
    let mut dirs = Vec::new();
    for round in 0..rounds {
        for batch in [1usize, 100] {
            for (k, kind) in KINDS.iter().enumerate() {
                // Kept until the end: background threads of a store may outlive it briefly.
                let dir = tempfile::tempdir_in(&root).expect("temp dir");
                let (rate, cpu) = write_run(*kind, batch, run, dir.path()).await;
                dirs.push(dir);
                println!(
                    "  round {round} batch {batch:>3} {:<36} {rate:>10.0} punches/s {cpu:>8.2} us CPU/punch",
                    kind.name()
                );
                writes.entry((k, batch)).or_default().push((rate, cpu));
            }
        }
    }

    let mut read_rows = Vec::new();
    for kind in KINDS {
        let dir = tempfile::tempdir_in(&root).expect("temp dir");
        let (store, fill_secs) = fill(kind, dir.path()).await;
        let bytes = disk_bytes(dir.path());
        let figures = tokio::task::block_in_place(|| reads(&store));
        let total = WRITERS as u64 * FILL_PER_DEVICE;
        println!(
            "  fill {:<36} {:.1} s ({:.0} punches/s), {:.0} bytes/punch on disk",
            kind.name(),
            fill_secs,
            total as f64 / fill_secs,
            bytes as f64 / total as f64
        );
        read_rows.push((kind, figures, bytes as f64 / total as f64));
        drop(store);
        dirs.push(dir);
    }

    let fmt_runs = |runs: &[(f64, f64)]| {
        let rates: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
        let best = runs.iter().map(|(r, _)| *r).fold(0.0, f64::max);
        let cpu = runs.iter().map(|(_, c)| *c).sum::<f64>() / runs.len() as f64;
        (format!("**{best:.0}** ({})", rates.join(", ")), format!("{cpu:.2}"))
    };
    println!();
    println!("Machine load average at the end: {}", load_average());
    println!();
    println!(
        "| store | durable punches/s, batches of 1 (best; each round) | CPU us/punch | durable punches/s, batches of 100 (best; each round) | CPU us/punch | read by sequence, us/event (page of {PAGE}: p50 / p99 ms) | LoadLog-like time scan, us/row | disk bytes/punch |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (k, (kind, reads, bytes)) in read_rows.iter().enumerate() {
        let (one, one_cpu) = fmt_runs(&writes[&(k, 1)]);
        let (hundred, hundred_cpu) = fmt_runs(&writes[&(k, 100)]);
        let time = reads
            .time_us_per_event
            .map_or("n/a (no time index)".to_string(), |t| format!("{t:.2} ({} rows per pass)", reads.time_rows));
        println!(
            "| {} | {one} | {one_cpu} | {hundred} | {hundred_cpu} | {:.2} ({:.2} / {:.2}) | {time} | {bytes:.0} |",
            kind.name(),
            reads.seq_us_per_event,
            reads.page_ms_p50_p99.0,
            reads.page_ms_p50_p99.1,
        );
    }
}
