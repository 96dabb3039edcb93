//! The gateway as a real process: started from a config, killed with SIGKILL, restarted
//! on the same data folder.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `biogate serve`.
pub struct GatewayProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl GatewayProcess {
    /// Starts `binary serve --config <config>` and waits until it listens.
    pub fn start(binary: &Path, config: &Path) -> GatewayProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("BIOGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting biogate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading biogate's stdout");
        let base = line
            .trim()
            .strip_prefix("biogate listening on ")
            .unwrap_or_else(|| panic!("biogate did not start: {line:?}"))
            .to_string();
        GatewayProcess { child, base }
    }

    /// The process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /health` as JSON (`null` when the gateway does not answer).
    pub async fn health(&self) -> serde_json::Value {
        match reqwest::get(format!("{}/health", self.base)).await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// Waits (up to 30 s) until `/health` says the gateway is subscribed to its MQTT
    /// broker: only then is a punch a device publishes sure to be kept for the gateway.
    pub async fn wait_mqtt_subscribed(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let health = self.health().await;
            if health["mqtt"]["subscribed"] == true {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the gateway never subscribed to its MQTT broker: {health}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config file in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("biogate.toml");
    std::fs::write(&path, text).expect("writing the config");
    path
}
