//! The `biogate` command line: `serve` with no config, `check`, `plugin inspect`.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");

/// The gateway's command line, its compiled plugins cached under the target folder (the
/// user's cache folder is left alone).
fn biogate() -> Command {
    let mut command = Command::new(BIN);
    command.env("XDG_CACHE_HOME", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"));
    command
}

#[test]
fn serve_without_a_config_starts_a_working_gateway_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = biogate()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("BIOGATE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let address =
        line.trim().strip_prefix("biogate listening on ").unwrap_or_else(|| panic!("unexpected: {line}")).to_string();
    assert!(address.starts_with("http://127.0.0.1:"), "{address}");

    let health: serde_json::Value = reqwest::blocking::get(format!("{address}/health")).unwrap().json().unwrap();
    assert_eq!(health["status"], "ok");
    assert!(dir.path().join("biogate-data/store").is_dir(), "the embedded store is in ./biogate-data");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn check_reports_a_bad_config_and_exits_non_zero() {
    let (ok, _, stderr, _dir) = check("[plugins.x]\nkind = \"transform\"\npath = \"missing.wasm\"\n");
    assert!(!ok);
    assert!(stderr.contains("plugins.x.path") && stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn check_accepts_a_good_config() {
    let (ok, stdout, stderr, _dir) = check(&format!(
        "[server]\ndata_dir = \"data\"\n[plugins.dedupe]\nkind = \"transform\"\npath = {}\n\
         [routes.hr]\ntransforms = [\"dedupe\"]\nsink = {{ type = \"callback\", url = \"https://hr.example.com/cb\" }}\n",
        toml_path(&plugin_wasm("dedupe-window"))
    ));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ok (1 plugin, 1 route, 0 devices)"));
}

#[test]
fn plugin_inspect_prints_the_world_imports_and_exports() {
    let out = biogate().args(["plugin", "inspect"]).arg(plugin_wasm("dedupe-window")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("world: biogate:plugin/transform"), "{text}");
    assert!(text.contains("biogate:plugin/kv@0.1.0"), "{text}");
    assert!(text.contains("biogate:plugin/transformer@0.1.0"), "{text}");
    assert!(text.contains("    transform"), "functions are listed: {text}");

    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"junk").unwrap();
    let out = biogate().args(["plugin", "inspect"]).arg(junk.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Wasm component"));

    // A reader that went away (`| head`) is not a crash: the pipe is closed before the
    // component is even compiled, so the output meets a closed pipe.
    let mut child = biogate()
        .args(["plugin", "inspect"])
        .arg(plugin_wasm("zkteco-adms"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a closed stdout: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `biogate check` on `config` written in a new folder; returns (success, stdout,
/// stderr) and the folder.
fn check(config: &str) -> (bool, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), config);
    let out = biogate().args(["check", "--config"]).arg(&file).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr), dir)
}

#[test]
fn check_writes_nothing_and_works_beside_the_running_gateway_of_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[plugins.dedupe]\nkind = \"transform\"\npath = {}\n",
            toml_path(&plugin_wasm("dedupe-window"))
        ),
    );
    let out = biogate().args(["check", "--config"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("data").exists(), "check created the data folder (a store or an admin key)");

    let mut gateway =
        biogate().args(["serve", "--config"]).arg(&file).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(gateway.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("biogate listening on"), "{line}");
    let key_before = std::fs::read(dir.path().join("data/admin-api-key")).unwrap();

    let out = biogate().args(["check", "--config"]).arg(&file).output().unwrap();
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    assert!(out.status.success(), "check beside a running gateway: {}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("plugin dedupe (transform): starts in"), "{report}");
    assert_eq!(std::fs::read(dir.path().join("data/admin-api-key")).unwrap(), key_before);
}

#[test]
fn check_refuses_a_memory_cap_a_plugin_cannot_start_within_and_states_its_need() {
    let plugin = toml_path(&plugin_wasm("dedupe-window"));
    let (ok, _, stderr, _dir) =
        check(&format!("[plugins.dedupe]\nkind = \"transform\"\npath = {plugin}\nlimits = {{ memory_mib = 1 }}\n"));
    assert!(!ok, "a plugin that cannot start was passed");
    // A Rust component asks for a little over 1 MiB (its stack and data) at start.
    assert!(
        stderr.contains("cannot start within its memory cap of 1 MiB: it needs 2 MiB to start")
            && stderr.contains("`plugins.dedupe.limits.memory_mib` to at least 2"),
        "{stderr}"
    );
    let (ok, stdout, stderr, _dir) =
        check(&format!("[plugins.dedupe]\nkind = \"transform\"\npath = {plugin}\nlimits = {{ memory_mib = 2 }}\n"));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("of its 2 MiB"), "{stdout}");
}

#[test]
fn check_refuses_a_delivery_plugin_that_makes_requests_without_allowed_hosts() {
    let plugin = toml_path(&plugin_wasm("relay"));
    let route = "[routes.hr]\nsink = { type = \"plugin\", plugin = \"relay\" }\n";
    let (ok, _, stderr, _dir) = check(&format!(
        "[plugins.relay]\nkind = \"delivery\"\npath = {plugin}\nconfig = {{ url = \"https://hr.example.com/in\" }}\n{route}"
    ));
    assert!(!ok, "a delivery plugin whose every request would be refused was passed");
    assert!(
        stderr.contains("imports biogate:plugin/outbound-http")
            && stderr.contains("`plugins.relay.allowed_hosts` is empty"),
        "{stderr}"
    );
    let (ok, stdout, stderr, _dir) = check(&format!(
        "[plugins.relay]\nkind = \"delivery\"\npath = {plugin}\nallowed_hosts = [\"https://hr.example.com\"]\n\
         config = {{ url = \"https://hr.example.com/in\" }}\n{route}"
    ));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ok (1 plugin, 1 route, 0 devices)"), "{stdout}");
}

#[test]
fn plugin_inspect_marks_nothing_on_a_component_the_gateway_runs() {
    let out = biogate().args(["plugin", "inspect"]).arg(plugin_wasm("relay")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("world: biogate:plugin/delivery"), "{text}");
    assert!(text.contains("biogate:plugin/outbound-http@0.1.0"), "{text}");
    assert!(!text.contains("NOT PROVIDED"), "{text}");
}

/// `biogate plugin run FILE ARGS...` in `dir`: (success, stdout as JSON, stderr).
fn plugin_run(file: &std::path::Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = biogate().args(["plugin", "run"]).arg(file).args(args).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Events as `GET /v1/devices/{id}/events` answers them, in a file.
fn events_file(dir: &std::path::Path, events: &[biogate::plugin::bindings::types::Event]) -> std::path::PathBuf {
    let path = dir.join("events.json");
    std::fs::write(&path, serde_json::json!({ "events": events }).to_string()).unwrap();
    path
}

#[test]
fn plugin_run_shows_what_a_transform_makes_of_each_event_with_its_time_and_memory() {
    use biogate::plugin::bindings::types::PunchType;
    let dir = tempfile::tempdir().unwrap();
    let events = [
        punch("D1", 1, "00042", 1_750_480_200, PunchType::CheckIn),
        punch("D1", 2, "9999", 1_750_480_260, PunchType::CheckIn),
        punch("D1", 3, "", 1_750_480_320, PunchType::CheckOut),
    ];
    let input = events_file(dir.path(), &events);
    let (ok, out, stderr) = plugin_run(
        &biogate_e2e::plugins::example("badge-normalise"),
        &["--input", input.to_str().unwrap(), "--config", "prefix=EMP-", "-c", "ignore_users=9999"],
    );
    assert!(ok, "{stderr}");
    let passed: Vec<biogate::plugin::bindings::types::Event> = serde_json::from_value(out["events"].clone()).unwrap();
    assert_eq!(passed.len(), 1, "{out}");
    assert_eq!(user_of(&passed[0]), "EMP-42");
    assert_eq!(passed[0].id, events[0].id);
    for line in [
        "transform plugin: started in ",
        "event 1 (evt-D1-1): ",
        "passed 1 event",
        "event 2 (evt-D1-2): ",
        "dropped",
        "event 3 (evt-D1-3): ",
        "rejected: the punch has no user id",
        "memory: at most ",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }

    // Its output is its input's form: it can go through the next plugin.
    let chained = dir.path().join("passed.json");
    std::fs::write(&chained, out.to_string()).unwrap();
    let (ok, out, stderr) = plugin_run(
        &biogate_e2e::plugins::example("overtime-by-hour"),
        &["--input", chained.to_str().unwrap(), "-c", "overtime_from=0", "-c", "overtime_until=23"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(out["events"][0]["body"]["Punch"]["punch_type"], "OverTimeIn", "{out}");

    // A fault is reported, the next event gets a fresh instance, and the command fails.
    let faulty = events_file(
        dir.path(),
        &[
            punch("D1", 1, "1", 1_750_480_200, PunchType::CheckIn),
            punch("D1", 2, "trap", 1_750_480_260, PunchType::CheckIn),
            punch("D1", 3, "3", 1_750_480_320, PunchType::CheckIn),
        ],
    );
    let (ok, out, stderr) = plugin_run(&plugin_wasm("fault-injector"), &["--input", faulty.to_str().unwrap()]);
    assert_eq!(out["events"].as_array().map(Vec::len), Some(2), "{out}");
    assert!(!ok, "a run with a fault succeeded: {stderr}");
    assert!(stderr.contains("1 of 3 calls faulted"), "{stderr}");
}

#[test]
fn plugin_run_feeds_a_dialect_one_device_request_and_shows_its_reply_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("attlog.http");
    let body = "1042\t2026-06-21 08:00:00\t0\t1\t0\t0\t0\n1043\t2026-06-21 08:01:10\t1\t1\t0\t0\t0\n";
    std::fs::write(
        &request,
        format!(
            "POST /iclock/cdata?SN=SN7A2300583&table=ATTLOG&Stamp=9999 HTTP/1.1\nHost: gw\nContent-Length: {}\n\n{body}",
            body.len()
        ),
    )
    .unwrap();
    let (ok, out, stderr) = plugin_run(
        &plugin_wasm("zkteco-adms"),
        &["--input", request.to_str().unwrap(), "--device-time-zone", "+05:30"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(out["device"], "SN7A2300583", "identified from the request: {out}");
    assert_eq!(out["reply"]["status"], 200, "{out}");
    let events = out["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{out}");
    assert_eq!(events[1]["Punch"]["user_id"], "1043");
    assert_eq!(events[1]["Punch"]["punch_type"], "CheckOut");
    assert_eq!(events[0]["Punch"]["log_time"]["utc_offset_minutes"], 330, "the device's time zone");
    assert!(stderr.contains("handle-http: ") && stderr.contains("HTTP 200, 2 events"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_delivers_through_a_delivery_plugin_only_to_the_hosts_allowed() {
    use biogate::plugin::bindings::types::PunchType;
    let receiver = biogate_e2e::receiver::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let input = events_file(
        dir.path(),
        &[
            punch("D1", 1, "1", 1_750_480_200, PunchType::CheckIn),
            punch("D2", 1, "2", 1_750_480_260, PunchType::CheckOut),
        ],
    );
    let url = format!("url={}", receiver.url);
    let origin = receiver.url.trim_end_matches("/callback").to_string();
    let plugin = biogate_e2e::plugins::example("hr-webhook");
    let run = |args: Vec<String>| {
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || plugin_run(&plugin, &args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let input = input.to_str().unwrap().to_string();
    let (ok, _, stderr) = run(vec!["--input".into(), input.clone(), "-c".into(), url.clone()]).await.unwrap();
    assert!(!ok && stderr.contains("--allow-host"), "no allowed host: {stderr}");

    let (ok, out, stderr) =
        run(vec!["--input".into(), input, "-c".into(), url, "--allow-host".into(), origin]).await.unwrap();
    assert!(ok, "{stderr}");
    assert_eq!(out["batches"][0]["device"], "D1", "{out}");
    assert_eq!(out["batches"][0]["outcome"], "delivered", "{out}");
    assert_eq!(out["batches"][1]["outcome"], "delivered", "{out}");
    let bodies: Vec<serde_json::Value> = receiver.deliveries().iter().map(|d| d.json()).collect();
    assert_eq!(bodies.len(), 2, "one batch per device");
    assert_eq!(bodies[1]["punches"][0]["employee"], "2");
    assert_eq!(bodies[1]["punches"][0]["direction"], "out");
}

#[test]
fn a_javascript_transform_whose_memory_grows_with_every_call_is_renewed_before_it_faults() {
    use biogate::plugin::bindings::types::PunchType;
    // jco's engine keeps ~12 KiB of garbage a call: under the default 16 MiB cap, one call
    // in about 700 hit the cap and its event followed the failure policy.
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> =
        (0..3000).map(|i| punch("D1", i + 1, "7", 1_750_480_200 + i as i64, PunchType::CheckIn)).collect();
    let input = events_file(dir.path(), &events);
    let (ok, out, stderr) =
        plugin_run(&biogate_e2e::plugins::example("overtime-by-hour"), &["--input", input.to_str().unwrap()]);
    assert!(ok, "{}", stderr.lines().filter(|l| l.contains("fault")).take(3).collect::<Vec<_>>().join("\n"));
    assert_eq!(out["events"].as_array().map(Vec::len), Some(3000));
    let summary = stderr.lines().find(|l| l.starts_with("memory: ")).expect("the run's summary line");
    assert!(!summary.contains(" 0 retired"), "no instance was renewed: {summary}");
}
