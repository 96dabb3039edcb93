//! Where host calls go.
//!
//! Inside a component (`wasm32`) every call goes to the real WIT import. Natively the
//! generated import shims cannot run, so calls go to the in-memory test double of
//! [`crate::testing`] instead. Both sides expose the same `pub(crate)` functions, so the
//! friendly modules (`config`, `kv`, `log`, ...) are written once.

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;
