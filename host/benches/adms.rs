//! ATTLOG ingest through the ZKTeco ADMS dialect plugin, end to end over loopback against
//! a real `biogate` process (release): durable punches per second when several terminals
//! upload 100-line ATTLOG batches at once (`POST /iclock/cdata?SN=..&table=ATTLOG`, each
//! reply `OK: 100` only once the punches are in the journal), and in the same run the same
//! punches through the native protocol (`POST /device/v1/events`, 100 events per request),
//! so that what the plugin adds per request shows; then single-punch requests of both
//! (where the per-request cost is not hidden behind 100 journal writes), and the latency
//! of one client's sequential requests. A no-op HTTP handler with the same client and
//! bodies is the baseline of the machine.
//!
//! Run: `cargo xtask plugins && cargo bench -p biogate --bench adms`. Prints a Markdown
//! table and writes it to `target/bench-adms.md`.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use biogate_e2e::adms_device::{Punch, protocol};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const ADMIN: &str = "bench-admin-key-0123456789";
/// Concurrent terminals (each its own device and keep-alive connection).
const DEVICES: usize = 16;
/// Lines (events) per request.
const BATCH: usize = 100;
const WARMUP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(5);
/// Interleaved rounds of (ADMS, native): the journal grows during the run, so neither
/// protocol gets all the early, cheaper seconds.
const ROUNDS: usize = 2;
/// Lines of one backlog upload (the dialect's default `max_output_events`).
const BACKLOG: usize = 10_000;
/// Backlog uploads measured.
const BACKLOG_UPLOADS: usize = 3;
/// Sequential requests for the per-request latency figures.
const SEQUENTIAL: usize = 400;
/// 2026-06-21 00:00:00 UTC: punch times count seconds from here.
const DAY0: u64 = 1_782_000_000;

/// Device-local wall time `second` seconds after DAY0 (the devices are at UTC+00:00).
fn wall(second: u64) -> String {
    protocol::wall_time(UNIX_EPOCH + Duration::from_secs(DAY0 + second), 0)
}

/// A `lines`-line ATTLOG body, as a terminal sends it (9 fields); request `n` of a device
/// has its own second, so no line repeats one stored before (the journal de-duplicates).
fn attlog_body(n: u64, lines: usize) -> String {
    let time = wall(n);
    let mut body = String::with_capacity(lines * 40);
    for user in 0..lines {
        body.push_str(&protocol::attlog_line(&Punch::new(&user.to_string(), &time, (user % 2) as u16, 1), false));
        body.push('\n');
    }
    body
}

/// The same punches as a native request.
fn native_body(n: u64, lines: usize) -> String {
    let time = wall(n);
    let events: Vec<_> = (0..lines)
        .map(|user| json!({"type": "punch", "user_id": user.to_string(), "log_time": time, "punch_type": if user % 2 == 0 { "CheckIn" } else { "CheckOut" }, "input_type": "Fingerprint"}))
        .collect();
    json!({ "events": events }).to_string()
}

/// One protocol's request: the URL of device `w` and the body of its `n`-th request.
#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Adms,
    Native,
    Noop,
}

struct Target {
    base: String,
    noop: String,
}

impl Target {
    fn request(
        &self,
        client: &reqwest::Client,
        proto: Proto,
        device: usize,
        n: u64,
        lines: usize,
    ) -> reqwest::RequestBuilder {
        match proto {
            Proto::Adms => {
                let body = if lines > 1 {
                    attlog_body(n, lines)
                } else {
                    protocol::attlog_line(&Punch::new("1", &wall(n), 0, 1), false) + "\n"
                };
                client
                    .post(format!("{}/iclock/cdata?SN=A{device}&table=ATTLOG&Stamp={n}", self.base))
                    .header("Content-Type", "application/push;charset=UTF-8")
                    .body(body)
            }
            Proto::Native => client
                .post(format!("{}/device/v1/events?stgid=N{device}", self.base))
                .bearer_auth(TOKEN)
                .body(native_body(n, lines)),
            Proto::Noop => client.post(&self.noop).body(attlog_body(n, BATCH)),
        }
    }
}

