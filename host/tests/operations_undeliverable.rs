//! A command the gateway cannot hand to its device over a push transport (its dialect
//! refuses to encode it for MQTT, or encryption fails) fails at once with -9003 and is
//! announced, instead of sitting `sent` until its time to live runs out.
use std::time::Duration;

use biogate::config::LoadedConfig;
use biogate::gateway::Gateway;
use biogate::operations::service::RETURN_UNDELIVERABLE;
use biogate::plugin::bindings::types::EventBody;
use biogate::store::OperationState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_command_fails_at_once_and_its_result_is_journaled() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = "[server]\ndata_dir = \"data\"\n[devices.M1]\nauth_token = \"tok0123456789abcdef0123456789abc\"\n";
    let config = LoadedConfig::from_str(text, &dir.path().join("biogate.toml")).expect("a valid config");
    let gw = tokio::task::block_in_place(|| Gateway::build(config)).expect("the gateway");
    let device = gw.registry.get("M1").expect("M1 is registered");
    let request = serde_json::from_value(serde_json::json!({"type": "reboot"})).expect("a request");
    let submitted = gw.operations.submit(&device, None, request, None).await.expect("submitted");
    let taken = gw.operations.take("M1", 16, true).expect("the queue");
    assert_eq!(taken.len(), 1, "the push transport took the command");
    let id = submitted.record.id.clone();

    let record =
        gw.operations.fail_undeliverable(&id, "no MQTT form for reboot".into()).await.expect("stored").expect("known");
    assert_eq!((record.state, record.return_code), (OperationState::Failed, Some(RETURN_UNDELIVERABLE)));
    let settled = gw.operations.wait(&id, Duration::from_secs(5)).await.expect("read").expect("known");
    assert_eq!(settled.state, OperationState::Failed, "closed at once, not when it expires");
    assert!(settled.message.as_deref().is_some_and(|m| m.contains("no MQTT form")), "{settled:?}");

    // The result is announced to the device's routes like any other.
    let events = gw.journal.read("M1", 0, u64::MAX, 100).expect("the journal");
    let result = events.iter().find_map(|e| match &e.body {
        EventBody::CommandResult(r) if r.operation_id == id => Some(r.return_code),
        _ => None,
    });
    assert_eq!(result, Some(RETURN_UNDELIVERABLE), "{events:?}");

    // Failing it again (or a late device result) does not reopen or repeat it.
    let again = gw.operations.fail_undeliverable(&id, "again".into()).await.expect("stored").expect("known");
    assert_eq!(again.message, settled.message);
    gw.shutdown();
}
