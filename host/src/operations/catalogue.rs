//! The operation catalogue: every server-to-device operation biogate accepts, in its `/v1`
//! form (`{"type":"add_user",...}`), validated up front with errors that name the field,
//! and planned into what actually happens (a device command, a move or copy across
//! devices, or work the gateway does itself). The Cams envelope (`cams.rs`) parses into
//! the same requests, so both APIs share one validation. The table is in
//! docs/operations.md.
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plugin::bindings::types::{
    CommandBody, DeleteTemplateArgs, DeviceTime, StartEnrollmentArgs, Template, TemplateKind, TimeRange, User, UserRole,
};
use crate::store::{Device, UserDirectory, merge_user, valid_device_id};
use crate::time::parse_cams_time_with_default;

/// A field at fault and what is wrong with it.
pub use crate::field::FieldError;

pub use crate::field::{MAX_USER_ID, check_user_id};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

/// A kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Fingerprint,
    Face,
    Palm,
    FingerVein,
    Iris,
    Retina,
    Card,
    Password,
}

impl From<CredentialKind> for TemplateKind {
    fn from(kind: CredentialKind) -> Self {
        match kind {
            CredentialKind::Fingerprint => TemplateKind::Fingerprint,
            CredentialKind::Face => TemplateKind::Face,
            CredentialKind::Palm => TemplateKind::Palm,
            CredentialKind::FingerVein => TemplateKind::FingerVein,
            CredentialKind::Iris => TemplateKind::Iris,
            CredentialKind::Retina => TemplateKind::Retina,
            CredentialKind::Card => TemplateKind::Card,
            CredentialKind::Password => TemplateKind::Password,
        }
    }
}

impl From<TemplateKind> for CredentialKind {
    fn from(kind: TemplateKind) -> Self {
        match kind {
            TemplateKind::Fingerprint => CredentialKind::Fingerprint,
            TemplateKind::Face => CredentialKind::Face,
            TemplateKind::Palm => CredentialKind::Palm,
            TemplateKind::FingerVein => CredentialKind::FingerVein,
            TemplateKind::Iris => CredentialKind::Iris,
            TemplateKind::Retina => CredentialKind::Retina,
            TemplateKind::Card => CredentialKind::Card,
            TemplateKind::Password => CredentialKind::Password,
        }
    }
}

impl From<UserRole> for Role {
    fn from(role: UserRole) -> Self {
        match role {
            UserRole::User => Role::User,
            UserRole::Admin => Role::Admin,
        }
    }
}

impl From<Role> for UserRole {
    fn from(role: Role) -> Self {
        match role {
            Role::User => UserRole::User,
            Role::Admin => UserRole::Admin,
        }
    }
}

/// One credential of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    pub kind: CredentialKind,
    /// Finger, face or palm slot (0-9 for fingers); omit for one-slot kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Base64 template for biometrics; the number for a card; the secret for a password.
    pub data: String,
}

/// A user record to write to a device. Omitted fields keep what the device (as far as
/// the gateway knows) already has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// False blocks the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Start of time-bound access (`YYYY-MM-DD HH:MM:SS`, optionally `GMT +HHMM`; the
    /// device's offset when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// End of time-bound access, same format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialSpec>,
    /// Base64 JPEG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
}

/// A range of device-local times (`YYYY-MM-DD HH:MM:SS`, optionally `GMT +HHMM`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSpan {
    pub start_time: String,
    pub end_time: String,
}

