//! `cargo xtask examples`: builds the Python and JavaScript example plugins of
//! plugins/examples/ into `target/plugins/examples/<name>.wasm`, with the tools pinned in
//! plugins/examples/python/requirements.txt (componentize-py, from PyPI) and
//! plugins/examples/js/package-lock.json (jco, and the componentize-js it builds with, from
//! npm), installed
//! under `target/tools/` (a Python venv and an npm folder), never globally.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths::Paths;
use crate::plugins::check_component;
use crate::system::{self, Apt};

/// The language an example is written in, which says the tool that builds it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Js,
}

/// One example plugin.
struct Example {
    /// Its folder under plugins/examples/<lang>/.
    name: &'static str,
    /// The component's name: `target/plugins/examples/<component>.wasm`.
    component: &'static str,
    lang: Lang,
    /// The source file in its folder (for Python, the module `app`).
    source: &'static str,
    /// The world of sdk/wit it implements.
    world: &'static str,
    /// JavaScript: built with jco's fetch support left in (no `-d http fetch-event`), so
    /// the component imports wasi:http: what `biogate check` must refuse, with the fix.
    keep_fetch: bool,
}

const EXAMPLES: [Example; 5] = [
    Example {
        name: "badge-normalise",
        component: "badge-normalise",
        lang: Lang::Python,
        source: "app.py",
        world: "transform",
        keep_fetch: false,
    },
    Example {
        name: "ndjson-post",
        component: "ndjson-post",
        lang: Lang::Python,
        source: "app.py",
        world: "delivery",
        keep_fetch: false,
    },
    Example {
        name: "overtime-by-hour",
        component: "overtime-by-hour",
        lang: Lang::Js,
        source: "overtime.js",
        world: "transform",
        keep_fetch: false,
    },
    Example {
        name: "hr-webhook",
        component: "hr-webhook",
        lang: Lang::Js,
        source: "hr-webhook.js",
        world: "delivery",
        keep_fetch: false,
    },
    // For the tests of `biogate check` and the loader: built the way jco's README says.
    Example {
        name: "overtime-by-hour",
        component: "overtime-by-hour-with-fetch",
        lang: Lang::Js,
        source: "overtime.js",
        world: "transform",
        keep_fetch: true,
    },
];

/// The componentize-py version of requirements.txt, checked against the installed one.
const COMPONENTIZE_PY: &str = "0.25.1";

/// Installs the pinned tools when missing, then builds every example whose component is
/// older than its source or the WIT.
pub fn build(paths: &Paths, apt: &mut Apt) -> Result<()> {
    let started = Instant::now();
    let tools = Tools::ensure(paths, apt)?;
    let out_dir = paths.components_dir().join("examples");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let wit = paths.root().join("sdk").join("wit");
    for example in &EXAMPLES {
        let dir = examples_dir(paths).join(example.lang.folder()).join(example.name);
        let source = dir.join(example.source);
        let out = out_dir.join(format!("{}.wasm", example.component));
        // The sources, the contract, and the pinned tools that build them.
        let mut inputs = files_in(&dir)?;
        inputs.extend([wit.join("worlds.wit"), wit.join("types.wit")]);
        inputs.push(match example.lang {
            Lang::Python => examples_dir(paths).join("python").join("requirements.txt"),
            Lang::Js => examples_dir(paths).join("js").join("package-lock.json"),
        });
        if is_newer_than(&out, &inputs) {
            println!("  {:<28} up to date", example.component);
            continue;
        }
        // A failed or invalid build leaves no component behind that a later run would
        // take for up to date.
        let _ = fs::remove_file(&out);
        let mut build = match example.lang {
            Lang::Python => tools.componentize_py(&wit, example, &copy_to_build_dir(paths, &dir)?, &out),
            Lang::Js => tools.jco(&wit, example, &source, &out),
        };
        let built = cmd::run(&mut build)
            .with_context(|| format!("building the example plugin {} failed", example.component))
            .and_then(|()| check_component(&out));
        if let Err(error) = built {
            let _ = fs::remove_file(&out);
            return Err(error);
        }
        let size = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        println!("  {:<28} {:>9} bytes  target/plugins/examples/{}.wasm", example.component, size, example.component);
    }
    println!("xtask: example plugins ready in {:.1?}", started.elapsed());
    Ok(())
}