/// Checks an answer: `OK: <lines>` for ADMS, 200 for the others.
async fn check(proto: Proto, response: reqwest::Response, lines: usize) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {text}");
    if proto == Proto::Adms {
        assert_eq!(text, format!("OK: {lines}"), "every line accepted");
    }
}

/// Punches per second of DEVICES clients each sending `lines`-punch requests for `run`;
/// `first[w]` is the request number device w starts at (advanced past what was sent).
async fn throughput(target: &Arc<Target>, proto: Proto, first: &mut [u64], run: Duration, lines: usize) -> (f64, u64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(DEVICES).build().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (device, start) in first.iter().enumerate() {
        let (client, target, start) = (client.clone(), target.clone(), *start);
        tasks.push(tokio::spawn(async move {
            let mut n = start;
            while started.elapsed() < run {
                check(proto, target.request(&client, proto, device, n, lines).send().await.unwrap(), lines).await;
                n += 1;
            }
            n
        }));
    }
    let mut requests = 0;
    for (device, task) in tasks.into_iter().enumerate() {
        let next = task.await.unwrap();
        requests += next - first[device];
        first[device] = next;
    }
    ((requests * lines as u64) as f64 / started.elapsed().as_secs_f64(), requests)
}

/// Sequential requests of one client: (p50, mean) in milliseconds.
async fn latency(target: &Arc<Target>, proto: Proto, device: usize, first: &mut u64, lines: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let start = Instant::now();
        check(proto, target.request(&client, proto, device, *first, lines).send().await.unwrap(), lines).await;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        *first += 1;
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples.iter().sum::<f64>() / samples.len() as f64)
}

/// A terminal back online: `BACKLOG_UPLOADS` sequential uploads of `BACKLOG` lines each
/// to device `device`. Returns (mean request ms, mean plugin-call ms from the gateway's
/// `biogate_plugin_call_seconds`; zero for the native protocol).
async fn backlog(target: &Arc<Target>, proto: Proto, device: usize, first: &mut u64) -> (f64, f64) {
    let client = reqwest::Client::new();
    let plugin_seconds = || async {
        let text = biogate_e2e::metrics::scrape(&target.base, ADMIN).await;
        biogate_e2e::metrics::value(&text, "biogate_plugin_call_seconds_sum{plugin=\"zkteco\"}").unwrap_or(0.0)
    };
    let before = plugin_seconds().await;
    let mut total = 0.0;
    // The native protocol takes at most 1,000 events per request: ten requests in a row.
    let (requests, lines) = if proto == Proto::Native { (BACKLOG / 1_000, 1_000) } else { (1, BACKLOG) };
    for _ in 0..BACKLOG_UPLOADS {
        let start = Instant::now();
        for _ in 0..requests {
            check(proto, target.request(&client, proto, device, *first, lines).send().await.unwrap(), lines).await;
            *first += 1;
        }
        total += start.elapsed().as_secs_f64() * 1000.0;
    }
    // The one upload's plugin time: the sum's growth over the uploads (polls excluded:
    // this device does not poll).
    let plugin = if proto == Proto::Adms { (plugin_seconds().await - before) * 1000.0 } else { 0.0 };
    (total / BACKLOG_UPLOADS as f64, plugin / BACKLOG_UPLOADS as f64)
}

/// The journal's count of a device's punches (every punch sent is in the first days).
async fn stored(base: &str, device: &str) -> u64 {
    let url = format!(
        "{base}/v1/devices/{device}/punches?start_time=2026-06-20%2000:00:00&end_time=2026-07-15%2000:00:00&limit=1"
    );
    let page: serde_json::Value =
        reqwest::Client::new().get(url).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    page["total"]
        .as_u64()
        .or_else(|| page["total"].as_str().and_then(|t| t.parse().ok()))
        .unwrap_or_else(|| panic!("{page}"))
}

