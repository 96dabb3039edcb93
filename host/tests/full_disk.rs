//! A full disk, end to end, on a real small filesystem (a tmpfs mounted by the test; needs
//! root, which CI has: elsewhere the tests print SKIP and pass). A real `biogate` process
//! keeps its data there, simulated devices punch under load (native terminals that buffer
//! what is not acknowledged, and a ZKTeco ADMS terminal), and a filler file grows until the
//! disk reserve (`[storage] min_free_mb`) is reached. Then:
//! - punches are refused with 503, `Retry-After` and the stable code 44, REST writes too,
//!   `/health` says degraded, and every punch acknowledged before is still delivered;
//! - a start on the full disk refuses with a clear message and a non-zero exit, and
//!   touches nothing in the store;
//! - once space is freed the store opens with everything in it, the terminals' buffers
//!   drain, and every acknowledged punch reaches the receiver once, in order per device;
//! - space freed while the gateway runs: it recovers by itself within seconds, one log
//!   line when it enters the state, one when it leaves.
//!
//! Needs the ADMS plugin (`cargo xtask plugins`, or `BIOGATE_PLUGINS_DIR`).
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use biogate_e2e::adms_device::{AdmsDevice, DeviceConfig};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::mosquitto::Broker;
use biogate_e2e::mqtt_device::MqttDevice;
use biogate_e2e::native_device::{Answer, BufferedDevice, NativeDevice};
use biogate_e2e::receiver::{Delivery, Receiver};
use biogate_e2e::small_fs::{Filler, SmallFs};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const MIB: u64 = 1 << 20;
/// The filesystem, and the reserve the gateway keeps on it.
const FS_MIB: u64 = 96;
const RESERVE_MIB: u64 = 16;
/// The filler stops this far below the reserve: what is left is the gateway's.
const FILL_BELOW_RESERVE: u64 = 4 * MIB;
const NATIVE: [&str; 3] = ["N1", "N2", "N3"];
const ADMS: &str = "A1";
const MQTT: &str = "M1";
const WAIT: Duration = Duration::from_secs(60);

/// Mounts the filesystem, or prints why the test is skipped.
fn small_fs(test: &str) -> Option<SmallFs> {
    match SmallFs::mount(FS_MIB) {
        Ok(fs) => Some(fs),
        Err(why) => {
            // Straight to the process's stderr: the test harness captures `eprintln!`.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The gateway's config (kept outside the small filesystem): data on `data_dir`, three
/// native devices and an ADMS terminal (and an MQTT device through `broker`), one callback
/// route to `receiver`.
fn config(dir: &Path, port: u16, data_dir: &Path, receiver: &Receiver, broker: Option<&Broker>) -> PathBuf {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [storage]\nmin_free_mb = {RESERVE_MIB}\n\
         [plugins.zkteco]\nkind = \"dialect\"\npath = {:?}\n[plugins.zkteco.config]\ndelay = 1\nerror_delay = 1\n",
        data_dir.display().to_string(),
        biogate_e2e::plugins::component("zkteco-adms").display().to_string(),
    );
    for id in NATIVE.iter().chain([&ADMS, &MQTT]) {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"));
    }
    if let Some(broker) = broker {
        text.push_str(&format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"biogate-full-disk\"\nkeep_alive_secs = 5\n",
            broker.url()
        ));
    }
    text.push_str(&format!(
        "[routes.hr]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [\"50ms\"]\n\
         sink = {{ type = \"callback\", url = \"{}\" }}\n",
        receiver.url
    ));
    write_config(dir, &text)
}

/// The `i`th punch of a device: a distinct log time per punch.
fn punch(i: usize) -> Value {
    let time = format!("2026-06-21 {:02}:{:02}:{:02}", 8 + i / 3600, (i / 60) % 60, i % 60);
    NativeDevice::punch(&format!("{}", i % 50), &time, "CheckIn")
}

/// What the device drivers share with the test.
#[derive(Default)]
struct Load {
    /// Keep recording new punches (else only empty the buffers).
    punching: AtomicBool,
    stop: AtomicBool,
    /// Acknowledged punches, per device, in order: event ids.
    acknowledged: Mutex<HashMap<String, Vec<String>>>,
    /// Refusals seen, in order.
    refusals: Mutex<Vec<(String, Answer)>>,
    answers_200: AtomicUsize,
}

impl Load {
    fn acknowledged(&self) -> HashMap<String, Vec<String>> {
        self.acknowledged.lock().unwrap().clone()
    }

    fn total_acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().values().map(Vec::len).sum()
    }

    fn refusals(&self) -> Vec<(String, Answer)> {
        self.refusals.lock().unwrap().clone()
    }
}

