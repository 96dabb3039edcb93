//! Where a route starts on a device. A route that has never taken a device's events
//! starts, by default (`start = "now"`), after the device's last stored event at the
//! moment the route is attached to it, so a route added to devices with 30 days of history
//! receives what they send from then on, not the 30 days; `start = "oldest"` opts into a
//! backfill of the retained journal.
//!
//! The moment is kept in the store as the route's cursor for the device (a route with a
//! cursor there is never moved by this module: restarts, and a route taken off a device
//! and put back, resume where it stopped). The cursor is started:
//! - when the gateway starts, before any worker runs, for every registered device each
//!   route takes ([`attach_at_start`]): a route new to the store, or a device new to a
//!   route's `devices`, starts at its starting point. A device registered while the
//!   gateway ran since the route's last start (a POST, an auto-registration), and not yet
//!   started by its first event, is taken from its first event: the route took it from
//!   its registration on;
//! - when an operator puts the route on a device ([`attach_changed`], `PATCH
//!   /v1/devices/{id}`), before the change is saved, so the device's next event is
//!   already the route's;
//! - when a device registered while the gateway runs first sends ([`start_lazily`]): its
//!   events are all new, the route delivers from its first.
//!
//! A route renamed is a new route. Replays are requests for given events and do not
//! depend on the start. A store written by an earlier version has no route records: at
//! the first start of this version on it, every configured route keeps that version's
//! behaviour (each device from its oldest event), so a route that still owes events is
//! never moved past them.
use std::sync::Arc;

use super::route::{RouteRuntime, StartAt};
use super::worker::WorkerContext;
use crate::store::{Device, RouteRecord, StoreError};
use crate::time::now_ms;

/// Where `route` starts on `device_id` when attached to it now.
fn starting_point(ctx: &WorkerContext, route: &RouteRuntime, device_id: &str) -> Result<u64, StoreError> {
    Ok(match route.config.start {
        StartAt::Now => ctx.journal.last_seq(device_id)?,
        StartAt::Oldest => 0,
    })
}

/// At the gateway's start, before any worker runs: starts the cursor of every route on
/// every registered device it takes and has no cursor for, and keeps each route's
/// record. Durable when it returns.
pub fn attach_at_start(ctx: &WorkerContext, routes: &[Arc<RouteRuntime>]) -> Result<(), StoreError> {
    let earlier_version = !ctx.log.keeps_route_records()? && !ctx.journal.devices()?.is_empty();
    if earlier_version {
        tracing::info!(
            "first start on a store of an earlier version: every configured route keeps delivering each device from its oldest undelivered event"
        );
    }
    let now = now_ms();
    let devices = ctx.registry.list();
    for route in routes {
        let record = ctx.log.route_record(&route.name)?;
        let mut started = 0usize;
        for device in devices.iter().filter(|d| route.applies_to(d)) {
            if ctx.log.has_cursor(&route.name, &device.id)? {
                continue;
            }
            let at = match record {
                _ if earlier_version => 0,
                // Registered since the route's last start, with the route taking it: every
                // event it has came after the route was attached.
                Some(r) if device.created_at_ms > r.attached_ms => 0,
                _ => starting_point(ctx, route, &device.id)?,
            };
            if ctx.log.start_cursor(&route.name, &device.id, at)? {
                started += 1;
            }
        }
        if started > 0 {
            tracing::info!(route = %route.name, devices = started, start = ?route.config.start, new_route = record.is_none(), "route attached to devices");
        }
        let created_ms = record.map_or(now, |r| r.created_ms);
        ctx.log.set_route_record(&route.name, &RouteRecord { created_ms, attached_ms: now })?;
    }
    ctx.log.keep_route_records()?;
    ctx.log.flush()
}

/// An operator is changing `device` from `before` to `after`: every route that takes
/// `after`'s events and did not take `before`'s starts at its starting point, unless it
/// has a cursor there already (put back, it resumes where it stopped). Call before saving
/// the change. Durable when it returns.
pub fn attach_changed(
    ctx: &WorkerContext,
    routes: &[Arc<RouteRuntime>],
    before: Option<&Device>,
    after: &Device,
) -> Result<(), StoreError> {
    let mut started = false;
    for route in routes.iter().filter(|r| r.applies_to(after) && !before.is_some_and(|b| r.applies_to(b))) {
        let at = starting_point(ctx, route, &after.id)?;
        if ctx.log.start_cursor(&route.name, &after.id, at)? {
            tracing::info!(route = %route.name, device = %after.id, after_sequence = at, "route put on a device");
            started = true;
        }
    }
    if started {
        ctx.log.flush()?;
    }
    Ok(())
}

