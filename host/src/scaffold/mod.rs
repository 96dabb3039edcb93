//! `biogate plugin new`: writes a plugin project for one world that builds with one
//! documented command and has a test, ready to be edited. The templates are the files
//! beside this module, a folder per language: Rust (with biogate-sdk), Python
//! (componentize-py) and JavaScript (jco), the last two with a copy of the WIT contract.
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

/// The WIT contract, copied into Python and JavaScript projects (their tools read it).
const WIT: [(&str, &str); 2] = [
    ("wit/types.wit", include_str!("../../../sdk/wit/types.wit")),
    ("wit/worlds.wit", include_str!("../../../sdk/wit/worlds.wit")),
];

/// componentize-py, as biogate's CI builds with it (plugins/examples/python).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const PY_README: &str = include_str!("python/README.md.tmpl");
const PY_TRANSFORM: [&str; 3] = [
    include_str!("python/transform_app.py"),
    include_str!("python/transform_logic.py"),
    include_str!("python/transform_test.py"),
];
const PY_DIALECT: [&str; 3] = [
    include_str!("python/dialect_app.py"),
    include_str!("python/dialect_logic.py"),
    include_str!("python/dialect_test.py"),
];
const PY_DELIVERY: [&str; 3] = [
    include_str!("python/delivery_app.py"),
    include_str!("python/delivery_logic.py"),
    include_str!("python/delivery_test.py"),
];

const JS_README: &str = include_str!("js/README.md.tmpl");
const JS_PACKAGE: &str = include_str!("js/package.json.tmpl");
/// The test harness of a JavaScript project: stand-ins for the gateway's imports.
const JS_TEST_HOST: [(&str, &str); 9] = [
    ("test/register.js", include_str!("js/register.js")),
    ("test/hooks.js", include_str!("js/hooks.js")),
    ("test/host/testing.js", include_str!("js/testing.js")),
    ("test/host/config.js", include_str!("js/host_config.js")),
    ("test/host/outbound-http.js", include_str!("js/host_outbound_http.js")),
    ("test/host/log.js", include_str!("js/host_log.js")),
    ("test/host/kv.js", include_str!("js/host_kv.js")),
    ("test/host/clock.js", include_str!("js/host_clock.js")),
    ("test/host/commands.js", include_str!("js/host_commands.js")),
];

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
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let files = match lang {
        Lang::Rust => rust_files(name, world, sdk.ok_or(ScaffoldError::NoSdk)?),
        Lang::Python => python_files(name, world),
        Lang::Js => js_files(name, world),
    };
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

/// A project's files: (path in the project, contents).
type Files = Vec<(String, String)>;

/// `{{name}}`, `{{world}}` and `{{config}}` of a template filled in.
fn fill(template: &str, name: &str, world: PluginKind, config: &str) -> String {
    template.replace("{{name}}", name).replace("{{world}}", world.world()).replace("{{config}}", config.trim_end())
}

fn python_files(name: &str, world: PluginKind) -> Files {
    let config = gateway_config(name, &format!("{name}.wasm"), world);
    let [app, logic, test] = match world {
        PluginKind::Transform => PY_TRANSFORM,
        PluginKind::Delivery => PY_DELIVERY,
        PluginKind::Dialect => PY_DIALECT,
    };
    let mut files: Files = vec![
        ("app.py".into(), fill(app, name, world, &config)),
        ("logic.py".into(), fill(logic, name, world, &config)),
        ("test_logic.py".into(), fill(test, name, world, &config)),
        ("requirements.txt".into(), format!("{COMPONENTIZE_PY}\n")),
        ("README.md".into(), fill(PY_README, name, world, &config)),
        ("biogate.toml".into(), config.clone()),
        (".gitignore".into(), "__pycache__/\n.venv/\n*.wasm\n".into()),
    ];
    files.extend(WIT.iter().map(|(path, text)| (path.to_string(), text.to_string())));
    files
}

