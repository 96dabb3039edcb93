//! The numbers of the protocol: attendance status and verify codes (configurable per
//! firmware), privileges, `BIODATA` template types and the devices' return codes.

use std::collections::BTreeMap;

use biogate_sdk::prelude::*;

use crate::settings::invalid;

/// Return code: success.
pub(crate) const OK: i32 = 0;
/// Return code: bad parameter (also used by the plugin for a command whose values
/// cannot be written on a command line).
pub(crate) const BAD_PARAMETER: i32 = -1;
/// Return code: the device (here: the protocol) does not support the command.
pub(crate) const NOT_SUPPORTED: i32 = -1002;
/// Return code: the command is too long.
pub(crate) const TOO_LONG: i32 = -1006;

/// The default punch type of each ATTLOG status code (from the standalone SDK).
const DEFAULT_STATUS: [(u32, PunchType); 7] = [
    (0, PunchType::CheckIn),
    (1, PunchType::CheckOut),
    (2, PunchType::BreakOut),
    (3, PunchType::BreakIn),
    (4, PunchType::OverTimeIn),
    (5, PunchType::OverTimeOut),
    (255, PunchType::CheckIn),
];

/// The default input type of each ATTLOG verify code (the push spec's appendix; for a
/// combination, its strongest factor).
fn default_verify(code: u32) -> Option<InputType> {
    Some(match code {
        1 | 5 | 6 | 8..=10 | 12..=14 => InputType::Fingerprint,
        3 => InputType::Password,
        4 | 7 | 11 => InputType::Card,
        15..=20 => InputType::Face,
        21..=24 => InputType::FingerVein,
        25..=29 => InputType::Palm,
        0 | 2 | 200 => InputType::Unknown,
        _ => return None,
    })
}

/// The status and verify maps: the defaults, overridden by `status.<code>`,
/// `status_default`, `verify.<code>` and `verify_default`.
#[derive(Debug, Clone)]
pub(crate) struct CodeMaps {
    status: BTreeMap<u32, PunchType>,
    status_default: PunchType,
    verify: BTreeMap<u32, InputType>,
    verify_default: InputType,
}

impl CodeMaps {
    /// Reads the maps from the config.
    pub(crate) fn load() -> Result<Self, ConfigError> {
        let mut status: BTreeMap<u32, PunchType> = DEFAULT_STATUS.into_iter().collect();
        for (code, value) in config::with_prefix("status.") {
            status.insert(parse_code("status.", &code)?, parse_name("status.", &code, &value)?);
        }
        let mut verify = BTreeMap::new();
        for (code, value) in config::with_prefix("verify.") {
            verify.insert(parse_code("verify.", &code)?, parse_name("verify.", &code, &value)?);
        }
        Ok(Self {
            status,
            status_default: config::get_or("status_default", PunchType::CheckIn)?,
            verify,
            verify_default: config::get_or("verify_default", InputType::Unknown)?,
        })
    }

    /// The punch type of a status code (`None`: the line had none).
    pub(crate) fn punch_type(&self, status: Option<u32>) -> PunchType {
        status.and_then(|code| self.status.get(&code).copied()).unwrap_or(self.status_default)
    }

    /// The input type of a verify code (`None`: the line had none).
    pub(crate) fn input_type(&self, verify: Option<u32>) -> InputType {
        verify
            .and_then(|code| self.verify.get(&code).copied().or_else(|| default_verify(code)))
            .unwrap_or(self.verify_default)
    }
}

fn parse_code(prefix: &str, code: &str) -> Result<u32, ConfigError> {
    code.trim().parse().map_err(|_| invalid(&format!("{prefix}{code}"), "the code after the dot must be a number"))
}

fn parse_name<T: std::str::FromStr>(prefix: &str, code: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|err: T::Err| invalid(&format!("{prefix}{code}"), &err.to_string()))
}

/// The role and enabled flag of a ZKTeco privilege (`Pri`): bit 0 set means disabled;
/// the rest is 0 user, 2 registrar, 6 admin, 14 super admin (registrars count as admins).
pub(crate) fn role_of_pri(pri: u32) -> (Option<UserRole>, bool) {
    let role = match pri & !1 {
        0 => Some(UserRole::User),
        2 | 6 | 14 => Some(UserRole::Admin),
        _ => None,
    };
    (role, pri & 1 == 0)
}

