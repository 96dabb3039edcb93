//! The plugin runtime, driven through real components built from source: the shipped
//! plugins do their job, misbehaving plugins are contained, failure policies hold, the
//! compile cache is used.
mod common;

use std::sync::Arc;

use biogate::config::LoadedConfig;
use biogate::delivery::ChainOutcome;
use biogate::gateway::Gateway;
use biogate::plugin::bindings::types::PunchType;
use biogate::plugin::{FaultKind, LoadedPlugin, TransformOutcome, TransformPlugin};
use biogate_e2e::logs::logged;
use common::*;

const T0: i64 = 1_750_000_000;

/// A gateway built from a config file in a fresh temporary folder.
fn gateway(dir: &tempfile::TempDir, body: &str) -> Arc<Gateway> {
    let file = write_config(dir.path(), &format!("[server]\ndata_dir = \"data\"\n{body}"));
    let config = LoadedConfig::from_file(&file).expect("valid config");
    with_runtime(|| Gateway::build(config)).expect("gateway builds")
}

/// Builds the gateway again on the same data folder, waiting for the previous one to
/// release the store's lock.
fn reopen(dir: &tempfile::TempDir, body: &str) -> Arc<Gateway> {
    let file = dir.path().join("biogate.toml");
    for _ in 0..100 {
        let config = LoadedConfig::from_file(&file).expect("valid config");
        match with_runtime(|| Gateway::build(config)) {
            Ok(gw) => return gw,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    gateway(dir, body)
}

fn transform(gw: &Gateway, name: &str) -> Arc<TransformPlugin> {
    match gw.plugins.get(name) {
        Some(LoadedPlugin::Transform(p)) => p.clone(),
        _ => panic!("no transform plugin {name}"),
    }
}

fn passed(outcome: TransformOutcome) -> Vec<biogate::plugin::bindings::types::Event> {
    match outcome {
        TransformOutcome::Events(events) => events,
        other => panic!("expected events, got {other:?}"),
    }
}

fn fault_injector(dir: &tempfile::TempDir, policy: &str) -> Arc<Gateway> {
    gateway(
        dir,
        &format!(
            "[plugins.faulty]\nkind = \"transform\"\npath = {}\nfailure_policy = \"{policy}\"\n\
             [plugins.faulty.limits]\ncpu_ms = 50\nmemory_mib = 16\nmax_output_bytes = 65536\n\
             [routes.main]\ntransforms = [\"faulty\"]\nallow_private_networks = true\nsink = {{ type = \"callback\", url = \"http://127.0.0.1:9/cb\" }}\n",
            toml_path(&plugin_wasm("fault-injector"))
        ),
    )
}

#[test]
fn dedupe_window_drops_repeated_punches_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(
        &dir,
        &format!(
            "[plugins.dedupe]\nkind = \"transform\"\npath = {}\n[plugins.dedupe.config]\nwindow_seconds = 60\n",
            toml_path(&plugin_wasm("dedupe-window"))
        ),
    );
    let dedupe = transform(&gw, "dedupe");
    let first = punch("D1", 1, "7", T0, PunchType::CheckIn);
    assert_eq!(passed(dedupe.transform(&first).unwrap()), vec![first.clone()]);
    // The same user pressing again 10 s later: dropped.
    assert!(passed(dedupe.transform(&punch("D1", 2, "7", T0 + 10, PunchType::CheckIn)).unwrap()).is_empty());
    // Another user, another device, another punch type: kept.
    assert_eq!(passed(dedupe.transform(&punch("D1", 3, "8", T0 + 11, PunchType::CheckIn)).unwrap()).len(), 1);
    assert_eq!(passed(dedupe.transform(&punch("D2", 1, "7", T0 + 12, PunchType::CheckIn)).unwrap()).len(), 1);
    assert_eq!(passed(dedupe.transform(&punch("D1", 4, "7", T0 + 20, PunchType::CheckOut)).unwrap()).len(), 1);
    // After the window: kept again.
    assert_eq!(passed(dedupe.transform(&punch("D1", 5, "7", T0 + 200, PunchType::CheckOut)).unwrap()).len(), 1);
    assert_eq!(dedupe.stats().total_faults(), 0);
}

#[test]
fn dedupe_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("[plugins.dedupe]\nkind = \"transform\"\npath = {}\n", toml_path(&plugin_wasm("dedupe-window")));
    {
        let gw = gateway(&dir, &body);
        let first = punch("D1", 1, "42", T0, PunchType::CheckIn);
        assert_eq!(passed(transform(&gw, "dedupe").transform(&first).unwrap()).len(), 1);
        gw.store.flush().unwrap();
    }
    // The previous gateway's background flusher lets go of the store asynchronously.
    let gw = reopen(&dir, &body);
    let again = punch("D1", 2, "42", T0 + 5, PunchType::CheckIn);
    assert!(passed(transform(&gw, "dedupe").transform(&again).unwrap()).is_empty(), "kv state was lost");
}

