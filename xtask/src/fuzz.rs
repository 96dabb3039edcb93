//! `cargo xtask fuzz`: the long, coverage-guided run of the fuzz targets under libFuzzer
//! with cargo-bolero (docs/reliability.md). The same targets run briefly under `cargo
//! test` with bolero's random engine, in `cargo xtask test`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths::Paths;
use crate::test::{cargo, step};

/// The cargo-bolero release that speaks the target protocol of bolero 0.13.
const CARGO_BOLERO_VERSION: &str = "0.13.5";

/// Which workspace holds a target.
#[derive(Clone, Copy)]
enum Home {
    /// The root workspace: package `biogate-fuzz`, fuzz/tests/fuzz.rs.
    Root,
    /// The plugins' workspace: package `zkteco-adms`, plugins/zkteco-adms/tests/fuzz.rs.
    Plugins,
}

/// A fuzz target: its short name, where it is, and its test function.
struct Target {
    name: &'static str,
    home: Home,
    package: &'static str,
    test: &'static str,
}

const TARGETS: &[Target] = &[
    Target { name: "adms", home: Home::Plugins, package: "zkteco-adms", test: "fuzz_adms_request" },
    Target { name: "cams", home: Home::Root, package: "biogate-fuzz", test: "fuzz_cams_envelope" },
    Target { name: "native", home: Home::Root, package: "biogate-fuzz", test: "fuzz_native_upload" },
    Target { name: "mqtt", home: Home::Root, package: "biogate-fuzz", test: "fuzz_mqtt_message" },
    Target { name: "ecb", home: Home::Root, package: "biogate-fuzz", test: "fuzz_crypto_ecb" },
    Target { name: "gcm", home: Home::Root, package: "biogate-fuzz", test: "fuzz_crypto_gcm" },
];

/// How long each target runs.
pub enum Budget {
    /// This many executions (libFuzzer's `-runs`).
    Runs(u64),
    /// This many seconds (libFuzzer's `-max_total_time`).
    Seconds(u64),
}

/// The names of the targets, for messages.
fn names() -> String {
    TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// Installs cargo-bolero when missing, then runs `only` (every target when empty) one
/// after the other. Builds go to target/fuzz/build (root workspace) and build-plugins,
/// each target's corpus and crashes to target/fuzz/<name>/.
pub fn run(paths: &Paths, only: &[String], budget: Budget) -> Result<()> {
    let targets: Vec<&Target> = if only.is_empty() {
        TARGETS.iter().collect()
    } else {
        only.iter()
            .map(|name| {
                TARGETS
                    .iter()
                    .find(|t| t.name == name)
                    .with_context(|| format!("no fuzz target `{name}`; the targets are {}", names()))
            })
            .collect::<Result<_>>()?
    };
    ensure_cargo_bolero()?;
    let fuzz_dir = paths.root().join("target").join("fuzz");
    for target in targets {
        step(&format!("fuzz {} ({})", target.name, target.test));
        let started = Instant::now();
        let work = fuzz_dir.join(target.name);
        let (manifest, build) = match target.home {
            Home::Root => (paths.root().join("Cargo.toml"), "build"),
            Home::Plugins => (paths.plugins_manifest(), "build-plugins"),
        };
        let mut run = cargo();
        run.current_dir(paths.root())
            .args(["bolero", "test", target.test, "--engine", "libfuzzer"])
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--package", target.package])
            // Safe Rust: no AddressSanitizer (it needs nightly, and halves the speed).
            .args(["--sanitizer", "NONE"])
            .arg("--target-dir")
            .arg(fuzz_dir.join(build))
            .arg("--corpus-dir")
            .arg(work.join("corpus"))
            .arg("--crashes-dir")
            .arg(work.join("crashes"))
            .arg("--engine-args=-print_final_stats=1");
        match budget {
            Budget::Runs(runs) => run.args(["--runs", &runs.to_string()]),
            Budget::Seconds(seconds) => run.args(["-T", &format!("{seconds}s")]),
        };
        cmd::run(&mut run).with_context(|| {
            format!(
                "fuzz target `{}` failed: its crashing inputs are in {}",
                target.name,
                work.join("crashes").display()
            )
        })?;
        println!("xtask: fuzz {} passed in {:.0?}", target.name, started.elapsed());
    }
    Ok(())
}

/// Installs cargo-bolero from crates.io into cargo's bin folder if `cargo bolero` is
/// missing: the libFuzzer engine only, the version that matches bolero 0.13.
fn ensure_cargo_bolero() -> Result<()> {
    let installed = cargo().args(["bolero", "--version"]).output().is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-bolero", "--locked", "--version", CARGO_BOLERO_VERSION]).args([
        "--no-default-features",
        "--features",
        "libfuzzer",
    ]);
    println!(
        "xtask: cargo-bolero is not installed; building it from crates.io into {} (a few minutes)",
        cargo_bin().display()
    );
    cmd::run(&mut install).context("installing cargo-bolero failed")?;
    if !cargo().args(["bolero", "--version"]).output().is_ok_and(|o| o.status.success()) {
        bail!("cargo-bolero was installed but `cargo bolero` does not run: is {} on the PATH?", cargo_bin().display());
    }
    Ok(())
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
fn cargo_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("~/.cargo"));
    home.join("bin")
}
