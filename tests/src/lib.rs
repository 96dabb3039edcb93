//! The end-to-end test kit of biogate: a real HTTP callback receiver, device simulators (the
//! native protocol, ZKTeco ADMS push, MQTT), a real Mosquitto broker, the gateway as a
//! real process (started, stopped, SIGKILLed, restarted), and a real small filesystem to
//! fill.
//! Used by the host's end-to-end tests (`host/tests/pipeline.rs`).
pub mod adms_device;
pub mod gateway_process;
pub mod loadsim;
pub mod logs;
pub mod metrics;
pub mod mosquitto;
pub mod mqtt_device;
pub mod native_device;
pub mod plugins;
pub mod receiver;
pub mod signature;
pub mod small_fs;
