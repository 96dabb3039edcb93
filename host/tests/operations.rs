//! Server-to-device operations end to end over loopback: a real `biogate` process, native
//! terminals that long-poll for commands and keep a user table, a real callback receiver.
//! Operations through the Cams endpoint and `/v1` reach the terminal and end with the
//! right state; offline terminals get their commands in order; TTLs expire; bad calls get
//! the documented codes; LoadLog pages exactly; the OpenAPI document validates.
use std::path::Path;
use std::time::Duration;

use biogate::crypto::{BodyCipher, EncryptionMode};
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::{NativeDevice, NativeTerminal};
use biogate_e2e::receiver::Receiver;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const KEY: &str = "0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

/// A gateway with plain devices D1, D2, D3, an encrypted device E1 and, when given, a
/// callback route for every device.
fn start(dir: &Path, callback: Option<&str>) -> GatewayProcess {
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n");
    for id in ["D1", "D2", "D3"] {
        text.push_str(&format!("[devices.{id}]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"));
    }
    text.push_str(&format!(
        "[devices.E1]\nauth_token = \"{TOKEN}\"\nsecurity_key = \"{KEY}\"\ntime_zone = \"+05:30\"\n"
    ));
    if let Some(url) = callback {
        text.push_str(&format!(
            "[routes.hr]\ndevices = [\"*\"]\nallow_private_networks = true\nretry_schedule = [\"50ms\"]\nsink = {{ type = \"callback\", url = \"{url}\" }}\n"
        ));
    }
    GatewayProcess::start(Path::new(BIN), &write_config(dir, &text))
}

/// A REST client of the gateway.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(gw: &GatewayProcess) -> Self {
        Client { http: reqwest::Client::new(), base: gw.base.clone() }
    }

    /// A Cams call with the device's token; returns (HTTP status, JSON reply).
    async fn cams(&self, device: &str, mut envelope: Value, query: &str) -> (u16, Value) {
        envelope["AuthToken"] = TOKEN.into();
        self.cams_raw(device, envelope.to_string().into_bytes(), query).await
    }

    async fn cams_raw(&self, device: &str, body: Vec<u8>, query: &str) -> (u16, Value) {
        let url = format!("{}/external/api3.0/biometric?stgid={device}{query}", self.base);
        let response = self.http.post(url).body(body).send().await.expect("the gateway answers");
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
        let (status, body) = self
            .v1(reqwest::Method::POST, &format!("/v1/devices/{device}/operations?wait_ms=10000"), Some(op.clone()))
            .await;
        assert_eq!(status, 200, "{op} -> {body}");
        body
    }
}

fn terminal(gw: &GatewayProcess, id: &str) -> NativeTerminal {
    NativeTerminal::start(NativeDevice::new(&gw.base, id, TOKEN), 20_000)
}

/// Command results delivered to the callback, by the operation they close.
fn results_for(receiver: &Receiver, operation: &str) -> Vec<Value> {
    receiver
        .accepted()
        .iter()
        .map(|d| d.json())
        .filter(|b| b["RealTime"]["CommandResult"]["OperationID"] == operation)
        .map(|b| b["RealTime"]["CommandResult"].clone())
        .collect()
}

