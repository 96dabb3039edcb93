//! The scenario runner: the gateway config for a simulated fleet, and the fleet itself
//! (thousands of devices started gradually, run, stopped), with a summary of a window of
//! the run.
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::checker::Checker;
use super::commands::{self, CommandStats};
use super::context::{Context, Stats, http_clients};
use super::plan::{self, Mix, Protocol, Schedule, TOKEN};
use super::{adms, mqtt, native};

/// How to run a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The gateway, `http://127.0.0.1:<port>`.
    pub base: String,
    /// The broker as (host, port); MQTT devices need it.
    pub mqtt: Option<(String, u16)>,
    /// The gateway's `[mqtt] topic_prefix`.
    pub prefix: String,
    /// Devices `0..devices`.
    pub devices: usize,
    /// Which device speaks which protocol.
    pub mix: Mix,
    /// Punches per device per minute.
    pub punches_per_minute: f64,
    /// Punches per device at most.
    pub punch_limit: Option<u64>,
    /// Log time of punch 0 (seconds since the Unix epoch).
    pub epoch: u64,
    /// Native long-poll `wait_ms`.
    pub long_poll_ms: u64,
    /// ADMS `getrequest` interval.
    pub adms_poll: Duration,
    /// How long a native or ADMS device waits before sending a failed upload again.
    pub upload_retry: Duration,
    /// Devices are started over this long (connection ramp).
    pub ramp: Duration,
    /// REST `add_user` operations per second (0: none).
    pub commands_per_second: f64,
    /// REST operations in all at most (`None`: until stopped).
    pub command_limit: Option<u64>,
    /// The admin API key, for the operations.
    pub admin_key: String,
}

impl FleetConfig {
    /// A fleet of `devices` with the defaults: mix 4:3:3, one punch per device per minute,
    /// long-polls of 25 s, ADMS polls every 5 s, failed uploads sent again after 1 s, no
    /// command traffic.
    pub fn new(base: &str, devices: usize) -> FleetConfig {
        FleetConfig {
            base: base.to_string(),
            mqtt: None,
            prefix: "biogate".into(),
            devices,
            mix: Mix::default(),
            punches_per_minute: 1.0,
            punch_limit: None,
            epoch: plan::default_epoch(),
            long_poll_ms: 25_000,
            adms_poll: Duration::from_secs(5),
            upload_retry: Duration::from_secs(1),
            ramp: Duration::from_millis(devices as u64 / 2),
            commands_per_second: 0.0,
            command_limit: None,
            admin_key: String::new(),
        }
    }
}

/// A gateway config (TOML) for devices `0..devices` of `mix`: every device registered with
/// [`TOKEN`] at UTC+00:00, a callback route of every device to `callback` with the given
/// retry schedule, the ADMS plugin at `plugin` (mounted at `/iclock`), the broker at
/// `mqtt_url`, and `admin_key`.
pub fn gateway_config(
    devices: usize,
    mix: Mix,
    callback: &str,
    retry_schedule: &[&str],
    plugin: Option<&Path>,
    mqtt_url: Option<&str>,
    admin_key: &str,
) -> String {
    // The simulated fleet connects from one address (127.0.0.1), where a real one has an
    // address per site: the per-address cap (256 by default) is raised to the total cap.
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nmax_connections_per_ip = 16384\n\
         [admin]\napi_keys = [\"{admin_key}\"]\n"
    );
    if let Some(url) = mqtt_url {
        text.push_str(&format!("[mqtt]\nurl = \"{url}\"\nclient_id = \"biogate-loadsim\"\n"));
    }
    if let Some(plugin) = plugin {
        text.push_str(&format!(
            "[plugins.zkteco]\nkind = \"dialect\"\npath = {:?}\n[plugins.zkteco.config]\ndelay = 5\n",
            plugin.display().to_string()
        ));
    }
    for index in 0..devices {
        let id = plan::device_id(mix.protocol(index), index);
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+00:00\"\n"));
    }
    let schedule = retry_schedule.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    text.push_str(&format!(
        "[routes.loadsim]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [{schedule}]\nsink = {{ type = \"callback\", url = \"{callback}\" }}\n"
    ));
    text
}

/// A retry schedule for outage scenarios: quick first retries, then every second for
/// `hours` hours (a receiver that is back is retried within a second).
pub fn patient_retry_schedule(hours: usize) -> Vec<&'static str> {
    let mut schedule = vec!["100ms", "250ms", "500ms"];
    schedule.extend(std::iter::repeat_n("1s", hours * 3600));
    schedule
}

/// A running fleet.
pub struct Fleet {
    ctx: Arc<Context>,
    devices: usize,
    mix: Mix,
    stop: watch::Sender<bool>,
    /// The command traffic's figures.
    pub commands: Arc<CommandStats>,
    /// When the fleet started.
    pub started: Instant,
}