/// A native terminal: records a punch every `every` while `load.punching`, and sends its
/// buffer (honouring `Retry-After`) until `load.stop` with an empty buffer.
async fn drive(mut device: BufferedDevice, load: Arc<Load>, every: Duration) -> BufferedDevice {
    let id = device.device().id.clone();
    let mut next = 0usize;
    loop {
        if load.punching.load(Ordering::SeqCst) {
            device.record(punch(next));
            next += 1;
        } else if load.stop.load(Ordering::SeqCst) && device.buffered() == 0 {
            return device;
        }
        let before = device.acknowledged.len();
        if let Some(answer) = device.sync().await {
            if answer.status == 200 {
                load.answers_200.fetch_add(1, Ordering::Relaxed);
                let new: Vec<String> = device.acknowledged[before..].iter().map(|(id, _)| id.clone()).collect();
                load.acknowledged.lock().unwrap().entry(id.clone()).or_default().extend(new);
            } else {
                load.refusals.lock().unwrap().push((id.clone(), answer));
            }
        }
        tokio::time::sleep(every).await;
    }
}

fn start_load(base: &str, load: &Arc<Load>) -> Vec<tokio::task::JoinHandle<BufferedDevice>> {
    load.punching.store(true, Ordering::SeqCst);
    NATIVE
        .iter()
        .map(|id| {
            let device = BufferedDevice::new(NativeDevice::new(base, id, TOKEN), 50);
            tokio::spawn(drive(device, load.clone(), Duration::from_millis(10)))
        })
        .collect()
}

/// Grows the filler a little at a time (while the devices punch) until the filesystem is
/// `FILL_BELOW_RESERVE` under the reserve.
async fn fill_to_the_reserve(fs: &SmallFs) -> Filler {
    let mut filler = Filler::create(&fs.path().join("filler"));
    let target = RESERVE_MIB * MIB - FILL_BELOW_RESERVE;
    while !filler.grow(2 * MIB, target) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    filler
}

async fn health(base: &str) -> (u16, Value) {
    match reqwest::get(format!("{base}/health")).await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
        Err(_) => (0, Value::Null),
    }
}

async fn wait_health(base: &str, status: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = health(base).await;
        if code == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/health still answers {code} {body} after {within:?}, expected {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reply of a refused device or client request.
fn assert_storage_full(what: &str, answer: &Answer) {
    assert_eq!(answer.status, 503, "{what}: {answer:?}");
    assert_eq!(answer.body["StatusCode"], 44, "{what}: {answer:?}");
    assert_eq!(answer.body["Status"], "API_RESPONSE_STORAGE_FULL", "{what}: {answer:?}");
    let wait = answer.retry_after.unwrap_or_else(|| panic!("{what}: no Retry-After: {answer:?}"));
    assert!((1..=60).contains(&wait.as_secs()), "{what}: Retry-After {wait:?}");
}

/// A `/v1` request with the admin key.
async fn v1(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), retry_after }
}

