//! Hardening for devices on the open internet (issue 17), against a real `biogate`
//! process over loopback: every refused query string answers the JSON error body with its
//! stable code and the parameter named, waits are bounded, `/metrics` asks for the admin
//! key, and inputs that cannot be kept exactly (control characters, years out of range,
//! inexact numbers) are refused with the field named. Refused input stores nothing.
use std::path::Path;
use std::time::{Duration, Instant};

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const ADMIN: &str = "test-admin-key-0123456789";
const TOKEN: &str = "tok0123456789abcdef0123456789abc";

/// A gateway with the plain device D1; `server` is added to its `[server]` section.
fn start(dir: &Path, server: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{server}\n[admin]\napi_keys = [\"{ADMIN}\"]\n\
         [devices.D1]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"
    );
    GatewayProcess::start(Path::new(BIN), &write_config(dir, &text))
}

/// An HTTP answer: status, content type, JSON body (or the text as a JSON string).
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

async fn call(request: reqwest::RequestBuilder) -> Answer {
    let response = request.timeout(Duration::from_secs(20)).send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap_or_default();
    Answer { status, content_type, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// Asserts a 400 in the JSON error shape with code 1 naming `field`.
fn assert_refused(answer: &Answer, field: &str, what: &str) {
    assert_eq!((answer.status, answer.content_type.as_str()), (400, "application/json"), "{what}: {}", answer.body);
    assert_eq!(
        (&answer.body["Status"], &answer.body["StatusCode"], &answer.body["field"]),
        (&json!("API_RESPONSE_UNREADABLE_REQUEST"), &json!(1), &json!(field)),
        "{what}: {}",
        answer.body
    );
}

/// The operations stored for D1 and the events in its journal.
async fn stored(http: &reqwest::Client, base: &str) -> (Value, Value) {
    let operations = call(http.get(format!("{base}/v1/devices/D1/operations")).bearer_auth(ADMIN)).await;
    let events = call(http.get(format!("{base}/v1/devices/D1/events")).bearer_auth(ADMIN)).await;
    assert_eq!((operations.status, events.status), (200, 200));
    (operations.body, events.body["events"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_query_strings_answer_the_json_error_body_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "");
    let http = reqwest::Client::new();
    let base = &gw.base;

    // The native command poll.
    for (query, field) in [("max=-1", "max"), ("wait_ms=abc", "wait_ms"), ("wait_ms=1e30", "wait_ms")] {
        let url = format!("{base}/device/v1/commands?stgid=D1&{query}");
        assert_refused(&call(http.get(url).bearer_auth(TOKEN)).await, field, query);
    }
    // The native upload's query string.
    let url = format!("{base}/device/v1/events?stgid=D1&stgid=D2");
    let answer = call(http.post(url).bearer_auth(TOKEN).body(r#"{"events":[]}"#)).await;
    assert_refused(&answer, "stgid", "a repeated stgid");

    // The Cams endpoint: refused before anything is queued.
    let add = json!({"Add":{"User":{"UserID":"7"}},"AuthToken":TOKEN}).to_string();
    for query in ["wait_ms=-5", "wait_ms=120001"] {
        let url = format!("{base}/external/api3.0/biometric?stgid=D1&{query}");
        assert_refused(&call(http.post(url).body(add.clone())).await, "wait_ms", query);
    }

    // `/v1`: punches, the journal, operations with a wait far beyond the bound.
    let punches =
        format!("{base}/v1/devices/D1/punches?start_time=2026-01-01%2000:00:00&end_time=2026-01-02%2000:00:00");
    assert_refused(&call(http.get(format!("{punches}&limit=-1")).bearer_auth(ADMIN)).await, "limit", "limit=-1");
    let url = format!("{base}/v1/devices/D1/punches?end_time=2026-01-02%2000:00:00");
    assert_refused(&call(http.get(url).bearer_auth(ADMIN)).await, "start_time", "start_time missing");
    let url = format!("{base}/v1/devices/D1/events?to=9223372036854775808");
    assert_refused(&call(http.get(url).bearer_auth(ADMIN)).await, "to", "to beyond int64");
    let url = format!("{base}/v1/devices/D1/events?to=9223372036854775807");
    assert_eq!(call(http.get(url).bearer_auth(ADMIN)).await.status, 200, "the largest int64 is taken");
    let url = format!("{base}/v1/devices/D1/deliveries?after=-1");
    assert_refused(&call(http.get(url).bearer_auth(ADMIN)).await, "after", "after=-1");

    let started = Instant::now();
    let url = format!("{base}/v1/devices/D1/users/7/block?wait_ms=9223372036854775808");
    assert_refused(&call(http.post(url).bearer_auth(ADMIN)).await, "wait_ms", "wait_ms=2^63");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not held: {:?}", started.elapsed());
    let url = format!("{base}/v1/devices/D1/operations?ttl_seconds=9223372036854775808");
    let answer = call(http.post(url).bearer_auth(ADMIN).json(&json!({"type":"delete_user","user_id":"7"}))).await;
    assert_refused(&answer, "ttl_seconds", "ttl_seconds beyond int64");

    assert_eq!(stored(&http, base).await, (json!([]), json!([])), "refused calls store nothing");

    // In bounds, the same calls are served.
    let url = format!("{base}/v1/devices/D1/users/7/block?wait_ms=0");
    assert_eq!(call(http.post(url).bearer_auth(ADMIN)).await.status, 202, "wait_ms=0 is taken");
    let url = format!("{base}/device/v1/commands?stgid=D1&wait_ms=120000&max=16");
    let answer = call(http.get(url).bearer_auth(TOKEN)).await;
    assert_eq!(
        (answer.status, &answer.body["commands"][0]["type"]),
        (200, &json!("set_user_enabled")),
        "{}",
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ask_for_the_admin_key_unless_public() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "");
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", gw.base);
    for (key, what) in [(None, "no key"), (Some("wrong-key-wrong-key"), "a wrong key")] {
        let mut request = http.get(&url);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let answer = call(request).await;
        assert_eq!(
            (answer.status, answer.content_type.as_str(), &answer.body["Status"], &answer.body["StatusCode"]),
            (401, "application/json", &json!("API_RESPONSE_AUTH_TOKEN_REFUSED"), &json!(7)),
            "{what}: {}",
            answer.body
        );
    }
    let answer = call(http.get(&url).bearer_auth(ADMIN)).await;
    assert_eq!(answer.status, 200, "with the admin key");
    assert!(answer.body.as_str().is_some_and(|t| t.contains("biogate_")), "Prometheus text: {}", answer.body);
    drop(gw);

    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "public_metrics = true");
    let answer = call(http.get(format!("{}/metrics", gw.base))).await;
    assert_eq!(answer.status, 200, "public_metrics = true: {}", answer.body);
    assert!(answer.body.as_str().is_some_and(|t| t.contains("biogate_")), "Prometheus text: {}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_that_cannot_be_kept_exactly_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), "");
    let http = reqwest::Client::new();
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let good = NativeDevice::punch("7", "2026-06-21 09:02:14", "CheckIn");

    // A native punch: a control character in user_id, a year out of range. A good punch
    // in the same request is not stored either.
    for (punch, field) in [
        (NativeDevice::punch("7\u{0}", "2026-06-21 09:02:14", "CheckIn"), "events[1].user_id"),
        (NativeDevice::punch("7\n8", "2026-06-21 09:02:14", "CheckIn"), "events[1].user_id"),
        (NativeDevice::punch("7", "0001-01-01 00:00:00", "CheckIn"), "events[1].log_time"),
        (NativeDevice::punch("7", "0001-01-01T00:00:00Z", "CheckIn"), "events[1].log_time"),
        (NativeDevice::punch("7", "1969-12-31 23:59:59 GMT +0000", "CheckIn"), "events[1].log_time"),
    ] {
        let answer = device.send(vec![good.clone(), punch.clone()]).await;
        assert_eq!(
            (answer.status, &answer.body["StatusCode"], &answer.body["field"]),
            (400, &json!(1), &json!(field)),
            "{punch}: {}",
            answer.body
        );
    }
    assert_eq!(stored(&http, &gw.base).await, (json!([]), json!([])), "refused uploads store nothing");

    // Cams: a numeric UserID that JSON numbers cannot carry exactly is refused...
    let cams = format!("{}/external/api3.0/biometric?stgid=D1&wait_ms=0", gw.base);
    for id in ["1.2345678901234567e+38", "18446744073709551616", "12.0"] {
        let body = format!(r#"{{"Add":{{"User":{{"UserID":{id}}}}},"AuthToken":"{TOKEN}"}}"#);
        let answer = call(http.post(&cams).body(body)).await;
        assert_refused(&answer, "Add.User.UserID", id);
    }
    let body = json!({"Add":{"User":{"UserID":"7\u{0}"}},"AuthToken":TOKEN}).to_string();
    assert_refused(&call(http.post(&cams).body(body)).await, "user.user_id", "a NUL in a Cams UserID");
    assert_eq!(stored(&http, &gw.base).await, (json!([]), json!([])), "refused Cams calls store nothing");

    // ... and one it carries exactly is kept digit for digit.
    let body = format!(r#"{{"Add":{{"User":{{"UserID":9007199254740993}}}},"AuthToken":"{TOKEN}"}}"#);
    let answer = call(http.post(&cams).body(body)).await;
    assert_eq!((answer.status, &answer.body["StatusCode"]), (200, &json!(0)), "{}", answer.body);
    let (operations, _) = stored(&http, &gw.base).await;
    assert_eq!(operations[0]["request"]["user"]["user_id"], json!("9007199254740993"), "{operations}");

    // The native punch in range is stored.
    let answer = device.send(vec![good]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// A disabled device takes no operations: `/v1` refuses them (409, code 5) and queues
/// nothing; enabled again, it takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_device_takes_no_operations() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gw = start(dir.path(), "");
    let http = reqwest::Client::new();
    let base = &gw.base;
    let enable =
        |on: bool| http.patch(format!("{base}/v1/devices/D1")).bearer_auth(ADMIN).json(&json!({ "enabled": on }));
    assert_eq!(call(enable(false)).await.status, 200);
    let user = json!({ "first_name": "Ann" });
    for (what, request) in [
        (
            "operation",
            http.post(format!("{base}/v1/devices/D1/operations")).json(&json!({"type": "delete_user", "user_id": "7"})),
        ),
        ("put user", http.put(format!("{base}/v1/devices/D1/users/7")).json(&user)),
        ("block", http.post(format!("{base}/v1/devices/D1/users/7/block"))),
    ] {
        let answer = call(request.bearer_auth(ADMIN)).await;
        assert_eq!((answer.status, &answer.body["StatusCode"]), (409, &json!(5)), "{what}: {}", answer.body);
    }
    let (operations, _) = stored(&http, base).await;
    assert_eq!(operations.as_array().map(Vec::len), Some(0), "nothing queued: {operations}");
    assert_eq!(call(enable(true)).await.status, 200);
    let answer = call(http.post(format!("{base}/v1/devices/D1/users/7/block")).bearer_auth(ADMIN)).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}

/// What schemathesis found the server accepting against its own schema, now refused with
/// the field named and nothing changed: a body that is not one JSON object (an array is
/// read field by field by serde; trailing text), a PATCH renaming the device, keys and
/// tokens that are not printable ASCII, page sizes out of bounds; an unknown route is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_bounds_outside_the_schema_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gw = start(dir.path(), "");
    let http = reqwest::Client::new();
    let base = &gw.base;
    let device = || async { call(http.get(format!("{base}/v1/devices/D1")).bearer_auth(ADMIN)).await.body };
    let before = device().await;
    let patch = |body: String| {
        http.patch(format!("{base}/v1/devices/D1"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
    };
    for (body, field) in [
        ("[null, null]".to_string(), "$"),
        (r#"["x", "0123456789abcdef"]"#.to_string(), "$"),
        (r#"{"label": "a"} {"label": "b"}"#.to_string(), "$"),
        (r#"{"label": "a"}x"#.to_string(), "$"),
        (json!({ "id": "D2" }).to_string(), "id"),
        (json!({ "id": "" }).to_string(), "id"),
        (json!({ "auth_token": "tok with spaces in it 0123" }).to_string(), "auth_token"),
        (json!({ "auth_token": "tokén0123456789abcdef" }).to_string(), "auth_token"),
        (json!({ "security_key": "é".repeat(16) }).to_string(), "security_key"),
        (json!({ "security_key": "0123456789abcdef0123456789abcde\u{7f}" }).to_string(), "security_key"),
    ] {
        assert_refused(&call(patch(body.clone())).await, field, &body);
    }
    assert_eq!(device().await, before, "refused PATCHes change nothing");
    let key = "0123456789abcdef0123456789abcdef";
    let answer = call(patch(json!({ "id": "D1", "security_key": key }).to_string())).await;
    assert_eq!((answer.status, &answer.body["security_key"]), (200, &json!(key)), "{}", answer.body);

    for (path, field) in [
        ("/v1/devices/D1/events?limit=0", "limit"),
        ("/v1/devices/D1/events?limit=1001", "limit"),
        ("/v1/devices/D1/operations?limit=14929879231417557188608", "limit"),
        ("/v1/devices/D1/users?limit=1001", "limit"),
        ("/v1/dead-letters?limit=0", "limit"),
        ("/v1/devices/D1/punches?start_time=2026-06-01%2000:00:00&end_time=2026-06-02%2000:00:00&limit=5001", "limit"),
    ] {
        assert_refused(&call(http.get(format!("{base}{path}")).bearer_auth(ADMIN)).await, field, path);
    }
    let answer = call(http.get(format!("{base}/v1/devices/D1/events?limit=1000")).bearer_auth(ADMIN)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let answer = call(http.post(format!("{base}/v1/routes/nope/enable")).bearer_auth(ADMIN)).await;
    assert_eq!((answer.status, &answer.body["field"]), (404, &json!("name")), "{}", answer.body);
    let replay = json!({ "route": "nope", "device": "D1", "sequence": 1 });
    let answer = call(http.post(format!("{base}/v1/replay")).bearer_auth(ADMIN).json(&replay)).await;
    assert_eq!((answer.status, &answer.body["field"]), (404, &json!("route")), "{}", answer.body);
}
