//! Server-to-device operations and LoadLog (issue 4), end to end over loopback against a
//! real `biogate` process:
//!
//! 1. REST call to device confirmation: a native device long-polls
//!    `GET /device/v1/commands?wait_ms=60000` and confirms every command at once with a
//!    `command_result` event; a client adds users through the Cams endpoint (the reply
//!    waits for the confirmation, `operations.cams_wait_ms = 10000`) and through
//!    `POST /v1/devices/{id}/operations?wait_ms=10000`, one call at a time, then 8 clients
//!    on 8 devices at once. The device stamps when each command reached it and when its
//!    result was acknowledged, which splits the latency into stages.
//! 2. LoadLog pages of 500 rows over a journal of 1,000,000 punches spread over 30 days
//!    (filled through the store API before the gateway starts), walking `OffSet` through
//!    a 30-day and a 1-day range.
//!
//! Baselines, measured in the same run: a no-op axum handler answering a POST, called with
//! the same HTTP client; the same pages served in-process (`load_page` and the Cams JSON,
//! no HTTP); 500 punches read by the log-time index (`Journal::punches`) and 500 events
//! read in sequence order (`Journal::read`); one durable journal append (its fsync).
//!
//! Run: `cargo bench -p biogate --bench operations`. Prints Markdown tables and writes
//! them to `target/bench-operations.md`.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use biogate::cams::reply::cams_punch_log;
use biogate::crypto::EncryptionMode;
use biogate::operations::catalogue::TimeSpan;
use biogate::operations::load_log::{PunchQuery, load_page};
use biogate::plugin::bindings::types::{DeviceTime, EventBody, InputType, Punch, PunchType};
use biogate::store::{Device, DeviceState, Journal, Store};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "bench-admin-key-0123456789abcdef";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
/// Sequential operations per API form.
const OPS: usize = 2000;
/// Operations before measuring (connections, caches).
const WARMUP: usize = 50;
/// Concurrent clients, each on its own device.
const CLIENTS: usize = 8;
const OPS_PER_CLIENT: usize = 250;
/// How long a device holds its command poll open.
const POLL_WAIT_MS: u64 = 60_000;
/// The LoadLog journal: PUNCHES punches on device L1, BATCH per append, over 30 days.
const PUNCHES: u64 = 1_000_000;
const BATCH: u64 = 1000;
/// Appends in flight while filling (one builds its sled batch while another waits for
/// its fsync).
const FILL_IN_FLIGHT: usize = 2;
const SPAN_SECONDS: u64 = 30 * 86_400;
/// 2026-06-01 00:00:00 +05:30.
const START_UNIX: i64 = 1_780_252_200;
const OFFSET_MINUTES: i32 = 330;
const MONTH: (&str, &str) = ("2026-06-01 00:00:00", "2026-06-30 23:59:59");
const DAY: (&str, &str) = ("2026-06-15 00:00:00", "2026-06-15 23:59:59");
/// The gateway's default `operations.load_log_page_size`.
const PAGE: usize = 500;

/// Summary of latencies in milliseconds.
#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    assert!(!ms.is_empty(), "no samples");
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Stats {
        n: ms.len(),
        p50: at(0.5),
        p99: at(0.99),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        max: ms[ms.len() - 1],
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn between(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64() * 1000.0
}

/// CPU seconds (user + system, every thread) process `pid` has used, from
/// `/proc/<pid>/stat` (Linux; 0 elsewhere). Clock ticks are USER_HZ, 100 on Linux.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    // After the command name: field 3 (state) is index 0; utime and stime are fields 14, 15.
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

/// The pid of this process's child named `name`.
fn child_pid(name: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (comm == name && ppid == me).then_some(pid)
    })
}

/// CPU time used during a phase, by the gateway and by this process (clients, devices,
/// the no-op server), in milliseconds per operation or page.
#[derive(Clone, Copy, Default)]
struct CpuPer {
    gateway: f64,
    bench: f64,
}

struct CpuMeter {
    gateway: Option<u32>,
    at: (f64, f64),
}