/// One operation of the catalogue (the body of `POST /v1/devices/{id}/operations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperationRequest {
    /// Add a user, optionally with credentials (templates, card, password) and a photo.
    AddUser {
        user: UserSpec,
    },
    /// Change fields of an existing user.
    UpdateUser {
        user: UserSpec,
    },
    /// Set a user's photo (base64 JPEG).
    AddUserPhoto {
        user_id: String,
        photo: String,
    },
    DeleteUser {
        user_id: String,
    },
    DeleteAllUsers,
    /// Keep the user on the device but refuse its punches.
    BlockUser {
        user_id: String,
    },
    UnblockUser {
        user_id: String,
    },
    /// Move a user (templates and photo follow) to another device: added there, then
    /// deleted here once the target confirmed.
    MoveUser {
        user_id: String,
        to_device: String,
    },
    /// Copy a user (templates and photo follow) to other devices.
    CopyUser {
        user_id: String,
        to_devices: Vec<String>,
    },
    /// Time-bound access: accept the user only within this window.
    SetAccessWindow {
        user_id: String,
        valid_from: String,
        valid_until: String,
    },
    SetUserRole {
        user_id: String,
        role: Role,
    },
    /// Delete one credential (`index` omitted: every one of that kind).
    DeleteCredential {
        user_id: String,
        kind: CredentialKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
    /// Deliver the punches of a range to the callback again (from the journal).
    ResendPunchLog {
        span: TimeSpan,
    },
    /// Delete the punch log kept on the device.
    DeletePunchLog,
    /// Delete the punch photos kept on the device.
    DeletePunchPhotos,
    LoadDeviceInfo,
    /// One user (`user_id`) or every user, as the gateway knows them.
    LoadUserInfo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// Ask the device to upload its users again (they reach the callback as UserUpdated).
    ResendUsers,
    Reboot,
    /// Set the device clock: `time` or, when omitted, the gateway's now in the device's
    /// offset.
    SyncTime {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<String>,
    },
    SetOption {
        key: String,
        value: String,
    },
    /// Delete everything on the device (users, credentials, logs, photos).
    ClearAllData,
    UnlockDoor,
    /// Start enrolment of a credential for a user at the device.
    StartEnrollment {
        user_id: String,
        kind: CredentialKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
    /// Ask the device to upload its punches of a range again (fills gaps in the journal).
    RequestPunchUpload {
        span: TimeSpan,
    },
}

/// What an operation turns into.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// One command for the device.
    Command(CommandBody),
    /// Add `user` to each target; when `delete_from_source`, delete it from the source
    /// device once every target confirmed.
    Spread { user: User, targets: Vec<String>, delete_from_source: bool },
    /// Re-deliver the punches of this range (Unix seconds) to the device's routes.
    ResendPunches { from: i64, to: i64 },
    /// Answered from the user directory.
    ReadUsers { user_id: Option<String> },
}

