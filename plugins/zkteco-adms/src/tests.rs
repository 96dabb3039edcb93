//! End-to-end tests of the dialect through its `Dialect` entry points, against the SDK's
//! in-memory gateway (run with `cargo test -p zkteco-adms` in plugins/).

use biogate_sdk::prelude::*;
use biogate_sdk::testing;

use crate::ZktecoAdms;

const SN: &str = "0316144680030";
/// 2024-11-26 05:21:00 UTC.
const NOW_MS: u64 = 1_732_598_460_000;

fn device(offset: i32) -> DeviceContext {
    DeviceContext { device_id: SN.into(), label: "front door".into(), utc_offset_minutes: offset }
}

fn request(method: &str, path: &str, query: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        headers: vec![],
        body: body.to_vec(),
    }
}

fn call(offset: i32, req: HttpRequest) -> DialectReply {
    testing::set_now_ms(NOW_MS);
    match ZktecoAdms::handle_http(device(offset), req) {
        Ok(reply) => reply,
        Err(err) => panic!("handle_http failed: {err:?}"),
    }
}

fn body(reply: &DialectReply) -> String {
    String::from_utf8(reply.body.clone()).unwrap()
}

fn handshake(query: &[(&str, &str)], offset: i32) -> DialectReply {
    call(offset, request("GET", "/iclock/cdata", query, b""))
}

fn upload(table: &str, stamp: &str, text: &str) -> DialectReply {
    call(0, request("POST", "/iclock/cdata", &[("SN", SN), ("table", table), ("Stamp", stamp)], text.as_bytes()))
}

fn poll() -> DialectReply {
    call(330, request("GET", "/iclock/getrequest", &[("SN", SN)], b""))
}

fn results(text: &str) -> DialectReply {
    call(0, request("POST", "/iclock/devicecmd", &[("SN", SN)], text.as_bytes()))
}

fn push(op: &str, body: CommandBody) {
    testing::push_command(SN, Command { operation_id: op.into(), body });
}

fn command_results(reply: &DialectReply) -> Vec<(String, i32)> {
    reply
        .events
        .iter()
        .filter_map(|e| match e {
            EventBody::CommandResult(r) => Some((r.operation_id.clone(), r.return_code)),
            _ => None,
        })
        .collect()
}

// ---- identify ----------------------------------------------------------------------

#[test]
fn identify_reads_sn_in_any_case() {
    let id = |q: &[(&str, &str)]| ZktecoAdms::identify_http(request("GET", "/iclock/cdata", q, b""));
    assert_eq!(id(&[("SN", SN)]), Ok(SN.to_owned()));
    assert_eq!(id(&[("options", "all"), ("sn", "ABC")]), Ok("ABC".to_owned()));
    assert!(matches!(id(&[("options", "all")]), Err(DialectError::BadRequest(m)) if m.contains("SN")));
    assert!(matches!(id(&[("SN", "")]), Err(DialectError::BadRequest(_))));
}

// ---- handshake ---------------------------------------------------------------------

#[test]
fn handshake_lines_and_date() {
    let reply = handshake(&[("SN", SN), ("options", "all"), ("pushver", "2.4.0"), ("language", "69")], 480);
    assert_eq!(reply.status, 200);
    assert_eq!(
        body(&reply),
        format!(
            "GET OPTION FROM: {SN}\nATTLOGStamp=None\nOPERLOGStamp=None\nATTPHOTOStamp=None\n\
             ErrorDelay=30\nDelay=10\nTransTimes=00:00;14:05\nTransInterval=1\n\
             TransFlag=TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic\n\
             TimeZone=8\nRealtime=1\nEncrypt=None\nServerVer=2.4.1\nPushProtVer=2.4.0\n"
        )
    );
    assert!(reply.headers.contains(&("date".to_owned(), "Tue, 26 Nov 2024 05:21:00 GMT".to_owned())));
    let [EventBody::DeviceStatus(status)] = reply.events.as_slice() else {
        panic!("{:?}", reply.events);
    };
    assert!(status.online);
    assert!(status.info.contains(&("pushver".to_owned(), "2.4.0".to_owned())));
    assert!(!status.info.iter().any(|(k, _)| k == "SN"));
}