async fn wait_for_result(receiver: &Receiver, operation: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(r) = results_for(receiver, operation).pop() {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "no result for {operation} reached the callback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cams_add_user_with_templates_reaches_the_device_and_delete_removes_it() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), Some(&receiver.url));
    let client = Client::new(&gw);
    let d1 = terminal(&gw, "D1");

    let (status, reply) = client
        .cams(
            "D1",
            json!({"Add":{"User":{"UserID":"100","FirstName":"Manu","LastName":"Mona","UserType":"Admin"},
                "Template":[{"Type":"FingerPrint","UserID":"100","Index":"6","Size":"8","Data":"QUJDREVGR0g="},
                            {"Type":"Password","UserID":"100","Data":"3211"},
                            {"Type":"Card","UserID":"100","Data":"0012345678"}],
                "Photo":{"Type":"Base64","UserID":"100","Size":"4","Data":"/9j/4A=="}},
                "OperationID":"9nu1wak5616p","Time":"2026-06-21 09:00:00 GMT +0530"}),
            "",
        )
        .await;
    assert_eq!(
        (status, &reply["Status"], &reply["StatusCode"], &reply["OperationID"]),
        (200, &json!("done"), &json!(0), &json!("9nu1wak5616p")),
        "{reply}"
    );
    let user = d1.user("100").expect("the user is on the device");
    assert_eq!(user.first_name.as_deref(), Some("Manu"));
    assert_eq!(user.role.as_deref(), Some("Admin"));
    assert!(user.has_photo);
    let mut kinds: Vec<_> = user.templates.iter().map(|(k, i, _)| (k.clone(), *i)).collect();
    kinds.sort();
    assert_eq!(kinds, vec![("Card".into(), None), ("Fingerprint".into(), Some(6)), ("Password".into(), None)]);

    let (_, op) = client.v1(reqwest::Method::GET, "/v1/operations/9nu1wak5616p", None).await;
    assert_eq!(
        (&op["state"], &op["type"], &op["return_code"]),
        (&json!("done"), &json!("add_user"), &json!(0)),
        "{op}"
    );
    let result = wait_for_result(&receiver, "9nu1wak5616p").await;
    assert_eq!(
        (&result["ReturnCode"], &result["Details"]["Status"]),
        (&json!(0), &json!("done")),
        "the final status reaches the callback"
    );

    let (_, reply) = client.cams("D1", json!({"Delete":{"User":{"UserID":"100"}}, "OperationID":"del100"}), "").await;
    assert_eq!(reply["Status"], "done", "{reply}");
    assert!(d1.user("100").is_none(), "the delete removed the user");

    // A delete of a PIN the device does not know: the device answers -10.
    let (status, reply) = client.cams("D1", json!({"Delete":{"User":{"UserID":"nobody"}}}), "").await;
    assert_eq!((status, &reply["StatusCode"], &reply["ReturnCode"]), (200, &json!(40), &json!(-10)), "{reply}");
    assert_eq!(reply["Status"], "API_RESPONSE_DEVICE_REFUSED");
    let id = reply["OperationID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 12, "a generated OperationID looks like Cams'");
    let (_, op) = client.v1(reqwest::Method::GET, &format!("/v1/operations/{id}"), None).await;
    assert_eq!((&op["state"], &op["return_code"]), (&json!("failed"), &json!(-10)));
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_operation_of_the_catalogue_works_through_v1() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let client = Client::new(&gw);
    let (d1, d2, d3) = (terminal(&gw, "D1"), terminal(&gw, "D2"), terminal(&gw, "D3"));

    let add = json!({"type":"add_user","user":{"user_id":"7","first_name":"Asha","credentials":[
        {"kind":"fingerprint","index":1,"data":"QUJDRA=="},{"kind":"face","data":"RkFDRQ=="}]}});
    assert_eq!(client.operate("D1", add).await["state"], "done");
    let ops = [
        json!({"type":"update_user","user":{"user_id":"7","last_name":"Rao"}}),
        json!({"type":"add_user_photo","user_id":"7","photo":"/9j/4A=="}),
        json!({"type":"block_user","user_id":"7"}),
        json!({"type":"unblock_user","user_id":"7"}),
        json!({"type":"set_access_window","user_id":"7","valid_from":"2026-07-01 08:00:00","valid_until":"2026-07-31 18:00:00"}),
        json!({"type":"set_user_role","user_id":"7","role":"admin"}),
        json!({"type":"delete_credential","user_id":"7","kind":"face"}),
        json!({"type":"start_enrollment","user_id":"7","kind":"fingerprint","index":2}),
        json!({"type":"sync_time"}),
        json!({"type":"set_option","key":"Volume","value":"5"}),
        json!({"type":"unlock_door"}),
        json!({"type":"reboot"}),
        json!({"type":"request_punch_upload","span":{"start_time":"2026-06-01 00:00:00","end_time":"2026-06-02 00:00:00"}}),
        json!({"type":"delete_punch_log"}),
        json!({"type":"delete_punch_photos"}),
        json!({"type":"resend_users"}),
    ];
    for op in ops {
        let got = client.operate("D1", op.clone()).await;
        assert_eq!(got["state"], "done", "{op} -> {got}");
    }
    let user = d1.user("7").unwrap();
    // Partial changes were sent as whole records: the name survives the role change.
    assert_eq!((user.first_name.as_deref(), user.role.as_deref(), user.enabled), (Some("Asha"), Some("Admin"), true));
    assert_eq!(user.valid_until.as_deref(), Some("2026-07-31 18:00:00 GMT +0530"));
    assert_eq!(
        user.templates.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        vec!["Fingerprint"],
        "the face was deleted"
    );
    {
        let state = d1.state.lock().unwrap();
        assert_eq!((state.reboots, state.unlocks, state.options.get("Volume").map(String::as_str)), (1, 1, Some("5")));
    }
    let info = client.operate("D1", json!({"type":"load_device_info"})).await;
    assert_eq!(info["details"]["Firmware"], "sim-1.0", "{info}");
    let known = client.operate("D1", json!({"type":"load_user_info","user_id":"7"})).await;
    assert_eq!(known["users"][0]["role"], "admin", "{known}");
    assert_eq!(known["users"][0]["credentials"], json!([{"kind":"fingerprint","index":1}]));

    // Copy to D2 and D3, then move from D1 to D2: templates follow, the source loses it.
    let copy = client.operate("D1", json!({"type":"copy_user","user_id":"7","to_devices":["D2","D3"]})).await;
    assert_eq!((copy["state"].as_str(), copy["steps"].as_array().map(Vec::len)), (Some("done"), Some(2)), "{copy}");
    assert_eq!(d3.user("7").unwrap().templates.len(), 1);
    client.operate("D2", json!({"type":"delete_user","user_id":"7"})).await;
    let moved = client.operate("D1", json!({"type":"move_user","user_id":"7","to_device":"D2"})).await;
    assert_eq!(moved["state"], "done", "{moved}");
    assert!(d1.user("7").is_none() && d2.user("7").is_some(), "moved: on D2, gone from D1");
    assert_eq!(d2.user("7").unwrap().first_name.as_deref(), Some("Asha"));

    for op in [json!({"type":"delete_all_users"}), json!({"type":"clear_all_data"})] {
        assert_eq!(client.operate("D3", op).await["state"], "done");
    }
    assert!(d3.user("7").is_none());
    // The users shorthand routes.
    let (status, put) = client
        .v1(reqwest::Method::PUT, "/v1/devices/D3/users/42?wait_ms=10000", Some(json!({"first_name":"Zed"})))
        .await;
    assert_eq!((status, &put["state"]), (200, &json!("done")), "{put}");
    let (_, listed) = client.v1(reqwest::Method::GET, "/v1/devices/D3/users", None).await;
    assert_eq!(
        listed.as_array().map(|l| l.iter().map(|u| u["user_id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("42")])
    );
    let (_, blocked) = client.v1(reqwest::Method::POST, "/v1/devices/D3/users/42/block?wait_ms=10000", None).await;
    assert_eq!(blocked["state"], "done");
    assert!(!d3.user("42").unwrap().enabled);
    let (_, deleted) = client.v1(reqwest::Method::DELETE, "/v1/devices/D3/users/42?wait_ms=10000", None).await;
    assert_eq!(deleted["state"], "done");
    assert!(d3.user("42").is_none());
    for t in [d1, d2, d3] {
        t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_gets_its_queued_commands_in_order_and_ttls_expire() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), Some(&receiver.url));
    let client = Client::new(&gw);

    let mut ids = Vec::new();
    for i in 0..6 {
        let (status, op) = client
            .v1(
                reqwest::Method::POST,
                &format!("/v1/devices/D1/operations?operation_id=q{i}"),
                Some(json!({"type":"add_user","user":{"user_id":format!("{i}")}})),
            )
            .await;
        assert_eq!((status, &op["state"]), (202, &json!("queued")), "{op}");
        ids.push(format!("q{i}"));
    }
    // Retrying a submission with the same id and request is safe; a different request is not.
    let (status, again) = client
        .v1(
            reqwest::Method::POST,
            "/v1/devices/D1/operations?operation_id=q0",
            Some(json!({"type":"add_user","user":{"user_id":"0"}})),
        )
        .await;
    assert_eq!((status, &again["id"]), (202, &json!("q0")));
    let (status, clash) = client
        .v1(reqwest::Method::POST, "/v1/devices/D1/operations?operation_id=q0", Some(json!({"type":"reboot"})))
        .await;
    assert_eq!((status, &clash["StatusCode"]), (409, &json!(43)), "{clash}");
    // One expires before the device comes back; one is cancelled.
    let (_, short) = client
        .v1(
            reqwest::Method::POST,
            "/v1/devices/D1/operations?operation_id=short&ttl_seconds=1",
            Some(json!({"type":"reboot"})),
        )
        .await;
    assert_eq!(short["state"], "queued");
    let (status, cancelled) = client.v1(reqwest::Method::DELETE, "/v1/operations/q5", None).await;
    assert_eq!((status, &cancelled["state"]), (200, &json!("cancelled")));
    let (status, twice) = client.v1(reqwest::Method::DELETE, "/v1/operations/q5", None).await;
    assert_eq!((status, &twice["StatusCode"]), (409, &json!(35)));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_, expired) = client.v1(reqwest::Method::GET, "/v1/operations/short", None).await;
    assert_eq!((&expired["state"], &expired["return_code"]), (&json!("expired"), &json!(-9001)), "{expired}");
    assert_eq!(wait_for_result(&receiver, "short").await["Details"]["Status"], "expired");

    let d1 = terminal(&gw, "D1");
    let deadline = tokio::time::Instant::now() + WAIT;
    while d1.received_ids().len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "got {:?}", d1.received_ids());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        d1.received_ids(),
        ids[..5].to_vec(),
        "queued commands arrive once, in order; cancelled and expired ones never"
    );
    for id in &ids[..5] {
        assert_eq!(wait_for_result(&receiver, id).await["Details"]["Status"], "done");
    }
    let (_, listed) = client.v1(reqwest::Method::GET, "/v1/devices/D1/operations", None).await;
    let states: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(states.iter().filter(|(_, s)| s == "done").count(), 5, "{states:?}");
    // A Cams call that cannot be confirmed in time answers with the operation still open.
    let state = d1.stop().await;
    let (status, reply) = client.cams("D1", json!({"Control":{"Reboot":"Device"}}), "&wait_ms=200").await;
    assert_eq!((status, &reply["Status"], &reply["StatusCode"]), (200, &json!("queued"), &json!(0)), "{reply}");
    assert_eq!(state.lock().unwrap().reboots, 0);
}

/// The ids of a command poll's reply, in order.
fn ids_of(commands: &[Value]) -> Vec<&str> {
    commands.iter().map(|c| c["operation_id"].as_str().unwrap_or_default()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_reply_was_lost_is_handed_out_again_unless_that_could_reorder() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [operations]\nredeliver_after_ms = 1000\nmax_deliveries = 2\n[devices.D1]\nauth_token = \"{TOKEN}\"\n"
    );
    let config = write_config(dir.path(), &text);
    let gw = GatewayProcess::start(Path::new(BIN), &config);
    let client = Client::new(&gw);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let submit = |id: &'static str, op: Value| {
        let client = &client;
        async move {
            let (status, record) = client
                .v1(reqwest::Method::POST, &format!("/v1/devices/D1/operations?operation_id={id}"), Some(op))
                .await;
            assert_eq!((status, &record["state"]), (202, &json!("queued")), "{record}");
        }
    };
    let state = |id: &'static str| {
        let client = &client;
        async move { client.v1(reqwest::Method::GET, &format!("/v1/operations/{id}"), None).await.1 }
    };
    let answer = |results: Vec<(&'static str, i32)>| {
        let device = &device;
        async move {
            let events = results
                .into_iter()
                .map(|(id, code)| json!({"type":"command_result","operation_id":id,"return_code":code}))
                .collect();
            let answer = device.send(events).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
    };
    let poll = |wait_ms: u64| {
        let device = &device;
        async move {
            ids_of(&device.poll_commands(wait_ms).await.expect("a poll reply"))
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };

    submit("a1", json!({"type":"add_user","user":{"user_id":"1"}})).await;
    submit("u1", json!({"type":"unlock_door"})).await;
    // The reply carrying both never reaches the device.
    assert_eq!(poll(0).await, ["a1", "u1"]);
    submit("a2", json!({"type":"delete_user","user_id":"2"})).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // a1 is back, still `sent` (it may have been carried out: it cannot be recalled).
    let (status, refused) = client.v1(reqwest::Method::DELETE, "/v1/operations/a1", None).await;
    assert_eq!((status, &refused["StatusCode"]), (409, &json!(35)), "{refused}");
    // It comes ahead of the later a2; opening the door again could do harm: not repeated.
    assert_eq!(poll(0).await, ["a1", "a2"]);
    let a1 = state("a1").await;
    assert_eq!((&a1["state"], &a1["deliveries"]), (&json!("sent"), &json!(2)), "{a1}");
    // This time the device answers: answered commands are not handed out again.
    answer(vec![("a1", 0), ("a2", -10)]).await;
    assert_eq!(state("a1").await["state"], "done");
    assert_eq!(state("a2").await["state"], "failed");
    assert!(poll(2500).await.is_empty(), "answered and unrepeatable commands are not handed out again");
    let u1 = state("u1").await;
    assert_eq!((&u1["state"], &u1["deliveries"]), (&json!("sent"), &json!(1)), "{u1}");

    // A later command reached the device (it answered it): repeating a3 now could undo
    // a5 (add after delete), so a3 waits for its result or its TTL.
    submit("a3", json!({"type":"add_user","user":{"user_id":"3"}})).await;
    assert_eq!(poll(0).await, ["a3"]);
    submit("a5", json!({"type":"delete_user","user_id":"3"})).await;
    assert_eq!(poll(0).await, ["a5"]);
    answer(vec![("a5", -10)]).await;
    assert!(poll(2500).await.is_empty(), "a3 was handed out again after a later command");
    let a3 = state("a3").await;
    assert_eq!((&a3["state"], &a3["deliveries"]), (&json!("sent"), &json!(1)), "{a3}");

    // A command is handed out at most max_deliveries times; then it waits for its TTL.
    submit("a6", json!({"type":"add_user","user":{"user_id":"6"}})).await;
    assert_eq!(poll(0).await, ["a6"]);
    assert_eq!(poll(5000).await, ["a6"]);
    assert!(poll(2500).await.is_empty(), "a third delivery");
    let a6 = state("a6").await;
    assert_eq!((&a6["state"], &a6["deliveries"]), (&json!("sent"), &json!(2)), "{a6}");

    // The redelivery time is kept on disk: a command taken just before the gateway was
    // killed is handed out again after the restart.
    submit("a7", json!({"type":"add_user","user":{"user_id":"7"}})).await;
    assert_eq!(poll(0).await, ["a7"]);
    gw.kill();
    let gw = GatewayProcess::start(Path::new(BIN), &config);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    assert_eq!(ids_of(&device.poll_commands(5000).await.expect("a poll reply")), ["a7"], "after a restart");
}

/// With redelivery off (the default) a command is handed out once, even when the gateway
/// is killed right after the reply that carried it: the command is recorded as sent on
/// disk before the reply leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_handed_out_just_before_a_crash_is_not_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let client = Client::new(&gw);
    for id in ["k1", "k2"] {
        let (status, record) = client
            .v1(
                reqwest::Method::POST,
                &format!("/v1/devices/D1/operations?operation_id={id}"),
                Some(json!({"type":"unlock_door"})),
            )
            .await;
        assert_eq!((status, &record["state"]), (202, &json!("queued")), "{record}");
    }
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let commands = device.poll_commands(0).await.expect("a poll reply");
    assert_eq!(ids_of(&commands), ["k1", "k2"]);
    gw.kill();

    let gw = start(dir.path(), None);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let again = device.poll_commands(0).await.expect("a poll reply");
    assert!(again.is_empty(), "handed out again after the restart: {again:?}");
    let client = Client::new(&gw);
    for id in ["k1", "k2"] {
        let (_, record) = client.v1(reqwest::Method::GET, &format!("/v1/operations/{id}"), None).await;
        assert_eq!((&record["state"], &record["deliveries"]), (&json!("sent"), &json!(1)), "{record}");
    }
}

