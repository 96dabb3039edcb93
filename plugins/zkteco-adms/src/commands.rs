//! Encoding the gateway's commands as ADMS commands (the text after `C:<id>:`).
//!
//! One command may become several ADMS commands (a user with templates and a photo is a
//! `USERINFO` update, one template update per template, and a `USERPIC` update). A
//! command the protocol cannot express, or whose values cannot be written on a command
//! line (a tab or a line break in a PIN...), is refused with a return code instead; the
//! caller turns the refusal into a `command-result` event so that nothing vanishes.
//!
//! Pure: no host calls. What it needs from the kv store (a user's last known privilege)
//! comes in [`Context`], and what should be stored comes out in [`Effect`].

use biogate_sdk::prelude::*;

use crate::base64;
use crate::codes::{self, BAD_PARAMETER, BiodataSettings, NOT_SUPPORTED};
use crate::settings::{CardFormat, Settings, TemplateFormat, UserEnabledMode};
use crate::time;

/// What the encoder needs besides the command.
pub(crate) struct Context<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) biodata: &'a BiodataSettings,
    /// The device's UTC offset: times in commands are device-local wall times.
    pub(crate) offset_minutes: i32,
    /// The last privilege seen or sent for the user the command is about (see
    /// [`subject`]).
    pub(crate) known_pri: Option<u32>,
}

/// State to update once the commands are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    /// The user's privilege is now this.
    SetPri(String, u32),
    /// The user is gone.
    ForgetUser(String),
}

/// The ADMS commands of one gateway command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) lines: Vec<String>,
    pub(crate) effect: Effect,
}

/// Why a command is not sent: the return code of its `command-result`, and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i32,
    pub(crate) reason: String,
}

impl Refusal {
    fn unsupported(reason: impl Into<String>) -> Self {
        Self { code: NOT_SUPPORTED, reason: reason.into() }
    }

    fn bad(reason: impl Into<String>) -> Self {
        Self { code: BAD_PARAMETER, reason: reason.into() }
    }
}

type Result<T> = std::result::Result<T, Refusal>;

/// The user a command changes (whose privilege [`Context::known_pri`] should carry).
pub(crate) fn subject(body: &CommandBody) -> Option<&str> {
    match body {
        CommandBody::UpsertUser(user) => Some(&user.user_id),
        CommandBody::SetUserEnabled((pin, _)) => Some(pin),
        _ => None,
    }
}

/// Encodes one command.
pub(crate) fn encode(body: &CommandBody, cx: &Context<'_>) -> Result<Encoded> {
    let one = |line: String| Encoded { lines: vec![line], effect: Effect::None };
    Ok(match body {
        CommandBody::UpsertUser(user) => upsert_user(user, cx)?,
        CommandBody::DeleteUser(pin) => Encoded {
            lines: vec![format!("DATA DELETE USERINFO PIN={}", pin_of(pin)?)],
            effect: Effect::ForgetUser(pin.clone()),
        },
        CommandBody::DeleteAllUsers => {
            return Err(Refusal::unsupported(
                "ADMS has no command that deletes only the users (CLEAR DATA, clear-all-data, also deletes the logs)",
            ));
        }
        CommandBody::SetUserEnabled((pin, enabled)) => set_user_enabled(pin, *enabled, cx)?,
        CommandBody::DeleteTemplate(args) => one(delete_template(args, cx)?),
        CommandBody::UploadPunches(range) => {
            one(format!("DATA QUERY ATTLOG StartTime={}\tEndTime={}", local(&range.start, cx), local(&range.end, cx)))
        }
        CommandBody::ClearPunches => one("CLEAR LOG".into()),
        CommandBody::ClearPhotos => one("CLEAR PHOTO".into()),
        CommandBody::ClearAllData => one("CLEAR DATA".into()),
        CommandBody::GetDeviceInfo => one("INFO".into()),
        CommandBody::GetUserInfo(Some(pin)) => one(format!("DATA QUERY USERINFO PIN={}", pin_of(pin)?)),
        CommandBody::GetUserInfo(None) => one("DATA QUERY USERINFO".into()),
        CommandBody::Reboot => one("REBOOT".into()),
        CommandBody::SetTime(_) => {
            return Err(Refusal::unsupported(
                "ADMS has no set-time command: the device clock follows the Date header of the handshake plus its TimeZone option",
            ));
        }
        CommandBody::SetOption((key, value)) => one(set_option(key, value)?),
        CommandBody::UnlockDoor => one(cx.settings.unlock_command.0.clone()),
        CommandBody::StartEnrollment(args) => one(start_enrollment(args, cx)?),
    })
}

