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
        let base = line.trim().strip_prefix("biogate listening on ").unwrap_or_else(|| panic!("biogate did not start: {line:?}")).to_string();
        GatewayProcess { child, base }
    }

    /// The process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
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