#[test]
fn handshake_timezone_versions_config_and_stamps() {
    testing::set_config(&[("delay", "5"), ("error_delay", "60"), ("push_prot_ver", "2.4.1")]);
    upload("ATTLOG", "9999", "1\t2024-01-01 08:00:00\t0\t1");
    upload("OPERLOG", "42", "OPLOG 0\t0\t2024-01-01 08:00:00\t0\t0\t0\t0");
    let text = body(&handshake(&[("sn", SN), ("pushver", "3.1.2")], 330));
    assert!(text.contains("\nATTLOGStamp=9999\n"), "{text}");
    assert!(text.contains("\nOPERLOGStamp=42\n"), "{text}");
    assert!(text.contains("\nATTPHOTOStamp=None\n"), "{text}");
    assert!(text.contains("\nTimeZone=330\n"), "{text}");
    assert!(text.contains("\nDelay=5\n"), "{text}");
    assert!(text.contains("\nErrorDelay=60\n"), "{text}");
    assert!(text.contains("\nPushProtVer=2.4.1\n"), "{text}");
    assert!(!text.contains("OpStamp"), "{text}");

    // No pushver: the legacy stamp names too, and the legacy version.
    let text = body(&handshake(&[("SN", SN)], -300));
    assert!(text.contains("\nStamp=9999\nOpStamp=42\nPhotoStamp=None\n"), "{text}");
    assert!(text.contains("\nTimeZone=-5\n"), "{text}");
    assert!(text.contains("\nPushProtVer=2.2.14\n"), "{text}");

    testing::set_config_value("timezone_format", "hours");
    assert!(body(&handshake(&[("SN", SN)], 330)).contains("\nTimeZone=5.5\n"));
}

#[test]
fn bad_config_refuses_and_names_the_key() {
    testing::set_config(&[("delay", "soon")]);
    let err = ZktecoAdms::handle_http(device(0), request("GET", "/iclock/cdata", &[("SN", SN)], b"")).unwrap_err();
    assert!(matches!(&err, DialectError::Refused(m) if m.contains("delay")), "{err:?}");
    // Ping does not need the config.
    assert_eq!(body(&call(0, request("GET", "/iclock/ping", &[("SN", SN)], b""))), "OK");
}

// ---- uploads -----------------------------------------------------------------------

