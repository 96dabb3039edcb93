//! biogate: an open biometric device gateway.
//!
//! The flow, and the modules that hold each step:
//! devices -> `ingress` -> `dialect` -> `journal` (in `store`) -> `delivery` -> callbacks;
//! REST clients -> `api` -> command queue -> devices. Plugins run in `plugin`.
pub mod config;
pub mod delivery;
pub mod outbound;
pub mod plugin;
pub mod store;
pub mod time;
pub mod api;
pub mod gateway;
pub mod server;
