//! The plugin's configuration.

use biogate_sdk::prelude::*;

use crate::last_punch::LastPunch;

/// What the operator configured.
pub(crate) struct Settings {
    /// Punches closer than this (device clock) are repeats; 0 disables the plugin.
    pub(crate) window_seconds: u64,
    /// Only a punch of the same type (check-in after check-in...) is a repeat.
    pub(crate) same_type_only: bool,
}

impl Settings {
    /// Reads `window_seconds` (default 60) and `same_type_only` (default true).
    pub(crate) fn load() -> Result<Self, ConfigError> {
        Ok(Self {
            window_seconds: config::get_or("window_seconds", 60)?,
            same_type_only: config::get_or("same_type_only", true)?,
        })
    }

    /// Whether `current` repeats `previous`, the last punch accepted for the same user on
    /// the same device.
    pub(crate) fn is_duplicate(&self, previous: &LastPunch, current: &LastPunch) -> bool {
        let close = current.unix_seconds.abs_diff(previous.unix_seconds) < self.window_seconds;
        let same_kind = !self.same_type_only || current.punch_type == previous.punch_type;
        close && same_kind
    }
}
