//! `biogate plugin run`: one plugin on sample input, without a gateway. The plugin is
//! loaded as `serve` would load it (same engine, limits, sandbox; a throw-away key/value
//! store), started once, then called on the input: a transform on each event, a delivery
//! plugin on each device's events as one batch, a dialect on one HTTP request. What it
//! produced is the output (JSON, for stdout); how each call went (outcome, time, memory)
//! is the report. The plugin's log lines go to the log as in the gateway.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::plugin::bindings::dialect::exports::biogate::plugin::dialect_handler::{DeviceContext, HttpRequest};
use crate::plugin::bindings::types::Event;
use crate::plugin::config::ConfigValue;
use crate::plugin::{
    DeliveryOutcome, EngineSettings, Limits, LoadedPlugin, PluginConfig, PluginEngine, PluginKind, PluginRuntime,
    StartCost, TransformOutcome,
};
use crate::store::Store;

/// What to run and on what (the arguments of `biogate plugin run`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunRequest {
    /// The component.
    pub file: PathBuf,
    /// Transforms and delivery plugins: events as `GET /v1/devices/{id}/events` answers
    /// them (`{"events": [...]}`, or the list alone). Dialects: one HTTP request as sent
    /// on the wire (request line, headers, blank line, body).
    #[arg(long, short)]
    pub input: PathBuf,
    /// A config value of the plugin (repeat for more).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// An origin a delivery plugin may call, as in `allowed_hosts` (repeat for more).
    #[arg(long = "allow-host", value_name = "ORIGIN")]
    pub allowed_hosts: Vec<String>,
    /// The plugin's CPU limit per call (default: its kind's).
    #[arg(long)]
    pub cpu_ms: Option<u64>,
    /// The plugin's memory cap (default: its kind's).
    #[arg(long)]
    pub memory_mib: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The device a dialect's request is handled for.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArgs {
    /// Dialects: the device id (default: what the dialect's `identify-http` says).
    #[arg(long = "device")]
    pub id: Option<String>,
    /// Dialects: the device's label.
    #[arg(long = "device-label", default_value = "")]
    pub label: String,
    /// Dialects: the device's time zone (`+05:30`).
    #[arg(long = "device-time-zone", value_name = "OFFSET", default_value = "+00:00", value_parser = parse_offset)]
    pub utc_offset_minutes: i32,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "expected KEY=VALUE".into())
}

fn parse_offset(text: &str) -> Result<i32, String> {
    crate::time::parse_utc_offset(text).ok_or_else(|| "a UTC offset such as +05:30 or -03:00".into())
}

/// How a run went.
#[derive(Debug)]
pub struct RunReport {
    pub kind: PluginKind,
    /// What the first instance's start took.
    pub start: StartCost,
    /// The memory cap, in bytes.
    pub memory_cap: usize,
    /// One line per call: what was called, its outcome and its time.
    pub calls: Vec<CallReport>,
    /// The largest linear memory any instance reached, in bytes.
    pub peak_memory: usize,
    /// Instances started, and those retired because their memory grew near the cap.
    pub instances: (u64, u64),
    /// What the plugin produced, as JSON.
    pub output: Value,
}

impl RunReport {
    /// How many calls ended in a fault.
    pub fn faults(&self) -> usize {
        self.calls.iter().filter(|c| c.fault).count()
    }
}

/// One call.
#[derive(Debug)]
pub struct CallReport {
    /// What it was called on (`event 3 (id ...)`, `batch of D1: 12 events`, `handle-http`).
    pub what: String,
    /// What it answered, or its fault.
    pub outcome: String,
    /// Wall time of the call, host calls (kv, HTTP) included.
    pub took: Duration,
    /// Whether it ended in a fault (a trap, a limit, an invalid output).
    pub fault: bool,
}

