//! The Cams "Biometric Web API 3.0" wire format, in one place: the request envelope
//! clients send (`envelope`), the replies they get (`reply`, `status`), the callback
//! bodies receivers get (`callback`: the v3 `RealTime` forms, the seed's flat form and the
//! legacy v2 form; `punch_log`: the `PunchLog` rows of LoadLog and of resend batches),
//! and the Cams names of the canonical enums (`names`). The time text these use is in
//! [`crate::time`]. Nothing here does I/O: bytes and values in, bytes and values out.
pub mod callback;
pub mod envelope;
pub mod names;
pub mod punch_log;
pub mod reply;
pub mod status;

pub use callback::{CallbackDevice, CallbackFormat, callback_body};
pub use status::CamsStatus;
