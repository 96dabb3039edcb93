//! A ZKTeco ADMS ("iclock" push) terminal, simulated faithfully enough to test a server
//! against (protocol: /work/shared/reference/zkteco-adms-push.md, ZKTeco's "Attendance PUSH
//! Communication Protocol"). The terminal is the only HTTP client; the server at `base`
//! (`http://127.0.0.1:<port>`) is its only peer.
//!
//! What it does, as a terminal does:
//! - handshake: `GET /iclock/cdata?SN=..&options=all&pushver=..&language=69`, reads the
//!   `GET OPTION FROM:` reply ([`HandshakeOptions`]) and sets its clock from `Date` plus
//!   `TimeZone`;
//! - polls `GET /iclock/getrequest?SN=..` every `Delay` seconds (the first poll after a
//!   handshake carries `INFO=..`), executes each `C:<id>:<command>` against its user table
//!   and log ([`terminal::Terminal::execute`], codes in [`code`]), uploads what the command
//!   asks for, then confirms on `POST /iclock/devicecmd?SN=..` with
//!   `ID=<id>&Return=<code>&CMD=<cmd>` lines, several per body;
//! - uploads punches in real time (`POST /iclock/cdata?SN=..&table=ATTLOG&Stamp=..`) and
//!   local enrolments (`table=OPERLOG`), through an outbox: while the server is unreachable
//!   or refuses (non-200, an error body, or under [`Quirks::bare_ok_is_failure`] a bare
//!   `OK`), records stay queued and go later oldest first; nothing is reordered or dropped;
//! - uploads on its own only what `TransFlag` names (records it keeps stay in the log, for
//!   `DATA QUERY ATTLOG`); what a command asks for always goes up;
//! - resumes from the server's stamps: a handshake whose `ATTLOGStamp` is below what the
//!   server acknowledged (`None`, `0`, or an older value) makes it upload those records again.
//!
//! ```no_run
//! # async fn example(base: &str) {
//! use biogate_e2e::adms_device::{AdmsDevice, Quirks};
//! let device = AdmsDevice::start(base, "SN123", Quirks::default()).await;
//! let sent = device.punch("1", "2026-06-21 09:02:14", 0, 1).await;
//! assert_eq!(sent.buffered, 0);
//! // ... the server queues `C:42:DATA UPDATE USERINFO PIN=1\tName=Ann` ...
//! let done = device.wait_for_command("42").await;
//! assert_eq!(done.code, 0);
//! assert_eq!(device.user("1").map(|u| u.name), Some("Ann".to_string()));
//! device.stop().await;
//! # }
//! ```
pub mod protocol;
pub mod terminal;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use protocol::HandshakeOptions;
use protocol::{PollLine, UploadReply};
pub use terminal::{BioKind, Punch, Table, Template, TemplateKey, Unlock, User, code};
use terminal::{Effect, Record, Terminal};

/// Firmware behaviours that differ between terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// eSSL firmware: `.aspx` after every path (`/iclock/cdata.aspx`,
    /// `/iclock/getrequest.aspx`, `/iclock/devicecmd.aspx`).
    pub aspx_paths: bool,
    /// ATTLOG lines of 8 fields (no Temperature) and Status always 255: the terminal has no
    /// status keys.
    pub eight_field_attlog: bool,
    /// A bare `OK` (without `: <n>`) to an upload means failure: the batch stays queued and is
    /// sent again on every cycle.
    pub bare_ok_is_failure: bool,
    /// The poll interval when the server gives no usable `Delay`.
    pub fallback_delay: Duration,
    /// The retry interval when the server gives no usable `ErrorDelay`.
    pub fallback_error_delay: Duration,
}

impl Default for Quirks {
    /// A plain ZKTeco terminal: `/iclock/cdata`, 9-field ATTLOG, `OK` or `OK: <n>` both
    /// accepted, 10 s / 30 s when the server gives no `Delay` / `ErrorDelay`.
    fn default() -> Self {
        Quirks {
            aspx_paths: false,
            eight_field_attlog: false,
            bare_ok_is_failure: false,
            fallback_delay: Duration::from_secs(10),
            fallback_error_delay: Duration::from_secs(30),
        }
    }
}