/// Loads the plugin and runs it on the input. Must run inside a tokio runtime, on a
/// thread that may block (delivery plugins send HTTP through the runtime).
pub fn run(request: &RunRequest) -> anyhow::Result<RunReport> {
    let engine =
        PluginEngine::new(EngineSettings::default()).map_err(|e| anyhow!("starting the Wasm engine: {e:#}"))?;
    let cache = crate::check::scratch_compile_cache()?;
    let wasm = std::fs::read(&request.file).with_context(|| format!("reading {}", request.file.display()))?;
    let (component, _) = cache
        .load_or_compile(engine.engine(), &wasm)
        .map_err(|e| anyhow!("{}: not a Wasm component: {e:#}", request.file.display()))?;
    let description = crate::plugin::inspect::describe(engine.engine(), &component);
    let Some(kind) = description.world else {
        bail!(
            "{} implements none of the biogate worlds (it exports: {}); see `biogate plugin inspect`",
            request.file.display(),
            description.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
        );
    };
    let makes_requests = description.imports.iter().any(|i| i.name.starts_with("biogate:plugin/outbound-http"));
    if kind == PluginKind::Delivery && makes_requests && request.allowed_hosts.is_empty() {
        bail!(
            "this delivery plugin makes HTTP requests: say where it may send them with --allow-host ORIGIN \
             (e.g. --allow-host http://127.0.0.1:9000), as `allowed_hosts` in a gateway's config"
        );
    }

    let declared = PluginConfig {
        kind,
        path: request.file.clone(),
        failure_policy: Default::default(),
        limits: Limits { cpu_ms: request.cpu_ms, memory_mib: request.memory_mib, ..Limits::default() },
        config: request.config.iter().map(|(k, v)| (k.clone(), ConfigValue::String(v.clone()))).collect(),
        allowed_hosts: request.allowed_hosts.clone(),
        http_mount: None,
    };
    declared.limits.validate(engine.settings().max_memory_mib).map_err(|e| anyhow!("{e}"))?;
    let scratch = Store::temporary().map_err(|e| anyhow!("opening a scratch store: {e}"))?;
    let runtime = PluginRuntime::new(engine, cache, scratch);
    let name = plugin_name(&request.file);
    let (plugin, _) = runtime.load(&name, &declared, Path::new("."))?;
    let start = plugin.probe().map_err(|fault| {
        anyhow!(
            "{fault}. It cannot start under these limits: `biogate check` on a config loading it says what it needs"
        )
    })?;

    let (calls, output) = match &plugin {
        LoadedPlugin::Transform(transform) => {
            let events = read_events(&request.input)?;
            let mut calls = Vec::new();
            let mut out = Vec::new();
            for (n, event) in events.iter().enumerate() {
                let started = Instant::now();
                let result = transform.transform(event);
                let took = started.elapsed();
                let fault = result.is_err();
                let outcome = match result {
                    Ok(TransformOutcome::Events(events)) => {
                        let said = match events.len() {
                            0 => "dropped".to_string(),
                            1 => "passed 1 event".to_string(),
                            n => format!("split into {n} events"),
                        };
                        out.extend(events);
                        said
                    }
                    Ok(TransformOutcome::Reject(reason)) => format!("rejected: {reason}"),
                    Ok(TransformOutcome::Retry(reason)) => format!("retry: {reason}"),
                    Err(fault) => format!("fault: {fault}"),
                };
                calls.push(CallReport { what: format!("event {} ({})", n + 1, event.id), outcome, took, fault });
            }
            (calls, json!({ "events": out }))
        }
        LoadedPlugin::Delivery(delivery) => {
            let events = read_events(&request.input)?;
            let mut batches: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
            for event in &events {
                batches.entry(event.device_id.as_str()).or_default().push(event.clone());
            }
            let mut calls = Vec::new();
            let mut results = Vec::new();
            for (device, batch) in &batches {
                let started = Instant::now();
                let result = delivery.deliver(batch);
                let took = started.elapsed();
                let fault = result.is_err();
                let (outcome, answer) = match result {
                    Ok(DeliveryOutcome::Delivered) => ("delivered".to_string(), json!("delivered")),
                    Ok(DeliveryOutcome::Reject(reason)) => (format!("rejected: {reason}"), json!({ "reject": reason })),
                    Ok(DeliveryOutcome::Retry { reason, retry_after_ms }) => (
                        format!(
                            "retry{}: {reason}",
                            retry_after_ms.map(|ms| format!(" after {ms} ms")).unwrap_or_default()
                        ),
                        json!({ "retry": reason, "retry_after_ms": retry_after_ms }),
                    ),
                    Err(fault) => (format!("fault: {fault}"), json!({ "fault": fault.to_string() })),
                };
                calls.push(CallReport {
                    what: format!("batch of {device}: {} events", batch.len()),
                    outcome,
                    took,
                    fault,
                });
                results.push(json!({ "device": device, "events": batch.len(), "outcome": answer }));
            }
            (calls, json!({ "batches": results }))
        }
        LoadedPlugin::Dialect(dialect) => {
            let http = read_http_request(&request.input)?;
            let mut calls = Vec::new();
            let started = Instant::now();
            let identified = dialect.identify_http(&http);
            let took = started.elapsed();
            let device_id = match (&identified, &request.device.id) {
                (_, Some(id)) => Some(id.clone()),
                (Ok(Ok(id)), None) => Some(id.clone()),
                _ => None,
            };
            let outcome = match &identified {
                Ok(Ok(id)) => format!("device {id}"),
                Ok(Err(error)) => format!("refused: {error:?}"),
                Err(fault) => format!("fault: {fault}"),
            };
            calls.push(CallReport { what: "identify-http".into(), outcome, took, fault: identified.is_err() });
            let mut output = json!({ "device": device_id });
            if let Some(id) = device_id {
                let device = DeviceContext {
                    device_id: id,
                    label: request.device.label.clone(),
                    utc_offset_minutes: request.device.utc_offset_minutes,
                };
                let started = Instant::now();
                let handled = dialect.handle_http(&device, &http);
                let took = started.elapsed();
                let fault = handled.is_err();
                let outcome = match handled {
                    Ok(Ok(reply)) => {
                        let said = format!("HTTP {}, {} events", reply.status, reply.events.len());
                        output["reply"] = json!({
                            "status": reply.status,
                            "headers": reply.headers,
                            "body": String::from_utf8_lossy(&reply.body),
                        });
                        output["events"] = json!(reply.events);
                        said
                    }
                    Ok(Err(error)) => {
                        output["error"] = json!(format!("{error:?}"));
                        format!("refused: {error:?}")
                    }
                    Err(fault) => {
                        output["fault"] = json!(fault.to_string());
                        format!("fault: {fault}")
                    }
                };
                calls.push(CallReport { what: "handle-http".into(), outcome, took, fault });
            }
            (calls, output)
        }
    };
    Ok(RunReport {
        kind,
        start,
        memory_cap: declared.effective_limits().memory_bytes(),
        calls,
        peak_memory: plugin.stats().peak_memory_bytes().max(start.memory_bytes),
        instances: (plugin.stats().instances_created(), plugin.stats().instances_retired()),
        output,
    })
}