#[test]
fn employee_map_rewrites_user_ids_and_applies_the_unmapped_policy() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = toml_path(&plugin_wasm("employee-map"));
    let gw = gateway(
        &dir,
        &format!(
            "[plugins.pass]\nkind = \"transform\"\npath = {wasm}\n[plugins.pass.config.map]\n1 = \"E1042\"\n2 = \"E1043\"\n\
             [plugins.drop]\nkind = \"transform\"\npath = {wasm}\n[plugins.drop.config]\nunmapped = \"drop\"\n\"map.1\" = \"E1042\"\n\
             [plugins.reject]\nkind = \"transform\"\npath = {wasm}\n[plugins.reject.config]\nunmapped = \"reject\"\n"
        ),
    );
    let out = passed(transform(&gw, "pass").transform(&punch("D1", 1, "1", T0, PunchType::CheckIn)).unwrap());
    assert_eq!(user_of(&out[0]), "E1042");
    let out = passed(transform(&gw, "pass").transform(&punch("D1", 2, "99", T0, PunchType::CheckIn)).unwrap());
    assert_eq!(user_of(&out[0]), "99", "unmapped ids pass unchanged by default");

    let out = passed(transform(&gw, "drop").transform(&punch("D1", 3, "1", T0, PunchType::CheckIn)).unwrap());
    assert_eq!(user_of(&out[0]), "E1042", "dotted keys work as well as tables");
    assert!(
        passed(transform(&gw, "drop").transform(&punch("D1", 4, "99", T0, PunchType::CheckIn)).unwrap()).is_empty()
    );

    match transform(&gw, "reject").transform(&punch("D1", 5, "99", T0, PunchType::CheckIn)).unwrap() {
        TransformOutcome::Reject(reason) => assert!(reason.contains("99"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Calls the fault injector with a misbehaving user id, expects `kind`, then checks that
/// the next call succeeds on a fresh instance.
fn assert_contained(plugin: &TransformPlugin, trigger: &str, kind: FaultKind) {
    let created = plugin.stats().instances_created();
    let fault = plugin.transform(&punch("D1", 1, trigger, T0, PunchType::CheckIn)).expect_err("the call must fail");
    assert_eq!(fault.kind, kind, "{trigger}: {fault}");
    assert_eq!(fault.plugin, "faulty");
    assert_eq!(plugin.stats().faults(kind), 1, "{trigger}: the fault is counted");

    let ok = passed(plugin.transform(&punch("D1", 2, "count", T0, PunchType::CheckIn)).unwrap());
    let code = work_code_of(&ok[0]).expect("count sets the work code");
    // "<kv count>/<in-memory count>": the in-memory count restarts on a fresh instance.
    assert!(code.ends_with("/1"), "{trigger}: expected a fresh instance, got {code}");
    assert!(plugin.stats().instances_created() > created, "{trigger}: no new instance was built");
}

#[test]
fn an_endless_loop_hits_the_cpu_deadline_and_the_plugin_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    assert_contained(&transform(&gw, "faulty"), "loop", FaultKind::Deadline);
}

#[test]
fn a_memory_bomb_hits_the_memory_cap_and_the_plugin_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    assert_contained(&transform(&gw, "faulty"), "memory", FaultKind::MemoryLimit);
}

#[test]
fn a_trap_is_contained_and_the_plugin_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    assert_contained(&transform(&gw, "faulty"), "trap", FaultKind::Trap);
}

#[test]
fn oversized_output_is_refused_and_the_plugin_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    assert_contained(&transform(&gw, "faulty"), "oversize", FaultKind::OutputTooLarge);
}

