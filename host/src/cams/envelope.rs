//! The Cams v3 request envelope: `{"<Verb>":{"<Object>":<data>},"OperationID","AuthToken",
//! "Time"}` parsed into a catalogue [`OperationRequest`] (or a LoadLog query), with
//! errors naming the field by its path in the envelope (`Add.User.UserID`). Cams' own
//! verbs are `Add`, `Delete`, `Load`, `Resend`; biogate adds `Update`, `Block`, `Unblock`,
//! `Move`, `Copy`, `Set`, `Control` and `Enroll` for operations Cams sells without a
//! published shape (docs/operations.md).
use serde_json::{Map, Value};

use crate::field::FieldError;
use crate::operations::catalogue::{CredentialKind, CredentialSpec, OperationRequest, Role, TimeSpan, UserSpec};

/// A parsed Cams call.
#[derive(Debug, Clone, PartialEq)]
pub struct CamsCall {
    /// `OperationID`, when the client sent one.
    pub operation_id: Option<String>,
    /// `AuthToken` from the body.
    pub auth_token: Option<String>,
    pub action: CamsAction,
}

/// What the call asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum CamsAction {
    /// A catalogue operation.
    Operation(OperationRequest),
    /// `Load.PunchLog`: answered from the journal.
    LoadPunchLog { span: TimeSpan, offset: String },
}

const VERBS: &[&str] =
    &["Add", "Update", "Delete", "Load", "Resend", "Block", "Unblock", "Move", "Copy", "Set", "Control", "Enroll"];

/// Parses an envelope.
pub fn parse(body: &Value) -> Result<CamsCall, FieldError> {
    let Some(top) = body.as_object() else {
        return Err(FieldError::new("$", "the body must be a JSON object"));
    };
    let operation_id = optional_text(top, "", "OperationID")?;
    let auth_token = optional_text(top, "", "AuthToken")?;
    // The operation is the one key that is a verb (or looks like one: an object). Other
    // top-level values are metadata integrations add and the contract does not read, such
    // as `"ApiVersion":"3.0"`: ignored.
    let verbs: Vec<&String> = top
        .iter()
        .filter(|(k, v)| {
            !matches!(k.as_str(), "OperationID" | "AuthToken" | "Time")
                && (VERBS.contains(&k.as_str()) || v.is_object())
        })
        .map(|(k, _)| k)
        .collect();
    let verb = match verbs.as_slice() {
        [verb] => verb.as_str(),
        [] => return Err(FieldError::new("$", format!("no operation: expected one of {}", VERBS.join(", ")))),
        _ => return Err(FieldError::new("$", "one operation per request")),
    };
    if !VERBS.contains(&verb) {
        return Err(FieldError::new(verb, format!("unknown verb; expected one of {}", VERBS.join(", "))));
    }
    let object = top[verb].as_object().ok_or_else(|| FieldError::new(verb, "must be an object"))?;
    let action = match verb {
        "Add" | "Update" => add(verb, object)?,
        "Delete" => delete(object)?,
        "Load" => load(object)?,
        "Resend" => resend(object)?,
        "Block" | "Unblock" => {
            let user = object_at(object, verb, "User")?;
            let user_id = text(user, &format!("{verb}.User"), "UserID")?;
            CamsAction::Operation(if verb == "Block" {
                OperationRequest::BlockUser { user_id }
            } else {
                OperationRequest::UnblockUser { user_id }
            })
        }
        "Move" => {
            let user = object_at(object, verb, "User")?;
            CamsAction::Operation(OperationRequest::MoveUser {
                user_id: text(user, "Move.User", "UserID")?,
                to_device: text(user, "Move.User", "ToDevice")?,
            })
        }
        "Copy" => {
            let user = object_at(object, verb, "User")?;
            let to_devices = match user.get("ToDevices") {
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        scalar(v).ok_or_else(|| FieldError::new(format!("Copy.User.ToDevices[{i}]"), NOT_SCALAR))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(FieldError::new("Copy.User.ToDevices", "must be a list of device ids")),
                None => vec![text(user, "Copy.User", "ToDevice")?],
            };
            CamsAction::Operation(OperationRequest::CopyUser {
                user_id: text(user, "Copy.User", "UserID")?,
                to_devices,
            })
        }
        "Set" => set(object)?,
        "Control" => control(object)?,
        "Enroll" => {
            let user = object_at(object, verb, "User")?;
            CamsAction::Operation(OperationRequest::StartEnrollment {
                user_id: text(user, "Enroll.User", "UserID")?,
                kind: kind(user, "Enroll.User")?,
                index: index(user, "Enroll.User")?,
            })
        }
        _ => unreachable!("verbs are checked above"),
    };
    Ok(CamsCall { operation_id, auth_token, action })
}

