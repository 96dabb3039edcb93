//! The ZKTeco ADMS ("iclock" push) dialect end to end over loopback: a real `biogate`
//! process with the `zkteco-adms` plugin built from source, simulated ADMS terminals
//! (tests/src/adms_device) that handshake, upload and poll as real ones do, and a real
//! callback receiver. Punches reach the callback in the Cams v3 form with their codes
//! mapped and the device's offset; user commands from the Cams endpoint and `/v1` land in
//! the terminal's user table and close their operations with the terminal's return code; a
//! gateway that is down for a while gets the terminal's backlog in order, once; malformed
//! lines are counted out of `OK: <n>`; the firmware quirks work; unknown serials are
//! refused or, with auto-registration, recorded as pending.
//!
//! Needs the plugin: `cargo xtask plugins` (it lands in target/plugins; the
//! `BIOGATE_PLUGINS_DIR` variable points elsewhere).
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use biogate_e2e::adms_device::{AdmsDevice, AdmsError, DeviceConfig, Punch, Quirks, Table};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::receiver::{Delivery, Receiver};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const WAIT: Duration = Duration::from_secs(30);
/// How often the simulated terminals poll and retry (a real one: `Delay`, 3-10 s).
const POLL: Duration = Duration::from_millis(50);

/// A free loopback port: bound, then released, so that a restarted gateway can listen on
/// the same address and the terminal finds it again.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A gateway configuration: the ADMS plugin on `/iclock`, the devices (India's offset),
/// optionally a callback route for every device, and extra TOML (plugin config tables...).
struct Setup {
    listen: String,
    devices: Vec<&'static str>,
    callback: Option<String>,
    auto_register: bool,
    /// More keys of the plugin's `[config]` table.
    plugin_config: String,
    extra: String,
}

impl Setup {
    fn new(devices: &[&'static str]) -> Setup {
        Setup {
            listen: "127.0.0.1:0".into(),
            devices: devices.to_vec(),
            callback: None,
            auto_register: false,
            plugin_config: String::new(),
            extra: String::new(),
        }
    }

    fn callback(mut self, receiver: &Receiver) -> Setup {
        self.callback = Some(receiver.url.clone());
        self
    }

    fn text(&self) -> String {
        let mut text = format!(
            "[server]\nlisten = \"{}\"\ndata_dir = \"data\"\nauto_register = {}\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
             [plugins.zkteco]\nkind = \"dialect\"\npath = {:?}\n\
             [plugins.zkteco.config]\ndelay = 1\nerror_delay = 1\n{}",
            self.listen,
            self.auto_register,
            biogate_e2e::plugins::component("zkteco-adms").display().to_string(),
            self.plugin_config
        );
        for id in &self.devices {
            text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"));
        }
        if let Some(url) = &self.callback {
            text.push_str(&format!(
                "[routes.hr]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [\"50ms\"]\nsink = {{ type = \"callback\", url = \"{url}\" }}\n"
            ));
        }
        text.push_str(&self.extra);
        text
    }

    fn start(&self, dir: &Path) -> GatewayProcess {
        GatewayProcess::start(Path::new(BIN), &write_config(dir, &self.text()))
    }

    /// The gateway with its log (stderr, `warn` and above) going to `dir/gateway.log`.
    fn start_logged(&self, dir: &Path) -> LoggedGateway {
        use std::io::{BufRead, BufReader};
        let config = write_config(dir, &self.text());
        let log = dir.join("gateway.log");
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("BIOGATE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting biogate");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("biogate listening on ")
            .unwrap_or_else(|| panic!("biogate did not start: {line:?}"))
            .to_string();
        LoggedGateway { child, base, log }
    }
}

/// A gateway whose log the test reads.
struct LoggedGateway {
    child: std::process::Child,
    base: String,
    log: PathBuf,
}

impl LoggedGateway {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fast terminal: polls and retries every [`POLL`].
fn terminal(serial: &str) -> DeviceConfig {
    DeviceConfig::new(serial).poll_every(POLL).retry_every(POLL)
}

/// A REST client of the gateway.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        Client { http: reqwest::Client::new(), base: base.to_string() }
    }

