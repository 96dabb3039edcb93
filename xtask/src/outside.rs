//! The plugin author's path, checked from outside this repository: `biogate plugin new`
//! writes a project of each world in a temporary folder, which is tested natively, built
//! into a component with the wasm toolchain, and loaded by `biogate check` with the
//! project's own config; the same for Python and JavaScript projects of each world
//! (their tests with python3 and node, their builds with the pinned tools of
//! `cargo xtask examples`); and `cargo package -p biogate-sdk` shows the SDK is a crate of
//! its own (its WIT inside, nothing inherited from this workspace).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths::Paths;
use crate::system::Apt;
use crate::test::cargo;
use crate::toolchain::{self, Choice, TARGET, WasmToolchain};

/// The worlds a project is written for.
const WORLDS: [&str; 3] = ["transform", "delivery", "dialect"];

/// `cargo xtask outside`: builds the gateway (dev profile) and runs the check with the
/// wasm toolchain of this machine.
pub fn build_and_run(paths: &Paths, choice: Choice) -> Result<()> {
    let wasm = toolchain::ensure(choice, &mut Apt::default())?;
    cmd::run(cargo().current_dir(paths.root()).args(["build", "-p", "biogate"])).context("building biogate failed")?;
    run(paths, &wasm, &paths.root().join("target").join("debug").join("biogate"))
}

/// Runs the check; `biogate` is the gateway binary of this build.
pub fn run(paths: &Paths, wasm: &WasmToolchain, biogate: &Path) -> Result<()> {
    let scratch =
        tempfile::Builder::new().prefix("biogate-plugin-new-").tempdir().context("creating a temporary folder")?;
    let native_target = scratch.path().join("native-target");
    let wasm_target = scratch.path().join("wasm-target");
    let sdk = paths.root().join("sdk");
    for world in WORLDS {
        let name = format!("demo-{world}");
        cmd::run(
            std::process::Command::new(biogate)
                .args(["plugin", "new", &name, "--world", world, "--dir"])
                .arg(scratch.path())
                .arg("--sdk")
                .arg(&sdk),
        )
        .with_context(|| format!("`biogate plugin new {name} --world {world}` failed"))?;
        let project = scratch.path().join(&name);
        let manifest = project.join("Cargo.toml");
        cmd::run(
            cargo().args(["test", "--quiet", "--manifest-path"]).arg(&manifest).env("CARGO_TARGET_DIR", &native_target),
        )
        .with_context(|| format!("the tests of a new {world} plugin failed"))?;
        cmd::run(
            wasm.cargo_build()
                .arg("--release")
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&wasm_target),
        )
        .with_context(|| format!("a new {world} plugin does not build into a component"))?;
        // Where the project's README and biogate.toml expect the component.
        let crate_name = name.replace('-', "_");
        let built = wasm_target.join(TARGET).join("release").join(format!("{crate_name}.wasm"));
        let expected = project.join("target").join(TARGET).join("release");
        fs::create_dir_all(&expected).with_context(|| format!("creating {}", expected.display()))?;
        fs::copy(&built, expected.join(format!("{crate_name}.wasm")))
            .with_context(|| format!("copying {}", built.display()))?;
        let report = cmd::stdout(
            std::process::Command::new(biogate)
                .args(["check", "--config"])
                .arg(project.join("biogate.toml"))
                // Compiled plugins go with the scratch folder, not into the user's cache.
                .env("XDG_CACHE_HOME", scratch.path().join("cache")),
        )
        .with_context(|| format!("`biogate check` refused the config of a new {world} plugin"))?;
        if !report.contains(&format!("plugin {name} ({world}): starts in")) {
            bail!("`biogate check` did not start the new {world} plugin:\n{report}");
        }
        print!("{report}");
    }
    other_languages(paths, biogate, scratch.path())?;
    cmd::run(cargo().current_dir(paths.root()).args(["package", "--quiet", "--allow-dirty", "-p", "biogate-sdk"]))
        .context("`cargo package -p biogate-sdk` failed: the SDK is not a crate of its own")?;
    Ok(())
}

/// Python and JavaScript projects of `plugin new` of each world: their tests, their
/// build, and `biogate check` on their config.
fn other_languages(paths: &Paths, biogate: &Path, scratch: &Path) -> Result<()> {
    let tools = crate::examples::Tools::ensure(paths, &mut Apt::default())?;
    for (lang, world) in ["python", "js"].into_iter().flat_map(|lang| WORLDS.map(|world| (lang, world))) {
        let name = format!("demo-{lang}-{world}");
        cmd::run(
            Command::new(biogate)
                .args(["plugin", "new", &name, "--world", world, "--lang", lang, "--dir"])
                .arg(scratch),
        )
        .with_context(|| format!("`biogate plugin new {name} --lang {lang}` failed"))?;
        let project = scratch.join(&name);
        // The commands of the project's README, with the pinned tools on PATH (as after
        // its `pip install` in a venv, or its `npm install`).
        let (mut test, mut build, tool) = if lang == "python" {
            let mut test = Command::new("python3");
            test.args(["-m", "unittest"]);
            let mut build = Command::new("componentize-py");
            build.args(["-d", "wit", "-w", world, "componentize", "app", "-o", &format!("{name}.wasm")]);
            (test, build, &tools.componentize_py)
        } else {
            let mut test = Command::new("npm");
            test.arg("test");
            let mut build = Command::new("npm");
            build.args(["run", "build"]);
            (test, build, &tools.jco)
        };
        let path = with_on_path(tool.parent().context("a tool has no folder")?)?;
        cmd::run(test.current_dir(&project).env("PATH", &path))
            .with_context(|| format!("the tests of a new {lang} {world} plugin failed"))?;
        cmd::run(build.current_dir(&project).env("PATH", &path))
            .with_context(|| format!("a new {lang} {world} plugin does not build into a component"))?;
        let report = cmd::stdout(
            Command::new(biogate)
                .args(["check", "--config"])
                .arg(project.join("biogate.toml"))
                .env("XDG_CACHE_HOME", scratch.join("cache")),
        )
        .with_context(|| format!("`biogate check` refused the config of a new {lang} {world} plugin"))?;
        if !report.contains(&format!("plugin {name} ({world}): starts in")) {
            bail!("`biogate check` did not start the new {lang} {world} plugin:\n{report}");
        }
        print!("{report}");
    }
    Ok(())
}

/// PATH with `dir` first.
fn with_on_path(dir: &Path) -> Result<std::ffi::OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&current)))
        .context("a tool folder cannot go on PATH")
}