/// The privilege of a role (admins become super admins), with bit 0 for disabled.
pub(crate) fn pri_of(role_bits: u32, enabled: bool) -> u32 {
    (role_bits & !1) | u32::from(!enabled)
}

/// The privilege bits of a role.
pub(crate) fn role_bits(role: UserRole) -> u32 {
    match role {
        UserRole::User => 0,
        UserRole::Admin => 14,
    }
}

/// The WIT name of a template kind (used in config keys and messages).
pub(crate) fn kind_name(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Fingerprint => "fingerprint",
        TemplateKind::Face => "face",
        TemplateKind::Palm => "palm",
        TemplateKind::FingerVein => "finger-vein",
        TemplateKind::Iris => "iris",
        TemplateKind::Retina => "retina",
        TemplateKind::Card => "card",
        TemplateKind::Password => "password",
    }
}

/// The template kind of an uploaded `BIODATA` `Type` (1 fingerprint, 2 face, 4 iris,
/// 5 retina, 6 palm print, 7 finger vein, 8 palm, 9 visible-light face).
pub(crate) fn kind_of_biodata_type(t: u32) -> Option<TemplateKind> {
    Some(match t {
        1 => TemplateKind::Fingerprint,
        2 | 9 => TemplateKind::Face,
        4 => TemplateKind::Iris,
        5 => TemplateKind::Retina,
        6 | 8 => TemplateKind::Palm,
        7 => TemplateKind::FingerVein,
        _ => return None,
    })
}

/// The `BIODATA` `Type` the plugin writes for a kind: `biodata_type.<kind>`, default
/// 1 fingerprint, 2 face, 8 palm, 7 finger vein, 4 iris, 5 retina. `None` for cards
/// and passwords.
pub(crate) fn biodata_type(kind: TemplateKind) -> Result<Option<u32>, ConfigError> {
    let default = match kind {
        TemplateKind::Fingerprint => 1,
        TemplateKind::Face => 2,
        TemplateKind::Palm => 8,
        TemplateKind::FingerVein => 7,
        TemplateKind::Iris => 4,
        TemplateKind::Retina => 5,
        TemplateKind::Card | TemplateKind::Password => return Ok(None),
    };
    config::get_or(&format!("biodata_type.{}", kind_name(kind)), default).map(Some)
}

/// `MajorVer` and `MinorVer` of `BIODATA` templates of a kind: `biodata_version.<kind>`
/// as `major.minor` (the device's algorithm version, which `INFO` reports); `0.0` when
/// not configured.
pub(crate) fn biodata_version(kind: TemplateKind) -> Result<(u32, u32), ConfigError> {
    let key = format!("biodata_version.{}", kind_name(kind));
    let Some(text) = config::get_str(&key) else {
        return Ok((0, 0));
    };
    let text = text.trim();
    let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
    match (major.parse(), minor.parse()) {
        (Ok(major), Ok(minor)) => Ok((major, minor)),
        _ => Err(invalid(&key, "expected `major.minor`, e.g. `10.0`")),
    }
}

/// The template kinds that are biometric (carried by template commands, not `USERINFO`).
pub(crate) const BIOMETRIC_KINDS: [TemplateKind; 6] = [
    TemplateKind::Fingerprint,
    TemplateKind::Face,
    TemplateKind::Palm,
    TemplateKind::FingerVein,
    TemplateKind::Iris,
    TemplateKind::Retina,
];

/// The `BIODATA` type and version of every biometric kind, read once per poll.
#[derive(Debug, Clone)]
pub(crate) struct BiodataSettings(Vec<(TemplateKind, u32, (u32, u32))>);

impl BiodataSettings {
    /// Reads `biodata_type.<kind>` and `biodata_version.<kind>` of every biometric kind.
    pub(crate) fn load() -> Result<Self, ConfigError> {
        let mut out = Vec::new();
        for kind in BIOMETRIC_KINDS {
            if let Some(t) = biodata_type(kind)? {
                out.push((kind, t, biodata_version(kind)?));
            }
        }
        Ok(Self(out))
    }

