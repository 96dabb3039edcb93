//! The `biogate` command line.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use biogate::config::LoadedConfig;
use biogate::plugin::{EngineSettings, PluginEngine, PluginKind};
use biogate::scaffold::{Lang, SdkSource};

/// jemalloc instead of glibc's malloc: sled allocates on every insert, and glibc's malloc
/// and free (with its arena consolidation) took about an eighth of the gateway's CPU
/// under load. Measured A/B (pipeline bench): 25-35% less gateway CPU per punch in
/// batches of 100, about 3% more memory with 10,000 devices connected.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`malloc_conf`, a C string): a background thread
/// returns freed pages to the system after a second instead of ten, so the gateway's
/// memory follows its load.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(name = "biogate", version, about = "Open biometric device gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config it runs on 127.0.0.1:8750 with a local store.
    Serve {
        /// The TOML config file.
        #[arg(long, short, env = "BIOGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Override `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `server.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config file as `serve` would start it, without side effects: starts
    /// each plugin once under its limits; opens no store and writes nothing in the data
    /// folder (compiled plugins go to the user's cache folder).
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Plugin tools.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print the world a component implements, its imports and exports (marking those
    /// this gateway cannot provide).
    Inspect { file: PathBuf },
    /// Run a plugin on sample input without a gateway: prints the output (JSON) on stdout,
    /// and on stderr each call's outcome and time, the memory used and the plugin's logs.
    Run(biogate::plugin_run::RunRequest),
    /// Write a new plugin project (a folder NAME) that builds with one command and has a test.
    New {
        /// The plugin's name: lower-case letters, digits and '-'.
        name: String,
        /// The world it implements: transform, delivery or dialect.
        #[arg(long, value_parser = parse_world)]
        world: PluginKind,
        /// Its language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// biogate-sdk from this folder (a checkout's sdk/; default: the checkout this
        /// binary was built from, if it is still there).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk: Option<PathBuf>,
        /// biogate-sdk from this git repository.
        #[arg(long)]
        sdk_git: Option<String>,
    },
}

fn parse_world(text: &str) -> Result<PluginKind, String> {
    match text {
        "transform" => Ok(PluginKind::Transform),
        "delivery" => Ok(PluginKind::Delivery),
        "dialect" => Ok(PluginKind::Dialect),
        _ => Err("one of: transform, delivery, dialect".into()),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BIOGATE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::anyhow!("writing to stdout: {e}")),
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, listen, data_dir } => {
            let mut loaded = match config {
                Some(file) => LoadedConfig::from_file(&file)?,
                None => LoadedConfig::defaults(),
            };
            if let Some(listen) = listen {
                loaded.config.server.listen = listen;
            }
            if let Some(dir) = data_dir {
                loaded.config.server.data_dir = dir;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(biogate::server::serve(loaded))
        }
        Command::Check { config } => {
            let loaded = LoadedConfig::from_file(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(async { tokio::task::block_in_place(|| biogate::check::check(&loaded)) })?;
            let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            write_stdout(&format!(
                "{}: ok ({}, {}, {})\n{report}",
                config.display(),
                plural(report.plugins.len(), "plugin"),
                plural(report.routes, "route"),
                plural(report.devices, "device"),
            ))
        }
        Command::Plugin { command: PluginCommand::New { name, world, lang, dir, sdk, sdk_git } } => {
            let sdk = match (sdk, sdk_git) {
                (Some(path), _) => Some(SdkSource::Path(
                    path.canonicalize().map_err(|e| anyhow::anyhow!("--sdk {}: {e}", path.display()))?,
                )),
                (None, Some(url)) => Some(SdkSource::Git(url)),
                (None, None) => biogate::scaffold::sdk_of_this_build(),
            };
            biogate::scaffold::write(&dir, &name, world, lang, sdk)?;
            let project = dir.join(&name);
            let (test, build) = match lang {
                Lang::Rust => ("cargo test".to_string(), "cargo build --release --target wasm32-wasip2".to_string()),
                Lang::Python => (
                    "python3 -m unittest".to_string(),
                    format!("componentize-py -d wit -w {} componentize app -o {name}.wasm", world.world()),
                ),
                Lang::Js => ("npm install && npm test".to_string(), "npm run build".to_string()),
            };
            write_stdout(&format!(
                "wrote {world} plugin {name} in {}\n  test:  cd {} && {test}\n  build: {build}\n  check: biogate check --config biogate.toml\n",
                project.display(),
                project.display(),
                world = world.world(),
            ))
        }
        Command::Plugin { command: PluginCommand::Run(request) } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report =
                runtime.block_on(async { tokio::task::block_in_place(|| biogate::plugin_run::run(&request)) })?;
            eprintln!("{report}");
            write_stdout(&format!("{:#}\n", report.output))?;
            match report.faults() {
                0 => Ok(()),
                n => Err(anyhow::anyhow!("{n} of {} calls faulted", report.calls.len())),
            }
        }
        Command::Plugin { command: PluginCommand::Inspect { file } } => {
            let wasm = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let engine = PluginEngine::new(EngineSettings::default()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let cache = biogate::check::scratch_compile_cache()?;
            let (component, _) = cache
                .load_or_compile(engine.engine(), &wasm)
                .map_err(|e| anyhow::anyhow!("{}: not a Wasm component: {e:#}", file.display()))?;
            write_stdout(&biogate::plugin::inspect::describe(engine.engine(), &component).to_string())
        }
    }
}
