//! `table=OPERLOG` (and `table=BIODATA`) lines: a tag, a space, then tab-separated
//! `Key=Value` fields (key case varies: `FACE` uploads use upper-case keys).
//!
//! - `USER` -> a user update (name, privilege, password, card, validity window);
//! - `FP`, `FACE`, `BIODATA` -> a user update carrying the template;
//! - `USERPIC`, `BIOPHOTO` -> a user update carrying the photo;
//! - `OPLOG` (device operations: startup, alarms, enrolments...) -> counted, no event;
//! - any other well-formed tag -> counted, no event (logged at debug level).

use biogate_sdk::prelude::*;

use crate::base64;
use crate::codes;
use crate::time;

/// What one line became.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// A user update; for `USER` lines, the privilege it carried.
    Update(UserUpdate, Option<u32>),
    /// A line understood but without an event (`OPLOG`, tags biogate has no use for).
    Ignored(String),
}

/// The `Key=Value` fields of a line, keys lower-cased. Values keep any `=` (base64
/// padding).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(text: &str) -> Self {
        Fields(
            text.split('\t')
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// The value of `key` (lower case), if present and not blank.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn pin(&self) -> Result<&str, String> {
        let pin = self.get("pin").ok_or("no PIN")?;
        if pin.chars().any(char::is_control) {
            return Err("PIN has control characters".into());
        }
        Ok(pin)
    }

    fn number(&self, key: &str) -> Result<Option<u32>, String> {
        self.get(key)
            .map(|v| v.parse().map_err(|_| format!("{} `{v}` is not a number", key.to_ascii_uppercase())))
            .transpose()
    }
}

/// Parses one line. `now` is the operation time given to user updates (the lines carry
/// none); `default_tag` is the tag assumed for a line without one (`BIODATA` on
/// `table=BIODATA`).
pub(crate) fn parse(line: &str, now: DeviceTime, default_tag: Option<&str>) -> Result<Record, String> {
    let line = line.trim_start();
    let (tag, rest) = match line.split_once([' ', '\t']) {
        Some((tag, rest)) if !tag.contains('=') => (tag, rest),
        _ => match default_tag {
            Some(tag) => (tag, line),
            None => return Err("no tag".into()),
        },
    };
    let tag = tag.to_ascii_uppercase();
    let fields = Fields::parse(rest);
    let (user, pri) = match tag.as_str() {
        "USER" => user(&fields, now.utc_offset_minutes)?,
        "FP" => (template(&fields, TemplateKind::Fingerprint, "fid", "tmp")?, None),
        "FACE" => (template(&fields, TemplateKind::Face, "fid", "tmp")?, None),
        "BIODATA" => (biodata(&fields)?, None),
        "USERPIC" | "BIOPHOTO" => (photo(&fields)?, None),
        "OPLOG" => return Ok(Record::Ignored(tag)),
        _ if !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            return Ok(Record::Ignored(tag));
        }
        _ => return Err("no tag".into()),
    };
    Ok(Record::Update(UserUpdate { user, operation_time: now }, pri))
}

/// `USER PIN=..\tName=..\tPri=..\tPasswd=..\tCard=..\tGrp=..\tTZ=..\tVerify=..\tViceCard=..`
/// (newer firmware adds `StartDatetime`, `EndDatetime`).
fn user(fields: &Fields, offset: i32) -> Result<(User, Option<u32>), String> {
    let mut user = User::new(fields.pin()?);
    user.first_name = fields.get("name").map(str::to_owned);
    let pri = fields.number("pri")?;
    if let Some(pri) = pri {
        let (role, enabled) = codes::role_of_pri(pri);
        user.role = role;
        user.enabled = Some(enabled);
    }
    if let Some(secret) = fields.get("passwd") {
        user.templates.push(Template { kind: TemplateKind::Password, index: None, data: secret.to_owned() });
    }
    if let Some(card) = fields.get("card").and_then(card_number) {
        user.templates.push(Template { kind: TemplateKind::Card, index: None, data: card });
    }
    let window = |key| fields.get(key).filter(|v| *v != "0").and_then(|v| time::parse_device_time(v, offset));
    user.valid_from = window("startdatetime");
    user.valid_until = window("enddatetime");
    Ok((user, pri))
}

