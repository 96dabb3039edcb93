//! Plugins written in Python and JavaScript (plugins/examples/, built by `cargo xtask
//! examples` with componentize-py and jco) loaded into a real `biogate` process with their
//! default limits: the transforms change punches on their way to a real callback
//! receiver, the delivery plugins post their own formats to real receivers through the
//! gateway's outbound HTTP, retried in order when the receiver is down.
mod common;

use std::path::Path;
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use biogate_e2e::plugins::example;
use biogate_e2e::receiver::{Delivery, Receiver};
use common::toml_path;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
/// Long enough for a first start that compiles an 18 MB component on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// A gateway with device D1 (India, +05:30) and `rest` (plugins and routes).
fn start(dir: &Path, rest: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
         [devices.D1]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n{rest}"
    );
    GatewayProcess::start(Path::new(BIN), &write_config(dir, &text))
}

/// `retry_schedule` of the routes: 200 quick attempts (10 s), so an outage is retried
/// within the test and nothing is dead-lettered.
fn quick_retries() -> String {
    format!("retry_schedule = [{}]", vec!["\"50ms\""; 200].join(", "))
}

/// Sends punches one request each, in order: (user, local time on 2026-06-21, type).
async fn punch(device: &NativeDevice, punches: &[(&str, &str, &str)]) {
    for (user, time, kind) in punches {
        let answer = device.send(vec![NativeDevice::punch(user, &format!("2026-06-21 {time}"), kind)]).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_transforms_change_punches_on_their_way_to_the_callback() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        dir.path(),
        &format!(
            "[plugins.badges]\nkind = \"transform\"\npath = {}\n\
             config = {{ prefix = \"EMP-\", ignore_users = \"9999, 8888\" }}\n\
             [plugins.overtime]\nkind = \"transform\"\npath = {}\nconfig = {{ overtime_from = \"19\" }}\n\
             [routes.hr]\ntransforms = [\"badges\", \"overtime\"]\nallow_private_networks = true\n{retries}\n\
             sink = {{ type = \"callback\", url = \"{}\" }}\n",
            toml_path(&example("badge-normalise")),
            toml_path(&example("overtime-by-hour")),
            receiver.url,
            retries = quick_retries(),
        ),
    );
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    punch(
        &device,
        &[
            ("00042", "08:00:00", "CheckIn"),
            ("9999", "08:01:00", "CheckIn"),
            ("0100", "12:30:00", "BreakOut"),
            ("007", "19:30:00", "CheckOut"),
            ("0100", "23:10:00", "CheckIn"),
            ("0", "05:59:59", "BreakIn"),
        ],
    )
    .await;

    let delivered = receiver.wait_accepted(5, WAIT).await;
    let punches: Vec<(String, String, String)> = delivered
        .iter()
        .map(|d| {
            let log = &d.json()["RealTime"]["PunchLog"];
            let text = |key: &str| log[key].as_str().unwrap_or_default().to_string();
            (text("UserId"), text("Type"), text("LogTime"))
        })
        .collect();
    let expected = [
        // Python: zeros stripped, the prefix added; the ignored user's punch is dropped.
        ("EMP-42", "CheckIn", "2026-06-21 08:00:00 GMT +0530"),
        // JavaScript: only check-in and check-out change, and only from 19:00 to 06:00.
        ("EMP-100", "BreakOut", "2026-06-21 12:30:00 GMT +0530"),
        ("EMP-7", "OverTimeOut", "2026-06-21 19:30:00 GMT +0530"),
        ("EMP-100", "OverTimeIn", "2026-06-21 23:10:00 GMT +0530"),
        ("EMP-0", "BreakIn", "2026-06-21 05:59:59 GMT +0530"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(u, t, l)| (u.to_string(), t.to_string(), l.to_string())).collect();
    assert_eq!(punches, expected, "in order, each changed by both plugins");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().len(), 5, "the ignored user's punch was delivered after all");
}

/// Every line of NDJSON bodies, parsed, in arrival order.
fn ndjson_lines(deliveries: &[Delivery]) -> Vec<Value> {
    deliveries
        .iter()
        .flat_map(|d| d.body.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect::<Vec<_>>())
        .collect()
}

