//! The encoding of every command variant.

use biogate_sdk::prelude::*;
use biogate_sdk::testing;

use super::*;

/// 2024-01-01 00:00:00 UTC.
const T: i64 = 1_704_067_200;

fn run(body: CommandBody, known_pri: Option<u32>) -> Result<Encoded> {
    let settings = Settings::load().unwrap();
    let biodata = BiodataSettings::load().unwrap();
    let cx = Context { settings: &settings, biodata: &biodata, offset_minutes: 330, known_pri };
    encode(&body, &cx)
}

fn lines(body: CommandBody) -> Vec<String> {
    run(body, None).unwrap().lines
}

fn line(body: CommandBody) -> String {
    let mut all = lines(body);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn refused(body: CommandBody) -> Refusal {
    run(body, None).unwrap_err()
}

fn tmpl(kind: TemplateKind, index: Option<u32>, data: &str) -> Template {
    Template { kind, index, data: data.into() }
}

#[test]
fn upsert_user_with_everything() {
    let mut user = User::new("982");
    user.first_name = Some("Ann".into());
    user.last_name = Some("Lee\tX".into());
    user.role = Some(UserRole::Admin);
    user.enabled = Some(true);
    user.valid_from = Some(DeviceTime::new(T, 0));
    user.valid_until = Some(DeviceTime::new(T + 86_400, 0));
    user.templates = vec![
        tmpl(TemplateKind::Password, None, "1234"),
        tmpl(TemplateKind::Card, None, "123456789"),
        tmpl(TemplateKind::Fingerprint, Some(6), "TWljUzIx"),
        tmpl(TemplateKind::Face, None, "RkFDRQ=="),
        tmpl(TemplateKind::Palm, Some(1), "UEFMTQ=="),
    ];
    user.photo = Some(vec![0xff, 0xd8, 0xff, 0xe0]);
    let encoded = run(CommandBody::UpsertUser(user), None).unwrap();
    assert_eq!(
        encoded.lines,
        vec![
            "DATA UPDATE USERINFO PIN=982\tName=Ann Lee X\tPri=14\tPasswd=1234\tCard=123456789\tStartDatetime=2024-01-01 05:30:00\tEndDatetime=2024-01-02 05:30:00",
            "DATA UPDATE FINGERTMP PIN=982\tFID=6\tSize=8\tValid=1\tTMP=TWljUzIx",
            "DATA UPDATE FACE PIN=982\tFID=0\tSize=8\tValid=1\tTMP=RkFDRQ==",
            "DATA UPDATE BIODATA Pin=982\tNo=1\tIndex=0\tValid=1\tDuress=0\tType=8\tMajorVer=0\tMinorVer=0\tFormat=0\tTmp=UEFMTQ==",
            "DATA UPDATE USERPIC PIN=982\tSize=8\tContent=/9j/4A==",
        ]
    );
    assert_eq!(encoded.effect, Effect::SetPri("982".into(), 14));
}

#[test]
fn upsert_user_minimal_keeps_unknown_fields_out() {
    let encoded = run(CommandBody::UpsertUser(User::new("7")), Some(14)).unwrap();
    assert_eq!(encoded.lines, vec!["DATA UPDATE USERINFO PIN=7"]);
    assert_eq!(encoded.effect, Effect::None);
}

#[test]
fn upsert_disabled_user_keeps_the_known_role() {
    let mut user = User::new("7");
    user.enabled = Some(false);
    let encoded = run(CommandBody::UpsertUser(user), Some(14)).unwrap();
    assert_eq!(encoded.lines, vec!["DATA UPDATE USERINFO PIN=7\tPri=15"]);
    assert_eq!(encoded.effect, Effect::SetPri("7".into(), 15));
}

#[test]
fn upsert_in_biodata_format_and_bracket_cards() {
    testing::set_config(&[
        ("template_format", "biodata"),
        ("card_format", "bracket"),
        ("biodata_version.fingerprint", "10.0"),
    ]);
    let mut user = User::new("1");
    user.templates =
        vec![tmpl(TemplateKind::Card, None, "123456789"), tmpl(TemplateKind::Fingerprint, Some(2), "QUJD")];
    assert_eq!(
        lines(CommandBody::UpsertUser(user)),
        vec![
            "DATA UPDATE USERINFO PIN=1\tCard=[15CD5B07]",
            "DATA UPDATE BIODATA Pin=1\tNo=2\tIndex=0\tValid=1\tDuress=0\tType=1\tMajorVer=10\tMinorVer=0\tFormat=0\tTmp=QUJD",
        ]
    );
}

#[test]
fn upsert_refuses_values_that_would_break_the_line() {
    let r = refused(CommandBody::UpsertUser(User::new("1\nC:9:REBOOT")));
    assert_eq!(r.code, BAD_PARAMETER);
    let mut user = User::new("1");
    user.templates = vec![tmpl(TemplateKind::Fingerprint, None, "QUJD\tPIN=2")];
    assert_eq!(refused(CommandBody::UpsertUser(user)).code, BAD_PARAMETER);
    let mut user = User::new("1");
    user.templates = vec![tmpl(TemplateKind::Password, None, "1\r\n")];
    assert_eq!(refused(CommandBody::UpsertUser(user)).code, BAD_PARAMETER);
    assert_eq!(refused(CommandBody::DeleteUser(String::new())).code, BAD_PARAMETER);
}

#[test]
fn delete_user_and_unsupported_delete_all() {
    let encoded = run(CommandBody::DeleteUser("982".into()), None).unwrap();
    assert_eq!(encoded.lines, vec!["DATA DELETE USERINFO PIN=982"]);
    assert_eq!(encoded.effect, Effect::ForgetUser("982".into()));
    let r = refused(CommandBody::DeleteAllUsers);
    assert_eq!(r.code, NOT_SUPPORTED);
    assert!(r.reason.contains("CLEAR DATA"));
}

#[test]
fn set_user_enabled_flips_the_pri_bit() {
    let block = run(CommandBody::SetUserEnabled(("5".into(), false)), Some(14)).unwrap();
    assert_eq!(block.lines, vec!["DATA UPDATE USERINFO PIN=5\tPri=15"]);
    assert_eq!(block.effect, Effect::SetPri("5".into(), 15));
    let unblock = run(CommandBody::SetUserEnabled(("5".into(), true)), Some(15)).unwrap();
    assert_eq!(unblock.lines, vec!["DATA UPDATE USERINFO PIN=5\tPri=14"]);
    assert_eq!(line(CommandBody::SetUserEnabled(("6".into(), false))), "DATA UPDATE USERINFO PIN=6\tPri=1");
    testing::set_config(&[("user_enabled", "unsupported")]);
    assert_eq!(refused(CommandBody::SetUserEnabled(("6".into(), false))).code, NOT_SUPPORTED);
}

#[test]
fn delete_template_per_kind() {
    let del = |kind, index| line(CommandBody::DeleteTemplate(DeleteTemplateArgs { user_id: "5".into(), kind, index }));
    assert_eq!(del(TemplateKind::Fingerprint, Some(3)), "DATA DELETE FINGERTMP PIN=5\tFID=3");
    assert_eq!(del(TemplateKind::Fingerprint, None), "DATA DELETE FINGERTMP PIN=5");
    assert_eq!(del(TemplateKind::Face, None), "DATA DELETE FACE PIN=5");
    assert_eq!(del(TemplateKind::FingerVein, Some(2)), "DATA DELETE BIODATA Pin=5\tType=7\tNo=2");
    assert_eq!(del(TemplateKind::Iris, None), "DATA DELETE BIODATA Pin=5\tType=4");
    assert_eq!(del(TemplateKind::Retina, None), "DATA DELETE BIODATA Pin=5\tType=5");
    assert_eq!(del(TemplateKind::Card, None), "DATA UPDATE USERINFO PIN=5\tCard=");
    assert_eq!(del(TemplateKind::Password, None), "DATA UPDATE USERINFO PIN=5\tPasswd=");
    testing::set_config(&[("template_format", "biodata")]);
    assert_eq!(del(TemplateKind::Face, None), "DATA DELETE BIODATA Pin=5\tType=2");
}

#[test]
fn queries_clears_and_device_commands() {
    let range = TimeRange { start: DeviceTime::new(T, 0), end: DeviceTime::new(T + 3599, 0) };
    assert_eq!(
        line(CommandBody::UploadPunches(range)),
        "DATA QUERY ATTLOG StartTime=2024-01-01 05:30:00\tEndTime=2024-01-01 06:29:59"
    );
    assert_eq!(line(CommandBody::ClearPunches), "CLEAR LOG");
    assert_eq!(line(CommandBody::ClearPhotos), "CLEAR PHOTO");
    assert_eq!(line(CommandBody::ClearAllData), "CLEAR DATA");
    assert_eq!(line(CommandBody::GetDeviceInfo), "INFO");
    assert_eq!(line(CommandBody::GetUserInfo(Some("5".into()))), "DATA QUERY USERINFO PIN=5");
    assert_eq!(line(CommandBody::GetUserInfo(None)), "DATA QUERY USERINFO");
    assert_eq!(line(CommandBody::Reboot), "REBOOT");
    assert!(is_reboot(&line(CommandBody::Reboot)));
    assert_eq!(line(CommandBody::UnlockDoor), "AC_UNLOCK");
    testing::set_config(&[("unlock_command", "CONTROL DEVICE 01010105")]);
    assert_eq!(line(CommandBody::UnlockDoor), "CONTROL DEVICE 01010105");
}

#[test]
fn set_option_and_set_time() {
    assert_eq!(line(CommandBody::SetOption(("Delay".into(), "5".into()))), "SET OPTION Delay=5");
    assert_eq!(refused(CommandBody::SetOption(("A=B".into(), "1".into()))).code, BAD_PARAMETER);
    assert_eq!(refused(CommandBody::SetOption(("A".into(), "1\n2".into()))).code, BAD_PARAMETER);
    let r = refused(CommandBody::SetTime(DeviceTime::new(T, 0)));
    assert_eq!(r.code, NOT_SUPPORTED);
    assert!(r.reason.contains("Date header"));
}

#[test]
fn enrollment() {
    let enroll = |kind, index| CommandBody::StartEnrollment(StartEnrollmentArgs { user_id: "5".into(), kind, index });
    assert_eq!(line(enroll(TemplateKind::Fingerprint, Some(4))), "ENROLL_FP PIN=5\tFID=4\tRETRY=3\tOVERWRITE=1");
    assert_eq!(line(enroll(TemplateKind::Face, None)), "ENROLL_BIO TYPE=2\tPIN=5\tRETRY=3\tOVERWRITE=1");
    assert_eq!(refused(enroll(TemplateKind::Card, None)).code, NOT_SUPPORTED);
    assert_eq!(refused(enroll(TemplateKind::Password, None)).code, NOT_SUPPORTED);
    testing::set_config(&[("enroll_retry", "1"), ("enroll_overwrite", "false")]);
    assert_eq!(line(enroll(TemplateKind::Fingerprint, None)), "ENROLL_FP PIN=5\tFID=0\tRETRY=1\tOVERWRITE=0");
}

#[test]
fn subjects() {
    assert_eq!(subject(&CommandBody::UpsertUser(User::new("9"))), Some("9"));
    assert_eq!(subject(&CommandBody::SetUserEnabled(("8".into(), true))), Some("8"));
    assert_eq!(subject(&CommandBody::Reboot), None);
}