/// A card number in decimal: `123456789` stays, `[15CD5B07]` (little-endian hex bytes)
/// becomes `123456789`; `0` and all-zero forms mean "no card".
pub(crate) fn card_number(text: &str) -> Option<String> {
    let text = text.trim();
    let little_endian = |hex: &str| -> Option<u64> {
        if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 16 {
            return None;
        }
        let mut n: u64 = 0;
        for i in (0..hex.len()).step_by(2).rev() {
            n = (n << 8) | u64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?);
        }
        Some(n)
    };
    // A bracketed form that is not hex is kept as the device wrote it.
    let number = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(hex) => little_endian(hex).map_or_else(|| text.to_owned(), |n| n.to_string()),
        None => text.to_owned(),
    };
    (!number.is_empty() && !number.trim_start_matches('0').is_empty()).then_some(number)
}

/// `FP PIN=..\tFID=..\tSize=..\tValid=..\tTMP=..` and `FACE` (same keys).
fn template(fields: &Fields, kind: TemplateKind, index_key: &str, data_key: &str) -> Result<User, String> {
    let mut user = User::new(fields.pin()?);
    let name = data_key.to_ascii_uppercase();
    let data = fields.get(data_key).ok_or_else(|| format!("no {name}"))?;
    if !base64::is_base64_text(data) {
        return Err(format!("{name} is not base64"));
    }
    user.templates.push(Template { kind, index: fields.number(index_key)?, data: data.to_owned() });
    Ok(user)
}

/// `BIODATA Pin=..\tNo=..\tIndex=..\tValid=..\tDuress=..\tType=..\tMajorVer=..\tMinorVer=..\tFormat=..\tTmp=..`
fn biodata(fields: &Fields) -> Result<User, String> {
    let t = fields.number("type")?.ok_or("no Type")?;
    let kind = codes::kind_of_biodata_type(t).ok_or_else(|| format!("BIODATA Type {t} has no biogate kind"))?;
    template(fields, kind, "no", "tmp")
}

