//! The device against a scripted fake ADMS server on loopback.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::IntoResponse;

use super::*;

/// A request the fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: String,
}

struct Script {
    options: String,
    handshake_status: u16,
    date: &'static str,
    replies: VecDeque<String>,
    cdata_status: u16,
    /// `None`: `OK: <lines>`.
    cdata_reply: Option<String>,
    devicecmd_status: u16,
    aspx_only: bool,
    seen: Vec<Seen>,
}

#[derive(Clone)]
struct FakeServer {
    base: String,
    script: Arc<Mutex<Script>>,
}

const OPTIONS: &str = "GET OPTION FROM: SN1\nATTLOGStamp=None\nOPERLOGStamp=None\nErrorDelay=30\nDelay=10\nTransTimes=00:00;14:05\nTransInterval=1\nTransFlag=TransData AttLog\tOpLog\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic\nTimeZone=330\nRealtime=1\nEncrypt=None\nPushProtVer=2.4.1\n";

async fn answer(
    script: axum::extract::State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    body: String,
) -> axum::response::Response {
    let mut script = script.lock().unwrap();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    script.seen.push(Seen { method: method.clone(), path: path.clone(), query: query.clone(), body: body.clone() });
    let endpoint = match path.strip_suffix(".aspx") {
        Some(endpoint) => endpoint.to_string(),
        None if script.aspx_only => return StatusCode::NOT_FOUND.into_response(),
        None => path.clone(),
    };
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    let date = [(header::DATE, script.date)];
    match (method, endpoint.as_str()) {
        (Method::GET, "/iclock/cdata") if query.contains("options=all") => {
            (status(script.handshake_status), date, script.options.clone()).into_response()
        }
        (Method::POST, "/iclock/cdata") => {
            let lines = body.lines().filter(|l| !l.is_empty()).count();
            let reply = script.cdata_reply.clone().unwrap_or_else(|| format!("OK: {lines}"));
            (status(script.cdata_status), reply).into_response()
        }
        (Method::GET, "/iclock/getrequest") => {
            let reply = script.replies.pop_front().unwrap_or_else(|| "OK".into());
            (StatusCode::OK, date, reply).into_response()
        }
        (Method::POST, "/iclock/devicecmd") => (status(script.devicecmd_status), "OK").into_response(),
        (Method::GET, "/iclock/ping") => (StatusCode::OK, "OK").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

impl FakeServer {
    async fn start() -> FakeServer {
        let script = Arc::new(Mutex::new(Script {
            options: OPTIONS.into(),
            handshake_status: 200,
            date: "Sun, 21 Jun 2026 03:32:14 GMT",
            replies: VecDeque::new(),
            cdata_status: 200,
            cdata_reply: None,
            devicecmd_status: 200,
            aspx_only: false,
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeServer { base: format!("http://{addr}"), script }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.script.lock().unwrap())
    }

    fn queue(&self, reply: &str) {
        self.with(|s| s.replies.push_back(reply.to_string()));
    }

    fn seen(&self, path_end: &str) -> Vec<Seen> {
        self.with(|s| s.seen.iter().filter(|r| r.path.ends_with(path_end)).cloned().collect())
    }

    fn uploads(&self, table: &str) -> Vec<Seen> {
        let table = format!("table={table}&");
        let cdata = |r: &Seen| r.path == "/iclock/cdata" || r.path == "/iclock/cdata.aspx";
        self.with(|s| {
            s.seen
                .iter()
                .filter(|r| cdata(r) && r.method == Method::POST && r.query.contains(&table))
                .cloned()
                .collect()
        })
    }
}

fn config() -> DeviceConfig {
    DeviceConfig::new("SN1")
}

#[tokio::test]
async fn the_handshake_sends_the_terminal_query_and_reads_options_and_clock() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    let options = device.handshake().await.expect("handshake");
    assert_eq!((options.delay(), options.error_delay(), options.time_zone()), (Some(10), Some(30), Some(330)));
    assert_eq!(options.date.as_deref(), Some("Sun, 21 Jun 2026 03:32:14 GMT"));
    assert_eq!(device.options(), Some(options));
    let seen = server.seen("/iclock/cdata");
    assert_eq!(seen[0].query, "SN=SN1&options=all&pushver=2.4.1&language=69");
    // 03:32:14 GMT + 5:30.
    assert!(device.device_time().starts_with("2026-06-21 09:02:1"), "{}", device.device_time());
    assert!(!device.is_polling());
}

#[tokio::test]
async fn a_refused_or_foreign_handshake_is_an_error() {
    let server = FakeServer::start().await;
    server.with(|s| s.handshake_status = 403);
    let device = AdmsDevice::new(&server.base, config());
    assert!(matches!(device.handshake().await, Err(AdmsError::Status { status: 403, .. })));
    server.with(|s| (s.handshake_status, s.options) = (200, "GET OPTION FROM: OTHER\nDelay=1".into()));
    assert!(matches!(device.handshake().await, Err(AdmsError::BadReply(_))));
    assert_eq!(device.options(), None);
    let offline = AdmsDevice::new("http://127.0.0.1:1", config());
    assert!(matches!(offline.handshake().await, Err(AdmsError::Unreachable(_))));
}

#[tokio::test]
async fn commands_are_executed_in_order_and_confirmed_in_one_body() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    server.queue(
        "C:1:DATA UPDATE USERINFO PIN=1\tName=Ann\tPri=14\tCard=123\nC:2:DATA UPDATE FINGERTMP PIN=1\tFID=0\tSize=8\tValid=1\tTMP=QUJDRA==\nC:3:DATA DELETE USERINFO PIN=99\nC:4:USER ADD PIN=2\nnot a command\nC:5:INFO\nC:6:SET OPTION Delay=5\n",
    );
    let done = device.poll_once().await.expect("poll");
    let codes: Vec<_> = done.iter().map(|c| (c.id.as_str(), c.code, c.confirmed)).collect();
    assert_eq!(
        codes,
        [("1", 0, true), ("2", 0, true), ("3", -10, true), ("4", -1002, true), ("5", 0, true), ("6", 0, true)]
    );
    let posts = server.seen("/iclock/devicecmd");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].query, "SN=SN1");
    let lines: Vec<&str> = posts[0].body.lines().collect();
    assert_eq!(
        &lines[..4],
        ["ID=1&Return=0&CMD=DATA", "ID=2&Return=0&CMD=DATA", "ID=3&Return=-10&CMD=DATA", "ID=4&Return=-1002&CMD=USER"]
    );
    assert_eq!(lines[4], "ID=5&Return=0&CMD=INFO");
    assert!(lines.contains(&"UserCount=1") && lines.contains(&"FPCount=1"), "{lines:?}");
    assert_eq!(lines.last(), Some(&"ID=6&Return=0&CMD=SET OPTION"));
    let user = device.user("1").expect("user 1");
    assert_eq!((user.name.as_str(), user.privilege, user.card.as_str()), ("Ann", 14, "123"));
    assert_eq!(user.fingerprint(0).map(|t| t.tmp.as_str()), Some("QUJDRA=="));
    assert_eq!(device.ignored_lines(), ["not a command"]);
    assert_eq!(device.set_options().get("Delay").map(String::as_str), Some("5"));

    // The first poll after a handshake carries INFO, the next ones do not.
    device.poll_once().await.expect("poll");
    let polls = server.seen("/iclock/getrequest");
    assert!(polls[0].query.starts_with("SN=SN1&INFO=Ver%208.0.4.7-20230615,0,0,0,127.0.0.1,"), "{}", polls[0].query);
    assert_eq!(polls[1].query, "SN=SN1");
    assert_eq!(server.seen("/iclock/devicecmd").len(), 1, "nothing to confirm on an empty poll");
}

