//! Retention: prunes journal events older than `journal.retention_days`, but never an
//! event that some route taking the device has not yet delivered or dead-lettered.
use std::sync::Arc;
use std::time::Duration;

use super::dispatcher::Dispatcher;
use crate::store::StoreError;

/// How often the pruner runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prunes once; returns how many events were removed.
pub fn prune_once(dispatcher: &Dispatcher, retention: Duration) -> Result<usize, StoreError> {
    let ctx = dispatcher.context();
    let before_ms = crate::time::now_ms().saturating_sub(retention.as_millis() as u64);
    let mut removed = 0;
    for id in ctx.journal.devices()? {
        // What every route of the device has settled; a device no route takes (or no
        // longer registered) keeps nothing back.
        let mut upto = u64::MAX;
        if let Some(device) = ctx.registry.get(&id) {
            for route in dispatcher.routes().iter().filter(|r| r.applies_to(&device)) {
                upto = upto.min(ctx.log.cursor(&route.name, &id)?);
            }
        }
        removed += ctx.journal.prune(&id, before_ms, upto)?;
    }
    // The log segments no event still held is in (of pruned and purged devices alike).
    let released = ctx.journal.release_space()?;
    if released.segments > 0 {
        tracing::info!(segments = released.segments, bytes = released.bytes, "journal segments removed");
    }
    Ok(removed)
}

/// Runs [`prune_once`] every [`PRUNE_EVERY`] until shutdown.
pub async fn run(dispatcher: Arc<Dispatcher>, retention: Duration) {
    let mut shutdown = dispatcher.context().shutdown.clone();
    loop {
        let d = dispatcher.clone();
        match tokio::task::spawn_blocking(move || prune_once(&d, retention)).await {
            Ok(Ok(removed)) if removed > 0 => tracing::info!(removed, "pruned journal events past retention"),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "journal pruning failed"),
            Err(error) => tracing::error!(%error, "journal pruning panicked"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
