//! Ingress: how device traffic reaches the journal. The native HTTP + JSON protocol
//! (docs/device-protocol.md) lives here; vendor dialects plug in beside it.
mod device_auth;
pub mod native;

pub use device_auth::{DeviceBody, authenticate_device, check_token};
