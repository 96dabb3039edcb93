//! The `biogate` command line: `serve` with no config, `check`, `plugin inspect`.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");

#[test]
fn serve_without_a_config_starts_a_working_gateway_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
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
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "[plugins.x]\nkind = \"transform\"\npath = \"missing.wasm\"\n");
    let out = Command::new(BIN).args(["check", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugins.x.path") && stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        &format!(
            "[server]\ndata_dir = \"data\"\n[plugins.dedupe]\nkind = \"transform\"\npath = {}\n\
             [routes.hr]\ntransforms = [\"dedupe\"]\nsink = {{ type = \"callback\", url = \"https://hr.example.com/cb\" }}\n",
            toml_path(&plugin_wasm("dedupe-window"))
        ),
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 plugins, 1 routes)"));
}

#[test]
fn plugin_inspect_prints_the_world_imports_and_exports() {
    let out = Command::new(BIN).args(["plugin", "inspect"]).arg(plugin_wasm("dedupe-window")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("world: biogate:plugin/transform"), "{text}");
    assert!(text.contains("biogate:plugin/kv@0.1.0"), "{text}");
    assert!(text.contains("biogate:plugin/transformer@0.1.0"), "{text}");
    assert!(text.contains("    transform"), "functions are listed: {text}");

    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"junk").unwrap();
    let out = Command::new(BIN).args(["plugin", "inspect"]).arg(junk.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Wasm component"));

    // A reader that went away (`| head`) is not a crash: the pipe is closed before the
    // component is even compiled, so the output meets a closed pipe.
    let mut child = Command::new(BIN)
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
