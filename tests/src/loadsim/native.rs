//! A simulated native-protocol device (docs/device-protocol.md): two light tasks, one
//! uploading its punches when due (`POST /device/v1/events`, the punches that fell due
//! while a request was out go together, a failed upload is sent again unchanged), one
//! long-polling `GET /device/v1/commands` and confirming each command with a
//! `command_result` (return code 0). Connections come from the shared pools.
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::context::{Context, Stats};
use super::plan::{self, Protocol, TOKEN};

/// Starts device `index`; the tasks end when the run stops.
pub fn spawn(ctx: Arc<Context>, index: usize) {
    let id = plan::device_id(Protocol::Native, index);
    tokio::spawn(punch_loop(ctx.clone(), index, id.clone()));
    tokio::spawn(command_loop(ctx, index, id));
}

/// The body of an upload of punches `seqs`.
pub fn punch_body(epoch: u64, seqs: std::ops::Range<u64>) -> String {
    let events: Vec<_> = seqs
        .map(|seq| json!({"type": "punch", "user_id": plan::user_id(seq), "log_time": plan::log_time(epoch, seq), "punch_type": "CheckIn", "input_type": "Fingerprint"}))
        .collect();
    json!({ "events": events }).to_string()
}

async fn punch_loop(ctx: Arc<Context>, index: usize, id: String) {
    let url = format!("{}/device/v1/events?stgid={id}", ctx.base);
    let mut next = 0u64;
    loop {
        if !ctx.wait_due(index, next).await {
            return;
        }
        let seqs = ctx.due_now(index, next);
        if seqs.is_empty() {
            continue;
        }
        for seq in seqs.clone() {
            ctx.checker.sending(index, seq);
        }
        let body = punch_body(ctx.epoch, seqs.clone());
        loop {
            let sent = ctx
                .client(index)
                .post(&url)
                .bearer_auth(TOKEN)
                .body(body.clone())
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    if let Ok(reply) = response.json::<Reply>().await {
                        ctx.stats.punches_duplicate.fetch_add(reply.duplicates, std::sync::atomic::Ordering::Relaxed);
                    }
                    break;
                }
                _ => {
                    Stats::bump(&ctx.stats.upload_errors);
                    if !ctx.sleep(ctx.upload_retry).await {
                        return;
                    }
                }
            }
        }
        ctx.stats.punches_acked.fetch_add(seqs.end - seqs.start, std::sync::atomic::Ordering::Relaxed);
        next = seqs.end;
    }
}

/// The part of an upload's reply the device reads.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    duplicates: u64,
}

#[derive(Deserialize)]
struct Commands {
    #[serde(default)]
    commands: Vec<CommandHead>,
}

#[derive(Deserialize)]
struct CommandHead {
    operation_id: Option<String>,
}

async fn command_loop(ctx: Arc<Context>, index: usize, id: String) {
    let poll = format!("{}/device/v1/commands?stgid={id}&wait_ms={}", ctx.base, ctx.long_poll_ms);
    let events = format!("{}/device/v1/events?stgid={id}", ctx.base);
    let mut stop = ctx.stop.clone();
    while !ctx.stopped() {
        Stats::bump(&ctx.stats.polls);
        let request = ctx
            .client(index)
            .get(&poll)
            .bearer_auth(TOKEN)
            .timeout(Duration::from_millis(ctx.long_poll_ms + 30_000))
            .send();
        let reply = tokio::select! {
            r = request => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let commands = match reply {
            Ok(response) if response.status().is_success() => response.json::<Commands>().await.ok(),
            _ => None,
        };
        let Some(commands) = commands else {
            Stats::bump(&ctx.stats.poll_errors);
            if !ctx.sleep(Duration::from_secs(2)).await {
                return;
            }
            continue;
        };
        if commands.commands.is_empty() {
            continue;
        }
        let results: Vec<_> = commands
            .commands
            .iter()
            .filter_map(|c| c.operation_id.as_deref())
            .map(|op| json!({"type": "command_result", "operation_id": op, "return_code": 0, "details": {}}))
            .collect();
        ctx.stats.commands.fetch_add(commands.commands.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let body = json!({ "events": results }).to_string();
        for _ in 0..5 {
            match ctx.client(index).post(&events).bearer_auth(TOKEN).body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    ctx.stats.results.fetch_add(results.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                _ => {
                    Stats::bump(&ctx.stats.upload_errors);
                    if !ctx.sleep(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }
}
