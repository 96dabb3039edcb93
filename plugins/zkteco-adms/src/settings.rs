//! The plugin's configuration (`[plugins.<name>.config]`), with the defaults of the
//! protocol reference. The status and verify code maps live in [`crate::codes`].

use std::fmt;
use std::str::FromStr;

use biogate_sdk::prelude::*;

/// A value that ends up on a line of a reply: anything but CR and LF (tabs are allowed:
/// `TransFlag` is tab-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line(pub(crate) String);

impl FromStr for Line {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(['\r', '\n']) {
            return Err("must be a single line");
        }
        Ok(Line(s.to_owned()))
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines a config enum: its cases, their names, and `FromStr`.
macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $case:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($(#[$cdoc])* $case),+
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$case),)+
                    _ => Err(format!("expected one of: {}", [$($text),+].join(", "))),
                }
            }
        }
    };
}

config_enum!(
    /// How the handshake writes the `TimeZone` option.
    TimeZoneFormat {
        /// Whole hours within ±12 as hours (`8`), anything else in minutes (`330`), the
        /// rule of the protocol reference.
        Auto => "auto",
        /// Always hours, fractional when needed (`5.5`), for firmware that wants it.
        Hours => "hours",
        /// Always minutes (`480`).
        Minutes => "minutes",
    }
);

config_enum!(
    /// How cards are written in `USERINFO` commands.
    CardFormat {
        /// The card number in decimal (`Card=123456789`).
        Decimal => "decimal",
        /// Little-endian hex in brackets (`Card=[15CD5B07]`), for older firmware.
        Bracket => "bracket",
    }
);

config_enum!(
    /// Which commands carry fingerprint and face templates.
    TemplateFormat {
        /// `DATA UPDATE FINGERTMP` and `DATA UPDATE FACE`; `BIODATA` for the other kinds.
        Classic => "classic",
        /// `DATA UPDATE BIODATA` for every kind (newer firmware, "unified templates").
        Biodata => "biodata",
    }
);

config_enum!(
    /// How `set-user-enabled` is expressed.
    UserEnabledMode {
        /// A `USERINFO` update of `Pri` with bit 0 set for a disabled user (the ZKTeco
        /// privilege byte), keeping the role last seen for the user.
        PriBit => "pri-bit",
        /// Not expressed: the command fails with -1002 (not supported).
        Unsupported => "unsupported",
    }
);

config_enum!(
    /// What `OK: <n>` counts on uploads.
    ReplyCount {
        /// The records accepted; bad lines are not counted.
        Accepted => "accepted",
        /// Every non-empty line received, bad or not (for firmware that re-sends a batch
        /// whose count does not match).
        Received => "received",
    }
);

/// Everything the operator can set, with defaults.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `Delay`: seconds between command polls (default 10).
    pub(crate) delay: u32,
    /// `ErrorDelay`: seconds before retrying after a network error (default 30).
    pub(crate) error_delay: u32,
    /// `TransTimes`: times of day of scheduled uploads (default `00:00;14:05`).
    pub(crate) trans_times: Line,
    /// `TransInterval`: minutes between uploads of buffered records (default 1).
    pub(crate) trans_interval: u32,
    /// `TransFlag`: what the device uploads (default every attendance table).
    pub(crate) trans_flag: Line,
    /// `Realtime`: upload each record as it happens (default true).
    pub(crate) realtime: bool,
    /// How `TimeZone` is written (default auto).
    pub(crate) timezone_format: TimeZoneFormat,
    /// `ServerVer` (default `2.4.1`).
    pub(crate) server_ver: Line,
    /// Our push protocol version; the handshake answers the lower of this and the
    /// device's (default `2.4.1`).
    pub(crate) push_prot_ver: Line,
    /// At most this many command lines per `getrequest` reply (default 200).
    pub(crate) max_commands: u32,
    /// At most this many bytes per `getrequest` reply (default 40960).
    pub(crate) max_reply_bytes: u32,
    /// Card number format in commands (default decimal).
    pub(crate) card_format: CardFormat,
    /// Template commands (default classic).
    pub(crate) template_format: TemplateFormat,
    /// `RETRY` of enrolment commands (default 3).
    pub(crate) enroll_retry: u32,
    /// `OVERWRITE` of enrolment commands (default true).
    pub(crate) enroll_overwrite: bool,
    /// The command that opens the door (default `AC_UNLOCK`).
    pub(crate) unlock_command: Line,
    /// How `set-user-enabled` is expressed (default pri-bit).
    pub(crate) user_enabled: UserEnabledMode,
    /// What `OK: <n>` counts (default accepted).
    pub(crate) reply_count: ReplyCount,
    /// Emit `device-status` events on handshakes, `options` uploads and changed poll
    /// `INFO` (default true).
    pub(crate) status_events: bool,
    /// Punches further than this in the future (device clock against the gateway's) are
    /// logged as suspicious (default 86400, a day).
    pub(crate) future_tolerance_seconds: u32,
}

