//! Delivery after an outage, against real `biogate` processes (release), a callback
//! receiver and native devices, all on this machine:
//!
//! 1. **drain**: `BIOGATE_DELIVERY_DEVICES` devices (1,000) each store
//!    `BIOGATE_DELIVERY_PUNCHES` punches (100) while the receiver is down; the gateway is
//!    killed and started again with the receiver up: punches delivered per second from
//!    the first delivery to the last, and whether every punch arrived once and in order;
//! 2. **resume**: the same devices with the default retry schedule (5 s, 5 min, 30 min,
//!    ...); the receiver goes down (503), every device punches, the receiver comes back
//!    after each of `BIOGATE_DELIVERY_OUTAGES` (seconds, `30`): the time from the
//!    receiver's return to its first delivery, to the moment every device has had a
//!    delivery (every waiting device resumed), and to the whole backlog.
//!
//! 3. **kills** (not run by default): the drain of 1 with the gateway SIGKILLed
//!    `BIOGATE_DELIVERY_KILLS` times (20) while it delivers: punches delivered twice.
//!
//! Each scenario runs against the gateway built with this bench and, when
//! `BIOGATE_BIN_BEFORE` names another build (an older commit), against that one in the
//! same run: the "before" column (drain runs alternate between the builds,
//! `BIOGATE_DELIVERY_REPEAT` rounds, 3; the median is reported). `BIOGATE_DELIVERY_SCENARIOS`
//! (`drain,resume`) picks the scenarios; `BIOGATE_DELIVERY_RESUME_TIMEOUT` (seconds, 400)
//! bounds a resume.
//!
//! Run: `cargo bench -p biogate --bench delivery` (prints a Markdown table).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::loadsim::{Checker, Protocol, TOKEN, native, plan};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "bench-admin-key-0123456789";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A receiver that reports each punch to a checker and counts arrivals per device.
#[derive(Clone)]
struct Sink {
    shared: Arc<Shared>,
    url: String,
}

struct Shared {
    status: AtomicU16,
    checker: Checker,
    per_device: Vec<AtomicU64>,
    requests: AtomicU64,
}

#[derive(serde::Deserialize)]
struct Params {
    stgid: Option<String>,
}

/// The part of a Cams v3 `RealTime` body the receiver reads.
#[derive(serde::Deserialize)]
struct Body<'a> {
    #[serde(rename = "RealTime", borrow)]
    real_time: Option<RealTime<'a>>,
}

#[derive(serde::Deserialize)]
struct RealTime<'a> {
    #[serde(rename = "PunchLog", borrow)]
    punch_log: Option<PunchLog<'a>>,
}

#[derive(serde::Deserialize)]
struct PunchLog<'a> {
    #[serde(rename = "UserId", borrow)]
    user_id: Option<&'a str>,
}

async fn record(State(shared): State<Arc<Shared>>, Query(p): Query<Params>, body: Bytes) -> StatusCode {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let status = shared.status.load(Ordering::Relaxed);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    let at = Instant::now();
    let user = serde_json::from_slice::<Body<'_>>(&body)
        .ok()
        .and_then(|b| b.real_time?.punch_log?.user_id)
        .and_then(plan::seq_of_user);
    let device = p.stgid.as_deref().and_then(plan::device_index);
    match (device, user) {
        (Some(device), Some(seq)) => {
            shared.checker.arrived(device, seq, at);
            if let Some(n) = shared.per_device.get(device) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => shared.checker.other_arrived(),
    }
    StatusCode::OK
}

impl Sink {
    async fn start(devices: usize) -> Sink {
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            checker: Checker::new(devices),
            per_device: (0..devices).map(|_| AtomicU64::new(0)).collect(),
            requests: AtomicU64::new(0),
        });
        let app = Router::new().route("/callback", post(record)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/callback", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Sink { shared, url }
    }

    fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    fn counts(&self) -> Vec<u64> {
        self.shared.per_device.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    }
}

/// A config of `devices` native devices and one route to `callback`.
fn config(dir: &Path, devices: usize, callback: &str, retry_schedule: Option<&str>) -> PathBuf {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for index in 0..devices {
        let id = plan::device_id(Protocol::Native, index);
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
    }
    text.push_str(&format!(
        "[routes.bench]\ndevices = [\"*\"]\nallow_private_networks = true\nsink = {{ type = \"callback\", url = \"{callback}\" }}\n"
    ));
    if let Some(schedule) = retry_schedule {
        text.push_str(&format!("retry_schedule = {schedule}\n"));
    }
    write_config(dir, &text)
}

