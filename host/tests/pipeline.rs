//! End to end over loopback: a simulated device sends punches to a real `biogate`
//! process, which delivers them to a real HTTP receiver. Punches arrive once per
//! webhook-id, in order per device, signed; outages drain in order; one device's failing
//! receiver does not hold up another; SIGKILL loses no acknowledged punch; bad input gets
//! the documented error and stores nothing.
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use biogate::crypto::{BodyCipher, EncryptionMode};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::receiver::{Delivery, Receiver};
use biogate_e2e::signature;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

/// A config with devices and one callback route per `(route, devices, url)`.
fn config(dir: &Path, devices: &[(&str, &str)], routes: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for (id, extra) in devices {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n{extra}\n"));
    }
    for (name, devices, url) in routes {
        text.push_str(&format!(
            "[routes.{name}]\ndevices = [{devices}]\nallow_private_networks = true\nretry_schedule = [{}]\n\
             sink = {{ type = \"callback\", url = \"{url}\", secret = \"{SECRET}\" }}\n",
            vec!["\"50ms\""; 200].join(", ")
        ));
    }
    write_config(dir, &text)
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 {:02}:{:02}:{:02}", 8 + i / 3600, (i / 60) % 60, i % 60)
}

/// The Cams `LogTime` of a delivered punch.
fn delivered_log_time(d: &Delivery) -> String {
    d.json()["RealTime"]["PunchLog"]["LogTime"].as_str().unwrap_or_default().to_string()
}

/// First delivery of each webhook-id, in arrival order.
fn first_per_id(deliveries: &[Delivery]) -> Vec<Delivery> {
    let mut seen = HashSet::new();
    deliveries.iter().filter(|d| seen.insert(d.header("webhook-id").unwrap_or_default().to_string())).cloned().collect()
}

