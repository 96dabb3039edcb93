//! One delivery worker per route and device: reads the device's journal in order from
//! the route's cursor, runs the transform chain once per event, hands the result to the
//! sink, retries with backoff (woken early when the route's receiver is back, see
//! `backoff`), dead-letters when attempts run out, makes the cursor durable, and moves
//! on. Replays requested by a Cams `Resend.PunchLog` go, on a route with `resend_batch`, as
//! `PunchLog` batch bodies. Workers are independent: one device's failing receiver never delays another
//! device. A worker stops once its route no longer takes the device's events (the
//! operator changed the device's routes, or deleted the device): it never delivers for a
//! detached route, and never delivers an encrypted device's events without the device's
//! key.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::backoff::{HeadRetry, Wake};
use super::cursor_commit::CursorCommit;
use super::route::RouteRuntime;
use super::sinks::{PostOutcome, PostReport};
use super::transform_chain::ChainOutcome;
use crate::cams::CallbackDevice;
use crate::cams::punch_log::punch_log_batch;
use crate::plugin::bindings::types::Event;
use crate::store::{Attempt, DeadLetter, DeliveryLog, Device, Journal, Registry, StoreError, Trigger};
use crate::time::now_ms;

/// What a worker needs.
pub struct WorkerContext {
    pub journal: Journal,
    pub log: DeliveryLog,
    pub registry: Registry,
    pub shutdown: watch::Receiver<bool>,
}

/// How an event ended on a route.
enum Settled {
    Delivered,
    DeadLettered,
    /// The route was disabled (410); the event stays undelivered.
    RouteDisabled,
    /// The route no longer takes the device's events; the event stays undelivered.
    Detached,
    /// The event belongs to an earlier registration of the device id (deleted, its
    /// journal purged).
    Purged,
    Shutdown,
}

/// The device of `device_id` if `route` still takes its events.
pub fn attached(ctx: &WorkerContext, route: &RouteRuntime, device_id: &str) -> Option<Arc<Device>> {
    ctx.registry.get(device_id).filter(|d| route.applies_to(d))
}

/// Runs until shutdown, or until the route no longer takes the device's events.
pub async fn run(ctx: Arc<WorkerContext>, route: Arc<RouteRuntime>, cursors: &CursorCommit, device: String) {
    if let Err(error) = run_inner(&ctx, &route, cursors, &device).await {
        tracing::error!(route = %route.name, device = %device, %error, "delivery worker stopped on a store error");
    }
}

/// How many journal events a worker reads at a time (its read-ahead; small, as 10,000
/// workers with a backlog each hold this many).
const READ_AHEAD: usize = 8;

async fn run_inner(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    cursors: &CursorCommit,
    device: &str,
) -> Result<(), StoreError> {
    let mut durable = ctx.journal.watch(device)?;
    let mut shutdown = ctx.shutdown.clone();
    // The registration whose events this worker delivers: a device deleted and registered
    // again under the same id (another owner, another key) must not get the old one's
    // events, which were purged from the journal (this worker may hold some read ahead).
    let Some(registration) = attached(ctx, route, device).map(|d| d.created_at_ms) else {
        return Ok(());
    };
    // This worker is the only writer of its cursor while it runs.
    let mut cursor = ctx.log.cursor(&route.name, device)?;
    let mut ahead: VecDeque<Event> = VecDeque::with_capacity(READ_AHEAD);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match attached(ctx, route, device) {
            None => {
                tracing::info!(route = %route.name, device, "the route no longer takes this device's events; its worker stops");
                return Ok(());
            }
            // Registered again: a fresh worker (the supervisor starts one) reads afresh.
            Some(d) if d.created_at_ms != registration => return Ok(()),
            Some(_) => {}
        }
        if ctx.log.route_disabled(&route.name)?.is_some() {
            ahead.clear();
            if sleep_or_shutdown(&mut shutdown, Duration::from_secs(1)).await {
                return Ok(());
            }
            continue;
        }
        if ahead.is_empty() {
            // Replays first (an operator asked for them), then the journal in order. On a
            // route that batches resends, a run of Resend.PunchLog replays goes as one body.
            let batch = match route.resend_batch() {
                0 => Vec::new(),
                max => ctx.log.next_resends(&route.name, device, max)?,
            };
            if !batch.is_empty() {
                let mut events = Vec::with_capacity(batch.len());
                for seq in &batch {
                    events.extend(ctx.journal.get(device, *seq)?);
                }
                match deliver_batch(ctx, route, &events, registration).await? {
                    Settled::Shutdown | Settled::Detached => return Ok(()),
                    _ => {}
                }
                for seq in batch {
                    ctx.log.finish_replay(&route.name, device, seq)?;
                }
                continue;
            }
            if let Some(seq) = ctx.log.next_replay(&route.name, device)? {
                if let Some(event) = ctx.journal.get(device, seq)? {
                    match deliver(ctx, route, &event, Trigger::Replay, registration).await? {
                        Settled::Shutdown | Settled::Detached => return Ok(()),
                        _ => {}
                    }
                }
                ctx.log.finish_replay(&route.name, device, seq)?;
                continue;
            }
            let upto = *durable.borrow_and_update();
            ahead.extend(ctx.journal.read(device, cursor, upto, READ_AHEAD)?);
        }
        let Some(event) = ahead.pop_front() else {
            tokio::select! {
                changed = durable.changed() => if changed.is_err() { return Ok(()) },
                _ = shutdown.changed() => {},
                // Replays are requested through the store; look for them now and then.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {},
            }
            continue;
        };
        match deliver(ctx, route, &event, Trigger::Scheduled, registration).await? {
            Settled::Delivered | Settled::DeadLettered => {
                // On disk before the next event's first attempt: after a crash, only the
                // event in flight (sent, or answered but not yet recorded) goes again.
                ctx.log.set_cursor(&route.name, device, event.sequence)?;
                cursor = event.sequence;
                cursors.durable().await?;
            }
            // The cursor stays: the next read skips what is gone.
            Settled::RouteDisabled | Settled::Purged => ahead.clear(),
            Settled::Shutdown | Settled::Detached => return Ok(()),
        }
    }
}