impl Lang {
    fn folder(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

fn examples_dir(paths: &Paths) -> PathBuf {
    paths.plugins_dir().join("examples")
}

/// A fresh copy of a Python example's folder under target/tools/python-build/.
fn copy_to_build_dir(paths: &Paths, dir: &Path) -> Result<PathBuf> {
    let name = dir.file_name().context("an example folder has no name")?;
    let copy = paths.root().join("target").join("tools").join("python-build").join(name);
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(&copy).with_context(|| format!("cannot create {}", copy.display()))?;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), copy.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(copy)
}

/// The files of a folder (not below it).
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Whether `out` exists and is newer than every input.
fn is_newer_than(out: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(out) else { return false };
    inputs.iter().all(|input| modified(input).is_some_and(|changed| changed <= built))
}

/// The installed build tools.
pub(crate) struct Tools {
    pub(crate) componentize_py: PathBuf,
    pub(crate) jco: PathBuf,
}

impl Tools {
    /// Installs the pinned tools under target/tools when they are missing.
    pub(crate) fn ensure(paths: &Paths, apt: &mut Apt) -> Result<Tools> {
        let tools_dir = paths.root().join("target").join("tools");
        Ok(Tools {
            componentize_py: ensure_componentize_py(paths, &tools_dir.join("python"), apt)?,
            jco: ensure_jco(paths, &tools_dir.join("js"), apt)?,
        })
    }

    /// `componentize-py -d <wit> -w <world> componentize app -o <out>`, run in a copy of
    /// the example's folder (the module `app` is found there; the build leaves a
    /// `__pycache__` beside it).
    fn componentize_py(&self, wit: &Path, example: &Example, dir: &Path, out: &Path) -> Command {
        let mut command = Command::new(&self.componentize_py);
        command.current_dir(dir).arg("-d").arg(wit).args(["-w", example.world, "componentize", "app", "-o"]).arg(out);
        command
    }

    /// `jco componentize <source> --wit <wit> -n <world> -d http fetch-event -o <out>`:
    /// without the two `-d`, the component imports wasi:http, which a plugin is never given.
    fn jco(&self, wit: &Path, example: &Example, source: &Path, out: &Path) -> Command {
        let mut command = Command::new(&self.jco);
        command.arg("componentize").arg(source).arg("--wit").arg(wit).args(["-n", example.world]);
        if !example.keep_fetch {
            command.args(["-d", "http", "fetch-event"]);
        }
        command.arg("-o").arg(out);
        command
    }
}

/// Node.js's major and minor version.
fn node_version() -> Option<(u32, u32)> {
    let text = cmd::stdout(Command::new("node").arg("--version")).ok()?;
    let mut parts = text.trim().trim_start_matches('v').split('.').filter_map(|p| p.parse::<u32>().ok());
    Some((parts.next()?, parts.next()?))
}

/// Whether Node.js has what the tools and the test harness of new JavaScript plugins use
/// (`module.register`: 18.19+ or 20.6+).
fn node_is_recent() -> bool {
    matches!(node_version(), Some((major, minor)) if major > 20 || (major, minor) >= (20, 6) || (major == 18 && minor >= 19))
}

/// componentize-py in a venv of its own under target/tools/python.
fn ensure_componentize_py(paths: &Paths, venv: &Path, apt: &mut Apt) -> Result<PathBuf> {
    let tool = venv.join("bin").join("componentize-py");
    let version = |tool: &Path| cmd::stdout(Command::new(tool).arg("--version")).unwrap_or_default();
    if version(&tool).contains(COMPONENTIZE_PY) {
        return Ok(tool);
    }
    let python = system::find_program("python3", &[]).context(
        "the Python example plugins are built with componentize-py, which needs python3 (3.10+): install python3",
    )?;
    if !venv.join("bin").join("pip").is_file() {
        let _ = fs::remove_dir_all(venv);
        let mut create = Command::new(&python);
        create.arg("-m").arg("venv").arg(venv);
        if cmd::run(&mut create).is_err() {
            if !Apt::can_install() {
                bail!(
                    "python3 cannot create a venv: install the python3-venv package (`sudo apt-get install python3-venv`)"
                );
            }
            apt.install(&["python3-venv"])?;
            let _ = fs::remove_dir_all(venv);
            cmd::run(&mut create).context("python3 still cannot create a venv after installing python3-venv")?;
        }
    }
    let requirements = examples_dir(paths).join("python").join("requirements.txt");
    cmd::run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "-r"]).arg(&requirements))
        .context("installing componentize-py from PyPI failed")?;
    if !version(&tool).contains(COMPONENTIZE_PY) {
        bail!("{} is not componentize-py {COMPONENTIZE_PY} after pip install", tool.display());
    }
    Ok(tool)
}