#[tokio::test]
async fn queries_and_enrolments_upload_before_the_confirmation() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    device.preload_user(User::new("7", "Bo"));
    server.queue("C:q1:DATA QUERY USERINFO PIN=7\nC:q2:DATA QUERY USERINFO PIN=8\nC:e1:ENROLL_FP PIN=7\tFID=2\tRETRY=3\tOVERWRITE=0");
    device.poll_once().await.expect("poll");
    let order: Vec<(Method, String)> =
        server.with(|s| s.seen.iter().map(|r| (r.method.clone(), r.path.clone())).collect());
    let upload = order.iter().position(|(m, p)| m == Method::POST && p == "/iclock/cdata").unwrap();
    let confirm = order.iter().position(|(_, p)| p == "/iclock/devicecmd").unwrap();
    assert!(upload < confirm);
    let operlog = server.uploads("OPERLOG");
    assert_eq!(operlog.len(), 1);
    let lines: Vec<&str> = operlog[0].body.lines().collect();
    assert!(lines[0].starts_with("USER PIN=7\tName=Bo\tPri=0\t"), "{lines:?}");
    assert!(lines[1].starts_with("FP PIN=7\tFID=2\tSize="), "{lines:?}");
    assert_eq!(device.command("q2").map(|c| c.code), Some(-10));
    assert_eq!(device.command("e1").map(|c| c.code), Some(0));
    assert!(device.user("7").unwrap().fingerprint(2).is_some());
}

