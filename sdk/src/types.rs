//! Conveniences on the canonical types generated from `wit/types.wit` (in this crate): constructors,
//! accessors, and the WIT names of enum cases.

use std::fmt;
use std::str::FromStr;

use crate::prelude::{DeviceTime, Event, EventBody, InputType, Punch, PunchType, User};

impl DeviceTime {
    /// An instant (`unix_seconds`, UTC) as seen by a device `utc_offset_minutes` away
    /// from UTC.
    pub fn new(unix_seconds: i64, utc_offset_minutes: i32) -> Self {
        Self { unix_seconds, utc_offset_minutes }
    }
}

impl Punch {
    /// A check-in punch of `user_id` at `log_time`, input type unknown, with no
    /// temperature, mask, work code or photo.
    pub fn new(user_id: impl Into<String>, log_time: DeviceTime) -> Self {
        Self {
            user_id: user_id.into(),
            log_time,
            punch_type: PunchType::CheckIn,
            input_type: InputType::Unknown,
            temperature: None,
            face_mask: None,
            work_code: None,
            photo: None,
        }
    }
}

impl User {
    /// A user record that only names `user_id` (every other field unknown).
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            first_name: None,
            last_name: None,
            role: None,
            enabled: None,
            valid_from: None,
            valid_until: None,
            templates: Vec::new(),
            photo: None,
        }
    }
}

impl Event {
    /// An event with the given identity and body.
    pub fn new(
        id: impl Into<String>,
        device_id: impl Into<String>,
        sequence: u64,
        received_at_ms: u64,
        body: EventBody,
    ) -> Self {
        Self { id: id.into(), device_id: device_id.into(), sequence, received_at_ms, body }
    }

    /// The punch, if this event is one.
    pub fn punch(&self) -> Option<&Punch> {
        match &self.body {
            EventBody::Punch(punch) => Some(punch),
            _ => None,
        }
    }

    /// The punch, mutably, if this event is one.
    pub fn punch_mut(&mut self) -> Option<&mut Punch> {
        match &mut self.body {
            EventBody::Punch(punch) => Some(punch),
            _ => None,
        }
    }

    /// The device user this event is about: the puncher of a punch, or the user of a
    /// user update. `None` for command results and device status.
    pub fn user_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Punch(punch) => Some(&punch.user_id),
            EventBody::UserUpdate(update) => Some(&update.user.user_id),
            EventBody::CommandResult(_) | EventBody::DeviceStatus(_) => None,
        }
    }

    /// Like [`Event::user_id`], mutably, to rewrite the id.
    pub fn user_id_mut(&mut self) -> Option<&mut String> {
        match &mut self.body {
            EventBody::Punch(punch) => Some(&mut punch.user_id),
            EventBody::UserUpdate(update) => Some(&mut update.user.user_id),
            EventBody::CommandResult(_) | EventBody::DeviceStatus(_) => None,
        }
    }
}

/// An enum case name that is not one of the WIT names of the enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{name}`")]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

/// `as_str`, `Display` and `FromStr` with the WIT names (`check-in`, `finger-vein`...).
macro_rules! wit_names {
    ($ty:ident, $kind:literal, { $($case:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The case's name in the WIT contract.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$case => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$case),)+
                    _ => Err(UnknownName { kind: $kind, name: s.to_owned() }),
                }
            }
        }
    };
}

wit_names!(PunchType, "punch type", {
    CheckIn => "check-in",
    CheckOut => "check-out",
    BreakIn => "break-in",
    BreakOut => "break-out",
    OverTimeIn => "over-time-in",
    OverTimeOut => "over-time-out",
    MealIn => "meal-in",
    MealOut => "meal-out",
});

wit_names!(InputType, "input type", {
    Fingerprint => "fingerprint",
    Face => "face",
    Palm => "palm",
    FingerVein => "finger-vein",
    Iris => "iris",
    Retina => "retina",
    Card => "card",
    Password => "password",
    Unknown => "unknown",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punch_type_names_round_trip() {
        for t in [PunchType::CheckIn, PunchType::OverTimeOut, PunchType::MealIn] {
            assert_eq!(t.as_str().parse::<PunchType>(), Ok(t));
        }
        assert!("lunch".parse::<PunchType>().is_err());
        assert_eq!(InputType::FingerVein.to_string(), "finger-vein");
    }

    #[test]
    fn user_id_reaches_punches_and_user_updates() {
        let mut event = crate::testing::user_update_event("D1", "7", 0);
        assert_eq!(event.user_id(), Some("7"));
        if let Some(id) = event.user_id_mut() {
            *id = "E7".into();
        }
        assert_eq!(event.user_id(), Some("E7"));
        assert!(event.punch().is_none());
    }
}
