//! Scale scenarios with the load simulator (`biogate_e2e::loadsim`), against a real
//! `biogate` process (release), a real Mosquitto and the simulator's callback receiver,
//! all on this machine (the simulator shares the cores with the gateway):
//!
//! 1. 100, 1,000 and 10,000 connected devices (native, ADMS, MQTT mixed 4:3:3) punching
//!    at ~1,000 punches/s in all, with REST `add_user` operations at a few per second:
//!    ingest throughput, punch-to-callback latency p50/p99, REST-to-device-confirmation
//!    latency by protocol, gateway VmRSS/VmHWM; baselines: the gateway idle with no
//!    devices, a no-op HTTP round trip measured during the same window;
//! 2. what idle connected devices cost the gateway, per protocol (10,000 of one protocol);
//! 3. the receiver down (503) for a minute while the devices keep punching: time to drain
//!    the backlog once it is back, and the checker (once, in order);
//! 4. a million undelivered punches (filled through the native protocol in batches of
//!    100 while the receiver is down), the gateway SIGKILLed and started again with the
//!    receiver up: time from process start to the first delivery, and the delivery rate;
//!    baseline: process start to listening with an empty data dir.
//!
//! Run: `cargo bench -p biogate --bench scale` (needs `cargo xtask plugins` and
//! Mosquitto). Prints Markdown table rows on stdout, diagnostics on stderr. Tunable:
//! `BIOGATE_SCALE_DEVICES` (`100,1000,10000`), `BIOGATE_SCALE_RATE` (total punches/s,
//! 1000), `BIOGATE_SCALE_SECONDS` (measured window, 30), `BIOGATE_SCALE_COMMANDS`
//! (operations/s, 3), `BIOGATE_SCALE_OUTAGE_SECONDS` (60), `BIOGATE_SCALE_OUTAGE_DEVICES`
//! (1000), `BIOGATE_SCALE_RESTART_PUNCHES` (1000000, 0 skips),
//! `BIOGATE_SCALE_RESTART_WINDOW` (seconds of delivery measured after the restart, 60),
//! `BIOGATE_SCALE_MEMORY_DEVICES` (idle devices per protocol for the memory breakdown,
//! 10000), `BIOGATE_SCALE_SCENARIOS` (`scale,memory,outage,restart`), `BIOGATE_SCALE_CACHE_MB` (the
//! gateway's `[journal] cache_mb`, default: the gateway's).
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::loadsim::{self, Checker, Fleet, FleetConfig, Latency, LoadReceiver, Mix, Protocol, native};
use biogate_e2e::mosquitto::Broker;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "bench-admin-key-0123456789";
/// How long after start an idle gateway is left before its memory is read (the start
/// itself allocates and frees: config parsing, plugin loading).
const IDLE_SETTLE: Duration = Duration::from_secs(3);

