//! `[mqtt]`: the broker connection and the topic layout (docs/mqtt.md).
use serde::Deserialize;

use crate::field::FieldError;

/// How the gateway connects to its broker. `Debug` redacts the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS with Mozilla's roots).
    pub url: String,
    /// The gateway's client id. Keep it fixed: the broker keeps its session (and the QoS 1
    /// messages that arrive while it is away) under this id.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_secs: u64,
    /// First level of every topic (`<prefix>/<device>/punch`).
    pub topic_prefix: String,
    /// Subscribe through `$share/<group>/...` so several gateway nodes split the devices.
    pub shared_group: Option<String>,
    /// A dialect plugin that reads payloads (`handle-mqtt`) and encodes commands.
    pub dialect: Option<String>,
    /// Commands published and not yet acknowledged by the broker, at most.
    pub max_in_flight: u16,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("topic_prefix", &self.topic_prefix)
            .field("shared_group", &self.shared_group)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "biogate".into(),
            username: None,
            password: None,
            keep_alive_secs: 30,
            topic_prefix: "biogate".into(),
            shared_group: None,
            dialect: None,
            max_in_flight: 256,
        }
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttConfig {
    /// Parses `url`.
    pub fn broker(&self) -> Result<BrokerAddress, String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("{:?} is not a URL ({e})", self.url))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(format!("scheme {other:?}: use mqtt:// or mqtts://")),
        };
        let host = url.host_str().ok_or_else(|| format!("{:?} names no host", self.url))?.to_string();
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(BrokerAddress { host, port, tls })
    }

    /// Checks what parsing cannot: `(key, problem)`.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.broker().map_err(|e| FieldError::new("url", e))?;
        let bad = |s: &str| s.is_empty() || s.contains(['+', '#', '/']) || s.contains(char::is_whitespace);
        if bad(&self.topic_prefix) {
            return Err(FieldError::new("topic_prefix", "one topic level without '+', '#', '/' or spaces"));
        }
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err(FieldError::new("client_id", "1 to 64 characters"));
        }
        if self.shared_group.as_deref().is_some_and(bad) {
            return Err(FieldError::new("shared_group", "one topic level without '+', '#', '/' or spaces"));
        }
        if self.keep_alive_secs < 5 {
            return Err(FieldError::new("keep_alive_secs", "at least 5"));
        }
        if self.max_in_flight == 0 {
            return Err(FieldError::new("max_in_flight", "at least 1"));
        }
        Ok(())
    }
}
