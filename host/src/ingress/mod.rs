//! Ingress: how device traffic reaches the journal. The native HTTP + JSON protocol
//! (docs/device-protocol.md) lives here; vendor dialects (Wasm plugins) are mounted beside
//! it by `dialect_http`.

mod device_auth;
pub mod dialect_http;
pub mod mqtt;
pub mod native;
pub mod native_commands;

pub use device_auth::{
    DeviceBody, authenticate_device, bearer, check_token, decrypt_body, device_error, device_reply, find_device,
};
