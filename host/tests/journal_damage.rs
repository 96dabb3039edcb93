//! A damaged event log at the gateway's level (docs/storage.md, "Recovery"): a gateway
//! killed mid-run, then a flipped byte in the middle of a stored punch and a torn write at
//! the log's end. The gateway starts, reports both in `/health`, delivers every intact
//! punch once and in order, never the damaged one as another, and takes new punches.
use std::path::{Path, PathBuf};
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::receiver::Receiver;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &Path, route_to: Option<&str>) -> PathBuf {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for id in ["D1", "D2"] {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
    }
    if let Some(url) = route_to {
        text.push_str(&format!(
            "[routes.hr]\ndevices = [\"*\"]\nstart = \"oldest\"\nallow_private_networks = true\n\
             sink = {{ type = \"callback\", url = \"{url}\", secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" }}\n"
        ));
    }
    write_config(dir, &text)
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 08:00:{i:02}")
}

/// The one segment file of the event log.
fn segment(dir: &Path) -> PathBuf {
    let events = dir.join("data/store/events");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&events)
        .expect("the event log folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

/// Where the payload of `device`'s record `seq` starts in the segment: walks the frames
/// (`[len u32 LE][crc u32][payload]`, payload `[1][device len][device][seq u64 LE][event]`).
fn record_payload(bytes: &[u8], device: &str, seq: u64) -> usize {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let payload = at + 8;
        let dev_len = bytes[payload + 1] as usize;
        let dev = &bytes[payload + 2..payload + 2 + dev_len];
        let s = u64::from_le_bytes(bytes[payload + 2 + dev_len..payload + 10 + dev_len].try_into().expect("8 bytes"));
        if dev == device.as_bytes() && s == seq {
            return payload;
        }
        at = payload + len;
    }
    panic!("no record {device}/{seq} in the segment");
}

async fn health(base: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}/health")).await.expect("GET /health");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

/// Log times of the punches delivered, first delivery per webhook-id, in arrival order.
fn delivered(receiver: &Receiver) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    receiver
        .accepted()
        .iter()
        .filter(|d| seen.insert(d.header("webhook-id").unwrap_or_default().to_string()))
        .map(|d| d.json()["RealTime"]["PunchLog"]["LogTime"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_and_a_torn_tail_are_reported_and_everything_intact_is_delivered() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), None));
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    for i in 0..10 {
        assert_eq!(d1.send(vec![NativeDevice::punch("7", &log_time(i), "CheckIn")]).await.status, 200);
    }
    gw.kill();

    let path = segment(dir.path());
    let mut bytes = std::fs::read(&path).expect("the segment");
    // A byte in the middle of D1's fifth punch.
    let fifth = record_payload(&bytes, "D1", 5);
    bytes[fifth + 30] ^= 0x20;
    // A write a crash interrupted: a header promising 200 bytes, and 20 of them.
    bytes.extend_from_slice(&200u32.to_le_bytes());
    bytes.extend_from_slice(&[0xab; 24]);
    std::fs::write(&path, &bytes).expect("write the segment");

    let receiver = Receiver::start().await;
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), Some(&receiver.url)));
    let (status, body) = health(&gw.base).await;
    assert_eq!(status, 200, "damage is reported, the gateway serves: {body}");
    let journal = &body["journal"];
    assert!(journal["torn_tail"].as_str().is_some_and(|t| t.contains("torn tail")), "{journal}");
    assert_eq!(journal["damaged"].as_array().map(Vec::len), Some(1), "{journal}");

    let expected: Vec<String> = (0..10).filter(|i| *i != 4).map(|i| format!("{} GMT +0000", log_time(i))).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while delivered(&receiver).len() < expected.len() {
        assert!(tokio::time::Instant::now() < deadline, "intact punches not delivered: {:?}", delivered(&receiver));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New punches are taken, with sequences after the stored ones.
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    let answer = d1.send(vec![NativeDevice::punch("7", &log_time(10), "CheckIn")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["events"][0]["sequence"], 11, "{}", answer.body);
    let mut expected = expected;
    expected.push(format!("{} GMT +0000", log_time(10)));
    while delivered(&receiver).len() < expected.len() {
        assert!(tokio::time::Instant::now() < deadline, "the new punch not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered(&receiver), expected, "every intact punch once, in order; the damaged one never");
    let (_, body) = health(&gw.base).await;
    assert!(body["journal"]["unreadable_events"].as_u64().is_some_and(|n| n >= 1), "{}", body["journal"]);
}
