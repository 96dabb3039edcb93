//! Routes ready to run, and their workers: one delivery worker per route and device,
//! started for devices with events at start-up and for each device the moment it
//! first sends.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::route::RouteConfig;
use super::worker::{self, WorkerContext};
use crate::store::{Device, StoreError};

/// A route ready to run: its transform chain, sink and retry schedule.
pub struct RouteRuntime {
    pub name: String,
    pub config: RouteConfig,
    pub chain: super::TransformChain,
    pub sink: super::sink::Sink,
    pub schedule: super::retry::RetrySchedule,
}

impl RouteRuntime {
    /// Whether this route takes `device`'s events.
    pub fn applies_to(&self, device: &crate::store::Device) -> bool {
        match &device.routes {
            Some(routes) => routes.iter().any(|r| r == &self.name),
            None => self.config.matches_device(&device.id),
        }
    }
}

/// The set of running workers.
pub struct Dispatcher {
    ctx: Arc<WorkerContext>,
    routes: Vec<Arc<RouteRuntime>>,
    running: Mutex<HashSet<(usize, String)>>,
}

impl Dispatcher {
    /// A dispatcher over these routes.
    pub fn new(ctx: Arc<WorkerContext>, routes: Vec<Arc<RouteRuntime>>) -> Self {
        Dispatcher { ctx, routes, running: Mutex::new(HashSet::new()) }
    }

    /// What the workers share (store handles, shutdown signal).
    pub fn context(&self) -> &WorkerContext {
        &self.ctx
    }

    /// The routes.
    pub fn routes(&self) -> &[Arc<RouteRuntime>] {
        &self.routes
    }

    /// Starts workers for every registered device that has events.
    pub fn start_existing(&self) -> Result<(), StoreError> {
        for id in self.ctx.journal.devices()? {
            if let Some(device) = self.ctx.registry.get(&id) {
                self.ensure(&device);
            }
        }
        Ok(())
    }

    /// Makes sure every route that takes `device`'s events has a worker for it.
    pub fn ensure(&self, device: &Device) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for (i, route) in self.routes.iter().enumerate() {
            if route.applies_to(device) && running.insert((i, device.id.clone())) {
                tokio::spawn(worker::run(self.ctx.clone(), route.clone(), device.id.clone()));
            }
        }
    }
}