/// How the simulated terminal is built.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Serial number (`SN=`).
    pub serial: String,
    /// Push protocol version sent as `pushver=` (default `2.4.1`).
    pub push_version: String,
    /// `language=` (default 69, English).
    pub language: u32,
    /// `pushcommkey=`, sent when set.
    pub push_comm_key: Option<String>,
    /// Firmware version (in `INFO`).
    pub firmware: String,
    /// Firmware behaviours.
    pub quirks: Quirks,
    /// Poll interval overriding the server's `Delay` (for fast tests).
    pub poll_interval: Option<Duration>,
    /// Retry interval overriding the server's `ErrorDelay`.
    pub retry_interval: Option<Duration>,
    /// At most this many records per upload (default 100).
    pub batch_size: usize,
    /// User capacity (default 3000; beyond: -1001).
    pub max_users: usize,
    /// Timeout of each HTTP request (default 10 s).
    pub http_timeout: Duration,
}

impl DeviceConfig {
    /// A plain terminal with this serial number.
    pub fn new(serial: &str) -> DeviceConfig {
        DeviceConfig {
            serial: serial.to_string(),
            push_version: "2.4.1".into(),
            language: 69,
            push_comm_key: None,
            firmware: "Ver 8.0.4.7-20230615".into(),
            quirks: Quirks::default(),
            poll_interval: None,
            retry_interval: None,
            batch_size: 100,
            max_users: 3000,
            http_timeout: Duration::from_secs(10),
        }
    }

    /// With these quirks.
    pub fn quirks(mut self, quirks: Quirks) -> DeviceConfig {
        self.quirks = quirks;
        self
    }

    /// With this `pushver`.
    pub fn push_version(mut self, version: &str) -> DeviceConfig {
        self.push_version = version.to_string();
        self
    }

    /// Polls every `interval` whatever `Delay` says, and retries every `interval` too unless
    /// [`DeviceConfig::retry_every`] says otherwise.
    pub fn poll_every(mut self, interval: Duration) -> DeviceConfig {
        self.poll_interval = Some(interval);
        self
    }

    /// Retries every `interval` after a failure, whatever `ErrorDelay` says.
    pub fn retry_every(mut self, interval: Duration) -> DeviceConfig {
        self.retry_interval = Some(interval);
        self
    }

    /// With at most `n` records per upload.
    pub fn batch_size(mut self, n: usize) -> DeviceConfig {
        self.batch_size = n.max(1);
        self
    }

    /// With room for `n` users.
    pub fn max_users(mut self, n: usize) -> DeviceConfig {
        self.max_users = n;
        self
    }
}

/// Why a request of the terminal did not work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmsError {
    /// No HTTP answer (refused, reset, timed out).
    Unreachable(String),
    /// An HTTP status other than 200.
    Status {
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// A 200 the terminal cannot use (e.g. a handshake reply without `GET OPTION FROM:`).
    BadReply(String),
}

impl std::fmt::Display for AdmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdmsError::Unreachable(why) => write!(f, "server unreachable: {why}"),
            AdmsError::Status { status, body } => write!(f, "server answered {status}: {body:?}"),
            AdmsError::BadReply(why) => write!(f, "unusable reply: {why}"),
        }
    }
}

impl std::error::Error for AdmsError {}

/// The server's answer to a request sent as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status; 0 when there was no answer.
    pub status: u16,
    /// The body (or the connection error when `status` is 0).
    pub body: String,
}

/// One upload (`POST /iclock/cdata?..&table=..`) and how the terminal read its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAttempt {
    /// The table.
    pub table: Table,
    /// The `Stamp=` sent.
    pub stamp: String,
    /// The lines sent, in order.
    pub lines: Vec<String>,
    /// The answer's status (0: no answer).
    pub status: u16,
    /// The answer's body.
    pub body: String,
    /// The `n` of `OK: <n>`.
    pub accepted: Option<u64>,
    /// Whether the terminal took it as delivered (and dropped the lines from its outbox).
    pub delivered: bool,
}

/// The outcome of an attempt to empty the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flush {
    /// Records delivered by this attempt.
    pub delivered: usize,
    /// Records still in the outbox afterwards.
    pub buffered: usize,
    /// The uploads tried, in order (the last one failed when `buffered > 0`).
    pub attempts: Vec<UploadAttempt>,
}

impl Flush {
    /// The `n` of the last `OK: <n>`.
    pub fn accepted(&self) -> Option<u64> {
        self.attempts.iter().rev().find_map(|a| a.accepted)
    }
}

