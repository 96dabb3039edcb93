//! biogate: an open biometric device gateway.
//!
//! The flow, and the modules that hold each step (docs/architecture.md draws it):
//! devices -> `ingress` (native HTTP protocol, dialect plugins on HTTP paths, MQTT) ->
//! `ingest` -> `store` (the journal, durable) -> `delivery` (routes, transform chains,
//! sinks) -> customers' receivers; REST clients -> `api` (Cams endpoint, `/v1`) ->
//! `operations` (catalogue, command queue, LoadLog) -> devices. `cams` holds the Cams
//! wire format, `web` what both HTTP sides share, `gateway` assembles the parts from
//! `config` (`check` validates a config without starting it; `scaffold` writes new plugin projects), `server` serves them. Plugins run in `plugin`; bodies are encrypted by
//! `crypto`; outbound URLs pass `outbound`; `time` and `field` are the small shared
//! vocabulary.
pub mod api;
pub mod cams;
pub mod check;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod field;
pub mod gateway;
pub mod ingest;
pub mod ingress;
pub mod operations;
pub mod outbound;
pub mod plugin;
pub mod plugin_run;
pub mod scaffold;
pub mod server;
pub mod store;
pub mod time;
pub mod web;
