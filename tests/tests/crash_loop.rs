//! The gateway SIGKILLed 50 times under load: a fleet of simulated devices (native HTTP,
//! ZKTeco ADMS, MQTT through a real Mosquitto) punches continuously into a real gateway
//! process while the test kills it at pseudo-random moments (100-600 ms of load between
//! kills, a fixed seed) and starts it again on the same data dir and port. The devices
//! behave like terminals: a native or ADMS upload leaves the device's buffer only once the
//! gateway answered it, and is sent again, unchanged, after the restart (so the journal's
//! de-duplication sees the batches whose answer the kill swallowed); MQTT punches are kept
//! by the broker for the gateway's persistent session. At the end punching stops, every
//! device drains its buffer and the load simulator's checker must find every acknowledged
//! punch at the receiver, in order per device.
//!
//! Repeats are allowed, since delivery is at least once across a crash, but bounded by what
//! docs/delivery.md ("After a crash") promises: a kill repeats at most the event in flight
//! per route and device, so one route, `DEVICES` devices and `KILLS` kills repeat at most
//! `DEVICES * KILLS` deliveries. A cursor that is not persisted (or persisted late) repeats
//! a device's whole history at each restart, hundreds of times that bound.
//!
//! Without Mosquitto the MQTT devices are left out (said on stderr) and the rest runs. The
//! gateway binary is `$BIOGATE_BIN`, else the newest of `target/{debug,release}/biogate`;
//! the ADMS plugin comes from `$BIOGATE_PLUGINS_DIR` or `target/plugins`
//! (`cargo xtask plugins`).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use biogate_e2e::gateway_process::{GatewayProcess, gateway_binary, write_config};
use biogate_e2e::loadsim::{self, Checker, Fleet, FleetConfig, LoadReceiver, Mix, plan};
use biogate_e2e::mosquitto::Broker;

const ADMIN: &str = "test-admin-key-0123456789";
/// SIGKILLs in the run.
const KILLS: usize = 50;
/// Devices in the fleet (with Mosquitto: 12 native, 9 ADMS, 9 MQTT).
const DEVICES: usize = 30;
/// Punches per device per minute: 30 devices, 150 punches a second in all.
const PUNCHES_PER_MINUTE: f64 = 300.0;
/// Load between two kills, in milliseconds: from `LOAD_MS.0` to `LOAD_MS.1`.
const LOAD_MS: (u64, u64) = (100, 600);
/// The seed of the kill moments (the same run every time).
const SEED: u64 = 0x0b10_6a7e_c4a5_4001;
/// How long draining may take at most (devices' buffers, then the receiver): generous, a
/// bound against hanging, not a performance figure.
const DRAIN: Duration = Duration::from_secs(120);

/// splitmix64: a small deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// A free port on 127.0.0.1: the gateway listens on it at every start, so that the devices
/// keep one address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port on 127.0.0.1").port()
}

/// Starts the gateway (logging warnings to `log`) off the async workers: the start waits
/// until the gateway listens.
async fn start(binary: &Path, config: &Path, log: &Path) -> GatewayProcess {
    let (binary, config, log) = (binary.to_path_buf(), config.to_path_buf(), log.to_path_buf());
    tokio::task::spawn_blocking(move || GatewayProcess::start_logged(&binary, &config, "warn", &log))
        .await
        .expect("the gateway starts (see the panic above)")
}

