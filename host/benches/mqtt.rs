//! MQTT devices through a real Mosquitto on loopback, against a real `biogate` process:
//! durable punches per second (the gateway's `biogate_events_stored_total` counter reaches
//! the number sent; it acknowledges each message only once journaled), in single-punch
//! messages and in messages of 100; and the REST-to-device command latency for a device
//! connected over MQTT (`POST /v1/devices/{id}/operations?wait_ms=` returns once the
//! device's result closed the operation). Baselines in the same run: the broker alone (a
//! plain QoS 1 subscriber receiving the same messages) and a no-op HTTP round trip.
//!
//! Run: `cargo bench -p biogate --bench mqtt` (prints a Markdown table and writes
//! `target/bench-mqtt.md`). Needs Mosquitto (`cargo xtask test` installs it).
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::mosquitto::Broker;
use biogate_e2e::mqtt_device::{MqttDevice, MqttProbe};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "bench-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const DEVICES: usize = 16;
const PREFIX: &str = "biogate";

fn punch(user: usize, n: usize) -> Value {
    json!({"type": "punch", "user_id": user.to_string(), "log_time": format!("2026-06-{:02} {:02}:{:02}:{:02}", 1 + (n / 86_400) % 28, (n / 3600) % 24, (n / 60) % 60, n % 60), "punch_type": "CheckIn"})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn stored(client: &reqwest::Client, base: &str) -> u64 {
    let text = client.get(format!("{base}/metrics")).bearer_auth(ADMIN).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("biogate_events_stored_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Publishes `messages` messages of `per_message` punches from DEVICES publishers and
/// returns (punches/s stored by the gateway, punches/s received by a plain subscriber).
async fn ingest(broker: &Broker, gw: &GatewayProcess, messages: usize, per_message: usize, round: usize) -> (f64, f64) {
    let http = reqwest::Client::new();
    let before = stored(&http, &gw.base).await;
    let mut probe =
        MqttProbe::connect(broker, &format!("bench-probe-{round}"), true, &[&format!("{PREFIX}/+/punch")]).await;
    let mut publishers = Vec::new();
    for d in 0..DEVICES {
        publishers.push(MqttProbe::connect(broker, &format!("bench-dev-{round}-{d}"), true, &[]).await);
    }
    let total = (messages * per_message) as u64;
    let started = Instant::now();
    let mut acks = Vec::new();
    for m in 0..messages {
        let d = m % DEVICES;
        let events: Vec<Value> = (0..per_message).map(|k| punch(k, round * 10_000_000 + m * per_message + k)).collect();
        acks.push(publishers[d].publish(
            &format!("{PREFIX}/Q{d}/punch"),
            &json!({"AuthToken": TOKEN, "events": events}),
            false,
        ));
    }
    let received = tokio::spawn(async move {
        let mut n = 0;
        while n < messages {
            if probe.next(Duration::from_secs(60)).await.is_none() {
                break;
            }
            n += 1;
        }
        Instant::now()
    });
    for a in acks {
        a.await;
    }
    let broker_done = received.await.unwrap();
    loop {
        if stored(&http, &gw.base).await - before >= total {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the gateway did not store everything");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gateway = total as f64 / started.elapsed().as_secs_f64();
    let broker_alone = total as f64 / broker_done.duration_since(started).as_secs_f64();
    (gateway, broker_alone)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let noop = Router::new().route("/noop", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noop_url = format!("http://{}/noop", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, noop).await.ok() });

    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n[mqtt]\nurl = \"{}\"\nclient_id = \"biogate-bench\"\n",
        broker.url()
    );
    for i in 0..DEVICES {
        config.push_str(&format!("[devices.Q{i}]\nauth_token = \"{TOKEN}\"\n"));
    }
    config.push_str(&format!("[devices.C1]\nauth_token = \"{TOKEN}\"\n"));
    let gw = GatewayProcess::start(Path::new(BIN), &write_config(dir.path(), &config));
    gw.wait_mqtt_subscribed().await;

    let (single, single_broker) = ingest(&broker, &gw, 20_000, 1, 1).await;
    let (batched, batched_broker) = ingest(&broker, &gw, 2_000, 100, 2).await;

    // Command latency to a device connected over MQTT.
    let device = MqttDevice::connect(&broker, "C1", TOKEN, PREFIX).await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, op) = submit(&http, &gw.base, 0).await;
        if op["state"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "the MQTT device never answered: {op}");
    }
    let mut latencies = Vec::new();
    let mut noop = Vec::new();
    for n in 1..=2000 {
        let start = Instant::now();
        let (status, op) = submit(&http, &gw.base, n).await;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((status, &op["state"]), (200, &json!("done")), "{op}");
        let start = Instant::now();
        http.post(&noop_url).body("{}").send().await.unwrap();
        noop.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    noop.sort_by(f64::total_cmp);

    let mut out = String::new();
    out.push_str("| figure (MQTT, Mosquitto on loopback) | biogate | baseline | ratio |\n| --- | --- | --- | --- |\n");
    out.push_str(&format!(
        "| durable punches/s, 1 punch per message ({DEVICES} devices, QoS 1) | {single:.0} | {single_broker:.0} (broker alone) | {:.2} |\n",
        single / single_broker
    ));
    out.push_str(&format!(
        "| durable punches/s, 100 per message ({DEVICES} devices, QoS 1) | {batched:.0} | {batched_broker:.0} (broker alone) | {:.2} |\n",
        batched / batched_broker
    ));
    out.push_str(&format!(
        "| REST call to MQTT device confirmation p50 / p99 (ms), 2,000 sequential | {:.2} / {:.2} | {:.2} / {:.2} (no-op HTTP round trip) | {:.1} |\n",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&noop, 0.5),
        percentile(&noop, 0.99),
        percentile(&latencies, 0.99) / percentile(&noop, 0.99)
    ));
    print!("{out}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-mqtt.md");
    std::fs::write(target, &out).ok();
    device.stop().await;
    drop(gw);
}

async fn submit(http: &reqwest::Client, base: &str, n: usize) -> (u16, Value) {
    let response = http
        .post(format!("{base}/v1/devices/C1/operations?wait_ms=10000"))
        .bearer_auth(ADMIN)
        .json(&json!({"type": "add_user", "user": {"user_id": format!("u{n}")}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
