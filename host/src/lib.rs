//! biogate: an open biometric device gateway.
//!
//! The flow, and the modules that hold each step:
//! devices -> `ingress` (native protocol, dialects) -> `store` (journal) -> `delivery`
//! (routes, transform chains, callback sinks) -> customers' callbacks;
//! operators and REST clients -> `api` -> `operations` (catalogue, command queue,
//! LoadLog) -> devices. Plugins run in `plugin`; bodies are encrypted by
//! `crypto`; outbound URLs pass `outbound`.
pub mod api;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod gateway;
pub mod ingress;
pub mod operations;
pub mod outbound;
pub mod plugin;
pub mod server;
pub mod store;
pub mod time;