fn add(verb: &str, object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    for key in object.keys() {
        if !matches!(key.as_str(), "User" | "Template" | "Photo") {
            return Err(FieldError::new(format!("{verb}.{key}"), "expected User, Template and/or Photo"));
        }
    }
    let mut user = UserSpec::default();
    if let Some(u) = object.get("User") {
        let path = format!("{verb}.User");
        let u = u.as_object().ok_or_else(|| FieldError::new(path.clone(), "must be an object"))?;
        user.user_id = text(u, &path, "UserID")?;
        user.first_name = optional_text(u, &path, "FirstName")?;
        user.last_name = optional_text(u, &path, "LastName")?;
        user.role = match optional_text(u, &path, "UserType")?.as_deref() {
            None => None,
            Some(t) if t.eq_ignore_ascii_case("user") => Some(Role::User),
            Some(t) if t.eq_ignore_ascii_case("admin") => Some(Role::Admin),
            Some(t) => {
                return Err(FieldError::new(format!("{path}.UserType"), format!("{t:?}: expected User or Admin")));
            }
        };
        user.enabled = match u.get("Enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(FieldError::new(format!("{path}.Enabled"), "must be true or false")),
        };
        user.valid_from = optional_text(u, &path, "ValidFrom")?;
        user.valid_until = optional_text(u, &path, "ValidUntil")?;
    }
    if let Some(templates) = object.get("Template") {
        let path = format!("{verb}.Template");
        let items = match templates {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![templates.clone()],
            _ => return Err(FieldError::new(path, "must be a list of templates")),
        };
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let t = item.as_object().ok_or_else(|| FieldError::new(p.clone(), "must be an object"))?;
            let owner = text(t, &p, "UserID")?;
            if user.user_id.is_empty() {
                user.user_id = owner;
            } else if owner != user.user_id {
                return Err(FieldError::new(
                    format!("{p}.UserID"),
                    format!("{owner:?} differs from the user {:?}", user.user_id),
                ));
            }
            user.credentials.push(CredentialSpec {
                kind: kind(t, &p)?,
                index: index(t, &p)?,
                data: text(t, &p, "Data")?,
            });
        }
    }
    if let Some(photo) = object.get("Photo") {
        let path = format!("{verb}.Photo");
        let p = photo.as_object().ok_or_else(|| FieldError::new(path.clone(), "must be an object"))?;
        if let Some(kind) = optional_text(p, &path, "Type")?
            && !kind.eq_ignore_ascii_case("base64")
        {
            return Err(FieldError::new(format!("{path}.Type"), format!("{kind:?}: only Base64 photos are accepted")));
        }
        let owner = text(p, &path, "UserID")?;
        if user.user_id.is_empty() {
            user.user_id = owner;
        } else if owner != user.user_id {
            return Err(FieldError::new(
                format!("{path}.UserID"),
                format!("{owner:?} differs from the user {:?}", user.user_id),
            ));
        }
        let data = text(p, &path, "Data")?;
        if object.len() == 1 {
            return Ok(CamsAction::Operation(OperationRequest::AddUserPhoto { user_id: user.user_id, photo: data }));
        }
        user.photo = Some(data);
    }
    if object.is_empty() {
        return Err(FieldError::new(verb, "expected User, Template and/or Photo"));
    }
    Ok(CamsAction::Operation(if verb == "Update" {
        OperationRequest::UpdateUser { user }
    } else {
        OperationRequest::AddUser { user }
    }))
}

fn delete(object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    let (key, value) = single(object, "Delete")?;
    let op = match (key, value) {
        ("User", v) if is_all(v) => OperationRequest::DeleteAllUsers,
        ("User", Value::Object(u)) => OperationRequest::DeleteUser { user_id: text(u, "Delete.User", "UserID")? },
        ("Log" | "PunchLog", v) if is_all(v) => OperationRequest::DeletePunchLog,
        ("PunchPhoto", v) if is_all(v) => OperationRequest::DeletePunchPhotos,
        ("Data", v) if is_all(v) => OperationRequest::ClearAllData,
        ("Template", Value::Object(t)) => OperationRequest::DeleteCredential {
            user_id: text(t, "Delete.Template", "UserID")?,
            kind: kind(t, "Delete.Template")?,
            index: index(t, "Delete.Template")?,
        },
        ("User" | "Template", _) => {
            return Err(FieldError::new(format!("Delete.{key}"), "must be \"All\" or an object with UserID"));
        }
        ("Log" | "PunchLog" | "PunchPhoto" | "Data", _) => {
            return Err(FieldError::new(format!("Delete.{key}"), "must be \"All\""));
        }
        _ => return Err(FieldError::new(format!("Delete.{key}"), "expected User, Template, Log, PunchPhoto or Data")),
    };
    Ok(CamsAction::Operation(op))
}