fn fmt(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    assert_eq!(wall(0), "2026-06-21 00:00:00", "DAY0");
    let noop = Router::new().route("/noop", post(|| async { "OK: 100" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noop_url = format!("http://{}/noop", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, noop).await.ok() });

    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [plugins.zkteco]\nkind = \"dialect\"\npath = {:?}\n",
        biogate_e2e::plugins::component("zkteco-adms").display().to_string()
    );
    for prefix in ["A", "N"] {
        for i in 0..=DEVICES {
            config.push_str(&format!("[devices.{prefix}{i}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
        }
    }
    let gw = GatewayProcess::start(Path::new(BIN), &write_config(dir.path(), &config));
    let target = Arc::new(Target { base: gw.base.clone(), noop: noop_url });

    // The terminals handshake first, as real ones do.
    let client = reqwest::Client::new();
    for i in 0..=DEVICES {
        let reply = client
            .get(format!("{}/iclock/cdata?SN=A{i}&options=all&pushver=2.4.1&language=69", gw.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(reply.starts_with(&format!("GET OPTION FROM: A{i}")), "{reply}");
    }

    // Request numbers per device, shared by the rounds (each request has its own second).
    let mut adms_next = vec![0u64; DEVICES];
    let mut native_next = vec![0u64; DEVICES];
    let mut noop_next = vec![0u64; DEVICES];
    throughput(&target, Proto::Adms, &mut adms_next, WARMUP, BATCH).await;
    throughput(&target, Proto::Native, &mut native_next, WARMUP, BATCH).await;
    let noop_rate = throughput(&target, Proto::Noop, &mut noop_next, RUN, BATCH).await.0;
    let mut adms_rates = Vec::new();
    let mut native_rates = Vec::new();
    for _ in 0..ROUNDS {
        adms_rates.push(throughput(&target, Proto::Adms, &mut adms_next, RUN, BATCH).await);
        native_rates.push(throughput(&target, Proto::Native, &mut native_next, RUN, BATCH).await);
    }
    let mean = |rates: &[(f64, u64)]| rates.iter().map(|r| r.0).sum::<f64>() / rates.len() as f64;
    let (adms_rate, native_rate) = (mean(&adms_rates), mean(&native_rates));
    let mut acked = (adms_next.iter().sum::<u64>() * BATCH as u64, native_next.iter().sum::<u64>() * BATCH as u64);

    // Single-punch requests: what a request costs when its punches do not hide it.
    let (adms_single, adms_requests) = throughput(&target, Proto::Adms, &mut adms_next, RUN, 1).await;
    let (native_single, native_requests) = throughput(&target, Proto::Native, &mut native_next, RUN, 1).await;
    acked.0 += adms_requests;
    acked.1 += native_requests;

    // Durable: what the journal holds is what was acknowledged.
    let (adms_acked, native_acked) = acked;
    let mut adms_stored = 0;
    let mut native_stored = 0;
    for i in 0..DEVICES {
        adms_stored += stored(&gw.base, &format!("A{i}")).await;
        native_stored += stored(&gw.base, &format!("N{i}")).await;
    }
    assert_eq!((adms_stored, native_stored), (adms_acked, native_acked), "every acknowledged punch is in the journal");

    // One client, one request at a time: the time a request takes, batch and single.
    let (mut a, mut n) = (0u64, 0u64);
    let adms_batch = latency(&target, Proto::Adms, DEVICES, &mut a, BATCH).await;
    let native_batch = latency(&target, Proto::Native, DEVICES, &mut n, BATCH).await;
    let adms_one = latency(&target, Proto::Adms, DEVICES, &mut a, 1).await;
    let native_one = latency(&target, Proto::Native, DEVICES, &mut n, 1).await;
    let mut ignored = 0;
    let noop_one = latency(&target, Proto::Noop, 0, &mut ignored, BATCH).await;
    // A terminal back after days offline, under the dialect's default limits.
    let (mut a, mut n) = (1_000_000u64, 1_000_000u64);
    let adms_backlog = backlog(&target, Proto::Adms, DEVICES, &mut a).await;
    let native_backlog = backlog(&target, Proto::Native, DEVICES, &mut n).await;
    drop(gw);

    let per_request_us = |rate: f64| 1e6 / (rate / BATCH as f64);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut out = String::new();
    out.push_str(&format!(
        "ADMS ingest: `cargo bench -p biogate --bench adms` ({cores} cores, release, loopback, unix time {now}). \
         {DEVICES} terminals, one keep-alive connection each, {BATCH} punches per request, {ROUNDS} interleaved rounds of {}s per protocol; \
         durable = answered after the journal stored the punches (checked: the journal holds exactly the {} + {} punches acknowledged). \
         No callback route (ingest only).\n\n",
        RUN.as_secs(),
        fmt(adms_acked as f64),
        fmt(native_acked as f64)
    ));
    out.push_str("| figure | ADMS plugin (`/iclock/cdata`, ATTLOG) | native (`/device/v1/events`) | ADMS / native | no-op handler (same client, same ADMS bodies) | target |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    out.push_str(&format!(
        "| durable punches/s, {DEVICES} terminals, batches of {BATCH} (rounds: {} / {}) | {} | {} | {:.2} | {} | 100,000 |\n",
        adms_rates.iter().map(|r| fmt(r.0)).collect::<Vec<_>>().join(", "),
        native_rates.iter().map(|r| fmt(r.0)).collect::<Vec<_>>().join(", "),
        fmt(adms_rate),
        fmt(native_rate),
        adms_rate / native_rate,
        fmt(noop_rate)
    ));
    out.push_str(&format!(
        "| gateway time per 100-punch request under load ({cores} cores busy) | {:.0} us | {:.0} us | {:+.0} us | {:.0} us | |\n",
        per_request_us(adms_rate),
        per_request_us(native_rate),
        per_request_us(adms_rate) - per_request_us(native_rate),
        per_request_us(noop_rate)
    ));
    out.push_str(&format!(
        "| durable single-punch requests/s, {DEVICES} terminals | {} | {} | {:.2} | | |\n",
        fmt(adms_single),
        fmt(native_single),
        adms_single / native_single
    ));
    out.push_str(&format!(
        "| gateway time per single-punch request under load | {:.0} us | {:.0} us | {:+.0} us | | |\n",
        1e6 / adms_single,
        1e6 / native_single,
        1e6 / adms_single - 1e6 / native_single
    ));
    out.push_str(&format!(
        "| one client, sequential 100-punch requests: p50 / mean | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:+.2} ms (mean) | {:.2} / {:.2} ms | |\n",
        adms_batch.0, adms_batch.1, native_batch.0, native_batch.1, adms_batch.1 - native_batch.1, noop_one.0, noop_one.1
    ));
    out.push_str(&format!(
        "| one client, sequential 1-punch requests: p50 / mean | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:+.2} ms (mean) | | |\n",
        adms_one.0, adms_one.1, native_one.0, native_one.1, adms_one.1 - native_one.1
    ));
    out.push_str(&format!(
        "| one {}-line backlog upload (a terminal back online; default limits): request / plugin call (native: 10 requests of 1,000) | {:.0} / {:.0} ms | {:.0} ms | {:+.0} ms | | plugin call under `cpu_ms` (2,000 ms) |\n",
        fmt(BACKLOG as f64),
        adms_backlog.0,
        adms_backlog.1,
        native_backlog.0,
        adms_backlog.0 - native_backlog.0
    ));
    println!("{out}");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-adms.md");
    std::fs::write(&file, &out).unwrap();
    println!("written to {}", file.display());
}
