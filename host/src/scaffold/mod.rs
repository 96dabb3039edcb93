//! `biogate plugin new`: writes a plugin project for one world that builds with one
//! documented command and has a test, ready to be edited. The templates are the files
//! beside this module; Rust is the language written so far.
use std::path::{Path, PathBuf};

use crate::plugin::PluginKind;

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// Where the project takes `biogate-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A checkout's `sdk/` folder.
    Path(PathBuf),
    /// A git repository holding the `biogate-sdk` package.
    Git(String),
}

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "{0:?} is not a plugin name: use lower-case letters, digits and '-', starting with a letter (e.g. hr-export)"
    )]
    BadName(String),
    #[error("{0} already exists: choose another name or folder")]
    Exists(PathBuf),
    #[error(
        "{0:?} plugins cannot be written by `plugin new` yet: write them by hand with sdk/README.md (section \"Other languages\")"
    )]
    Unsupported(&'static str),
    #[error(
        "cannot find biogate-sdk: pass --sdk PATH (the sdk/ folder of a biogate checkout) or --sdk-git URL (the repository you cloned biogate from)"
    )]
    NoSdk,
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

const CARGO_TOML: &str = include_str!("rust/Cargo.toml.tmpl");
const README: &str = include_str!("rust/README.md.tmpl");
const TRANSFORM: &str = include_str!("rust/transform.rs");
const DELIVERY: &str = include_str!("rust/delivery.rs");
const DIALECT: &str = include_str!("rust/dialect.rs");

/// The SDK of the checkout this binary was built from, if it is still there.
pub fn sdk_of_this_build() -> Option<SdkSource> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    let sdk = sdk.canonicalize().ok()?;
    sdk.join("wit").is_dir().then_some(SdkSource::Path(sdk))
}

/// Writes a new `world` plugin called `name` into `parent/name`; returns the files written.
pub fn write(
    parent: &Path,
    name: &str,
    world: PluginKind,
    lang: Lang,
    sdk: Option<SdkSource>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    match lang {
        Lang::Rust => {}
        Lang::Python => return Err(ScaffoldError::Unsupported("python")),
        Lang::Js => return Err(ScaffoldError::Unsupported("js")),
    }
    let sdk = sdk.ok_or(ScaffoldError::NoSdk)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let crate_name = name.replace('-', "_");
    let feature = world.world();
    let sdk_line = match &sdk {
        SdkSource::Path(path) => {
            format!("biogate-sdk = {{ path = {:?}, features = [{feature:?}] }}", path.display().to_string())
        }
        SdkSource::Git(url) => format!("biogate-sdk = {{ git = {url:?}, features = [{feature:?}] }}"),
    };
    let config = gateway_config(name, &crate_name, world);
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{world}}", feature)
            .replace("{{sdk}}", &sdk_line)
            .replace("{{config}}", config.trim_end())
    };
    let lib = match world {
        PluginKind::Transform => TRANSFORM,
        PluginKind::Delivery => DELIVERY,
        PluginKind::Dialect => DIALECT,
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(lib)),
        ("README.md", fill(README)),
        ("biogate.toml", config.clone()),
        (".gitignore", "/target\n".to_string()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        let write = |path: &Path| {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(path, text.as_bytes())
        };
        write(&path).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}

/// A gateway config that loads the plugin from its release build (the project's
/// `biogate.toml`, shown in its README).
fn gateway_config(name: &str, crate_name: &str, world: PluginKind) -> String {
    let head = format!(
        "[plugins.{name}]\nkind = \"{}\"\npath = \"target/wasm32-wasip2/release/{crate_name}.wasm\"\n",
        world.world()
    );
    let rest = match world {
        PluginKind::Transform => format!(
            "config = {{ prefix = \"HR-\" }}\n\n[routes.hr]\ntransforms = [\"{name}\"]\n\
             sink = {{ type = \"callback\", url = \"https://hr.example.com/biogate\" }}\n"
        ),
        PluginKind::Delivery => format!(
            "allowed_hosts = [\"https://hr.example.com\"]\nconfig = {{ url = \"https://hr.example.com/punches\" }}\n\n\
             [routes.hr]\nsink = {{ type = \"plugin\", plugin = \"{name}\" }}\n"
        ),
        PluginKind::Dialect => format!("http_mount = \"/{name}\"\n"),
    };
    format!("{head}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk() -> Option<SdkSource> {
        Some(SdkSource::Path("/opt/biogate/sdk".into()))
    }

    #[test]
    fn a_project_names_its_world_and_sdk_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = write(dir.path(), "hr-export", PluginKind::Delivery, Lang::Rust, sdk()).expect("written");
        assert_eq!(files.len(), 5);
        let manifest = std::fs::read_to_string(dir.path().join("hr-export/Cargo.toml")).expect("Cargo.toml");
        assert!(
            manifest.contains(r#"biogate-sdk = { path = "/opt/biogate/sdk", features = ["delivery"] }"#),
            "{manifest}"
        );
        let lib = std::fs::read_to_string(dir.path().join("hr-export/src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("export_delivery!(Plugin)") && !lib.contains("{{"), "{lib}");
        let config = std::fs::read_to_string(dir.path().join("hr-export/biogate.toml")).expect("biogate.toml");
        assert!(config.contains("hr_export.wasm") && config.contains("allowed_hosts"), "{config}");
        assert!(matches!(
            write(dir.path(), "hr-export", PluginKind::Delivery, Lang::Rust, sdk()),
            Err(ScaffoldError::Exists(_))
        ));
    }

    #[test]
    fn bad_names_other_languages_and_a_missing_sdk_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["HR", "1x", "a b", "../x", ""] {
            assert!(matches!(
                write(dir.path(), name, PluginKind::Transform, Lang::Rust, sdk()),
                Err(ScaffoldError::BadName(_))
            ));
        }
        assert!(matches!(
            write(dir.path(), "x", PluginKind::Transform, Lang::Python, sdk()),
            Err(ScaffoldError::Unsupported("python"))
        ));
        assert!(matches!(write(dir.path(), "x", PluginKind::Transform, Lang::Rust, None), Err(ScaffoldError::NoSdk)));
    }
}