/// Whether an encoded command is a reboot (nothing may follow it in a reply).
pub(crate) fn is_reboot(line: &str) -> bool {
    line.trim() == "REBOOT"
}

/// A PIN that can be written in a command.
fn pin_of(pin: &str) -> Result<&str> {
    if pin.is_empty() {
        return Err(Refusal::bad("empty user id"));
    }
    field("user id", pin)
}

/// A value that cannot break the command line: no tab, CR, LF or other control character.
fn field<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.chars().any(char::is_control) {
        return Err(Refusal::bad(format!("{what} contains a control character (tab or line break)")));
    }
    Ok(value)
}

/// Free text (names): control characters become spaces.
fn text(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// A device-local wall time.
fn local(t: &DeviceTime, cx: &Context<'_>) -> String {
    time::format_wall_time(t.unix_seconds, cx.offset_minutes)
}

/// A card number as the configured format wants it.
fn card(data: &str, format: CardFormat) -> Result<String> {
    let data = field("card", data.trim())?;
    match format {
        CardFormat::Decimal => Ok(data.to_owned()),
        CardFormat::Bracket if data.starts_with('[') => Ok(data.to_owned()),
        CardFormat::Bracket => {
            let n: u32 =
                data.parse().map_err(|_| Refusal::bad("card_format = bracket needs a 32-bit decimal card number"))?;
            let b = n.to_le_bytes();
            Ok(format!("[{:02X}{:02X}{:02X}{:02X}]", b[0], b[1], b[2], b[3]))
        }
    }
}

fn upsert_user(user: &User, cx: &Context<'_>) -> Result<Encoded> {
    let pin = pin_of(&user.user_id)?;
    let mut fields = vec![format!("PIN={pin}")];
    let names: Vec<String> =
        [&user.first_name, &user.last_name].into_iter().flatten().map(|n| text(n)).filter(|n| !n.is_empty()).collect();
    if user.first_name.is_some() || user.last_name.is_some() {
        fields.push(format!("Name={}", names.join(" ")));
    }
    let mut effect = Effect::None;
    if user.enabled == Some(false) && cx.settings.user_enabled == UserEnabledMode::Unsupported {
        return Err(Refusal::unsupported(
            "disabled users cannot be expressed (plugin config user_enabled = unsupported)",
        ));
    }
    if user.role.is_some() || user.enabled.is_some() {
        let bits = user.role.map(codes::role_bits).or(cx.known_pri).unwrap_or(0);
        let enabled = user.enabled.unwrap_or_else(|| cx.known_pri.is_none_or(|p| p & 1 == 0));
        let pri = codes::pri_of(bits, enabled);
        fields.push(format!("Pri={pri}"));
        effect = Effect::SetPri(pin.to_owned(), pri);
    }
    let mut biometric = Vec::new();
    for template in &user.templates {
        match template.kind {
            TemplateKind::Password if !fields.iter().any(|f| f.starts_with("Passwd=")) => {
                fields.push(format!("Passwd={}", field("password", &template.data)?));
            }
            TemplateKind::Card if !fields.iter().any(|f| f.starts_with("Card=")) => {
                fields.push(format!("Card={}", card(&template.data, cx.settings.card_format)?));
            }
            TemplateKind::Password | TemplateKind::Card => {
                return Err(Refusal::bad("a device user holds at most one password and one card"));
            }
            _ => biometric.push(template_update(pin, template, cx)?),
        }
    }
    if let Some(from) = &user.valid_from {
        fields.push(format!("StartDatetime={}", local(from, cx)));
    }
    if let Some(until) = &user.valid_until {
        fields.push(format!("EndDatetime={}", local(until, cx)));
    }
    let mut lines = vec![format!("DATA UPDATE USERINFO {}", fields.join("\t"))];
    lines.extend(biometric);
    if let Some(photo) = &user.photo {
        let content = base64::encode(photo);
        lines.push(format!("DATA UPDATE USERPIC PIN={pin}\tSize={}\tContent={content}", content.len()));
    }
    Ok(Encoded { lines, effect })
}

/// `DATA UPDATE FINGERTMP|FACE|BIODATA` for one biometric template.
fn template_update(pin: &str, template: &Template, cx: &Context<'_>) -> Result<String> {
    let data = template.data.trim();
    let kind = codes::kind_name(template.kind);
    if data.is_empty() || !base64::is_base64_text(data) {
        return Err(Refusal::bad(format!("the {kind} template is not base64")));
    }
    let index = template.index.unwrap_or(0);
    let size = data.len();
    let classic = cx.settings.template_format == TemplateFormat::Classic;
    match template.kind {
        TemplateKind::Fingerprint if classic => {
            Ok(format!("DATA UPDATE FINGERTMP PIN={pin}\tFID={index}\tSize={size}\tValid=1\tTMP={data}"))
        }
        TemplateKind::Face if classic => {
            Ok(format!("DATA UPDATE FACE PIN={pin}\tFID={index}\tSize={size}\tValid=1\tTMP={data}"))
        }
        other => {
            let (t, (major, minor)) = cx
                .biodata
                .get(other)
                .ok_or_else(|| Refusal::unsupported(format!("{kind} templates have no BIODATA type")))?;
            Ok(format!(
                "DATA UPDATE BIODATA Pin={pin}\tNo={index}\tIndex=0\tValid=1\tDuress=0\tType={t}\tMajorVer={major}\tMinorVer={minor}\tFormat=0\tTmp={data}"
            ))
        }
    }
}

fn set_user_enabled(pin: &str, enabled: bool, cx: &Context<'_>) -> Result<Encoded> {
    if cx.settings.user_enabled == UserEnabledMode::Unsupported {
        return Err(Refusal::unsupported("blocking users is not expressed (plugin config user_enabled = unsupported)"));
    }
    let pin = pin_of(pin)?;
    let pri = codes::pri_of(cx.known_pri.unwrap_or(0), enabled);
    Ok(Encoded {
        lines: vec![format!("DATA UPDATE USERINFO PIN={pin}\tPri={pri}")],
        effect: Effect::SetPri(pin.to_owned(), pri),
    })
}

fn delete_template(args: &DeleteTemplateArgs, cx: &Context<'_>) -> Result<String> {
    let pin = pin_of(&args.user_id)?;
    let classic = cx.settings.template_format == TemplateFormat::Classic;
    Ok(match (args.kind, args.index) {
        (TemplateKind::Card, _) => format!("DATA UPDATE USERINFO PIN={pin}\tCard="),
        (TemplateKind::Password, _) => format!("DATA UPDATE USERINFO PIN={pin}\tPasswd="),
        (TemplateKind::Fingerprint, Some(fid)) if classic => {
            format!("DATA DELETE FINGERTMP PIN={pin}\tFID={fid}")
        }
        (TemplateKind::Fingerprint, None) if classic => format!("DATA DELETE FINGERTMP PIN={pin}"),
        (TemplateKind::Face, _) if classic => format!("DATA DELETE FACE PIN={pin}"),
        (kind, index) => {
            let (t, _) = cx.biodata.get(kind).ok_or_else(|| {
                Refusal::unsupported(format!("{} templates have no BIODATA type", codes::kind_name(kind)))
            })?;
            match index {
                Some(no) => format!("DATA DELETE BIODATA Pin={pin}\tType={t}\tNo={no}"),
                None => format!("DATA DELETE BIODATA Pin={pin}\tType={t}"),
            }
        }
    })
}

fn set_option(key: &str, value: &str) -> Result<String> {
    let key = field("option key", key.trim())?;
    if key.is_empty() || key.contains(['=', ' ']) {
        return Err(Refusal::bad("an option key must be a non-empty word without `=`"));
    }
    Ok(format!("SET OPTION {key}={}", field("option value", value)?))
}

fn start_enrollment(args: &StartEnrollmentArgs, cx: &Context<'_>) -> Result<String> {
    let pin = pin_of(&args.user_id)?;
    let retry = cx.settings.enroll_retry;
    let overwrite = u8::from(cx.settings.enroll_overwrite);
    match args.kind {
        TemplateKind::Fingerprint => {
            Ok(format!("ENROLL_FP PIN={pin}\tFID={}\tRETRY={retry}\tOVERWRITE={overwrite}", args.index.unwrap_or(0)))
        }
        TemplateKind::Card | TemplateKind::Password => Err(Refusal::unsupported(format!(
            "ADMS cannot start {} enrolment at the device",
            codes::kind_name(args.kind)
        ))),
        kind => {
            let (t, _) = cx
                .biodata
                .get(kind)
                .ok_or_else(|| Refusal::unsupported(format!("{} has no BIODATA type", codes::kind_name(kind))))?;
            Ok(format!("ENROLL_BIO TYPE={t}\tPIN={pin}\tRETRY={retry}\tOVERWRITE={overwrite}"))
        }
    }
}

#[cfg(test)]
mod tests;