impl OperationRequest {
    /// The catalogue name (`add_user`...), the `type` of the `/v1` form.
    pub fn kind(&self) -> &'static str {
        match self {
            OperationRequest::AddUser { .. } => "add_user",
            OperationRequest::UpdateUser { .. } => "update_user",
            OperationRequest::AddUserPhoto { .. } => "add_user_photo",
            OperationRequest::DeleteUser { .. } => "delete_user",
            OperationRequest::DeleteAllUsers => "delete_all_users",
            OperationRequest::BlockUser { .. } => "block_user",
            OperationRequest::UnblockUser { .. } => "unblock_user",
            OperationRequest::MoveUser { .. } => "move_user",
            OperationRequest::CopyUser { .. } => "copy_user",
            OperationRequest::SetAccessWindow { .. } => "set_access_window",
            OperationRequest::SetUserRole { .. } => "set_user_role",
            OperationRequest::DeleteCredential { .. } => "delete_credential",
            OperationRequest::ResendPunchLog { .. } => "resend_punch_log",
            OperationRequest::DeletePunchLog => "delete_punch_log",
            OperationRequest::DeletePunchPhotos => "delete_punch_photos",
            OperationRequest::LoadDeviceInfo => "load_device_info",
            OperationRequest::LoadUserInfo { .. } => "load_user_info",
            OperationRequest::ResendUsers => "resend_users",
            OperationRequest::Reboot => "reboot",
            OperationRequest::SyncTime { .. } => "sync_time",
            OperationRequest::SetOption { .. } => "set_option",
            OperationRequest::ClearAllData => "clear_all_data",
            OperationRequest::UnlockDoor => "unlock_door",
            OperationRequest::StartEnrollment { .. } => "start_enrollment",
            OperationRequest::RequestPunchUpload { .. } => "request_punch_upload",
        }
    }

    /// Validates the request for `device` and plans it. Partial user changes are merged
    /// with what the directory knows, so the device always receives a whole record.
    pub fn plan(&self, device: &Device, users: &UserDirectory, now_unix: i64) -> Result<Plan, FieldError> {
        let known = |user_id: &str| {
            users
                .get(&device.id, user_id)
                .map_err(|e| FieldError::new("user_id", format!("the user directory failed: {e}")))
        };
        let partial = |user_id: &str| User {
            user_id: user_id.to_string(),
            first_name: None,
            last_name: None,
            role: None,
            enabled: None,
            valid_from: None,
            valid_until: None,
            templates: Vec::new(),
            photo: None,
        };
        let upsert = |change: User| -> Result<Plan, FieldError> {
            let merged = merge_user(known(&change.user_id)?.as_ref(), &change);
            Ok(Plan::Command(CommandBody::UpsertUser(merged)))
        };
        Ok(match self {
            OperationRequest::AddUser { user } | OperationRequest::UpdateUser { user } => {
                upsert(user_record(user, device.utc_offset_minutes)?)?
            }
            OperationRequest::AddUserPhoto { user_id, photo } => {
                check_user_id("user_id", user_id)?;
                let mut change = partial(user_id);
                change.photo = Some(decode_photo("photo", photo)?);
                upsert(change)?
            }
            OperationRequest::DeleteUser { user_id } => {
                check_user_id("user_id", user_id)?;
                Plan::Command(CommandBody::DeleteUser(user_id.clone()))
            }
            OperationRequest::DeleteAllUsers => Plan::Command(CommandBody::DeleteAllUsers),
            OperationRequest::BlockUser { user_id } | OperationRequest::UnblockUser { user_id } => {
                check_user_id("user_id", user_id)?;
                let enabled = matches!(self, OperationRequest::UnblockUser { .. });
                Plan::Command(CommandBody::SetUserEnabled((user_id.clone(), enabled)))
            }
            OperationRequest::MoveUser { user_id, to_device } => {
                check_user_id("user_id", user_id)?;
                check_target("to_device", to_device, device)?;
                let user = known(user_id)?.ok_or_else(|| unknown_user(user_id, device))?;
                Plan::Spread { user, targets: vec![to_device.clone()], delete_from_source: true }
            }
            OperationRequest::CopyUser { user_id, to_devices } => {
                check_user_id("user_id", user_id)?;
                if to_devices.is_empty() {
                    return Err(FieldError::new("to_devices", "name at least one device"));
                }
                for (i, target) in to_devices.iter().enumerate() {
                    check_target(&format!("to_devices[{i}]"), target, device)?;
                }
                let user = known(user_id)?.ok_or_else(|| unknown_user(user_id, device))?;
                Plan::Spread { user, targets: to_devices.clone(), delete_from_source: false }
            }
            OperationRequest::SetAccessWindow { user_id, valid_from, valid_until } => {
                check_user_id("user_id", user_id)?;
                let from = time("valid_from", valid_from, device.utc_offset_minutes)?;
                let until = time("valid_until", valid_until, device.utc_offset_minutes)?;
                if until.unix_seconds <= from.unix_seconds {
                    return Err(FieldError::new("valid_until", "must be after valid_from"));
                }
                let mut change = partial(user_id);
                change.valid_from = Some(from);
                change.valid_until = Some(until);
                upsert(change)?
            }
            OperationRequest::SetUserRole { user_id, role } => {
                check_user_id("user_id", user_id)?;
                let mut change = partial(user_id);
                change.role = Some((*role).into());
                upsert(change)?
            }
            OperationRequest::DeleteCredential { user_id, kind, index } => {
                check_user_id("user_id", user_id)?;
                check_index("index", *index)?;
                Plan::Command(CommandBody::DeleteTemplate(DeleteTemplateArgs {
                    user_id: user_id.clone(),
                    kind: (*kind).into(),
                    index: *index,
                }))
            }
            OperationRequest::ResendPunchLog { span } => {
                let range = span_range("span", span, device.utc_offset_minutes)?;
                Plan::ResendPunches { from: range.start.unix_seconds, to: range.end.unix_seconds }
            }
            OperationRequest::DeletePunchLog => Plan::Command(CommandBody::ClearPunches),
            OperationRequest::DeletePunchPhotos => Plan::Command(CommandBody::ClearPhotos),
            OperationRequest::LoadDeviceInfo => Plan::Command(CommandBody::GetDeviceInfo),
            OperationRequest::LoadUserInfo { user_id } => {
                if let Some(id) = user_id {
                    check_user_id("user_id", id)?;
                }
                Plan::ReadUsers { user_id: user_id.clone() }
            }
            OperationRequest::ResendUsers => Plan::Command(CommandBody::GetUserInfo(None)),
            OperationRequest::Reboot => Plan::Command(CommandBody::Reboot),
            OperationRequest::SyncTime { time: at } => {
                let at = match at {
                    Some(text) => time("time", text, device.utc_offset_minutes)?,
                    None => DeviceTime { unix_seconds: now_unix, utc_offset_minutes: device.utc_offset_minutes },
                };
                Plan::Command(CommandBody::SetTime(at))
            }
            OperationRequest::SetOption { key, value } => {
                if key.is_empty()
                    || key.len() > 64
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                {
                    return Err(FieldError::new("key", "1 to 64 characters: letters, digits, '_', '.', '-'"));
                }
                if value.len() > 256 || value.contains(['\n', '\r', '\t']) {
                    return Err(FieldError::new("value", "at most 256 characters, no tabs or line breaks"));
                }
                Plan::Command(CommandBody::SetOption((key.clone(), value.clone())))
            }
            OperationRequest::ClearAllData => Plan::Command(CommandBody::ClearAllData),
            OperationRequest::UnlockDoor => Plan::Command(CommandBody::UnlockDoor),
            OperationRequest::StartEnrollment { user_id, kind, index } => {
                check_user_id("user_id", user_id)?;
                check_index("index", *index)?;
                Plan::Command(CommandBody::StartEnrollment(StartEnrollmentArgs {
                    user_id: user_id.clone(),
                    kind: (*kind).into(),
                    index: *index,
                }))
            }
            OperationRequest::RequestPunchUpload { span } => {
                Plan::Command(CommandBody::UploadPunches(span_range("span", span, device.utc_offset_minutes)?))
            }
        })
    }
}

