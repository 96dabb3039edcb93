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
        NativeDevice { client: reqwest::Client::new(), base: base.to_string(), id: id.to_string(), token: token.to_string() }
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
