//! biogate's build and test tasks, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`). See `cargo xtask --help`.

mod bench;
mod cmd;
mod deps;
mod examples;
mod fuzz;
mod lint;
mod outside;
mod paths;
mod plugin_list;
mod plugins;
mod system;
mod test;
mod toolchain;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::paths::Paths;
use crate::plugins::Profile;
use crate::toolchain::Choice;

/// biogate's build and test tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build every plugin of plugins/ to a component: target/plugins/<name>.wasm.
    Plugins(PluginsArgs),
    /// Build the Python and JavaScript example plugins of plugins/examples/ with pinned
    /// tools (installed under target/tools/): target/plugins/examples/<name>.wasm.
    Examples,
    /// Lint (as `lint`), build the plugins, check the test dependencies, and run every
    /// test. Arguments after `--` go to `cargo test --workspace`.
    Test(TestArgs),
    /// What CI runs (.ci/run): the same as `test`.
    Ci(TestArgs),
    /// The quick checks that `test` starts with: rustfmt, the module graph, clippy.
    Lint,
    /// Check the module dependency rules of host/src (xtask/src/deps/allowed.rs).
    Deps(DepsArgs),
    /// The last step of `test` alone: `biogate plugin new` projects of each world built,
    /// tested and checked outside this repository, and `cargo package -p biogate-sdk`.
    Outside(PluginsArgs),
    /// Build in release, run every benchmark, and write BENCHMARKS.md.
    Bench(BenchArgs),
    /// Run the fuzz targets under libFuzzer (cargo-bolero, installed when missing), one
    /// after the other: 10 million executions each unless told otherwise.
    Fuzz(FuzzArgs),
}

#[derive(Args)]
struct PluginsArgs {
    /// Build with the release profile (the default).
    #[arg(long, conflicts_with = "debug")]
    release: bool,
    /// Build with the dev profile (quicker to build; bigger, slower components).
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    toolchain: ToolchainArgs,
}

#[derive(Args)]
struct ToolchainArgs {
    /// Which Rust builds the components: `rustup` (needs `rustup target add
    /// wasm32-wasip2`), `debian` (Debian's rustc-web with the std sources), or `auto`:
    /// rustup's when it has the target, else Debian's.
    #[arg(long, env = "BIOGATE_WASM_TOOLCHAIN", default_value = "auto")]
    wasm_toolchain: Choice,
}

#[derive(Args)]
struct TestArgs {
    #[command(flatten)]
    toolchain: ToolchainArgs,
    /// Extra arguments for `cargo test --workspace` (after `--`).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

#[derive(Args)]
struct DepsArgs {
    /// Print the arrows between top-level modules (module -> what it uses) instead of
    /// checking.
    #[arg(long)]
    print: bool,
    /// Print the arrows between files instead (alone or with --print), each with the first
    /// path that makes it.
    #[arg(long)]
    files: bool,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    toolchain: ToolchainArgs,
    /// Only these benchmarks (plugin_call, event_store, pipeline, operations, adms, mqtt,
    /// delivery, scale).
    only: Vec<String>,
}

#[derive(Args)]
struct FuzzArgs {
    /// Only these targets (adms, cams, native, mqtt, ecb, gcm).
    only: Vec<String>,
    /// Executions per target.
    #[arg(long, default_value_t = 10_000_000, conflicts_with = "time")]
    runs: u64,
    /// Seconds per target, instead of a number of executions.
    #[arg(long)]
    time: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = Paths::locate().and_then(|paths| match cli.task {
        Task::Plugins(args) => {
            let profile = if args.debug { Profile::Debug } else { Profile::Release };
            plugins::build(&paths, args.toolchain.wasm_toolchain, profile).map(|_| ())
        }
        Task::Examples => examples::build(&paths, &mut system::Apt::default()),
        Task::Outside(args) => outside::build_and_run(&paths, args.toolchain.wasm_toolchain),
        Task::Bench(args) => bench::run(&paths, args.toolchain.wasm_toolchain, &args.only),
        Task::Test(args) | Task::Ci(args) => test::run(&paths, args.toolchain.wasm_toolchain, &args.cargo_test_args),
        Task::Lint => lint::run(&paths),
        Task::Fuzz(args) => {
            let budget = match args.time {
                Some(seconds) => fuzz::Budget::Seconds(seconds),
                None => fuzz::Budget::Runs(args.runs),
            };
            fuzz::run(&paths, &args.only, budget)
        }
        Task::Deps(args) => deps::run(
            &paths,
            match (args.print, args.files) {
                (_, true) => deps::Print::Files,
                (true, false) => deps::Print::TopLevel,
                (false, false) => deps::Print::Check,
            },
        ),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