fn unknown_user(user_id: &str, device: &Device) -> FieldError {
    FieldError::new(
        "user_id",
        format!(
            "the gateway knows no user {user_id:?} on device {:?} (add it through biogate, or ask the device with resend_users first)",
            device.id
        ),
    )
}

fn check_target(field: &str, target: &str, source: &Device) -> Result<(), FieldError> {
    if !valid_device_id(target) {
        return Err(FieldError::new(field, format!("{target:?} is not a valid device id")));
    }
    if target == source.id {
        return Err(FieldError::new(field, "must be another device than the source"));
    }
    Ok(())
}

fn check_index(field: &str, index: Option<u32>) -> Result<(), FieldError> {
    match index {
        Some(i) if i > 99 => Err(FieldError::new(field, "must be between 0 and 99")),
        _ => Ok(()),
    }
}

fn time(field: &str, text: &str, offset: i32) -> Result<DeviceTime, FieldError> {
    parse_cams_time_with_default(text, offset).map_err(|e| FieldError::new(field, format!("{text:?}: {e}")))
}

/// Parses a span; the end must not be before the start.
pub fn span_range(field: &str, span: &TimeSpan, offset: i32) -> Result<TimeRange, FieldError> {
    let start = time(&format!("{field}.start_time"), &span.start_time, offset)?;
    let end = time(&format!("{field}.end_time"), &span.end_time, offset)?;
    if end.unix_seconds < start.unix_seconds {
        return Err(FieldError::new(format!("{field}.end_time"), "must not be before start_time"));
    }
    Ok(TimeRange { start, end })
}

fn decode_photo(field: &str, b64: &str) -> Result<Vec<u8>, FieldError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| FieldError::new(field, format!("not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(FieldError::new(field, "the photo is empty"));
    }
    Ok(bytes)
}

fn user_record(spec: &UserSpec, offset: i32) -> Result<User, FieldError> {
    check_user_id("user.user_id", &spec.user_id)?;
    for (field, value) in [("user.first_name", &spec.first_name), ("user.last_name", &spec.last_name)] {
        if value.as_ref().is_some_and(|v| v.len() > 64 || v.chars().any(char::is_control)) {
            return Err(FieldError::new(field, "at most 64 printable characters"));
        }
    }
    let valid_from = spec.valid_from.as_deref().map(|t| time("user.valid_from", t, offset)).transpose()?;
    let valid_until = spec.valid_until.as_deref().map(|t| time("user.valid_until", t, offset)).transpose()?;
    if let (Some(from), Some(until)) = (valid_from, valid_until)
        && until.unix_seconds <= from.unix_seconds
    {
        return Err(FieldError::new("user.valid_until", "must be after valid_from"));
    }
    let mut templates = Vec::with_capacity(spec.credentials.len());
    for (i, c) in spec.credentials.iter().enumerate() {
        let field = format!("user.credentials[{i}]");
        check_index(&format!("{field}.index"), c.index)?;
        let data = c.data.trim();
        match c.kind {
            CredentialKind::Card => {
                if data.is_empty() || data.len() > 32 || !data.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(FieldError::new(format!("{field}.data"), "a card number: 1 to 32 letters or digits"));
                }
            }
            CredentialKind::Password => {
                if data.is_empty() || data.len() > 32 || data.chars().any(char::is_control) {
                    return Err(FieldError::new(format!("{field}.data"), "a password: 1 to 32 printable characters"));
                }
            }
            _ => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| {
                    FieldError::new(format!("{field}.data"), format!("a biometric template must be base64: {e}"))
                })?;
                if bytes.is_empty() {
                    return Err(FieldError::new(format!("{field}.data"), "the template is empty"));
                }
            }
        }
        if spec.credentials[..i].iter().any(|o| o.kind == c.kind && o.index == c.index) {
            return Err(FieldError::new(format!("{field}.index"), "another credential has the same kind and index"));
        }
        templates.push(Template { kind: c.kind.into(), index: c.index, data: data.to_string() });
    }
    Ok(User {
        user_id: spec.user_id.clone(),
        first_name: spec.first_name.clone(),
        last_name: spec.last_name.clone(),
        role: spec.role.map(Into::into),
        enabled: spec.enabled,
        valid_from,
        valid_until,
        templates,
        photo: spec.photo.as_deref().map(|p| decode_photo("user.photo", p)).transpose()?,
    })
}
