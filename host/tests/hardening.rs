//! Hardening for devices on the open internet (issue 17), against a real `biogate`
//! process over loopback: every refused query string answers the JSON error body with its
//! stable code and the parameter named, waits are bounded, `/metrics` asks for the admin
//! key, and inputs that cannot be kept exactly (control characters, years out of range,
//! inexact numbers) are refused with the field named. Refused input stores nothing.
use std::path::Path;
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
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