/// Waits until the accepted deliveries hold `n` items as counted by `count`.
async fn wait_items(receiver: &Receiver, n: usize, count: impl Fn(&[Delivery]) -> usize) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let accepted = receiver.accepted();
        if count(&accepted) >= n {
            return accepted;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} of {n} items accepted", count(&accepted));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_delivery_plugins_post_their_own_formats_and_retry_in_order() {
    let ndjson = Receiver::start().await;
    let webhook = Receiver::start().await;
    webhook.answer(503);
    let origin = |url: &str| url.trim_end_matches("/callback").to_string();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        dir.path(),
        &format!(
            "[plugins.ndjson]\nkind = \"delivery\"\npath = {}\nallowed_hosts = [\"{}\"]\n\
             config = {{ url = \"{}\", token = \"s3cret\" }}\n\
             [plugins.webhook]\nkind = \"delivery\"\npath = {}\nallowed_hosts = [\"{}\"]\n\
             config = {{ url = \"{}\", api_key = \"k-123\" }}\n\
             [routes.lines]\n{retries}\nsink = {{ type = \"plugin\", plugin = \"ndjson\" }}\n\
             [routes.hr]\n{retries}\nsink = {{ type = \"plugin\", plugin = \"webhook\" }}\n",
            toml_path(&example("ndjson-post")),
            origin(&ndjson.url),
            ndjson.url,
            toml_path(&example("hr-webhook")),
            origin(&webhook.url),
            webhook.url,
            retries = quick_retries(),
        ),
    );
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let sent = [("1", "08:00:00", "CheckIn"), ("2", "08:00:05", "CheckIn"), ("1", "17:45:30", "CheckOut")];
    punch(&device, &sent).await;

    // Python, NDJSON: one line a punch, with the bearer token.
    let accepted = wait_items(&ndjson, 3, |d| ndjson_lines(d).len()).await;
    assert!(accepted.iter().all(|d| d.header("authorization") == Some("Bearer s3cret")));
    assert!(accepted.iter().all(|d| d.header("content-type") == Some("application/x-ndjson")));
    let lines = ndjson_lines(&accepted);
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l["user"].as_str().unwrap(), l["time"].as_str().unwrap(), l["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("1", "2026-06-21T08:00:00+05:30", "check-in"),
            ("2", "2026-06-21T08:00:05+05:30", "check-in"),
            ("1", "2026-06-21T17:45:30+05:30", "check-out")
        ]
    );
    assert!(lines.iter().all(|l| l["device"] == "D1" && l["input"] == "fingerprint"));
    let sequences: Vec<u64> = lines.iter().map(|l| l["sequence"].as_u64().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "in journal order: {sequences:?}");

    // JavaScript, one JSON document a batch: refused while the HR system is down, then
    // delivered in order, each punch once, with the same event ids as the NDJSON lines.
    let deadline = tokio::time::Instant::now() + WAIT;
    while webhook.deliveries().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the webhook plugin made no attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    webhook.answer(200);
    let punches_of = |d: &Delivery| d.json()["punches"].as_array().cloned().unwrap_or_default();
    let accepted = wait_items(&webhook, 3, |d| d.iter().map(|d| punches_of(d).len()).sum()).await;
    assert!(accepted.iter().all(|d| d.header("x-api-key") == Some("k-123")));
    let punches: Vec<Value> = accepted.iter().flat_map(punches_of).collect();
    let got: Vec<(&str, &str, &str, &str)> = punches
        .iter()
        .map(|p| {
            let text = |key: &str| p[key].as_str().unwrap();
            (text("employee"), text("at"), text("direction"), text("kind"))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1", "2026-06-21T08:00:00+05:30", "in", "check-in"),
            ("2", "2026-06-21T08:00:05+05:30", "in", "check-in"),
            ("1", "2026-06-21T17:45:30+05:30", "out", "check-out")
        ]
    );
    let ids = |items: &[Value]| items.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&punches), ids(&lines), "both routes deliver the same events");
}

/// `biogate check` on `config`, its compiled plugins cached under the target folder.
fn check(config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), config);
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&file)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("languages-cache"))
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_refuses_limits_a_python_plugin_cannot_start_within_and_states_what_it_needs() {
    let plugin = toml_path(&example("badge-normalise"));
    let with_limits =
        |limits: &str| format!("[plugins.py]\nkind = \"transform\"\npath = {plugin}\nlimits = {limits}\n");

    // The interpreter alone needs about 13 MiB before any of the plugin's code runs.
    let (ok, _, stderr) = check(&with_limits("{ memory_mib = 8 }"));
    assert!(!ok, "a Python plugin was passed with 8 MiB");
    assert!(
        stderr.contains("cannot start within its memory cap of 8 MiB: it needs ")
            && stderr.contains("`plugins.py.limits.memory_mib` to at least "),
        "{stderr}"
    );
    // Its start takes about a millisecond of CPU (1.1-1.4 ms on the CI machine): with
    // `cpu_ms = 1` check refuses it with what it takes, or, on a machine where the start
    // fits, passes it only with a start measured within the limit.
    let (ok, stdout, stderr) = check(&with_limits("{ cpu_ms = 1 }"));
    if ok {
        let took: f64 = stdout
            .split("starts in ")
            .nth(1)
            .and_then(|rest| rest.split(" ms").next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no start time in {stdout}"));
        assert!(took <= 1.0, "check passed a start of {took} ms under a 1 ms limit");
    } else {
        assert!(
            stderr.contains("cannot start within its CPU limit of 1 ms: its start takes ")
                && stderr.contains("`plugins.py.limits.cpu_ms` to at least "),
            "{stderr}"
        );
    }
    // The defaults of a transform hold it.
    let (ok, stdout, stderr) = check(&with_limits("{}"));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("plugin py (transform): starts in"), "{stdout}");
}

#[test]
fn check_refuses_a_javascript_plugin_built_with_fetch_support_and_names_the_jco_flags() {
    let (ok, _, stderr) = check(&format!(
        "[plugins.js]\nkind = \"transform\"\npath = {}\n",
        toml_path(&example("overtime-by-hour-with-fetch"))
    ));
    assert!(!ok, "a component importing wasi:http was passed");
    assert!(
        stderr.contains("imports what this gateway does not provide: wasi:http/")
            && stderr.contains("add `-d http fetch-event`"),
        "{stderr}"
    );
    let (ok, _, stderr) =
        check(&format!("[plugins.js]\nkind = \"transform\"\npath = {}\n", toml_path(&example("overtime-by-hour"))));
    assert!(ok, "the same plugin built with `-d http fetch-event`: {stderr}");
}
