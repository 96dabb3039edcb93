//! Choosing, checking and installing the toolchain that builds wasm32-wasip2 components.
//!
//! Two ways (see shared/reference/wasm-toolchain.md):
//! - rustup's toolchain with the `wasm32-wasip2` target (`rustup target add
//!   wasm32-wasip2`): the normal developer setup; it links components by itself.
//! - Debian's `rustc-web` (1.96) rebuilding std from `rust-web-src` for the target
//!   (`-Z build-std`), linking with `wasm-ld` from lld-19 and `wasm-component-ld`, and
//!   the WASI libc from `wasi-libc`. For machines where rustup cannot download targets.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::system::{self, Apt};

/// The target every plugin is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The wasm-component-ld version this repository's recipe was checked with.
const WASM_COMPONENT_LD_VERSION: &str = "0.5.31";

/// Folder of Debian's WASI libc (given to the linker with `-L`).
const WASI_LIBC_DIR: &str = "/usr/lib/wasm32-wasi";

/// Folder of LLVM 19's tools (`wasm-ld`).
const LLVM_BIN_DIR: &str = "/usr/lib/llvm-19/bin";

/// Which toolchain the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// rustup's when it has the wasm32-wasip2 target, else Debian's.
    Auto,
    /// rustup's toolchain with the wasm32-wasip2 target.
    Rustup,
    /// Debian's rustc-web with build-std.
    Debian,
}

/// A toolchain ready to build components.
pub enum WasmToolchain {
    /// rustup's cargo, whose toolchain has the target installed.
    Rustup { cargo: PathBuf },
    /// Debian's /usr/bin/cargo; `component_ld_dir` holds `wasm-component-ld`.
    Debian { component_ld_dir: PathBuf },
}

/// A Debian package the fallback needs, and a file that shows it is there.
struct DebianPackage {
    name: &'static str,
    file: &'static str,
}

const DEBIAN_PACKAGES: [DebianPackage; 5] = [
    DebianPackage { name: "rustc-web", file: "/usr/bin/rustc" },
    DebianPackage { name: "cargo-web", file: "/usr/bin/cargo" },
    DebianPackage { name: "rust-web-src", file: "/usr/lib/rustlib/src/rust/library/Cargo.lock" },
    DebianPackage { name: "lld-19", file: "/usr/lib/llvm-19/bin/wasm-ld" },
    DebianPackage { name: "wasi-libc", file: "/usr/lib/wasm32-wasi/libc.a" },
];

/// Returns a toolchain that can build components, installing what is missing when this
/// machine allows it (root with apt-get), or explains exactly what to install.
pub fn ensure(choice: Choice, apt: &mut Apt) -> Result<WasmToolchain> {
    let rustup_ready = choice != Choice::Debian && rustup_has_target();
    match choice {
        Choice::Rustup if !rustup_ready => bail!(
            "rustup's toolchain has no {TARGET} target. Run `rustup target add {TARGET}`, \
             or use `--wasm-toolchain debian` / `auto`."
        ),
        Choice::Rustup | Choice::Auto if rustup_ready => Ok(WasmToolchain::Rustup { cargo: outer_cargo() }),
        _ => ensure_debian(apt),
    }
}

impl WasmToolchain {
    /// One line saying which toolchain builds the components.
    pub fn describe(&self) -> String {
        match self {
            Self::Rustup { cargo } => {
                format!("rustup toolchain with the {TARGET} target ({}, {})", cargo.display(), version_of(cargo))
            }
            Self::Debian { component_ld_dir } => format!(
                "Debian fallback: /usr/bin/cargo ({}) with -Z build-std, wasm-ld from {LLVM_BIN_DIR}, \
                 WASI libc from {WASI_LIBC_DIR}, wasm-component-ld from {}",
                version_of(Path::new("/usr/bin/cargo")),
                component_ld_dir.display()
            ),
        }
    }

    /// `cargo build` for the target, with everything the toolchain needs set.
    pub fn cargo_build(&self) -> Command {
        match self {
            Self::Rustup { cargo } => {
                let mut command = Command::new(cargo);
                command.args(["build", "--target", TARGET]);
                command
            }
            Self::Debian { component_ld_dir } => debian_cargo_build(component_ld_dir),
        }
    }
}