#[tokio::test]
async fn punches_wait_in_the_outbox_while_the_server_refuses_then_go_in_order() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    device.handshake().await.expect("handshake");
    server.with(|s| s.cdata_status = 503);
    for second in 1..=3 {
        let sent = device.punch("1", &format!("2026-06-21 09:00:0{second}"), 0, 1).await;
        assert_eq!((sent.delivered, sent.buffered), (0, second));
        assert!(!sent.attempts[0].delivered);
    }
    server.with(|s| (s.cdata_status, s.cdata_reply) = (200, Some("error: database is locked".into())));
    assert_eq!(device.flush().await.buffered, 3, "an error body is not an acknowledgement");
    server.with(|s| s.cdata_reply = None);
    let sent = device.punch("2", "2026-06-21 09:00:04", 1, 4).await;
    assert_eq!((sent.delivered, sent.buffered, sent.accepted()), (4, 0, Some(4)));
    let last = server.uploads("ATTLOG").pop().unwrap();
    assert_eq!(
        last.body,
        "1\t2026-06-21 09:00:01\t0\t1\t0\t0\t0\t0\t0\n1\t2026-06-21 09:00:02\t0\t1\t0\t0\t0\t0\t0\n1\t2026-06-21 09:00:03\t0\t1\t0\t0\t0\t0\t0\n2\t2026-06-21 09:00:04\t1\t4\t0\t0\t0\t0\t0\n"
    );
    assert_eq!(last.query, "SN=SN1&table=ATTLOG&Stamp=4");
    assert_eq!(device.outbox_len(), 0);
}

#[tokio::test]
async fn a_terminal_that_never_reached_the_server_keeps_everything() {
    let device = AdmsDevice::new("http://127.0.0.1:1", config());
    let sent = device.punch("1", "2026-06-21 09:02:14", 0, 1).await;
    assert_eq!((sent.delivered, sent.buffered), (0, 1));
    assert!(sent.attempts.is_empty(), "no upload before a handshake");
    assert!(device.poll_once().await.is_err());
    assert_eq!(device.outbox(), [(Table::Attlog, "1\t2026-06-21 09:02:14\t0\t1\t0\t0\t0\t0\t0".to_string())]);
}

#[tokio::test]
async fn batches_are_cut_at_the_batch_size_and_at_table_changes() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config().batch_size(2));
    device.handshake().await.unwrap();
    server.with(|s| s.cdata_status = 500);
    for i in 0..3 {
        device.punch(&i.to_string(), "2026-06-21 09:02:14", 0, 1).await;
    }
    device.enroll_user(User::new("9", "Cy")).await;
    device.punch("9", "2026-06-21 09:05:00", 0, 1).await;
    server.with(|s| s.cdata_status = 200);
    let sent = device.flush().await;
    let shape: Vec<_> = sent.attempts.iter().map(|a| (a.table, a.lines.len())).collect();
    assert_eq!(shape, [(Table::Attlog, 2), (Table::Attlog, 1), (Table::Operlog, 1), (Table::Attlog, 1)]);
    assert_eq!(sent.delivered, 5);
}

#[tokio::test]
async fn a_bare_ok_is_a_failure_only_under_the_quirk() {
    let server = FakeServer::start().await;
    server.with(|s| s.cdata_reply = Some("OK".into()));
    let plain = AdmsDevice::new(&server.base, config());
    plain.handshake().await.unwrap();
    assert_eq!(plain.punch("1", "2026-06-21 09:02:14", 0, 1).await.buffered, 0);

    let quirks = Quirks { bare_ok_is_failure: true, ..Quirks::default() };
    let strict = AdmsDevice::new(&server.base, config().quirks(quirks));
    strict.handshake().await.unwrap();
    assert_eq!(strict.punch("1", "2026-06-21 09:02:14", 0, 1).await.buffered, 1);
    assert_eq!(strict.flush().await.buffered, 1, "the same batch again");
    server.with(|s| s.cdata_reply = Some("OK: 1".into()));
    assert_eq!(strict.flush().await.buffered, 0);
    let sent: Vec<String> = server.uploads("ATTLOG").iter().map(|r| r.body.clone()).collect();
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|b| b == "1\t2026-06-21 09:02:14\t0\t1\t0\t0\t0\t0\t0\n"));
}