    /// A Cams call with the device's token; returns (HTTP status, JSON reply).
    async fn cams(&self, device: &str, mut envelope: Value) -> (u16, Value) {
        envelope["AuthToken"] = TOKEN.into();
        let url = format!("{}/external/api3.0/biometric?stgid={device}&wait_ms=20000", self.base);
        let response = self.http.post(url).body(envelope.to_string()).send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn v1(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Submits a `/v1` operation and waits for the device's confirmation.
    async fn operate(&self, device: &str, op: Value) -> Value {
        let path = format!("/v1/devices/{device}/operations?wait_ms=20000");
        let (status, body) = self.v1(reqwest::Method::POST, &path, Some(op.clone())).await;
        assert_eq!(status, 200, "{op} -> {body}");
        body
    }

    async fn operation(&self, id: &str) -> Value {
        let (status, op) = self.v1(reqwest::Method::GET, &format!("/v1/operations/{id}"), None).await;
        assert_eq!(status, 200, "{op}");
        op
    }

    /// The journal's punches of a device on 2026-06-21 (device-local), in log-time order.
    async fn stored_punches(&self, device: &str) -> Vec<Value> {
        let path = format!(
            "/v1/devices/{device}/punches?start_time=2026-06-21%2000:00:00&end_time=2026-06-21%2023:59:59&limit=5000"
        );
        let (status, page) = self.v1(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        page["punches"].as_array().cloned().unwrap_or_default()
    }
}

/// The `PunchLog` of each accepted punch delivery, first delivery per webhook-id, in
/// arrival order.
fn punch_logs(receiver: &Receiver) -> Vec<Value> {
    let mut seen = HashSet::new();
    receiver
        .accepted()
        .iter()
        .filter(|d| seen.insert(d.header("webhook-id").unwrap_or_default().to_string()))
        .map(Delivery::json)
        .filter(|b| b["RealTime"]["PunchLog"].is_object())
        .map(|b| b["RealTime"]["PunchLog"].clone())
        .collect()
}

/// Waits until `n` distinct punches were delivered; returns them in arrival order.
async fn wait_punches(receiver: &Receiver, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} punches at the callback"), || {
        let logs = punch_logs(receiver);
        (logs.len() >= n).then_some(logs)
    })
    .await
}

