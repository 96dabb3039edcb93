//! Cost of one transform plugin call for a punch-sized event: on a reused instance, and
//! on a fresh instance every call, for a plugin in Rust, in Python and in JavaScript (the
//! examples of plugins/examples/); a native Rust function doing the same work is the
//! baseline of each in the same run. Needs the plugins built (`cargo xtask plugins` and
//! `cargo xtask examples`).
//!
//! Run: `cargo bench -p biogate --bench plugin_call`
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use biogate::plugin::bindings::types::{DeviceTime, Event, EventBody, InputType, Punch, PunchType};
use biogate::plugin::config::ConfigValue;
use biogate::plugin::{
    CompileCache, Limits, LoadedPlugin, PluginConfig, PluginEngine, PluginKind, PluginRuntime, TransformPlugin,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn punch() -> Event {
    Event {
        id: "0196b4a0-8f6e-7c3a-9d2e-1f0a2b3c4d5e".into(),
        device_id: "SN7A2300583".into(),
        sequence: 42,
        received_at_ms: 1_750_000_000_000,
        body: EventBody::Punch(Punch {
            user_id: "1042".into(),
            log_time: DeviceTime { unix_seconds: 1_750_000_000, utc_offset_minutes: 330 },
            punch_type: PunchType::CheckIn,
            input_type: InputType::Face,
            temperature: Some(36.6),
            face_mask: Some(true),
            work_code: None,
            photo: None,
        }),
    }
}

fn wasm(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} missing: run `cargo xtask plugins` and `cargo xtask examples` first", path.display());
    path
}

fn config_of(pairs: &[(&str, &str)]) -> BTreeMap<String, ConfigValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), ConfigValue::String(v.to_string()))).collect()
}

fn load(
    runtime: &PluginRuntime,
    name: &str,
    file: &str,
    idle: usize,
    config: BTreeMap<String, ConfigValue>,
) -> Arc<TransformPlugin> {
    let config = PluginConfig {
        kind: PluginKind::Transform,
        path: wasm(file),
        failure_policy: Default::default(),
        limits: Limits { max_idle_instances: idle, ..Limits::default() },
        config,
        allowed_hosts: vec![],
        http_mount: None,
    };
    match runtime.load(name, &config, std::path::Path::new(".")) {
        Ok((LoadedPlugin::Transform(p), _)) => p,
        Ok(_) => unreachable!("declared as a transform"),
        Err(e) => panic!("{e}"),
    }
}

/// The native baseline of the Python example badge-normalise (prefix EMP-, one ignored
/// user): strip the zeros, add the prefix.
fn native_badge_normalise(ignored: &[&str], mut event: Event) -> Vec<Event> {
    if let EventBody::Punch(p) = &mut event.body {
        if ignored.contains(&p.user_id.as_str()) {
            return vec![];
        }
        let stripped = p.user_id.trim_start_matches('0');
        p.user_id = format!("EMP-{}", if stripped.is_empty() { "0" } else { stripped });
    }
    vec![event]
}

/// The native baseline of the JavaScript example overtime-by-hour: the device-local hour
/// decides whether a check-in becomes an over-time-in.
fn native_overtime(mut event: Event) -> Vec<Event> {
    if let EventBody::Punch(p) = &mut event.body {
        let hour = (p.log_time.unix_seconds + i64::from(p.log_time.utc_offset_minutes) * 60).rem_euclid(86_400) / 3600;
        if !(6..18).contains(&hour) && p.punch_type == PunchType::CheckIn {
            p.punch_type = PunchType::OverTimeIn;
        }
    }
    vec![event]
}

/// The native baseline of employee-map: look the id up in a table and rewrite it.
fn native_employee_map(table: &BTreeMap<String, String>, mut event: Event) -> Vec<Event> {
    if let EventBody::Punch(p) = &mut event.body
        && let Some(code) = table.get(&p.user_id)
    {
        p.user_id = code.clone();
    }
    vec![event]
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Default::default()).unwrap();
    let store = biogate::store::Store::open(&dir.path().join("store")).unwrap();
    // Compiled components are kept across runs (the 18 MB Python ones take seconds each):
    // this bench measures calls, not compiles.
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-plugin-cache");
    let runtime = PluginRuntime::new(engine, CompileCache::new(cache), store);
    let map_config: BTreeMap<String, ConfigValue> =
        [("map.1042".to_string(), ConfigValue::String("E1042".into()))].into_iter().collect();
    let table: BTreeMap<String, String> = [("1042".to_string(), "E1042".to_string())].into_iter().collect();

    let reused = load(&runtime, "map-reused", "employee-map", 4, map_config.clone());
    let fresh = load(&runtime, "map-fresh", "employee-map", 0, map_config);
    let identity = load(&runtime, "identity", "fault-injector", 4, BTreeMap::new());
    let event = punch();

    let mut group = c.benchmark_group("transform_punch");
    group.bench_function("native_employee_map (baseline)", |b| {
        b.iter(|| black_box(native_employee_map(&table, black_box(&event).clone())))
    });
    group.bench_function("native_clone (identity baseline)", |b| b.iter(|| black_box(vec![black_box(&event).clone()])));
    group.bench_function("wasm_identity_reused_instance", |b| {
        b.iter(|| black_box(identity.transform(black_box(&event)).unwrap()))
    });
    group.bench_function("wasm_employee_map_reused_instance", |b| {
        b.iter(|| black_box(reused.transform(black_box(&event)).unwrap()))
    });
    group.bench_function("wasm_employee_map_fresh_instance", |b| {
        b.iter(|| black_box(fresh.transform(black_box(&event)).unwrap()))
    });

    // Python (componentize-py) and JavaScript (jco): the examples, each after its native
    // baseline.
    let badges = config_of(&[("prefix", "EMP-"), ("ignore_users", "9999")]);
    let python = load(&runtime, "py-reused", "examples/badge-normalise", 4, badges.clone());
    let python_fresh = load(&runtime, "py-fresh", "examples/badge-normalise", 0, badges);
    let js = load(&runtime, "js-reused", "examples/overtime-by-hour", 4, BTreeMap::new());
    let js_fresh = load(&runtime, "js-fresh", "examples/overtime-by-hour", 0, BTreeMap::new());
    group.bench_function("native_badge_normalise (baseline)", |b| {
        b.iter(|| black_box(native_badge_normalise(&["9999"], black_box(&event).clone())))
    });
    group.bench_function("python_badge_normalise_reused_instance", |b| {
        b.iter(|| black_box(python.transform(black_box(&event)).unwrap()))
    });
    group.bench_function("python_badge_normalise_fresh_instance", |b| {
        b.iter(|| black_box(python_fresh.transform(black_box(&event)).unwrap()))
    });
    group.bench_function("native_overtime (baseline)", |b| {
        b.iter(|| black_box(native_overtime(black_box(&event).clone())))
    });
    group.bench_function("js_overtime_by_hour_reused_instance", |b| {
        b.iter(|| black_box(js.transform(black_box(&event)).unwrap()))
    });
    group.bench_function("js_overtime_by_hour_fresh_instance", |b| {
        b.iter(|| black_box(js_fresh.transform(black_box(&event)).unwrap()))
    });
    group.finish();
}

criterion_group!(plugin_call, benches);
criterion_main!(plugin_call);
