//! A device speaking biogate's native protocol (docs/device-protocol.md).
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A simulated device.
pub struct NativeDevice {
    client: reqwest::Client,
    base: String,
    /// Its id (`stgid`).
    pub id: String,
    /// Its AuthToken.
    pub token: String,
}

/// The gateway's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The `Retry-After` header (seconds, or an HTTP date), when there was one.
    pub retry_after: Option<Duration>,
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 10.2.3).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

impl NativeDevice {
    /// A device of the gateway at `base` (`http://127.0.0.1:port`).
    pub fn new(base: &str, id: &str, token: &str) -> Self {
        NativeDevice {
            client: reqwest::Client::new(),
            base: base.to_string(),
            id: id.to_string(),
            token: token.to_string(),
        }
    }

    /// A device that opens a new connection for every request, as most terminal firmware
    /// does (no keep-alive pool).
    pub fn connecting_each_time(base: &str, id: &str, token: &str) -> Self {
        NativeDevice {
            client: reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("an HTTP client"),
            ..Self::new(base, id, token)
        }
    }

    /// A punch event as JSON.
    pub fn punch(user: &str, log_time: &str, punch_type: &str) -> Value {
        json!({"type": "punch", "user_id": user, "log_time": log_time, "punch_type": punch_type, "input_type": "Fingerprint"})
    }

    /// Sends events with the device's token.
    pub async fn send(&self, events: Vec<Value>) -> Answer {
        self.send_raw(json!({ "events": events }).to_string().into_bytes(), Some(&self.token)).await
    }

    /// Sends a raw body with an optional bearer token.
    pub async fn send_raw(&self, body: Vec<u8>, token: Option<&str>) -> Answer {
        let url = format!("{}/device/v1/events?stgid={}", self.base, self.id);
        let mut request = self.client.post(url).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                let text = response.text().await.unwrap_or_default();
                Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), retry_after }
            }
            Err(e) => Answer { status: 0, body: Value::String(e.to_string()), retry_after: None },
        }
    }
}

/// A native terminal's punch buffer, kept the way docs/device-protocol.md asks of
/// firmware: a punch leaves the buffer only when a `200` says it is on disk. Any other
/// answer (a refusal, an error, no answer at all) keeps it, and the terminal sends it
/// again, oldest first, once the `Retry-After` the gateway gave has passed (else after
/// [`BufferedDevice::retry`]).
pub struct BufferedDevice {
    device: NativeDevice,
    buffer: VecDeque<Value>,
    /// The punches the gateway acknowledged, in order: `(event id, punch)`.
    pub acknowledged: Vec<(String, Value)>,
    /// Every answer that was not a `200`, in order.
    pub refusals: Vec<Answer>,
    /// Most punches per request.
    pub batch: usize,
    /// The pause after a failed request that gave no `Retry-After`.
    pub retry: Duration,
    not_before: Option<Instant>,
}

impl BufferedDevice {
    /// An empty buffer in front of `device`, sending up to `batch` punches per request.
    pub fn new(device: NativeDevice, batch: usize) -> Self {
        BufferedDevice {
            device,
            buffer: VecDeque::new(),
            acknowledged: Vec::new(),
            refusals: Vec::new(),
            batch: batch.clamp(1, 1000),
            retry: Duration::from_secs(1),
            not_before: None,
        }
    }

    /// The device's connection.
    pub fn device(&self) -> &NativeDevice {
        &self.device
    }

    /// The terminal records a punch (it is buffered until acknowledged).
    pub fn record(&mut self, punch: Value) {
        self.buffer.push_back(punch);
    }

    /// Punches waiting for an acknowledgement.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Sends the oldest buffered punches if there are any and the last refusal's wait is
    /// over. Returns the answer, or `None` when nothing was sent.
    pub async fn sync(&mut self) -> Option<Answer> {
        if self.buffer.is_empty() || self.not_before.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let batch: Vec<Value> = self.buffer.iter().take(self.batch).cloned().collect();
        let answer = self.device.send(batch.clone()).await;
        let ids: Option<Vec<String>> = answer.body["events"]
            .as_array()
            .map(|events| events.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect());
        match ids {
            Some(ids) if answer.status == 200 && ids.len() == batch.len() => {
                self.buffer.drain(..batch.len());
                self.acknowledged.extend(ids.into_iter().zip(batch));
                self.not_before = None;
            }
            _ => {
                self.not_before = Some(Instant::now() + answer.retry_after.unwrap_or(self.retry));
                self.refusals.push(answer.clone());
            }
        }
        Some(answer)
    }
}

/// A user as a simulated native device holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub user_id: String,
    pub first_name: Option<String>,
    pub role: Option<String>,
    pub enabled: bool,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// `(kind, index, data)`.
    pub templates: Vec<(String, Option<u64>, String)>,
    pub has_photo: bool,
}

/// A command the simulated device received, with the return code it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub operation_id: String,
    pub command: Value,
    pub return_code: i32,
    /// The details it answered with.
    pub details: Value,
}

/// What a native terminal holds: users, and the commands it executed.
#[derive(Debug, Default)]
pub struct TerminalState {
    pub users: std::collections::BTreeMap<String, SimUser>,
    pub received: Vec<Received>,
    pub reboots: usize,
    pub unlocks: usize,
    pub options: std::collections::BTreeMap<String, String>,
}

