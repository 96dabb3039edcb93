//! Delivery after a receiver outage, end to end: a real `biogate` process, native devices,
//! a real HTTP receiver. The route's retry schedule waits an hour after a failure, so only
//! the gateway's recovery (a 2xx wakes every waiting worker of the route; a probe finds a
//! receiver that comes back while every worker sleeps) can explain a quick resume.
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::receiver::{Delivery, Receiver};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const DEVICES: usize = 50;
const PUNCHES: usize = 3;

/// `devices` devices `D0..` and one route to `url` that waits an hour between attempts.
fn config(dir: &Path, devices: usize, url: &str) -> std::path::PathBuf {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for i in 0..devices {
        text.push_str(&format!("[devices.D{i}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
    }
    text.push_str(&format!(
        "[routes.hr]\nallow_private_networks = true\nretry_schedule = [\"1h\", \"1h\"]\n\
         sink = {{ type = \"callback\", url = \"{url}\" }}\n"
    ));
    write_config(dir, &text)
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 08:{:02}:{:02}", i / 60, i % 60)
}

/// Every device sends `PUNCHES` punches; returns each device's event ids in order.
async fn punch_all(base: &str, devices: usize) -> BTreeMap<String, Vec<String>> {
    let mut ids = BTreeMap::new();
    for d in 0..devices {
        let id = format!("D{d}");
        let device = NativeDevice::new(base, &id, TOKEN);
        let mut mine = Vec::new();
        for i in 0..PUNCHES {
            let answer = device.send(vec![NativeDevice::punch("7", &log_time(i), "CheckIn")]).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            mine.push(answer.body["events"][0]["id"].as_str().unwrap().to_string());
        }
        ids.insert(id, mine);
    }
    ids
}

/// Waits until every device's first attempt was refused: every worker is asleep in its
/// hour-long backoff.
async fn wait_all_refused(receiver: &Receiver, devices: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let refused: HashSet<String> =
            receiver.deliveries().iter().filter(|d| d.answered != 200).filter_map(|d| d.stgid.clone()).collect();
        if refused.len() == devices {
            return;
        }
        assert!(Instant::now() < deadline, "only {} of {devices} devices tried", refused.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each device's accepted webhook-ids, in arrival order.
fn accepted_per_device(accepted: &[Delivery]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in accepted {
        out.entry(d.stgid.clone().unwrap_or_default()).or_default().push(d.header("webhook-id").unwrap().to_string());
    }
    out
}

/// The receiver comes back and another device's punch gets a 2xx: every device waiting
/// in its hour-long backoff resumes at once, in order, each punch once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_again_wakes_every_waiting_device_at_once() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), DEVICES + 1, &receiver.url));
    let ids = punch_all(&gw.base, DEVICES).await;
    wait_all_refused(&receiver, DEVICES).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    receiver.answer(200);
    let back = Instant::now();
    // A device that was not waiting punches: its delivery is the receiver's first 2xx.
    let fresh = NativeDevice::new(&gw.base, &format!("D{DEVICES}"), TOKEN);
    assert_eq!(fresh.send(vec![NativeDevice::punch("7", &log_time(0), "CheckIn")]).await.status, 200);
    let accepted = receiver.wait_accepted(DEVICES * PUNCHES + 1, Duration::from_secs(20)).await;
    let resumed = accepted.iter().map(|d| d.at.duration_since(back)).max().unwrap();
    assert!(resumed < Duration::from_secs(5), "the backlog took {resumed:?} after the receiver answered again");
    let mut got = accepted_per_device(&accepted);
    got.remove(&format!("D{DEVICES}"));
    assert_eq!(got, ids, "every waiting device's punches, in order, once");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), DEVICES * PUNCHES + 1, "nothing delivered twice");
}

/// The receiver comes back while every worker sleeps in its hour-long backoff and no
/// device punches: the route's probe finds it within seconds, and its 2xx wakes the
/// others. While the receiver is down, the devices do not knock one by one: about one
/// request every few seconds reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_finds_a_receiver_that_comes_back_while_every_worker_sleeps() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), DEVICES, &receiver.url));
    let ids = punch_all(&gw.base, DEVICES).await;
    wait_all_refused(&receiver, DEVICES).await;
    let before = receiver.deliveries().len();
    let window = Duration::from_secs(7);
    tokio::time::sleep(window).await;
    let probes = receiver.deliveries().len() - before;
    assert!(
        (1..=4).contains(&probes),
        "{probes} requests in {window:?} to a receiver that is down (one probe per ~3 s)"
    );

    receiver.answer(200);
    let back = Instant::now();
    let accepted = receiver.wait_accepted(DEVICES * PUNCHES, Duration::from_secs(20)).await;
    let resumed = accepted.iter().map(|d| d.at.duration_since(back)).max().unwrap();
    assert!(resumed < Duration::from_secs(5), "the backlog took {resumed:?} after the receiver came back");
    assert_eq!(accepted_per_device(&accepted), ids, "every device's punches, in order, once");
    drop(gw);
}