/// Delivers one journal event of the device's `registration` (its `created_at_ms`) on the
/// route, with retries.
async fn deliver(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    event: &Event,
    trigger: Trigger,
    registration: u64,
) -> Result<Settled, StoreError> {
    let mut attempt = 0u32;
    let mut shutdown = ctx.shutdown.clone();
    // The chain runs once per event (stateful plugins such as dedupe-window must not see
    // a retry as a repeat); the sink is retried with its output.
    // Without transforms the event itself goes out (no copy of it, its photo included).
    let outputs: std::borrow::Cow<'_, [Event]> = loop {
        let chain = route.chain.clone();
        if chain.is_empty() {
            break std::borrow::Cow::Borrowed(std::slice::from_ref(event));
        }
        let input = event.clone();
        let outcome = tokio::task::spawn_blocking(move || chain.apply(input))
            .await
            .unwrap_or_else(|e| ChainOutcome::DeadLetter { plugin: "<host>".into(), reason: e.to_string() });
        match outcome {
            ChainOutcome::Deliver(outputs) => break std::borrow::Cow::Owned(outputs),
            ChainOutcome::DeadLetter { plugin, reason } => {
                return dead_letter(ctx, route, event, format!("transform {plugin:?}: {reason}"));
            }
            ChainOutcome::Retry { plugin, reason } => {
                attempt += 1;
                tracing::info!(route = %route.name, event_id = %event.id, plugin, reason, "transform asked to retry");
                match route.schedule.delay_after(attempt, None) {
                    Some(delay) => {
                        if sleep_or_shutdown(&mut shutdown, delay).await {
                            return Ok(Settled::Shutdown);
                        }
                    }
                    None => {
                        return dead_letter(
                            ctx,
                            route,
                            event,
                            format!("transform {plugin:?} kept asking to retry: {reason}"),
                        );
                    }
                }
            }
        }
    };

    let health = &route.health;
    for output in outputs.iter() {
        let mut retry = HeadRetry::new(health);
        loop {
            // Looked up before every attempt: a retry may wait for hours, and the device
            // (its key, label, routes) may change or go meanwhile. A device deleted and
            // registered again under the same id (another owner, another key) must not
            // get the old registration's events: those were purged from the journal.
            let Some(device) = attached(ctx, route, &event.device_id) else {
                return Ok(Settled::Detached);
            };
            if device.created_at_ms != registration {
                return Ok(Settled::Purged);
            }
            let callback_device = CallbackDevice {
                device_id: event.device_id.clone(),
                label: Some(device.label.clone()).filter(|l| !l.is_empty()),
                auth_token: device.auth_token.clone(),
            };
            let cipher = device.cipher();
            let n = retry.attempt(health);
            let report = route.sink.send(output, &callback_device, cipher.as_ref()).await;
            record(ctx, route, event, output, n, &report, trigger)?;
            match report.outcome {
                PostOutcome::Delivered => {
                    health.answered();
                    break;
                }
                PostOutcome::Skipped => break,
                PostOutcome::Gone => {
                    health.answered();
                    let reason = format!("the receiver answered 410 Gone for event {}", output.id);
                    tracing::warn!(route = %route.name, %reason, "route disabled");
                    ctx.log.set_route_disabled(&route.name, Some(&reason))?;
                    return Ok(Settled::RouteDisabled);
                }
                PostOutcome::Abort => {
                    health.answered();
                    return dead_letter(
                        ctx,
                        route,
                        event,
                        "the receiver asked to stop retrying (webhook-delivery: abort-message)".into(),
                    );
                }
                PostOutcome::Retry { retry_after } => {
                    health.failed(retry_after);
                    let Some(delay) = retry.failed(health, &route.schedule, retry_after) else {
                        let reason = format!("{} attempts failed; last: {}", n, last_failure(&report));
                        return dead_letter(ctx, route, event, reason);
                    };
                    tracing::debug!(route = %route.name, event_id = %output.id, attempt = n, woken_by = ?retry.last(), ?delay, status = ?report.status, "delivery failed; retrying");
                    let wake = retry.wait(health, &mut shutdown).await;
                    if wake == Wake::Shutdown {
                        return Ok(Settled::Shutdown);
                    }
                    tracing::debug!(route = %route.name, event_id = %output.id, ?wake, "retrying");
                }
            }
        }
    }
    route.delivered.increment(1);
    Ok(Settled::Delivered)
}

