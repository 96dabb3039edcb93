//! Helpers shared by the host's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use biogate::plugin::bindings::types::{DeviceTime, Event, EventBody, InputType, Punch, PunchType};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// A plugin component built from source by `cargo xtask plugins`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    let path = workspace_root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first with `cargo xtask plugins` (the README's test command, `cargo xtask test`, does it for you)",
        path.display()
    );
    path
}

/// A punch event of `user` on `device` at `unix_seconds` (India's offset).
pub fn punch(device: &str, seq: u64, user: &str, unix_seconds: i64, punch_type: PunchType) -> Event {
    Event {
        id: format!("evt-{device}-{seq}"),
        device_id: device.to_string(),
        sequence: seq,
        received_at_ms: 1_750_000_000_000,
        body: EventBody::Punch(Punch {
            user_id: user.to_string(),
            log_time: DeviceTime { unix_seconds, utc_offset_minutes: 330 },
            punch_type,
            input_type: InputType::Fingerprint,
            temperature: None,
            face_mask: None,
            work_code: None,
            photo: None,
        }),
    }
}

/// The user id of a punch event.
pub fn user_of(event: &Event) -> &str {
    match &event.body {
        EventBody::Punch(p) => &p.user_id,
        other => panic!("not a punch: {other:?}"),
    }
}

/// The work code of a punch event.
pub fn work_code_of(event: &Event) -> Option<&str> {
    match &event.body {
        EventBody::Punch(p) => p.work_code.as_deref(),
        other => panic!("not a punch: {other:?}"),
    }
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &std::path::Path, text: &str) -> PathBuf {
    let path = dir.join("biogate.toml");
    std::fs::write(&path, text).expect("writing the config file");
    path
}

/// A TOML string literal of a path.
pub fn toml_path(path: &std::path::Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Runs `f` inside a shared tokio runtime (the gateway's store starts background tasks).
pub fn with_runtime<R>(f: impl FnOnce() -> R) -> R {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().expect("a tokio runtime"));
    let _guard = runtime.enter();
    f()
}