    /// The `Type` and (`MajorVer`, `MinorVer`) of a biometric kind.
    pub(crate) fn get(&self, kind: TemplateKind) -> Option<(u32, (u32, u32))> {
        self.0.iter().find(|(k, _, _)| *k == kind).map(|(_, t, v)| (*t, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use biogate_sdk::testing;

    #[test]
    fn default_maps() {
        let maps = CodeMaps::load().unwrap();
        assert_eq!(maps.punch_type(Some(0)), PunchType::CheckIn);
        assert_eq!(maps.punch_type(Some(1)), PunchType::CheckOut);
        assert_eq!(maps.punch_type(Some(2)), PunchType::BreakOut);
        assert_eq!(maps.punch_type(Some(5)), PunchType::OverTimeOut);
        assert_eq!(maps.punch_type(Some(255)), PunchType::CheckIn);
        assert_eq!(maps.punch_type(Some(77)), PunchType::CheckIn);
        assert_eq!(maps.punch_type(None), PunchType::CheckIn);
        assert_eq!(maps.input_type(Some(1)), InputType::Fingerprint);
        assert_eq!(maps.input_type(Some(4)), InputType::Card);
        assert_eq!(maps.input_type(Some(15)), InputType::Face);
        assert_eq!(maps.input_type(Some(22)), InputType::FingerVein);
        assert_eq!(maps.input_type(Some(27)), InputType::Palm);
        assert_eq!(maps.input_type(Some(0)), InputType::Unknown);
        assert_eq!(maps.input_type(Some(999)), InputType::Unknown);
    }

    #[test]
    fn configured_maps_win() {
        testing::set_config(&[
            ("status.255", "check-out"),
            ("status.7", "meal-in"),
            ("status_default", "break-in"),
            ("verify.0", "password"),
            ("verify.2", "card"),
            ("verify_default", "face"),
        ]);
        let maps = CodeMaps::load().unwrap();
        assert_eq!(maps.punch_type(Some(255)), PunchType::CheckOut);
        assert_eq!(maps.punch_type(Some(7)), PunchType::MealIn);
        assert_eq!(maps.punch_type(Some(1)), PunchType::CheckOut);
        assert_eq!(maps.punch_type(Some(99)), PunchType::BreakIn);
        assert_eq!(maps.input_type(Some(0)), InputType::Password);
        assert_eq!(maps.input_type(Some(2)), InputType::Card);
        assert_eq!(maps.input_type(Some(1)), InputType::Fingerprint);
        assert_eq!(maps.input_type(Some(999)), InputType::Face);
    }

    #[test]
    fn bad_map_entries_name_the_key() {
        testing::set_config(&[("status.x", "check-in")]);
        assert!(CodeMaps::load().unwrap_err().to_string().contains("status.x"));
        testing::set_config(&[("verify.3", "retina-scan")]);
        assert!(CodeMaps::load().unwrap_err().to_string().contains("verify.3"));
    }

    #[test]
    fn privileges() {
        assert_eq!(role_of_pri(0), (Some(UserRole::User), true));
        assert_eq!(role_of_pri(14), (Some(UserRole::Admin), true));
        assert_eq!(role_of_pri(3), (Some(UserRole::Admin), false));
        assert_eq!(role_of_pri(1), (Some(UserRole::User), false));
        assert_eq!(role_of_pri(8), (None, true));
        assert_eq!(pri_of(14, false), 15);
        assert_eq!(pri_of(15, true), 14);
    }

    #[test]
    fn biodata_settings() {
        assert_eq!(biodata_type(TemplateKind::Palm), Ok(Some(8)));
        assert_eq!(biodata_type(TemplateKind::Card), Ok(None));
        assert_eq!(biodata_version(TemplateKind::Face), Ok((0, 0)));
        testing::set_config(&[
            ("biodata_type.face", "9"),
            ("biodata_version.face", "58.1"),
            ("biodata_version.palm", "x"),
        ]);
        assert_eq!(biodata_type(TemplateKind::Face), Ok(Some(9)));
        assert_eq!(biodata_version(TemplateKind::Face), Ok((58, 1)));
        assert!(biodata_version(TemplateKind::Palm).is_err());
        assert_eq!(kind_of_biodata_type(9), Some(TemplateKind::Face));
        assert_eq!(kind_of_biodata_type(3), None);
    }
}