/// A window of a run, summarised.
#[derive(Debug, Clone)]
pub struct Window {
    /// How long the window lasted.
    pub elapsed: Duration,
    /// Punches acknowledged per second in the window.
    pub punches_per_second: f64,
    /// Punch arrivals at the receiver per second in the window.
    pub arrivals_per_second: f64,
}

impl Fleet {
    /// Starts the devices of `config`, reporting to `checker`, spread over `config.ramp`.
    /// Returns once every device task is spawned.
    pub async fn start(config: &FleetConfig, checker: Arc<Checker>) -> Fleet {
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let ramp = config.ramp;
        let ctx = Arc::new(Context {
            base: config.base.clone(),
            mqtt: config.mqtt.clone(),
            prefix: config.prefix.clone(),
            epoch: config.epoch,
            // Punches start once every device is connected.
            schedule: Schedule::per_minute(
                started + ramp + Duration::from_secs(1),
                config.punches_per_minute,
                config.punch_limit,
            ),
            punching_until: OnceLock::new(),
            max_batch: 100,
            upload_retry: config.upload_retry,
            long_poll_ms: config.long_poll_ms,
            adms_poll: config.adms_poll,
            clients: http_clients(config.devices),
            checker,
            stats: Stats::default(),
            stop: stopped,
        });
        for index in 0..config.devices {
            if !ramp.is_zero() {
                tokio::time::sleep_until((started + ramp.mul_f64(index as f64 / config.devices as f64)).into()).await;
            }
            match config.mix.protocol(index) {
                Protocol::Native => native::spawn(ctx.clone(), index),
                Protocol::Adms => adms::spawn(ctx.clone(), index),
                Protocol::Mqtt => mqtt::spawn(ctx.clone(), index),
            }
        }
        let commands = commands::spawn(
            ctx.clone(),
            config.mix,
            config.devices,
            config.commands_per_second,
            config.command_limit,
            config.admin_key.clone(),
        );
        Fleet { ctx, devices: config.devices, mix: config.mix, stop, commands, started }
    }

    /// The fleet's counters.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// The checker.
    pub fn checker(&self) -> &Arc<Checker> {
        &self.ctx.checker
    }

    /// When punches start (after the ramp).
    pub fn punching_from(&self) -> Instant {
        self.ctx.schedule.start
    }

    /// Runs for `length` and summarises that window.
    pub async fn window(&self, length: Duration) -> Window {
        let acked = || self.ctx.stats.punches_acked.load(std::sync::atomic::Ordering::Relaxed);
        let (a0, r0, t0) = (acked(), self.ctx.checker.arrivals(), Instant::now());
        tokio::time::sleep(length).await;
        let elapsed = t0.elapsed();
        let secs = elapsed.as_secs_f64();
        Window {
            elapsed,
            punches_per_second: (acked() - a0) as f64 / secs,
            arrivals_per_second: (self.ctx.checker.arrivals() - r0) as f64 / secs,
        }
    }

    /// Stops punching: from now on no new punch falls due, while every device keeps sending
    /// what it has not had acknowledged (a native or ADMS upload is retried until the
    /// gateway answers it). Returns how many punches the fleet sends in all, so that the
    /// caller can wait until [`Stats::punches_acked`] reaches it. Only the first call
    /// counts.
    pub fn stop_punching(&self) -> u64 {
        let until = *self.ctx.punching_until.get_or_init(Instant::now);
        let schedule = &self.ctx.schedule;
        (0..self.devices)
            .filter(|&index| self.punching(index))
            .map(|index| {
                let mut count = 0;
                while schedule.allows(count) && schedule.due(index, count) <= until {
                    count += 1;
                }
                count
            })
            .sum()
    }

    fn punching(&self, index: usize) -> bool {
        self.mix.protocol(index) != Protocol::Mqtt || self.ctx.mqtt.is_some()
    }

    /// Stops every device (their tasks end at their next await) and the command traffic.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Mosquitto binary can be found the way [`crate::mosquitto::Broker::start`]
/// looks for it (`$BIOGATE_MOSQUITTO`, `mosquitto` on the `PATH`, `/usr/sbin`,
/// `/usr/local/sbin`).
pub fn mosquitto_available() -> bool {
    if let Some(path) = std::env::var_os("BIOGATE_MOSQUITTO") {
        return Path::new(&path).is_file();
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("mosquitto")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .iter()
        .chain(
            [Path::new("/usr/sbin/mosquitto").to_path_buf(), Path::new("/usr/local/sbin/mosquitto").to_path_buf()]
                .iter(),
        )
        .any(|p| p.is_file())
}

/// Resident memory of a process from `/proc/<pid>/status`: (VmRSS, VmHWM) in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)?.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
