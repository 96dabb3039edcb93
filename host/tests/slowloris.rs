//! Issue 17: a gateway on the open internet keeps serving devices that behave while
//! others hold connections open without finishing their requests. Against a real
//! `biogate` process over loopback: 1,100 half-sent requests from one address while a
//! device sends punches (started with the open-file soft limit at 1024, the usual
//! default, which the gateway raises to the hard limit); a client over the per-address
//! cap gets 503 with `Retry-After`; a body that stalls gets 408; a long poll the gateway
//! holds outlives the idle and header timeouts. No timed performance assertion: every
//! punch must get its 200 within a generous client timeout, and every held connection
//! must be closed by the gateway within its header timeout plus a margin.
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use biogate_e2e::gateway_process::{GatewayProcess, write_config};
use biogate_e2e::native_device::NativeDevice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_biogate");
const TOKEN: &str = "tok0123456789abcdef0123456789abc";
/// The default `server.header_timeout_ms`.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `server.max_connections_per_ip`.
const PER_IP: usize = 256;
/// A client's patience for one punch (the issue asks for 1 s; no timing here).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

fn config(dir: &Path, server: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{server}\n\
             [devices.D1]\nauth_token = \"{TOKEN}\"\ntime_zone = \"+05:30\"\n"
        ),
    )
}

