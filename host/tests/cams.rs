//! The Cams endpoint's replies to an encrypted device's caller, and the opt-in answer for
//! offline devices (`operations.cams_offline_code`), against a real `biogate` process on
//! loopback. Bodies are sealed and opened here with the `aes`/`ecb` crates directly, not
//! with the gateway's cipher.
use std::path::Path;

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";

/// A gateway with a plain device D1 and a `cams-ecb` device E1; `operations` is added to
/// the `[operations]` section.
fn start(dir: &Path, operations: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\napi_keys = [\"test-admin-key-0123456789\"]\n\
         [operations]\n{operations}\n\
         [devices.D1]\nauth_token = \"{TOKEN}\"\n\
         [devices.E1]\nauth_token = \"{TOKEN}\"\nsecurity_key = \"{KEY}\"\nencryption = \"cams-ecb\"\n"
    );
    GatewayProcess::start(Path::new(BIN), &write_config(dir, &text))
}

/// `base64(AES-256-ECB(PKCS7(plain)))` with `key` as raw key bytes.
fn seal(key: &str, plain: &[u8]) -> String {
    STANDARD.encode(ecb::Encryptor::<Aes256>::new(key.as_bytes().into()).encrypt_padded_vec_mut::<Pkcs7>(plain))
}

/// The JSON inside a sealed reply, or a panic naming the reply.
fn open(key: &str, text: &str) -> Value {
    let bytes = STANDARD.decode(text.trim()).unwrap_or_else(|e| panic!("not base64 ({e}): {text}"));
    let plain = ecb::Decryptor::<Aes256>::new(key.as_bytes().into())
        .decrypt_padded_vec_mut::<Pkcs7>(&bytes)
        .unwrap_or_else(|e| panic!("does not decrypt with the device key ({e}): {text}"));
    serde_json::from_slice(&plain).expect("the decrypted reply is JSON")
}

