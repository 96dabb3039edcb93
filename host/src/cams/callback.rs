//! Callback bodies: events rendered in the Cams v3 `RealTime` form, the seed's flat form or
//! the legacy Cams v2 form,
//! and the Cams time format (`YYYY-MM-DD HH:MM:SS GMT +HHMM`) both ways.
//!
//! Bodies are built from `Serialize` structs in field order, so their bytes are stable
//! (they are what the Standard Webhooks signature covers). The send time is a parameter,
//! so a body is a pure function of its inputs.
//!
//! Cams v3 forms (every `RealTime` carries `OperationID` = the event id, which is also the
//! `webhook-id`, then `AuthToken`, `Time` = send time in `GMT +0000`, `LabelName` when the
//! device has a label, and `SerialNumber` = the device id):
//! - punch: `{"RealTime":{"OperationID","PunchLog":{"Type","Temperature"?,"FaceMask"?,
//!   "InputType","UserId","LogTime","WorkCode"?},...}}`. `Temperature` is a string with one
//!   decimal, only when present and finite; `WorkCode` (a biogate addition) only when
//!   present; the punch photo is not sent. An unknown input type is sent as `"Unknown"`.
//! - user enrolled/changed: `{"RealTime":{"UserUpdated":{"OperationTime","UserID",
//!   "FirstName"?,"LastName"?,"UserType"?,"Template":[{"Type","UserID","Size","Index"?,
//!   "Data"}],"Photo"?:{"Type":"Base64","UserID","Size","Data"}},"OperationID",...}}`;
//!   `Size` is the length of `Data`. Enabled flag and validity window are not sent.
//! - device status (biogate's own form; Cams documents none):
//!   `{"RealTime":{"DeviceStatus":{"Online","OperationTime","Info":{..}},"OperationID",...}}`.
//! - command result (biogate's own form): `{"RealTime":{"CommandResult":{"OperationID" =
//!   the command's operation,"ReturnCode","OperationTime","Details":{..}},"OperationID",...}}`.
//!   `OperationTime` of these two is when the gateway stored the event, in `GMT +0000`;
//!   `Info`/`Details` keep the device's key order.
//!
//! Flat form (punches only): `{"DeviceSN","EmployeeCode","AttendanceLog" (device-local
//! `YYYY-MM-DD HH:MM:SS`),"Type" (lower-case input type: fingerprint, face, palm,
//! finger-vein, iris, retina, card, password, unknown),"Direction" (the punch type)}`.
//!
//! Cams v2 form (punches only), for legacy receivers: an `application/x-www-form-urlencoded`
//! body with one field, `request_data`, holding `{"ApiRequestInfo":{"AuthToken",
//! "Operation":"RealTimePunchLog","UserId","OperationTime","OperationTimeEx",
//! "OperationReferenceId","OperationData":{"AttendanceType","InputType","Temperature"?,
//! "FaceMask"?}},"ServiceTagId"}` (for a device with a key, the encrypted text of that JSON).
//! Where the fields come from: the Cams sample PHP receiver (copies are public, e.g.
//! isas-kiran/faculty_login `isas_pune_biometric-bkp-7-1-20.php`) reads
//! `$_POST["request_data"]` and documents `AuthToken`, `Operation`, `UserId`,
//! `OperationTime` (Unix seconds as a string, `"1556637142"`, which it passes to `date()`),
//! `OperationReferenceId`, `OperationData.{AttendanceType,InputType}` and `ServiceTagId`; a
//! public TypeScript mock of the Cams API 2.0 adds `OperationData.{Temperature,FaceMask}`
//! and names the meal punches `MealStart`/`MealEnd`; a public Laravel receiver reads
//! `OperationTimeEx` as the device's wall time `YYYY-MM-DD HH:MM:SS GMT -0600`. So
//! `OperationTime` is the punch instant in Unix seconds, `OperationTimeEx` the same time in
//! the Cams time format with the device's offset, `OperationReferenceId` the event id (the
//! `webhook-id`), `AttendanceType` the punch type (meal punches as `MealStart`/`MealEnd`)
//! and `InputType` the v3 input type name.
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize, Serializer};