/// Delivers replayed punches of the device's `registration` as one Cams `PunchLog` batch
/// body (`resend_batch`), with retries; each event gets the attempt in its log, and all are
/// dead-lettered together when the attempts run out. The `webhook-id` is the first event's
/// id, `.batch`, and the number of punches: the same for every attempt of this body.
async fn deliver_batch(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    events: &[Event],
    registration: u64,
) -> Result<Settled, StoreError> {
    let (Some(first), Some(sink)) = (events.first(), route.sink.callback()) else {
        return Ok(Settled::Delivered);
    };
    let id = format!("{}.batch{}", first.id, events.len());
    let health = &route.health;
    let mut shutdown = ctx.shutdown.clone();
    let mut retry = HeadRetry::new(health);
    loop {
        // Looked up before every attempt, as in `deliver`.
        let Some(device) = attached(ctx, route, &first.device_id) else {
            return Ok(Settled::Detached);
        };
        if device.created_at_ms != registration {
            return Ok(Settled::Purged);
        }
        let Some(body) = punch_log_batch(events, &device) else {
            return Ok(Settled::Delivered);
        };
        let cipher = device.cipher();
        let n = retry.attempt(health);
        let report = sink.post_json(&id, &first.device_id, body, cipher.as_ref()).await;
        for event in events {
            record(ctx, route, event, event, n, &report, Trigger::Replay)?;
        }
        match report.outcome {
            PostOutcome::Delivered | PostOutcome::Skipped => {
                health.answered();
                route.delivered.increment(events.len() as u64);
                return Ok(Settled::Delivered);
            }
            PostOutcome::Gone => {
                health.answered();
                let reason = format!("the receiver answered 410 Gone for the punch batch {id}");
                tracing::warn!(route = %route.name, %reason, "route disabled");
                ctx.log.set_route_disabled(&route.name, Some(&reason))?;
                return Ok(Settled::RouteDisabled);
            }
            PostOutcome::Abort => {
                health.answered();
                let reason = "the receiver asked to stop retrying (webhook-delivery: abort-message)";
                return dead_letter_all(ctx, route, events, reason);
            }
            PostOutcome::Retry { retry_after } => {
                health.failed(retry_after);
                let Some(delay) = retry.failed(health, &route.schedule, retry_after) else {
                    let reason = format!("{} attempts failed; last: {}", n, last_failure(&report));
                    return dead_letter_all(ctx, route, events, &reason);
                };
                tracing::debug!(route = %route.name, batch = %id, attempt = n, ?delay, status = ?report.status, "batch delivery failed; retrying");
                if retry.wait(health, &mut shutdown).await == Wake::Shutdown {
                    return Ok(Settled::Shutdown);
                }
            }
        }
    }
}

fn dead_letter_all(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    events: &[Event],
    reason: &str,
) -> Result<Settled, StoreError> {
    for event in events {
        dead_letter(ctx, route, event, reason.to_string())?;
    }
    Ok(Settled::DeadLettered)
}

fn last_failure(report: &PostReport) -> String {
    match report.status {
        Some(status) => format!("HTTP {status} {}", report.response),
        None => report.response.clone(),
    }
}

fn record(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    event: &Event,
    output: &Event,
    attempt: u32,
    report: &PostReport,
    trigger: Trigger,
) -> Result<(), StoreError> {
    if report.outcome == PostOutcome::Skipped {
        return Ok(());
    }
    ctx.log.record_attempt(&Attempt {
        event_id: output.id.clone(),
        route: route.name.clone(),
        device_id: event.device_id.clone(),
        sequence: event.sequence,
        attempt,
        at_ms: now_ms(),
        status: report.status,
        duration_ms: report.duration.as_millis() as u64,
        response: report.response.clone(),
        success: report.outcome == PostOutcome::Delivered,
        trigger,
    })
}

fn dead_letter(
    ctx: &WorkerContext,
    route: &RouteRuntime,
    event: &Event,
    reason: String,
) -> Result<Settled, StoreError> {
    tracing::warn!(route = %route.name, event_id = %event.id, device = %event.device_id, %reason, "event dead-lettered");
    route.dead_lettered.increment(1);
    ctx.log.dead_letter(&DeadLetter {
        event_id: event.id.clone(),
        route: route.name.clone(),
        device_id: event.device_id.clone(),
        sequence: event.sequence,
        reason,
        at_ms: now_ms(),
    })?;
    Ok(Settled::DeadLettered)
}

/// Sleeps; true when shutdown came first.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
