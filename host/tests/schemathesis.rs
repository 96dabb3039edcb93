//! Issue 17: the OpenAPI document is the truth about the API. schemathesis (an
//! independent checker, installed from PyPI by `cargo xtask test`) generates requests
//! from `/v1/openapi.json` and runs every check it has (`--checks all`: no 5xx, only
//! declared status codes and content types, response bodies matching their schemas,
//! schema-violating requests refused, schema-valid ones accepted, auth enforced...)
//! against a real `biogate` process over loopback, in a bounded run with a fixed seed.
//! host/tests/schemathesis.toml says what is configured and why. 0 failures.
use std::path::Path;
use std::process::Command;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";

#[test]
fn schemathesis_finds_no_failure_against_the_openapi_document() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [devices.D1]\nauth_token = \"tok0123456789abcdef0123456789abc\"\ntime_zone = \"+05:30\"\n\
         [routes.hr]\ndevices = [\"*\"]\nallow_private_networks = true\n\
         sink = {{ type = \"callback\", url = \"http://127.0.0.1:9/cams\" }}\n"
    );
    let gw = GatewayProcess::start(Path::new(BIN), &write_config(dir.path(), &config));
    let settings = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let python = std::env::var("BIOGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args(["-c", "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"])
        .arg("--no-color")
        .arg("--config-file")
        .arg(&settings)
        .args(["run", &format!("{}/v1/openapi.json", gw.base)])
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1", "--seed", "20261207"])
        .args(["--request-timeout", "20", "--header", &format!("Authorization: Bearer {ADMIN}")])
        .current_dir(dir.path())
        .output()
        .expect("python3 runs (needs `pip install schemathesis`, which `cargo xtask test` does)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found failures (or could not run):\n{report}");
    assert!(report.contains("Tested: 26"), "every documented operation was tested:\n{report}");
}