fn binary() -> PathBuf {
    PathBuf::from(std::env::var("BIOGATE_BIN").unwrap_or_else(|_| BIN.to_string()))
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn memory(gw: &GatewayProcess) -> (f64, f64) {
    loadsim::memory_kib(gw.pid()).map(|(rss, hwm)| (mib(rss), mib(hwm))).unwrap_or((f64::NAN, f64::NAN))
}

fn fmt(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One fleet scenario's parts (see [`Bench::setup`]); bound in this order, so they are
/// dropped fleet config first, data folder last.
struct Setup {
    dir: tempfile::TempDir,
    checker: Arc<Checker>,
    receiver: LoadReceiver,
    broker: Option<Broker>,
    gw: GatewayProcess,
    config: FleetConfig,
}

/// The shared pieces of the run: the no-op baseline server, the broker, the plugin.
struct Bench {
    noop_url: String,
    /// Whether MQTT devices are in the mix (each scenario starts its own broker, so that
    /// no retained status of an earlier fleet reaches a later gateway).
    with_mqtt: bool,
    /// The ADMS plugin (`None`: not configured).
    plugin: Option<PathBuf>,
    mix: Mix,
}

impl Bench {
    /// A gateway for `devices` of the mix, its route to `callback`.
    fn gateway(
        &self,
        dir: &Path,
        devices: usize,
        callback: &str,
        broker: Option<&Broker>,
    ) -> (GatewayProcess, Duration) {
        let schedule = loadsim::patient_retry_schedule(1);
        let mqtt = broker.map(|b| b.url());
        let mut config = loadsim::gateway_config(
            devices,
            self.mix,
            callback,
            &schedule,
            self.plugin.as_deref(),
            mqtt.as_deref(),
            ADMIN,
        );
        if let Some(mb) = std::env::var("BIOGATE_SCALE_CACHE_MB").ok().and_then(|v| v.parse::<u64>().ok()) {
            config.push_str(&format!("[journal]\ncache_mb = {mb}\n"));
        }
        let path = write_config(dir, &config);
        let started = Instant::now();
        let gw = GatewayProcess::start(&binary(), &path);
        (gw, started.elapsed())
    }

    /// A fresh broker when MQTT devices are in the mix.
    fn broker(&self) -> Option<Broker> {
        self.with_mqtt.then(Broker::start)
    }

    /// What a fleet scenario runs against: a checker and its receiver, a broker (when
    /// MQTT is in the mix), a gateway for `devices` in a fresh folder, and the fleet's
    /// config for it.
    async fn setup(&self, devices: usize) -> Setup {
        let dir = tempfile::tempdir().expect("a temp dir");
        let checker = Arc::new(Checker::new(devices));
        let receiver = LoadReceiver::start(checker.clone(), "127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("the receiver");
        let broker = self.broker();
        let (gw, _) = self.gateway(dir.path(), devices, &receiver.url, broker.as_ref());
        if broker.is_some() {
            gw.wait_mqtt_subscribed().await;
        }
        let config = self.fleet_config(&gw.base, devices, broker.as_ref());
        Setup { dir, checker, receiver, broker, gw, config }
    }

    fn fleet_config(&self, base: &str, devices: usize, broker: Option<&Broker>) -> FleetConfig {
        let mut config = FleetConfig::new(base, devices);
        config.mix = self.mix;
        config.mqtt = broker.map(|b| ("127.0.0.1".to_string(), b.port()));
        config.admin_key = ADMIN.into();
        config
    }

    /// No-op round trips every 10 ms until `stop`: the machine's HTTP latency under the
    /// same load.
    fn noop_probe(&self, stop: Arc<Mutex<bool>>) -> tokio::task::JoinHandle<Latency> {
        let url = self.noop_url.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder().tcp_nodelay(true).build().expect("a client");
            let mut samples = Vec::new();
            while !*stop.lock().expect("lock") {
                let start = Instant::now();
                if client.post(&url).body("{}").send().await.is_ok() {
                    samples.push(start.elapsed().as_micros() as u32);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Latency::of_micros(&mut samples)
        })
    }
}

/// One scale point: `devices` devices at `rate` punches/s in all.
async fn scale_point(
    bench: &Bench,
    devices: usize,
    rate: f64,
    window: Duration,
    commands: f64,
    idle_none: f64,
    out: &mut Vec<String>,
) {
    let Setup { dir: _dir, checker, receiver: _receiver, broker: _broker, gw, mut config } = bench.setup(devices).await;
    tokio::time::sleep(IDLE_SETTLE).await;
    let (idle_rss, _) = memory(&gw);
    config.punches_per_minute = rate * 60.0 / devices as f64;
    config.commands_per_second = commands;
    let fleet = Fleet::start(&config, checker.clone()).await;
    // Every device connected, no punch yet.
    tokio::time::sleep_until((fleet.punching_from() - Duration::from_millis(50)).into()).await;
    let (connected_rss, _) = memory(&gw);
    tokio::time::sleep_until((fleet.punching_from() + Duration::from_secs(5)).into()).await;
    let connected = fleet.stats().connected.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{devices} devices: warm; {}", fleet.stats().line());
    checker.take_latency();
    for p in Protocol::ALL {
        fleet.commands.take(p);
    }
    let stop = Arc::new(Mutex::new(false));
    let probe = bench.noop_probe(stop.clone());
    let cpu0 = cpu_seconds(gw.pid());
    let w = fleet.window(window).await;
    let cpu = (cpu_seconds(gw.pid()) - cpu0) / w.elapsed.as_secs_f64();
    *stop.lock().expect("lock") = true;
    let noop = probe.await.expect("the probe");
    let latency = checker.take_latency();
    let ops: Vec<(Protocol, Latency)> = Protocol::ALL.iter().map(|&p| (p, fleet.commands.take(p))).collect();
    let (rss, hwm) = memory(&gw);
    fleet.stop();
    let drained = checker.wait_all_delivered(Duration::from_secs(120)).await;
    let report = checker.report();
    let failed_ops = fleet.commands.failed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{devices} devices: {:.0} acked/s, {:.0} arrivals/s, gateway CPU {:.0}% of a core; {}; checker: {report}; ops not done {failed_ops}",
        w.punches_per_second,
        w.arrivals_per_second,
        cpu * 100.0,
        fleet.stats().line()
    );
    let n = fmt(devices as f64);
    out.push(format!(
        "| {n} devices: punches/s acknowledged / delivered to the callback ({}s window, {connected} ADMS+MQTT sessions up) | {} / {} | {} offered | {:.2} |",
        window.as_secs(),
        fmt(w.punches_per_second),
        fmt(w.arrivals_per_second),
        fmt(rate),
        w.arrivals_per_second / rate
    ));
    out.push(format!(
        "| {n} devices: punch to callback p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} (no-op round trip, same window) | {:.1} |",
        latency.p50,
        latency.p99,
        noop.p50,
        noop.p99,
        latency.p99 / noop.p99
    ));
    let op_text = ops
        .iter()
        .filter(|(_, l)| l.count > 0)
        .map(|(p, l)| format!("{} {:.1} / {:.1}", p.name(), l.p50, l.p99))
        .collect::<Vec<_>>()
        .join("; ");
    out.push(format!(
        "| {n} devices: REST add_user to device confirmation p50 / p99 (ms), {commands}/s ({failed_ops} not done) | {op_text} | {:.2} / {:.2} (no-op) | ADMS polls every 5 s |",
        noop.p50, noop.p99
    ));
    out.push(format!(
        "| {n} devices: gateway VmRSS / VmHWM (MiB) after the window ({connected_rss:.0} once connected, before the first punch); gateway CPU {:.0}% of a core | {rss:.0} / {hwm:.0} | {idle_none:.0} idle without devices; {idle_rss:.0} idle with the {n} registered | {:.1}x idle{} |",
        cpu * 100.0,
        rss / idle_none,
        if devices >= 10_000 { format!("; target 256 MiB: {}", if hwm <= 256.0 { "met" } else { "missed" }) } else { String::new() }
    ));
    out.push(format!(
        "| {n} devices: checker (every punch once, in order per device) | {} | {} sent | {} |",
        if report.is_clean() && drained { "clean".to_string() } else { format!("{report}") },
        fmt(report.sent as f64),
        if report.is_clean() { "ok" } else { "FAILED" }
    ));
    drop(fleet);
    drop(gw);
}

/// What connected devices of one protocol cost the gateway: `devices` devices of each
/// protocol in turn, connected and idle (native: long-polls parked; ADMS: polling every
/// 5 s; MQTT: sessions on the broker), no punches.
async fn memory_per_protocol(bench: &Bench, devices: usize, idle_none: f64, out: &mut Vec<String>) {
    for protocol in Protocol::ALL {
        if protocol == Protocol::Mqtt && !bench.with_mqtt {
            continue;
        }
        let mix = match protocol {
            Protocol::Native => Mix { native: 1, adms: 0, mqtt: 0 },
            Protocol::Adms => Mix { native: 0, adms: 1, mqtt: 0 },
            Protocol::Mqtt => Mix { native: 0, adms: 0, mqtt: 1 },
        };
        let bench = Bench {
            noop_url: bench.noop_url.clone(),
            with_mqtt: protocol == Protocol::Mqtt,
            plugin: bench.plugin.clone(),
            mix,
        };
        let Setup { dir: _dir, checker, receiver: _receiver, broker: _broker, gw, mut config } =
            bench.setup(devices).await;
        tokio::time::sleep(IDLE_SETTLE).await;
        let (idle, _) = memory(&gw);
        config.punches_per_minute = 0.0;
        let fleet = Fleet::start(&config, checker).await;
        tokio::time::sleep_until((fleet.punching_from() + Duration::from_secs(10)).into()).await;
        let (rss, hwm) = memory(&gw);
        let sockets = std::fs::read_dir(format!("/proc/{}/fd", gw.pid())).map(|d| d.count()).unwrap_or(0);
        eprintln!(
            "memory: {devices} {} devices: {rss:.0} MiB ({hwm:.0} HWM), {sockets} fds; {}",
            protocol.name(),
            fleet.stats().line()
        );
        let what = match protocol {
            Protocol::Native => "native devices, long-polls parked",
            Protocol::Adms => "ADMS terminals polling every 5 s",
            Protocol::Mqtt => "MQTT devices online (one broker connection)",
        };
        out.push(format!(
            "| {} idle {what}: gateway VmRSS / VmHWM (MiB), per device above idle without devices; gateway fds | {rss:.0} / {hwm:.0}, {:.1} KiB per device; {sockets} fds | {idle_none:.0} idle without devices; {idle:.0} idle with them registered | {:.1}x |",
            fmt(devices as f64),
            (rss - idle_none) * 1024.0 / devices as f64,
            rss / idle_none
        ));
        fleet.stop();
        drop(fleet);
        drop(gw);
    }
}

/// The receiver down for `outage` while `devices` keep punching at `rate`/s in all.
async fn outage(bench: &Bench, devices: usize, rate: f64, outage: Duration, out: &mut Vec<String>) {
    let Setup { dir: _dir, checker, receiver, broker: _broker, gw, mut config } = bench.setup(devices).await;
    config.punches_per_minute = rate * 60.0 / devices as f64;
    config.commands_per_second = 1.0;
    let fleet = Fleet::start(&config, checker.clone()).await;
    tokio::time::sleep_until((fleet.punching_from() + Duration::from_secs(5)).into()).await;
    let before = fleet.window(Duration::from_secs(5)).await;
    receiver.answer(503);
    let down_at = Instant::now();
    eprintln!("outage: receiver down for {outage:?}");
    tokio::time::sleep(outage).await;
    receiver.answer(200);
    let up_at = Instant::now();
    let backlog = checker.missing_sent_before(up_at);
    let (rss_down, _) = memory(&gw);
    let mut drain = None;
    while up_at.elapsed() < Duration::from_secs(300) {
        if checker.missing_sent_before(up_at) == 0 {
            drain = Some(up_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.stop();
    let drained = checker.wait_all_delivered(Duration::from_secs(120)).await;
    let report = checker.report();
    let (_, hwm) = memory(&gw);
    eprintln!("outage: backlog {backlog}, drain {drain:?}, checker {report}; {}", fleet.stats().line());
    let down = up_at.duration_since(down_at).as_secs_f64();
    match drain {
        Some(d) => out.push(format!(
            "| receiver down {down:.0} s ({} devices, {} punches/s kept coming): time to drain the backlog of {} punches once it is back | {:.1} s ({} punches/s) | {down:.0} s to build it up (ingest {} punches/s) | {:.2} |",
            fmt(devices as f64),
            fmt(rate),
            fmt(backlog as f64),
            d.as_secs_f64(),
            fmt(backlog as f64 / d.as_secs_f64()),
            fmt(before.punches_per_second),
            d.as_secs_f64() / down
        )),
        None => out.push(format!("| receiver down {down:.0} s: backlog of {} punches | not drained in 300 s | | FAILED |", fmt(backlog as f64))),
    }
    out.push(format!(
        "| after the outage: checker (once, in order per device); gateway VmRSS at the end of the outage / VmHWM (MiB) | {}; {rss_down:.0} / {hwm:.0} | {} sent | {} |",
        if report.is_clean() && drained { "clean".to_string() } else { format!("{report}") },
        fmt(report.sent as f64),
        if report.is_clean() { "ok" } else { "FAILED" }
    ));
    drop(fleet);
    drop(gw);
}

/// A million undelivered punches, a SIGKILL, a restart.
async fn restart(bench: &Bench, punches: u64, window: Duration, out: &mut Vec<String>) {
    const DEVICES: usize = 100;
    const SENDERS: usize = 16;
    let mix = Mix { native: 1, adms: 0, mqtt: 0 };
    // Native devices only, no plugin: both starts below do the same work but for the data.
    let bench = Bench { noop_url: bench.noop_url.clone(), with_mqtt: false, plugin: None, mix };
    // Baseline: start to listening with an empty data dir, same config.
    let empty = tempfile::tempdir().expect("a temp dir");
    let (gw, empty_start) = bench.gateway(empty.path(), DEVICES, "http://127.0.0.1:9/callback", None);
    drop(gw);

    let dir = tempfile::tempdir().expect("a temp dir");
    let checker = Arc::new(Checker::new(DEVICES));
    let receiver =
        LoadReceiver::start(checker.clone(), "127.0.0.1:0".parse().expect("an address")).await.expect("the receiver");
    receiver.answer(503);
    let (gw, _) = bench.gateway(dir.path(), DEVICES, &receiver.url, None);
    let epoch = loadsim::plan::default_epoch();
    let per_device = punches.div_ceil(DEVICES as u64);
    let started = Instant::now();
    let client = reqwest::Client::builder().tcp_nodelay(true).build().expect("a client");
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let (client, checker, base) = (client.clone(), checker.clone(), gw.base.clone());
        tasks.push(tokio::spawn(async move {
            for device in (sender..DEVICES).step_by(SENDERS) {
                let url =
                    format!("{base}/device/v1/events?stgid={}", loadsim::plan::device_id(Protocol::Native, device));
                let mut seq = 0;
                while seq < per_device {
                    let end = (seq + 100).min(per_device);
                    for s in seq..end {
                        checker.sending(device, s);
                    }
                    let response = client
                        .post(&url)
                        .bearer_auth(loadsim::TOKEN)
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
    let fill = started.elapsed();
    let total = per_device * DEVICES as u64;
    let (rss_full, hwm_full) = memory(&gw);
    eprintln!(
        "restart: {total} punches stored in {fill:?} ({:.0}/s), gateway {rss_full:.0} MiB (HWM {hwm_full:.0})",
        total as f64 / fill.as_secs_f64()
    );
    gw.kill();
    let before = checker.arrivals();
    checker.reset_marks();
    receiver.answer(200);
    let spawned = Instant::now();
    let gw = GatewayProcess::start(&binary(), &dir.path().join("biogate.toml"));
    let listening = spawned.elapsed();
    let deadline = spawned + Duration::from_secs(120);
    while checker.first_arrival().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = checker.first_arrival().map(|t| t.duration_since(spawned));
    let window_start = Instant::now();
    let arrivals_start = checker.arrivals();
    let all = checker.wait_all_delivered(window).await;
    let span = window_start.elapsed();
    let delivered_in_window = checker.arrivals() - arrivals_start;
    let rate = delivered_in_window as f64 / span.as_secs_f64();
    let (rss, hwm) = memory(&gw);
    let report = checker.report();
    eprintln!(
        "restart: listening after {listening:?}, first delivery {first:?}, {delivered_in_window} delivered in {span:?} (all: {all}); {report}; {} arrivals before the kill",
        before
    );
    out.push(format!(
        "| restart with {} undelivered punches (SIGKILL, then start): process start to listening | {:.0} ms | {:.0} ms (empty data dir) | {:.1} |",
        fmt(total as f64),
        listening.as_secs_f64() * 1000.0,
        empty_start.as_secs_f64() * 1000.0,
        listening.as_secs_f64() / empty_start.as_secs_f64()
    ));
    out.push(format!(
        "| restart with {} undelivered punches: process start to the first delivery | {} | {:.0} ms (empty data dir, to listening) | target < 2 s: {} |",
        fmt(total as f64),
        first.map_or("none in 120 s".to_string(), |f| format!("{:.0} ms", f.as_secs_f64() * 1000.0)),
        empty_start.as_secs_f64() * 1000.0,
        if first.is_some_and(|f| f < Duration::from_secs(2)) { "met" } else { "missed" }
    ));
    let projected = if all {
        format!("all in {:.1} s", span.as_secs_f64())
    } else {
        format!(
            "{} of {} in {:.0} s; all in ~{:.0} s at this rate",
            fmt(delivered_in_window as f64),
            fmt(total as f64),
            span.as_secs_f64(),
            total as f64 / rate
        )
    };
    out.push(format!(
        "| restart: delivery of the backlog (punches/s), {projected} | {} | {} punches/s stored by the fill (batches of 100, receiver down) | {:.2} |",
        fmt(rate),
        fmt(total as f64 / fill.as_secs_f64()),
        rate / (total as f64 / fill.as_secs_f64())
    ));
    out.push(format!(
        "| restart: gateway VmRSS / VmHWM (MiB) holding the backlog (before kill; after restart) | {rss_full:.0} / {hwm_full:.0}; {rss:.0} / {hwm:.0} | | |"
    ));
    let order = if report.duplicates == 0 && report.out_of_order == 0 && report.unknown == 0 { "ok" } else { "FAILED" };
    out.push(format!(
        "| restart: checker so far (duplicates, out of order; missing = not yet delivered) | {} dup, {} out of order, {} missing | {} sent | {order} |",
        report.duplicates,
        report.out_of_order,
        fmt(report.missing as f64),
        fmt(report.sent as f64)
    ));
    drop(gw);
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

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    let noop = Router::new().route("/noop", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let noop_url = format!("http://{}/noop", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, noop).await.ok() });

    let sizes: Vec<usize> = std::env::var("BIOGATE_SCALE_DEVICES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rate: f64 = env("BIOGATE_SCALE_RATE", 1000.0);
    let window = Duration::from_secs(env("BIOGATE_SCALE_SECONDS", 30));
    let commands: f64 = env("BIOGATE_SCALE_COMMANDS", 3.0);
    let outage_len = Duration::from_secs(env("BIOGATE_SCALE_OUTAGE_SECONDS", 60));
    let outage_devices: usize = env("BIOGATE_SCALE_OUTAGE_DEVICES", 1000);
    let restart_punches: u64 = env("BIOGATE_SCALE_RESTART_PUNCHES", 1_000_000);
    let restart_window = Duration::from_secs(env("BIOGATE_SCALE_RESTART_WINDOW", 60));
    let scenarios = std::env::var("BIOGATE_SCALE_SCENARIOS").unwrap_or_else(|_| "scale,memory,outage,restart".into());

    let with_mqtt = loadsim::mosquitto_available();
    if !with_mqtt {
        eprintln!("Mosquitto not found (BIOGATE_MOSQUITTO, PATH, /usr/sbin): MQTT devices left out of the mix");
    }
    let mix = if with_mqtt { Mix::default() } else { Mix { native: 4, adms: 3, mqtt: 0 } };
    let bench = Bench { noop_url, with_mqtt, plugin: Some(biogate_e2e::plugins::component("zkteco-adms")), mix };

    // Baseline: the gateway idle, no devices (plugin and broker configured).
    let dir = tempfile::tempdir().expect("a temp dir");
    let broker = bench.broker();
    let (gw, _) = bench.gateway(dir.path(), 0, "http://127.0.0.1:9/callback", broker.as_ref());
    tokio::time::sleep(IDLE_SETTLE).await;
    let (idle_none, idle_hwm) = memory(&gw);
    drop(gw);
    drop(broker);

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut out = vec![
        format!(
            "Scale: `cargo bench -p biogate --bench scale` ({cores} cores, release, loopback; the simulator, Mosquitto and the receiver share the machine with the gateway). Mix native:ADMS:MQTT {}:{}:{}, ADMS polls every 5 s, native long-polls 25 s.\n",
            mix.native, mix.adms, mix.mqtt
        ),
        "| figure | biogate | baseline | ratio / target |".into(),
        "| --- | --- | --- | --- |".into(),
        format!("| gateway VmRSS / VmHWM idle, no devices (MiB) | {idle_none:.0} / {idle_hwm:.0} | | |"),
    ];
    if scenarios.contains("scale") {
        for &devices in &sizes {
            scale_point(&bench, devices, rate, window, commands, idle_none, &mut out).await;
        }
    }
    if scenarios.contains("memory") {
        memory_per_protocol(&bench, env("BIOGATE_SCALE_MEMORY_DEVICES", 10_000), idle_none, &mut out).await;
    }
    if scenarios.contains("outage") {
        outage(&bench, outage_devices, rate, outage_len, &mut out).await;
    }
    if scenarios.contains("restart") && restart_punches > 0 {
        restart(&bench, restart_punches, restart_window, &mut out).await;
    }
    for line in &out {
        println!("{line}");
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-scale.md");
    std::fs::write(&file, out.join("\n") + "\n").ok();
    eprintln!("scale bench took {:?}; table also in {}", started.elapsed(), file.display());
}