impl CpuMeter {
    fn start(gateway: Option<u32>) -> Self {
        CpuMeter { gateway, at: Self::now(gateway) }
    }

    fn now(gateway: Option<u32>) -> (f64, f64) {
        (gateway.map(cpu_seconds).unwrap_or(0.0), cpu_seconds(std::process::id()))
    }

    /// CPU per unit since the last call.
    fn per(&mut self, units: usize) -> CpuPer {
        let now = Self::now(self.gateway);
        let per = CpuPer {
            gateway: (now.0 - self.at.0) * 1000.0 / units as f64,
            bench: (now.1 - self.at.1) * 1000.0 / units as f64,
        };
        self.at = now;
        per
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// Part 1: operations
// ---------------------------------------------------------------------------------

/// When a command reached the device, and when the device's result was acknowledged.
#[derive(Default)]
struct Stamps {
    received: HashMap<String, Instant>,
    confirmed: HashMap<String, Instant>,
}

/// A native device that long-polls for commands and confirms each one as soon as it gets
/// it (what `NativeTerminal` does, minus its user table, plus time stamps).
fn start_device(base: &str, id: &str, stamps: Arc<Mutex<Stamps>>) -> tokio::task::JoinHandle<()> {
    let device = NativeDevice::new(base, id, TOKEN);
    tokio::spawn(async move {
        loop {
            let Some(commands) = device.poll_commands(POLL_WAIT_MS).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if commands.is_empty() {
                continue;
            }
            let received = Instant::now();
            let ids: Vec<String> =
                commands.iter().map(|c| c["operation_id"].as_str().unwrap_or_default().to_string()).collect();
            let results = ids
                .iter()
                .map(|id| json!({"type": "command_result", "operation_id": id, "return_code": 0, "details": {}}))
                .collect();
            let answer = device.send(results).await;
            let confirmed = Instant::now();
            assert_eq!(answer.status, 200, "the gateway refused a result: {:?}", answer.body);
            let mut s = stamps.lock().unwrap();
            for id in ids {
                s.received.insert(id.clone(), received);
                s.confirmed.insert(id, confirmed);
            }
        }
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Form {
    Cams,
    V1,
}

/// One add-user operation, answered after the device confirmed it; returns when the reply
/// was read in full. Panics unless the reply says the device confirmed.
async fn add_user(client: &reqwest::Client, base: &str, form: Form, device: &str, id: &str, user: &str) -> Instant {
    let request = match form {
        Form::Cams => client
            .post(format!("{base}/external/api3.0/biometric?stgid={device}"))
            .body(json!({"Add": {"User": {"UserID": user}}, "OperationID": id, "AuthToken": TOKEN}).to_string()),
        Form::V1 => client
            .post(format!("{base}/v1/devices/{device}/operations?wait_ms=10000&operation_id={id}"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(json!({"type": "add_user", "user": {"user_id": user}}).to_string()),
    };
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("the reply body");
    let done = Instant::now();
    let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let confirmed = match form {
        Form::Cams => status == 200 && reply["Status"] == "done" && reply["StatusCode"] == 0,
        Form::V1 => status == 200 && reply["state"] == "done" && reply["return_code"] == 0,
    };
    assert!(confirmed, "operation {id} was not confirmed: HTTP {status} {}", String::from_utf8_lossy(&body));
    done
}

/// Sequential operations: latencies, and the stage split from the device's stamps.
struct Sequential {
    total: Stats,
    to_device: Stats,
    device_post: Stats,
    received_to_reply: Stats,
    /// Replies the client had before the device's result POST was acknowledged.
    reply_before_ack: usize,
    cpu: CpuPer,
}

async fn sequential(
    client: &reqwest::Client,
    base: &str,
    form: Form,
    stamps: &Arc<Mutex<Stamps>>,
    meter: &mut CpuMeter,
) -> Sequential {
    let prefix = if form == Form::Cams { "cams" } else { "v1" };
    for n in 0..WARMUP {
        add_user(client, base, form, "D1", &format!("{prefix}-warm-{n}"), &format!("{prefix}w{n}")).await;
    }
    let mut runs = Vec::with_capacity(OPS);
    meter.per(1);
    for n in 0..OPS {
        let id = format!("{prefix}-{n}");
        let sent = Instant::now();
        let done = add_user(client, base, form, "D1", &id, &format!("{}", 100_000 + n)).await;
        runs.push((id, sent, done));
    }
    let cpu = meter.per(OPS);
    // The device's stamps of the last result are written right after its POST returns.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = stamps.lock().unwrap();
    let mut total = Vec::new();
    let (mut to_device, mut device_post, mut received_to_reply) = (Vec::new(), Vec::new(), Vec::new());
    let mut reply_before_ack = 0;
    for (id, sent, done) in &runs {
        total.push(between(*sent, *done));
        let (received, confirmed) = (s.received[id], s.confirmed[id]);
        to_device.push(between(*sent, received));
        device_post.push(between(received, confirmed));
        received_to_reply.push(between(received, *done));
        reply_before_ack += usize::from(*done < confirmed);
    }
    Sequential {
        total: stats(total),
        to_device: stats(to_device),
        device_post: stats(device_post),
        received_to_reply: stats(received_to_reply),
        reply_before_ack,
        cpu,
    }
}

/// `CLIENTS` clients, each adding users on its own device: (ops/s, latencies, CPU).
async fn concurrent(client: &reqwest::Client, base: &str, meter: &mut CpuMeter) -> (f64, Stats, CpuPer) {
    for w in 0..CLIENTS {
        add_user(client, base, Form::Cams, &format!("C{w}"), &format!("c{w}-warm"), "1").await;
    }
    meter.per(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let (client, base) = (client.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(OPS_PER_CLIENT);
            for n in 0..OPS_PER_CLIENT {
                let sent = Instant::now();
                let done = add_user(
                    &client,
                    &base,
                    Form::Cams,
                    &format!("C{w}"),
                    &format!("c{w}-{n}"),
                    &format!("{}", 200_000 + n),
                )
                .await;
                latencies.push(between(sent, done));
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, stats(all), meter.per(CLIENTS * OPS_PER_CLIENT))
}

/// The no-op baseline with the same client: sequential latencies, then `CLIENTS`
/// concurrent callers: (sequential, its CPU, ops/s, concurrent latencies, their CPU).
async fn noop_baseline(
    client: &reqwest::Client,
    url: &str,
    meter: &mut CpuMeter,
) -> (Stats, CpuPer, f64, Stats, CpuPer) {
    let body = json!({"Add": {"User": {"UserID": "1"}}, "AuthToken": TOKEN}).to_string();
    let call = |client: reqwest::Client, url: String, body: String| async move {
        let response = client.post(url).body(body).send().await.unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
    };
    for _ in 0..WARMUP {
        call(client.clone(), url.to_string(), body.clone()).await;
    }
    let mut seq = Vec::with_capacity(OPS);
    meter.per(1);
    for _ in 0..OPS {
        let t = Instant::now();
        call(client.clone(), url.to_string(), body.clone()).await;
        seq.push(ms_since(t));
    }
    let seq_cpu = meter.per(OPS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(OPS_PER_CLIENT);
            for _ in 0..OPS_PER_CLIENT {
                let t = Instant::now();
                call(client.clone(), url.clone(), body.clone()).await;
                latencies.push(ms_since(t));
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (stats(seq), seq_cpu, rate, stats(all), meter.per(CLIENTS * OPS_PER_CLIENT))
}

// ---------------------------------------------------------------------------------
// Part 2: LoadLog
// ---------------------------------------------------------------------------------

/// Punch `i` of the LoadLog journal: 30 days evenly, 2,000 users, in/out alternating.
fn punch(i: u64) -> EventBody {
    EventBody::Punch(Punch {
        user_id: (1000 + i % 2000).to_string(),
        log_time: DeviceTime {
            unix_seconds: START_UNIX + (i * SPAN_SECONDS / PUNCHES) as i64,
            utc_offset_minutes: OFFSET_MINUTES,
        },
        punch_type: if i.is_multiple_of(2) { PunchType::CheckIn } else { PunchType::CheckOut },
        input_type: InputType::Fingerprint,
        temperature: None,
        face_mask: None,
        work_code: None,
        photo: None,
    })
}

/// Fills device L1's journal; returns the seconds it took and the rate (punches/s) of
/// each quarter of the fill.
async fn fill(store_dir: &Path) -> (f64, Vec<f64>) {
    let started = Instant::now();
    let store = Store::open(store_dir).unwrap();
    let journal = store.journal().unwrap();
    let now = biogate::time::now_ms();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut stored = 0;
    let (mut quarters, mut quarter_started) = (Vec::new(), Instant::now());
    for b in 0..PUNCHES / BATCH {
        if b > 0 && b.is_multiple_of(PUNCHES / BATCH / 4) {
            quarters.push((PUNCHES / 4) as f64 / quarter_started.elapsed().as_secs_f64());
            quarter_started = Instant::now();
        }
        let bodies: Vec<EventBody> = (b * BATCH..(b + 1) * BATCH).map(punch).collect();
        let journal = journal.clone();
        in_flight.spawn(async move { journal.append("L1", bodies, now).await.unwrap().stored() });
        if in_flight.len() >= FILL_IN_FLIGHT {
            stored += in_flight.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(n) = in_flight.join_next().await {
        stored += n.unwrap();
    }
    assert_eq!(stored as u64, PUNCHES, "every punch is new");
    quarters.push((PUNCHES / 4) as f64 / quarter_started.elapsed().as_secs_f64());
    drop(journal);
    drop(store);
    (started.elapsed().as_secs_f64(), quarters)
}

/// A walk through every page of a range.
struct Walk {
    first: f64,
    rest: Stats,
    pages: usize,
    rows: u64,
    /// Reply bytes per full page (HTTP walks).
    page_bytes: usize,
}

/// Walks a range through the gateway's Cams endpoint.
async fn walk_http(client: &reqwest::Client, base: &str, range: (&str, &str)) -> Walk {
    let url = format!("{base}/external/api3.0/biometric?stgid=L1");
    let (mut offset, mut first, mut rest, mut rows, mut page_bytes) = (String::new(), 0.0, Vec::new(), 0u64, 0);
    let mut pages = 0;
    loop {
        let body = json!({"Load": {"PunchLog": {"Filter": {"StartTime": range.0, "EndTime": range.1, "OffSet": offset}}}, "AuthToken": TOKEN});
        let t = Instant::now();
        let response = client.post(&url).body(body.to_string()).send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("the reply body");
        let elapsed = ms_since(t);
        let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!((status, &reply["Status"]), (200, &json!("done")), "{}", String::from_utf8_lossy(&bytes));
        let log = &reply["PunchLog"];
        let returned: u64 = log["ReturnRowCount"].as_str().unwrap().parse().unwrap();
        if pages == 0 {
            first = elapsed;
        } else {
            rest.push(elapsed);
        }
        if returned as usize == PAGE {
            page_bytes = bytes.len();
        }
        pages += 1;
        rows += returned;
        offset = log["OffSet"].as_str().unwrap().to_string();
        if offset.is_empty() {
            let actual: u64 = log["ActualRowCount"].as_str().unwrap().parse().unwrap();
            assert_eq!(rows, actual, "every punch of the range exactly once");
            break;
        }
    }
    Walk { first, rest: stats(rest), pages, rows, page_bytes }
}

/// The same walk in-process: `load_page` and the Cams JSON of the page, no HTTP.
async fn walk_in_process(journal: &Journal, device: &Device, range: (&str, &str)) -> Walk {
    let span = TimeSpan { start_time: range.0.into(), end_time: range.1.into() };
    let (mut offset, mut first, mut rest, mut rows, mut page_bytes) = (String::new(), 0.0, Vec::new(), 0u64, 0);
    let mut pages = 0;
    loop {
        let t = Instant::now();
        let query = PunchQuery {
            span: &span,
            offset: &offset,
            user_id: None,
            page_size: PAGE,
            field_prefix: "Load.PunchLog.Filter",
        };
        let page = load_page(journal, device, &query).await.unwrap();
        let json = serde_json::to_vec(
            &json!({"Status": "done", "OperationID": "x", "StatusCode": 0, "PunchLog": cams_punch_log(&page, device)}),
        )
        .unwrap();
        let elapsed = ms_since(t);
        if pages == 0 {
            first = elapsed;
        } else {
            rest.push(elapsed);
        }
        if page.events.len() == PAGE {
            page_bytes = json.len();
        }
        pages += 1;
        rows += page.events.len() as u64;
        if page.next_offset.is_empty() {
            assert_eq!(Some(rows), page.actual_row_count);
            break;
        }
        offset = page.next_offset;
    }
    Walk { first, rest: stats(rest), pages, rows, page_bytes }
}

/// The store alone: 500 punches at a time by the log-time index over the 30 days.
fn walk_index(journal: &Journal) -> Stats {
    let (from, to) = (START_UNIX, START_UNIX + SPAN_SECONDS as i64 - 1);
    let (mut after, mut times, mut rows) = (None, Vec::new(), 0);
    loop {
        let t = Instant::now();
        let batch = journal.punches("L1", from, to, after, u64::MAX, PAGE).unwrap();
        times.push(ms_since(t));
        let Some(last) = batch.last() else { break };
        after = biogate::operations::load_log::cursor_of(last);
        rows += batch.len() as u64;
    }
    assert_eq!(rows, PUNCHES);
    stats(times)
}

/// The named baseline: 500 events at a time in sequence order, straight from sled.
fn walk_sequence(journal: &Journal) -> Stats {
    let (mut after, mut times) = (0, Vec::new());
    loop {
        let t = Instant::now();
        let batch = journal.read("L1", after, u64::MAX, PAGE).unwrap();
        times.push(ms_since(t));
        let Some(last) = batch.last() else { break };
        after = last.sequence;
    }
    assert_eq!(after, PUNCHES);
    stats(times)
}

/// One durable append of one punch (sled insert and the group-commit fsync).
async fn durable_writes(journal: &Journal) -> Stats {
    let mut times = Vec::new();
    for i in 0..200u64 {
        let t = Instant::now();
        journal.append("SCRATCH", vec![punch(i)], biogate::time::now_ms()).await.unwrap();
        times.push(ms_since(t));
    }
    stats(times)
}

/// In-process figures on the filled store, before the gateway opens it (sled allows
/// one process at a time).
struct InProcess {
    month: Walk,
    day: Walk,
    index: Stats,
    sequence: Stats,
    fsync: Stats,
}

async fn in_process(store_dir: &Path) -> InProcess {
    let store = Store::open(store_dir).unwrap();
    let journal = store.journal().unwrap();
    let device = Device {
        id: "L1".into(),
        label: String::new(),
        auth_token: TOKEN.into(),
        security_key: None,
        encryption: EncryptionMode::Plain,
        utc_offset_minutes: OFFSET_MINUTES,
        enabled: true,
        state: DeviceState::Approved,
        routes: None,
        created_at_ms: 0,
    };
    // Same order as through the gateway: the 30-day walk first, on a cold sled cache.
    let month = walk_in_process(&journal, &device, MONTH).await;
    let day = walk_in_process(&journal, &device, DAY).await;
    let index = walk_index(&journal);
    let sequence = walk_sequence(&journal);
    let fsync = durable_writes(&journal).await;
    InProcess { month, day, index, sequence, fsync }
}

// ---------------------------------------------------------------------------------

fn f(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let run_started = Instant::now();
    let load_before = load_average();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("data").join("store");
    std::fs::create_dir_all(store_dir.parent().unwrap()).unwrap();

    eprintln!("filling the journal with {PUNCHES} punches...");
    let (fill_seconds, fill_quarters) = fill(&store_dir).await;
    eprintln!("filled in {fill_seconds:.1} s; in-process baselines...");
    let local = in_process(&store_dir).await;

    // The gateway, on the filled store.
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n[operations]\ncams_wait_ms = 10000\n"
    );
    let devices: Vec<String> =
        ["D1", "L1"].iter().map(|s| s.to_string()).chain((0..CLIENTS).map(|w| format!("C{w}"))).collect();
    for id in &devices {
        config.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"));
    }
    let gw = GatewayProcess::start(Path::new(BIN), &write_config(dir.path(), &config));
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().unwrap();
    let mut meter = CpuMeter::start(child_pid("biogate"));

    eprintln!("LoadLog through the gateway...");
    meter.per(1);
    let month = walk_http(&client, &gw.base, MONTH).await;
    let month_cpu = meter.per(month.pages);
    let day = walk_http(&client, &gw.base, DAY).await;
    let day_cpu = meter.per(day.pages);

    eprintln!("operations...");
    let noop = Router::new().route("/noop", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noop_url = format!("http://{}/noop", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, noop).await.ok() });

    let stamps: Arc<Mutex<Stamps>> = Arc::default();
    let mut device_tasks = vec![start_device(&gw.base, "D1", stamps.clone())];
    for w in 0..CLIENTS {
        device_tasks.push(start_device(&gw.base, &format!("C{w}"), stamps.clone()));
    }
    let (noop_seq, noop_seq_cpu, noop_rate, noop_conc, noop_conc_cpu) =
        noop_baseline(&client, &noop_url, &mut meter).await;
    let cams = sequential(&client, &gw.base, Form::Cams, &stamps, &mut meter).await;
    let v1 = sequential(&client, &gw.base, Form::V1, &stamps, &mut meter).await;
    let (rate, conc, conc_cpu) = concurrent(&client, &gw.base, &mut meter).await;
    let load_after = load_average();
    for t in device_tasks {
        t.abort();
    }
    drop(gw);

    // One table: `cargo xtask bench` keeps only the table lines of the output.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let lat = |s: &Stats| format!("{} / {} ms (mean {}, max {})", f(s.p50), f(s.p99), f(s.mean), f(s.max));
    let cpu = |c: CpuPer| format!("{} / {} ms", f(c.gateway), f(c.bench));
    let p99_ratio = |a: &Stats, b: &Stats| format!("{:.0}x (p99)", a.p99 / b.p99);
    let walk_cell = |walk: &Walk| {
        format!("{} (first page {}, {} pages, {} rows)", lat(&walk.rest), f(walk.first), walk.pages, walk.rows)
    };
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut add = |cells: [&str; 5]| rows.push(cells.map(str::to_string));
    let noop_cell = format!("no-op axum POST round trip, same client: {}", lat(&noop_seq));
    add([
        &format!(
            "Cams `Add.User`, REST call to device confirmation, one at a time ({} calls): p50 / p99",
            cams.total.n
        ),
        &lat(&cams.total),
        &noop_cell,
        &p99_ratio(&cams.total, &noop_seq),
        "p99 < 50 ms",
    ]);
    add([
        &format!("`/v1` `add_user?wait_ms=10000`, one at a time ({} calls)", v1.total.n),
        &lat(&v1.total),
        "same no-op round trip",
        &p99_ratio(&v1.total, &noop_seq),
        "p99 < 50 ms",
    ]);
    add([
        &format!("Cams, {CLIENTS} clients on {CLIENTS} devices at once ({} calls): throughput; p50 / p99", conc.n),
        &format!("**{rate:.0} ops/s**; {}", lat(&conc)),
        &format!("no-op, {CLIENTS} clients: {noop_rate:.0} req/s; {}", lat(&noop_conc)),
        &format!("{:.3} (throughput)", rate / noop_rate),
        "",
    ]);
    add([
        &format!("CPU per operation, gateway / bench process (one at a time; {CLIENTS} at once)"),
        &format!("Cams {}; /v1 {}; {CLIENTS} at once {}", cpu(cams.cpu), cpu(v1.cpu), cpu(conc_cpu)),
        &format!(
            "no-op (client and server in the bench process): {}; {CLIENTS} at once {}",
            cpu(noop_seq_cpu),
            cpu(noop_conc_cpu)
        ),
        "",
        "",
    ]);
    for (name, a, b, base) in [
        (
            "stage: client sends → command reaches the device (submit + fsync, long-poll reply)",
            cams.to_device,
            v1.to_device,
            String::new(),
        ),
        (
            "stage: device's `command_result` POST → acknowledged (journal append, close, fsyncs)",
            cams.device_post,
            v1.device_post,
            format!(
                "one durable journal append in-process (sled insert + fsync): {} / {} ms",
                f(local.fsync.p50),
                f(local.fsync.p99)
            ),
        ),
        (
            "stage: command reaches the device → client has the reply",
            cams.received_to_reply,
            v1.received_to_reply,
            String::new(),
        ),
    ] {
        add([name, &format!("Cams {} / {} ms; /v1 {} / {} ms", f(a.p50), f(a.p99), f(b.p50), f(b.p99)), &base, "", ""]);
    }
    add([
        "replies the client had before the device's result POST was acknowledged",
        &format!("Cams {} of {}; /v1 {} of {}", cams.reply_before_ack, cams.total.n, v1.reply_before_ack, v1.total.n),
        "",
        "",
        "",
    ]);
    let read_cell = format!(
        "`Journal::read` of 500 events straight from sled: {} / {} ms",
        f(local.sequence.p50),
        f(local.sequence.p99)
    );
    add([
        &format!("Cams `Load.PunchLog` page of {PAGE} rows over {PUNCHES} punches, 30-day range: p50 / p99"),
        &walk_cell(&month),
        &read_cell,
        &format!("{:.1}x (p99)", month.rest.p99 / local.sequence.p99),
        "p99 < 20 ms",
    ]);
    add([
        "same, 1-day range",
        &walk_cell(&day),
        "same read",
        &format!("{:.1}x (p99)", day.rest.p99 / local.sequence.p99),
        "p99 < 20 ms",
    ]);
    add([
        "CPU per LoadLog page, gateway / bench process (30-day; 1-day)",
        &format!("{}; {}", cpu(month_cpu), cpu(day_cpu)),
        &format!("a full page is {} bytes of JSON", month.page_bytes),
        "",
        "",
    ]);
    add(["LoadLog in-process: `load_page` + Cams JSON, no HTTP, 30-day range", &walk_cell(&local.month), "", "", ""]);
    add(["LoadLog in-process, 1-day range", &walk_cell(&local.day), "", "", ""]);
    add(["store only: `Journal::punches`, 500 by the log-time index, 30 days", &lat(&local.index), "", "", ""]);
    add([
        &format!(
            "journal fill: {PUNCHES} punches over 30 days through `Journal::append`, {BATCH} per append, before the gateway starts"
        ),
        &format!(
            "{fill_seconds:.1} s, {:.0} punches/s (by quarter: {})",
            PUNCHES as f64 / fill_seconds,
            fill_quarters.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
        ),
        "",
        "",
        "",
    ]);
    add([
        "machine during the run",
        &format!("{cores} cores; load average {load_before} at the start, {load_after} at the end"),
        "",
        "",
        "",
    ]);

    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "## Operations (issue 4)\n").unwrap();
    writeln!(
        w,
        "`cargo bench -p biogate --bench operations`: a real `biogate` process (release) on loopback with \
         `operations.cams_wait_ms = 10000` and no routes; native devices long-poll \
         `GET /device/v1/commands?wait_ms={POLL_WAIT_MS}` and confirm each command as soon as they get it. Latencies \
         are p50 / p99; stages are stamped by the device on the client's clock; CPU is per operation or page, \
         from `/proc`, for the gateway process and for the bench process (clients, devices, no-op server).\n"
    )
    .unwrap();
    writeln!(w, "| figure | biogate | baseline (same run) | ratio | target |").unwrap();
    writeln!(w, "| --- | --- | --- | --- | --- |").unwrap();
    for r in &rows {
        writeln!(w, "| {} |", r.join(" | ")).unwrap();
    }
    writeln!(w, "\nWhole run: {:.0} s.", run_started.elapsed().as_secs_f64()).unwrap();

    println!("{md}");
    let out = target_dir().join("bench-operations.md");
    std::fs::write(&out, &md).unwrap();
    eprintln!("wrote {}", out.display());
}
