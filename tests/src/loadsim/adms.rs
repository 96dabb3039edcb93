//! A simulated ZKTeco ADMS terminal, light enough for thousands: one task that does what
//! a terminal's push loop does, one thing at a time. It handshakes
//! (`GET /iclock/cdata?options=all`), uploads its punches in real time as ATTLOG lines
//! (`POST /iclock/cdata?table=ATTLOG`, the records that fell due meanwhile together, a
//! batch the server did not take with `OK: <n>` sent again), and polls
//! `GET /iclock/getrequest` every few seconds, confirming each `C:<id>:<command>` on
//! `POST /iclock/devicecmd` with `Return=0`. The full terminal (users, logs, quirks) is
//! [`crate::adms_device`]; this one keeps no state but its next punch number.
use std::sync::Arc;
use std::time::Duration;

use super::context::{Context, Stats};
use super::plan::{self, Protocol};
use crate::adms_device::protocol::{self, Command, PollLine, UploadReply};
use crate::adms_device::terminal::Punch;

/// Starts device `index`; its task ends when the run stops.
pub fn spawn(ctx: Arc<Context>, index: usize) {
    tokio::spawn(run(ctx, index));
}

/// An ATTLOG body of punches `seqs` (status 0, fingerprint).
pub fn attlog_body(epoch: u64, seqs: std::ops::Range<u64>) -> String {
    let mut body = String::new();
    for seq in seqs {
        body.push_str(&protocol::attlog_line(
            &Punch::new(&plan::user_id(seq), &plan::log_time(epoch, seq), 0, 1),
            false,
        ));
        body.push('\n');
    }
    body
}

async fn text(request: reqwest::RequestBuilder) -> Option<String> {
    let response = request.timeout(Duration::from_secs(60)).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

async fn run(ctx: Arc<Context>, index: usize) {
    let sn = plan::device_id(Protocol::Adms, index);
    let client = ctx.client(index);
    let base = &ctx.base;
    // Handshake, until the server answers.
    loop {
        let url = format!("{base}/iclock/cdata?SN={sn}&options=all&pushver=2.4.1&language=69");
        match text(client.get(url)).await {
            Some(reply) if reply.starts_with("GET OPTION FROM") => break,
            _ => {
                Stats::bump(&ctx.stats.poll_errors);
                if !ctx.sleep(Duration::from_secs(3)).await {
                    return;
                }
            }
        }
    }
    Stats::bump(&ctx.stats.connected);
    let upload = format!("{base}/iclock/cdata?SN={sn}&table=ATTLOG&Stamp=");
    let poll = format!("{base}/iclock/getrequest?SN={sn}");
    let confirm = format!("{base}/iclock/devicecmd?SN={sn}");
    // Polls spread over one interval, as terminals switched on at different times.
    let phase = ctx.adms_poll.mul_f64((index as f64 * 0.381_966_011_250_105).fract());
    let mut next_poll = tokio::time::Instant::now() + phase;
    let mut next = 0u64;
    loop {
        let punch_due = ctx.allows(index, next).then(|| tokio::time::Instant::from(ctx.schedule.due(index, next)));
        let wake = punch_due.map_or(next_poll, |p| p.min(next_poll));
        if !ctx.sleep_until(wake).await {
            return;
        }
        let seqs = ctx.due_now(index, next);
        if !seqs.is_empty() {
            for seq in seqs.clone() {
                ctx.checker.sending(index, seq);
            }
            let body = attlog_body(ctx.epoch, seqs.clone());
            let want = seqs.end - seqs.start;
            let reply = text(
                client
                    .post(format!("{upload}{}", seqs.end))
                    .header("Content-Type", "application/push;charset=UTF-8")
                    .body(body),
            )
            .await;
            if reply.as_deref().map(protocol::parse_upload_reply) == Some(UploadReply::Count(want)) {
                ctx.stats.punches_acked.fetch_add(want, std::sync::atomic::Ordering::Relaxed);
                next = seqs.end;
            } else {
                // Kept in the terminal's buffer: sent again at the next wake-up.
                Stats::bump(&ctx.stats.upload_errors);
                if !ctx.sleep(ctx.upload_retry).await {
                    return;
                }
            }
        }
        if tokio::time::Instant::now() >= next_poll {
            next_poll = (next_poll + ctx.adms_poll).max(tokio::time::Instant::now());
            Stats::bump(&ctx.stats.polls);
            let Some(reply) = text(client.get(&poll)).await else {
                Stats::bump(&ctx.stats.poll_errors);
                continue;
            };
            let lines: Vec<String> = protocol::parse_poll_reply(&reply)
                .into_iter()
                .filter_map(|line| match line {
                    PollLine::Command { id, text } => {
                        Some(protocol::result_line(&id, 0, &Command::parse(&text).result_name()))
                    }
                    PollLine::Ignored(_) => None,
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            ctx.stats.commands.fetch_add(lines.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if text(client.post(&confirm).body(lines.join("\n"))).await.is_some() {
                ctx.stats.results.fetch_add(lines.len() as u64, std::sync::atomic::Ordering::Relaxed);
            } else {
                Stats::bump(&ctx.stats.upload_errors);
            }
        }
    }
}