/// Polls `probe` until it gives a value, or panics after [`WAIT`] naming `what`.
async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(UserId, LogTime)` of punch logs.
fn who_when(logs: &[Value]) -> Vec<(String, String)> {
    logs.iter()
        .map(|l| (l["UserId"].as_str().unwrap_or("?").to_string(), l["LogTime"].as_str().unwrap_or("?").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_reach_the_callback_in_cams_form_with_codes_mapped_and_the_device_offset() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Setup::new(&["CQZ7224460148"]).callback(&receiver).start(dir.path());
    let device = AdmsDevice::start_with(&gw.base, terminal("CQZ7224460148")).await;

    // The handshake gave the device's offset in minutes (India is not whole hours) and
    // the gateway's clock.
    let options = device.options().expect("handshake options");
    assert_eq!((options.time_zone(), options.delay(), options.realtime()), (Some(330), Some(1), true), "{options:?}");
    assert_eq!(options.negotiated_version("2.4.1"), "2.4.1");
    assert!(options.server_time().is_some(), "a Date header: {options:?}");

    // Status (field 3) and verify (field 4) codes of real firmware.
    let cases = [
        ("1", "2026-06-21 09:02:14", 0, 1, "CheckIn", "Fingerprint"),
        ("1", "2026-06-21 13:00:00", 2, 15, "BreakOut", "Face"),
        ("1", "2026-06-21 13:30:05", 3, 4, "BreakIn", "Card"),
        ("1", "2026-06-21 18:01:00", 1, 3, "CheckOut", "Password"),
        ("22", "2026-06-21 19:00:00", 4, 25, "OverTimeIn", "Palm"),
        ("22", "2026-06-21 23:59:59", 5, 21, "OverTimeOut", "Finger Vein"),
        ("333", "2026-06-21 00:00:00", 0, 0, "CheckIn", "Unknown"),
        ("333", "2026-06-21 00:00:01", 1, 6, "CheckOut", "Fingerprint"),
    ];
    for (pin, time, status, verify, _, _) in cases {
        let sent = device.punch(pin, time, status, verify).await;
        assert_eq!((sent.delivered, sent.buffered, sent.accepted()), (1, 0, Some(1)), "{:?}", sent.attempts);
        assert_eq!(sent.attempts[0].body, "OK: 1");
    }
    // A masked punch with a temperature and a work code (9 fields).
    let masked = Punch {
        mask: true,
        temperature: Some("36.6".into()),
        workcode: "17".into(),
        ..Punch::new("4", "2026-06-21 08:15:00", 0, 15)
    };
    assert_eq!(device.punch_with(masked).await.accepted(), Some(1));

    let logs = wait_punches(&receiver, cases.len() + 1).await;
    let expected: Vec<(String, String, String, String)> = cases
        .iter()
        .map(|(pin, time, _, _, kind, input)| {
            (pin.to_string(), format!("{time} GMT +0530"), kind.to_string(), input.to_string())
        })
        .collect();
    let got: Vec<(String, String, String, String)> = logs[..cases.len()]
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("?").to_string();
            (s("UserId"), s("LogTime"), s("Type"), s("InputType"))
        })
        .collect();
    assert_eq!(got, expected, "in the order punched, codes mapped, LogTime in the device's offset");
    let last = &logs[cases.len()];
    assert_eq!(
        (
            &last["UserId"],
            &last["Type"],
            &last["InputType"],
            &last["Temperature"],
            &last["FaceMask"],
            &last["WorkCode"]
        ),
        (&json!("4"), &json!("CheckIn"), &json!("Face"), &json!("36.6"), &json!(true), &json!("17")),
        "{last}"
    );

    // The envelope of a punch: the device's serial and token.
    let delivery = receiver.accepted().into_iter().find(|d| d.json()["RealTime"]["PunchLog"].is_object()).unwrap();
    assert_eq!(delivery.stgid.as_deref(), Some("CQZ7224460148"));
    let body = delivery.json();
    assert_eq!(
        (&body["RealTime"]["SerialNumber"], &body["RealTime"]["AuthToken"]),
        (&json!("CQZ7224460148"), &json!(TOKEN))
    );
    assert!(body["RealTime"]["Time"].as_str().is_some_and(|t| t.ends_with(" GMT +0000")), "{body}");
    // The handshake is reported as the device coming online.
    let status = receiver.accepted().iter().map(Delivery::json).find(|b| b["RealTime"]["DeviceStatus"].is_object());
    assert_eq!(status.map(|b| b["RealTime"]["DeviceStatus"]["Online"].clone()), Some(json!(true)));

    // Stored durably: the journal has every punch, UTC instants from device time + offset.
    let client = Client::new(&gw.base);
    let stored = client.stored_punches("CQZ7224460148").await;
    assert_eq!(stored.len(), cases.len() + 1, "{stored:?}");
    assert!(
        stored.iter().any(
            |p| p["user_id"] == "1" && p["log_time"].as_str().is_some_and(|t| t.starts_with("2026-06-21 09:02:14"))
        ),
        "{stored:?}"
    );
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_user_commands_land_in_the_terminal_and_close_their_operations() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Setup::new(&["SN1001"]).callback(&receiver).start(dir.path());
    let client = Client::new(&gw.base);
    let device = AdmsDevice::start_with(&gw.base, terminal("SN1001")).await;

    // Cams: add a user with a fingerprint template, a card and a password.
    let (status, reply) = client
        .cams(
            "SN1001",
            json!({"Add":{"User":{"UserID":"100","FirstName":"Manu","LastName":"Mona","UserType":"Admin"},
                "Template":[{"Type":"FingerPrint","UserID":"100","Index":"6","Size":"12","Data":"QUJDREVGR0g="},
                            {"Type":"Password","UserID":"100","Data":"3211"},
                            {"Type":"Card","UserID":"100","Data":"12345678"}]},
                "OperationID":"addmanu100","Time":"2026-06-21 09:00:00 GMT +0530"}),
        )
        .await;
    assert_eq!(
        (status, &reply["Status"], &reply["StatusCode"], &reply["ReturnCode"]),
        (200, &json!("done"), &json!(0), &json!(0)),
        "{reply}"
    );
    let user = device.user("100").expect("the user is in the terminal's table");
    assert_eq!(
        (user.name.as_str(), user.privilege, user.card.as_str(), user.password.as_str()),
        ("Manu Mona", 14, "12345678", "3211")
    );
    assert!(user.enabled());
    assert_eq!(user.fingerprint(6).map(|t| (t.tmp.as_str(), t.valid)), Some(("QUJDREVGR0g=", 1)), "{user:?}");
    assert_eq!(user.templates.len(), 1);
    let op = client.operation("addmanu100").await;
    assert_eq!(
        (&op["state"], &op["type"], &op["return_code"]),
        (&json!("done"), &json!("add_user"), &json!(0)),
        "{op}"
    );
    // The terminal saw two command lines (user, then template) and confirmed both.
    let texts: Vec<String> =
        device.commands().iter().map(|c| c.command.split('\t').next().unwrap_or("").to_string()).collect();
    assert_eq!(texts, ["DATA UPDATE USERINFO PIN=100", "DATA UPDATE FINGERTMP PIN=100"]);
    for command in device.commands() {
        // The gateway closes the operation before its `OK` reaches the terminal.
        assert_eq!(device.wait_for_command(&command.id).await.code, 0, "{command:?}");
    }
    let result = wait_for("the add's result at the callback", || {
        receiver
            .accepted()
            .iter()
            .map(Delivery::json)
            .find(|b| b["RealTime"]["CommandResult"]["OperationID"] == "addmanu100")
    })
    .await;
    assert_eq!(result["RealTime"]["CommandResult"]["ReturnCode"], 0, "{result}");

    // /v1: another user with two fingerprints; then block and unblock it (bit 0 of Pri).
    let added = client
        .operate(
            "SN1001",
            json!({"type":"add_user","user":{"user_id":"7","first_name":"Asha","credentials":[
                {"kind":"fingerprint","index":1,"data":"RklOR0VSMQ=="},{"kind":"fingerprint","index":2,"data":"RklOR0VSMg=="}]}}),
        )
        .await;
    assert_eq!((&added["state"], &added["return_code"]), (&json!("done"), &json!(0)), "{added}");
    let asha = device.user("7").expect("added through /v1");
    assert_eq!(asha.name, "Asha");
    assert_eq!(asha.fingerprint(2).map(|t| t.tmp.as_str()), Some("RklOR0VSMg=="));
    let (_, blocked) = client.v1(reqwest::Method::POST, "/v1/devices/SN1001/users/7/block?wait_ms=20000", None).await;
    assert_eq!(blocked["state"], "done", "{blocked}");
    let asha = device.user("7").unwrap();
    assert!(!asha.enabled(), "blocked: Pri {}", asha.privilege);
    assert_eq!(asha.privilege, 1);
    let (_, blocked) = client.v1(reqwest::Method::POST, "/v1/devices/SN1001/users/100/block?wait_ms=20000", None).await;
    assert_eq!(blocked["state"], "done", "{blocked}");
    assert_eq!(device.user("100").unwrap().privilege, 15, "a blocked admin stays an admin");
    let (_, unblocked) =
        client.v1(reqwest::Method::POST, "/v1/devices/SN1001/users/7/unblock?wait_ms=20000", None).await;
    assert_eq!(unblocked["state"], "done", "{unblocked}");
    assert!(device.user("7").unwrap().enabled());

    // Delete removes the user with its templates.
    let (_, reply) =
        client.cams("SN1001", json!({"Delete":{"User":{"UserID":"100"}}, "OperationID":"delmanu100"})).await;
    assert_eq!((&reply["Status"], &reply["ReturnCode"]), (&json!("done"), &json!(0)), "{reply}");
    assert!(device.user("100").is_none(), "deleted from the terminal");
    assert_eq!(client.operation("delmanu100").await["state"], "done");
    let deleted = client.operate("SN1001", json!({"type":"delete_user","user_id":"7"})).await;
    assert_eq!(deleted["state"], "done", "{deleted}");
    assert!(device.users().is_empty());

    // A PIN the terminal does not know: it answers -10 and the operation fails with it.
    let (status, reply) =
        client.cams("SN1001", json!({"Delete":{"User":{"UserID":"4040"}}, "OperationID":"delnobody"})).await;
    assert_eq!(
        (status, &reply["Status"], &reply["StatusCode"], &reply["ReturnCode"]),
        (200, &json!("API_RESPONSE_DEVICE_REFUSED"), &json!(40), &json!(-10)),
        "{reply}"
    );
    let op = client.operation("delnobody").await;
    assert_eq!((&op["state"], &op["return_code"]), (&json!("failed"), &json!(-10)), "{op}");
    let failed = client.operate("SN1001", json!({"type":"delete_user","user_id":"4041"})).await;
    assert_eq!((&failed["state"], &failed["return_code"]), (&json!("failed"), &json!(-10)), "{failed}");
    let on_device = device
        .commands()
        .into_iter()
        .filter(|c| c.command.starts_with("DATA DELETE USERINFO PIN=404"))
        .map(|c| c.code)
        .collect::<Vec<_>>();
    assert_eq!(on_device, [-10, -10], "the terminal itself answered -10");
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_down_for_a_while_gets_the_buffered_punches_in_order_once() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&["SN2002"]).callback(&receiver);
    setup.listen = format!("127.0.0.1:{}", free_port());
    let gw = setup.start(dir.path());
    let client = Client::new(&gw.base);
    let device = AdmsDevice::start_with(&gw.base, terminal("SN2002")).await;
    let time = |i: usize| format!("2026-06-21 10:{:02}:{:02}", i / 60, i % 60);

    for i in 0..3 {
        assert_eq!(device.punch(&format!("{}", i % 4), &time(i), 0, 1).await.buffered, 0);
    }
    wait_punches(&receiver, 3).await;
    gw.kill();

    // Down: the terminal keeps its punches, and keeps trying (its polls fail too).
    let polls = device.polls();
    for i in 3..40 {
        let sent = device.punch(&format!("{}", i % 4), &time(i), (i % 2) as u16, 1).await;
        assert_eq!(sent.delivered, 0, "{:?}", sent.attempts);
        assert_eq!(sent.buffered, i - 2);
    }
    wait_for("the terminal to keep polling while the gateway is down", || (device.polls() >= polls + 3).then_some(()))
        .await;
    assert_eq!(device.outbox_len(), 37);

    // Back on the same address and data: the backlog drains, oldest first.
    let gw = setup.start(dir.path());
    device.wait_outbox_empty(WAIT).await;
    let logs = wait_punches(&receiver, 40).await;
    let expected: Vec<(String, String)> =
        (0..40).map(|i| (format!("{}", i % 4), format!("{} GMT +0530", time(i)))).collect();
    assert_eq!(who_when(&logs), expected, "every punch, in the order punched");
    let uploaded: Vec<String> = device
        .uploads()
        .into_iter()
        .filter(|u| u.delivered && u.table == Table::Attlog)
        .flat_map(|u| u.lines)
        .collect();
    assert_eq!(uploaded.len(), 40, "each line was delivered by exactly one accepted upload");

    // The terminal is asked for the whole day again (a Stamp reset does the same): the
    // gateway stores nothing twice. A new punch after it proves the callback queue drained.
    let op = client
        .operate("SN2002", json!({"type":"request_punch_upload","span":{"start_time":"2026-06-21 00:00:00","end_time":"2026-06-21 23:59:59"}}))
        .await;
    assert_eq!(op["state"], "done", "{op}");
    let again: usize =
        device.uploads().iter().filter(|u| u.delivered && u.table == Table::Attlog).map(|u| u.lines.len()).sum();
    assert_eq!(again, 80, "the terminal uploaded its 40 punches a second time");
    device.punch("9", "2026-06-21 12:00:00", 1, 1).await;
    let logs = wait_punches(&receiver, 41).await;
    assert_eq!(logs.len(), 41, "no punch delivered twice: {:?}", who_when(&logs));
    assert_eq!(who_when(&logs[40..]), [("9".to_string(), "2026-06-21 12:00:00 GMT +0530".to_string())]);
    assert_eq!(client.stored_punches("SN2002").await.len(), 41, "stored once each");
    let distinct: HashSet<(String, String)> = who_when(
        &receiver
            .accepted()
            .iter()
            .map(Delivery::json)
            .filter(|b| b["RealTime"]["PunchLog"].is_object())
            .map(|b| b["RealTime"]["PunchLog"].clone())
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .collect();
    assert_eq!(distinct.len(), 41);
    device.stop().await;
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_thousands_of_lines_in_one_upload_is_stored_whole_under_the_default_limits() {
    // A terminal back after days offline uploads its backlog in big batches. Refused, a
    // batch would be re-sent forever and the device's punches stuck behind it.
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Setup::new(&["SN3004"]).callback(&receiver).start(dir.path());
    let device = AdmsDevice::start_with(&gw.base, terminal("SN3004")).await;
    const LINES: usize = 10_000;
    let time = |i: usize| format!("2026-06-21 {:02}:{:02}:{:02}", 8 + i / 3600, (i / 60) % 60, i % 60);
    let body: String = (0..LINES).map(|i| format!("{}\t{}\t0\t1\t0\t0\t0\n", 1000 + i % 7, time(i))).collect();
    let answer = device.send_raw_attlog(&body).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 10000"), "the whole batch is accepted at once");
    let logs = wait_punches(&receiver, LINES).await;
    let expected: Vec<(String, String)> =
        (0..LINES).map(|i| (format!("{}", 1000 + i % 7), format!("{} GMT +0530", time(i)))).collect();
    assert_eq!(who_when(&logs), expected, "every line once, in the order uploaded");
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_attlog_lines_are_counted_out_of_ok_n_and_the_good_ones_stored() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Setup::new(&["SN3003"]).callback(&receiver).start_logged(dir.path());
    let device = AdmsDevice::start_with(&gw.base, terminal("SN3003")).await;

    let body = [
        "501\t2026-06-21 08:00:00\t0\t1\t0\t0\t0",                    // 7 fields: good
        "\t2026-06-21 08:00:01\t0\t1\t0\t0\t0",                       // no PIN
        "502\t2026-21-06 08:00:02\t0\t1\t0\t0\t0",                    // a time that does not parse
        "503\t2026-06-21 08:00:03\tIN\t1\t0\t0\t0",                   // a status that is not a number
        "504\t2026-06-21 08:00:04\t1\t15",                            // 4 fields: PIN and time suffice
        "505\t2026-06-21 08:00:05\t1\t4\t",                           // 5 fields, empty work code: good
        "506\t2026-06-21 08:00:06\t0\t15\t0\t0\t0\t1\t36.5\t0\t0\t0", // 12 fields: good
        "garbage",
    ]
    .join("\n")
        + "\n";
    let answer = device.send_raw_attlog(&body).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 4"), "n counts the good lines only");

    let logs = wait_punches(&receiver, 4).await;
    assert_eq!(
        who_when(&logs),
        [
            ("501".to_string(), "2026-06-21 08:00:00 GMT +0530".to_string()),
            ("504".to_string(), "2026-06-21 08:00:04 GMT +0530".to_string()),
            ("505".to_string(), "2026-06-21 08:00:05 GMT +0530".to_string()),
            ("506".to_string(), "2026-06-21 08:00:06 GMT +0530".to_string()),
        ]
    );
    assert_eq!((&logs[1]["Type"], &logs[1]["InputType"]), (&json!("CheckOut"), &json!("Face")));
    assert_eq!((&logs[2]["Type"], &logs[2]["InputType"]), (&json!("CheckOut"), &json!("Card")));
    assert_eq!((&logs[3]["Temperature"], &logs[3]["FaceMask"]), (&json!("36.5"), &json!(true)));
    let stored = Client::new(&gw.base).stored_punches("SN3003").await;
    let users: Vec<&str> = stored.iter().filter_map(|p| p["user_id"].as_str()).collect();
    assert_eq!(users, ["501", "504", "505", "506"]);
    // Each bad line is logged with its number and why; the request gets a summary line.
    let log = wait_for("the bad lines in the gateway's log", || {
        let log = gw.log();
        (log.matches("bad upload line skipped").count() >= 4 && log.contains("upload had bad lines")).then_some(log)
    })
    .await;
    let bad: Vec<&str> = log.lines().filter(|l| l.contains("bad upload line skipped")).collect();
    assert_eq!(bad.len(), 4, "{log}");
    for (line, why) in
        [(2, "empty PIN"), (3, "2026-21-06 08:00:02"), (4, "status `IN` is not a number"), (8, "no time field")]
    {
        assert!(
            bad.iter().any(|l| l.contains("SN3003") && l.contains(&format!("line=\"{line}\"")) && l.contains(why)),
            "line {line} ({why}) is not logged: {bad:#?}"
        );
    }

    // A body of bad lines only is still a success (the device must not re-send it forever).
    let answer = device.send_raw_attlog("x\ny\n").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 0"));
    // A punch after them proves nothing else went to the callback.
    device.punch("507", "2026-06-21 08:00:07", 0, 1).await;
    let logs = wait_punches(&receiver, 5).await;
    assert_eq!(logs.len(), 5);
    assert_eq!(logs[4]["UserId"], "507");
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn essl_quirks_aspx_paths_eight_field_lines_and_a_bare_ok_failure_firmware_work() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&["ESSL4004", "ZK4005"]).callback(&receiver);
    // This firmware family's status 255 means check-out; verify 0 means password.
    setup.extra =
        "[plugins.zkteco.config.status]\n255 = \"check-out\"\n[plugins.zkteco.config.verify]\n0 = \"password\"\n"
            .into();
    let gw = setup.start(dir.path());
    let client = Client::new(&gw.base);
    let quirks = Quirks { aspx_paths: true, eight_field_attlog: true, bare_ok_is_failure: true, ..Quirks::default() };
    let essl = AdmsDevice::start_with(&gw.base, terminal("ESSL4004").quirks(quirks)).await;

    for (i, verify) in [1u16, 4, 0].into_iter().enumerate() {
        let sent = essl.punch("61", &format!("2026-06-21 09:00:0{i}"), 0, verify).await;
        assert_eq!((sent.delivered, sent.buffered), (1, 0), "{:?}", sent.attempts);
        let line = &sent.attempts[0].lines[0];
        assert_eq!(line.split('\t').count(), 8, "{line:?}");
        assert_eq!(line.split('\t').nth(2), Some("255"));
        assert_eq!(sent.attempts[0].body, "OK: 1", "never a bare OK");
    }
    let logs = wait_punches(&receiver, 3).await;
    let got: Vec<(&str, &str)> =
        logs.iter().map(|l| (l["Type"].as_str().unwrap(), l["InputType"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [("CheckOut", "Fingerprint"), ("CheckOut", "Card"), ("CheckOut", "Password")],
        "the configured maps"
    );
    // The bare-OK firmware re-sent nothing: three uploads, three stored punches.
    assert_eq!(essl.uploads().len(), 3, "{:?}", essl.uploads());
    assert_eq!(client.stored_punches("ESSL4004").await.len(), 3);

    // Commands over getrequest.aspx / devicecmd.aspx.
    let added = client.operate("ESSL4004", json!({"type":"add_user","user":{"user_id":"61","first_name":"Ravi","credentials":[{"kind":"fingerprint","index":0,"data":"UkFWSQ=="}]}})).await;
    assert_eq!(added["state"], "done", "{added}");
    assert_eq!(essl.user("61").and_then(|u| u.fingerprint(0).map(|t| t.tmp.clone())).as_deref(), Some("UkFWSQ=="));
    // A local enrolment goes up as OPERLOG on cdata.aspx and reaches the callback.
    let enrolled = essl.enroll_user(biogate_e2e::adms_device::User::new("62", "Meera")).await;
    assert_eq!((enrolled.delivered, enrolled.accepted()), (1, Some(1)), "{:?}", enrolled.attempts);
    let update = wait_for("the enrolment at the callback", || {
        receiver.accepted().iter().map(Delivery::json).find(|b| b["RealTime"]["UserUpdated"]["UserID"] == "62")
    })
    .await;
    assert_eq!(update["RealTime"]["UserUpdated"]["FirstName"], "Meera", "{update}");
    assert_eq!(essl.ping().await.body, "OK");

    // Paths in other cases, and a plain firmware with the old protocol version on the same
    // gateway.
    let http = reqwest::Client::new();
    for path in ["/ICLOCK/PING.ASPX?SN=ESSL4004", "/iClock/Ping?sn=ESSL4004"] {
        let response = http.get(format!("{}{path}", gw.base)).send().await.unwrap();
        assert_eq!((response.status().as_u16(), response.text().await.unwrap()), (200, "OK".to_string()), "{path}");
    }
    let response = http
        .post(format!("{}/iClock/CData.aspx?SN=ESSL4004&table=ATTLOG&Stamp=99", gw.base))
        .body("63\t2026-06-21 09:10:00\t255\t1\t0\t0\t0\t0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "OK: 1");
    let old = AdmsDevice::start_with(&gw.base, terminal("ZK4005").push_version("2.2.14")).await;
    assert_eq!(old.options().unwrap().push_prot_ver(), "2.2.14", "the lower version wins");
    assert_eq!(old.punch("70", "2026-06-21 09:20:00", 255, 1).await.accepted(), Some(1));
    let logs = wait_punches(&receiver, 5).await;
    assert_eq!(
        who_when(&logs[3..]),
        [
            ("63".to_string(), "2026-06-21 09:10:00 GMT +0530".to_string()),
            ("70".to_string(), "2026-06-21 09:20:00 GMT +0530".to_string())
        ]
    );
    essl.stop().await;
    old.stop().await;
}

/// A command a terminal fetched is recorded as sent on disk before the reply leaves: a
/// gateway killed right after it does not hand the command out again. The same holds for
/// a command's lines that waited in the plugin's queue for a later reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_fetched_just_before_a_crash_is_not_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&["ZK4006"]);
    // One line per reply: a user with a fingerprint (two lines) spans two replies.
    setup.plugin_config = "max_commands = 1\n".into();
    let gw = setup.start(dir.path());
    let client = Client::new(&gw.base);
    let (status, record) = client
        .v1(reqwest::Method::POST, "/v1/devices/ZK4006/operations?operation_id=r1", Some(json!({"type":"unlock_door"})))
        .await;
    assert_eq!((status, &record["state"]), (202, &json!("queued")), "{record}");
    let http = reqwest::Client::new();
    let fetch = |base: String| {
        let http = http.clone();
        async move { http.get(format!("{base}/iclock/getrequest?SN=ZK4006")).send().await.unwrap().text().await.unwrap() }
    };
    let first = fetch(gw.base.clone()).await;
    assert!(first.starts_with("C:"), "the command: {first:?}");
    gw.kill();

    let gw = setup.start(dir.path());
    assert_eq!(fetch(gw.base.clone()).await, "OK", "fetched again after the restart");
    let client = Client::new(&gw.base);
    assert_eq!(client.operation("r1").await["state"], "sent");

    let user = json!({"type":"add_user","user":{"user_id":"5","credentials":[{"kind":"fingerprint","index":0,"data":"UkFWSQ=="}]}});
    let (status, record) =
        client.v1(reqwest::Method::POST, "/v1/devices/ZK4006/operations?operation_id=r2", Some(user)).await;
    assert_eq!(status, 202, "{record}");
    let first = fetch(gw.base.clone()).await;
    assert_eq!(first.lines().count(), 1, "one line per reply: {first:?}");
    let second = fetch(gw.base.clone()).await;
    assert!(second.starts_with("C:") && second != first, "the queued line: {second:?}");
    gw.kill();

    let gw = setup.start(dir.path());
    assert_eq!(fetch(gw.base.clone()).await, "OK", "the queued line went out again after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_serial_is_refused_and_auto_registration_records_it_pending() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Setup::new(&["SN5005"]).callback(&receiver).start(dir.path());
    let client = Client::new(&gw.base);
    let stranger = AdmsDevice::new(&gw.base, terminal("ROGUE5006"));
    match stranger.handshake().await {
        Err(AdmsError::Status { status: 404, .. }) => {}
        other => panic!("an unregistered serial must be refused with 404: {other:?}"),
    }
    let answer = stranger.send_raw_attlog("1\t2026-06-21 08:00:00\t0\t1\t0\t0\t0\n").await;
    assert_eq!(answer.status, 404, "{answer:?}");
    let (_, devices) = client.v1(reqwest::Method::GET, "/v1/devices", None).await;
    let ids: Vec<&str> = devices.as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids, ["SN5005"], "refused, not recorded");
    drop(gw);

    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(&["SN5005"]).callback(&receiver);
    setup.auto_register = true;
    let gw = setup.start(dir.path());
    let client = Client::new(&gw.base);
    let newcomer = AdmsDevice::new(&gw.base, terminal("NEW5007"));
    match newcomer.handshake().await {
        Err(AdmsError::Status { status: 403, .. }) => {}
        other => panic!("an auto-registered serial is pending (403) until approved: {other:?}"),
    }
    let (_, devices) = client.v1(reqwest::Method::GET, "/v1/devices", None).await;
    let pending = devices.as_array().unwrap().iter().find(|d| d["id"] == "NEW5007").cloned();
    assert_eq!(pending.as_ref().map(|d| d["state"].clone()), Some(json!("pending")), "{devices}");
    // Punches made meanwhile wait in the terminal.
    newcomer.punch("8", "2026-06-21 07:59:00", 0, 1).await;
    assert_eq!(newcomer.outbox_len(), 1);

    let (status, approved) = client.v1(reqwest::Method::POST, "/v1/devices/NEW5007/approve", None).await;
    assert_eq!((status, &approved["state"]), (200, &json!("approved")), "{approved}");
    newcomer.start_polling();
    newcomer.wait_outbox_empty(WAIT).await;
    let logs = wait_punches(&receiver, 1).await;
    assert_eq!(logs[0]["UserId"], "8");
    newcomer.stop().await;
}
