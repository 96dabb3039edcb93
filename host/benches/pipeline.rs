//! The punch pipeline, end to end over loopback against a real `biogate` process:
//! durable punches per second through the native protocol (one punch per request over
//! keep-alive connections, and batches of 100), and the latency from a device's request
//! to the callback receiver at a steady 1,000 punches/s. The baseline, measured in the
//! same run with the same client, is a no-op HTTP handler on the same machine.
//!
//! Run: `cargo bench -p biogate --bench pipeline` (prints a Markdown table).
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::receiver::Receiver;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
/// Set `BIOGATE_BIN` to bench another build of the gateway (A/B against an older one).
fn binary() -> String {
    std::env::var("BIOGATE_BIN").unwrap_or_else(|_| BIN.to_string())
}
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const ADMIN: &str = "bench-admin-key-0123456789";
const DEVICES: usize = 64;
const RUN: Duration = Duration::from_secs(5);

fn punch(user: usize, n: usize) -> serde_json::Value {
    json!({"type": "punch", "user_id": user.to_string(), "log_time": format!("2026-06-21 {:02}:{:02}:{:02}", (n / 3600) % 24, (n / 60) % 60, n % 60), "punch_type": "CheckIn"})
}

/// Requests per second of `concurrency` clients each sending `body(n)` to `url` for RUN.
async fn throughput(
    url: String,
    concurrency: usize,
    per_request: usize,
    body: impl Fn(usize, usize) -> String + Send + Sync + 'static,
) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let body = Arc::new(body);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url, body) = (client.clone(), url.replace("{device}", &format!("B{worker}")), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut n = 0;
            while started.elapsed() < RUN {
                let response = client.post(&url).bearer_auth(TOKEN).body(body(worker, n)).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
                n += 1;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total * per_request) as f64 / started.elapsed().as_secs_f64()
}

/// Prints the group-commit figures of the gateway to stderr (the table on stdout stays
/// clean): event-log groups (one write and `fdatasync` each), with their mean time and
/// appends per group.
async fn group_commit_stats(base: &str, phase: &str) {
    let text = biogate_e2e::metrics::scrape(base, ADMIN).await;
    let value = |name: &str| biogate_e2e::metrics::value(&text, name);
    let (Some(groups), Some(total), Some(appends)) = (
        value("biogate_event_log_group_seconds_count"),
        value("biogate_event_log_group_seconds_sum"),
        value("biogate_event_log_group_batches_sum"),
    ) else {
        return;
    };
    eprintln!(
        "{phase}: {groups:.0} event-log groups (cumulative), mean {:.3} ms, {:.1} appends each",
        total / groups * 1000.0,
        appends / groups
    );
}

/// The pid of the process whose command line mentions `needle` (the gateway, found by its
/// config path).
fn pid_of(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline).contains(needle).then_some(pid)
    })
}

/// CPU seconds (user + system) used so far by `pid`.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let Some(stat) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok()) else { return 0.0 };
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12 (in 1/100 s).
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Baseline: a no-op handler on this machine.
    let noop = Router::new().route("/noop", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noop_url = format!("http://{}/noop", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, noop).await.ok() });

    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for prefix in ["B", "L"] {
        for i in 0..DEVICES {
            config.push_str(&format!("[devices.{prefix}{i}]\nauth_token = \"{TOKEN}\"\n"));
        }
    }
    config.push_str(&format!(
        "[routes.hr]\ndevices = [{}]\nallow_private_networks = true\nsink = {{ type = \"callback\", url = \"{}\" }}\n",
        (0..DEVICES).map(|i| format!("\"L{i}\"")).collect::<Vec<_>>().join(","),
        receiver.url
    ));
    let config_path = write_config(dir.path(), &config);
    let gw = GatewayProcess::start(Path::new(&binary()), &config_path);
    let pid = pid_of(&config_path.to_string_lossy());
    let ingest = format!("{}/device/v1/events?stgid={{device}}", gw.base);

    let base_single = throughput(noop_url.clone(), 64, 1, |_, _| json!({"events": [punch(1, 0)]}).to_string()).await;
    let cpu = cpu_seconds(pid);
    let single = throughput(ingest.clone(), 64, 1, |w, n| json!({"events": [punch(w, n)]}).to_string()).await;
    let single_cpu = (cpu_seconds(pid) - cpu) / (single * RUN.as_secs_f64()) * 1e6;
    eprintln!("single punches: gateway CPU {single_cpu:.1} us per request");
    group_commit_stats(&gw.base, "after single punches").await;
    let batch = |w: usize, n: usize| {
        json!({"events": (0..100).map(|k| punch(w * 1000 + k, 100_000 + n)).collect::<Vec<_>>()}).to_string()
    };
    let base_batch = throughput(noop_url.clone(), 16, 100, batch).await;
    let cpu = cpu_seconds(pid);
    let batches = throughput(ingest.clone(), 16, 100, batch).await;
    let batch_cpu = (cpu_seconds(pid) - cpu) / (batches * RUN.as_secs_f64()) * 1e6;
    eprintln!("batches of 100: gateway CPU {batch_cpu:.1} us per punch");
    group_commit_stats(&gw.base, "after batches (cumulative)").await;

    // Latency at a steady 1,000 punches/s spread over DEVICES devices.
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    let mut noop_latencies = Vec::new();
    let paced = Instant::now();
    let total = 5000usize;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    for n in 0..total {
        ticker.tick().await;
        let (task_client, sent_at, base) = (client.clone(), sent_at.clone(), gw.base.clone());
        let device = format!("L{}", n % DEVICES);
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let r = task_client
                .post(format!("{base}/device/v1/events?stgid={device}"))
                .bearer_auth(TOKEN)
                .body(json!({"events": [punch(n, n)]}).to_string())
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            let id = body["events"][0]["id"].as_str().unwrap().to_string();
            sent_at.lock().unwrap().insert(id, start);
        }));
        if n % 10 == 0 {
            let start = Instant::now();
            client.post(&noop_url).body("{}").send().await.unwrap();
            noop_latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = total as f64 / paced.elapsed().as_secs_f64();
    let delivered = receiver.wait_accepted(total, Duration::from_secs(120)).await;
    let sent_at = sent_at.lock().unwrap();
    let mut latencies: Vec<f64> = delivered
        .iter()
        .filter_map(|d| {
            let start = sent_at.get(d.header("webhook-id")?)?;
            Some(d.at.duration_since(*start).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    noop_latencies.sort_by(f64::total_cmp);
    eprintln!(
        "request to callback: p90 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, {} of {} over 5 ms",
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.999),
        latencies.last().copied().unwrap_or_default(),
        latencies.iter().filter(|l| **l > 5.0).count(),
        latencies.len()
    );

    println!("| figure | biogate | no-op baseline | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| single-punch requests/s (64 keep-alive clients, durable) | {single:.0} | {base_single:.0} | {:.2} |",
        single / base_single
    );
    println!(
        "| punches/s in batches of 100 (16 clients, durable) | {batches:.0} | {base_batch:.0} | {:.2} |",
        batches / base_batch
    );
    println!(
        "| device request to callback receiver p50 / p99 (ms) at {rate:.0} punches/s | {:.2} / {:.2} | {:.2} / {:.2} (no-op round trip) | {:.1} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&noop_latencies, 0.5),
        percentile(&noop_latencies, 0.99),
        percentile(&latencies, 0.99) / percentile(&noop_latencies, 0.99)
    );
    drop(gw);
}