async fn send_punches(device: &NativeDevice, range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in range {
        let answer = device.send(vec![NativeDevice::punch(&format!("{}", i % 7), &log_time(i), "CheckIn")]).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        ids.push(answer.body["events"][0]["id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_arrive_once_in_order_signed_in_the_cams_form() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(
        Path::new(BIN),
        &config(dir.path(), &[("D1", "label = \"Main Gate\"")], &[("hr", "\"*\"", &receiver.url)]),
    );
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);

    let ids = send_punches(&device, 0..40).await;
    let delivered = receiver.wait_accepted(40, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.deliveries().len(), 40, "each punch is delivered once when the receiver says 200");
    let webhook_ids: Vec<String> = delivered.iter().map(|d| d.header("webhook-id").unwrap().to_string()).collect();
    assert_eq!(webhook_ids, ids, "delivered in the order sent, one webhook-id per event");
    let first = &delivered[0];
    assert_eq!(first.stgid.as_deref(), Some("D1"));
    let body = first.json();
    assert_eq!(body["RealTime"]["PunchLog"]["UserId"], "0");
    assert_eq!(body["RealTime"]["PunchLog"]["Type"], "CheckIn");
    assert_eq!(body["RealTime"]["PunchLog"]["InputType"], "Fingerprint");
    assert_eq!(body["RealTime"]["PunchLog"]["LogTime"], "2026-06-21 08:00:00 GMT +0530");
    assert_eq!(body["RealTime"]["OperationID"], ids[0].as_str());
    assert_eq!(body["RealTime"]["AuthToken"], TOKEN);

    // The same punches again (a device that missed the answer): stored once, not re-sent.
    let again = device.send(vec![NativeDevice::punch("0", &log_time(0), "CheckIn")]).await;
    assert_eq!(again.body["duplicates"], 1);
    assert_eq!(again.body["events"][0]["id"], ids[0].as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().len(), 40);

    signature::verify_independently(&delivered, SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_outage_drains_in_order_with_nothing_lost() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let dir = tempfile::tempdir().unwrap();
    let gw =
        GatewayProcess::start(Path::new(BIN), &config(dir.path(), &[("D1", "")], &[("hr", "\"*\"", &receiver.url)]));
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let ids = send_punches(&device, 0..20).await;
    // Down for a while: attempts are made and refused.
    let deadline = tokio::time::Instant::now() + WAIT;
    while receiver.deliveries().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no attempt while the receiver was down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(receiver.accepted().is_empty());
    receiver.answer(200);
    let accepted = receiver.wait_accepted(20, WAIT).await;
    let order: Vec<&str> = accepted.iter().map(|d| d.header("webhook-id").unwrap()).collect();
    assert_eq!(order, ids.iter().map(String::as_str).collect::<Vec<_>>(), "the backlog drains in order, each once");
    let refused = receiver.deliveries().iter().filter(|d| d.answered == 503).count();
    assert!(refused >= 3, "the outage was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_devices_failing_receiver_does_not_hold_up_another_device() {
    let failing = Receiver::start().await;
    failing.answer(500);
    let healthy = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(
        Path::new(BIN),
        &config(dir.path(), &[("A", ""), ("B", "")], &[("ra", "\"A\"", &failing.url), ("rb", "\"B\"", &healthy.url)]),
    );
    let a = NativeDevice::new(&gw.base, "A", TOKEN);
    let b = NativeDevice::new(&gw.base, "B", TOKEN);
    send_punches(&a, 0..10).await;
    let ids_b = send_punches(&b, 0..10).await;
    let got = healthy.wait_accepted(10, WAIT).await;
    assert_eq!(got.iter().map(|d| d.header("webhook-id").unwrap().to_string()).collect::<Vec<_>>(), ids_b);
    assert!(got.iter().all(|d| d.stgid.as_deref() == Some("B")));
    assert!(failing.accepted().is_empty(), "device A's receiver is still failing");
    assert!(!failing.deliveries().is_empty(), "device A is being retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_punch_and_keeps_order() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("D1", "")], &[("hr", "\"*\"", &receiver.url)]);
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    // A stream of punches; the gateway is killed while it runs (once 50 are acknowledged,
    // so the kill lands mid-stream however fast the machine is).
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let sender = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..40_000 {
            let answer = device.send(vec![NativeDevice::punch("7", &log_time(i), "CheckIn")]).await;
            if answer.status != 200 {
                break;
            }
            acknowledged.push((i, answer.body["events"][0]["id"].as_str().unwrap().to_string()));
            counter.store(acknowledged.len(), std::sync::atomic::Ordering::SeqCst);
        }
        acknowledged
    });
    while count.load(std::sync::atomic::Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.kill();
    let acknowledged = sender.await.unwrap();
    assert!(
        acknowledged.len() >= 50 && acknowledged.len() < 40_000,
        "the kill landed mid-stream ({} acknowledged)",
        acknowledged.len()
    );

    let gw = GatewayProcess::start(Path::new(BIN), &cfg);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    // The device sends the rest (and the one that got no answer again).
    let resumed = acknowledged.len();
    for i in resumed..resumed + 20 {
        assert_eq!(device.send(vec![NativeDevice::punch("7", &log_time(i), "CheckIn")]).await.status, 200);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let delivered: HashSet<String> =
            receiver.accepted().iter().map(|d| d.header("webhook-id").unwrap().to_string()).collect();
        if acknowledged.iter().all(|(_, id)| delivered.contains(id)) && delivered.len() >= resumed + 20 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "acknowledged punches missing after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let firsts = first_per_id(&receiver.accepted());
    let times: Vec<String> = firsts.iter().map(delivered_log_time).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "journal order kept across the kill");
    assert_eq!(firsts.len(), resumed + 20, "every punch once per webhook-id");
}

