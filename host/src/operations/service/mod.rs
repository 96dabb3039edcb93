//! The command queue at work: operations are submitted (validated, planned, stored
//! durably), handed to their devices in FIFO order (long-poll, dialect plugins, MQTT),
//! closed by the devices' results, expired when their time to live runs out, and their
//! final status announced to the device's routes as a `command-result` event.
//!
//! Several operations per device may be outstanding at once. Every state change goes
//! through one lock, so a result, a cancel and an expiry never race on one record; a new
//! OperationID is held by one submission at a time, so two submissions of one id never
//! both store a record.
//!
//! This file only declares the parts and re-exports what the rest of the crate uses:
//!
//! - `queue.rs`: the [`OperationService`] (store handles, the transitions lock, the
//!   wake-ups of polls and waiters, `wait`), which every other file adds methods to;
//! - `settings.rs`: [`OperationSettings`], the `[operations]` section;
//! - `codes.rs`: the gateway's return codes (`RETURN_*`) and [`state_name`];
//! - `submit.rs`: validating, planning and storing new operations, the steps of move/copy;
//! - `handout.rs`: handing queued commands to devices, and redelivering lost ones;
//! - `results.rs`: what devices report back (results, enrolments);
//! - `closing.rs`: how a record ends, and how a step's ending advances its move/copy;
//! - `ending.rs`: endings the gateway decides (cancel, expiry, undeliverable, a deleted
//!   device) and the sweeper that runs expiry and redelivery;
//! - `announce.rs`: journaling the endings the gateway decided, so they reach the callbacks.
//!
//! Each file has the unit tests of its transitions, over a real store (`fixture.rs`).
mod announce;
mod closing;
mod codes;
mod ending;
#[cfg(test)]
mod fixture;
mod handout;
mod queue;
mod results;
mod settings;
mod submit;

pub use codes::{RETURN_CANCELLED, RETURN_EXPIRED, RETURN_UNDELIVERABLE, state_name};
pub use queue::OperationService;
pub use settings::OperationSettings;
pub use submit::{SubmitError, Submitted, generate_operation_id, valid_operation_id};
