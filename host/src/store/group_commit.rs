//! Group commit: writers that need their writes on disk wait for one shared flush.
//!
//! A dedicated committer thread takes every waiting writer at once, applies their sled
//! batches (if any) one after the other, then runs one `fsync`ing flush for all of them
//! and wakes them together, so N concurrent writers cost one flush instead of N.
//!
//! Why batches are applied here and not by the writers: in sled 0.34 `apply_batch` takes
//! the global concurrency-control write lock, and a flush holds the read side of that lock
//! for its whole I/O. A writer calling `apply_batch` on a tokio worker thread therefore
//! blocked that thread until the running flush finished (and, the lock being fair, every
//! other sled read queued behind it), so appends went through one per flush. Applying on
//! the committer thread, between flushes, never waits on a flush and lets every batch that
//! arrived during a flush share the next one.
//!
//! When the last handle is dropped the thread finishes and releases the database before
//! the drop returns (so the store can be reopened at once).
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<(), String>>;

/// One writer: an optional batch to apply first, and where to report durability (none
/// for a batch that only has to be applied).
struct Job {
    write: Option<(sled::Tree, sled::Batch, Reply)>,
    durable: Option<Reply>,
}

struct Flusher {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Handle to the committer thread.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
    _flusher: Arc<Flusher>,
}

fn stopped() -> String {
    "the flusher has stopped".to_string()
}

impl GroupCommit {
    /// Starts the committer thread for `db`. `data_file`, when given, is `fdatasync`ed
    /// after each flush (see `Store`).
    pub fn start(db: sled::Db, data_file: Option<Arc<std::fs::File>>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("biogate-group-commit".into())
            .spawn(move || {
                let mut waiting: Vec<Reply> = Vec::new();
                while let Ok(first) = rx.recv() {
                    let mut batches = 0usize;
                    for job in std::iter::once(first).chain(rx.try_iter()) {
                        if let Some((tree, batch, applied)) = job.write {
                            batches += 1;
                            let result = tree.apply_batch(batch).map_err(|e| e.to_string());
                            let failed = result.is_err();
                            let _ = applied.send(result);
                            if failed {
                                // The writer gives up on its applied error; nothing of it
                                // is waiting for the flush.
                                continue;
                            }
                        }
                        waiting.extend(job.durable);
                    }
                    if waiting.is_empty() {
                        continue;
                    }
                    let started = Instant::now();
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string()).and_then(|()| match &data_file {
                        Some(file) => file.sync_data().map_err(|e| format!("fdatasync: {e}")),
                        None => Ok(()),
                    });
                    metrics::histogram!("biogate_group_commit_flush_seconds").record(started.elapsed().as_secs_f64());
                    metrics::histogram!("biogate_group_commit_writers").record(waiting.len() as f64);
                    metrics::histogram!("biogate_group_commit_batches").record(batches as f64);
                    for waiter in waiting.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .expect("spawning the group-commit thread");
        let flusher = Flusher { tx: Some(tx.clone()), thread: Some(thread) };
        GroupCommit { tx, _flusher: Arc::new(flusher) }
    }

    /// Returns once everything this task wrote before the call is on disk.
    pub async fn durable(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Job { write: None, durable: Some(tx) }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Applies `batch` to `tree` atomically on the committer thread (between flushes) and
    /// returns once it is applied, without asking for a flush (it goes to disk with the
    /// next one). Not cancel-safe: a caller that must know whether the batch was applied
    /// runs this to completion (the journal runs it in its own task).
    pub async fn apply_only(&self, tree: sled::Tree, batch: sled::Batch) -> Result<(), String> {
        let (applied_tx, applied_rx) = oneshot::channel();
        self.tx.send(Job { write: Some((tree, batch, applied_tx)), durable: None }).map_err(|_| stopped())?;
        applied_rx.await.map_err(|_| stopped())?
    }
}