/// The plugin's name in log lines: the file's stem.
fn plugin_name(file: &Path) -> String {
    file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into())
}

/// Events from a JSON file: `{"events": [...]}` (the API's answer) or the list alone.
fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value = serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = match value {
        Value::Object(mut object) => object.remove("events").unwrap_or(Value::Null),
        list => list,
    };
    serde_json::from_value(list)
        .with_context(|| format!("{}: expected events as `GET /v1/devices/{{id}}/events` answers them", path.display()))
}

/// An HTTP request as sent on the wire: request line, headers, a blank line, the body
/// (a file written by hand may end its lines with `\n` alone).
fn read_http_request(path: &Path) -> anyhow::Result<HttpRequest> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(&raw) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            bail!("{}: the request's headers do not end with a blank line", path.display())
        }
        Err(e) => bail!("{}: not an HTTP request: {e}", path.display()),
    };
    let method = parsed.method.unwrap_or("GET").to_string();
    let target = parsed.path.unwrap_or("/");
    let (path_part, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let mut body = raw[head_len..].to_vec();
    // A declared length cuts a trailing newline the editor added.
    if let Some(length) = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.trim().parse().ok()) {
        body.truncate(length);
    }
    Ok(HttpRequest {
        method,
        path: path_part.to_string(),
        query: form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        headers,
        body,
    })
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |bytes: usize| bytes as f64 / f64::from(1 << 20);
        writeln!(
            f,
            "{} plugin: started in {:.2} ms of CPU, {:.1} MiB of its {:.0} MiB",
            self.kind.world(),
            self.start.guest_time.as_secs_f64() * 1000.0,
            mib(self.start.memory_bytes),
            mib(self.memory_cap)
        )?;
        for call in &self.calls {
            writeln!(f, "  {}: {:.3} ms, {}", call.what, call.took.as_secs_f64() * 1000.0, call.outcome)?;
        }
        write!(
            f,
            "memory: at most {:.1} MiB of {:.0} MiB; instances: {} started, {} retired as their memory neared the cap",
            mib(self.peak_memory),
            mib(self.memory_cap),
            self.instances.0,
            self.instances.1
        )
    }
}
