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

/// A start that failed: how the process ended and what it said.
#[derive(Debug)]
pub struct Refused {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its standard error.
    pub stderr: String,
}

impl GatewayProcess {
    /// Starts `binary serve --config <config>` and waits until it listens.
    pub fn start(binary: &Path, config: &Path) -> GatewayProcess {
        Self::spawn(binary, config, "warn", Stdio::inherit())
    }

    /// [`GatewayProcess::start`] with the log at `level` appended to the file `log`.
    pub fn start_logged(binary: &Path, config: &Path, level: &str, log: &Path) -> GatewayProcess {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("opening the log file");
        Self::spawn(binary, config, level, Stdio::from(file))
    }

    /// Starts `binary serve --config <config>` expecting it to refuse: waits (up to 60 s)
    /// for it to exit and returns its exit code and standard error. Panics if it starts
    /// listening instead.
    pub fn start_refused(binary: &Path, config: &Path) -> Refused {
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("BIOGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting biogate");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for biogate") {
                let mut stdout = String::new();
                let mut stderr = String::new();
                use std::io::Read;
                let _ = child.stdout.take().expect("stdout").read_to_string(&mut stdout);
                let _ = child.stderr.take().expect("stderr").read_to_string(&mut stderr);
                assert!(!stdout.contains("biogate listening"), "biogate started: {stdout}");
                return Refused { code: status.code(), stderr };
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("biogate neither exited nor failed within 60 s: it should have refused to start");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn spawn(binary: &Path, config: &Path, level: &str, stderr: Stdio) -> GatewayProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("BIOGATE_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
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

    /// SIGTERM, as an operator stops it: waits (up to 30 s, then SIGKILL) for it to shut
    /// down and returns its exit code.
    pub fn stop(mut self) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so the pid is
        // still ours.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("biogate did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace's `target` folder (where `cargo build -p biogate` puts the binary when
/// `CARGO_TARGET_DIR` is not set).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The gateway binary: `$BIOGATE_BIN`, else the newest of `target/{debug,release}/biogate`.
/// Panics, saying how to build it, when there is none.
pub fn gateway_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("BIOGATE_BIN") {
        return PathBuf::from(bin);
    }
    ["debug", "release"]
        .iter()
        .map(|profile| target_dir().join(profile).join("biogate"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "no gateway binary in {}: run `cargo build -p biogate` first, or set BIOGATE_BIN",
                target_dir().display()
            )
        })
}

/// Writes a config file in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("biogate.toml");
    std::fs::write(&path, text).expect("writing the config");
    path
}