/// The cargo that runs xtask (rustup's, normally): `$CARGO`, else `cargo` from PATH.
pub fn outer_cargo() -> PathBuf {
    env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

fn version_of(program: &Path) -> String {
    cmd::stdout(Command::new(program).arg("--version"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "version unknown".to_owned())
}

/// Whether `rustup target list --installed` (for the toolchain running xtask, which
/// rustup reads from RUSTUP_TOOLCHAIN) lists the target.
fn rustup_has_target() -> bool {
    if system::find_program("rustup", &[]).is_none() {
        return false;
    }
    cmd::stdout(Command::new("rustup").args(["target", "list", "--installed"]))
        .map(|out| out.lines().any(|line| line.trim() == TARGET))
        .unwrap_or(false)
}

fn debian_package_missing(package: &DebianPackage) -> bool {
    !Path::new(package.file).exists() || system::dpkg_installed(package.name) == Some(false)
}

fn ensure_debian(apt: &mut Apt) -> Result<WasmToolchain> {
    let missing: Vec<&str> = DEBIAN_PACKAGES.iter().filter(|p| debian_package_missing(p)).map(|p| p.name).collect();
    if !missing.is_empty() {
        if !Apt::can_install() {
            bail!(
                "cannot build the plugins: rustup's toolchain has no {TARGET} target, and the \
                 Debian fallback lacks {missing:?}. Either run `rustup target add {TARGET}`, or \
                 install the fallback as root:\n    apt-get install -y rustc-web cargo-web \
                 rust-web-src lld-19 wasi-libc\n    cargo install wasm-component-ld --version \
                 {WASM_COMPONENT_LD_VERSION} --locked"
            );
        }
        println!("xtask: installing the Debian wasm toolchain: {missing:?}");
        apt.install(&missing)?;
        let still: Vec<&str> = DEBIAN_PACKAGES.iter().filter(|p| debian_package_missing(p)).map(|p| p.name).collect();
        if !still.is_empty() {
            bail!("apt-get installed {missing:?} but {still:?} still look missing");
        }
    }
    let component_ld = match find_component_ld() {
        Some(path) => path,
        None => {
            install_component_ld()?;
            find_component_ld().context(
                "`cargo install wasm-component-ld` succeeded but wasm-component-ld is still not \
                 found on PATH or in $CARGO_HOME/bin",
            )?
        }
    };
    let component_ld_dir = component_ld.parent().context("wasm-component-ld has no parent folder")?.to_path_buf();
    Ok(WasmToolchain::Debian { component_ld_dir })
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, else `~/.cargo/bin`.
fn cargo_bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo").join("bin"));
    }
    dirs
}

fn find_component_ld() -> Option<PathBuf> {
    system::find_program("wasm-component-ld", &cargo_bin_dirs())
}

/// `cargo install wasm-component-ld` with the cargo running xtask (no root needed).
fn install_component_ld() -> Result<()> {
    println!("xtask: installing wasm-component-ld {WASM_COMPONENT_LD_VERSION} (cargo install)");
    cmd::run(
        Command::new(outer_cargo())
            .args(["install", "wasm-component-ld", "--locked", "--version"])
            .arg(WASM_COMPONENT_LD_VERSION),
    )
    .context(
        "could not install wasm-component-ld; install it by hand with \
         `cargo install wasm-component-ld --locked`",
    )
}

/// Environment variables that would make Debian's cargo use rustup's rustc or other
/// settings of the outer `cargo xtask` run.
const INHERITED_TOOLCHAIN_VARS: &[&str] = &[
    "CARGO",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTDOC",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_TOOLCHAIN_SOURCE",
    "RUST_RECURSION_COUNT",
];

/// Debian's cargo with the recipe: std rebuilt for the target, the WASI libc on the
/// linker path, wasm-ld and wasm-component-ld on PATH, and nothing of rustup's.
fn debian_cargo_build(component_ld_dir: &Path) -> Command {
    let mut command = Command::new("/usr/bin/cargo");
    for var in INHERITED_TOOLCHAIN_VARS {
        command.env_remove(var);
    }
    command.env("PATH", debian_path(component_ld_dir)).env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1");
    if let Some(library_path) = library_path_without_rustup() {
        command.env("LD_LIBRARY_PATH", library_path);
    }
    command
        .args(["build", "--target", TARGET, "-Z", "build-std=std,panic_abort", "--config"])
        .arg(format!(r#"target.{TARGET}.rustflags=["-L","{WASI_LIBC_DIR}"]"#));
    command
}

/// `/usr/lib/llvm-19/bin:/usr/bin:<wasm-component-ld's folder>:<PATH>`, without the
/// rustup toolchain folders that `cargo run` may have added.
fn debian_path(component_ld_dir: &Path) -> OsString {
    let inherited = env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![PathBuf::from(LLVM_BIN_DIR), PathBuf::from("/usr/bin"), component_ld_dir.to_path_buf()];
    dirs.extend(env::split_paths(&inherited).filter(|dir| !is_rustup_toolchain_dir(dir)));
    env::join_paths(dirs).unwrap_or(inherited)
}

/// LD_LIBRARY_PATH without rustup's toolchain folders (`cargo run` adds them for xtask
/// itself; Debian's rustc must not load rustup's libraries). `None` to leave it unset.
fn library_path_without_rustup() -> Option<OsString> {
    let inherited = env::var_os("LD_LIBRARY_PATH")?;
    let kept: Vec<PathBuf> = env::split_paths(&inherited).filter(|dir| !is_rustup_toolchain_dir(dir)).collect();
    env::join_paths(kept).ok()
}

fn is_rustup_toolchain_dir(dir: &Path) -> bool {
    let rustup_home = env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")));
    rustup_home.is_some_and(|home| dir.starts_with(home.join("toolchains")))
}