async fn admin_get(base: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_documented_error_and_stores_nothing() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef0123456789abcdef";
    let gw = GatewayProcess::start(
        Path::new(BIN),
        &config(
            dir.path(),
            &[("D1", ""), ("OFF", "enabled = false"), ("ENC", &format!("security_key = \"{key}\""))],
            &[("hr", "\"*\"", &receiver.url)],
        ),
    );
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    let punch = || vec![NativeDevice::punch("1", "2026-06-21 09:00:00", "CheckIn")];
    let check = |answer: biogate_e2e::native_device::Answer, http: u16, code: u64| {
        assert_eq!(answer.status, http, "{:?}", answer.body);
        assert_eq!(answer.body["StatusCode"], code, "{:?}", answer.body);
        answer.body
    };

    check(NativeDevice::new(&gw.base, "D1", "wrong-token-0123456789abcdef0123").send(punch()).await, 401, 7);
    check(d1.send_raw(json!({"events": punch()}).to_string().into_bytes(), None).await, 401, 7);
    check(NativeDevice::new(&gw.base, "NOPE", TOKEN).send(punch()).await, 404, 2);
    check(NativeDevice::new(&gw.base, "OFF", TOKEN).send(punch()).await, 403, 5);
    check(d1.send_raw(b"{\"events\": [".to_vec(), Some(TOKEN)).await, 400, 1);
    let body = check(d1.send(vec![json!({"type": "punch", "log_time": "2026-06-21 09:00:00"})]).await, 400, 1);
    assert!(body["field"].as_str().unwrap().starts_with("events[0]"), "{body}");
    let body = check(d1.send(vec![NativeDevice::punch("1", "2026-02-30 09:00:00", "CheckIn")]).await, 400, 1);
    assert_eq!(body["field"], "events[0].log_time");
    let body = check(d1.send(vec![NativeDevice::punch("1", "2026-06-21 09:00:00", "Lunch")]).await, 400, 1);
    assert!(body["error"].as_str().unwrap().contains("unknown variant `Lunch`"), "{body}");
    check(d1.send(vec![]).await, 400, 1);
    // Over the body limit: its own connection (the server closes it after the 413).
    let huge = vec![b'x'; 5 << 20];
    assert_eq!(NativeDevice::new(&gw.base, "D1", TOKEN).send_raw(huge, Some(TOKEN)).await.status, 413);

    let ecb = BodyCipher::new(EncryptionMode::CamsEcb, Some(key)).unwrap();
    let sealed = ecb.encrypt(json!({"events": punch()}).to_string().as_bytes()).unwrap();
    check(d1.send_raw(sealed.clone().into_bytes(), Some(TOKEN)).await, 400, 19);
    let enc = NativeDevice::new(&gw.base, "ENC", TOKEN);
    check(enc.send(punch()).await, 400, 19);

    for id in ["D1", "OFF", "ENC"] {
        let events = admin_get(&gw.base, &format!("/v1/devices/{id}/events")).await;
        assert_eq!(events["events"], json!([]), "{id}: nothing stored");
    }
    // The unknown stgid was not registered by its refused punch: still no such device.
    let nope = admin_get(&gw.base, "/v1/devices/NOPE/events").await;
    assert_eq!(nope["StatusCode"], json!(2), "NOPE: {nope}");

    // The encrypted device with a correctly encrypted body: accepted, reply and callback
    // encrypted with its key.
    let answer = enc.send_raw(sealed.into_bytes(), Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let reply = ecb.decrypt(answer.body.as_str().unwrap().as_bytes()).unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["accepted"], 1);
    let delivered = receiver.wait_accepted(1, WAIT).await;
    let plain = ecb.decrypt(delivered[0].body.as_bytes()).expect("the callback body is encrypted with the device key");
    let cams: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(cams["RealTime"]["PunchLog"]["UserId"], "1");
}

