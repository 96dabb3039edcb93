//! Config problems are reported with the file, the key and the fix, at start-up.
mod common;

use biogate::config::LoadedConfig;
use biogate::gateway::Gateway;
use common::*;

/// Loads `body` as a config file and returns the error text.
fn error_of(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), &format!("[server]\ndata_dir = \"data\"\n{body}"));
    match LoadedConfig::from_file(&file) {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("biogate.toml"), "the error names the file: {text}");
            text
        }
        Ok(config) => match with_runtime(|| Gateway::build(config)) {
            Err(e) => format!("{e:#}"),
            Ok(_) => panic!("the config was accepted:\n{body}"),
        },
    }
}

#[test]
fn a_missing_plugin_file_names_the_key_and_the_fix() {
    let text = error_of("[plugins.x]\nkind = \"transform\"\npath = \"nope.wasm\"\n");
    assert!(text.contains("plugins.x.path"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("cargo xtask plugins"), "{text}");
}

#[test]
fn unknown_keys_are_refused() {
    let text = error_of("[engine]\nmax_memory = 64\n");
    assert!(text.contains("unknown field `max_memory`"), "{text}");
    let text = error_of(&format!(
        "[plugins.x]\nkind = \"transform\"\npath = {}\nfailure = \"open\"\n",
        toml_path(&plugin_wasm("dedupe-window"))
    ));
    assert!(text.contains("unknown field `failure`"), "{text}");
}

#[test]
fn a_component_that_does_not_implement_the_declared_world_is_refused() {
    let text =
        error_of(&format!("[plugins.x]\nkind = \"delivery\"\npath = {}\n", toml_path(&plugin_wasm("dedupe-window"))));
    assert!(text.contains("does not implement the `delivery` world"), "{text}");
    assert!(text.contains("biogate:plugin/transformer"), "it says what the component exports: {text}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm at all").unwrap();
    let file = write_config(
        dir.path(),
        "[server]\ndata_dir = \"data\"\n[plugins.x]\nkind = \"transform\"\npath = \"junk.wasm\"\n",
    );
    let config = LoadedConfig::from_file(&file).unwrap();
    let text = format!("{:#}", with_runtime(|| Gateway::build(config)).err().expect("refused"));
    assert!(text.contains("not a valid Wasm component"), "{text}");
}

#[test]
fn bad_limits_name_the_limit() {
    let wasm = toml_path(&plugin_wasm("dedupe-window"));
    let text =
        error_of(&format!("[plugins.x]\nkind = \"transform\"\npath = {wasm}\n[plugins.x.limits]\nmemory_mib = 0\n"));
    assert!(text.contains("plugins.x.limits.memory_mib"), "{text}");
    let text = error_of(&format!("[plugins.x]\nkind = \"transform\"\npath = {wasm}\n[plugins.x.limits]\ncpu_ms = 0\n"));
    assert!(text.contains("plugins.x.limits.cpu_ms"), "{text}");
    let text =
        error_of(&format!("[plugins.x]\nkind = \"transform\"\npath = {wasm}\n[plugins.x.limits]\ncpu_ms = -5\n"));
    assert!(text.contains("cpu_ms"), "{text}");
}

#[test]
fn routes_must_name_declared_plugins_of_the_right_kind() {
    let text = error_of(
        "[routes.r]\ntransforms = [\"ghost\"]\nsink = { type = \"callback\", url = \"https://hr.example.com/cb\" }\n",
    );
    assert!(text.contains("routes.r.transforms[0]") && text.contains("ghost"), "{text}");
    let text = error_of(&format!(
        "[plugins.t]\nkind = \"transform\"\npath = {}\n[routes.r]\nsink = {{ type = \"plugin\", plugin = \"t\" }}\n",
        toml_path(&plugin_wasm("dedupe-window"))
    ));
    assert!(text.contains("routes.r.sink.plugin") && text.contains("not a delivery plugin"), "{text}");
    let text = error_of("[routes.r]\nsink = { type = \"callback\", url = \"not a url\" }\n");
    assert!(text.contains("routes.r.sink.url"), "{text}");
    let text =
        error_of("[routes.r]\nsink = { type = \"callback\", url = \"https://x.example/cb\", secret = \"hunter2\" }\n");
    assert!(text.contains("routes.r.sink.secret") && !text.contains("hunter2"), "the secret is not echoed: {text}");
}

#[test]
fn outbound_hosts_are_for_delivery_plugins_only() {
    let text = error_of(&format!(
        "[plugins.x]\nkind = \"transform\"\npath = {}\nallowed_hosts = [\"https://api.example.com\"]\n",
        toml_path(&plugin_wasm("dedupe-window"))
    ));
    assert!(text.contains("plugins.x.allowed_hosts"), "{text}");
}

#[test]
fn bad_device_declarations_name_the_key() {
    let text = error_of("[devices.D1]\ntime_zone = \"India\"\n");
    assert!(text.contains("devices.D1.time_zone"), "{text}");
    let text = error_of("[devices.D1]\nsecurity_key = \"too-short\"\n");
    assert!(text.contains("devices.D1.security_key") && !text.contains("too-short"), "the key is not echoed: {text}");
    let text = error_of("[devices.\"bad id\"]\n");
    assert!(text.contains("devices.bad id"), "{text}");
    let text = error_of("[devices.D1]\nroutes = [\"nope\"]\n");
    assert!(text.contains("devices.D1.routes"), "{text}");
}

#[test]
fn mqtt_and_dialect_mount_mistakes_name_the_key() {
    let text = error_of("[mqtt]\nurl = \"http://broker:1883\"\n");
    assert!(text.contains("mqtt.url") && text.contains("mqtt://"), "{text}");
    let text = error_of("[mqtt]\ntopic_prefix = \"a/b\"\n");
    assert!(text.contains("mqtt.topic_prefix"), "{text}");
    let text = error_of("[mqtt]\ndialect = \"missing\"\n");
    assert!(text.contains("mqtt.dialect"), "{text}");
    let adms = toml_path(&plugin_wasm("zkteco-adms"));
    let text = error_of(&format!(
        "[plugins.a]\nkind = \"dialect\"\npath = {adms}\n[plugins.b]\nkind = \"dialect\"\npath = {adms}\nhttp_mount = \"/ICLOCK\"\n"
    ));
    assert!(text.contains("plugins.b.http_mount") && text.contains("already the mount of plugin"), "{text}");
    let text = error_of(&format!("[plugins.a]\nkind = \"dialect\"\npath = {adms}\nhttp_mount = \"/v1/devices\"\n"));
    assert!(text.contains("plugins.a.http_mount"), "{text}");
    let text = error_of(&format!(
        "[plugins.a]\nkind = \"transform\"\npath = {}\nhttp_mount = \"/x\"\n",
        toml_path(&plugin_wasm("dedupe-window"))
    ));
    assert!(text.contains("only dialect plugins"), "{text}");
}

#[test]
fn an_offline_window_shorter_than_a_long_poll_is_refused() {
    let text = error_of("[operations]\nmax_poll_wait_ms = 60000\noffline_after_ms = 60000\n");
    assert!(text.contains("operations.offline_after_ms") && text.contains("long poll"), "{text}");
    let text = error_of("[operations]\ncams_offline_code = \"yes\"\n");
    assert!(text.contains("cams_offline_code"), "{text}");
}

#[test]
fn resend_batch_is_for_cams_v3_callbacks_without_transforms() {
    let route = |extra: &str, format: &str| {
        format!(
            "[routes.r]\nresend_batch = 10\n{extra}\nsink = {{ type = \"callback\", url = \"https://example.com/cb\", format = \"{format}\" }}\n"
        )
    };
    let text = error_of(&route("", "flat"));
    assert!(text.contains("routes.r.resend_batch") && text.contains("Cams v3"), "{text}");
    let text = error_of(&route("", "cams-v2"));
    assert!(text.contains("routes.r.resend_batch"), "{text}");
    let text = error_of(&format!(
        "[plugins.d]\nkind = \"transform\"\npath = {}\n{}",
        toml_path(&plugin_wasm("dedupe-window")),
        route("transforms = [\"d\"]", "cams-v3")
    ));
    assert!(text.contains("routes.r.resend_batch") && text.contains("transforms"), "{text}");
    let text = error_of(&route("", "cams-v3").replace("resend_batch = 10", "resend_batch = 5000"));
    assert!(text.contains("routes.r.resend_batch") && text.contains("1000"), "{text}");
}
