//! Fuzz target of the ADMS dialect (bolero), run natively against the SDK's in-memory
//! gateway: `cargo test -p zkteco-adms --test fuzz` runs a bounded random search,
//! `cargo xtask fuzz adms` runs it under libFuzzer (docs/reliability.md).
//!
//! An input is up to four requests separated by 0x1E, each `METHOD path?query`, a line
//! feed, then the body; two commands are queued first, so that polls and results reach
//! the command code.

use biogate_fuzz::bolero::check;
use biogate_fuzz::{ITERATIONS, seeded};
use biogate_sdk::prelude::*;
use biogate_sdk::testing;
use zkteco_adms::ZktecoAdms;

const SN: &str = "0316144680030";
/// 2024-11-26 05:21:00 UTC.
const NOW_MS: u64 = 1_732_598_460_000;
/// 9999-12-31 23:59:59 UTC plus a day: no device time is later.
const LATEST: i64 = 253_402_300_799 + 86_400;

/// Requests of /work/shared/reference/zkteco-adms-push.md and the dialect's tests.
const SEEDS: &[&[u8]] = &[
    b"GET /iclock/cdata?SN=0316144680030&options=all&pushver=2.4.0&language=69\n",
    b"POST /iclock/cdata?SN=0316144680030&table=ATTLOG&Stamp=9999\n1452\t2015-07-30 15:16:28\t0\t1\t0\t0\t0\n\
      7\t2024-01-02 03:04:05\t255\t15\t\r\n88\t2021-06-01 08:00:00\t2\t15\t\t0\t0\t0\t36.6\t0\t0\t0\n",
    b"POST /iclock/cdata?SN=0316144680030&table=OPERLOG&Stamp=42\n\
      USER PIN=982\tName=Ann Lee\tPri=14\tPasswd=1234\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=0\tViceCard=\n\
      FP PIN=982\tFID=6\tSize=8\tValid=1\tTMP=TWljUzIx\nFACE PIN=982\tFID=0\tSIZE=8\tVALID=1\tTMP=AAAA/+==\n\
      USERPIC PIN=982\tFileName=982.jpg\tSize=8\tContent=/9j/4A==\nOPLOG 0\t0\t2024-01-01 08:00:00\t0\t0\t0\t0\n\
      USER PIN=5\tStartDatetime=2024-01-01 00:00:00\tEndDatetime=0\n",
    b"POST /iclock/cdata.aspx?sn=0316144680030&table=BIODATA\n\
      BIODATA Pin=3\tNo=0\tIndex=0\tValid=1\tDuress=0\tType=8\tMajorVer=5\tMinorVer=8\tFormat=0\tTmp=QUJD\n\
      BIOPHOTO PIN=982\tFileName=9-982.jpg\tType=9\tSize=8\tContent=/9j/4A==\n",
    b"POST /iclock/fdata?SN=0316144680030&table=ATTPHOTO\nPIN=20240101080000-7.jpg\nSN=0316144680030\nsize=4\n\
      CMD=uploadphoto\0\xff\xd8\xff\xe0",
    b"POST /iclock/cdata?SN=0316144680030&table=options\nFingerFunOn=1,FaceFunOn=1,~DeviceName=K40\n",
    b"GET /iclock/getrequest?SN=0316144680030&INFO=Ver 6.60,12,3,1000,192.168.1.201,10,7,15,3,111\n\x1e\
      POST /iclock/devicecmd?SN=0316144680030\nID=1&Return=0&CMD=DATA\r\nID=2&Return=-10&CMD=DATA\n\
      ID=3&Return=0&CMD=INFO\n~DeviceName=K40\nMAC=00:17:61:01:02:03\nUserCount=12\n",
    b"GET /iclock/ping?SN=0316144680030\n",
];

fn device() -> DeviceContext {
    DeviceContext { device_id: SN.into(), label: "fuzz".into(), utc_offset_minutes: 330 }
}

/// `METHOD path?query\nbody`; query pairs split on `&` and `=` (the gateway decodes them).
fn request(bytes: &[u8]) -> HttpRequest {
    let (line, body) = match bytes.iter().position(|b| *b == b'\n') {
        Some(lf) => (&bytes[..lf], &bytes[lf + 1..]),
        None => (bytes, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (method, target) = line.split_once(' ').unwrap_or(("GET", &line));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    HttpRequest { method: method.into(), path: path.into(), query, headers: vec![], body: body.to_vec() }
}

fn param<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Identification takes the SN as sent (trimmed) or refuses; a handled request gives an
/// HTTP status and well-formed events; an upload answers `OK: <n>`, where for `ATTLOG`
/// n is the number of punches it gave.
fn check_request(request: HttpRequest) {
    match ZktecoAdms::identify_http(request.clone()) {
        Ok(sn) => assert_eq!(Some(sn.as_str()), param(&request, "SN").map(str::trim)),
        Err(error) => assert!(matches!(error, DialectError::BadRequest(_)), "{error:?}"),
    }
    let reply = match ZktecoAdms::handle_http(device(), request.clone()) {
        Ok(reply) => reply,
        Err(error) => {
            assert!(matches!(error, DialectError::BadRequest(_)), "{error:?}");
            return;
        }
    };
    assert!((100..600).contains(&reply.status));
    let mut punches = 0;
    for event in &reply.events {
        match event {
            EventBody::Punch(p) => {
                punches += 1;
                assert!(!p.user_id.is_empty() && !p.user_id.chars().any(char::is_control), "{p:?}");
                assert!((-86_400..=LATEST).contains(&p.log_time.unix_seconds), "{p:?}");
                assert!(p.temperature.is_none_or(|t| (10.0..=50.0).contains(&t)), "{p:?}");
            }
            EventBody::UserUpdate(u) => assert!(!u.user.user_id.is_empty(), "{u:?}"),
            EventBody::CommandResult(r) => assert!(!r.operation_id.is_empty(), "{r:?}"),
            EventBody::DeviceStatus(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&reply.body);
    if let Some(n) = text.strip_prefix("OK: ") {
        let n: usize = n.parse().unwrap_or_else(|_| panic!("upload reply {text:?}"));
        if param(&request, "table").is_some_and(|t| t.trim().eq_ignore_ascii_case("ATTLOG")) {
            assert_eq!(n, punches, "{text}");
        }
    }
}

#[test]
fn fuzz_adms_request() {
    let seeds = SEEDS.iter().map(|s| s.to_vec()).collect();
    check!().with_generator(seeded(seeds)).with_iterations(ITERATIONS).for_each(|input| {
        testing::reset();
        testing::echo_logs(false);
        testing::set_now_ms(NOW_MS);
        let mut user = User::new("982");
        user.templates = vec![Template { kind: TemplateKind::Fingerprint, index: Some(6), data: "QUJD".into() }];
        testing::push_command(SN, Command { operation_id: "user-op".into(), body: CommandBody::UpsertUser(user) });
        testing::push_command(SN, Command { operation_id: "info-op".into(), body: CommandBody::GetDeviceInfo });
        for part in input.split(|b| *b == 0x1e).take(4) {
            check_request(request(part));
        }
    });
}