/// A worker of `route` starts for `device_id` and the route has no cursor there: the
/// device was registered while the gateway runs (every other case was started by
/// [`attach_at_start`] or [`attach_changed`]), so its events are all new to the route.
pub fn start_lazily(ctx: &WorkerContext, route: &RouteRuntime, device_id: &str) -> Result<(), StoreError> {
    ctx.log.start_cursor(&route.name, device_id, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use tokio::sync::watch;

    use super::*;
    use crate::delivery::RouteConfig;
    use crate::plugin::bindings::types::EventBody;
    use crate::store::{DeviceChanges, Store};

    fn punch(t: i64) -> EventBody {
        crate::plugin::bindings::test_punch("7", t)
    }

    fn route(ctx: &WorkerContext, name: &str, extra: &str) -> Arc<RouteRuntime> {
        let text = format!(
            "allow_private_networks = true\n{extra}\nsink = {{ type = \"callback\", url = \"http://127.0.0.1:9/cb\" }}\n"
        );
        let config: RouteConfig = toml::from_str(&text).expect("route config");
        Arc::new(config.build(name, &BTreeMap::new(), &ctx.log).expect("route"))
    }

    fn context(store: &Store) -> WorkerContext {
        let (_stop, shutdown) = watch::channel(false);
        WorkerContext {
            journal: store.journal().unwrap(),
            log: store.delivery_log().unwrap(),
            registry: store.registry().unwrap(),
            shutdown,
        }
    }

    async fn device_with_history(ctx: &WorkerContext, id: &str, events: i64) -> Device {
        let device = DeviceChanges::default().apply(id, None, &[]).expect("device");
        ctx.registry.put(device.clone()).expect("register");
        for t in 0..events {
            ctx.journal.append(id, vec![punch(t)], 1).await.expect("append");
        }
        device
    }

    /// A new route starts after each device's history ("now") or before it ("oldest");
    /// a route with cursors is left alone at the next start.
    #[tokio::test]
    async fn new_routes_start_at_now_or_oldest_and_existing_ones_stay() {
        let store = Store::temporary().unwrap();
        let ctx = context(&store);
        ctx.log.keep_route_records().unwrap(); // a store of this version
        device_with_history(&ctx, "D1", 3).await;
        let (now, oldest) = (route(&ctx, "now", ""), route(&ctx, "oldest", "start = \"oldest\""));
        attach_at_start(&ctx, &[now.clone(), oldest.clone()]).unwrap();
        assert_eq!(ctx.log.cursor("now", "D1").unwrap(), 3);
        assert_eq!(ctx.log.cursor("oldest", "D1").unwrap(), 0);
        assert!(ctx.log.has_cursor("oldest", "D1").unwrap());
        // Delivery moved "oldest" on; more events came; a restart moves nothing.
        ctx.log.set_cursor("oldest", "D1", 1).unwrap();
        ctx.journal.append("D1", vec![punch(10)], 1).await.unwrap();
        attach_at_start(&ctx, &[now, oldest]).unwrap();
        assert_eq!(ctx.log.cursor("now", "D1").unwrap(), 3);
        assert_eq!(ctx.log.cursor("oldest", "D1").unwrap(), 1);
    }

    /// On a store of an earlier version (history, no route records), every configured
    /// route keeps delivering from the oldest event: nothing an existing route owes is
    /// skipped.
    #[tokio::test]
    async fn routes_of_an_earlier_version_keep_what_they_owe() {
        let store = Store::temporary().unwrap();
        let ctx = context(&store);
        device_with_history(&ctx, "D1", 3).await;
        let hr = route(&ctx, "hr", "");
        attach_at_start(&ctx, std::slice::from_ref(&hr)).unwrap();
        assert_eq!(ctx.log.cursor("hr", "D1").unwrap(), 0);
        assert!(ctx.log.keeps_route_records().unwrap());
        // From then on, a route is new when the store has no record of it.
        let audit = route(&ctx, "audit", "");
        attach_at_start(&ctx, &[hr, audit]).unwrap();
        assert_eq!(ctx.log.cursor("audit", "D1").unwrap(), 3);
    }

    /// A device registered while the gateway ran (after the route's last start) and not
    /// started by its first event yet is taken from its first event; a device added to a
    /// route's devices at a restart starts at now; a PATCH starts only the routes it
    /// puts on the device.
    #[tokio::test]
    async fn devices_registered_at_run_time_and_routes_put_on_devices() {
        let store = Store::temporary().unwrap();
        let ctx = context(&store);
        ctx.log.keep_route_records().unwrap();
        let old = device_with_history(&ctx, "OLD", 2).await;
        let hr = route(&ctx, "hr", "devices = [\"NEW\"]");
        attach_at_start(&ctx, std::slice::from_ref(&hr)).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        device_with_history(&ctx, "NEW", 2).await;
        // The route now takes OLD too (the operator changed its devices).
        let hr = route(&ctx, "hr", "devices = [\"NEW\", \"OLD\"]");
        attach_at_start(&ctx, std::slice::from_ref(&hr)).unwrap();
        assert_eq!(ctx.log.cursor("hr", "NEW").unwrap(), 0, "registered after the route: from its first event");
        assert_eq!(ctx.log.cursor("hr", "OLD").unwrap(), 2, "newly in the route's devices: from now");

        let audit = route(&ctx, "audit", "devices = []");
        let mut after = old.clone();
        after.routes = Some(vec!["hr".into(), "audit".into()]);
        ctx.journal.append("OLD", vec![punch(5)], 1).await.unwrap();
        ctx.log.set_cursor("hr", "OLD", 2).unwrap();
        attach_changed(&ctx, &[hr.clone(), audit.clone()], Some(&old), &after).unwrap();
        assert_eq!(ctx.log.cursor("audit", "OLD").unwrap(), 3, "put on the device: from now");
        assert_eq!(ctx.log.cursor("hr", "OLD").unwrap(), 2, "already on it: untouched");
    }
}
