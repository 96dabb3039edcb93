//! A real Mosquitto broker for the MQTT tests: started on 127.0.0.1 and a free port, with
//! persistence in a temporary folder, stopped with SIGTERM (it saves its database), and
//! restarted on the same port and the same database.
//!
//! The binary is `$BIOGATE_MOSQUITTO`, else `mosquitto` on the `PATH`, else
//! `/usr/sbin/mosquitto` (`cargo xtask test` installs it and sets the variable).
use std::fs::OpenOptions;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start or a stop may take before the test kit gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running (or stopped) Mosquitto. Dropping it kills the process and deletes its folder.
pub struct Broker {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on 127.0.0.1 and a free port, and returns once it accepts
    /// connections. Panics when Mosquitto is not installed or does not start.
    pub fn start() -> Broker {
        let binary = find_binary();
        let dir =
            tempfile::Builder::new().prefix("biogate-mosquitto-").tempdir().expect("creating the broker's folder");
        let port = free_port();
        std::fs::create_dir(dir.path().join("data")).expect("creating the broker's persistence folder");
        std::fs::write(dir.path().join("mosquitto.conf"), config(dir.path(), port)).expect("writing mosquitto.conf");
        let mut broker = Broker { binary, dir, port, child: None };
        broker.spawn();
        broker
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`, for the gateway's `[mqtt] url`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The folder of its config, log (`mosquitto.log`) and database (`data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the broker logged so far (every run, appended).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Whether its process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops it with SIGTERM, so that it saves its database, and waits until it exited.
    /// Panics when it did not exit in time or could not save its database.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) with the pid of our own child, not yet reaped (the Child is held).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + PATIENCE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("mosquitto did not exit within {PATIENCE:?} of SIGTERM; its log:\n{}", self.log());
                }
            }
        }
        // Mosquitto exits with status 0 even when it could not write its database.
        let log = self.log();
        if log.contains("Error saving in-memory database") {
            panic!("mosquitto could not save its database in {}; its log:\n{log}", self.dir().display());
        }
    }

    /// Kills it with SIGKILL (a crash: only what its last autosave wrote survives).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it (if running) and starts it again on the same port and the same database;
    /// returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    /// Starts the process and waits until the port accepts connections.
    fn spawn(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening mosquitto.log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("mosquitto.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                panic!("mosquitto exited at start ({status}); its log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "mosquitto did not accept connections on {address} within {PATIENCE:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The broker's configuration.
fn config(dir: &Path, port: u16) -> String {
    format!(
        "# written by biogate-e2e (tests/src/mosquitto.rs)\n\
         listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         set_tcp_nodelay true\n\
         persistence true\n\
         persistence_location {data}/\n\
         autosave_interval 1\n\
         max_queued_messages 100000\n\
         max_inflight_messages 100\n\
         log_dest stderr\n\
         log_timestamp_format %H:%M:%S\n\
         {user}",
        data = dir.join("data").display(),
        // Started by root, Mosquitto switches to the user `mosquitto`, which cannot write
        // to our (0700) folder: every save fails and it still exits with status 0.
        user = if running_as_root() { "user root\n" } else { "" },
    )
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A port that is free on 127.0.0.1 now.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// The Mosquitto binary: `$BIOGATE_MOSQUITTO`, `mosquitto` on the `PATH`, `/usr/sbin/mosquitto`.
fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BIOGATE_MOSQUITTO") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            panic!(
                "BIOGATE_MOSQUITTO={} is not a file: point it at the mosquitto binary, or run `cargo xtask test`, which installs mosquitto",
                path.display()
            );
        }
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("mosquitto"));
    let mut candidates =
        on_path.chain([PathBuf::from("/usr/sbin/mosquitto"), PathBuf::from("/usr/local/sbin/mosquitto")]);
    candidates.find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "the MQTT tests need the Mosquitto broker, which was not found (BIOGATE_MOSQUITTO, PATH, /usr/sbin): \
             run `cargo xtask test`, which installs it, or install it yourself (`apt-get install mosquitto`)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_stops_and_restarts_on_the_same_port_with_its_database() {
        let mut broker = Broker::start();
        let port = broker.port();
        assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{port}"));
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());

        broker.stop();
        assert!(!broker.is_running());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "nothing listens after stop");
        assert!(broker.dir().join("data/mosquitto.db").is_file(), "SIGTERM saved the database; log:\n{}", broker.log());

        broker.restart();
        assert!(broker.is_running());
        assert_eq!(broker.port(), port);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        assert_eq!(broker.log().matches(" running").count(), 2, "two runs, one log:\n{}", broker.log());
    }
}