/// `TransFlag` of the reference: every attendance table.
const DEFAULT_TRANS_FLAG: &str = "TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic";

impl Settings {
    /// Reads every key, applying the defaults.
    pub(crate) fn load() -> Result<Self, ConfigError> {
        let settings = Self {
            delay: config::get_or("delay", 10)?,
            error_delay: config::get_or("error_delay", 30)?,
            trans_times: config::get_or("trans_times", Line("00:00;14:05".into()))?,
            trans_interval: config::get_or("trans_interval", 1)?,
            trans_flag: config::get_or("trans_flag", Line(DEFAULT_TRANS_FLAG.into()))?,
            realtime: config::get_or("realtime", true)?,
            timezone_format: config::get_or("timezone_format", TimeZoneFormat::Auto)?,
            server_ver: config::get_or("server_ver", Line("2.4.1".into()))?,
            push_prot_ver: config::get_or("push_prot_ver", Line("2.4.1".into()))?,
            max_commands: config::get_or("max_commands", 200)?,
            max_reply_bytes: config::get_or("max_reply_bytes", 40_960)?,
            card_format: config::get_or("card_format", CardFormat::Decimal)?,
            template_format: config::get_or("template_format", TemplateFormat::Classic)?,
            enroll_retry: config::get_or("enroll_retry", 3)?,
            enroll_overwrite: config::get_or("enroll_overwrite", true)?,
            unlock_command: config::get_or("unlock_command", Line("AC_UNLOCK".into()))?,
            user_enabled: config::get_or("user_enabled", UserEnabledMode::PriBit)?,
            reply_count: config::get_or("reply_count", ReplyCount::Accepted)?,
            status_events: config::get_or("status_events", true)?,
            future_tolerance_seconds: config::get_or("future_tolerance_seconds", 86_400)?,
        };
        if settings.max_commands == 0 {
            return Err(invalid("max_commands", "must be at least 1"));
        }
        if settings.max_reply_bytes < 256 {
            return Err(invalid("max_reply_bytes", "must be at least 256"));
        }
        Ok(settings)
    }
}

/// A `ConfigError::Invalid` for `key`.
pub(crate) fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use biogate_sdk::testing;

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::load().unwrap();
        assert_eq!((s.delay, s.error_delay, s.max_commands), (10, 30, 200));
        assert_eq!(s.max_reply_bytes, 40_960);
        assert_eq!(s.timezone_format, TimeZoneFormat::Auto);
        testing::set_config(&[("delay", "5"), ("timezone_format", "hours")]);
        let s = Settings::load().unwrap();
        assert_eq!((s.delay, s.timezone_format), (5, TimeZoneFormat::Hours));
    }

    #[test]
    fn bad_values_name_the_key() {
        testing::set_config(&[("trans_times", "00:00\nEvil=1")]);
        let err = Settings::load().unwrap_err();
        assert!(err.to_string().contains("trans_times"), "{err}");
        testing::set_config(&[("card_format", "octal")]);
        assert!(Settings::load().unwrap_err().to_string().contains("card_format"));
        testing::set_config(&[("max_commands", "0")]);
        assert!(Settings::load().is_err());
    }
}