/// A command the terminal received and executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCommand {
    /// `CmdID`.
    pub id: String,
    /// The command text (after `C:<id>:`).
    pub command: String,
    /// The `CMD=` of its result.
    pub cmd: String,
    /// The `Return=` code.
    pub code: i32,
    /// Extra result lines (`INFO`'s `Key=Value`).
    pub details: Vec<String>,
    /// Whether the server took the result (`devicecmd` answered 200).
    pub confirmed: bool,
}

/// A record waiting in the outbox.
#[derive(Debug, Clone)]
struct Outgoing {
    uid: u64,
    record: Record,
    /// The record's stamp: its log sequence for ATTLOG, a per-table counter otherwise.
    seq: u64,
}

struct State {
    terminal: Terminal,
    outbox: VecDeque<Outgoing>,
    next_uid: u64,
    /// The highest ATTLOG sequence the server acknowledged.
    acked_attlog: u64,
    /// Stamp counters of the other tables.
    table_seq: BTreeMap<Table, u64>,
    /// The options of the last successful handshake; `None` before it and after a `REBOOT`.
    connected: Option<HandshakeOptions>,
    /// The server's time (`Date`) and when it was read.
    clock: Option<(SystemTime, Instant)>,
    send_info: bool,
    commands: Vec<AppliedCommand>,
    /// Result lines not yet taken by the server: (command index, text).
    unconfirmed: Vec<(usize, String)>,
    ignored: Vec<String>,
    uploads: Vec<UploadAttempt>,
    poll_interval: Option<Duration>,
    polls: u64,
    handshakes: u64,
}

impl State {
    fn options(&self) -> Option<&HandshakeOptions> {
        self.connected.as_ref()
    }

    /// Queues records at the end, except those `TransFlag` keeps from going up on their own.
    fn enqueue(&mut self, records: Vec<Record>) {
        for record in records {
            if let (Some(flag), Some(options)) = (record.trans_flag, self.options())
                && !options.transmits(flag)
            {
                continue;
            }
            let seq = match record.log_seq {
                Some(seq) => seq,
                None => {
                    let counter = self.table_seq.entry(record.table).or_insert(0);
                    *counter += 1;
                    *counter
                }
            };
            let uid = self.next_uid;
            self.next_uid += 1;
            self.outbox.push_back(Outgoing { uid, record, seq });
        }
    }

    /// After a handshake: when the server's ATTLOG stamp is below what it acknowledged, the
    /// records after the stamp go again, before anything queued (they are older).
    fn resume_from_stamps(&mut self) {
        let mark = protocol::stamp_mark(self.options().and_then(|o| o.stamp("ATTLOG")));
        if mark >= self.acked_attlog {
            return;
        }
        let queued: HashSet<u64> = self
            .outbox
            .iter()
            .filter(|o| o.record.table == Table::Attlog && !o.record.requested)
            .map(|o| o.seq)
            .collect();
        let eight = self.terminal.eight_field_attlog;
        let again: Vec<Outgoing> = self
            .terminal
            .log
            .iter()
            .filter(|entry| entry.seq > mark && entry.seq <= self.acked_attlog && !queued.contains(&entry.seq))
            .map(|entry| Outgoing {
                uid: 0,
                record: Record {
                    table: Table::Attlog,
                    line: protocol::attlog_line(&entry.punch, eight),
                    log_seq: Some(entry.seq),
                    requested: false,
                    trans_flag: Some("AttLog"),
                },
                seq: entry.seq,
            })
            .collect();
        for mut outgoing in again.into_iter().rev() {
            outgoing.uid = self.next_uid;
            self.next_uid += 1;
            self.outbox.push_front(outgoing);
        }
        self.acked_attlog = mark;
    }
}

struct Inner {
    client: reqwest::Client,
    base: String,
    config: DeviceConfig,
    state: Mutex<State>,
    /// One upload at a time, so that records leave in order.
    upload_lock: tokio::sync::Mutex<()>,
    /// One poll cycle at a time.
    poll_lock: tokio::sync::Mutex<()>,
}

/// The shared part, also held by the polling task.
#[derive(Clone)]
struct Link(Arc<Inner>);

struct Poller {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A simulated ADMS terminal. See the module documentation.
pub struct AdmsDevice {
    link: Link,
    poller: Mutex<Option<Poller>>,
}

impl AdmsDevice {
    /// A terminal of the server at `base` that handshakes and starts polling, as one does when
    /// switched on. Panics when the handshake fails.
    pub async fn start(base: &str, serial: &str, quirks: Quirks) -> AdmsDevice {
        AdmsDevice::start_with(base, DeviceConfig::new(serial).quirks(quirks)).await
    }

