//! A load simulator: thousands of simulated devices in one process against a running
//! gateway (native HTTP devices, ZKTeco ADMS terminals and MQTT devices, mixed by a
//! ratio), each punching at a configured rate and receiving commands the way its protocol
//! does (native long-poll, ADMS `getrequest` polling, MQTT subscription), REST command
//! traffic at a steady rate, and a callback receiver whose checker verifies that every
//! punch arrived, once, in order per device, and measures punch-to-callback latency.
//!
//! - [`plan`]: protocols, the mix, device ids, punch numbering and schedule;
//! - [`context`]: what the devices share (HTTP clients, schedule, counters, stop signal);
//! - [`native`], [`adms`], [`mqtt`]: the devices;
//! - [`commands`]: the REST operation traffic;
//! - [`checker`], [`receiver`]: the arrival checker and its HTTP receiver;
//! - [`fleet`]: gateway config, starting and stopping a fleet, windows of a run.
//!
//! The binary `biogate-loadsim` drives it from the command line; `host/benches/scale.rs`
//! runs the scale scenarios with it.
pub mod adms;
pub mod checker;
pub mod commands;
pub mod context;
pub mod fleet;
pub mod mqtt;
pub mod native;
pub mod plan;
pub mod receiver;

pub use checker::{CheckReport, Checker, Latency};
pub use fleet::{Fleet, FleetConfig, gateway_config, memory_kib, mosquitto_available, patient_retry_schedule};
pub use plan::{Mix, Protocol, TOKEN};
pub use receiver::LoadReceiver;