use super::names::{input_type_name, punch_type_name, template_kind_name};
use crate::plugin::bindings::types::{
    CommandResult, DeviceStatus, DeviceTime, Event, EventBody, InputType, Punch, PunchType, Template, UserRole,
    UserUpdate,
};
use crate::time::{format_cams_time, format_wall_time};

/// Callback body formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackFormat {
    /// The Cams v3 `RealTime` form.
    #[default]
    CamsV3,
    /// The seed's flat form (`DeviceSN`, `EmployeeCode`, `AttendanceLog`, `Type`, `Direction`).
    Flat,
    /// The legacy Cams v2 form: a form field `request_data` with `ApiRequestInfo` (punches only).
    CamsV2,
}

impl CallbackFormat {
    /// The `Content-Type` of the body on the wire.
    pub fn content_type(self) -> &'static str {
        match self {
            CallbackFormat::CamsV3 | CallbackFormat::Flat => "application/json",
            CallbackFormat::CamsV2 => "application/x-www-form-urlencoded",
        }
    }

    /// The bytes on the wire for `payload` (the body of [`callback_body`], encrypted when the
    /// device has a key): as is, or for the v2 form `request_data=<payload>` form-encoded.
    pub fn wire_body(self, payload: Vec<u8>) -> Vec<u8> {
        match self {
            CallbackFormat::CamsV3 | CallbackFormat::Flat => payload,
            CallbackFormat::CamsV2 => form_urlencoded::Serializer::new(String::new())
                .append_pair("request_data", &String::from_utf8_lossy(&payload))
                .finish()
                .into_bytes(),
        }
    }
}

/// What a callback body says about the device besides the event.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackDevice {
    /// The device id (Cams `stgid`), sent as `SerialNumber` / `DeviceSN`.
    pub device_id: String,
    /// The operator's label (`LabelName`), if any.
    pub label: Option<String>,
    /// The device's AuthToken, which Cams receivers check. `Debug` redacts it.
    pub auth_token: String,
}

impl fmt::Debug for CallbackDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackDevice")
            .field("device_id", &self.device_id)
            .field("label", &self.label)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// The body of one callback for `event` in `format`, with `sent_at_unix` as the send time.
/// `None` when the format cannot express the event (the flat form only has punches).
pub fn callback_body(
    format: CallbackFormat,
    event: &Event,
    device: &CallbackDevice,
    sent_at_unix: i64,
) -> Option<Vec<u8>> {
    match (format, &event.body) {
        (CallbackFormat::CamsV3, EventBody::Punch(p)) => Some(realtime_punch(event, p, device, sent_at_unix)),
        (CallbackFormat::CamsV3, EventBody::UserUpdate(u)) => {
            Some(realtime_user_updated(event, u, device, sent_at_unix))
        }
        (CallbackFormat::CamsV3, EventBody::DeviceStatus(s)) => {
            Some(realtime_device_status(event, s, device, sent_at_unix))
        }
        (CallbackFormat::CamsV3, EventBody::CommandResult(r)) => {
            Some(realtime_command_result(event, r, device, sent_at_unix))
        }
        (CallbackFormat::Flat, EventBody::Punch(p)) => Some(flat_punch(p, device)),
        (CallbackFormat::CamsV2, EventBody::Punch(p)) => Some(v2_punch(event, p, device)),
        (CallbackFormat::Flat | CallbackFormat::CamsV2, _) => None,
    }
}

/// The Cams v3 real-time punch body.
pub fn realtime_punch(event: &Event, punch: &Punch, device: &CallbackDevice, sent_at_unix: i64) -> Vec<u8> {
    to_json(&RealTime {
        real_time: PunchRealTime {
            operation_id: &event.id,
            punch_log: PunchLog {
                kind: punch_type_name(punch.punch_type),
                temperature: punch.temperature.filter(|t| t.is_finite()).map(|t| format!("{t:.1}")),
                face_mask: punch.face_mask,
                input_type: input_type_name(punch.input_type),
                user_id: &punch.user_id,
                log_time: format_cams_time(punch.log_time),
                work_code: punch.work_code.as_deref(),
            },
            trailer: Trailer::new(device, sent_at_unix),
        },
    })
}

