//! Where a new route starts, end to end (a real `biogate` process, native devices, real
//! receivers): a route added to devices that already have history gets only what they
//! send from then on, unless it says `start = "oldest"`; a device that first punches after
//! the route exists gets its first punch delivered; an existing route goes on across a
//! restart without sending anything twice or skipping what it still owed; a route put on
//! a device by PATCH starts at that moment.
use std::path::{Path, PathBuf};
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::receiver::Receiver;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const WAIT: Duration = Duration::from_secs(30);

/// A route: name, `devices` list (TOML), receiver URL, extra settings.
struct Route<'a>(&'a str, &'a str, &'a str, &'a str);

fn config(dir: &Path, devices: &[&str], routes: &[Route<'_>]) -> PathBuf {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for id in devices {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
    }
    for Route(name, devices, url, extra) in routes {
        text.push_str(&format!(
            "[routes.{name}]\ndevices = [{devices}]\nallow_private_networks = true\nretry_schedule = [{}]\n{extra}\n\
             sink = {{ type = \"callback\", url = \"{url}\" }}\n",
            vec!["\"50ms\""; 100].join(", ")
        ));
    }
    write_config(dir, &text)
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 09:{:02}:{:02}", i / 60, i % 60)
}

/// Sends punches `range` (user = the index) and returns their event ids.
async fn punch(base: &str, device: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let device = NativeDevice::new(base, device, TOKEN);
    let mut ids = Vec::new();
    for i in range {
        let answer = device.send(vec![NativeDevice::punch(&i.to_string(), &log_time(i), "CheckIn")]).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        ids.push(answer.body["events"][0]["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The webhook-ids `receiver` accepted from `device`, in arrival order.
fn accepted(receiver: &Receiver, device: &str) -> Vec<String> {
    receiver
        .accepted()
        .iter()
        .filter(|d| d.stgid.as_deref() == Some(device))
        .map(|d| d.header("webhook-id").unwrap().to_string())
        .collect()
}

/// Waits until `receiver` accepted exactly `ids` from `device` (and nothing more for a
/// moment).
async fn expect(receiver: &Receiver, device: &str, ids: &[String], what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while accepted(receiver, device).len() < ids.len() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: got {:?}, want {ids:?}", accepted(receiver, device));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(accepted(receiver, device), ids, "{what}");
}

/// A route added to the config after punches were stored gets only the new punches; one
/// with `start = "oldest"` gets the history first; the existing route neither repeats
/// what it delivered nor skips what it still owed at the restart; a device that punches
/// for the first time after the route exists gets that first punch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_added_later_starts_at_now_unless_it_asks_for_the_oldest() {
    let old = Receiver::start().await;
    let fresh = Receiver::start().await;
    let backfill = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let devices = ["D1", "D2"];
    let cfg = config(dir.path(), &devices, &[Route("old", "\"*\"", &old.url, "")]);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let delivered = punch(&gw.base, "D1", 0..5).await;
    expect(&old, "D1", &delivered, "the first route gets the first punches").await;
    // Its receiver goes down: two punches wait for it across the restart.
    old.answer(503);
    let owed = punch(&gw.base, "D1", 5..7).await;
    gw.kill();
    old.answer(200);

    let cfg = config(
        dir.path(),
        &devices,
        &[
            Route("old", "\"*\"", &old.url, ""),
            Route("fresh", "\"*\"", &fresh.url, ""),
            Route("backfill", "\"*\"", &backfill.url, "start = \"oldest\""),
        ],
    );
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let new = punch(&gw.base, "D1", 7..9).await;
    let first_of_d2 = punch(&gw.base, "D2", 0..2).await;

    let all: Vec<String> = delivered.iter().chain(&owed).chain(&new).cloned().collect();
    let old_after: Vec<String> = delivered.iter().chain(&owed).chain(&new).cloned().collect();
    expect(&old, "D1", &old_after, "the existing route: what it owed, then the new punches, nothing twice").await;
    expect(&fresh, "D1", &new, "a new route (start = \"now\"): only the punches stored after it started").await;
    expect(&backfill, "D1", &all, "start = \"oldest\": the retained history first, in order").await;
    for receiver in [&old, &fresh, &backfill] {
        expect(receiver, "D2", &first_of_d2, "a device's first punches after the route exists").await;
    }

    // Another restart changes nothing for any of them.
    drop(gw);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let later = punch(&gw.base, "D1", 9..10).await;
    let with = |v: &[String]| v.iter().chain(&later).cloned().collect::<Vec<_>>();
    expect(&old, "D1", &with(&old_after), "after a second restart").await;
    expect(&fresh, "D1", &with(&new), "after a second restart").await;
    expect(&backfill, "D1", &with(&all), "after a second restart").await;
}

async fn admin(method: reqwest::Method, base: &str, path: &str, body: serde_json::Value) -> u16 {
    let response =
        reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(ADMIN).json(&body).send().await;
    response.unwrap().status().as_u16()
}

/// A route put on a device with history by PATCH gets the punches from then on; a device
/// registered while the gateway runs gets its first punch delivered, also after a
/// restart that came before the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_put_on_a_device_starts_at_that_moment_and_a_new_device_from_its_first_punch() {
    let hr = Receiver::start().await;
    let audit = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        config(dir.path(), &["D1"], &[Route("hr", "\"*\"", &hr.url, ""), Route("audit", "\"nobody\"", &audit.url, "")]);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let history = punch(&gw.base, "D1", 0..4).await;
    expect(&hr, "D1", &history, "hr takes every device").await;

    let status = admin(reqwest::Method::PATCH, &gw.base, "/v1/devices/D1", json!({"routes": ["hr", "audit"]})).await;
    assert_eq!(status, 200);
    let after = punch(&gw.base, "D1", 4..6).await;
    expect(&audit, "D1", &after, "a route put on a device: only what it sends from then on").await;

    // A device registered now, with the audit route's receiver down: its first punches
    // wait across a restart and are then delivered, from the first.
    audit.answer(503);
    let status = admin(
        reqwest::Method::POST,
        &gw.base,
        "/v1/devices",
        json!({"id": "N1", "auth_token": TOKEN, "routes": ["audit"]}),
    )
    .await;
    assert_eq!(status, 201);
    let first = punch(&gw.base, "N1", 0..3).await;
    gw.kill();
    audit.answer(200);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    expect(&audit, "N1", &first, "a new device's punches from its first, across a restart").await;
    drop(gw);
}