/// Every file under `dir` with its size (the store's state, to compare).
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path().display().to_string(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// Accepted punch deliveries of `device`, first per webhook-id, in arrival order; and how
/// many webhook-ids were accepted more than once.
fn delivered(receiver: &Receiver, device: &str) -> (Vec<String>, usize) {
    let accepted: Vec<Delivery> = receiver
        .accepted()
        .into_iter()
        .filter(|d| d.stgid.as_deref() == Some(device) && d.json()["RealTime"]["PunchLog"].is_object())
        .collect();
    let mut seen = HashSet::new();
    let mut first = Vec::new();
    let mut repeated = 0;
    for d in &accepted {
        let id = d.header("webhook-id").unwrap_or_default().to_string();
        if seen.insert(id.clone()) {
            first.push(id);
        } else {
            repeated += 1;
        }
    }
    (first, repeated)
}

/// Waits until every acknowledged punch of every device has reached the receiver.
async fn wait_delivered(receiver: &Receiver, acknowledged: &HashMap<String, Vec<String>>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let missing: usize = acknowledged
            .iter()
            .map(|(device, ids)| {
                let (got, _) = delivered(receiver, device);
                let got: HashSet<String> = got.into_iter().collect();
                ids.iter().filter(|id| !got.contains(*id)).count()
            })
            .sum();
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{missing} acknowledged punches not delivered after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_writes_loses_nothing_acknowledged_and_recovers_after_a_restart() {
    let Some(fs) = small_fs("a_full_disk_refuses_writes_loses_nothing_acknowledged_and_recovers_after_a_restart")
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let work = tempfile::tempdir().unwrap();
    let data = fs.path().join("data");
    let config = config(work.path(), free_port(), &data, &receiver, None);
    let gw = GatewayProcess::start(Path::new(BIN), &config);
    let base = gw.base.clone();

    // Load: three native terminals, and an ADMS terminal punching now and then.
    let load = Arc::new(Load::default());
    let drivers = start_load(&base, &load);
    let adms = AdmsDevice::start_with(
        &base,
        DeviceConfig::new(ADMS).poll_every(Duration::from_millis(200)).retry_every(Duration::from_millis(200)),
    )
    .await;
    let mut adms_punches = 0;
    for _ in 0..5 {
        adms.punch(&format!("{adms_punches}"), &adms_time(adms_punches), 0, 1).await;
        adms_punches += 1;
    }
    wait_until("the first punches are acknowledged", WAIT, || load.total_acknowledged() >= 60).await;

    // The disk fills up while they punch.
    let filler = fill_to_the_reserve(&fs).await;
    assert!(fs.free() < RESERVE_MIB * MIB, "the filler reached the reserve: {} bytes free", fs.free());
    let degraded = wait_health(&base, 503, Duration::from_secs(5)).await;
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert_eq!(degraded["reason"], "disk", "{degraded}");
    assert_eq!(degraded["storage"]["reserve_bytes"], RESERVE_MIB * MIB, "{degraded}");
    assert!(degraded["storage"]["free_bytes"].as_u64().unwrap() < RESERVE_MIB * MIB, "{degraded}");
    assert!(degraded["version"].is_string() && degraded["routes"] == serde_json::json!(["hr"]), "{degraded}");

    // Every native terminal is refused the documented way, and keeps its punches.
    // Each is refused twice at least: it keeps its buffer, waits Retry-After, tries again.
    wait_until("each native terminal is refused twice", Duration::from_secs(30), || {
        let refusals = load.refusals();
        NATIVE.iter().all(|d| refusals.iter().filter(|(id, _)| id == d).count() >= 2)
    })
    .await;
    for (device, answer) in load.refusals() {
        assert_storage_full(&format!("punches of {device}"), &answer);
    }
    // The ADMS terminal's upload is refused (503 with Retry-After, never "OK"): the record
    // stays in its buffer.
    let flush = adms.punch(&format!("{adms_punches}"), &adms_time(adms_punches), 0, 1).await;
    adms_punches += 1;
    let last = flush.attempts.last().expect("an upload was tried");
    assert_eq!(last.status, 503, "{last:?}");
    assert!(!last.body.starts_with("OK") && last.body.contains("API_RESPONSE_STORAGE_FULL"), "{last:?}");
    assert!(!last.delivered && flush.buffered >= 1, "{flush:?}");
    let raw = reqwest::Client::new()
        .post(format!("{base}/iclock/cdata?SN={ADMS}&table=ATTLOG&Stamp=99"))
        .body("77\t2026-06-21 11:00:00\t0\t1\t0\t0\t0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 503);
    assert!(raw.headers().get("retry-after").is_some(), "{:?}", raw.headers());
    // REST writes are refused with the same code; reads still work.
    let op = v1(&base, reqwest::Method::POST, "/v1/devices/N1/operations", Some(serde_json::json!({"type": "reboot"})))
        .await;
    assert_storage_full("POST /v1/devices/N1/operations", &op);
    let patch = v1(&base, reqwest::Method::PATCH, "/v1/devices/N1", Some(serde_json::json!({"label": "x"}))).await;
    assert_storage_full("PATCH /v1/devices/N1", &patch);
    assert_eq!(v1(&base, reqwest::Method::GET, "/v1/devices/N1", None).await.status, 200);
    let metrics = biogate_e2e::metrics::scrape(&base, ADMIN).await;
    assert!(metrics.contains("biogate_storage_degraded 1"), "{metrics}");
    assert!(metrics.contains("biogate_storage_free_bytes"), "{metrics}");

    // What was acknowledged before is delivered meanwhile: the gateway's own writes
    // (delivery cursors) have the reserve.
    let acknowledged_before = load.acknowledged();
    wait_delivered(&receiver, &acknowledged_before, WAIT).await;

    // Stop it; the terminals keep punching into their buffers.
    assert_eq!(gw.stop(), Some(0), "a clean stop on the full disk");
    let store_before = listing(&data);

    // A start on the full disk refuses, clearly, before touching the store.
    let refused = GatewayProcess::start_refused(Path::new(BIN), &config);
    assert!(refused.code.is_some_and(|c| c != 0), "{refused:?}");
    let expected = format!("the data folder {} has ", data.display());
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "MiB free, the reserve is {RESERVE_MIB}.0 MiB: free space or lower storage.min_free_mb"
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(listing(&data), store_before, "the refused start changed nothing in the data folder");
    // Even with not one byte left (where sled's recovery used to leave a store that no
    // longer opened).
    let mut filler = filler;
    filler.grow(u64::MAX, 0);
    assert!(fs.free() < MIB, "{} bytes free", fs.free());
    let refused = GatewayProcess::start_refused(Path::new(BIN), &config);
    assert!(refused.code.is_some_and(|c| c != 0) && refused.stderr.contains(&expected), "{refused:?}");
    assert_eq!(listing(&data), store_before, "the refused start changed nothing in the data folder");

    // Space is freed: it starts, with everything.
    filler.remove();
    let gw = GatewayProcess::start(Path::new(BIN), &config);
    assert_eq!(gw.base, base);
    let ok = wait_health(&base, 200, Duration::from_secs(5)).await;
    assert_eq!(ok["status"], "ok", "{ok}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.punching.store(false, Ordering::SeqCst);
    load.stop.store(true, Ordering::SeqCst);
    let mut devices = Vec::new();
    for driver in drivers {
        devices.push(tokio::time::timeout(WAIT, driver).await.expect("the buffers drain").unwrap());
    }
    adms.flush().await;
    adms.wait_outbox_empty(WAIT).await;

    // Every punch acknowledged (before the disk filled, and after the restart: none while
    // it was full) is in the journal and reached the receiver, once each, in the order
    // acknowledged per device.
    let acknowledged = load.acknowledged();
    for device in &devices {
        let id = &device.device().id;
        let ids: Vec<String> = device.acknowledged.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(acknowledged[id], ids);
        assert!(device.refusals.iter().any(|a| a.status == 503), "{id} was refused while the disk was full");
    }
    let total = load.total_acknowledged();
    assert!(
        total > acknowledged_before.values().map(Vec::len).sum::<usize>(),
        "punches were acknowledged after recovery"
    );
    wait_delivered(&receiver, &acknowledged, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (device, ids) in &acknowledged {
        let journal =
            v1(&base, reqwest::Method::GET, &format!("/v1/devices/{device}/events?limit=1000"), None).await.body;
        let mut stored: Vec<String> =
            journal["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        let mut after = journal["events"].as_array().unwrap().last().map(|e| e["sequence"].as_u64().unwrap());
        while let Some(seq) = after {
            let page =
                v1(&base, reqwest::Method::GET, &format!("/v1/devices/{device}/events?after={seq}&limit=1000"), None)
                    .await
                    .body;
            let events = page["events"].as_array().unwrap();
            stored.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
            after = events.last().map(|e| e["sequence"].as_u64().unwrap());
        }
        assert_eq!(&stored, ids, "the journal of {device} holds every acknowledged punch, in order");
        let (got, repeated) = delivered(&receiver, device);
        assert_eq!(&got, ids, "{device}: delivered in the order acknowledged");
        assert_eq!(repeated, 0, "{device}: each delivered once");
    }
    let adms_delivered = delivered(&receiver, ADMS);
    assert_eq!(adms_delivered.0.len(), adms_punches, "every ADMS punch once");
    assert_eq!(adms_delivered.1, 0);
    println!(
        "full disk: {total} native punches acknowledged ({} before the disk filled), {} refusals, ADMS {adms_punches}",
        acknowledged_before.values().map(Vec::len).sum::<usize>(),
        load.refusals().len()
    );
    adms.stop().await;
    drop(gw);
}

fn adms_time(i: usize) -> String {
    format!("2026-06-21 10:{:02}:{:02}", (i / 60) % 60, i % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn space_freed_while_it_runs_recovers_by_itself_within_seconds() {
    let Some(fs) = small_fs("space_freed_while_it_runs_recovers_by_itself_within_seconds") else {
        return;
    };
    let receiver = Receiver::start().await;
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("gateway.log");
    let broker = Broker::start();
    let config = config(work.path(), free_port(), &fs.path().join("data"), &receiver, Some(&broker));
    let gw = GatewayProcess::start_logged(Path::new(BIN), &config, "info", &log);
    gw.wait_mqtt_subscribed().await;
    let base = gw.base.clone();
    let load = Arc::new(Load::default());
    let drivers = start_load(&base, &load);
    let mqtt = MqttDevice::connect(&broker, MQTT, TOKEN, "biogate").await;
    mqtt.punch("1", "2026-06-21 12:00:00", "CheckIn").await;
    wait_until("the first punches are acknowledged", WAIT, || load.total_acknowledged() >= 30).await;

    let filler = fill_to_the_reserve(&fs).await;
    wait_health(&base, 503, Duration::from_secs(5)).await;
    wait_until("a terminal is refused", Duration::from_secs(20), || !load.refusals().is_empty()).await;
    // An MQTT device publishes meanwhile: the broker has its messages, the gateway stores
    // none of them and does not acknowledge them.
    for i in 2..=4 {
        mqtt.punch(&i.to_string(), &format!("2026-06-21 12:00:0{i}"), "CheckIn").await;
    }
    // Requests keep coming while it is degraded; the log says it once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stored = v1(&base, reqwest::Method::GET, &format!("/v1/devices/{MQTT}/events"), None).await.body;
    let punches = stored["events"].as_array().unwrap().iter().filter(|e| e["body"]["Punch"].is_object()).count();
    assert_eq!(punches, 1, "only the punch from before: {stored}");
    let refused_while_full = load.refusals().len();
    assert!(refused_while_full >= NATIVE.len(), "{refused_while_full}");

    // Space comes back: no restart.
    let freed = Instant::now();
    filler.remove();
    wait_health(&base, 200, Duration::from_secs(3)).await;
    let health_back = freed.elapsed();
    let acknowledged_when_freed = load.answers_200.load(Ordering::SeqCst);
    wait_until("punches are acknowledged again", Duration::from_secs(10), || {
        load.answers_200.load(Ordering::SeqCst) > acknowledged_when_freed
    })
    .await;
    let punches_back = freed.elapsed();
    load.punching.store(false, Ordering::SeqCst);
    load.stop.store(true, Ordering::SeqCst);
    for driver in drivers {
        tokio::time::timeout(WAIT, driver).await.expect("the buffers drain").unwrap();
    }
    let acknowledged = load.acknowledged();
    wait_delivered(&receiver, &acknowledged, WAIT).await;
    // The held MQTT messages are stored and delivered, in order, without a reconnection.
    wait_until("the MQTT punches are delivered", WAIT, || delivered(&receiver, MQTT).0.len() == 4).await;
    let users: Vec<String> = receiver
        .accepted()
        .iter()
        .filter(|d| d.stgid.as_deref() == Some(MQTT) && d.json()["RealTime"]["PunchLog"].is_object())
        .map(|d| d.json()["RealTime"]["PunchLog"]["UserId"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(users, ["1", "2", "3", "4"]);
    let metrics = biogate_e2e::metrics::scrape(&base, ADMIN).await;
    assert!(metrics.contains("biogate_storage_degraded 0"), "{metrics}");
    assert!(metrics.contains("biogate_mqtt_connections_total 1"), "one connection to the broker: {metrics}");
    drop(gw);
    mqtt.stop().await;

    let text = std::fs::read_to_string(&log).unwrap();
    let entering = text.lines().filter(|l| l.contains("the disk is below its reserve")).count();
    let leaving = text.lines().filter(|l| l.contains("the disk is above its reserve again")).count();
    assert_eq!((entering, leaving), (1, 1), "one line entering, one leaving, not one per request:\n{text}");
    println!(
        "recovery: /health ok {health_back:?} after the space came back, punches acknowledged again after {punches_back:?} \
         ({refused_while_full} refusals while full, Retry-After honoured)"
    );
}