async fn admin_post(base: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(ADMIN).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_register_approve_inspect_replay_and_see_dead_letters() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[], &[("hr", "\"*\"", &receiver.url)]);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("[server]\n", "[server]\nauto_register = true\n");
    std::fs::write(&cfg, text).unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &cfg);

    // Without the admin key: refused.
    let r = reqwest::Client::new().get(format!("{}/v1/devices", gw.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // An unknown device is recorded as pending and refused until approved.
    let unknown = NativeDevice::new(&gw.base, "NEW1", TOKEN);
    let answer = unknown.send(vec![NativeDevice::punch("1", &log_time(1), "CheckIn")]).await;
    assert_eq!((answer.status, answer.body["StatusCode"].as_u64()), (403, Some(5)));
    let device = admin_get(&gw.base, "/v1/devices/NEW1").await;
    assert_eq!(device["state"], "pending");
    let token = device["auth_token"].as_str().unwrap().to_string();
    let (status, _) = admin_post(&gw.base, "/v1/devices/NEW1/approve", json!({})).await;
    assert_eq!(status, 200);
    let approved = NativeDevice::new(&gw.base, "NEW1", &token);
    let ids = send_punches(&approved, 0..3).await;
    receiver.wait_accepted(3, WAIT).await;

    // A device created through the API, with a bad field named.
    let (status, body) = admin_post(&gw.base, "/v1/devices", json!({"id": "API1", "time_zone": "India"})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("time_zone")), "{body}");
    let (status, body) =
        admin_post(&gw.base, "/v1/devices", json!({"id": "API1", "time_zone": "-03:00", "label": "Dock"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["auth_token"].as_str().unwrap().len(), 32);

    // Every attempt is visible.
    let attempts = admin_get(&gw.base, "/v1/devices/NEW1/deliveries").await;
    let attempts = attempts.as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a["status"] == 200 && a["success"] == true && a["route"] == "hr"));

    // Replay one event: delivered again with the same webhook-id.
    let (status, body) =
        admin_post(&gw.base, "/v1/replay", json!({"route": "hr", "device": "NEW1", "sequence": 2})).await;
    assert_eq!((status, body["queued"].as_u64()), (200, Some(1)), "{body}");
    let all = receiver.wait_accepted(4, WAIT).await;
    assert_eq!(all[3].header("webhook-id"), Some(ids[1].as_str()));

    // A receiver that keeps failing: the event is dead-lettered after the schedule, and
    // the device's queue moves on.
    receiver.answer(500);
    send_punches(&approved, 3..4).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let dead = admin_get(&gw.base, "/v1/dead-letters").await;
        if let Some(letter) = dead.as_array().and_then(|a| a.first()) {
            assert_eq!(letter["device_id"], "NEW1");
            assert!(letter["reason"].as_str().unwrap().contains("HTTP 500"), "{letter}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing was dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 410 Gone disables the route; enabling it resumes delivery.
    receiver.answer(410);
    send_punches(&approved, 4..5).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let routes = admin_get(&gw.base, "/v1/routes").await;
        if routes[0]["disabled"].is_string() {
            assert!(routes[0]["signing_secret"].as_str().unwrap().starts_with("whsec_"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "410 did not disable the route");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.answer(200);
    let before = receiver.accepted().len();
    let (status, _) = admin_post(&gw.base, "/v1/routes/hr/enable", json!({})).await;
    assert_eq!(status, 204);
    receiver.wait_accepted(before + 1, WAIT).await;
}

async fn admin_send(method: reqwest::Method, base: &str, path: &str, body: Option<serde_json::Value>) -> u16 {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Deliveries of `device` a receiver accepted.
fn accepted_from(receiver: &Receiver, device: &str) -> usize {
    receiver.accepted().iter().filter(|d| d.stgid.as_deref() == Some(device)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_taken_off_a_device_or_a_deleted_device_gets_nothing_more() {
    let ra = Receiver::start().await;
    let rb = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef0123456789abcdef";
    let gw = GatewayProcess::start(
        Path::new(BIN),
        &config(
            dir.path(),
            &[("D1", ""), ("E1", &format!("security_key = \"{key}\""))],
            &[("ra", "\"*\"", &ra.url), ("rb", "\"*\"", &rb.url)],
        ),
    );
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    send_punches(&d1, 0..1).await;
    ra.wait_accepted(1, WAIT).await;
    rb.wait_accepted(1, WAIT).await;

    // The operator takes route rb off D1: later punches reach ra only.
    assert_eq!(
        admin_send(reqwest::Method::PATCH, &gw.base, "/v1/devices/D1", Some(json!({"routes": ["ra"]}))).await,
        200
    );
    send_punches(&d1, 1..3).await;
    ra.wait_accepted(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(accepted_from(&rb, "D1"), 1, "a route taken off a device gets none of its later punches");
    // Put back, it resumes where it stopped.
    assert_eq!(
        admin_send(reqwest::Method::PATCH, &gw.base, "/v1/devices/D1", Some(json!({"routes": ["ra", "rb"]}))).await,
        200
    );
    rb.wait_accepted(3, WAIT).await;

    // An encrypted device deleted while its receiver is down: its waiting punches are not
    // delivered afterwards (its key is gone with it: never in the clear).
    let plain_ra = ra.accepted().len();
    ra.answer(503);
    rb.answer(503);
    let e1 = NativeDevice::new(&gw.base, "E1", TOKEN);
    let cipher = BodyCipher::new(EncryptionMode::CamsEcb, Some(key)).unwrap();
    let body = cipher
        .encrypt(json!({"events": [NativeDevice::punch("9", &log_time(9), "CheckIn")]}).to_string().as_bytes())
        .unwrap();
    let answer = e1.send_raw(body.into_bytes(), Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let deadline = tokio::time::Instant::now() + WAIT;
    while ra.deliveries().iter().filter(|d| d.stgid.as_deref() == Some("E1")).count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no attempt for E1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(admin_send(reqwest::Method::DELETE, &gw.base, "/v1/devices/E1", None).await, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ra.answer(200);
    rb.answer(200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(ra.accepted().len(), plain_ra, "nothing of the deleted device is delivered");
    assert_eq!(accepted_from(&rb, "E1"), 0);
    for d in ra.deliveries().iter().chain(rb.deliveries().iter()).filter(|d| d.stgid.as_deref() == Some("E1")) {
        assert!(!d.body.contains("PunchLog"), "a punch of an encrypted device went out in the clear");
    }

    // The id registered again (another owner, no key): the old registration's waiting punch
    // is not delivered to it, its own punches are.
    let created =
        admin_send(reqwest::Method::POST, &gw.base, "/v1/devices", Some(json!({"id": "E1", "auth_token": TOKEN})))
            .await;
    assert_eq!(created, 201);
    let e1 = NativeDevice::new(&gw.base, "E1", TOKEN);
    let plain_rb = rb.accepted().len();
    let answer = e1.send(vec![NativeDevice::punch("10", &log_time(10), "CheckIn")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    ra.wait_accepted(plain_ra + 1, WAIT).await;
    rb.wait_accepted(plain_rb + 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for receiver in [&ra, &rb] {
        let users: Vec<String> = receiver
            .accepted()
            .iter()
            .filter(|d| d.stgid.as_deref() == Some("E1"))
            .map(|d| d.json()["RealTime"]["PunchLog"]["UserId"].to_string())
            .collect();
        assert_eq!(users, ["\"10\""], "only the new registration's punch");
    }
}

/// A device deleted while one of its punches waits in a retry backoff, and registered again
/// under the same id before the retry (another owner, no key): the old punch is neither
/// delivered to the new registration (in the clear) nor shown in its history, and the new
/// registration's punches do not wait for the old backoff to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_deleted_mid_retry_and_registered_again_gets_none_of_the_old_events() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef0123456789abcdef";
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [devices.E1]\nauth_token = \"{TOKEN}\"\nsecurity_key = \"{key}\"\n\
         [routes.hr]\nallow_private_networks = true\nretry_schedule = [\"120s\"]\nsink = {{ type = \"callback\", url = \"{}\" }}\n",
        receiver.url
    );
    let gw = GatewayProcess::start(Path::new(BIN), &write_config(dir.path(), &text));
    receiver.answer(503);
    let e1 = NativeDevice::new(&gw.base, "E1", TOKEN);
    let cipher = BodyCipher::new(EncryptionMode::CamsEcb, Some(key)).unwrap();
    let body = cipher
        .encrypt(json!({"events": [NativeDevice::punch("9", &log_time(9), "CheckIn")]}).to_string().as_bytes())
        .unwrap();
    assert_eq!(e1.send_raw(body.into_bytes(), Some(TOKEN)).await.status, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while receiver.deliveries().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no attempt for E1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Within the backoff: deleted (its history is gone: 404), registered again without a
    // key, receiver back.
    assert_eq!(admin_send(reqwest::Method::DELETE, &gw.base, "/v1/devices/E1", None).await, 204);
    for path in ["events", "deliveries"] {
        let url = format!("{}/v1/devices/E1/{path}", gw.base);
        let status = reqwest::Client::new().get(url).bearer_auth(ADMIN).send().await.unwrap().status();
        assert_eq!(status, 404, "{path} of a deleted device");
    }
    assert_eq!(
        admin_send(reqwest::Method::POST, &gw.base, "/v1/devices", Some(json!({"id": "E1", "auth_token": TOKEN})))
            .await,
        201
    );
    receiver.answer(200);
    let answer = e1.send(vec![NativeDevice::punch("10", &log_time(10), "CheckIn")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // Well before the old backoff (120 s) ends.
    receiver.wait_accepted(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let users: Vec<String> =
        receiver.accepted().iter().map(|d| d.json()["RealTime"]["PunchLog"]["UserId"].to_string()).collect();
    assert_eq!(users, ["\"10\""], "only the new registration's punch");
    for d in receiver.deliveries() {
        assert!(!d.body.contains("\"9\""), "the old registration's punch went out: {}", d.body);
    }
    let events = reqwest::Client::new()
        .get(format!("{}/v1/devices/E1/events", gw.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let events: serde_json::Value = events.json().await.unwrap();
    assert_eq!(events["events"].as_array().map(Vec::len), Some(1), "the new registration's history: {events}");
    let new_seq = &events["events"][0]["sequence"];
    let attempts: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/devices/E1/deliveries", gw.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attempts = attempts.as_array().expect("a list of attempts");
    assert!(!attempts.is_empty(), "the new punch's delivery is recorded");
    for attempt in attempts {
        assert_eq!(&attempt["sequence"], new_seq, "only the new registration's attempts: {attempt}");
    }
}