fn load(object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    let (key, value) = single(object, "Load")?;
    Ok(match (key, value) {
        ("PunchLog", Value::Object(p)) => {
            let filter = object_at(p, "Load.PunchLog", "Filter")?;
            CamsAction::LoadPunchLog {
                span: TimeSpan {
                    start_time: text(filter, "Load.PunchLog.Filter", "StartTime")?,
                    end_time: text(filter, "Load.PunchLog.Filter", "EndTime")?,
                },
                offset: optional_text(filter, "Load.PunchLog.Filter", "OffSet")?.unwrap_or_default(),
            }
        }
        ("DeviceInformation" | "DeviceInfo", _) => CamsAction::Operation(OperationRequest::LoadDeviceInfo),
        ("UserInfo" | "User", v) if is_all(v) => {
            CamsAction::Operation(OperationRequest::LoadUserInfo { user_id: None })
        }
        ("UserInfo" | "User", Value::Object(u)) => CamsAction::Operation(OperationRequest::LoadUserInfo {
            user_id: Some(text(u, &format!("Load.{key}"), "UserID")?),
        }),
        ("PunchLog", _) => return Err(FieldError::new("Load.PunchLog", "must be an object with Filter")),
        _ => return Err(FieldError::new(format!("Load.{key}"), "expected PunchLog, DeviceInformation or UserInfo")),
    })
}

fn resend(object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    let (key, value) = single(object, "Resend")?;
    Ok(CamsAction::Operation(match (key, value) {
        ("PunchLog" | "DevicePunchLog", Value::Object(p)) => {
            let path = format!("Resend.{key}");
            let filter = object_at(p, &path, "Filter")?;
            let fpath = format!("{path}.Filter");
            let span =
                TimeSpan { start_time: text(filter, &fpath, "StartTime")?, end_time: text(filter, &fpath, "EndTime")? };
            if key == "PunchLog" {
                OperationRequest::ResendPunchLog { span }
            } else {
                OperationRequest::RequestPunchUpload { span }
            }
        }
        ("User", v) if is_all(v) => OperationRequest::ResendUsers,
        _ => {
            return Err(FieldError::new(
                format!("Resend.{key}"),
                "expected PunchLog{Filter}, DevicePunchLog{Filter} or User:\"All\"",
            ));
        }
    }))
}

fn set(object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    let (key, value) = single(object, "Set")?;
    Ok(CamsAction::Operation(match (key, value) {
        ("Role", Value::Object(r)) => OperationRequest::SetUserRole {
            user_id: text(r, "Set.Role", "UserID")?,
            role: match text(r, "Set.Role", "UserType")?.to_ascii_lowercase().as_str() {
                "user" => Role::User,
                "admin" => Role::Admin,
                other => {
                    return Err(FieldError::new("Set.Role.UserType", format!("{other:?}: expected User or Admin")));
                }
            },
        },
        ("Access", Value::Object(a)) => OperationRequest::SetAccessWindow {
            user_id: text(a, "Set.Access", "UserID")?,
            valid_from: text(a, "Set.Access", "StartTime")?,
            valid_until: text(a, "Set.Access", "EndTime")?,
        },
        ("Time", Value::String(t)) => {
            OperationRequest::SyncTime { time: (!t.eq_ignore_ascii_case("now")).then(|| t.clone()) }
        }
        ("Option", Value::Object(o)) => {
            OperationRequest::SetOption { key: text(o, "Set.Option", "Key")?, value: text(o, "Set.Option", "Value")? }
        }
        _ => {
            return Err(FieldError::new(
                format!("Set.{key}"),
                "expected Role{UserID,UserType}, Access{UserID,StartTime,EndTime}, Time or Option{Key,Value}",
            ));
        }
    }))
}

fn control(object: &Map<String, Value>) -> Result<CamsAction, FieldError> {
    let (key, value) = single(object, "Control")?;
    Ok(CamsAction::Operation(match (key, value.as_str()) {
        ("Reboot", _) => OperationRequest::Reboot,
        ("Door", Some(v)) if v.eq_ignore_ascii_case("unlock") => OperationRequest::UnlockDoor,
        _ => return Err(FieldError::new(format!("Control.{key}"), "expected Reboot or Door:\"Unlock\"")),
    }))
}

