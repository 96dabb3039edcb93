//! MQTT devices end to end through a real Mosquitto broker: punches reach the callback;
//! a REST command reaches the device at once and its result closes the operation;
//! offline devices get their commands when they come back; online/offline become status
//! events; a broker restart and a killed gateway lose nothing.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::mosquitto::Broker;
use biogate_e2e::mqtt_device::{MqttDevice, MqttProbe};
use biogate_e2e::receiver::Receiver;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const WAIT: Duration = Duration::from_secs(30);
const PREFIX: &str = "biogate";

fn config(dir: &Path, broker: &Broker, callback: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [mqtt]\nurl = \"{}\"\nclient_id = \"biogate-test\"\nkeep_alive_secs = 5\n",
        broker.url()
    );
    for id in ["M1", "M2"] {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"));
    }
    text.push_str(&format!(
        "[routes.hr]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [\"50ms\"]\nsink = {{ type = \"callback\", url = \"{callback}\" }}\n"
    ));
    write_config(dir, &text)
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 {:02}:{:02}:{:02}", 8 + i / 3600, (i / 60) % 60, i % 60)
}

/// Punches delivered for `device`, first arrival of each webhook-id, as (user, LogTime).
fn punches(receiver: &Receiver, device: &str) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    receiver
        .accepted()
        .iter()
        .filter(|d| d.stgid.as_deref() == Some(device))
        .filter(|d| seen.insert(d.header("webhook-id").unwrap_or_default().to_string()))
        .map(|d| d.json())
        .filter(|b| b["RealTime"]["PunchLog"].is_object())
        .map(|b| {
            let p = &b["RealTime"]["PunchLog"];
            (
                p["UserId"].as_str().unwrap_or_default().to_string(),
                p["LogTime"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `biogate_mqtt_rejected_total` counter for `reason` in a Prometheus text page.
fn rejected(metrics: &str, reason: &str) -> f64 {
    let label = format!("biogate_mqtt_rejected_total{{reason=\"{reason}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(label.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

async fn v1(gw: &GatewayProcess, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", gw.base)).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the gateway saw `device` online (its status event is in the journal).
async fn wait_online(gw: &GatewayProcess, device: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, events) = v1(gw, reqwest::Method::GET, &format!("/v1/devices/{device}/events?limit=1000"), None).await;
        let online = events["events"]
            .as_array()
            .and_then(|es| es.iter().rev().find_map(|e| e["body"]["DeviceStatus"]["online"].as_bool()));
        if online == Some(true) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{device} never came online: {events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_and_commands_flow_through_the_broker() {
    let broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), &broker, &receiver.url));
    let device = MqttDevice::connect(&broker, "M1", TOKEN, PREFIX).await;
    wait_online(&gw, "M1").await;

    for i in 0..20 {
        device.punch(&format!("{}", i % 3), &log_time(i), "CheckIn").await;
    }
    wait_until("20 punches at the callback", || punches(&receiver, "M1").len() >= 20).await;
    let got = punches(&receiver, "M1");
    let expected: Vec<(String, String)> =
        (0..20).map(|i| (format!("{}", i % 3), format!("{} GMT +0530", log_time(i)))).collect();
    assert_eq!(got, expected, "in order, once, in the device's offset");

    // A REST command reaches the connected device at once; its result closes the operation.
    let (status, op) = v1(
        &gw,
        reqwest::Method::POST,
        "/v1/devices/M1/operations?wait_ms=10000",
        Some(json!({"type":"add_user","user":{"user_id":"55","first_name":"Ravi","credentials":[{"kind":"card","data":"12345"}]}})),
    )
    .await;
    assert_eq!((status, &op["state"]), (200, &json!("done")), "{op}");
    assert_eq!(device.user("55").unwrap().first_name.as_deref(), Some("Ravi"));
    let (_, failed) = v1(
        &gw,
        reqwest::Method::POST,
        "/v1/devices/M1/operations?wait_ms=10000",
        Some(json!({"type":"delete_user","user_id":"nobody"})),
    )
    .await;
    assert_eq!((&failed["state"], &failed["return_code"]), (&json!("failed"), &json!(-10)), "{failed}");

    // Offline: the last will says so; commands wait; back online, they arrive in order.
    let mut device = device;
    device.disconnect_abruptly().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let offline = receiver
            .accepted()
            .iter()
            .any(|d| d.stgid.as_deref() == Some("M1") && d.json()["RealTime"]["DeviceStatus"]["Online"] == false);
        if offline {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the offline status never reached the callback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, op) = v1(
            &gw,
            reqwest::Method::POST,
            "/v1/devices/M1/operations",
            Some(json!({"type":"add_user","user":{"user_id":format!("off{i}")}})),
        )
        .await;
        assert_eq!((status, &op["state"]), (202, &json!("queued")), "an offline device's command waits: {op}");
        ids.push(op["id"].as_str().unwrap().to_string());
    }
    device.reconnect().await;
    wait_until("the queued commands", || ids.iter().all(|id| device.received_ids().contains(id))).await;
    let received = device.received_ids();
    let order: Vec<&String> = received.iter().filter(|id| ids.contains(id)).collect();
    assert_eq!(order, ids.iter().collect::<Vec<_>>(), "in the order they were queued, once");
    for id in &ids {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, op) = v1(&gw, reqwest::Method::GET, &format!("/v1/operations/{id}"), None).await;
            if op["state"] == "done" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{op}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_device_never_answers_is_published_again() {
    let broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &broker, &receiver.url);
    let text = std::fs::read_to_string(&cfg).unwrap() + "[operations]\nredeliver_after_ms = 1000\nmax_deliveries = 2\n";
    std::fs::write(&cfg, text).unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    // Its status is not retained: published before the gateway subscribed, it is missed.
    gw.wait_mqtt_subscribed().await;
    // A device that takes its commands and never answers (they are lost on its side).
    let cmd_topic = format!("{PREFIX}/M1/cmd");
    let mut device = MqttProbe::connect(&broker, "dev-M1", true, &[cmd_topic.as_str()]).await;
    device.publish(&format!("{PREFIX}/M1/status"), &json!({"AuthToken": TOKEN, "online": true}), false).await;
    wait_online(&gw, "M1").await;

    let (status, op) = v1(
        &gw,
        reqwest::Method::POST,
        "/v1/devices/M1/operations?operation_id=r1",
        Some(json!({"type":"add_user","user":{"user_id":"7"}})),
    )
    .await;
    assert_eq!(status, 202, "{op}");
    for delivery in 1..=2 {
        let message =
            device.next_on(&cmd_topic, WAIT).await.unwrap_or_else(|| panic!("delivery {delivery} of the command"));
        let command: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(command["operation_id"], "r1", "{command}");
    }
    assert!(
        device.next_on(&cmd_topic, Duration::from_millis(2500)).await.is_none(),
        "published more than max_deliveries times"
    );
    let (_, op) = v1(&gw, reqwest::Method::GET, "/v1/operations/r1", None).await;
    assert_eq!((&op["state"], &op["deliveries"]), (&json!("sent"), &json!(2)), "{op}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_and_unknown_devices_are_dropped_not_stored() {
    let broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), &broker, &receiver.url));
    // Once subscribed, what the devices publish is seen (and must be dropped), not missed.
    gw.wait_mqtt_subscribed().await;
    let good = MqttDevice::connect(&broker, "M1", TOKEN, PREFIX).await;
    let intruder = MqttDevice::connect(&broker, "M2", "wrong-token-wrong-token-wrong-tok", PREFIX).await;
    intruder.punch("1", &log_time(1), "CheckIn").await;
    let stranger = MqttDevice::connect(&broker, "NOPE", TOKEN, PREFIX).await;
    stranger.punch("1", &log_time(1), "CheckIn").await;
    // Each sent an online status and a punch; the gateway counts both refusals of each.
    wait_until_async("both refusals of each counted", || async {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", gw.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        rejected(&text, "auth") >= 2.0 && rejected(&text, "device") >= 2.0
    })
    .await;
    good.punch("9", &log_time(9), "CheckIn").await;
    wait_until("the good punch", || punches(&receiver, "M1").len() == 1).await;
    let (_, events) = v1(&gw, reqwest::Method::GET, "/v1/devices/M2/events", None).await;
    assert_eq!(events["events"], json!([]), "nothing stored for a wrong token: {events}");
    assert!(punches(&receiver, "M2").is_empty());
    for d in [intruder, stranger, good] {
        d.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tells_whether_the_gateway_is_subscribed() {
    let mut broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), &broker, &receiver.url));
    gw.wait_mqtt_subscribed().await;
    broker.stop();
    wait_until_async("health to say unsubscribed while the broker is down", || async {
        gw.health().await["mqtt"]["subscribed"] == false
    })
    .await;
    broker.restart();
    gw.wait_mqtt_subscribed().await;
    // Subscribed again means received again: a punch published now reaches the callback.
    let device = MqttDevice::connect(&broker, "M1", TOKEN, PREFIX).await;
    device.punch("3", &log_time(3), "CheckIn").await;
    wait_until("the punch after the broker came back", || punches(&receiver, "M1").len() == 1).await;
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let mut broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), &broker, &receiver.url));
    let device = MqttDevice::connect(&broker, "M1", TOKEN, PREFIX).await;
    wait_online(&gw, "M1").await;
    let mut pending = Vec::new();
    for i in 0..300 {
        pending.push(device.queue_punch(&format!("{}", i % 5), &log_time(i), "CheckOut"));
        if i == 100 {
            broker.restart();
        }
    }
    for acked in pending {
        tokio::time::timeout(WAIT, acked).await.expect("the broker acknowledged every punch");
    }
    wait_until("300 punches after the broker restart", || punches(&receiver, "M1").len() >= 300).await;
    let got = punches(&receiver, "M1");
    let expected: Vec<(String, String)> =
        (0..300).map(|i| (format!("{}", i % 5), format!("{} GMT +0530", log_time(i)))).collect();
    assert_eq!(got, expected, "every punch once, in order, across the restart");
    drop(gw);
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_gets_what_the_broker_kept_for_it() {
    let broker = Broker::start();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &broker, &receiver.url);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let device = MqttDevice::connect(&broker, "M1", TOKEN, PREFIX).await;
    wait_online(&gw, "M1").await;
    for i in 0..50 {
        device.punch(&format!("{}", i % 4), &log_time(i), "CheckIn").await;
    }
    gw.kill();
    // While the gateway is dead the broker queues for its persistent session.
    for i in 50..150 {
        device.punch(&format!("{}", i % 4), &log_time(i), "CheckIn").await;
    }
    let _gw = GatewayProcess::start(Path::new(BIN), &cfg);
    wait_until("150 punches after the gateway came back", || punches(&receiver, "M1").len() >= 150).await;
    let got = punches(&receiver, "M1");
    let expected: Vec<(String, String)> =
        (0..150).map(|i| (format!("{}", i % 4), format!("{} GMT +0530", log_time(i)))).collect();
    assert_eq!(got, expected, "nothing lost across the kill, in order, once");
    device.stop().await;
}
