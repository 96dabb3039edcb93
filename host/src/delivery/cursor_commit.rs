//! Route cursors made durable in groups. A worker writes its cursor after each delivery
//! and waits for it to be on disk before it sends the next event (so a crash repeats only
//! what was in flight). The store's group commit already shares one flush among the
//! writers waiting at the same moment, but a flush takes a fraction of a millisecond, so
//! a thousand busy workers would still ask for thousands of flushes a second, each one
//! disk I/O (and, on a virtual machine, exits to the host). When the previous round
//! served several workers, this waits until [`GAP`] after the previous flush started
//! before the next one, so the workers that finish meanwhile share it: a busy gateway
//! flushes for its cursors at most about a thousand times a second. A lone worker is not
//! delayed.
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::store::{Journal, StoreError};

/// The shortest time between two flush starts while many workers wait.
pub const GAP: Duration = Duration::from_millis(1);

/// From this many workers in the previous round on, the next round waits for [`GAP`].
const BUSY: usize = 4;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Hands out durability for cursors, in groups.
#[derive(Clone)]
pub struct CursorCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl CursorCommit {
    /// Starts the grouping task (on the current tokio runtime) for the store of `journal`.
    pub fn start(journal: Journal) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(journal, rx));
        CursorCommit { tx }
    }

    /// Returns once everything this task wrote before the call (its cursor) is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::Flush("the cursor flusher has stopped".into());
        self.tx.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(StoreError::Flush)
    }
}

async fn run(journal: Journal, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut last_start = Instant::now();
    let mut last_round = 0usize;
    while let Some(first) = rx.recv().await {
        if last_round >= BUSY {
            tokio::time::sleep_until(last_start + GAP).await;
        }
        let mut waiters = vec![first];
        while let Ok(waiter) = rx.try_recv() {
            waiters.push(waiter);
        }
        last_start = Instant::now();
        last_round = waiters.len();
        let result = journal.durable().await.map_err(|e| e.to_string());
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}