#[test]
fn healthy_calls_reuse_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    let plugin = transform(&gw, "faulty");
    for n in 1..=5 {
        let out = passed(plugin.transform(&punch("D1", n, "count", T0, PunchType::CheckIn)).unwrap());
        assert_eq!(work_code_of(&out[0]), Some(format!("{n}/{n}").as_str()));
    }
    assert_eq!(plugin.stats().instances_created(), 1);
}

#[test]
fn fail_open_passes_the_event_unchanged_and_fail_closed_dead_letters_it() {
    let open_dir = tempfile::tempdir().unwrap();
    let open = fault_injector(&open_dir, "fail-open");
    let event = punch("D1", 1, "trap", T0, PunchType::CheckIn);
    assert_eq!(open.chains["main"].apply(event.clone()), ChainOutcome::Deliver(vec![event.clone()]));

    let closed_dir = tempfile::tempdir().unwrap();
    let closed = fault_injector(&closed_dir, "fail-closed");
    match closed.chains["main"].apply(event) {
        ChainOutcome::DeadLetter { plugin, reason } => {
            assert_eq!(plugin, "faulty");
            assert!(reason.contains("trap"), "{reason}");
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
}

#[test]
fn a_plugin_rejection_dead_letters_and_a_retry_is_reported_whatever_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-open");
    let chain = &gw.chains["main"];
    assert!(matches!(
        chain.apply(punch("D1", 1, "reject", T0, PunchType::CheckIn)),
        ChainOutcome::DeadLetter { reason, .. } if reason.contains("injected reject")
    ));
    assert!(matches!(chain.apply(punch("D1", 2, "retry", T0, PunchType::CheckIn)), ChainOutcome::Retry { .. }));
}

#[test]
fn the_compile_cache_is_hit_on_a_second_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = biogate::plugin::PluginConfig {
        kind: biogate::plugin::PluginKind::Transform,
        path: plugin_wasm("dedupe-window"),
        failure_policy: Default::default(),
        limits: Default::default(),
        config: Default::default(),
        allowed_hosts: vec![],
        http_mount: None,
    };
    let runtime = || {
        let engine = biogate::plugin::PluginEngine::new(Default::default()).unwrap();
        let store = biogate::store::Store::temporary().unwrap();
        biogate::plugin::PluginRuntime::new(engine, biogate::plugin::CompileCache::new(dir.path().join("cache")), store)
    };
    let (_, first) = runtime().load("dedupe", &config, dir.path()).unwrap();
    assert_eq!(first, biogate::plugin::CacheOutcome::Compiled);
    let (_, second) = runtime().load("dedupe", &config, dir.path()).unwrap();
    assert_eq!(second, biogate::plugin::CacheOutcome::Hit);
    assert_eq!(std::fs::read_dir(dir.path().join("cache")).unwrap().count(), 1);
}

#[test]
fn plugin_stdout_and_stderr_become_log_lines_tagged_with_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    let plugin = transform(&gw, "faulty");
    let log = logged(|| {
        let out = passed(plugin.transform(&punch("D1", 1, "stdout", T0, PunchType::CheckIn)).unwrap());
        assert_eq!(out.len(), 1);
    });
    let line = |text: &str| {
        log.lines().find(|l| l.contains(text)).unwrap_or_else(|| panic!("no {text:?} in:\n{log}")).to_string()
    };
    let stdout = line("a line on stdout");
    assert!(stdout.contains("INFO") && stdout.contains("faulty"), "{stdout}");
    let stderr = line("a line on stderr");
    assert!(stderr.contains("WARN") && stderr.contains("faulty"), "{stderr}");
}

/// A plugin failing on every event does not flood the log: its panic output and its
/// failures are logged up to the budget (20 lines per 10 s per plugin), the rest counted
/// and reported by the next line after the window.
#[test]
fn a_plugin_failing_on_every_event_does_not_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fault_injector(&dir, "fail-closed");
    let plugin = transform(&gw, "faulty");
    let log = logged(|| {
        for seq in 1..=200 {
            assert!(plugin.transform(&punch("D1", seq, "trap", T0, PunchType::CheckIn)).is_err(), "event {seq} traps");
        }
    });
    let lines = log.lines().filter(|l| l.contains("faulty")).count();
    assert!(lines <= biogate::plugin::log_budget::BURST as usize, "{lines} log lines for 200 failures:\n{log}");
    assert!(log.contains("plugin call failed"), "the first failures are logged:\n{log}");
    assert!(!log.contains("wasm backtrace"), "one line per failure, no backtrace:\n{log}");
}
