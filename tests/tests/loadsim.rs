//! The load simulator tested: a small mixed fleet (native, ADMS, MQTT) against a real
//! gateway process, a real Mosquitto and the simulator's receiver, where the checker must
//! find every punch once and in order and every command confirmed; and the receiver and
//! checker fed crafted deliveries, where they must flag what is missing, duplicated or
//! out of order.
//!
//! The gateway binary is `$BIOGATE_BIN`, else the newest of `target/{debug,release}/biogate`
//! (build it with `cargo build -p biogate`); the ADMS plugin comes from
//! `$BIOGATE_PLUGINS_DIR` or `target/plugins` (`cargo xtask plugins`).
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use biogate_e2e::gateway_process::{GatewayProcess, gateway_binary, write_config};
use biogate_e2e::loadsim::{self, CheckReport, Checker, Fleet, FleetConfig, LoadReceiver, Mix, plan};
use biogate_e2e::mosquitto::Broker;
use serde_json::json;

const ADMIN: &str = "test-admin-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_delivers_every_punch_once_in_order_and_confirms_every_command() {
    if !loadsim::mosquitto_available() {
        eprintln!(
            "skipped: the load simulator test needs Mosquitto (BIOGATE_MOSQUITTO, mosquitto on the PATH, /usr/sbin/mosquitto); `cargo xtask test` installs it"
        );
        return;
    }
    const DEVICES: usize = 30;
    const PUNCHES: u64 = 5;
    const COMMANDS: u64 = 12;
    let broker = Broker::start();
    let checker = Arc::new(Checker::new(DEVICES));
    let receiver =
        LoadReceiver::start(checker.clone(), "127.0.0.1:0".parse().expect("an address")).await.expect("the receiver");
    let dir = tempfile::tempdir().expect("a temp dir");
    let mix = Mix::default();
    let config = loadsim::gateway_config(
        DEVICES,
        mix,
        &receiver.url,
        &["100ms", "500ms", "1s", "1s", "1s"],
        Some(&biogate_e2e::plugins::component("zkteco-adms")),
        Some(&broker.url()),
        ADMIN,
    );
    let gw = GatewayProcess::start(&gateway_binary(), &write_config(dir.path(), &config));
    gw.wait_mqtt_subscribed().await;

    let mut fleet_config = FleetConfig::new(&gw.base, DEVICES);
    fleet_config.mix = mix;
    fleet_config.mqtt = Some(("127.0.0.1".into(), broker.port()));
    fleet_config.punches_per_minute = 120.0;
    fleet_config.punch_limit = Some(PUNCHES);
    fleet_config.adms_poll = Duration::from_millis(500);
    fleet_config.long_poll_ms = 5_000;
    fleet_config.ramp = Duration::from_millis(300);
    fleet_config.commands_per_second = 6.0;
    fleet_config.command_limit = Some(COMMANDS);
    fleet_config.admin_key = ADMIN.into();
    let fleet = Fleet::start(&fleet_config, checker.clone()).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (sent, delivered) = checker.progress();
        let commands_done = fleet.commands.completed.load(Ordering::Relaxed) >= COMMANDS;
        if sent == DEVICES as u64 * PUNCHES && delivered == sent && commands_done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done in 60 s: sent {sent}, delivered {delivered}; {}; checker {}",
            fleet.stats().line(),
            checker.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates would show within a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.stop();
    let report = checker.report();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.sent, DEVICES as u64 * PUNCHES);
    assert!(report.other > 0, "MQTT devices' online status events reach the callback too: {report}");
    assert_eq!(fleet.commands.failed.load(Ordering::Relaxed), 0, "every operation ends done");
    assert_eq!(fleet.commands.submitted.load(Ordering::Relaxed), COMMANDS);
    let stats = fleet.stats();
    assert!(stats.results.load(Ordering::Relaxed) >= COMMANDS, "{}", stats.line());
    assert_eq!(
        stats.connected.load(Ordering::Relaxed),
        (DEVICES * 6 / 10) as u64,
        "every ADMS and MQTT device connected: {}",
        stats.line()
    );
    let latency = checker.take_latency();
    assert_eq!(latency.count as u64, report.sent, "a latency for every punch");
    drop(gw);
}

/// Posts a Cams v3 punch delivery of `device`'s punch `seq` to the receiver; returns the
/// status.
async fn deliver(client: &reqwest::Client, url: &str, device: &str, seq: u64) -> u16 {
    let body = json!({"RealTime": {"OperationID": "x", "PunchLog": {"Type": "CheckIn", "InputType": "Fingerprint", "UserId": plan::user_id(seq), "LogTime": "2026-06-21 00:00:00 GMT +0000"}, "SerialNumber": device}});
    client
        .post(format!("{url}?stgid={device}"))
        .body(body.to_string())
        .send()
        .await
        .expect("the receiver answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_checker_flags_missing_duplicated_and_out_of_order_arrivals() {
    let checker = Arc::new(Checker::new(3));
    let receiver =
        LoadReceiver::start(checker.clone(), "127.0.0.1:0".parse().expect("an address")).await.expect("the receiver");
    let client = reqwest::Client::new();
    let n0 = plan::device_id(plan::Protocol::Native, 0);
    let a1 = plan::device_id(plan::Protocol::Adms, 1);
    for seq in 0..4 {
        checker.sending(0, seq);
        checker.sending(1, seq);
    }
    // Device 0: all four, once, in order. Device 1: 0, 2, 1 (out of order), 2 again
    // (duplicate), 3 never.
    for seq in 0..4 {
        assert_eq!(deliver(&client, &receiver.url, &n0, seq).await, 200);
    }
    for seq in [0, 2, 1, 2] {
        assert_eq!(deliver(&client, &receiver.url, &a1, seq).await, 200);
    }
    // Down: answered 503 and not recorded.
    receiver.answer(503);
    assert_eq!(deliver(&client, &receiver.url, &a1, 3).await, 503);
    receiver.answer(200);
    // Not a punch (a device status), and a device that is not in the fleet.
    let status = json!({"RealTime": {"DeviceStatus": {"Online": true}}}).to_string();
    assert_eq!(
        client
            .post(format!("{}?stgid={n0}", receiver.url))
            .body(status)
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(deliver(&client, &receiver.url, "X9", 0).await, 200);

    let report = checker.report();
    assert_eq!(
        report,
        CheckReport { sent: 8, delivered: 7, missing: 1, duplicates: 1, out_of_order: 1, unknown: 1, other: 1 },
        "{report}"
    );
    assert!(!report.is_clean());
    assert_eq!(checker.missing_sent_before(Instant::now()), 1);
}