/// POSTs `body` to the Cams endpoint; returns (HTTP status, content type, body text).
async fn post(gw: &GatewayProcess, device: &str, body: Vec<u8>) -> (u16, String, String) {
    let url = format!("{}/external/api3.0/biometric?stgid={device}&wait_ms=0", gw.base);
    let response = reqwest::Client::new().post(url).body(body).send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, kind, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_to_an_encrypted_device_caller_are_encrypted_once_the_body_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "");

    // Decrypted, then refused: every error reply is sealed with the device's key, with the
    // error's own HTTP status.
    let wrong_token =
        json!({"Add":{"User":{"UserID":"1"}},"OperationID":"enc1","AuthToken":"wrong-token-wrong-token-wrong-tok"});
    let unknown_verb = json!({"Teleport":{"User":{"UserID":"1"}},"OperationID":"enc2","AuthToken":TOKEN});
    let too_long = json!({"Load":{"PunchLog":{"Filter":{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-03-01 00:00:00"}}},"OperationID":"enc3","AuthToken":TOKEN});
    for (plain, http, code, id) in [
        (wrong_token.to_string(), 401, 7, json!("enc1")),
        (unknown_verb.to_string(), 400, 1, json!("enc2")),
        (too_long.to_string(), 400, 42, json!("enc3")),
        ("{not json".to_string(), 400, 1, Value::Null),
    ] {
        let (status, kind, text) = post(&gw, "E1", seal(KEY, plain.as_bytes()).into_bytes()).await;
        assert_eq!((status, kind.as_str()), (http, "text/plain"), "{plain} -> {text}");
        assert!(serde_json::from_str::<Value>(&text).is_err(), "an error went out in the clear: {text}");
        let reply = open(KEY, &text);
        assert_eq!((&reply["StatusCode"], &reply["OperationID"]), (&json!(code), &id), "{plain} -> {reply}");
        assert!(reply["Status"].as_str().is_some_and(|s| s.starts_with("API_RESPONSE_")), "{reply}");
    }

    // A success is sealed as before.
    let fine = json!({"Load":{"PunchLog":{"Filter":{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-01-02 00:00:00"}}},"AuthToken":TOKEN});
    let (status, _, text) = post(&gw, "E1", seal(KEY, fine.to_string().as_bytes()).into_bytes()).await;
    assert_eq!((status, &open(KEY, &text)["StatusCode"]), (200, &json!(0)), "{text}");

    // Not decrypted: the caller may not hold the key, so these stay plain JSON.
    let add = json!({"Add":{"User":{"UserID":"1"}},"AuthToken":TOKEN}).to_string();
    for (device, body, http, code) in [
        ("E1", add.clone().into_bytes(), 400, 19),
        ("E1", seal(OTHER_KEY, add.as_bytes()).into_bytes(), 400, 19),
        ("NOPE", seal(KEY, add.as_bytes()).into_bytes(), 404, 2),
    ] {
        let (status, kind, text) = post(&gw, device, body).await;
        let reply: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not plain JSON: {text}"));
        assert_eq!((status, kind.as_str(), &reply["StatusCode"]), (http, "application/json", &json!(code)), "{text}");
    }

    // A plain device's errors are plain, as before.
    let (status, kind, text) = post(&gw, "D1", wrong_token.to_string().into_bytes()).await;
    let reply: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not plain JSON: {text}"));
    assert_eq!((status, kind.as_str(), &reply["StatusCode"]), (401, "application/json", &json!(7)), "{text}");
}

/// A Cams `Add` for `device` with its token; returns (HTTP status, reply).
async fn add_user(gw: &GatewayProcess, device: &str, user: &str) -> (u16, Value) {
    let body = json!({"Add":{"User":{"UserID":user}},"AuthToken":TOKEN}).to_string().into_bytes();
    let (status, _, text) = post(gw, device, body).await;
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

fn user_ids(commands: &[Value]) -> Vec<String> {
    commands.iter().map(|c| c["user"]["user_id"].as_str().unwrap_or("?").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cams_offline_code_an_unseen_device_is_answered_5_and_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "cams_offline_code = true\nmax_poll_wait_ms = 200\noffline_after_ms = 1500");
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);

    // Not heard from since the gateway started.
    let (status, reply) = add_user(&gw, "D1", "1").await;
    assert_eq!(
        (status, &reply["StatusCode"], &reply["Status"]),
        (409, &json!(5), &json!("API_RESPONSE_DEVICE_UNAVAILABLE")),
        "{reply}"
    );
    // Heard from (a command poll): queued and answered 0 as usual.
    assert_eq!(
        d1.poll_commands(0).await.expect("a poll reply"),
        Vec::<Value>::new(),
        "the refused call queued nothing"
    );
    let (status, reply) = add_user(&gw, "D1", "2").await;
    assert_eq!((status, &reply["StatusCode"]), (200, &json!(0)), "{reply}");
    assert_eq!(user_ids(&d1.poll_commands(0).await.expect("a poll reply")), ["2"]);
    // Silent for longer than its window: offline again.
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let (status, reply) = add_user(&gw, "D1", "3").await;
    assert_eq!((status, &reply["StatusCode"]), (409, &json!(5)), "{reply}");
    // Punches count as being heard from too.
    assert_eq!(d1.send(vec![NativeDevice::punch("9", "2026-06-21 09:00:00", "CheckIn")]).await.status, 200);
    let (status, reply) = add_user(&gw, "D1", "4").await;
    assert_eq!((status, &reply["StatusCode"]), (200, &json!(0)), "{reply}");
    assert_eq!(user_ids(&d1.poll_commands(0).await.expect("a poll reply")), ["4"]);

    // An encrypted device's caller gets the refusal sealed, like every error after decryption.
    let sealed = seal(KEY, json!({"Add":{"User":{"UserID":"5"}},"AuthToken":TOKEN}).to_string().as_bytes());
    let (status, _, text) = post(&gw, "E1", sealed.into_bytes()).await;
    assert_eq!((status, &open(KEY, &text)["StatusCode"]), (409, &json!(5)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_an_unseen_device_gets_its_operation_queued_and_answered_0() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "");
    let (status, reply) = add_user(&gw, "D1", "1").await;
    assert_eq!((status, &reply["StatusCode"], &reply["Status"]), (200, &json!(0), &json!("queued")), "{reply}");
    let d1 = NativeDevice::new(&gw.base, "D1", TOKEN);
    assert_eq!(user_ids(&d1.poll_commands(0).await.expect("a poll reply")), ["1"], "delivered when the device polls");
}
