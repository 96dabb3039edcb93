//! Steady command traffic: `add_user` operations at a fixed rate through the REST API
//! (`POST /v1/devices/{id}/operations?wait_ms=`, which answers once the device confirmed),
//! spread over the fleet; records each operation's REST-to-confirmation latency by
//! protocol, and the operations that did not end `done`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::checker::Latency;
use super::context::Context;
use super::plan::{self, Mix, Protocol};

/// What the command traffic did.
#[derive(Default)]
pub struct CommandStats {
    latencies: Mutex<HashMap<Protocol, Vec<u32>>>,
    /// Operations submitted.
    pub submitted: AtomicU64,
    /// Operations that did not end `done` (expired, failed, refused, timed out).
    pub failed: AtomicU64,
    /// Operations whose REST call returned (done or not).
    pub completed: AtomicU64,
}

impl CommandStats {
    /// Latency percentiles of the confirmed operations of `protocol` (taken: the next call
    /// starts afresh).
    pub fn take(&self, protocol: Protocol) -> Latency {
        let mut samples =
            self.latencies.lock().unwrap_or_else(|p| p.into_inner()).remove(&protocol).unwrap_or_default();
        Latency::of_micros(&mut samples)
    }
}

/// Submits `per_second` add_user operations per second, device after device (a stride
/// that visits every device), until the run stops or `limit` were submitted. `admin_key`
/// authorises `/v1`.
pub fn spawn(
    ctx: Arc<Context>,
    mix: Mix,
    devices: usize,
    per_second: f64,
    limit: Option<u64>,
    admin_key: String,
) -> Arc<CommandStats> {
    let stats = Arc::new(CommandStats::default());
    if per_second <= 0.0 || devices == 0 {
        return stats;
    }
    let out = stats.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A stride coprime with the fleet size visits each device once per round.
        let stride = (0..).map(|k| 7919 + k).find(|s| gcd(*s, devices) == 1).unwrap_or(1);
        let mut n = 0usize;
        let mut stop = ctx.stop.clone();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if limit.is_some_and(|l| n as u64 >= l) {
                return;
            }
            let index = (n * stride) % devices;
            let protocol = mix.protocol(index);
            if protocol == Protocol::Mqtt && ctx.mqtt.is_none() {
                n += 1;
                continue;
            }
            let url = format!("{}/v1/devices/{}/operations?wait_ms=60000", ctx.base, plan::device_id(protocol, index));
            let body = json!({"type": "add_user", "user": {"user_id": format!("op{n}"), "first_name": "Load"}});
            let (ctx, stats, key) = (ctx.clone(), stats.clone(), admin_key.clone());
            stats.submitted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let start = Instant::now();
                let reply = ctx
                    .client(index)
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .timeout(Duration::from_secs(90))
                    .send()
                    .await;
                let done = match reply {
                    Ok(r) => r.json::<Value>().await.map(|v| v["state"] == "done").unwrap_or(false),
                    Err(_) => false,
                };
                if done {
                    let micros = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    stats.latencies.lock().unwrap_or_else(|p| p.into_inner()).entry(protocol).or_default().push(micros);
                } else {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
                stats.completed.fetch_add(1, Ordering::Relaxed);
            });
            n += 1;
        }
    });
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
