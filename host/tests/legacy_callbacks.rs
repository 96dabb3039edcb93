//! Callback forms for legacy Cams receivers, end to end over loopback: the v2 form
//! (`format = "cams-v2"`, a form-encoded `request_data` field), read here with
//! `serde_urlencoded` and checked with Python's `standardwebhooks`, not with our own code.
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use biogate::crypto::{BodyCipher, EncryptionMode};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::receiver::{Delivery, Receiver};
use biogate_e2e::signature;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const KEY: &str = "0123456789abcdef0123456789abcdef";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

/// A gateway with a plain device D1 and a `cams-ecb` device E1 (both at +05:30), and one
/// callback route `legacy` in `format` to `url`; `route` is added to the route's table.
fn start(dir: &Path, format: &str, url: &str, route: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"test-admin-key-0123456789\"]\n\
         [devices.D1]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n\
         [devices.E1]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\nsecurity_key = \"{KEY}\"\n\
         [routes.legacy]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [\"50ms\"]\n{route}\n\
         sink = {{ type = \"callback\", url = \"{url}\", format = \"{format}\", secret = \"{SECRET}\" }}\n"
    );
    GatewayProcess::start(Path::new(BIN), &write_config(dir, &text))
}

/// The form fields of a delivery, decoded by `serde_urlencoded`.
fn form(d: &Delivery) -> HashMap<String, String> {
    serde_urlencoded::from_str(&d.body).unwrap_or_else(|e| panic!("not a form body ({e}): {}", d.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cams_v2_route_posts_request_data_forms_that_legacy_receivers_parse() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cams-v2", &receiver.url, "");
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    let mut punch = NativeDevice::punch("852", "2026-06-21 09:02:14", "MealIn");
    punch["input_type"] = "Card".into();
    let answer = d1.send(vec![punch, NativeDevice::punch("853", "2026-06-21 09:03:00", "CheckOut")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let first_id = answer.body["events"][0]["id"].as_str().expect("an event id").to_string();

    let delivered = receiver.wait_accepted(2, WAIT).await;
    for d in &delivered {
        assert_eq!(d.header("content-type"), Some("application/x-www-form-urlencoded"), "{d:?}");
        assert_eq!(d.stgid.as_deref(), Some("D1"));
    }
    let fields = form(&delivered[0]);
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["request_data"], "one field");
    let data: Value = serde_json::from_str(&fields["request_data"]).expect("request_data is JSON");
    assert_eq!(
        data,
        json!({"ApiRequestInfo":{"AuthToken":TOKEN,"Operation":"RealTimePunchLog","UserId":"852",
            // 2026-06-21 09:02:14 at +05:30 = 03:32:14 UTC.
            "OperationTime":"1782012734","OperationTimeEx":"2026-06-21 09:02:14 GMT +0530",
            "OperationReferenceId":first_id,"OperationData":{"AttendanceType":"MealStart","InputType":"Card"}},
            "ServiceTagId":"D1"})
    );
    assert_eq!(delivered[0].header("webhook-id"), Some(first_id.as_str()));
    let second: Value = serde_json::from_str(&form(&delivered[1])["request_data"]).unwrap();
    assert_eq!(
        (&second["ApiRequestInfo"]["UserId"], &second["ApiRequestInfo"]["OperationData"]["AttendanceType"]),
        (&json!("853"), &json!("CheckOut"))
    );
    signature::verify_independently(&delivered, SECRET);

    // An encrypted device: request_data holds the encrypted JSON.
    let e1 = NativeDevice::new(&gw.base, "E1", TOKEN);
    let cipher = BodyCipher::new(EncryptionMode::CamsEcb, Some(KEY)).unwrap();
    let sealed = cipher
        .encrypt(json!({"events":[NativeDevice::punch("7", "2026-06-21 10:00:00", "CheckIn")]}).to_string().as_bytes())
        .unwrap();
    assert_eq!(e1.send_raw(sealed.into_bytes(), Some(TOKEN)).await.status, 200);
    let delivered = receiver.wait_accepted(3, WAIT).await;
    let text = form(&delivered[2]).remove("request_data").expect("request_data");
    assert!(!text.contains("RealTimePunchLog"), "an encrypted device's punch went out in the clear: {text}");
    let bytes = STANDARD.decode(text.trim()).expect("base64");
    let plain = ecb::Decryptor::<Aes256>::new(KEY.as_bytes().into())
        .decrypt_padded_vec_mut::<Pkcs7>(&bytes)
        .expect("decrypts with the device key");
    let data: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!((&data["ServiceTagId"], &data["ApiRequestInfo"]["UserId"]), (&json!("E1"), &json!("7")));
    signature::verify_independently(&delivered[2..], SECRET);
}

/// The deliveries that are not the `CommandResult` announcing the resend operation.
fn punches_only(deliveries: Vec<Delivery>) -> Vec<Delivery> {
    deliveries.into_iter().filter(|d| !d.json()["RealTime"]["CommandResult"].is_object()).collect()
}

/// Waits until `n` punch deliveries (the resend's `CommandResult` aside) were accepted.
async fn wait_punches(receiver: &Receiver, n: usize) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = punches_only(receiver.accepted());
        if got.len() >= n {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} of {n} punch deliveries", got.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks for a Cams `Resend.PunchLog` of D1's 21 June 2026; returns the reply.
async fn resend_punch_log(gw: &GatewayProcess) -> Value {
    let url = format!("{}/external/api3.0/biometric?stgid=D1&wait_ms=0", gw.base);
    let body = json!({"Resend":{"PunchLog":{"Filter":{"StartTime":"2026-06-21 00:00:00","EndTime":"2026-06-21 23:59:59"}}},"AuthToken":TOKEN});
    let response = reqwest::Client::new().post(url).body(body.to_string()).send().await.expect("the gateway answers");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a JSON reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_punch_log_reaches_a_batching_route_as_punch_log_batches_in_order() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cams-v3", &receiver.url, "resend_batch = 2");
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    let times = [
        "2026-06-21 09:00:01",
        "2026-06-21 09:00:02",
        "2026-06-21 09:00:03",
        "2026-06-21 09:00:04",
        "2026-06-21 09:00:05",
    ];
    for (i, t) in times.iter().enumerate() {
        let mut punch = NativeDevice::punch(&format!("u{i}"), t, "CheckIn");
        punch["temperature"] = json!(36.5);
        assert_eq!(d1.send(vec![punch]).await.status, 200);
    }
    // New punches go one RealTime callback each, as on any route.
    let live = receiver.wait_accepted(5, WAIT).await;
    assert!(live.iter().all(|d| d.json()["RealTime"]["PunchLog"].is_object()), "{live:?}");

    // The receiver fails the first batch once: it comes again, same id and body.
    receiver.answer(503);
    let reply = resend_punch_log(&gw).await;
    assert_eq!((&reply["StatusCode"], &reply["Status"]), (&json!(0), &json!("done")), "{reply}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while punches_only(receiver.deliveries()).len() < 6 {
        assert!(tokio::time::Instant::now() < deadline, "no batch arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    receiver.answer(200);
    let all = wait_punches(&receiver, 5 + 3).await;
    let batches: Vec<&Delivery> = all[5..].iter().collect();
    let failed = &punches_only(receiver.deliveries())[5];
    assert_eq!((failed.header("webhook-id"), &failed.body), (batches[0].header("webhook-id"), &batches[0].body));

    let mut rows = Vec::new();
    for (b, expected) in batches.iter().zip([2, 2, 1]) {
        assert_eq!(b.header("content-type"), Some("application/json"));
        assert_eq!(b.stgid.as_deref(), Some("D1"));
        let body = b.json();
        let log = body["PunchLog"]["Log"].as_array().unwrap_or_else(|| panic!("not a PunchLog batch: {}", b.body));
        assert_eq!(body["PunchLog"]["ReturnRowCount"], json!(expected.to_string()), "{}", b.body);
        assert_eq!(log.len(), expected);
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only PunchLog: {}", b.body);
        rows.extend(log.iter().cloned());
    }
    assert_eq!(
        rows[0],
        json!({"Type":"CheckIn","InputType":"Fingerprint","UserID":"u0","LogTime":"2026-06-21 09:00:01 GMT +0530","Temperature":"36.5"})
    );
    let users: Vec<&str> = rows.iter().map(|r| r["UserID"].as_str().unwrap()).collect();
    assert_eq!(users, ["u0", "u1", "u2", "u3", "u4"], "in journal order");
    let ids: std::collections::HashSet<_> = batches.iter().map(|b| b.header("webhook-id").unwrap()).collect();
    assert_eq!(ids.len(), 3, "one id per batch");
    signature::verify_independently(&batches.iter().map(|d| (*d).clone()).collect::<Vec<_>>(), SECRET);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(punches_only(receiver.deliveries()).len(), 9, "nothing more: no RealTime repeat of the resent punches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resend_batch_resend_punch_log_is_one_realtime_callback_per_punch() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cams-v3", &receiver.url, "");
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    let punches = ["2026-06-21 09:00:01", "2026-06-21 09:00:02"].map(|t| NativeDevice::punch("7", t, "CheckIn"));
    assert_eq!(d1.send(punches.to_vec()).await.status, 200);
    receiver.wait_accepted(2, WAIT).await;
    assert_eq!(resend_punch_log(&gw).await["StatusCode"], json!(0));
    let all = wait_punches(&receiver, 4).await;
    assert!(all[2..].iter().all(|d| d.json()["RealTime"]["PunchLog"].is_object()), "{all:?}");
}