/// `USERPIC PIN=..\tFileName=..\tSize=..\tContent=..` and `BIOPHOTO` (same `Content`).
fn photo(fields: &Fields) -> Result<User, String> {
    let mut user = User::new(fields.pin()?);
    let content = fields.get("content").ok_or("no Content")?;
    user.photo = Some(base64::decode(content).ok_or("Content is not base64")?);
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: DeviceTime = DeviceTime { unix_seconds: 1_700_000_000, utc_offset_minutes: 60 };

    fn update(line: &str) -> (User, Option<u32>) {
        match parse(line, NOW, None) {
            Ok(Record::Update(u, pri)) => {
                assert_eq!(u.operation_time, NOW);
                (u.user, pri)
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn user_line() {
        let (u, pri) = update(
            "USER PIN=982\tName=Ann Lee\tPri=14\tPasswd=1234\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=0\tViceCard=",
        );
        assert_eq!(u.user_id, "982");
        assert_eq!(u.first_name.as_deref(), Some("Ann Lee"));
        assert_eq!(u.role, Some(UserRole::Admin));
        assert_eq!(u.enabled, Some(true));
        assert_eq!(pri, Some(14));
        assert_eq!(
            u.templates,
            vec![
                Template { kind: TemplateKind::Password, index: None, data: "1234".into() },
                Template { kind: TemplateKind::Card, index: None, data: "123456789".into() },
            ]
        );
        let (u, pri) = update("USER PIN=5\tName=\tPri=1\tPasswd=\tCard=0");
        assert_eq!((u.first_name, u.role, u.enabled, pri), (None, Some(UserRole::User), Some(false), Some(1)));
        assert!(u.templates.is_empty());
    }

    #[test]
    fn user_validity_window() {
        let (u, _) = update("USER PIN=5\tStartDatetime=2024-01-01 00:00:00\tEndDatetime=0");
        assert_eq!(u.valid_from, Some(DeviceTime::new(1_704_067_200 - 3600, 60)));
        assert_eq!(u.valid_until, None);
    }

    #[test]
    fn fingerprint_face_and_biodata_lines() {
        let (u, _) = update("FP PIN=982\tFID=6\tSize=8\tValid=1\tTMP=TWljUzIx");
        assert_eq!(
            u.templates,
            vec![Template { kind: TemplateKind::Fingerprint, index: Some(6), data: "TWljUzIx".into() }]
        );
        let (u, _) = update("FACE PIN=982\tFID=0\tSIZE=8\tVALID=1\tTMP=AAAA/+==");
        assert_eq!(u.templates[0].kind, TemplateKind::Face);
        assert_eq!(u.templates[0].index, Some(0));
        let (u, _) = update(
            "BIODATA Pin=3\tNo=0\tIndex=0\tValid=1\tDuress=0\tType=8\tMajorVer=5\tMinorVer=8\tFormat=0\tTmp=QUJD",
        );
        assert_eq!(u.templates[0].kind, TemplateKind::Palm);
        // table=BIODATA lines may come without the tag.
        let Ok(Record::Update(u, _)) = parse("Pin=3\tNo=2\tType=7\tTmp=QUJD", NOW, Some("BIODATA")) else {
            panic!("untagged BIODATA");
        };
        assert_eq!(u.user.templates[0].kind, TemplateKind::FingerVein);
        assert_eq!(u.user.templates[0].index, Some(2));
    }

    #[test]
    fn photo_lines() {
        let (u, _) = update("USERPIC PIN=982\tFileName=982.jpg\tSize=8\tContent=/9j/4A==");
        assert_eq!(u.photo, Some(vec![0xff, 0xd8, 0xff, 0xe0]));
        let (u, _) = update("BIOPHOTO PIN=982\tFileName=9-982.jpg\tType=9\tSize=8\tContent=/9j/4A==");
        assert!(u.photo.is_some());
    }

    #[test]
    fn oplog_and_other_tags_are_ignored() {
        assert_eq!(
            parse("OPLOG 0\t0\t2024-01-01 00:00:00\t0\t0\t0\t0", NOW, None),
            Ok(Record::Ignored("OPLOG".into()))
        );
        assert_eq!(parse("WORKCODE PIN=1\tCODE=2", NOW, None), Ok(Record::Ignored("WORKCODE".into())));
    }

    #[test]
    fn bad_lines() {
        for (line, why) in [
            ("USER Name=x", "PIN"),
            ("USER PIN=1\tPri=admin", "PRI"),
            ("FP PIN=1\tFID=0", "TMP"),
            ("FP PIN=1\tFID=x\tTMP=QUJD", "FID"),
            ("FP PIN=1\tTMP=a b!", "TMP"),
            ("BIODATA Pin=1\tType=3\tTmp=QUJD", "Type 3"),
            ("USERPIC PIN=1\tContent=@@", "base64"),
            ("PIN=1\tName=x", "tag"),
            ("", "tag"),
        ] {
            let err = parse(line, NOW, None).unwrap_err();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }

    #[test]
    fn card_numbers() {
        assert_eq!(card_number("[15CD5B07]").as_deref(), Some("123456789"));
        assert_eq!(card_number("123456789").as_deref(), Some("123456789"));
        assert_eq!(card_number("[0000000000]"), None);
        assert_eq!(card_number("0"), None);
        assert_eq!(card_number("[XYZ]").as_deref(), Some("[XYZ]"));
        assert_eq!(card_number("[ZZ]").as_deref(), Some("[ZZ]"));
    }
}
