//! Group commit: writers that need their sled writes on disk wait for one shared flush.
//!
//! A dedicated committer thread takes every waiting writer at once, runs one `fsync`ing
//! flush for all of them and wakes them together, so N concurrent writers cost one flush
//! instead of N. (Events do not come through here: the event log has its own group
//! commit, and the journal inserts their index entries directly, see `journal::entries`.)
//!
//! When the last handle is dropped the thread finishes and releases the database before
//! the drop returns (so the store can be reopened at once).
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<(), String>>;

/// One writer waiting for the next flush.
type Job = Reply;

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
                    waiting.push(first);
                    waiting.extend(rx.try_iter());
                    let started = Instant::now();
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string()).and_then(|()| match &data_file {
                        Some(file) => file.sync_data().map_err(|e| format!("fdatasync: {e}")),
                        None => Ok(()),
                    });
                    metrics::histogram!("biogate_group_commit_flush_seconds").record(started.elapsed().as_secs_f64());
                    metrics::histogram!("biogate_group_commit_writers").record(waiting.len() as f64);
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
        self.tx.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}