#[tokio::test]
async fn the_essl_quirks_use_aspx_paths_and_eight_field_lines() {
    let server = FakeServer::start().await;
    server.with(|s| s.aspx_only = true);
    let quirks = Quirks { aspx_paths: true, eight_field_attlog: true, ..Quirks::default() };
    let device =
        AdmsDevice::start_with(&server.base, config().quirks(quirks).poll_every(Duration::from_millis(20))).await;
    let sent = device.punch("5", "2026-06-21 09:02:14", 1, 1).await;
    assert_eq!(sent.buffered, 0);
    assert_eq!(server.uploads("ATTLOG")[0].body, "5\t2026-06-21 09:02:14\t255\t1\t0\t0\t0\t0\n");
    assert_eq!(device.attendance_log()[0].status, 255);
    server.queue("C:9:AC_UNLOCK");
    assert_eq!(device.wait_for_command("9").await.cmd, "AC_UNLOCK");
    device.stop().await;
    assert!(server.with(|s| s.seen.iter().all(|r| r.path.ends_with(".aspx"))));
    assert_eq!(server.seen("/iclock/devicecmd.aspx").len(), 1);
}

#[tokio::test]
async fn reboot_handshakes_again_drops_the_rest_and_resends_from_a_reset_stamp() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    device.handshake().await.unwrap();
    device.punch("1", "2026-06-21 09:00:01", 0, 1).await;
    device.punch("2", "2026-06-21 09:00:02", 0, 1).await;
    assert_eq!(server.uploads("ATTLOG").len(), 2);
    // The server keeps its stamps: after the reboot nothing goes again.
    server.with(|s| s.options = OPTIONS.replace("ATTLOGStamp=None", "ATTLOGStamp=2"));
    server.queue("C:r1:REBOOT\nC:x1:INFO");
    let done = device.poll_once().await.unwrap();
    assert_eq!(done.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert_eq!(device.ignored_lines(), ["C:x1:INFO"]);
    assert_eq!(device.handshakes(), 2);
    assert_eq!(server.seen("/iclock/devicecmd")[0].body, "ID=r1&Return=0&CMD=REBOOT\n");
    device.flush().await;
    assert_eq!(server.uploads("ATTLOG").len(), 2);
    // The server lost the second punch (stamp 1): CHECK makes the terminal send it again.
    server.with(|s| s.options = OPTIONS.replace("ATTLOGStamp=None", "ATTLOGStamp=1"));
    server.queue("C:c1:CHECK");
    device.poll_once().await.unwrap();
    device.flush().await;
    let uploads = server.uploads("ATTLOG");
    assert_eq!(uploads.len(), 3);
    assert_eq!(uploads[2].body, "2\t2026-06-21 09:00:02\t0\t1\t0\t0\t0\t0\t0\n");
    // A reset to None: everything again, oldest first.
    server.with(|s| s.options = OPTIONS.into());
    device.handshake().await.unwrap();
    let sent = device.flush().await;
    assert_eq!(sent.attempts.len(), 1);
    assert_eq!(sent.attempts[0].lines.len(), 2);
    assert!(sent.attempts[0].lines[0].starts_with("1\t"));
}

#[tokio::test]
async fn trans_flag_keeps_records_the_server_does_not_want() {
    let server = FakeServer::start().await;
    server.with(|s| s.options = "GET OPTION FROM: SN1\nTransFlag=TransData AttLog\n".into());
    let device = AdmsDevice::new(&server.base, config());
    device.handshake().await.unwrap();
    let sent = device.enroll_user(User::new("4", "Di")).await;
    assert_eq!((sent.delivered, sent.buffered), (0, 0));
    assert!(device.user("4").is_some());
    assert_eq!(device.punch("4", "2026-06-21 09:02:14", 0, 1).await.delivered, 1);
    // A query is an answer, not an automatic upload: it goes.
    server.queue("C:1:DATA QUERY USERINFO PIN=4");
    device.poll_once().await.unwrap();
    assert_eq!(server.uploads("OPERLOG").len(), 1);
}

#[tokio::test]
async fn data_query_attlog_uploads_the_range_again() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::new(&server.base, config());
    device.handshake().await.unwrap();
    for (pin, time) in [("1", "2026-06-20 09:00:00"), ("2", "2026-06-21 09:00:00"), ("3", "2026-06-21 18:00:00")] {
        device.punch(pin, time, 0, 1).await;
    }
    server.queue("C:a:DATA QUERY ATTLOG StartTime=2026-06-21 00:00:00\tEndTime=2026-06-21 23:59:59");
    device.poll_once().await.unwrap();
    let last = server.uploads("ATTLOG").pop().unwrap();
    assert_eq!(last.body.lines().map(|l| &l[..1]).collect::<Vec<_>>(), ["2", "3"]);
    assert_eq!(device.command("a").unwrap().code, 0);
}