/// Sends punches `seqs` of every device, 100 per request, 16 requests at a time.
async fn fill(base: &str, checker: &Checker, devices: usize, seqs: std::ops::Range<u64>, epoch: u64) {
    const SENDERS: usize = 16;
    let client = reqwest::Client::builder().tcp_nodelay(true).build().expect("a client");
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let (client, base, seqs) = (client.clone(), base.to_string(), seqs.clone());
        let mine: Vec<usize> = (sender..devices).step_by(SENDERS).collect();
        for &device in &mine {
            for s in seqs.clone() {
                checker.sending(device, s);
            }
        }
        tasks.push(tokio::spawn(async move {
            for device in mine {
                let url = format!("{base}/device/v1/events?stgid={}", plan::device_id(Protocol::Native, device));
                let mut seq = seqs.start;
                while seq < seqs.end {
                    let end = (seq + 100).min(seqs.end);
                    let response = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .body(native::punch_body(epoch, seq..end))
                        .send()
                        .await
                        .expect("the gateway answers");
                    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
                    seq = end;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a sender");
    }
}

/// What the drain scenario measured.
struct Drain {
    total: u64,
    first: Option<Duration>,
    rate: f64,
    all: bool,
    clean: String,
    /// Gateway CPU time (user + system) per punch delivered, since its start, in µs.
    cpu_per_event: f64,
    /// The same for this process (the receiver and its checker), in µs.
    receiver_per_event: f64,
}

/// Prints the gateway's group-commit figures (flushes, their mean time, writers per flush)
/// to stderr.
async fn group_commit_stats(base: &str) {
    let text = biogate_e2e::metrics::scrape(base, ADMIN).await;
    let value = |name: &str| biogate_e2e::metrics::value(&text, name);
    if let (Some(flushes), Some(seconds), Some(writers)) = (
        value("biogate_group_commit_flush_seconds_count"),
        value("biogate_group_commit_flush_seconds_sum"),
        value("biogate_group_commit_writers_sum"),
    ) {
        eprintln!(
            "drain: {flushes:.0} group-commit flushes, mean {:.2} ms, {:.1} writers per flush",
            seconds / flushes * 1000.0,
            writers / flushes
        );
    }
}

/// CPU seconds (user + system) used so far by `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn drain(binary: &Path, devices: usize, per_device: u64) -> Drain {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sink = Sink::start(devices).await;
    sink.answer(503);
    let cfg = config(dir.path(), devices, &sink.url, Some("[\"1h\"]"));
    let gw = GatewayProcess::start(binary, &cfg);
    let epoch = plan::default_epoch();
    let started = Instant::now();
    fill(&gw.base, &sink.shared.checker, devices, 0..per_device, epoch).await;
    let total = per_device * devices as u64;
    eprintln!("drain: {total} punches stored in {:?}", started.elapsed());
    gw.kill();
    sink.shared.checker.reset_marks();
    sink.answer(200);
    let spawned = Instant::now();
    let own_before = cpu_seconds(std::process::id());
    let gw = GatewayProcess::start(binary, &cfg);
    let all = sink.shared.checker.wait_all_delivered(Duration::from_secs(300)).await;
    let cpu = cpu_seconds(gw.pid());
    let receiver_cpu = cpu_seconds(std::process::id()) - own_before;
    group_commit_stats(&gw.base).await;
    let checker = &sink.shared.checker;
    let first = checker.first_arrival().map(|t| t.duration_since(spawned));
    let span = match (checker.first_arrival(), checker.last_arrival()) {
        (Some(a), Some(b)) if b > a => b.duration_since(a),
        _ => Duration::from_secs(1),
    };
    let report = checker.report();
    let rate = report.delivered as f64 / span.as_secs_f64();
    let cpu_per_event = cpu / report.delivered.max(1) as f64 * 1e6;
    let receiver_per_event = receiver_cpu / report.delivered.max(1) as f64 * 1e6;
    eprintln!(
        "drain: first after {first:?}, {} delivered in {span:?} ({rate:.0}/s), gateway CPU {cpu:.1} s ({cpu_per_event:.0} us per punch), receiver {receiver_per_event:.0} us per punch; {report}",
        report.delivered
    );
    drop(gw);
    let clean = if report.duplicates == 0 && report.out_of_order == 0 && report.missing == 0 {
        "once, in order".to_string()
    } else {
        format!("{report}")
    };
    Drain { total, first, rate, all, clean, cpu_per_event, receiver_per_event }
}

/// What the resume scenario measured, from the receiver's return.
struct Resume {
    first: Option<Duration>,
    every_device: Option<Duration>,
    backlog: Option<Duration>,
    /// Requests the receiver got while down.
    requests_down: u64,
    /// Requests per second it got after the first 10 s of the outage.
    steady: f64,
    clean: String,
}

/// What the kill scenario measured.
struct Kills {
    kills: usize,
    delivered: u64,
    duplicates: u64,
    clean: bool,
}

/// A backlog drained by a gateway that is SIGKILLed `kills` times while it delivers, 0.5
/// to 1.5 s after each start (fewer if the backlog is drained before): punches delivered
/// twice (no ingest meanwhile, so nothing else flushes the store for the workers).
async fn kills(binary: &Path, devices: usize, per_device: u64, kills: usize) -> Kills {
    use rand::Rng;
    let dir = tempfile::tempdir().expect("a temp dir");
    let sink = Sink::start(devices).await;
    sink.answer(503);
    let cfg = config(dir.path(), devices, &sink.url, Some("[\"1h\"]"));
    let gw = GatewayProcess::start(binary, &cfg);
    fill(&gw.base, &sink.shared.checker, devices, 0..per_device, plan::default_epoch()).await;
    gw.kill();
    sink.answer(200);
    // Only kills that land while the backlog drains count (a kill after the drain can
    // repeat nothing).
    let mut active = 0;
    while active < kills {
        let gw = GatewayProcess::start(binary, &cfg);
        let up = Duration::from_millis(rand::rng().random_range(500..1500));
        tokio::time::sleep(up).await;
        let (sent, delivered) = sink.shared.checker.progress();
        gw.kill();
        if delivered >= sent {
            break;
        }
        active += 1;
    }
    let gw = GatewayProcess::start(binary, &cfg);
    let all = sink.shared.checker.wait_all_delivered(Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(gw);
    let report = sink.shared.checker.report();
    eprintln!("kills: {active} kills while draining; {report}");
    Kills {
        kills: active,
        delivered: report.delivered,
        duplicates: report.duplicates,
        clean: all && report.missing == 0 && report.out_of_order == 0,
    }
}

async fn resume(binary: &Path, devices: usize, outage: Duration, timeout: Duration) -> Resume {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sink = Sink::start(devices).await;
    let cfg = config(dir.path(), devices, &sink.url, None);
    let gw = GatewayProcess::start(binary, &cfg);
    let epoch = plan::default_epoch();
    let checker = &sink.shared.checker;
    // One punch each with the receiver up: every worker is running.
    fill(&gw.base, checker, devices, 0..1, epoch).await;
    checker.wait_all_delivered(Duration::from_secs(60)).await;
    sink.answer(503);
    let down = Instant::now();
    let requests = || sink.shared.requests.load(Ordering::Relaxed);
    let at_down = requests();
    // Every device punches at the start of the outage and once more half-way.
    fill(&gw.base, checker, devices, 1..3, epoch).await;
    // The schedule's first retries (5 s) are over after 10 s: what the dead receiver gets
    // from then on is the steady load of the outage.
    tokio::time::sleep(Duration::from_secs(10).min(outage / 2)).await;
    let (steady_from, at_steady) = (Instant::now(), requests());
    tokio::time::sleep_until((down + outage / 2).into()).await;
    fill(&gw.base, checker, devices, 3..4, epoch).await;
    tokio::time::sleep_until((down + outage).into()).await;
    let requests_down = requests() - at_down;
    let steady = (requests() - at_steady) as f64 / steady_from.elapsed().as_secs_f64();
    let down_for = down.elapsed();
    let before = sink.counts();
    checker.reset_marks();
    sink.answer(200);
    let up = Instant::now();
    let mut every_device = None;
    let mut backlog = None;
    while up.elapsed() < timeout {
        if every_device.is_none() && sink.counts().iter().zip(&before).all(|(now, was)| now > was) {
            every_device = Some(up.elapsed());
        }
        if checker.missing_sent_before(up) == 0 {
            backlog = Some(up.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = checker.first_arrival().map(|t| t.saturating_duration_since(up));
    let report = checker.report();
    eprintln!(
        "resume after {down_for:?} down: first {first:?}, every device {every_device:?}, backlog {backlog:?}; {requests_down} requests while down ({steady:.2}/s after the first 10 s); {report}"
    );
    drop(gw);
    Resume {
        first,
        every_device,
        backlog,
        requests_down,
        steady,
        clean: if report.duplicates == 0 && report.out_of_order == 0 && report.missing == 0 {
            "once, in order".into()
        } else {
            format!("{report}")
        },
    }
}

fn secs(d: Option<Duration>, timeout: Duration) -> String {
    match d {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("> {:.0} s", timeout.as_secs_f64()),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let devices: usize = env("BIOGATE_DELIVERY_DEVICES", 1000);
    let per_device: u64 = env("BIOGATE_DELIVERY_PUNCHES", 100);
    let timeout = Duration::from_secs(env("BIOGATE_DELIVERY_RESUME_TIMEOUT", 400));
    let outages: Vec<u64> = std::env::var("BIOGATE_DELIVERY_OUTAGES")
        .unwrap_or_else(|_| "30".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let scenarios = std::env::var("BIOGATE_DELIVERY_SCENARIOS").unwrap_or_else(|_| "drain,resume".into());
    let repeat: usize = env("BIOGATE_DELIVERY_REPEAT", 3).max(1);
    let after = PathBuf::from(std::env::var("BIOGATE_BIN").unwrap_or_else(|_| BIN.to_string()));
    let before = std::env::var("BIOGATE_BIN_BEFORE").ok().map(PathBuf::from);
    let mut builds = vec![("this build", after)];
    if let Some(before) = before {
        builds.insert(0, ("before", before));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut out = vec![
        format!(
            "Delivery: `cargo bench -p biogate --bench delivery` ({cores} cores, release, loopback; the devices and the receiver share the machine with the gateway). {devices} native devices, one callback route."
        ),
        String::new(),
        "| figure | build | result | target |".into(),
        "| --- | --- | --- | --- |".into(),
    ];
    if scenarios.contains("drain") {
        // Builds alternate, `repeat` rounds; the median round of each is reported (the
        // machine may be shared: alternating spreads its load over both).
        let mut runs: Vec<Vec<Drain>> = builds.iter().map(|_| Vec::new()).collect();
        for _ in 0..repeat {
            for (i, (_, binary)) in builds.iter().enumerate() {
                runs[i].push(drain(binary, devices, per_device).await);
            }
        }
        for ((name, _), mut runs) in builds.iter().zip(runs) {
            runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let rates: Vec<String> = runs.iter().map(|d| format!("{:.0}", d.rate)).collect();
            let d = &runs[runs.len() / 2];
            out.push(format!(
                "| drain: {} punches stored while the receiver was down, gateway restarted with it up: punches/s from the first delivery to the last, median of {} (all runs; first delivery after start; CPU per punch: gateway, receiver) | {name} | {:.0}/s ({}; {}; {:.0} us, {:.0} us; {}{}) | >= 20,000/s |",
                d.total,
                runs.len(),
                d.rate,
                rates.join(", "),
                secs(d.first, Duration::from_secs(300)),
                d.cpu_per_event,
                d.receiver_per_event,
                d.clean,
                if d.all { "" } else { "; NOT ALL DELIVERED in 300 s" }
            ));
        }
    }
    for (name, binary) in &builds {
        if scenarios.contains("kills") {
            let k = kills(binary, devices, per_device, env("BIOGATE_DELIVERY_KILLS", 20)).await;
            out.push(format!(
                "| kills: a backlog of {} punches drained by a gateway SIGKILLed {} times while delivering (0.5-1.5 s after each start): punches delivered twice (in flight: at most one per device, {devices}) | {name} | {} duplicates, {:.1} per kill ({}) | in flight only |",
                k.delivered,
                k.kills,
                k.duplicates,
                k.duplicates as f64 / k.kills as f64,
                if k.clean { "none lost, in order" } else { "LOST OR OUT OF ORDER" }
            ));
        }
        if scenarios.contains("resume") {
            for &outage in &outages {
                let r = resume(binary, devices, Duration::from_secs(outage), timeout).await;
                out.push(format!(
                    "| resume: receiver down {outage} s (default retry schedule, every device waiting): first delivery / every device resumed / backlog drained, after it answers again; requests to the dead receiver (per second after the first 10 s) | {name} | {} / {} / {}; {} ({:.2}/s) ({}) | every device < 5 s |",
                    secs(r.first, timeout),
                    secs(r.every_device, timeout),
                    secs(r.backlog, timeout),
                    r.requests_down,
                    r.steady,
                    r.clean
                ));
            }
        }
    }
    for line in &out {
        println!("{line}");
    }
}
