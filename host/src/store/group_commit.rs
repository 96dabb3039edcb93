//! Group commit: writers that need their writes on disk wait for one shared flush.
//!
//! A writer inserts into sled, then calls [`GroupCommit::durable`]. A single flusher task
//! takes every waiting writer, runs one `fsync`ing flush for all of them, and wakes them
//! together, so N concurrent writers cost one flush instead of N.
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher for `db` on the current tokio runtime.
    pub fn start(db: sled::Db) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            while let Some(first) = rx.recv().await {
                waiting.push(first);
                while let Ok(more) = rx.try_recv() {
                    waiting.push(more);
                }
                let db = db.clone();
                let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                metrics::histogram!("biogate_group_commit_writers").record(waiting.len() as f64);
                for waiter in waiting.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        GroupCommit { tx }
    }

    /// Returns once everything this task wrote before the call is on disk.
    pub async fn durable(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .map_err(|_| "the flusher has stopped".to_string())?;
        rx.await
            .map_err(|_| "the flusher has stopped".to_string())?
    }
}
