//! Routes ready to run, and their workers: one delivery worker per route and device,
//! started for devices with events at start-up and for each device the moment it
//! first sends (or a route is put on it). A worker whose route no longer takes the
//! device's events ends and leaves the running set.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::cursor_commit::CursorCommit;
use super::route::RouteRuntime;
use super::start;
use super::worker::{self, WorkerContext};
use crate::store::{Device, StoreError};

/// The set of running workers.
pub struct Dispatcher {
    ctx: Arc<WorkerContext>,
    routes: Vec<Arc<RouteRuntime>>,
    running: Arc<Mutex<Running>>,
    cursors: CursorCommit,
}

/// Running workers by (route index, device), with the handle that stops each.
type Running = HashMap<(usize, String), tokio::task::AbortHandle>;

impl Dispatcher {
    /// A dispatcher over these routes. Call inside a tokio runtime.
    pub fn new(ctx: Arc<WorkerContext>, routes: Vec<Arc<RouteRuntime>>) -> Self {
        let cursors = CursorCommit::start(ctx.journal.clone());
        Dispatcher { ctx, routes, running: Arc::default(), cursors }
    }

    /// What the workers share (store handles, shutdown signal).
    pub fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    /// The routes.
    pub fn routes(&self) -> &[Arc<RouteRuntime>] {
        &self.routes
    }

    /// Attaches the routes to the devices they take (see `start`), then starts workers for
    /// every registered device that has events.
    pub fn start_existing(&self) -> Result<(), StoreError> {
        start::attach_at_start(&self.ctx, &self.routes)?;
        for id in self.ctx.journal.devices()? {
            if let Some(device) = self.ctx.registry.get(&id) {
                self.ensure(&device);
            }
        }
        Ok(())
    }

    /// An operator is changing `device` from `before` (`None`: a new registration) to
    /// `after`: the routes put on it start where their `start` says. Call before saving
    /// the change, then [`Dispatcher::ensure`] with the saved device.
    pub fn attach(&self, before: Option<&Device>, after: &Device) -> Result<(), StoreError> {
        start::attach_changed(&self.ctx, &self.routes, before, after)
    }

    /// Makes sure every route that takes `device`'s events has a worker for it.
    pub fn ensure(&self, device: &Device) {
        let mut running = lock(&self.running);
        for (i, route) in self.routes.iter().enumerate() {
            let key = (i, device.id.clone());
            if route.applies_to(device) && !running.contains_key(&key) {
                let (ctx, route, cursors) = (self.ctx.clone(), route.clone(), self.cursors.clone());
                let task = tokio::spawn(supervise(ctx, route, cursors, self.running.clone(), key.clone()));
                running.insert(key, task.abort_handle());
            }
        }
    }

    /// Stops every worker of `device` now (it is being deleted). A worker asleep in a
    /// retry backoff would otherwise hold its place for hours, so a device registered
    /// again under the id would get no worker, and it holds an event of the old one.
    pub fn stop_device(&self, device: &str) {
        lock(&self.running).retain(|(_, id), task| {
            if id == device {
                task.abort();
            }
            id != device
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the worker of `key` (route index, device) until it has nothing left to do: the
/// gateway shuts down or the route no longer takes the device's events. Deciding that
/// and leaving the running set happen under the set's lock, so a route put back on the
/// device meanwhile is never left without a worker. A worker stopped by a store error
/// starts again after a pause.
async fn supervise(
    ctx: Arc<WorkerContext>,
    route: Arc<RouteRuntime>,
    cursors: CursorCommit,
    running: Arc<Mutex<Running>>,
    key: (usize, String),
) {
    if let Err(error) = start::start_lazily(&ctx, &route, &key.1) {
        tracing::error!(route = %route.name, device = %key.1, %error, "keeping where the route starts on the device failed");
    }
    loop {
        worker::run(ctx.clone(), route.clone(), &cursors, key.1.clone()).await;
        {
            let mut running = lock(&running);
            if *ctx.shutdown.borrow() || worker::attached(&ctx, &route, &key.1).is_none() {
                running.remove(&key);
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
