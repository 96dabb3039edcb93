//! `biogate-loadsim`: thousands of simulated devices against a running gateway.
//!
//! 1. `biogate-loadsim config --devices 1000 --callback http://127.0.0.1:9900/callback
//!    --plugin target/plugins/zkteco-adms.wasm --mqtt mqtt://127.0.0.1:1883 > sim.toml`
//!    writes a gateway config registering the fleet and a route to the simulator's receiver;
//! 2. `biogate serve --config sim.toml` (note the address it prints);
//! 3. `biogate-loadsim run --gateway http://127.0.0.1:<port> --devices 1000
//!    --receiver-listen 127.0.0.1:9900 --mqtt mqtt://127.0.0.1:1883 --duration 60`
//!    runs the fleet, then checks that every punch arrived once and in order per device,
//!    and prints throughput, latencies and the checker's findings (exit status 1 when the
//!    checker found a problem).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use biogate_e2e::loadsim::{self, Checker, Fleet, FleetConfig, LoadReceiver, Mix, Protocol};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "biogate-loadsim", about = "Simulated device fleets against a biogate gateway")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Prints a gateway config (TOML) for the fleet.
    Config {
        /// Number of devices.
        #[arg(long, default_value_t = 100)]
        devices: usize,
        /// Protocol mix native:adms:mqtt.
        #[arg(long, default_value = "4:3:3")]
        mix: Mix,
        /// The simulator's callback URL (its `--receiver-listen` address + `/callback`).
        #[arg(long, default_value = "http://127.0.0.1:9900/callback")]
        callback: String,
        /// The zkteco-adms plugin (for ADMS devices).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The broker URL (for MQTT devices), `mqtt://host:port`.
        #[arg(long)]
        mqtt: Option<String>,
        /// The admin API key to configure.
        #[arg(long, default_value = "loadsim-admin-key-0123456789")]
        admin_key: String,
    },
    /// Runs the fleet against a gateway configured by `config`.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The gateway's base URL.
    #[arg(long)]
    gateway: String,
    /// Number of devices (as in `config`).
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Protocol mix native:adms:mqtt (as in `config`).
    #[arg(long, default_value = "4:3:3")]
    mix: Mix,
    /// Punches per device per minute.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of punching (after the connection ramp).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds over which the devices connect.
    #[arg(long)]
    ramp: Option<f64>,
    /// The broker URL, `mqtt://host:port`.
    #[arg(long)]
    mqtt: Option<String>,
    /// Where the callback receiver listens.
    #[arg(long, default_value = "127.0.0.1:9900")]
    receiver_listen: SocketAddr,
    /// REST add_user operations per second.
    #[arg(long, default_value_t = 2.0)]
    commands_per_second: f64,
    /// The admin API key (as in `config`).
    #[arg(long, default_value = "loadsim-admin-key-0123456789")]
    admin_key: String,
    /// ADMS getrequest interval, seconds.
    #[arg(long, default_value_t = 5.0)]
    adms_poll: f64,
    /// Native long-poll wait, milliseconds.
    #[arg(long, default_value_t = 25_000)]
    long_poll_ms: u64,
    /// Log time of punch 0, Unix seconds (use a new one for each run on one data dir).
    #[arg(long)]
    epoch: Option<u64>,
    /// The gateway's pid, to report its memory (VmRSS, VmHWM).
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Seconds to wait for the last deliveries after the devices stop.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
}

fn broker(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url).trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