#[test]
fn attlog_upload_of_5_8_and_12_field_lines_with_bad_lines() {
    let text = "1452\t2015-07-30 15:16:28\t255\t1\t\n\
                7\t2024-01-02 03:04:05\t1\t4\t12\t0\t0\t1\r\n\
                \n\
                88\t2021-06-01 08:00:00\t2\t15\t\t0\t0\t0\t36.6\t0\t0\t0\n\
                99\tyesterday\t0\t1\t0\t0\t0\n\
                \t2021-06-01 08:00:00\t0\t1\n";
    let reply = upload("ATTLOG", "1700000000", text);
    assert_eq!(body(&reply), "OK: 3");
    let punches: Vec<&Punch> = reply
        .events
        .iter()
        .map(|e| match e {
            EventBody::Punch(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(punches.len(), 3);
    assert_eq!(punches[0].user_id, "1452");
    assert_eq!(punches[0].punch_type, PunchType::CheckIn);
    assert_eq!(punches[1].punch_type, PunchType::CheckOut);
    assert_eq!(punches[1].face_mask, Some(true));
    assert_eq!(punches[2].temperature, Some(36.6));

    let logs = testing::logs();
    let bad: Vec<_> = logs.iter().filter(|l| l.message == "bad upload line skipped").collect();
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].field("line"), Some("5"));
    assert_eq!(bad[0].field("table"), Some("ATTLOG"));
    assert!(bad[0].field("reason").unwrap().contains("time"));
    assert!(logs.iter().any(|l| l.message == "upload had bad lines" && l.field("bad") == Some("2")));
    assert_eq!(testing::kv_entries().get(&format!("stamp/{SN}/ATTLOG")).map(Vec::as_slice), Some(&b"1700000000"[..]));

    testing::set_config(&[("reply_count", "received")]);
    assert_eq!(body(&upload("ATTLOG", "1", text)), "OK: 5");
}

#[test]
fn attlog_time_uses_the_device_offset_and_flags_the_future() {
    let reply = call(
        330,
        request("POST", "/iclock/cdata.aspx", &[("sn", SN), ("TABLE", "attlog")], b"5\t2024-11-28 10:00:00\t0\t1\n"),
    );
    assert_eq!(body(&reply), "OK: 1");
    let EventBody::Punch(p) = &reply.events[0] else { panic!() };
    assert_eq!(p.log_time, DeviceTime::new(1_732_788_000 - 330 * 60, 330));
    assert!(testing::logs().iter().any(|l| l.message.contains("future") && l.field("user") == Some("5")));
}

#[test]
fn operlog_user_and_fingerprint() {
    let text = "USER PIN=982\tName=Ann\tPri=14\tPasswd=\tCard=[15CD5B07]\tGrp=1\tTZ=0\tVerify=0\tViceCard=\n\
                FP PIN=982\tFID=6\tSize=8\tValid=1\tTMP=TWljUzIx\n\
                OPLOG 6\t0\t2024-01-01 08:00:00\t982\t6\t0\t0\n\
                USER Name=nobody\n";
    let reply = upload("OPERLOG", "77", text);
    assert_eq!(body(&reply), "OK: 3");
    assert_eq!(reply.events.len(), 2);
    let EventBody::UserUpdate(user) = &reply.events[0] else { panic!() };
    assert_eq!(user.user.user_id, "982");
    assert_eq!(user.user.role, Some(UserRole::Admin));
    assert_eq!(user.user.templates[0].data, "123456789");
    assert_eq!(user.operation_time.unix_seconds, (NOW_MS / 1000) as i64);
    let EventBody::UserUpdate(fp) = &reply.events[1] else { panic!() };
    assert_eq!(fp.user.templates[0].kind, TemplateKind::Fingerprint);
    assert_eq!(fp.user.templates[0].index, Some(6));
    assert_eq!(testing::kv_entries().get(&format!("pri/{SN}/982")).map(Vec::as_slice), Some(&b"14"[..]));
    // The bad line is logged by its tag only: OPERLOG lines carry secrets.
    let bad = testing::logs().into_iter().find(|l| l.message == "bad upload line skipped").unwrap();
    assert_eq!(bad.field("line"), Some("4"));
    assert_eq!(bad.field("text"), Some(""));
}

#[test]
fn attphoto_options_and_other_tables() {
    let mut photo = b"PIN=20240101080000-1452.jpg\nSN=0316144680030\nsize=3\nCMD=uploadphoto\0".to_vec();
    photo.extend_from_slice(&[0xff, 0xd8, 0xff]);
    let reply = call(0, request("POST", "/iclock/fdata", &[("SN", SN), ("table", "ATTPHOTO"), ("Stamp", "5")], &photo));
    assert_eq!(body(&reply), "OK: 1");
    assert!(reply.events.is_empty());
    assert_eq!(body(&upload("ATTPHOTO", "6", "PIN=x.jpg\nsize=3")), "OK: 0");

    let reply = upload("options", "", "FingerFunOn=1,FaceFunOn=1,~DeviceName=K40,junk");
    assert_eq!(body(&reply), "OK: 3");
    let [EventBody::DeviceStatus(status)] = reply.events.as_slice() else { panic!() };
    assert_eq!(status.info[2], ("~DeviceName".to_owned(), "K40".to_owned()));

    assert_eq!(body(&upload("rtstate", "", "a\nb\n")), "OK: 2");
    let err = ZktecoAdms::handle_http(device(0), request("POST", "/iclock/cdata", &[("SN", SN)], b"x"));
    assert!(matches!(err, Err(DialectError::BadRequest(m)) if m.contains("table")));
}

// ---- commands ----------------------------------------------------------------------

#[test]
fn nothing_pending_is_ok() {
    let reply = call(0, request("GET", "/iclock/getrequest.aspx", &[("SN", SN)], b""));
    assert_eq!(body(&reply), "OK");
    assert!(reply.events.is_empty());
}

#[test]
fn every_command_variant_is_sent_or_answered() {
    let t = DeviceTime::new(1_704_067_200, 0);
    let mut user = User::new("982");
    user.first_name = Some("Ann".into());
    user.templates = vec![Template { kind: TemplateKind::Fingerprint, index: Some(1), data: "QUJD".into() }];
    let all = vec![
        CommandBody::UpsertUser(user),
        CommandBody::DeleteUser("982".into()),
        CommandBody::DeleteAllUsers,
        CommandBody::SetUserEnabled(("982".into(), false)),
        CommandBody::DeleteTemplate(DeleteTemplateArgs {
            user_id: "982".into(),
            kind: TemplateKind::Face,
            index: None,
        }),
        CommandBody::UploadPunches(TimeRange { start: t, end: t }),
        CommandBody::ClearPunches,
        CommandBody::ClearPhotos,
        CommandBody::ClearAllData,
        CommandBody::GetDeviceInfo,
        CommandBody::GetUserInfo(None),
        CommandBody::SetTime(t),
        CommandBody::SetOption(("Delay".into(), "5".into())),
        CommandBody::UnlockDoor,
        CommandBody::StartEnrollment(StartEnrollmentArgs {
            user_id: "982".into(),
            kind: TemplateKind::Fingerprint,
            index: None,
        }),
        CommandBody::Reboot,
    ];
    for (n, b) in all.into_iter().enumerate() {
        push(&format!("operation-{n:02}"), b);
    }
    let reply = poll();
    assert_eq!(
        body(&reply),
        "C:1:DATA UPDATE USERINFO PIN=982\tName=Ann\n\
         C:2:DATA UPDATE FINGERTMP PIN=982\tFID=1\tSize=4\tValid=1\tTMP=QUJD\n\
         C:3:DATA DELETE USERINFO PIN=982\n\
         C:4:DATA UPDATE USERINFO PIN=982\tPri=1\n\
         C:5:DATA DELETE FACE PIN=982\n\
         C:6:DATA QUERY ATTLOG StartTime=2024-01-01 05:30:00\tEndTime=2024-01-01 05:30:00\n\
         C:7:CLEAR LOG\n\
         C:8:CLEAR PHOTO\n\
         C:9:CLEAR DATA\n\
         C:10:INFO\n\
         C:11:DATA QUERY USERINFO\n\
         C:12:SET OPTION Delay=5\n\
         C:13:AC_UNLOCK\n\
         C:14:ENROLL_FP PIN=982\tFID=0\tRETRY=3\tOVERWRITE=1\n\
         C:15:REBOOT\n"
    );
    assert_eq!(command_results(&reply), vec![("operation-02".to_owned(), -1002), ("operation-11".to_owned(), -1002)]);
    let EventBody::CommandResult(r) = &reply.events[0] else { panic!() };
    assert_eq!(r.details[0].0, "reason");
    assert_eq!(body(&poll()), "OK");
    assert_eq!(testing::kv_entries().get(&format!("seq/{SN}")).map(Vec::as_slice), Some(&b"16"[..]));
}

#[test]
fn nothing_after_a_reboot() {
    push("a", CommandBody::GetDeviceInfo);
    push("b", CommandBody::Reboot);
    push("c", CommandBody::ClearPunches);
    assert_eq!(body(&poll()), "C:1:INFO\nC:2:REBOOT\n");
    assert_eq!(body(&poll()), "C:3:CLEAR LOG\n");
}

#[test]
fn command_count_cap() {
    testing::set_config(&[("max_commands", "2")]);
    for n in 0..5 {
        push(&format!("op{n}"), CommandBody::ClearPhotos);
    }
    assert_eq!(body(&poll()), "C:1:CLEAR PHOTO\nC:2:CLEAR PHOTO\n");
    assert_eq!(body(&poll()), "C:3:CLEAR PHOTO\nC:4:CLEAR PHOTO\n");
    assert_eq!(body(&poll()), "C:5:CLEAR PHOTO\n");
    assert_eq!(body(&poll()), "OK");

    // The cap counts lines, not operations: a user with two templates is three lines.
    let mut user = User::new("1");
    user.templates =
        (0..2).map(|i| Template { kind: TemplateKind::Fingerprint, index: Some(i), data: "QUJD".into() }).collect();
    push("user", CommandBody::UpsertUser(user));
    assert_eq!(body(&poll()).lines().count(), 2);
    assert!(body(&poll()).starts_with("C:8:DATA UPDATE FINGERTMP PIN=1\tFID=1"));
}

#[test]
fn byte_cap_queues_the_rest_of_a_command() {
    testing::set_config(&[("max_reply_bytes", "400")]);
    let mut user = User::new("1");
    // Each template line is 160 bytes with its line feed: the fourth line does not fit.
    user.templates =
        (0..3).map(|i| Template { kind: TemplateKind::Fingerprint, index: Some(i), data: "A".repeat(100) }).collect();
    push("user-op", CommandBody::UpsertUser(user));
    push("info-op", CommandBody::GetDeviceInfo);
    let first = body(&poll());
    assert!(first.len() <= 400, "{}", first.len());
    assert_eq!(first.lines().count(), 3, "{first}");
    assert!(first.starts_with("C:1:DATA UPDATE USERINFO PIN=1\nC:2:DATA UPDATE FINGERTMP PIN=1\tFID=0"));
    assert!(testing::kv_entries().keys().any(|k| k.starts_with("queue/")));
    // The rest of the user goes first, then the next command.
    let second = body(&poll());
    assert!(second.starts_with("C:4:DATA UPDATE FINGERTMP PIN=1\tFID=2"), "{second}");
    assert!(second.ends_with("\nC:5:INFO\n"), "{second}");
    assert_eq!(body(&poll()), "OK");
    assert!(testing::kv_entries().keys().all(|k| !k.starts_with("queue/")));
}

#[test]
fn too_long_command_is_answered_not_dropped() {
    testing::set_config(&[("max_reply_bytes", "256")]);
    let mut user = User::new("1");
    user.photo = Some(vec![7; 1000]);
    push("photo-op", CommandBody::UpsertUser(user));
    push("next", CommandBody::GetDeviceInfo);
    let reply = poll();
    assert_eq!(body(&reply), "C:1:INFO\n");
    assert_eq!(command_results(&reply), vec![("photo-op".to_owned(), -1006)]);
}

#[test]
fn refused_commands_are_capped_per_reply() {
    for n in 0..55 {
        push(&format!("op{n}"), CommandBody::DeleteAllUsers);
    }
    push("info", CommandBody::GetDeviceInfo);
    let first = poll();
    assert_eq!(body(&first), "OK");
    assert_eq!(command_results(&first).len(), crate::getrequest::MAX_POLL_EVENTS);
    let second = poll();
    assert_eq!(command_results(&second).len(), 5);
    assert_eq!(body(&second), "C:1:INFO\n");
}

#[test]
fn handshake_echoes_the_serial_as_sent() {
    let mut device = device(0);
    device.device_id = "ABC123".into();
    let reply = ZktecoAdms::handle_http(device.clone(), request("GET", "/iclock/cdata", &[("SN", "abc123")], b""));
    assert!(body(&reply.unwrap()).starts_with("GET OPTION FROM: abc123\n"));
    // Anything else than the device's own serial is not echoed.
    let reply = ZktecoAdms::handle_http(device, request("GET", "/iclock/cdata", &[("SN", "X\nDelay=1")], b""));
    assert!(body(&reply.unwrap()).starts_with("GET OPTION FROM: ABC123\n"));
}

#[test]
fn kv_outage_takes_no_command() {
    push("a", CommandBody::GetDeviceInfo);
    testing::set_kv_failure(Some(KvError::Storage("disk".into())));
    assert_eq!(body(&poll()), "OK");
    testing::set_kv_failure(None);
    assert_eq!(body(&poll()), "C:1:INFO\n");
}

#[test]
fn results_map_back_to_operation_ids() {
    push("op-info-0123456789ab", CommandBody::GetDeviceInfo);
    push("op-del-0123456789abcdef0123456789ab", CommandBody::DeleteUser("5".into()));
    push("op-reboot", CommandBody::Reboot);
    assert_eq!(body(&poll()), "C:1:INFO\nC:2:DATA DELETE USERINFO PIN=5\nC:3:REBOOT\n");
    let reply = results(
        "ID=2&Return=-10&CMD=DATA\nID=1&Return=0&CMD=INFO\n~DeviceName=K40\nUserCount=3\nID=99&Return=0&CMD=DATA\nID=3&Return=0&CMD=REBOOT",
    );
    assert_eq!(body(&reply), "OK");
    assert_eq!(
        command_results(&reply),
        vec![
            ("op-del-0123456789abcdef0123456789ab".to_owned(), -10),
            ("op-info-0123456789ab".to_owned(), 0),
            ("op-reboot".to_owned(), 0),
        ]
    );
    let EventBody::CommandResult(info) = &reply.events[1] else { panic!() };
    assert!(info.details.contains(&("~DeviceName".to_owned(), "K40".to_owned())));
    assert!(testing::logs().iter().any(|l| l.message.contains("unknown command id") && l.field("id") == Some("99")));
}

#[test]
fn an_operation_sent_as_several_commands_gives_one_result() {
    let mut user = User::new("1");
    user.templates = vec![
        Template { kind: TemplateKind::Fingerprint, index: Some(0), data: "QUJD".into() },
        Template { kind: TemplateKind::Fingerprint, index: Some(1), data: "QUJD".into() },
    ];
    push("upsert", CommandBody::UpsertUser(user));
    assert_eq!(body(&poll()).lines().count(), 3);
    assert!(results("ID=1&Return=0&CMD=DATA\nID=2&Return=-9&CMD=DATA").events.is_empty());
    // A repeated confirmation counts once.
    assert!(results("ID=2&Return=-9&CMD=DATA").events.is_empty());
    let reply = results("ID=3&Return=0&CMD=DATA");
    assert_eq!(command_results(&reply), vec![("upsert".to_owned(), -9)]);
    let EventBody::CommandResult(r) = &reply.events[0] else { panic!() };
    assert!(r.details.contains(&("failed_id".to_owned(), "2".to_owned())));
    assert!(r.details.contains(&("parts".to_owned(), "3".to_owned())));
    assert!(results("ID=3&Return=0&CMD=DATA").events.is_empty());
}

#[test]
fn set_user_enabled_keeps_the_role_seen_in_uploads() {
    upload("OPERLOG", "1", "USER PIN=5\tName=Boss\tPri=14");
    push("block", CommandBody::SetUserEnabled(("5".into(), false)));
    push("unblock", CommandBody::SetUserEnabled(("5".into(), true)));
    assert_eq!(body(&poll()), "C:1:DATA UPDATE USERINFO PIN=5\tPri=15\nC:2:DATA UPDATE USERINFO PIN=5\tPri=14\n");
}

#[test]
fn poll_info_becomes_device_status_when_it_changes() {
    let info = "Ver 8.0.4.2-20230607,12,10,1452,192.168.1.201,10,7,12,3,111";
    let with_info = || call(0, request("GET", "/iclock/getrequest", &[("SN", SN), ("INFO", info)], b""));
    let reply = with_info();
    let [EventBody::DeviceStatus(status)] = reply.events.as_slice() else { panic!("{:?}", reply.events) };
    assert!(status.info.contains(&("users".to_owned(), "12".to_owned())));
    assert!(status.info.contains(&("ip".to_owned(), "192.168.1.201".to_owned())));
    assert!(with_info().events.is_empty());
}

// ---- paths and transports ------------------------------------------------------------

#[test]
fn paths_ping_and_unknown() {
    for path in ["/iclock/ping", "/ICLOCK/PING.ASPX"] {
        assert_eq!(body(&call(0, request("GET", path, &[("SN", SN)], b""))), "OK");
    }
    assert_eq!(body(&call(0, request("POST", "/iclock/devicecmd.aspx", &[("SN", SN)], b""))), "OK");
    let err = ZktecoAdms::handle_http(device(0), request("GET", "/iclock/registry", &[("SN", SN)], b""));
    assert!(matches!(err, Err(DialectError::BadRequest(m)) if m.contains("/iclock/registry")));
}

#[test]
fn mqtt_is_refused() {
    let err = ZktecoAdms::handle_mqtt(device(0), "t".into(), vec![]);
    assert!(matches!(err, Err(DialectError::BadRequest(m)) if m.contains("HTTP-only")));
    let command = Command { operation_id: "x".into(), body: CommandBody::Reboot };
    assert!(matches!(ZktecoAdms::encode_mqtt_command(device(0), command), Err(DialectError::BadRequest(_))));
}
