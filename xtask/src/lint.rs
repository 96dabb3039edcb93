//! `cargo xtask lint`, also the first steps of `cargo xtask test`: rustfmt, the module
//! graph of host/src (`cargo xtask deps`), and clippy, over the root workspace and the
//! plugins' workspace. Quick failures first: formatting and the graph take seconds.

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::deps;
use crate::paths::Paths;
use crate::plugin_list;
use crate::test::{cargo, step};

/// Runs rustfmt's check, the module graph check, then clippy with warnings denied.
pub fn run(paths: &Paths) -> Result<()> {
    for (tool, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let found = cargo().args([tool, "--version"]).output().is_ok_and(|o| o.status.success());
        if !found {
            bail!("`cargo {tool}` is not installed: run `rustup component add {component}`");
        }
    }

    step("rustfmt --check (rustfmt.toml)");
    let root = cmd::run(cargo().current_dir(paths.root()).args(["fmt", "--all", "--check"]));
    // The plugins are their own workspace; `--all` there would also format the SDK and,
    // through it, the root workspace (plugins/Cargo.toml).
    let plugins = cmd::run(cargo().current_dir(paths.plugins_dir()).args(["fmt", "--check"]));
    match (root.is_ok(), plugins.is_ok()) {
        (true, true) => {}
        (false, true) => bail!("the code is not formatted: run `cargo fmt --all`"),
        (true, false) => bail!("the plugins are not formatted: run `cd plugins && cargo fmt`"),
        (false, false) => bail!("the code is not formatted: run `cargo fmt --all` and `cd plugins && cargo fmt`"),
    }

    step("module graph of host/src (cargo xtask deps)");
    deps::check(paths)?;

    step("clippy: root workspace");
    cmd::run(cargo().current_dir(paths.root()).args(CLIPPY_WORKSPACE).args(CLIPPY_LINTS))
        .context("clippy found problems in the root workspace (see above)")?;

    step("clippy: plugins (native), one world at a time");
    let plugins = plugin_list::list(paths)?;
    for group in plugin_list::by_world(&plugins) {
        cmd::run(
            cargo()
                .args(["clippy", "--all-targets", "--manifest-path"])
                .arg(paths.plugins_manifest())
                .args(plugin_list::package_args(&group))
                .args(CLIPPY_LINTS),
        )
        .context("clippy found problems in the plugins (see above)")?;
    }
    Ok(())
}

const CLIPPY_WORKSPACE: [&str; 3] = ["clippy", "--workspace", "--all-targets"];
const CLIPPY_LINTS: [&str; 3] = ["--", "-D", "warnings"];