fn js_files(name: &str, world: PluginKind) -> Files {
    let config = gateway_config(name, &format!("{name}.wasm"), world);
    let (plugin, test) = match world {
        PluginKind::Transform => (include_str!("js/transform.js"), include_str!("js/transform.test.js")),
        PluginKind::Delivery => (include_str!("js/delivery.js"), include_str!("js/delivery.test.js")),
        PluginKind::Dialect => (include_str!("js/dialect.js"), include_str!("js/dialect.test.js")),
    };
    let mut files: Files = vec![
        ("plugin.js".into(), fill(plugin, name, world, &config)),
        ("test/plugin.test.js".into(), fill(test, name, world, &config)),
        ("package.json".into(), fill(JS_PACKAGE, name, world, &config)),
        ("README.md".into(), fill(JS_README, name, world, &config)),
        ("biogate.toml".into(), config.clone()),
        (".gitignore".into(), "node_modules/\n*.wasm\n".into()),
    ];
    files.extend(JS_TEST_HOST.iter().map(|(path, text)| (path.to_string(), text.to_string())));
    files.extend(WIT.iter().map(|(path, text)| (path.to_string(), text.to_string())));
    files
}

fn rust_files(name: &str, world: PluginKind, sdk: SdkSource) -> Files {
    let crate_name = name.replace('-', "_");
    let feature = world.world();
    let sdk_line = match &sdk {
        SdkSource::Path(path) => {
            format!("biogate-sdk = {{ path = {:?}, features = [{feature:?}] }}", path.display().to_string())
        }
        SdkSource::Git(url) => format!("biogate-sdk = {{ git = {url:?}, features = [{feature:?}] }}"),
    };
    let config = gateway_config(name, &format!("target/wasm32-wasip2/release/{crate_name}.wasm"), world);
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
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("src/lib.rs".into(), fill(lib)),
        ("README.md".into(), fill(README)),
        ("biogate.toml".into(), config.clone()),
        (".gitignore".into(), "/target\n".to_string()),
    ]
}

/// A gateway config that loads the plugin from where its build writes it (`component`,
/// relative to the project; the project's `biogate.toml`, shown in its README).
fn gateway_config(name: &str, component: &str, world: PluginKind) -> String {
    let head = format!("[plugins.{name}]\nkind = \"{}\"\npath = \"{component}\"\n", world.world());
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
    fn python_and_javascript_projects_carry_the_wit_their_tests_and_build_command() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = write(dir.path(), "py-map", PluginKind::Transform, Lang::Python, None).expect("written");
        assert!(files.iter().any(|f| f.ends_with("wit/worlds.wit")), "{files:?}");
        let readme = std::fs::read_to_string(dir.path().join("py-map/README.md")).expect("README");
        assert!(readme.contains("componentize-py -d wit -w transform componentize app -o py-map.wasm"), "{readme}");
        let config = std::fs::read_to_string(dir.path().join("py-map/biogate.toml")).expect("biogate.toml");
        assert!(config.contains("path = \"py-map.wasm\""), "{config}");

        write(dir.path(), "js-out", PluginKind::Delivery, Lang::Js, None).expect("written");
        let package = std::fs::read_to_string(dir.path().join("js-out/package.json")).expect("package.json");
        assert!(package.contains("-n delivery -d http fetch-event -o js-out.wasm"), "{package}");
        assert!(dir.path().join("js-out/test/host/outbound-http.js").is_file());
        let plugin = std::fs::read_to_string(dir.path().join("js-out/plugin.js")).expect("plugin.js");
        assert!(plugin.contains("export const deliverer") && !plugin.contains("{{"), "{plugin}");

        write(dir.path(), "py-door", PluginKind::Dialect, Lang::Python, None).expect("written");
        let config = std::fs::read_to_string(dir.path().join("py-door/biogate.toml")).expect("biogate.toml");
        assert!(config.contains("http_mount = \"/py-door\""), "{config}");
    }

    #[test]
    fn bad_names_and_a_missing_sdk_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["HR", "1x", "a b", "../x", ""] {
            assert!(matches!(
                write(dir.path(), name, PluginKind::Transform, Lang::Rust, sdk()),
                Err(ScaffoldError::BadName(_))
            ));
        }
        assert!(matches!(write(dir.path(), "x", PluginKind::Transform, Lang::Rust, None), Err(ScaffoldError::NoSdk)));
    }
}