/// jco and its componentize-js, as locked in plugins/examples/js/package-lock.json, installed
/// with `npm ci` under target/tools/js.
fn ensure_jco(paths: &Paths, prefix: &Path, apt: &mut Apt) -> Result<PathBuf> {
    let tool = prefix.join("node_modules").join(".bin").join("jco");
    let source = examples_dir(paths).join("js");
    let lock =
        fs::read(source.join("package-lock.json")).context("plugins/examples/js/package-lock.json is missing")?;
    // A copy of the lock file written after `npm ci` succeeded: what is installed.
    let installed_lock = prefix.join("installed.package-lock.json");
    if tool.is_file() && fs::read(&installed_lock).is_ok_and(|installed| installed == lock) {
        return Ok(tool);
    }
    let npm = match system::find_program("npm", &[]) {
        Some(_) if !node_is_recent() => bail!(
            "the JavaScript examples and the tests of new JavaScript plugins need Node.js 18.19+ or 20.6+ \
             (`module.register` for the test harness); `node --version` says {}: install a newer Node.js",
            node_version().map(|(a, b)| format!("{a}.{b}")).unwrap_or_else(|| "nothing".into())
        ),
        Some(npm) => npm,
        None if Apt::can_install() => {
            apt.install(&["nodejs", "npm"])?;
            let npm = system::find_program("npm", &[]).context("apt-get installed npm but no npm program was found")?;
            if !node_is_recent() {
                bail!("apt-get installed a Node.js older than 18.19: install Node.js 20.6+ (nodejs.org)");
            }
            npm
        }
        None => bail!(
            "the JavaScript example plugins are built with jco, which needs Node.js 18.19+ or 20.6+ with npm: install them \
             (`sudo apt-get install nodejs npm`)"
        ),
    };
    fs::create_dir_all(prefix).with_context(|| format!("cannot create {}", prefix.display()))?;
    fs::copy(source.join("package.json"), prefix.join("package.json")).context("cannot copy package.json")?;
    fs::write(prefix.join("package-lock.json"), &lock).context("cannot copy package-lock.json")?;
    cmd::run(Command::new(npm).current_dir(prefix).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]))
        .context("installing jco and componentize-js from npm failed")?;
    if !tool.is_file() {
        bail!("npm ci did not install {}", tool.display());
    }
    fs::write(&installed_lock, &lock).with_context(|| format!("cannot write {}", installed_lock.display()))?;
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tool versions are written in the examples' pins, in `biogate plugin new`'s
    /// templates and here: they must agree.
    #[test]
    fn the_pinned_tools_agree_everywhere() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let pin = format!("componentize-py=={COMPONENTIZE_PY}");
        assert!(read("plugins/examples/python/requirements.txt").contains(&pin));
        assert!(read("host/src/scaffold/mod.rs").contains(&pin));
        let jco = "\"@bytecodealliance/jco\": \"1.34.0\"";
        assert!(read("plugins/examples/js/package.json").contains(jco));
        assert!(read("host/src/scaffold/js/package.json.tmpl").contains(jco));
    }
}