#[tokio::test]
async fn results_the_server_refused_are_posted_again() {
    let server = FakeServer::start().await;
    server.with(|s| s.devicecmd_status = 500);
    let device = AdmsDevice::new(&server.base, config());
    server.queue("C:1:CLEAR LOG");
    assert!(device.poll_once().await.is_err());
    assert_eq!(device.command("1").map(|c| c.confirmed), Some(false));
    server.with(|s| s.devicecmd_status = 200);
    server.queue("C:2:CLEAR PHOTO");
    device.poll_once().await.unwrap();
    let bodies: Vec<String> = server.seen("/iclock/devicecmd").iter().map(|r| r.body.clone()).collect();
    assert_eq!(
        bodies,
        ["ID=1&Return=0&CMD=CLEAR_LOG\n", "ID=1&Return=0&CMD=CLEAR_LOG\n", "ID=2&Return=0&CMD=CLEAR PHOTO\n"]
    );
    assert!(device.command("1").unwrap().confirmed);
}

#[tokio::test]
async fn the_polling_loop_follows_the_delay_and_stops() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::start_with(&server.base, config().poll_every(Duration::from_millis(20))).await;
    assert!(device.is_polling());
    server.queue("C:u1:DATA UPDATE USERINFO PIN=5\tName=Ed");
    let done = device.wait_for_command("u1").await;
    assert_eq!((done.code, done.cmd.as_str()), (0, "DATA"));
    assert_eq!(device.user("5").unwrap().name, "Ed");
    device.stop().await;
    assert!(!device.is_polling());
    let polls = device.polls();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(device.polls(), polls);
    // Without an override the server's Delay (10 s) applies: one poll, then a long wait.
    let slow = AdmsDevice::start(&server.base, "SN1", Quirks::default()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while slow.polls() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(slow.polls(), 1);
    slow.stop().await;
}

#[tokio::test]
async fn the_loop_resends_the_outbox_once_the_server_answers_again() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::start_with(&server.base, config().poll_every(Duration::from_millis(20))).await;
    server.with(|s| s.cdata_status = 503);
    device.punch("1", "2026-06-21 09:02:14", 0, 1).await;
    device.punch("1", "2026-06-21 17:30:00", 1, 1).await;
    assert_eq!(device.outbox_len(), 2);
    server.with(|s| s.cdata_status = 200);
    device.wait_outbox_empty(Duration::from_secs(5)).await;
    device.stop().await;
    let delivered: Vec<_> = device.uploads().into_iter().filter(|u| u.delivered).collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].lines.len(), 2);
    assert!(delivered[0].lines[0].contains("09:02:14") && delivered[0].lines[1].contains("17:30:00"));
}

#[tokio::test]
async fn raw_bodies_and_pings_reach_the_server_as_is() {
    let server = FakeServer::start().await;
    server.with(|s| s.cdata_reply = Some("error: line 1".into()));
    let device = AdmsDevice::new(&server.base, config());
    let answer = device.send_raw_attlog("1\tnot a time\n\t\t\n").await;
    assert_eq!(answer, Answer { status: 200, body: "error: line 1".into() });
    assert_eq!(server.uploads("ATTLOG")[0].body, "1\tnot a time\n\t\t\n");
    assert_eq!(device.ping().await, Answer { status: 200, body: "OK".into() });
    assert_eq!(AdmsDevice::new("http://127.0.0.1:1", config()).send_raw_attlog("x").await.status, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_punch_reports_its_own_upload_while_the_loop_polls() {
    let server = FakeServer::start().await;
    let device = AdmsDevice::start_with(&server.base, config().poll_every(Duration::from_millis(1))).await;
    for i in 0..100 {
        let time = format!("2026-06-21 10:{:02}:{:02}", i / 60, i % 60);
        let sent = device.punch("1", &time, 0, 1).await;
        assert_eq!((sent.delivered, sent.buffered), (1, 0), "{i}: {sent:?}");
        assert!(sent.attempts[0].lines[0].contains(&time), "{i}: {sent:?}");
    }
    device.stop().await;
    assert_eq!(server.uploads("ATTLOG").len(), 100);
}
