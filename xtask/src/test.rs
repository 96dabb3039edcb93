//! `cargo xtask test` (and `ci`): the lint steps, everything the repository's tests need,
//! then every test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::lint;
use crate::paths::Paths;
use crate::plugin_list;
use crate::plugins::{self, Profile};
use crate::system::{self, Apt};
use crate::toolchain::{self, Choice};

/// The SDK's world features, each checked on its own (the workspace build has none).
const SDK_WORLDS: [&str; 3] = ["transform", "delivery", "dialect"];

/// Runs `cargo xtask lint` (rustfmt, the module graph, clippy), builds the plugins and the
/// Python and JavaScript examples, checks mosquitto, runs the plugins' native unit tests, the SDK per world, `cargo test
/// --workspace <extra>`, and builds new plugins outside the repository.
pub fn run(paths: &Paths, choice: Choice, extra: &[String]) -> Result<()> {
    let started = Instant::now();
    let mut apt = Apt::default();

    lint::run(paths)?;

    step("wasm toolchain");
    let wasm = toolchain::ensure(choice, &mut apt)?;

    step("plugins -> target/plugins/*.wasm");
    plugins::build_with(paths, &wasm, Profile::Release)?;

    step("example plugins in Python and JavaScript -> target/plugins/examples/*.wasm");
    crate::examples::build(paths, &mut apt)?;

    step("test dependencies");
    let mosquitto = ensure_mosquitto(&mut apt)?;
    println!("xtask: mosquitto: {}", mosquitto.display());
    ensure_python_packages()?;

    step("plugins: native unit tests");
    let plugins = plugin_list::list(paths)?;
    for group in plugin_list::by_world(plugins.iter().filter(|p| p.has_tests)) {
        cmd::run(
            cargo()
                .args(["test", "--manifest-path"])
                .arg(paths.plugins_manifest())
                .args(plugin_list::package_args(&group)),
        )
        .context("the plugins' unit tests failed")?;
    }

    step("biogate-sdk: each world feature");
    for world in SDK_WORLDS {
        cmd::run(cargo().current_dir(paths.root()).args(["test", "--quiet", "-p", "biogate-sdk", "--features", world]))
            .with_context(|| format!("biogate-sdk's tests failed with the `{world}` feature"))?;
    }

    step("workspace tests");
    cmd::run(
        cargo()
            .current_dir(paths.root())
            .args(["test", "--workspace"])
            .args(extra)
            .env("BIOGATE_PLUGINS_DIR", paths.components_dir())
            .env("BIOGATE_MOSQUITTO", &mosquitto),
    )
    .context("the workspace tests failed")?;

    step("plugins written outside this repository (biogate plugin new, cargo package -p biogate-sdk)");
    let profile = if extra.iter().any(|a| a == "--release") { "release" } else { "debug" };
    let biogate = paths.root().join("target").join(profile).join("biogate");
    crate::outside::run(paths, &wasm, &biogate)?;

    println!("\nxtask: all tests passed in {:.0?}", started.elapsed());
    Ok(())
}

pub(crate) fn step(title: &str) {
    println!("\n==> {title}");
}

pub(crate) fn cargo() -> Command {
    Command::new(toolchain::outer_cargo())
}

/// The mosquitto broker binary (the MQTT tests start their own), installed with apt when
/// missing and this machine allows it.
pub(crate) fn ensure_mosquitto(apt: &mut Apt) -> Result<PathBuf> {
    let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")];
    if let Some(path) = system::find_program("mosquitto", &sbin) {
        return Ok(path);
    }
    if !Apt::can_install() {
        bail!(
            "the MQTT tests need the mosquitto broker, which is not installed. Install it: \
             `sudo apt-get install mosquitto` (Debian/Ubuntu), `brew install mosquitto` (macOS)"
        );
    }
    println!("xtask: installing mosquitto");
    apt.install(&["mosquitto"])?;
    system::find_program("mosquitto", &sbin).context("apt-get installed mosquitto but no mosquitto binary was found")
}

/// Python packages the tests use as independent checkers, installed with pip when
/// missing: `standardwebhooks` verifies our webhook signatures (tests/verify_signature.py);
/// `openapi_spec_validator` validates the served OpenAPI document; `schemathesis` runs
/// requests generated from it against a gateway (host/tests/schemathesis.rs).
const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("standardwebhooks", "standardwebhooks"),
    ("openapi_spec_validator", "openapi-spec-validator"),
    ("schemathesis", "schemathesis==4.32.5"),
];

fn ensure_python_packages() -> Result<()> {
    let python = system::find_program("python3", &[]).context(
        "the signature and OpenAPI tests need python3 (with pip) to run independent checkers: install python3",
    )?;
    for (module, package) in PYTHON_PACKAGES {
        let has = |p: &PathBuf| {
            Command::new(p).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
        };
        if has(&python) {
            continue;
        }
        println!("xtask: installing the {package} package (pip)");
        cmd::run(Command::new(&python).args(["-m", "pip", "install", "--quiet", package]))
            .with_context(|| format!("installing {package} failed: run `python3 -m pip install {package}`"))?;
        if !has(&python) {
            bail!("python3 still cannot import {module}: run `python3 -m pip install {package}`");
        }
    }
    Ok(())
}
