//! The mapping table, read from the plugin's config one key at a time.

use std::str::FromStr;

use biogate_sdk::config;

/// The employee code of `user_id` on `device_id`: `map.<device_id>.<user_id>` first,
/// then `map.<user_id>`. A blank value counts as unmapped.
pub(crate) fn employee_code(device_id: &str, user_id: &str) -> Option<String> {
    [format!("map.{device_id}.{user_id}"), format!("map.{user_id}")]
        .iter()
        .filter_map(|key| config::get_str(key))
        .map(|code| code.trim().to_owned())
        .find(|code| !code.is_empty())
}

/// What happens to an event whose user has no employee code (config key `unmapped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmapped {
    /// Deliver it with the device's user id (the default).
    Pass,
    /// Drop it silently (logged at debug level).
    Drop,
    /// Dead-letter it, naming the user id.
    Reject,
}

impl FromStr for Unmapped {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(Self::Pass),
            "drop" => Ok(Self::Drop),
            "reject" => Ok(Self::Reject),
            _ => Err("expected \"pass\", \"drop\" or \"reject\"".to_owned()),
        }
    }
}