fn single<'a>(object: &'a Map<String, Value>, verb: &str) -> Result<(&'a str, &'a Value), FieldError> {
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        (None, _) => Err(FieldError::new(verb, "names no object")),
        _ => Err(FieldError::new(verb, "one object per request")),
    }
}

fn is_all(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.eq_ignore_ascii_case("all"))
}

fn object_at<'a>(object: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Map<String, Value>, FieldError> {
    object
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| FieldError::new(format!("{path}.{key}"), "must be an object"))
}

/// A string or a whole number as text (clients send `"UserID":"1"` and `"UserID":1`). A
/// number is taken only when serde_json holds it exactly (an integer within 64 bits), so
/// its digits are the ones sent; a fraction, an exponent or a longer integer (which would
/// be rounded through `f64`: `9007199254740993.0`, `1.2345678901234567e+38`) is refused.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// The refusal of a value [`scalar`] does not take.
const NOT_SCALAR: &str = "must be a string, or a whole number within 64 bits (send other numbers as strings)";

fn name(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn optional_text(object: &Map<String, Value>, path: &str, key: &str) -> Result<Option<String>, FieldError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar(v).map(Some).ok_or_else(|| FieldError::new(name(path, key), NOT_SCALAR)),
    }
}

fn text(object: &Map<String, Value>, path: &str, key: &str) -> Result<String, FieldError> {
    optional_text(object, path, key)?.ok_or_else(|| FieldError::new(name(path, key), "is required"))
}

fn index(object: &Map<String, Value>, path: &str) -> Result<Option<u32>, FieldError> {
    optional_text(object, path, "Index")?
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| FieldError::new(name(path, "Index"), format!("{t:?}: expected a number")))
        })
        .transpose()
}