/// Deleting a device takes what the gateway knew of its users and its open operations
/// with it: a device registered again under the same id (maybe someone else's) gets none
/// of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_device_takes_its_users_and_open_operations_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let client = Client::new(&gw);
    let d1 = terminal(&gw, "D1");
    let add = json!({"type":"add_user","user":{"user_id":"7","first_name":"Asha","credentials":[{"kind":"fingerprint","index":1,"data":"QUJDRA=="}]}});
    assert_eq!(client.operate("D1", add).await["state"], "done");
    d1.stop().await;
    let pending = json!({"type":"add_user","user":{"user_id":"8","credentials":[{"kind":"face","data":"RkFDRQ=="}]}});
    let (status, record) =
        client.v1(reqwest::Method::POST, "/v1/devices/D1/operations?operation_id=q1", Some(pending)).await;
    assert_eq!((status, &record["state"]), (202, &json!("queued")), "{record}");
    // A move from D1 to D2: its parent fails with D1, and its step on D2 is not carried out.
    let (status, moved) = client
        .v1(
            reqwest::Method::POST,
            "/v1/devices/D1/operations?operation_id=m1",
            Some(json!({"type":"move_user","user_id":"7","to_device":"D2"})),
        )
        .await;
    assert_eq!(status, 202, "{moved}");
    let d2 = NativeDevice::new(&gw.base, "D2", TOKEN);

    let (status, _) = client.v1(reqwest::Method::DELETE, "/v1/devices/D1", None).await;
    assert_eq!(status, 204);
    let (_, q1) = client.v1(reqwest::Method::GET, "/v1/operations/q1", None).await;
    assert_eq!((&q1["state"], &q1["return_code"]), (&json!("failed"), &json!(-9003)), "{q1}");

    let (status, created) =
        client.v1(reqwest::Method::POST, "/v1/devices", Some(json!({"id":"D1","auth_token":TOKEN}))).await;
    assert_eq!(status, 201, "{created}");
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let commands = device.poll_commands(0).await.expect("a poll reply");
    assert!(commands.is_empty(), "the old registration's command: {commands:?}");
    let known = client.operate("D1", json!({"type":"load_user_info"})).await;
    assert_eq!(known["users"], json!([]), "the old registration's users: {known}");
    let (_, m1) = client.v1(reqwest::Method::GET, "/v1/operations/m1", None).await;
    assert_eq!(m1["state"], "failed", "{m1}");
    let on_d2 = d2.poll_commands(0).await.expect("a poll reply");
    assert!(on_d2.is_empty(), "the move's step went to D2: {on_d2:?}");

    // D3 sits in a long poll through its delete and registration again: the new
    // registration's command goes to the new registration, not to the old poll.
    let old_base = gw.base.clone();
    let old_poll = tokio::spawn(async move { NativeDevice::new(&old_base, "D3", TOKEN).poll_commands(20_000).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.v1(reqwest::Method::DELETE, "/v1/devices/D3", None).await.0, 204);
    assert_eq!(
        client.v1(reqwest::Method::POST, "/v1/devices", Some(json!({"id":"D3","auth_token":TOKEN}))).await.0,
        201
    );
    let (status, _) = client
        .v1(reqwest::Method::POST, "/v1/devices/D3/operations?operation_id=n1", Some(json!({"type":"unlock_door"})))
        .await;
    assert_eq!(status, 202);
    let old = old_poll.await.unwrap().expect("a poll reply");
    assert!(old.is_empty(), "the old registration's poll took {old:?}");
    let d3 = NativeDevice::new(&gw.base, "D3", TOKEN);
    assert_eq!(ids_of(&d3.poll_commands(0).await.expect("a poll reply")), ["n1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_the_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let client = Client::new(&gw);
    let add = json!({"Add":{"User":{"UserID":"1"}}});

    let mut wrong = add.clone();
    wrong["AuthToken"] = "wrong-token-wrong-token-wrong-tok".into();
    let (status, reply) = client.cams_raw("D1", wrong.to_string().into_bytes(), "").await;
    assert_eq!((status, &reply["StatusCode"]), (401, &json!(7)), "wrong AuthToken: {reply}");
    let (status, reply) = client.cams("NOPE", add.clone(), "").await;
    assert_eq!((status, &reply["StatusCode"]), (404, &json!(2)), "unknown stgid: {reply}");
    let (status, reply) = client.cams_raw("D1", b"{not json".to_vec(), "").await;
    assert_eq!((status, &reply["StatusCode"]), (400, &json!(1)), "unreadable: {reply}");
    let (status, reply) = client.cams("E1", add.clone(), "").await;
    assert_eq!((status, &reply["StatusCode"]), (400, &json!(19)), "plain body to an encrypted device: {reply}");
    let (status, reply) = client.cams("D1", json!({"Add":{"User":{"UserID":"1"},"Template":[{"Type":"Tongue","UserID":"1","Data":"x"}]}, "OperationID":"bad1"}), "").await;
    assert_eq!(
        (status, &reply["StatusCode"], &reply["field"], &reply["OperationID"]),
        (400, &json!(1), &json!("Add.Template[0].Type"), &json!("bad1")),
        "{reply}"
    );
    let (status, reply) = client
        .cams(
            "D1",
            json!({"Add":{"User":{"UserID":"1"},"Template":[{"Type":"FingerPrint","UserID":"1","Data":"%%%"}]}}),
            "",
        )
        .await;
    assert_eq!((status, &reply["field"]), (400, &json!("user.credentials[0].data")), "{reply}");
    let (status, reply) = client
        .cams(
            "D1",
            json!({"Load":{"PunchLog":{"Filter":{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-02-15 00:00:00"}}}}),
            "",
        )
        .await;
    assert_eq!((status, &reply["StatusCode"]), (400, &json!(42)), "over 30 days: {reply}");
    let (status, reply) = client
        .v1(
            reqwest::Method::POST,
            "/v1/devices/D1/operations",
            Some(json!({"type":"move_user","user_id":"1","to_device":"D2"})),
        )
        .await;
    assert_eq!((status, &reply["field"]), (400, &json!("user_id")), "moving a user the gateway does not know: {reply}");
    let (status, reply) =
        client.v1(reqwest::Method::POST, "/v1/devices/D1/operations", Some(json!({"type":"teleport"}))).await;
    assert_eq!((status, &reply["StatusCode"]), (400, &json!(1)), "{reply}");
    let (status, _) = client
        .http
        .get(format!("{}/v1/operations/x", gw.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "the resource API needs the API key");

    // The encrypted device: an encrypted call works and its reply is encrypted.
    let cipher = BodyCipher::new(EncryptionMode::CamsEcb, Some(KEY)).unwrap();
    let mut body =
        json!({"Load":{"PunchLog":{"Filter":{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-01-02 00:00:00"}}}});
    body["AuthToken"] = TOKEN.into();
    let sealed = cipher.encrypt(body.to_string().as_bytes()).unwrap();
    let (status, reply) = client.cams_raw("E1", sealed.into_bytes(), "").await;
    assert_eq!(status, 200, "{reply}");
    let plain = cipher.decrypt(reply.as_str().unwrap().as_bytes()).unwrap();
    let reply: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!((&reply["Status"], &reply["PunchLog"]["ActualRowCount"]), (&json!("done"), &json!("0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_log_pages_exactly_over_days_in_the_device_offset() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let client = Client::new(&gw);
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    // 3,000 punches over five days, sent out of time order in batches.
    let time = |i: usize| {
        let minutes = (i * 7919) % (5 * 24 * 60);
        format!("2026-06-{:02} {:02}:{:02}:{:02}", 10 + minutes / 1440, (minutes / 60) % 24, minutes % 60, i % 60)
    };
    let all: Vec<(String, String)> = (0..3000).map(|i| (format!("u{}", i % 13), time(i))).collect();
    for chunk in all.chunks(500) {
        let events = chunk.iter().map(|(u, t)| NativeDevice::punch(u, t, "CheckIn")).collect();
        assert_eq!(device.send(events).await.status, 200);
    }
    let (start, end) = ("2026-06-11 00:00:00", "2026-06-13 23:59:59");
    let mut expected: Vec<(String, String)> =
        all.iter().filter(|(_, t)| t.as_str() >= start && t.as_str() <= end).cloned().collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));

    let mut rows = Vec::new();
    let mut offset = String::new();
    let mut pages = 0;
    loop {
        let filter = json!({"StartTime": start, "EndTime": end, "OffSet": offset});
        let (status, reply) = client.cams("D1", json!({"Load":{"PunchLog":{"Filter": filter}}}), "").await;
        assert_eq!(status, 200, "{reply}");
        let log = &reply["PunchLog"];
        assert_eq!(log["ActualRowCount"], expected.len().to_string(), "the count is of the whole range, on every page");
        let page = log["Log"].as_array().unwrap();
        assert_eq!(log["ReturnRowCount"], page.len().to_string());
        rows.extend(
            page.iter()
                .map(|r| (r["UserID"].as_str().unwrap().to_string(), r["LogTime"].as_str().unwrap().to_string())),
        );
        pages += 1;
        // New punches inside the range while paging belong to the next query, not this one.
        if pages == 1 {
            device.send(vec![NativeDevice::punch("late", "2026-06-12 12:00:00", "CheckOut")]).await;
        }
        offset = log["OffSet"].as_str().unwrap().to_string();
        if offset.is_empty() {
            break;
        }
    }
    assert!(pages > 2, "{} rows came in {pages} pages", rows.len());
    assert!(rows.iter().all(|(_, t)| t.ends_with(" GMT +0530")), "times are in the device's offset");
    let got: Vec<(String, String)> =
        rows.iter().map(|(u, t)| (u.clone(), t.trim_end_matches(" GMT +0530").to_string())).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got, got_sorted, "pages come in log-time order");
    let mut a = got.clone();
    let mut b = expected.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "every punch of the range exactly once, no skips, no repeats");

    // /v1: one user's punches, and a bad offset.
    let (status, page) = client
        .v1(reqwest::Method::GET, "/v1/devices/D1/punches?start_time=2026-06-11%2000:00:00&end_time=2026-06-13%2023:59:59&user_id=u3&limit=5000", None)
        .await;
    assert_eq!(status, 200);
    let count = expected.iter().filter(|(u, _)| u == "u3").count();
    assert_eq!(page["punches"].as_array().unwrap().len(), count);
    let (status, bad) = client
        .v1(
            reqwest::Method::GET,
            "/v1/devices/D1/punches?start_time=2026-06-11%2000:00:00&end_time=2026-06-12%2000:00:00&offset=garbage",
            None,
        )
        .await;
    assert_eq!((status, &bad["field"]), (400, &json!("query.OffSet")), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_covers_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let text = reqwest::get(format!("{}/v1/openapi.json", gw.base)).await.unwrap().text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in [
        "/external/api3.0/biometric",
        "/device/v1/commands",
        "/v1/devices/{id}/operations",
        "/v1/operations/{id}",
        "/v1/devices/{id}/punches",
        "/v1/devices/{id}/users/{user_id}",
        "/v1/replay",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &text).unwrap();
    let validator = std::env::var("BIOGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(validator)
        .args(["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the OpenAPI document does not validate (needs `pip install openapi-spec-validator`, which `cargo xtask test` does):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