    /// [`AdmsDevice::start`] with a full configuration.
    pub async fn start_with(base: &str, config: DeviceConfig) -> AdmsDevice {
        let device = AdmsDevice::new(base, config);
        if let Err(e) = device.handshake().await {
            panic!("the ADMS handshake of {} with {base} failed: {e}", device.serial());
        }
        device.start_polling();
        device
    }

    /// A terminal that has sent nothing yet: no handshake, no polling (see
    /// [`AdmsDevice::handshake`], [`AdmsDevice::start_polling`], [`AdmsDevice::poll_once`]).
    /// Punches recorded before the first handshake stay in the outbox until one succeeds.
    pub fn new(base: &str, config: DeviceConfig) -> AdmsDevice {
        let client = reqwest::Client::builder().timeout(config.http_timeout).build().expect("building the HTTP client");
        let mut terminal = Terminal::new(&config.serial, &config.firmware, &config.push_version);
        terminal.max_users = config.max_users;
        terminal.eight_field_attlog = config.quirks.eight_field_attlog;
        let state = State {
            terminal,
            outbox: VecDeque::new(),
            next_uid: 1,
            acked_attlog: 0,
            table_seq: BTreeMap::new(),
            connected: None,
            clock: None,
            send_info: true,
            commands: Vec::new(),
            unconfirmed: Vec::new(),
            ignored: Vec::new(),
            uploads: Vec::new(),
            poll_interval: None,
            polls: 0,
            handshakes: 0,
        };
        let inner = Inner {
            client,
            base: base.trim_end_matches('/').to_string(),
            config,
            state: Mutex::new(state),
            upload_lock: tokio::sync::Mutex::new(()),
            poll_lock: tokio::sync::Mutex::new(()),
        };
        AdmsDevice { link: Link(Arc::new(inner)), poller: Mutex::new(None) }
    }

    /// The serial number.
    pub fn serial(&self) -> &str {
        &self.link.0.config.serial
    }

    /// The handshake: reads the server's options, sets the clock, and re-queues records the
    /// server's ATTLOG stamp says it does not have.
    pub async fn handshake(&self) -> Result<HandshakeOptions, AdmsError> {
        self.link.handshake().await
    }

