//! Where the tests and benchmarks find the plugin components that `cargo xtask plugins`
//! builds.
use std::path::{Path, PathBuf};

/// The component `<name>.wasm`: from `$BIOGATE_PLUGINS_DIR`, else the workspace's
/// `target/plugins`. Panics, saying how to build it, when it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = components_dir().join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: build it with `cargo xtask plugins`", path.display());
    path
}

/// The example plugin `<name>.wasm` in Python or JavaScript (plugins/examples/), from
/// `$BIOGATE_PLUGINS_DIR/examples` or the workspace's `target/plugins/examples`. Panics,
/// saying how to build it, when it is missing.
pub fn example(name: &str) -> PathBuf {
    let path = components_dir().join("examples").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: build it with `cargo xtask examples`", path.display());
    path
}

fn components_dir() -> PathBuf {
    std::env::var_os("BIOGATE_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}