fn kind(object: &Map<String, Value>, path: &str) -> Result<CredentialKind, FieldError> {
    let t = text(object, path, "Type")?;
    let squashed: String =
        t.chars().filter(|c| !c.is_whitespace() && *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
    Ok(match squashed.as_str() {
        "fingerprint" | "finger" | "fp" => CredentialKind::Fingerprint,
        "face" => CredentialKind::Face,
        "palm" => CredentialKind::Palm,
        "fingervein" | "vein" => CredentialKind::FingerVein,
        "iris" => CredentialKind::Iris,
        "retina" => CredentialKind::Retina,
        "card" => CredentialKind::Card,
        "password" | "pin" => CredentialKind::Password,
        _ => {
            return Err(FieldError::new(
                name(path, "Type"),
                format!("{t:?}: expected FingerPrint, Face, Palm, FingerVein, Iris, Retina, Card or Password"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(body: Value) -> OperationRequest {
        match parse(&body).expect("parses").action {
            CamsAction::Operation(op) => op,
            other => panic!("not an operation: {other:?}"),
        }
    }

    #[test]
    fn add_user_with_templates_and_photo_is_one_request() {
        let body = json!({"Add":{"User":{"UserID":"1","FirstName":"Manu","LastName":"Mona","UserType":"Admin"},
            "Template":[{"Type":"Password","UserID":"1","Data":"3211"},{"Type":"FingerPrint","UserID":"1","Index":"6","Size":"4","Data":"QUJD"}],
            "Photo":{"Type":"Base64","UserID":"1","Size":"4","Data":"/9j/"}},
            "OperationID":"9nu1wak5616p","AuthToken":"t","Time":"2020-09-17 11:09:09 GMT +0530"});
        let call = parse(&body).unwrap();
        assert_eq!(call.operation_id.as_deref(), Some("9nu1wak5616p"));
        let CamsAction::Operation(OperationRequest::AddUser { user }) = call.action else { panic!() };
        assert_eq!(user.user_id, "1");
        assert_eq!(user.role, Some(Role::Admin));
        assert_eq!(user.credentials.len(), 2);
        assert_eq!(user.credentials[1].kind, CredentialKind::Fingerprint);
        assert_eq!(user.credentials[1].index, Some(6));
        assert_eq!(user.photo.as_deref(), Some("/9j/"));
    }

    /// Top-level metadata that real integrations send (`ApiVersion`) is not taken for a
    /// second operation; two operations, or an unknown object, still are refused.
    #[test]
    fn metadata_beside_the_operation_is_ignored() {
        let got = op(json!({"Block":{"User":{"UserID":"7"}},"ApiVersion":"3.0","OperationID":"a1"}));
        assert_eq!(got, OperationRequest::BlockUser { user_id: "7".into() });
        let two = parse(&json!({"Block":{"User":{"UserID":"7"}},"Unblock":{"User":{"UserID":"7"}}}));
        assert_eq!(two.expect_err("two operations").problem, "one operation per request");
        let unknown = parse(&json!({"Frobnicate":{"User":{"UserID":"7"}}})).expect_err("an unknown verb");
        assert_eq!(unknown.field, "Frobnicate");
        let only_metadata = parse(&json!({"ApiVersion":"3.0"})).expect_err("no operation");
        assert!(only_metadata.problem.starts_with("no operation"), "{}", only_metadata.problem);
    }

    #[test]
    fn photo_alone_is_add_user_photo() {
        let got = op(json!({"Add":{"Photo":{"Type":"Base64","UserID":"User123","Data":"/9j/"}}}));
        assert_eq!(got, OperationRequest::AddUserPhoto { user_id: "User123".into(), photo: "/9j/".into() });
    }

    #[test]
    fn the_documented_names_map_to_the_catalogue() {
        assert_eq!(op(json!({"Delete":{"User":"All"}})), OperationRequest::DeleteAllUsers);
        assert_eq!(op(json!({"Delete":{"User":{"UserID":1}}})), OperationRequest::DeleteUser { user_id: "1".into() });
        assert_eq!(op(json!({"Delete":{"Log":"All"}})), OperationRequest::DeletePunchLog);
        assert_eq!(op(json!({"Delete":{"PunchPhoto":"All"}})), OperationRequest::DeletePunchPhotos);
        assert_eq!(op(json!({"Load":{"DeviceInformation":"All"}})), OperationRequest::LoadDeviceInfo);
        assert_eq!(op(json!({"Load":{"UserInfo":"All"}})), OperationRequest::LoadUserInfo { user_id: None });
        assert_eq!(op(json!({"Resend":{"User":"All"}})), OperationRequest::ResendUsers);
        assert_eq!(op(json!({"Control":{"Door":"Unlock"}})), OperationRequest::UnlockDoor);
        assert_eq!(op(json!({"Set":{"Time":"Now"}})), OperationRequest::SyncTime { time: None });
    }

    #[test]
    fn load_punch_log_reads_the_filter() {
        let call = parse(&json!({"Load":{"PunchLog":{"Filter":{"StartTime":"2020-09-01 00:00:00 GMT +0530","EndTime":"2020-09-17 00:00:00 GMT +0530","OffSet":""}}}})).unwrap();
        let CamsAction::LoadPunchLog { span, offset } = call.action else { panic!() };
        assert_eq!(span.start_time, "2020-09-01 00:00:00 GMT +0530");
        assert_eq!(offset, "");
    }

    #[test]
    fn numeric_user_ids_are_kept_exact_or_refused() {
        let parsed = |text: &str| parse(&serde_json::from_str(text).unwrap());
        let delete = |id: &str| format!(r#"{{"Delete":{{"User":{{"UserID":{id}}}}}}}"#);
        for (sent, kept) in
            [("9007199254740993", "9007199254740993"), ("18446744073709551615", "18446744073709551615"), ("-7", "-7")]
        {
            let call = parsed(&delete(sent)).unwrap();
            let CamsAction::Operation(request) = call.action else { panic!("{sent}") };
            assert_eq!(request, OperationRequest::DeleteUser { user_id: kept.into() }, "{sent}");
        }
        for sent in ["1.2345678901234567e+38", "18446744073709551616", "9007199254740993.0", "1e3", "1.5"] {
            let error = parsed(&delete(sent)).expect_err(sent);
            assert_eq!(error.field, "Delete.User.UserID", "{sent}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let err = |body: Value| parse(&body).unwrap_err().field;
        assert_eq!(err(json!({"Add":{"User":{"FirstName":"x"}}})), "Add.User.UserID");
        assert_eq!(
            err(json!({"Add":{"User":{"UserID":"1"},"Template":[{"Type":"Tongue","UserID":"1","Data":"x"}]}})),
            "Add.Template[0].Type"
        );
        assert_eq!(err(json!({"Frobnicate":{}})), "Frobnicate");
        assert_eq!(err(json!({"Delete":{"User":"Some"}})), "Delete.User");
        assert_eq!(err(json!({"Add":{},"Delete":{}})), "$");
        assert_eq!(err(json!({"Load":{"PunchLog":{"Filter":{"StartTime":"x"}}}})), "Load.PunchLog.Filter.EndTime");
    }
}