    /// Starts polling in a background task (no-op when already polling): each cycle uploads
    /// the outbox, fetches and executes commands, confirms them; then waits `Delay` (or
    /// `ErrorDelay` after a failure). Handshakes first when it has not yet succeeded.
    pub fn start_polling(&self) {
        let mut poller = self.poller.lock().expect("poller lock");
        if poller.is_some() {
            return;
        }
        let (stop, mut stopped) = watch::channel(false);
        let link = self.link.clone();
        let task = tokio::spawn(async move {
            loop {
                let healthy = tokio::select! {
                    _ = stopped.changed() => break,
                    healthy = link.cycle() => healthy,
                };
                let wait = link.wait(healthy);
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
        *poller = Some(Poller { stop, task });
    }

    /// Stops the polling task (an exchange in flight is abandoned: the terminal is switched
    /// off). Records and unconfirmed results stay for later.
    pub async fn stop(&self) {
        let poller = self.poller.lock().expect("poller lock").take();
        if let Some(poller) = poller {
            let _ = poller.stop.send(true);
            let _ = poller.task.await;
        }
    }

    /// Whether the polling task runs.
    pub fn is_polling(&self) -> bool {
        self.poller.lock().expect("poller lock").as_ref().is_some_and(|p| !p.task.is_finished())
    }

    /// One poll cycle now: handshake if needed, upload the outbox, re-send unconfirmed
    /// results, `getrequest`, execute, upload what the commands asked for, confirm, and
    /// handshake again after `REBOOT`/`CHECK`/`RELOAD OPTIONS`. Returns the commands executed.
    pub async fn poll_once(&self) -> Result<Vec<AppliedCommand>, AdmsError> {
        self.link.poll_once().await
    }

    /// The poll interval from now on, overriding `Delay` (`None`: back to the configuration
    /// or `Delay`).
    pub fn set_poll_interval(&self, interval: Option<Duration>) {
        self.link.state().poll_interval = interval;
    }

    /// Records a punch and, when the server asked for real-time uploads (`Realtime=1`, the
    /// default), uploads the outbox at once.
    pub async fn punch(&self, pin: &str, time: &str, status: u16, verify: u16) -> Flush {
        self.punch_with(Punch::new(pin, time, status, verify)).await
    }

    /// [`AdmsDevice::punch`] with every field (work code, mask, temperature).
    ///
    /// The returned [`Flush`] always includes the upload that carried this punch (or the
    /// failed attempt that left it buffered): the record is queued while holding the upload
    /// lock, so the polling task cannot take it away in between.
    pub async fn punch_with(&self, punch: Punch) -> Flush {
        let _uploading = self.link.0.upload_lock.lock().await;
        let realtime = {
            let mut state = self.link.state();
            let record = state.terminal.record_punch(punch);
            state.enqueue(vec![record]);
            state.options().is_none_or(|o| o.realtime())
        };
        if realtime {
            self.link.flush_locked().await
        } else {
            Flush { buffered: self.outbox_len(), ..Flush::default() }
        }
    }

    /// A punch at the terminal's current time ([`AdmsDevice::device_time`]).
    pub async fn punch_now(&self, pin: &str, status: u16, verify: u16) -> Flush {
        let time = self.device_time();
        self.punch(pin, &time, status, verify).await
    }

    /// Enrolls a user at the terminal (replacing one with the same PIN) and uploads it:
    /// `USER`, `FP`, `FACE`, `USERPIC` lines on OPERLOG, other templates on BIODATA, as far as
    /// `TransFlag` allows.
    pub async fn enroll_user(&self, user: User) -> Flush {
        let _uploading = self.link.0.upload_lock.lock().await;
        {
            let mut state = self.link.state();
            let records = state.terminal.enroll_user(user);
            state.enqueue(records);
        }
        self.link.flush_locked().await
    }

    /// Puts a user in the table without uploading anything (a terminal that already had it).
    pub fn preload_user(&self, user: User) {
        self.link.state().terminal.users.insert(user.pin.clone(), user);
    }

    /// Uploads the outbox now, oldest first, stopping at the first failure; reports what is
    /// still buffered.
    pub async fn flush(&self) -> Flush {
        self.link.flush().await
    }

    /// Posts `body` as is to `/iclock/cdata?SN=..&table=<table>&Stamp=..` (not through the
    /// outbox) and returns the server's answer: for malformed lines.
    pub async fn send_raw(&self, table: &str, body: &str) -> Answer {
        let stamp = self.link.state().acked_attlog.to_string();
        let sn = self.serial().to_string();
        let url = self.link.url("cdata", &[("SN", &sn), ("table", table), ("Stamp", &stamp)]);
        self.link.send(reqwest::Method::POST, url, Some(body.to_string())).await.0
    }

    /// [`AdmsDevice::send_raw`] on ATTLOG.
    pub async fn send_raw_attlog(&self, body: &str) -> Answer {
        self.send_raw("ATTLOG", body).await
    }

    /// The heartbeat `GET /iclock/ping?SN=..`.
    pub async fn ping(&self) -> Answer {
        let sn = self.serial().to_string();
        let url = self.link.url("ping", &[("SN", &sn)]);
        self.link.send(reqwest::Method::GET, url, None).await.0
    }

    /// The options of the last successful handshake.
    pub fn options(&self) -> Option<HandshakeOptions> {
        self.link.state().options().cloned()
    }

    /// How many handshakes succeeded.
    pub fn handshakes(&self) -> u64 {
        self.link.state().handshakes
    }

    /// How many `getrequest` polls were sent.
    pub fn polls(&self) -> u64 {
        self.link.state().polls
    }

    /// The terminal's clock, `YYYY-MM-DD HH:MM:SS`: the server's last `Date` plus the time
    /// since, shifted by `TimeZone`; the host clock (UTC) plus `TimeZone` before any `Date`.
    pub fn device_time(&self) -> String {
        let state = self.link.state();
        let offset = state.options().and_then(|o| o.time_zone_minutes()).unwrap_or(0);
        let now = match state.clock {
            Some((server, at)) => server + at.elapsed(),
            None => SystemTime::now(),
        };
        protocol::wall_time(now, offset)
    }

    /// The user with this PIN.
    pub fn user(&self, pin: &str) -> Option<User> {
        self.link.state().terminal.users.get(pin).cloned()
    }

    /// Every user, by PIN.
    pub fn users(&self) -> Vec<User> {
        self.link.state().terminal.users.values().cloned().collect()
    }

    /// The attendance log, oldest first (`CLEAR LOG` empties it).
    pub fn attendance_log(&self) -> Vec<Punch> {
        self.link.state().terminal.log.iter().map(|entry| entry.punch.clone()).collect()
    }

    /// How many records wait for upload.
    pub fn outbox_len(&self) -> usize {
        self.link.state().outbox.len()
    }

    /// The records waiting for upload, oldest first.
    pub fn outbox(&self) -> Vec<(Table, String)> {
        self.link.state().outbox.iter().map(|o| (o.record.table, o.record.line.clone())).collect()
    }

    /// Every upload attempted, in order.
    pub fn uploads(&self) -> Vec<UploadAttempt> {
        self.link.state().uploads.clone()
    }

    /// Every command executed, in order.
    pub fn commands(&self) -> Vec<AppliedCommand> {
        self.link.state().commands.clone()
    }

    /// The last command executed with this id.
    pub fn command(&self, id: &str) -> Option<AppliedCommand> {
        self.link.state().commands.iter().rev().find(|c| c.id == id).cloned()
    }

    /// Poll-reply lines the terminal dropped: not `C:<id>:..`, a bad id, or after a `REBOOT`
    /// in the same reply.
    pub fn ignored_lines(&self) -> Vec<String> {
        self.link.state().ignored.clone()
    }

    /// Options set by `SET OPTION`.
    pub fn set_options(&self) -> BTreeMap<String, String> {
        self.link.state().terminal.options.clone()
    }

    /// Door openings ordered by `AC_UNLOCK` / `CONTROL DEVICE`.
    pub fn unlocks(&self) -> Vec<Unlock> {
        self.link.state().terminal.unlocks.clone()
    }

    /// What the next `ENROLL_FP`s answer instead of enrolling (e.g. `Some(6)`, cancelled);
    /// `None` to enroll.
    pub fn set_enroll_result(&self, code: Option<i32>) {
        self.link.state().terminal.enroll_result = code;
    }

    /// Waits until the command `id` was executed and its result taken by the server, or
    /// panics after 10 s.
    pub async fn wait_for_command(&self, id: &str) -> AppliedCommand {
        self.wait_for_command_within(id, Duration::from_secs(10)).await
    }

    /// [`AdmsDevice::wait_for_command`] with another timeout.
    pub async fn wait_for_command_within(&self, id: &str, timeout: Duration) -> AppliedCommand {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(done) = self.command(id).filter(|c| c.confirmed) {
                return done;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "command {id} not executed and confirmed after {timeout:?}; commands: {:?}; dropped lines: {:?}",
                    self.commands(),
                    self.ignored_lines()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the outbox is empty, or panics after `timeout`.
    pub async fn wait_outbox_empty(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.outbox_len() > 0 {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} records still buffered after {timeout:?}; last uploads: {:?}",
                    self.outbox_len(),
                    self.uploads().iter().rev().take(3).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for AdmsDevice {
    fn drop(&mut self) {
        if let Ok(mut poller) = self.poller.lock()
            && let Some(poller) = poller.take()
        {
            poller.task.abort();
        }
    }
}

impl Link {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().expect("device state lock")
    }

    fn url(&self, endpoint: &str, query: &[(&str, &str)]) -> String {
        let ext = if self.0.config.quirks.aspx_paths { ".aspx" } else { "" };
        let query: Vec<String> =
            query.iter().map(|(k, v)| format!("{k}={}", protocol::encode_query_value(v))).collect();
        format!("{}/iclock/{endpoint}{ext}?{}", self.0.base, query.join("&"))
    }

    /// Sends a request; returns the answer and its `Date` header.
    async fn send(&self, method: reqwest::Method, url: String, body: Option<String>) -> (Answer, Option<String>) {
        let mut request = self.0.client.request(method, url).header("User-Agent", "iClock Proxy/1.09");
        if let Some(body) = body {
            request = request.header("Content-Type", "application/push;charset=UTF-8").body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let date = response.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_string);
                match response.text().await {
                    Ok(body) => (Answer { status, body }, date),
                    Err(e) => (Answer { status: 0, body: format!("reading the body: {e}") }, date),
                }
            }
            Err(e) => (Answer { status: 0, body: e.to_string() }, None),
        }
    }

    fn set_clock(&self, date: Option<&str>) {
        if let Some(time) = date.and_then(|d| httpdate::parse_http_date(d).ok()) {
            self.state().clock = Some((time, Instant::now()));
        }
    }

    async fn handshake(&self) -> Result<HandshakeOptions, AdmsError> {
        let config = &self.0.config;
        let language = config.language.to_string();
        let mut query = vec![
            ("SN", config.serial.as_str()),
            ("options", "all"),
            ("pushver", config.push_version.as_str()),
            ("language", language.as_str()),
        ];
        if let Some(key) = &config.push_comm_key {
            query.push(("pushcommkey", key.as_str()));
        }
        let url = self.url("cdata", &query);
        let (answer, date) = self.send(reqwest::Method::GET, url, None).await;
        match answer.status {
            0 => return Err(AdmsError::Unreachable(answer.body)),
            200 => {}
            status => {
                return Err(AdmsError::Status { status, body: answer.body });
            }
        }
        let mut options = HandshakeOptions::parse(&answer.body, &config.serial).map_err(AdmsError::BadReply)?;
        options.date = date.clone();
        self.set_clock(date.as_deref());
        let mut state = self.state();
        state.connected = Some(options.clone());
        state.send_info = true;
        state.handshakes += 1;
        state.resume_from_stamps();
        Ok(options)
    }

    async fn flush(&self) -> Flush {
        let _uploading = self.0.upload_lock.lock().await;
        self.flush_locked().await
    }

    /// [`Link::flush`] for a caller that holds `upload_lock`.
    async fn flush_locked(&self) -> Flush {
        let mut result = Flush::default();
        let needs_handshake = {
            let state = self.state();
            state.connected.is_none() && !state.outbox.is_empty()
        };
        // A terminal uploads nothing before its first successful handshake.
        if needs_handshake && self.handshake().await.is_err() {
            result.buffered = self.state().outbox.len();
            return result;
        }
        let quirks = self.0.config.quirks;
        loop {
            let (batch, stamp) = {
                let state = self.state();
                let Some(first) = state.outbox.front() else {
                    break;
                };
                let table = first.record.table;
                let batch: Vec<Outgoing> = state
                    .outbox
                    .iter()
                    .take_while(|o| o.record.table == table)
                    .take(self.0.config.batch_size)
                    .cloned()
                    .collect();
                let last = batch.iter().map(|o| o.seq).max().unwrap_or(0);
                let stamp = if table == Table::Attlog { last.max(state.acked_attlog) } else { last };
                (batch, stamp.to_string())
            };
            let table = batch[0].record.table;
            let body: String = batch.iter().map(|o| format!("{}\n", o.record.line)).collect();
            let sn = self.0.config.serial.clone();
            let url = self.url("cdata", &[("SN", &sn), ("table", table.as_str()), ("Stamp", &stamp)]);
            let (answer, _) = self.send(reqwest::Method::POST, url, Some(body)).await;
            let reply = protocol::parse_upload_reply(&answer.body);
            let delivered = answer.status == 200
                && match reply {
                    UploadReply::Count(_) => true,
                    UploadReply::BareOk => !quirks.bare_ok_is_failure,
                    UploadReply::NotOk => false,
                };
            let attempt = UploadAttempt {
                table,
                stamp,
                lines: batch.iter().map(|o| o.record.line.clone()).collect(),
                status: answer.status,
                body: answer.body,
                accepted: match reply {
                    UploadReply::Count(n) => Some(n),
                    _ => None,
                },
                delivered,
            };
            let mut state = self.state();
            state.uploads.push(attempt.clone());
            result.attempts.push(attempt);
            if !delivered {
                break;
            }
            let sent: HashSet<u64> = batch.iter().map(|o| o.uid).collect();
            state.outbox.retain(|o| !sent.contains(&o.uid));
            if table == Table::Attlog {
                let highest = batch.iter().filter(|o| !o.record.requested).map(|o| o.seq).max().unwrap_or(0);
                state.acked_attlog = state.acked_attlog.max(highest);
            }
            result.delivered += batch.len();
        }
        result.buffered = self.state().outbox.len();
        result
    }

    /// Posts the results the server has not taken yet.
    async fn confirm(&self) -> Result<(), AdmsError> {
        let pending = self.state().unconfirmed.clone();
        if pending.is_empty() {
            return Ok(());
        }
        let body: String = pending.iter().map(|(_, text)| format!("{text}\n")).collect();
        let sn = self.0.config.serial.clone();
        let url = self.url("devicecmd", &[("SN", &sn)]);
        let (answer, _) = self.send(reqwest::Method::POST, url, Some(body)).await;
        match answer.status {
            200 => {
                let mut state = self.state();
                state.unconfirmed.drain(..pending.len());
                for (index, _) in &pending {
                    state.commands[*index].confirmed = true;
                }
                Ok(())
            }
            0 => Err(AdmsError::Unreachable(answer.body)),
            status => Err(AdmsError::Status { status, body: answer.body }),
        }
    }

    async fn poll_once(&self) -> Result<Vec<AppliedCommand>, AdmsError> {
        let _polling = self.0.poll_lock.lock().await;
        if self.state().connected.is_none() {
            self.handshake().await?;
        }
        self.flush().await;
        // Results of an earlier cycle first; a failure here does not stop the poll.
        let _ = self.confirm().await;

        let (query_info, sn) = {
            let mut state = self.state();
            let info = state.send_info.then(|| {
                let t = &state.terminal;
                let count = |kind| t.users.values().map(|u| u.templates_of(kind).len()).sum::<usize>();
                format!(
                    "{},{},{},{},127.0.0.1,10,7,12,{},101",
                    t.firmware,
                    t.users.len(),
                    count(BioKind::Fingerprint),
                    t.log.len(),
                    count(BioKind::Face)
                )
            });
            state.send_info = false;
            state.polls += 1;
            (info, self.0.config.serial.clone())
        };
        let mut query = vec![("SN", sn.as_str())];
        if let Some(info) = &query_info {
            query.push(("INFO", info.as_str()));
        }
        let url = self.url("getrequest", &query);
        let (answer, date) = self.send(reqwest::Method::GET, url, None).await;
        if answer.status != 200 {
            self.state().send_info |= query_info.is_some();
            return Err(match answer.status {
                0 => AdmsError::Unreachable(answer.body),
                status => AdmsError::Status { status, body: answer.body },
            });
        }
        self.set_clock(date.as_deref());

        let (mut upload, mut rehandshake, mut reboot) = (false, false, false);
        let mut executed = Vec::new();
        {
            let mut state = self.state();
            for line in protocol::parse_poll_reply(&answer.body) {
                let (id, text) = match line {
                    PollLine::Ignored(text) => {
                        state.ignored.push(text);
                        continue;
                    }
                    PollLine::Command { id, text } => (id, text),
                };
                if reboot {
                    // The terminal restarts: the rest of the reply is lost.
                    state.ignored.push(format!("C:{id}:{text}"));
                    continue;
                }
                let execution = state.terminal.execute(&text);
                for effect in execution.effects {
                    match effect {
                        Effect::Upload(records) => {
                            state.enqueue(records);
                            upload = true;
                        }
                        Effect::Flush => upload = true,
                        Effect::Rehandshake => rehandshake = true,
                        Effect::Reboot => reboot = true,
                    }
                }
                let mut result = protocol::result_line(&id, execution.code, &execution.cmd);
                for detail in &execution.details {
                    result.push('\n');
                    result.push_str(detail);
                }
                let index = state.commands.len();
                state.commands.push(AppliedCommand {
                    id,
                    command: text,
                    cmd: execution.cmd,
                    code: execution.code,
                    details: execution.details,
                    confirmed: false,
                });
                state.unconfirmed.push((index, result));
                executed.push(index);
            }
        }
        if upload {
            self.flush().await;
        }
        let confirmed = self.confirm().await;
        if reboot || rehandshake {
            if reboot {
                let mut state = self.state();
                state.connected = None;
                state.clock = None;
            }
            // A failed handshake is retried by the next cycle.
            let _ = self.handshake().await;
        }
        confirmed?;
        let state = self.state();
        Ok(executed.into_iter().map(|index| state.commands[index].clone()).collect())
    }

    /// One cycle of the polling task; true when everything went through.
    async fn cycle(&self) -> bool {
        let polled = self.poll_once().await.is_ok();
        polled && self.state().outbox.is_empty()
    }

    fn wait(&self, healthy: bool) -> Duration {
        let config = &self.0.config;
        let state = self.state();
        let options = state.options();
        let delay = state
            .poll_interval
            .or(config.poll_interval)
            .or_else(|| options.and_then(|o| o.delay()).filter(|d| *d > 0).map(Duration::from_secs))
            .unwrap_or(config.quirks.fallback_delay);
        if healthy {
            return delay;
        }
        config
            .retry_interval
            .or(state.poll_interval)
            .or(config.poll_interval)
            .or_else(|| options.and_then(|o| o.error_delay()).filter(|d| *d > 0).map(Duration::from_secs))
            .unwrap_or(config.quirks.fallback_error_delay)
    }
}

#[cfg(test)]
mod tests;
