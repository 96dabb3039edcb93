//! `cargo xtask plugins`: build every plugin of the plugins/ workspace to a component and
//! copy it to the well-known folder `target/plugins/<package>.wasm`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths::Paths;
use crate::plugin_list;
use crate::system::Apt;
use crate::toolchain::{self, Choice, TARGET, WasmToolchain};

/// The first 8 bytes of a WebAssembly component: `\0asm`, version 0x0d, layer 1.
const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// The cargo profile the plugins are built with.
#[derive(Debug, Clone, Copy)]
pub enum Profile {
    Release,
    Debug,
}

impl Profile {
    fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Profile::Release => &["--release"],
            Profile::Debug => &[],
        }
    }

    fn output_dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

/// Ensures the toolchain, then builds and copies every plugin.
pub fn build(paths: &Paths, choice: Choice, profile: Profile) -> Result<()> {
    let toolchain = toolchain::ensure(choice, &mut Apt::default())?;
    build_with(paths, &toolchain, profile)
}

/// Builds and copies every plugin with a toolchain that is ready.
pub fn build_with(paths: &Paths, toolchain: &WasmToolchain, profile: Profile) -> Result<()> {
    println!("xtask: wasm toolchain: {}", toolchain.describe());
    let plugins = plugin_list::list(paths)?;
    let started = Instant::now();
    for group in plugin_list::by_world(&plugins) {
        let mut build = toolchain.cargo_build();
        build
            .arg("--manifest-path")
            .arg(paths.plugins_manifest())
            .arg("--target-dir")
            .arg(paths.wasm_target_dir())
            .args(plugin_list::package_args(&group))
            .args(profile.cargo_args());
        cmd::run(&mut build).context("building the plugins failed")?;
    }
    println!("xtask: plugins built in {:.1?}", started.elapsed());

    let out_dir = paths.components_dir();
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let built_dir = paths.wasm_target_dir().join(TARGET).join(profile.output_dir());
    for plugin in &plugins {
        let built = built_dir.join(format!("{}.wasm", plugin.lib_name));
        check_component(&built)?;
        let dest = out_dir.join(format!("{}.wasm", plugin.package));
        copy_if_changed(&built, &dest)?;
        let size = fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        println!("  {:<28} {:>8} bytes  {}", plugin.package, size, relative(paths, &dest));
    }
    Ok(())
}

/// Fails unless `path` starts with the component magic (a core module means the build
/// did not go through wasm-component-ld).
pub(crate) fn check_component(path: &Path) -> Result<()> {
    let mut head = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .with_context(|| format!("cannot read the built plugin {}", path.display()))?;
    if head != COMPONENT_MAGIC {
        bail!(
            "{} is not a WebAssembly component (header {head:02x?}); was it linked by \
             wasm-component-ld?",
            path.display()
        );
    }
    Ok(())
}

/// Copies unless `dest` already has the same bytes (keeps its mtime for caches).
fn copy_if_changed(src: &Path, dest: &Path) -> Result<()> {
    let new = fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    if fs::read(dest).is_ok_and(|old| old == new) {
        return Ok(());
    }
    fs::write(dest, &new).with_context(|| format!("cannot write {}", dest.display()))
}

fn relative(paths: &Paths, path: &Path) -> String {
    path.strip_prefix(paths.root()).map_or_else(|_| path.to_path_buf(), PathBuf::from).display().to_string()
}
