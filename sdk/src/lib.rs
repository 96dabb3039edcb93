//! # biogate-sdk: write biogate plugins in Rust
//!
//! A biogate plugin is a WebAssembly component that implements one of the worlds of the
//! `biogate:plugin@0.1.0` WIT package: a **transform** (change, drop, split, reject or
//! retry events on their way to a route), a **delivery** sink (send batches of events
//! somewhere, using the gateway's outbound HTTP), or a device **dialect** (speak a
//! vendor's protocol). This crate wraps the `wit-bindgen` bindings in a small API:
//!
//! * [`prelude`]: the canonical types ([`Event`](prelude::Event),
//!   [`Punch`](prelude::Punch), ...), the plugin traits and the macros;
//! * `export_transform!`, `export_delivery!`, `export_dialect!`: turn a type that
//!   implements `Transform`, `Delivery` or `Dialect` (modules `transform`, `delivery`,
//!   `dialect`) into the component's exports;
//! * [`info!`], [`warn!`], [`error!`], [`debug!`], [`trace!`]: structured logging into the
//!   gateway's log;
//! * [`config`], [`kv`], [`clock`], and `http` (delivery) / `commands` (dialect): the
//!   host services;
//! * `testing` (native builds only): an in-memory stand-in for the host, so that plugin
//!   logic is unit-tested with plain `cargo test`.
//!
//! Select the plugin kind with exactly one cargo feature: `transform`, `delivery` or
//! `dialect`.
//!
//! ```ignore
//! // (the same example is compiled and tested in the `transform` module's docs)
//! use biogate_sdk::prelude::*;
//!
//! struct Uppercase;
//!
//! impl Transform for Uppercase {
//!     fn transform(mut event: Event) -> Result<Vec<Event>, TransformError> {
//!         if let Some(punch) = event.punch_mut() {
//!             punch.user_id = punch.user_id.to_uppercase();
//!         }
//!         Ok(vec![event])
//!     }
//! }
//!
//! export_transform!(Uppercase);
//! ```
//!
//! See the crate's `README.md` for the full guide: building, testing, loading into the
//! gateway, limits and failure policy.

#![warn(missing_docs)]

// Lets the generated bindings and the export macros name this crate `biogate_sdk` from
// inside the crate as well as from plugins.
extern crate self as biogate_sdk;

#[cfg(any(
    all(feature = "transform", feature = "delivery"),
    all(feature = "transform", feature = "dialect"),
    all(feature = "delivery", feature = "dialect"),
))]
compile_error!(
    "biogate-sdk: the features `transform`, `delivery` and `dialect` are mutually exclusive; \
     enable exactly one (the kind of plugin this crate is)"
);

#[cfg(all(target_arch = "wasm32", not(any(feature = "transform", feature = "delivery", feature = "dialect"))))]
compile_error!(
    "biogate-sdk: choose the plugin kind with one cargo feature: \
     biogate-sdk = { path = \"...\", features = [\"transform\"] } (or \"delivery\", \"dialect\")"
);

pub mod bindings;

mod backend;
mod types;

pub mod clock;
pub mod config;
pub mod kv;
pub mod log;

#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub mod http;

#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub mod commands;

#[cfg(not(any(feature = "delivery", feature = "dialect")))]
pub mod transform;

#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub mod delivery;

#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub mod dialect;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub mod prelude;

pub use clock::now_ms;
pub use types::UnknownName;

/// Implementation details used by the exported macros. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::string::{String, ToString};
    pub use std::vec::Vec;
}
