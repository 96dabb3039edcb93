//! The machine: programs on PATH, root, apt.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::cmd;

/// The first `name` found in PATH, then in `extra_dirs`.
pub fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path_dirs = env::var_os("PATH").map(|p| env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs.iter().chain(extra_dirs).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    Path::new("/proc/self").metadata().map(|m| m.uid() == 0).unwrap_or(false)
}

/// Installs Debian packages, when that is possible (root and apt-get present). Runs
/// `apt-get update` once per xtask run.
#[derive(Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    /// Whether packages can be installed here without asking anybody.
    pub fn can_install() -> bool {
        is_root() && find_program("apt-get", &[]).is_some()
    }

    /// `apt-get install -y <packages>` (after `apt-get update`, once).
    pub fn install(&mut self, packages: &[&str]) -> Result<()> {
        if !Self::can_install() {
            bail!("cannot install {packages:?}: not root, or no apt-get");
        }
        if !self.updated {
            cmd::run(Command::new("apt-get").arg("update"))?;
            self.updated = true;
        }
        // With recommended packages, as the recipe was verified (rustc-web recommends
        // rust-web-llvm).
        cmd::run(
            Command::new("apt-get").args(["install", "-y"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"),
        )
    }
}

/// Whether the Debian package `package` is installed. `None` when this is not a
/// Debian-like system (no dpkg-query).
pub fn dpkg_installed(package: &str) -> Option<bool> {
    find_program("dpkg-query", &[])?;
    let status = Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output().ok()?;
    Some(status.status.success() && String::from_utf8_lossy(&status.stdout).ends_with(" installed"))
}