/// The last lines of the gateway's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Polls `done` every 50 ms until it holds or `DRAIN` passed; returns whether it held.
async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DRAIN;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sigkills_under_load_lose_no_acknowledged_punch_and_keep_order() {
    let began = Instant::now();
    let with_mqtt = loadsim::mosquitto_available();
    if !with_mqtt {
        eprintln!(
            "skipped: the MQTT devices of the crash loop (no Mosquitto: set BIOGATE_MOSQUITTO, put mosquitto on the PATH or install /usr/sbin/mosquitto; `cargo xtask test` installs it); native and ADMS devices run"
        );
    }
    let broker = with_mqtt.then(Broker::start);
    let mix = if with_mqtt { Mix::default() } else { Mix { native: 4, adms: 3, mqtt: 0 } };
    let checker = Arc::new(Checker::new(DEVICES));
    let receiver =
        LoadReceiver::start(checker.clone(), "127.0.0.1:0".parse().expect("an address")).await.expect("the receiver");

    let port = free_port();
    let config = loadsim::gateway_config(
        DEVICES,
        mix,
        &receiver.url,
        &["100ms", "500ms", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"],
        Some(&biogate_e2e::plugins::component("zkteco-adms")),
        broker.as_ref().map(Broker::url).as_deref(),
        ADMIN,
    );
    let listen = format!("listen = \"127.0.0.1:{port}\"");
    let config = config.replacen("listen = \"127.0.0.1:0\"", &listen, 1);
    assert!(config.contains(&listen), "the gateway config sets its own listen address: {config}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = write_config(dir.path(), &config);
    let log = dir.path().join("gateway.log");
    let binary: PathBuf = gateway_binary();

    let mut gateway = start(&binary, &config, &log).await;
    if with_mqtt {
        // Only once the gateway's session exists does the broker keep punches for it.
        gateway.wait_mqtt_subscribed().await;
    }
    let mut fleet_config = FleetConfig::new(&gateway.base, DEVICES);
    fleet_config.mix = mix;
    fleet_config.mqtt = broker.as_ref().map(|b| ("127.0.0.1".to_string(), b.port()));
    fleet_config.punches_per_minute = PUNCHES_PER_MINUTE;
    fleet_config.adms_poll = Duration::from_secs(2);
    fleet_config.long_poll_ms = 5_000;
    fleet_config.ramp = Duration::from_millis(200);
    fleet_config.upload_retry = Duration::from_millis(100);
    let fleet = Fleet::start(&fleet_config, checker.clone()).await;
    let stats = fleet.stats();
    // Load first, then the first kill.
    tokio::time::sleep_until(fleet.punching_from().into()).await;

    let mut rng = Rng(SEED);
    let mut load_total = Duration::ZERO;
    for _ in 0..KILLS {
        let load = Duration::from_millis(rng.between(LOAD_MS.0, LOAD_MS.1));
        load_total += load;
        tokio::time::sleep(load).await;
        let killed = gateway;
        tokio::task::spawn_blocking(move || killed.kill()).await.expect("the gateway is killed");
        gateway = start(&binary, &config, &log).await;
        assert_eq!(gateway.base, fleet_config.base, "the gateway is back on its port");
    }
    let arrivals_during_kills = checker.arrivals();
    let upload_errors = stats.upload_errors.load(Ordering::Relaxed);

    // Stop punching; every device sends what the gateway has not acknowledged yet.
    let to_send = fleet.stop_punching();
    let acked = || stats.punches_acked.load(Ordering::Relaxed);
    assert!(
        wait_for(|| acked() >= to_send).await,
        "the devices' buffers did not drain in {DRAIN:?}: {} of {to_send} punches acknowledged; {}; gateway log:\n{}",
        acked(),
        stats.line(),
        log_tail(&log)
    );
    // Then every acknowledged punch must reach the receiver (asserted below, naming what
    // is missing).
    wait_for(|| {
        let (sent, delivered) = checker.progress();
        delivered >= sent
    })
    .await;
    // Late repeats would show within a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    fleet.stop();
    let report = checker.report();
    let bound = (DEVICES * KILLS) as u64;
    let elapsed = began.elapsed();
    eprintln!(
        "crash loop: acknowledged {}, delivered {} (distinct), arrivals {}, duplicates {} (bound {bound}), out of order {}, kills {KILLS}, load {:.1} s, upload errors {upload_errors}, re-sent punches already stored {}, devices {DEVICES} ({}), time {:.1} s",
        acked(),
        report.delivered,
        checker.arrivals(),
        report.duplicates,
        report.out_of_order,
        load_total.as_secs_f64(),
        stats.punches_duplicate.load(Ordering::Relaxed),
        if with_mqtt { "native, ADMS, MQTT" } else { "native, ADMS" },
        elapsed.as_secs_f64()
    );

    assert_eq!(report.sent, to_send, "every punch due was sent: {report}");
    assert_eq!(acked(), to_send, "every punch sent was acknowledged once: {}", stats.line());
    if report.missing > 0 {
        let missing: Vec<String> = checker
            .missing_punches(50)
            .into_iter()
            .map(|(device, seq)| format!("{} #{seq}", plan::device_id(mix.protocol(device), device)))
            .collect();
        panic!(
            "acknowledged punches lost (not at the receiver {DRAIN:?} after the devices' buffers drained): {report}; the first of them (device #seq, user id seq+1): {}; gateway log:\n{}",
            missing.join(", "),
            log_tail(&log)
        );
    }
    assert_eq!(report.delivered, report.sent, "{report}");
    assert_eq!(report.out_of_order, 0, "punches out of order: {report}");
    assert_eq!(report.unknown, 0, "deliveries of punches nobody sent: {report}");
    assert!(
        report.duplicates <= bound,
        "{} repeated deliveries over {KILLS} kills: more than one per device and kill ({bound}): {report}",
        report.duplicates
    );
    // The kills hit a gateway under load: deliveries went on between them, and devices
    // saw uploads fail.
    assert!(arrivals_during_kills > 0, "nothing was delivered while the gateway was being killed: {report}");
    assert!(upload_errors > 0, "no device ever saw the gateway die: {}", stats.line());
    drop(gateway);
}
