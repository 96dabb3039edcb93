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