impl TerminalState {
    /// Applies one command (`{"operation_id","type",...}`) and returns the device's return
    /// code and details (0 ok; -10 unknown user; -1002 not supported).
    pub fn apply(&mut self, command: &Value) -> (i32, Value) {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let user_id = text(&command["user_id"]);
        let code = match command["type"].as_str().unwrap_or_default() {
            "upsert_user" => {
                let u = &command["user"];
                let id = text(&u["user_id"]);
                let templates = u["templates"]
                    .as_array()
                    .map(|ts| ts.iter().map(|t| (text(&t["kind"]), t["index"].as_u64(), text(&t["data"]))).collect())
                    .unwrap_or_default();
                self.users.insert(
                    id.clone(),
                    SimUser {
                        user_id: id,
                        first_name: u["first_name"].as_str().map(str::to_string),
                        role: u["role"].as_str().map(str::to_string),
                        enabled: u["enabled"].as_bool().unwrap_or(true),
                        valid_from: u["valid_from"].as_str().map(str::to_string),
                        valid_until: u["valid_until"].as_str().map(str::to_string),
                        templates,
                        has_photo: u["photo"].is_string(),
                    },
                );
                0
            }
            "delete_user" => {
                if self.users.remove(&user_id).is_some() {
                    0
                } else {
                    -10
                }
            }
            "delete_all_users" | "clear_all_data" => {
                self.users.clear();
                0
            }
            "set_user_enabled" => match self.users.get_mut(&user_id) {
                Some(u) => {
                    u.enabled = command["enabled"].as_bool().unwrap_or(true);
                    0
                }
                None => -10,
            },
            "delete_template" => match self.users.get_mut(&user_id) {
                Some(u) => {
                    let kind = text(&command["kind"]);
                    let index = command["index"].as_u64();
                    u.templates.retain(|(k, i, _)| !(k == &kind && (index.is_none() || *i == index)));
                    0
                }
                None => -10,
            },
            "get_device_info" => {
                return (0, json!({"Firmware": "sim-1.0", "UserCount": self.users.len().to_string()}));
            }
            "reboot" => {
                self.reboots += 1;
                0
            }
            "unlock_door" => {
                self.unlocks += 1;
                0
            }
            "set_option" => {
                self.options.insert(text(&command["key"]), text(&command["value"]));
                0
            }
            "clear_punches" | "clear_photos" | "set_time" | "get_user_info" | "upload_punches" => 0,
            "start_enrollment" => {
                if self.users.contains_key(&user_id) {
                    0
                } else {
                    -10
                }
            }
            _ => -1002,
        };
        (code, json!({}))
    }
}

/// A native device that long-polls for commands and confirms them: a terminal as a
/// firmware team would build it on biogate's native protocol.
pub struct NativeTerminal {
    device: std::sync::Arc<NativeDevice>,
    /// What the terminal holds.
    pub state: std::sync::Arc<std::sync::Mutex<TerminalState>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NativeTerminal {
    /// Connects: polls with `wait_ms` long-polls until stopped.
    pub fn start(device: NativeDevice, wait_ms: u64) -> Self {
        let device = std::sync::Arc::new(device);
        let state = std::sync::Arc::new(std::sync::Mutex::new(TerminalState::default()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (d, s) = (device.clone(), state.clone());
        let task = tokio::spawn(async move {
            loop {
                let poll = d.poll_commands(wait_ms);
                let commands = tokio::select! {
                    c = poll => c,
                    _ = stopped.changed() => return,
                };
                let Some(commands) = commands else {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                };
                if commands.is_empty() {
                    continue;
                }
                let mut results = Vec::new();
                {
                    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                    for command in commands {
                        let operation_id = command["operation_id"].as_str().unwrap_or_default().to_string();
                        // A command handed out again (its result was overdue) is answered
                        // again, not carried out twice.
                        if let Some(done) = st.received.iter().find(|r| r.operation_id == operation_id) {
                            results.push(json!({"type": "command_result", "operation_id": operation_id, "return_code": done.return_code, "details": done.details}));
                            continue;
                        }
                        let (code, details) = st.apply(&command);
                        st.received.push(Received {
                            operation_id: operation_id.clone(),
                            command,
                            return_code: code,
                            details: details.clone(),
                        });
                        results.push(json!({"type": "command_result", "operation_id": operation_id, "return_code": code, "details": details}));
                    }
                }
                d.send(results).await;
            }
        });
        NativeTerminal { device, state, stop, task: Some(task) }
    }

    /// The device's connection.
    pub fn device(&self) -> &NativeDevice {
        &self.device
    }

    /// A user of the terminal.
    pub fn user(&self, id: &str) -> Option<SimUser> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).users.get(id).cloned()
    }

    /// The operation ids received, in order.
    pub fn received_ids(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).received.iter().map(|r| r.operation_id.clone()).collect()
    }

    /// Stops polling (the terminal goes offline).
    pub async fn stop(mut self) -> std::sync::Arc<std::sync::Mutex<TerminalState>> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.clone()
    }
}

impl NativeDevice {
    /// One command poll (`wait_ms` long-poll); `None` when the gateway did not answer 200.
    pub async fn poll_commands(&self, wait_ms: u64) -> Option<Vec<Value>> {
        let url = format!("{}/device/v1/commands?stgid={}&wait_ms={wait_ms}", self.base, self.id);
        let response = self.client.get(url).bearer_auth(&self.token).send().await.ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        body["commands"].as_array().cloned()
    }
}
