//! What can go wrong inside a plugin call, classified for the failure policy, the log and
//! the metrics.
use std::fmt;

/// The kind of a plugin fault (a label of the `biogate_plugin_faults_total` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The call ran past its CPU deadline.
    Deadline,
    /// The guest asked for more memory than its cap.
    MemoryLimit,
    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    Trap,
    /// The input was larger than the plugin's `max_input_bytes`.
    InputTooLarge,
    /// The output was larger than `max_output_bytes` or `max_output_events`.
    OutputTooLarge,
    /// The output broke the contract (e.g. an event moved to another device).
    InvalidOutput,
    /// No instance could be created (pool exhausted, instantiation failed).
    Unavailable,
}

impl FaultKind {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Deadline => "deadline",
            FaultKind::MemoryLimit => "memory_limit",
            FaultKind::Trap => "trap",
            FaultKind::InputTooLarge => "input_too_large",
            FaultKind::OutputTooLarge => "output_too_large",
            FaultKind::InvalidOutput => "invalid_output",
            FaultKind::Unavailable => "unavailable",
        }
    }

    /// Every kind, for counters.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Deadline,
        FaultKind::MemoryLimit,
        FaultKind::Trap,
        FaultKind::InputTooLarge,
        FaultKind::OutputTooLarge,
        FaultKind::InvalidOutput,
        FaultKind::Unavailable,
    ];
}

/// A failed plugin call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PluginFault {
    /// The plugin's name.
    pub plugin: String,
    pub kind: FaultKind,
    /// What happened, for the log and the dead letter.
    pub detail: String,
}

impl fmt::Display for PluginFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {:?}: {}: {}", self.plugin, self.kind.as_str(), self.detail)
    }
}

/// The error the epoch callback raises when a call's guest time is used up.
#[derive(Debug, thiserror::Error)]
#[error("CPU deadline exceeded")]
pub(super) struct DeadlineExceeded;

/// Classifies an error returned by wasmtime for a call.
pub(super) fn classify(error: &wasmtime::Error, memory_limit_hit: bool) -> (FaultKind, String) {
    if error.downcast_ref::<DeadlineExceeded>().is_some()
        || error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
    {
        return (FaultKind::Deadline, "the call ran past its CPU deadline".into());
    }
    if memory_limit_hit {
        return (FaultKind::MemoryLimit, format!("memory cap reached ({})", root_message(error)));
    }
    (FaultKind::Trap, root_message(error))
}

/// One line: the root cause (the trap), without the Wasm backtrace that wasmtime puts
/// around it (that is logged at debug level: a plugin failing on every event would
/// otherwise write a dozen lines per event).
fn root_message(error: &wasmtime::Error) -> String {
    tracing::debug!(error = format!("{error:?}"), "plugin fault in full");
    let mut text = error.root_cause().to_string();
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        let trap = trap.to_string();
        if !text.contains(&trap) {
            text = format!("{text} ({trap})");
        }
    }
    let mut text: String = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    if text.len() > 512 {
        let mut cut = 512;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