/// The Cams v3 `UserUpdated` body for a user enrolled or changed on the device.
pub fn realtime_user_updated(
    event: &Event,
    update: &UserUpdate,
    device: &CallbackDevice,
    sent_at_unix: i64,
) -> Vec<u8> {
    let user = &update.user;
    to_json(&RealTime {
        real_time: UserUpdatedRealTime {
            user_updated: UserUpdated {
                operation_time: format_cams_time(update.operation_time),
                user_id: &user.user_id,
                first_name: user.first_name.as_deref(),
                last_name: user.last_name.as_deref(),
                user_type: user.role.map(|role| match role {
                    UserRole::User => "User",
                    UserRole::Admin => "Admin",
                }),
                template: user.templates.iter().map(|t| TemplateOut::new(&user.user_id, t)).collect(),
                photo: user.photo.as_deref().map(|jpeg| PhotoOut::new(&user.user_id, jpeg)),
            },
            operation_id: &event.id,
            trailer: Trailer::new(device, sent_at_unix),
        },
    })
}

/// biogate's `DeviceStatus` body (online/offline and device facts).
pub fn realtime_device_status(
    event: &Event,
    status: &DeviceStatus,
    device: &CallbackDevice,
    sent_at_unix: i64,
) -> Vec<u8> {
    to_json(&RealTime {
        real_time: DeviceStatusRealTime {
            device_status: DeviceStatusOut {
                online: status.online,
                operation_time: received_at(event),
                info: Pairs(&status.info),
            },
            operation_id: &event.id,
            trailer: Trailer::new(device, sent_at_unix),
        },
    })
}

/// biogate's `CommandResult` body (the device's answer to a command).
pub fn realtime_command_result(
    event: &Event,
    result: &CommandResult,
    device: &CallbackDevice,
    sent_at_unix: i64,
) -> Vec<u8> {
    to_json(&RealTime {
        real_time: CommandResultRealTime {
            command_result: CommandResultOut {
                operation_id: &result.operation_id,
                return_code: result.return_code,
                operation_time: received_at(event),
                details: Pairs(&result.details),
            },
            operation_id: &event.id,
            trailer: Trailer::new(device, sent_at_unix),
        },
    })
}

/// The seed's flat punch body.
pub fn flat_punch(punch: &Punch, device: &CallbackDevice) -> Vec<u8> {
    to_json(&Flat {
        device_sn: &device.device_id,
        employee_code: &punch.user_id,
        attendance_log: format_wall_time(punch.log_time),
        kind: flat_input_type_name(punch.input_type),
        direction: punch_type_name(punch.punch_type),
    })
}

/// The Cams v2 `request_data` JSON of a punch (before form encoding).
pub fn v2_punch(event: &Event, punch: &Punch, device: &CallbackDevice) -> Vec<u8> {
    to_json(&V2Request {
        api_request_info: V2Info {
            auth_token: &device.auth_token,
            operation: "RealTimePunchLog",
            user_id: &punch.user_id,
            operation_time: punch.log_time.unix_seconds.to_string(),
            operation_time_ex: format_cams_time(punch.log_time),
            operation_reference_id: &event.id,
            operation_data: V2PunchData {
                attendance_type: match punch.punch_type {
                    PunchType::MealIn => "MealStart",
                    PunchType::MealOut => "MealEnd",
                    other => punch_type_name(other),
                },
                input_type: input_type_name(punch.input_type),
                temperature: punch.temperature.filter(|t| t.is_finite()).map(|t| format!("{t:.1}")),
                face_mask: punch.face_mask,
            },
        },
        service_tag_id: &device.device_id,
    })
}

fn flat_input_type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::Fingerprint => "fingerprint",
        InputType::Face => "face",
        InputType::Palm => "palm",
        InputType::FingerVein => "finger-vein",
        InputType::Iris => "iris",
        InputType::Retina => "retina",
        InputType::Card => "card",
        InputType::Password => "password",
        InputType::Unknown => "unknown",
    }
}

fn received_at(event: &Event) -> String {
    let secs = i64::try_from(event.received_at_ms / 1000).unwrap_or(i64::MAX);
    format_cams_time(DeviceTime { unix_seconds: secs, utc_offset_minutes: 0 })
}