/// A script starting the gateway with the open-file soft limit at 1024 (the common
/// default, under which 1,100 held connections exhaust the descriptors of a gateway
/// that does not raise it).
fn with_soft_limit_1024(dir: &Path) -> PathBuf {
    let path = dir.join("biogate-1024");
    std::fs::write(&path, format!("#!/bin/sh\nulimit -S -n 1024 2>/dev/null\nexec '{BIN}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Raises this test process's own open-file soft limit to its hard limit.
fn raise_own_open_file_limit(needed: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit of this process.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(limit.rlim_cur >= needed, "this test needs {needed} open files; the hard limit is {}", limit.rlim_cur);
}

fn address(gw: &GatewayProcess) -> SocketAddr {
    gw.base.strip_prefix("http://").and_then(|a| a.parse().ok()).expect("the gateway's address")
}

/// A connection to `to` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Reads until the gateway closes the connection (EOF or reset); what it sent.
async fn read_until_closed(mut stream: TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

fn log_time(i: usize) -> String {
    format!("2026-06-21 09:{:02}:{:02}", i / 60, i % 60)
}

/// 1,100 connections from 127.0.0.2 send half a request line or half their headers and
/// stall; meanwhile a device at 127.0.0.1 sends punches. Every punch gets 200, and every
/// stalled connection is closed by the gateway (those over the per-address cap at once,
/// the others when their header timeout runs out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_are_served_while_1100_half_sent_requests_are_held() {
    const STALLED: usize = 1100;
    raise_own_open_file_limit(STALLED as u64 + 512);
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(&with_soft_limit_1024(dir.path()), &config(dir.path(), ""));
    let to = address(&gw);

    // The gateway raised its soft limit to the hard limit.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.pid())).unwrap();
    let files: Vec<&str> =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_eq!(files[3], files[4], "soft open-file limit raised to the hard limit: {limits}");

    // A new connection for each punch: a kept-alive one would be served whatever the
    // listener does.
    let device = NativeDevice::connecting_each_time(&gw.base, "D1", TOKEN);
    let first = device.send(vec![NativeDevice::punch("1", &log_time(0), "CheckIn")]).await;
    assert_eq!(first.status, 200, "{:?}", first.body);

    let attacker: IpAddr = "127.0.0.2".parse().unwrap();
    let opened = Instant::now();
    let mut held = Vec::new();
    for i in 0..STALLED {
        let mut stream = connect_from(attacker, to).await.expect("connecting from 127.0.0.2");
        let half: &[u8] = if i % 2 == 0 {
            b"POST /device/v1/ev"
        } else {
            b"POST /device/v1/events?stgid=D1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"
        };
        // A write may fail on a connection the gateway already refused and closed.
        let _ = stream.write_all(half).await;
        held.push(tokio::spawn(async move {
            read_until_closed(stream).await;
            opened.elapsed()
        }));
    }

    // While they are held, the device keeps getting its punches answered.
    for i in 1..=20 {
        let punch = NativeDevice::punch("1", &log_time(i), "CheckIn");
        let answer = tokio::time::timeout(CLIENT_TIMEOUT, device.send(vec![punch]))
            .await
            .unwrap_or_else(|_| panic!("punch {i} not answered within {CLIENT_TIMEOUT:?} during the attack"));
        assert_eq!(answer.status, 200, "punch {i} during the attack: {:?}", answer.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every stalled connection is closed by the gateway, within the header timeout plus
    // a margin; at most the per-address cap were held that long.
    let margin = Duration::from_secs(10);
    let mut long_held = 0;
    for task in held {
        let lasted = tokio::time::timeout_at(opened + HEADER_TIMEOUT + margin, task)
            .await
            .expect("a stalled connection was not closed by the gateway within its header timeout + 10 s")
            .unwrap();
        if lasted >= HEADER_TIMEOUT / 2 {
            long_held += 1;
        }
    }
    assert!(long_held <= PER_IP, "{long_held} connections from one address were held, over the cap of {PER_IP}");

    let after = device.send(vec![NativeDevice::punch("1", &log_time(30), "CheckIn")]).await;
    assert_eq!(after.status, 200, "{:?}", after.body);
    assert_eq!(gw.stop(), Some(0), "graceful shutdown after the attack");
}

/// Over `max_connections_per_ip`, a new connection from that address gets 503 with
/// `Retry-After` and the JSON error body (Cams code 45); other addresses are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_per_address_cap_gets_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), "max_connections_per_ip = 4"));
    let to = address(&gw);
    let busy: IpAddr = "127.0.0.3".parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect_from(busy, to).await.unwrap());
    }
    // The gateway counts a connection when it accepts it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut over = connect_from(busy, to).await.unwrap();
    over.write_all(b"POST /device/v1/events?stgid=D1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::time::timeout(CLIENT_TIMEOUT, read_until_closed(over)).await.expect("a quick refusal");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("\r\nretry-after: 10\r\n"), "Retry-After of the header timeout: {answer}");
    assert!(answer.contains("\"StatusCode\":45") && answer.contains("API_RESPONSE_GATEWAY_BUSY"), "{answer}");

    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let punch = device.send(vec![NativeDevice::punch("1", &log_time(1), "CheckIn")]).await;
    assert_eq!(punch.status, 200, "another address is served: {:?}", punch.body);

    // When one of the four closes, the address is admitted again.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(busy, to).await.unwrap();
    again.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = tokio::time::timeout(CLIENT_TIMEOUT, read_until_closed(again)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    gw.stop();
}

/// A body that stops arriving gets 408 after `body_timeout_ms` and the connection is
/// closed; a long poll the gateway holds is cut by neither the idle nor the header
/// timeout, both shorter than it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_a_long_poll_outlives_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(
        Path::new(BIN),
        &config(dir.path(), "header_timeout_ms = 500\nbody_timeout_ms = 500\nidle_timeout_ms = 500"),
    );
    let to = address(&gw);

    let mut stalled = TcpStream::connect(to).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /device/v1/events?stgid=D1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"events\":["
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = tokio::time::timeout(CLIENT_TIMEOUT, read_until_closed(stalled)).await.expect("closed by the gateway");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // An idle connection is closed after the idle timeout.
    let idle = TcpStream::connect(to).await.unwrap();
    tokio::time::timeout(CLIENT_TIMEOUT, read_until_closed(idle)).await.expect("an idle connection is closed");

    // A 2 s command poll, four times the idle and header timeouts, is answered.
    let device = NativeDevice::new(&gw.base, "D1", TOKEN);
    let commands = device.poll_commands(2_000).await;
    assert_eq!(commands, Some(Vec::new()), "the long poll was answered (no commands), not cut");
    gw.stop();
}

/// A slowloris from many addresses fills the cap in all: a device is refused (503) at
/// first, and once 90% of `max_connections` are open the connections still waiting for
/// their request head run on the pressed header clock (3 s) instead of the configured one
/// (60 s here): the device, sending again as devices do, is served long before the
/// attackers' 60 s are up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_total_cap_stalled_connections_make_room_early() {
    const CAP: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let server = format!("header_timeout_ms = 60000\nmax_connections = {CAP}\nmax_connections_per_ip = {CAP}");
    let gw = GatewayProcess::start(Path::new(BIN), &config(dir.path(), &server));
    let to = address(&gw);
    let opened = Instant::now();
    let mut held = Vec::new();
    for i in 0..CAP {
        // From many addresses: 127.0.0.10 ... 127.0.0.109.
        let from: IpAddr = format!("127.0.0.{}", 10 + i).parse().unwrap();
        let mut stream = connect_from(from, to).await.expect("connecting");
        stream.write_all(b"POST /device/v1/events?stgid=D1 HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
        held.push(stream);
    }
    let device = NativeDevice::connecting_each_time(&gw.base, "D1", TOKEN);
    let first = device.send(vec![NativeDevice::punch("1", &log_time(0), "CheckIn")]).await;
    assert_eq!(first.status, 503, "the cap is full: {:?}", first.body);
    // Well within the attackers' 60 s header clock.
    let served_by = opened + Duration::from_secs(30);
    loop {
        let answer = device.send(vec![NativeDevice::punch("1", &log_time(1), "CheckIn")]).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 503, "{:?}", answer.body);
        assert!(Instant::now() < served_by, "the device was refused for 30 s of a 60 s header timeout");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(held);
}
