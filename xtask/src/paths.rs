//! Where things are in the repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The repository's well-known paths.
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// The repository root: the parent of this crate's folder.
    pub fn locate() -> Result<Self> {
        // `cargo run` sets the manifest folder at run time; the compile-time value is the
        // fallback. The run-time one matters when several checkouts share a target folder:
        // the binary may have been built from another checkout.
        let xtask_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let root = xtask_dir.parent().context("the xtask crate has no parent folder")?.to_path_buf();
        if !root.join("plugins").join("Cargo.toml").is_file() {
            bail!("{} does not look like the biogate repository (no plugins/Cargo.toml)", root.display());
        }
        Ok(Self { root })
    }

    /// The repository root (the root workspace).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The plugins' own workspace.
    pub fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// The plugins workspace's manifest.
    pub fn plugins_manifest(&self) -> PathBuf {
        self.plugins_dir().join("Cargo.toml")
    }

    /// Cargo's target folder for the wasm32 builds.
    pub fn wasm_target_dir(&self) -> PathBuf {
        self.root.join("target").join("wasm")
    }

    /// The well-known folder of built components: `target/plugins/<package>.wasm`.
    pub fn components_dir(&self) -> PathBuf {
        self.root.join("target").join("plugins")
    }
}