// ---------------------------------------------------------------------------------------
// Wire structs (field order is output order)

fn to_json(body: &impl Serialize) -> Vec<u8> {
    // Invariant, not input: these structs hold only strings, bools, integers and
    // string-keyed maps, which serde_json always serializes.
    serde_json::to_vec(body).expect("callback bodies always serialize")
}

#[derive(Serialize)]
struct RealTime<T> {
    #[serde(rename = "RealTime")]
    real_time: T,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Trailer<'a> {
    auth_token: &'a str,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_name: Option<&'a str>,
    serial_number: &'a str,
}

impl<'a> Trailer<'a> {
    fn new(device: &'a CallbackDevice, sent_at_unix: i64) -> Self {
        Trailer {
            auth_token: &device.auth_token,
            time: format_cams_time(DeviceTime { unix_seconds: sent_at_unix, utc_offset_minutes: 0 }),
            label_name: device.label.as_deref(),
            serial_number: &device.device_id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PunchRealTime<'a> {
    #[serde(rename = "OperationID")]
    operation_id: &'a str,
    punch_log: PunchLog<'a>,
    #[serde(flatten)]
    trailer: Trailer<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PunchLog<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_mask: Option<bool>,
    input_type: &'static str,
    user_id: &'a str,
    log_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_code: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UserUpdatedRealTime<'a> {
    user_updated: UserUpdated<'a>,
    #[serde(rename = "OperationID")]
    operation_id: &'a str,
    #[serde(flatten)]
    trailer: Trailer<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UserUpdated<'a> {
    operation_time: String,
    #[serde(rename = "UserID")]
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<&'static str>,
    template: Vec<TemplateOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo: Option<PhotoOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TemplateOut<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "UserID")]
    user_id: &'a str,
    size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    data: &'a str,
}

impl<'a> TemplateOut<'a> {
    fn new(user_id: &'a str, template: &'a Template) -> Self {
        TemplateOut {
            kind: template_kind_name(template.kind),
            user_id,
            size: template.data.len().to_string(),
            index: template.index.map(|i| i.to_string()),
            data: &template.data,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PhotoOut<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "UserID")]
    user_id: &'a str,
    size: String,
    data: String,
}

