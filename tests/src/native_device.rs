//! A device speaking biogate's native protocol (docs/device-protocol.md).
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
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
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
                let text = response.text().await.unwrap_or_default();
                Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
            }
            Err(e) => Answer { status: 0, body: Value::String(e.to_string()) },
        }
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