fn memory(pid: Option<u32>) -> String {
    match pid.and_then(loadsim::memory_kib) {
        Some((rss, hwm)) => {
            format!("gateway VmRSS {:.1} MiB, VmHWM {:.1} MiB", rss as f64 / 1024.0, hwm as f64 / 1024.0)
        }
        None => "gateway memory unknown (no --gateway-pid)".into(),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let checker = Arc::new(Checker::new(args.devices));
    let receiver = LoadReceiver::start(checker.clone(), args.receiver_listen).await?;
    eprintln!("receiver at {}", receiver.url);
    let mut config = FleetConfig::new(&args.gateway, args.devices);
    config.mix = args.mix;
    config.punches_per_minute = args.rate;
    config.mqtt = match &args.mqtt {
        Some(url) => Some(broker(url).ok_or_else(|| anyhow::anyhow!("--mqtt {url:?}: write mqtt://host:port"))?),
        None => None,
    };
    if config.mqtt.is_none() && args.mix.uses(Protocol::Mqtt, args.devices) {
        anyhow::bail!("the mix has MQTT devices: pass --mqtt mqtt://host:port (or a mix like 1:1:0)");
    }
    if let Some(ramp) = args.ramp {
        config.ramp = Duration::from_secs_f64(ramp);
    }
    config.commands_per_second = args.commands_per_second;
    config.admin_key = args.admin_key.clone();
    config.adms_poll = Duration::from_secs_f64(args.adms_poll);
    config.long_poll_ms = args.long_poll_ms;
    if let Some(epoch) = args.epoch {
        config.epoch = epoch;
    }
    let fleet = Fleet::start(&config, checker.clone()).await;
    eprintln!(
        "{} devices started; punching from {:?} on",
        args.devices,
        fleet.punching_from().saturating_duration_since(fleet.started)
    );
    tokio::time::sleep_until(fleet.punching_from().into()).await;
    let mut windows = Vec::new();
    let mut left = args.duration;
    while left > 0 {
        let step = left.min(10);
        let window = fleet.window(Duration::from_secs(step)).await;
        let (sent, delivered) = checker.progress();
        eprintln!(
            "{:.0} punches/s acked, {:.0} arrivals/s; sent {sent}, delivered {delivered}; {}; {}",
            window.punches_per_second,
            window.arrivals_per_second,
            fleet.stats().line(),
            memory(args.gateway_pid)
        );
        windows.push(window);
        left -= step;
    }
    fleet.stop();
    let drained = checker.wait_all_delivered(Duration::from_secs(args.drain_timeout)).await;
    let total: f64 = windows.iter().map(|w| w.punches_per_second * w.elapsed.as_secs_f64()).sum();
    let secs: f64 = windows.iter().map(|w| w.elapsed.as_secs_f64()).sum();
    let latency = checker.take_latency();
    let report = checker.report();
    println!(
        "devices {} (mix {}:{}:{}), {} punches/device/min",
        args.devices, args.mix.native, args.mix.adms, args.mix.mqtt, args.rate
    );
    println!("ingest: {:.0} punches/s acknowledged over {secs:.0} s", total / secs.max(1e-9));
    println!(
        "punch to callback: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        latency.p50, latency.p99, latency.max, latency.count
    );
    for protocol in Protocol::ALL {
        let l = fleet.commands.take(protocol);
        if l.count > 0 {
            println!(
                "REST add_user to {} device confirmation: p50 {:.1} ms, p99 {:.1} ms ({} ops)",
                protocol.name(),
                l.p50,
                l.p99,
                l.count
            );
        }
    }
    println!(
        "operations: {} submitted, {} not done",
        fleet.commands.submitted.load(std::sync::atomic::Ordering::Relaxed),
        fleet.commands.failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("devices: {}", fleet.stats().line());
    println!("{}", memory(args.gateway_pid));
    println!("checker: {report}{}", if drained { "" } else { " (drain timed out)" });
    Ok(report.is_clean())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Config { devices, mix, callback, plugin, mqtt, admin_key } => {
            print!(
                "{}",
                loadsim::gateway_config(
                    devices,
                    mix,
                    &callback,
                    &loadsim::patient_retry_schedule(1),
                    plugin.as_deref(),
                    mqtt.as_deref(),
                    &admin_key
                )
            );
            Ok(())
        }
        Cmd::Run(args) => {
            if !run(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