impl<'a> PhotoOut<'a> {
    fn new(user_id: &'a str, jpeg: &[u8]) -> Self {
        let data = STANDARD.encode(jpeg);
        PhotoOut { kind: "Base64", user_id, size: data.len().to_string(), data }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeviceStatusRealTime<'a> {
    device_status: DeviceStatusOut<'a>,
    #[serde(rename = "OperationID")]
    operation_id: &'a str,
    #[serde(flatten)]
    trailer: Trailer<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeviceStatusOut<'a> {
    online: bool,
    operation_time: String,
    info: Pairs<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CommandResultRealTime<'a> {
    command_result: CommandResultOut<'a>,
    #[serde(rename = "OperationID")]
    operation_id: &'a str,
    #[serde(flatten)]
    trailer: Trailer<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CommandResultOut<'a> {
    #[serde(rename = "OperationID")]
    operation_id: &'a str,
    return_code: i32,
    operation_time: String,
    details: Pairs<'a>,
}

#[derive(Serialize)]
struct Flat<'a> {
    #[serde(rename = "DeviceSN")]
    device_sn: &'a str,
    #[serde(rename = "EmployeeCode")]
    employee_code: &'a str,
    #[serde(rename = "AttendanceLog")]
    attendance_log: String,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Direction")]
    direction: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct V2Request<'a> {
    api_request_info: V2Info<'a>,
    service_tag_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct V2Info<'a> {
    auth_token: &'a str,
    operation: &'static str,
    user_id: &'a str,
    operation_time: String,
    operation_time_ex: String,
    operation_reference_id: &'a str,
    operation_data: V2PunchData,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct V2PunchData {
    attendance_type: &'static str,
    input_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_mask: Option<bool>,
}

/// Key/value pairs as a JSON object, in their given order.
struct Pairs<'a>(&'a [(String, String)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::types::{PunchType, TemplateKind, User};

    /// 2020-09-17 07:48:22 at +05:30 (Python: datetime(..., tzinfo=+05:30).timestamp()).
    const LOG_UNIX: i64 = 1_600_309_102;
    /// 2020-09-17 04:19:03 UTC.
    const SENT_UNIX: i64 = 1_600_316_343;
    const IST: i32 = 330;

    fn device(label: Option<&str>) -> CallbackDevice {
        CallbackDevice {
            device_id: "SN7A2300583".into(),
            label: label.map(Into::into),
            auth_token: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn event(body: EventBody) -> Event {
        Event {
            id: "9nu1wak5616p".into(),
            device_id: "SN7A2300583".into(),
            sequence: 7,
            received_at_ms: 1_600_316_340_250,
            body,
        }
    }

    fn punch() -> Punch {
        Punch {
            user_id: "2".into(),
            log_time: DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: IST },
            punch_type: PunchType::CheckOut,
            input_type: InputType::Fingerprint,
            temperature: Some(36.8),
            face_mask: Some(false),
            work_code: None,
            photo: Some(vec![0xff, 0xd8]),
        }
    }

    fn text(bytes: Option<Vec<u8>>) -> String {
        String::from_utf8(bytes.expect("a body")).expect("UTF-8")
    }

    #[test]
    fn realtime_punch_is_the_cams_v3_form() {
        let body = text(callback_body(
            CallbackFormat::CamsV3,
            &event(EventBody::Punch(punch())),
            &device(Some("Main Gate")),
            SENT_UNIX,
        ));
        assert_eq!(
            body,
            r#"{"RealTime":{"OperationID":"9nu1wak5616p","PunchLog":{"Type":"CheckOut","Temperature":"36.8","FaceMask":false,"InputType":"Fingerprint","UserId":"2","LogTime":"2020-09-17 07:48:22 GMT +0530"},"AuthToken":"0123456789abcdef0123456789abcdef","Time":"2020-09-17 04:19:03 GMT +0000","LabelName":"Main Gate","SerialNumber":"SN7A2300583"}}"#
        );
    }

    #[test]
    fn realtime_punch_omits_what_is_absent() {
        let mut p = punch();
        p.temperature = None;
        p.face_mask = None;
        p.punch_type = PunchType::OverTimeIn;
        p.input_type = InputType::FingerVein;
        p.work_code = Some("17".into());
        let body = String::from_utf8(realtime_punch(&event(EventBody::Punch(p.clone())), &p, &device(None), SENT_UNIX))
            .unwrap();
        assert_eq!(
            body,
            r#"{"RealTime":{"OperationID":"9nu1wak5616p","PunchLog":{"Type":"OverTimeIn","InputType":"Finger Vein","UserId":"2","LogTime":"2020-09-17 07:48:22 GMT +0530","WorkCode":"17"},"AuthToken":"0123456789abcdef0123456789abcdef","Time":"2020-09-17 04:19:03 GMT +0000","SerialNumber":"SN7A2300583"}}"#
        );
        p.input_type = InputType::Unknown;
        p.temperature = Some(f32::NAN);
        let body = String::from_utf8(realtime_punch(&event(EventBody::Punch(p.clone())), &p, &device(None), SENT_UNIX))
            .unwrap();
        assert!(body.contains(r#""PunchLog":{"Type":"OverTimeIn","InputType":"Unknown","#), "{body}");
    }

    #[test]
    fn temperature_has_one_decimal() {
        for (t, shown) in [(36.8f32, "36.8"), (37.0, "37.0"), (36.75, "36.8"), (-1.25, "-1.2")] {
            let mut p = punch();
            p.temperature = Some(t);
            let body =
                String::from_utf8(realtime_punch(&event(EventBody::Punch(p.clone())), &p, &device(None), SENT_UNIX))
                    .unwrap();
            assert!(body.contains(&format!(r#""Temperature":"{shown}""#)), "{t}: {body}");
        }
    }

    #[test]
    fn user_updated_is_the_cams_v3_form() {
        let update = UserUpdate {
            user: User {
                user_id: "2".into(),
                first_name: Some("Manu".into()),
                last_name: Some("Mona".into()),
                role: Some(UserRole::Admin),
                enabled: Some(true),
                valid_from: None,
                valid_until: None,
                templates: vec![
                    Template { kind: TemplateKind::Fingerprint, index: Some(6), data: "TVNTUzIxAAAD".into() },
                    Template { kind: TemplateKind::Card, index: None, data: "12345678".into() },
                ],
                photo: Some(vec![0xff, 0xd8, 0xff]),
            },
            operation_time: DeviceTime { unix_seconds: LOG_UNIX, utc_offset_minutes: IST },
        };
        let body = text(callback_body(
            CallbackFormat::CamsV3,
            &event(EventBody::UserUpdate(update.clone())),
            &device(None),
            SENT_UNIX,
        ));
        assert_eq!(
            body,
            r#"{"RealTime":{"UserUpdated":{"OperationTime":"2020-09-17 07:48:22 GMT +0530","UserID":"2","FirstName":"Manu","LastName":"Mona","UserType":"Admin","Template":[{"Type":"Fingerprint","UserID":"2","Size":"12","Index":"6","Data":"TVNTUzIxAAAD"},{"Type":"Card","UserID":"2","Size":"8","Data":"12345678"}],"Photo":{"Type":"Base64","UserID":"2","Size":"4","Data":"/9j/"}},"OperationID":"9nu1wak5616p","AuthToken":"0123456789abcdef0123456789abcdef","Time":"2020-09-17 04:19:03 GMT +0000","SerialNumber":"SN7A2300583"}}"#
        );

        let mut bare = update;
        bare.user.first_name = None;
        bare.user.last_name = None;
        bare.user.role = Some(UserRole::User);
        bare.user.templates.clear();
        bare.user.photo = None;
        let body =
            text(callback_body(CallbackFormat::CamsV3, &event(EventBody::UserUpdate(bare)), &device(None), SENT_UNIX));
        assert!(
            body.starts_with(r#"{"RealTime":{"UserUpdated":{"OperationTime":"2020-09-17 07:48:22 GMT +0530","UserID":"2","UserType":"User","Template":[]},"OperationID""#),
            "{body}"
        );
    }

    #[test]
    fn device_status_form() {
        let status = DeviceStatus {
            online: true,
            info: vec![("firmware".into(), "Ver 8.0.4.2".into()), ("ip".into(), "10.0.0.7".into())],
        };
        let body = text(callback_body(
            CallbackFormat::CamsV3,
            &event(EventBody::DeviceStatus(status)),
            &device(Some("Main Gate")),
            SENT_UNIX,
        ));
        assert_eq!(
            body,
            r#"{"RealTime":{"DeviceStatus":{"Online":true,"OperationTime":"2020-09-17 04:19:00 GMT +0000","Info":{"firmware":"Ver 8.0.4.2","ip":"10.0.0.7"}},"OperationID":"9nu1wak5616p","AuthToken":"0123456789abcdef0123456789abcdef","Time":"2020-09-17 04:19:03 GMT +0000","LabelName":"Main Gate","SerialNumber":"SN7A2300583"}}"#
        );
    }

    #[test]
    fn command_result_form() {
        let result = CommandResult { operation_id: "op12345abcde".into(), return_code: -10, details: vec![] };
        let body = text(callback_body(
            CallbackFormat::CamsV3,
            &event(EventBody::CommandResult(result)),
            &device(None),
            SENT_UNIX,
        ));
        assert_eq!(
            body,
            r#"{"RealTime":{"CommandResult":{"OperationID":"op12345abcde","ReturnCode":-10,"OperationTime":"2020-09-17 04:19:00 GMT +0000","Details":{}},"OperationID":"9nu1wak5616p","AuthToken":"0123456789abcdef0123456789abcdef","Time":"2020-09-17 04:19:03 GMT +0000","SerialNumber":"SN7A2300583"}}"#
        );
    }

    #[test]
    fn flat_form_is_the_seed_example() {
        let mut p = punch();
        p.user_id = "1042".into();
        p.punch_type = PunchType::CheckIn;
        p.input_type = InputType::Face;
        // 2026-06-21 09:02:14 at -03:00.
        p.log_time = DeviceTime { unix_seconds: 1_782_043_334, utc_offset_minutes: -180 };
        let body = text(callback_body(
            CallbackFormat::Flat,
            &event(EventBody::Punch(p)),
            &device(Some("Main Gate")),
            SENT_UNIX,
        ));
        assert_eq!(
            body,
            r#"{"DeviceSN":"SN7A2300583","EmployeeCode":"1042","AttendanceLog":"2026-06-21 09:02:14","Type":"face","Direction":"CheckIn"}"#
        );
    }

    #[test]
    fn cams_v2_form_is_request_data_with_api_request_info() {
        let mut p = punch();
        p.punch_type = PunchType::MealIn;
        let json = text(callback_body(CallbackFormat::CamsV2, &event(EventBody::Punch(p)), &device(None), SENT_UNIX));
        assert_eq!(
            json,
            r#"{"ApiRequestInfo":{"AuthToken":"0123456789abcdef0123456789abcdef","Operation":"RealTimePunchLog","UserId":"2","OperationTime":"1600309102","OperationTimeEx":"2020-09-17 07:48:22 GMT +0530","OperationReferenceId":"9nu1wak5616p","OperationData":{"AttendanceType":"MealStart","InputType":"Fingerprint","Temperature":"36.8","FaceMask":false}},"ServiceTagId":"SN7A2300583"}"#
        );
        let wire = String::from_utf8(CallbackFormat::CamsV2.wire_body(json.clone().into_bytes())).unwrap();
        assert!(wire.starts_with("request_data=%7B%22ApiRequestInfo%22"), "{wire}");
        assert!(!wire.contains(['{', '"', ' ', '&']), "form-encoded: {wire}");
        assert_eq!(CallbackFormat::CamsV2.content_type(), "application/x-www-form-urlencoded");
        assert_eq!(CallbackFormat::CamsV3.wire_body(json.clone().into_bytes()), json.into_bytes());
        let status = DeviceStatus { online: true, info: vec![] };
        assert_eq!(
            callback_body(CallbackFormat::CamsV2, &event(EventBody::DeviceStatus(status)), &device(None), SENT_UNIX),
            None
        );
    }

    #[test]
    fn flat_form_has_only_punches() {
        let status = DeviceStatus { online: false, info: vec![] };
        assert_eq!(
            callback_body(CallbackFormat::Flat, &event(EventBody::DeviceStatus(status)), &device(None), SENT_UNIX),
            None
        );
        let result = CommandResult { operation_id: "x".into(), return_code: 0, details: vec![] };
        assert_eq!(
            callback_body(CallbackFormat::Flat, &event(EventBody::CommandResult(result)), &device(None), SENT_UNIX),
            None
        );
    }

    #[test]
    fn every_name_is_mapped() {
        let types = [
            (PunchType::CheckIn, "CheckIn"),
            (PunchType::CheckOut, "CheckOut"),
            (PunchType::BreakIn, "BreakIn"),
            (PunchType::BreakOut, "BreakOut"),
            (PunchType::OverTimeIn, "OverTimeIn"),
            (PunchType::OverTimeOut, "OverTimeOut"),
            (PunchType::MealIn, "MealIn"),
            (PunchType::MealOut, "MealOut"),
        ];
        for (kind, name) in types {
            assert_eq!(punch_type_name(kind), name);
        }
        let inputs = [
            (InputType::Fingerprint, "Fingerprint", "fingerprint"),
            (InputType::Face, "Face", "face"),
            (InputType::Palm, "Palm", "palm"),
            (InputType::FingerVein, "Finger Vein", "finger-vein"),
            (InputType::Iris, "Iris", "iris"),
            (InputType::Retina, "Retina", "retina"),
            (InputType::Card, "Card", "card"),
            (InputType::Password, "Password", "password"),
            (InputType::Unknown, "Unknown", "unknown"),
        ];
        for (kind, cams, flat) in inputs {
            assert_eq!(input_type_name(kind), cams);
            assert_eq!(flat_input_type_name(kind), flat);
        }
    }

    #[test]
    fn debug_redacts_the_auth_token() {
        let shown = format!("{:?}", device(Some("Main Gate")));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("SN7A2300583"));
    }
}
