//! Group commit: writers that need their writes on disk wait for one shared flush.
//!
//! A dedicated committer thread takes every waiting writer at once, applies their writes
//! (if any) as one sled batch, then runs one `fsync`ing flush for all of them
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
//! The index writes of every append waiting at once are applied as ONE sled batch: sled
//! 0.34 seals its current I/O buffer and writes it (on its I/O thread pool) for every
//! `apply_batch`, so one batch per append cost a log write per punch under single-punch
//! load, where one per group costs a write per group.
//!
//! When the last handle is dropped the thread finishes and releases the database before
//! the drop returns (so the store can be reopened at once).
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<(), String>>;

/// Inserts for one tree, applied atomically with every other writer's waiting at the
/// same time (in the order they were sent: a later insert of a key wins).
#[derive(Debug, Default)]
pub struct Writes(Vec<(sled::IVec, sled::IVec)>);

impl Writes {
    /// Inserts `value` under `key` when the writes are applied.
    pub fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.0.push((key.into(), value.into()));
    }

    /// The writes as one sled batch.
    pub fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        self.add_to(&mut batch);
        batch
    }

    /// Adds the writes to `batch`.
    pub fn add_to(self, batch: &mut sled::Batch) {
        for (key, value) in self.0 {
            batch.insert(key, value);
        }
    }
}

/// One writer: optional writes to apply first, and where to report durability (none for
/// writes that only have to be applied).
struct Job {
    write: Option<(sled::Tree, Writes, Reply)>,
    durable: Option<Reply>,
}

/// Applies the writes of every job of a group: one sled batch per tree, then each
/// writer is told how its batch went. Returns the durability waiters of the jobs whose
/// writes (if any) were applied.
fn apply_group(jobs: impl Iterator<Item = Job>, waiting: &mut Vec<Reply>) -> usize {
    // Trees of one gateway are few (the journal's): a list, matched by name.
    let mut per_tree: Vec<(sled::Tree, sled::Batch, Vec<Reply>, Vec<Reply>)> = Vec::new();
    let mut writers = 0;
    for job in jobs {
        let Some((tree, writes, applied)) = job.write else {
            waiting.extend(job.durable);
            continue;
        };
        writers += 1;
        let slot = match per_tree.iter().position(|(t, ..)| t.name() == tree.name()) {
            Some(i) => i,
            None => {
                per_tree.push((tree, sled::Batch::default(), Vec::new(), Vec::new()));
                per_tree.len() - 1
            }
        };
        let (_, batch, applied_replies, durable) = &mut per_tree[slot];
        writes.add_to(batch);
        applied_replies.push(applied);
        durable.extend(job.durable);
    }
    for (tree, batch, applied, durable) in per_tree {
        let started = Instant::now();
        let result = tree.apply_batch(batch).map_err(|e| e.to_string());
        metrics::histogram!("biogate_index_apply_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("biogate_index_apply_writers").record(applied.len() as f64);
        if result.is_ok() {
            // A writer that gets an error gives up: nothing of it waits for the flush.
            waiting.extend(durable);
        }
        for reply in applied {
            let _ = reply.send(result.clone());
        }
    }
    writers
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
                    let batches = apply_group(std::iter::once(first).chain(rx.try_iter()), &mut waiting);
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

    /// Applies `writes` to `tree` atomically on the committer thread (between flushes, in
    /// one batch with the other writers waiting then) and returns once they are applied,
    /// without asking for a flush (they go to disk with the next one). Not cancel-safe: a
    /// caller that must know whether the writes were applied runs this to completion (the
    /// journal runs it in its own task).
    pub async fn apply_only(&self, tree: sled::Tree, writes: Writes) -> Result<(), String> {
        let (applied_tx, applied_rx) = oneshot::channel();
        self.tx.send(Job { write: Some((tree, writes, applied_tx)), durable: None }).map_err(|_| stopped())?;
        applied_rx.await.map_err(|_| stopped())?
    }
}
