//! `cargo xtask bench`: builds in release, runs every benchmark of the host (each against
//! a baseline measured in the same run) and writes BENCHMARKS.md from their tables, with
//! the machine they ran on and the command that reproduces them.

use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;
use crate::paths::Paths;
use crate::plugins::{self, Profile};
use crate::system::Apt;
use crate::test::{cargo, ensure_mosquitto, step};
use crate::toolchain::{self, Choice};

/// The benchmarks, in the order of the flow, with what each measures.
const BENCHES: &[(&str, &str, &str)] = &[
    (
        "plugin_call",
        "Plugin calls (issue 2)",
        "A punch-sized event through a Wasm transform on a reused and on a fresh instance, for plugins in Rust, Python (componentize-py) and JavaScript (jco); baseline of each: a native function doing the same work.",
    ),
    (
        "event_store",
        "Event stores: the A/B behind the event log (issue 16)",
        "The journal's append workload (64 devices, batches of 1 and of 100 punches, each append durable before the next) and its reads, on sled alone, on fjall (the maintained LSM crate), on biogate's segment log alone, and on the log with a sled or fjall index, measured in the same run (host/benches/event_store.rs says what each does). The gateway uses the log with a sled index per append.",
    ),
    (
        "pipeline",
        "Punch pipeline (issue 3)",
        "A real `biogate` process (release), 64 devices on the native protocol, a real callback receiver, all on loopback. Durable: a reply means fsync'd. Baseline: a no-op axum handler with the same client.",
    ),
    (
        "operations",
        "Operations and LoadLog (issue 4)",
        "REST call to device confirmation with a long-polling native device; LoadLog pages over one million stored punches. Baselines: a no-op HTTP round trip; the same rows read straight from the store.",
    ),
    (
        "adms",
        "ZKTeco ADMS dialect (issue 5)",
        "ATTLOG uploads of 100 lines through the `zkteco-adms` Wasm plugin, durable; baseline: the same punches through the native protocol in the same run.",
    ),
    (
        "mqtt",
        "MQTT devices (issue 6)",
        "Devices publishing through a real Mosquitto on loopback, stored durably before PUBACK; REST call to an MQTT device's confirmation. Baselines: the broker alone (a plain subscriber), a no-op HTTP round trip.",
    ),
    (
        "delivery",
        "Delivery after an outage (issue 16)",
        "A real gateway (release), 1,000 native devices, one callback route to a receiver on loopback. Drain: a backlog stored while the receiver was down, delivered after a restart (punches/s, CPU per punch of the gateway and of the receiver). Resume: the default retry schedule, the receiver down for a while, then back: time to every waiting device's first delivery. `BIOGATE_BIN_BEFORE` adds an older build as the baseline, measured in the same run.",
    ),
    (
        "scale",
        "Scale: many devices, receiver outage, restart with a backlog (issue 7)",
        "The load simulator (`biogate-loadsim`, tests/src/loadsim) runs native, ADMS and MQTT devices (4:3:3) against a real gateway, a real Mosquitto and a callback receiver whose checker verifies every punch arrived once and in order. Baselines: a no-op HTTP round trip, the idle gateway's memory, the start of an empty gateway.",
    ),
];

/// Runs the benchmarks and writes BENCHMARKS.md. `only` limits them by name; a partial
/// run writes `target/bench-selected.md` instead, so BENCHMARKS.md stays one run.
pub fn run(paths: &Paths, choice: Choice, only: &[String]) -> Result<()> {
    let mut apt = Apt::default();
    step("wasm toolchain and plugins");
    let wasm = toolchain::ensure(choice, &mut apt)?;
    plugins::build_with(paths, &wasm, Profile::Release)?;
    if only.is_empty() || only.iter().any(|name| name == "plugin_call") {
        crate::examples::build(paths, &mut apt)?;
    }
    let mosquitto = ensure_mosquitto(&mut apt)?;

    let mut sections = String::new();
    let mut measured: Vec<(&str, String)> = Vec::new();
    for (name, title, what) in BENCHES.iter().filter(|(n, ..)| only.is_empty() || only.iter().any(|o| o == n)) {
        step(&format!("cargo bench --bench {name}"));
        let output = cmd::stdout(
            cargo()
                .current_dir(paths.root())
                .args(["bench", "-p", "biogate", "--bench", name])
                .env("BIOGATE_MOSQUITTO", &mosquitto)
                .env("BIOGATE_PLUGINS_DIR", paths.components_dir()),
        )
        .with_context(|| format!("the `{name}` benchmark failed"))?;
        print!("{output}");
        let table: Vec<&str> = output.lines().filter(|l| l.trim_start().starts_with('|')).collect();
        // Criterion benches print no table: keep their result lines (name, time, change).
        let figures = if table.is_empty() {
            let lines: Vec<&str> = output
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| {
                    !["Benchmarking", "Warning", "Found", "Gnuplot"].iter().any(|w| l.trim_start().starts_with(w))
                })
                .filter(|l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit()) || l.contains("time:"))
                .collect();
            format!("```text\n{}\n```", lines.join("\n"))
        } else {
            table.join("\n")
        };
        let section = format!(
            "## {title}\n\n{what}\n\nReproduce: `cargo bench -p biogate --bench {name}` (after `cargo xtask plugins` and `cargo xtask examples`).\n\n{figures}\n\n"
        );
        sections.push_str(&section);
        measured.push((title, section));
    }
    if !only.is_empty() {
        let path = paths.root().join("target").join("bench-selected.md");
        std::fs::write(&path, &sections).with_context(|| format!("writing {}", path.display()))?;
        return replace_sections(paths, &measured);
    }
    let doc = format!(
        "# biogate benchmarks\n\nGenerated by `cargo xtask bench` (release builds; every figure next to a baseline \
         measured in the same run, on the same machine). Do not edit by hand: run the command again.\n\n\
         Machine: {}\n\n{sections}",
        machine()
    );
    let path = paths.root().join("BENCHMARKS.md");
    std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: wrote {}", path.display());
    Ok(())
}

/// A partial run: its sections replace theirs in BENCHMARKS.md, each saying when it was
/// measured (the header's date is the full run's).
fn replace_sections(paths: &Paths, measured: &[(&str, String)]) -> Result<()> {
    let path = paths.root().join("BENCHMARKS.md");
    let mut doc = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (title, section) in measured {
        let header = format!("## {title}\n");
        let Some(start) = doc.find(&header) else {
            println!("xtask: BENCHMARKS.md has no section {title:?}: run `cargo xtask bench` for the whole file");
            continue;
        };
        let end = doc[start + header.len()..].find("\n## ").map_or(doc.len(), |i| start + header.len() + i + 1);
        let (head, body) = section.split_at(header.len());
        let dated = format!("{head}\nMeasured on its own ({}), after the rest of this file.\n{body}", machine());
        doc.replace_range(start..end, &dated);
    }
    std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: replaced {} section(s) of {}", measured.len(), path.display());
    Ok(())
}

/// What the benchmarks ran on: CPU, cores, memory, OS, compiler, date.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string());
    let rustc = cmd::stdout(Command::new("rustc").arg("-V")).unwrap_or_default();
    let date = cmd::stdout(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    format!(
        "{} ({cores} cores), {:.0} GiB, {}, {}, {}",
        cpu.unwrap_or_else(|| "unknown CPU".into()),
        mem_gib.unwrap_or(0.0),
        os.unwrap_or_else(|| "unknown OS".into()),
        rustc.trim(),
        date.trim()
    )
}
