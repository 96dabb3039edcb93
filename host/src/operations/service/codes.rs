//! The return codes the gateway gives the operations it ends itself (the devices' own
//! codes are theirs), and the names of the states as the APIs show them.
use crate::store::OperationState;

/// Return code of an operation whose time to live ran out.
pub const RETURN_EXPIRED: i32 = -9001;
/// Return code of an operation a client cancelled.
pub const RETURN_CANCELLED: i32 = -9002;
/// Return code of an operation the gateway could not hand to its device (its dialect
/// refused to encode the command for the transport, or encrypting it failed).
pub const RETURN_UNDELIVERABLE: i32 = -9003;

/// The name of a state, as the APIs show it.
pub fn state_name(state: OperationState) -> &'static str {
    match state {
        OperationState::Queued => "queued",
        OperationState::Sent => "sent",
        OperationState::Done => "done",
        OperationState::Failed => "failed",
        OperationState::Expired => "expired",
        OperationState::Cancelled => "cancelled",
    }
}
