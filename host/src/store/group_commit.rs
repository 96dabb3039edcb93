//! Group commit: writers that need their writes on disk wait for one shared flush.
//!
//! A writer inserts into sled, then calls [`GroupCommit::durable`]. A dedicated flusher
//! thread takes every waiting writer, runs one `fsync`ing flush for all of them, and wakes
//! them together, so N concurrent writers cost one flush instead of N. When the last
//! handle is dropped the thread finishes and releases the database before the drop
//! returns (so the store can be reopened at once).
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

struct Flusher {
    tx: Option<mpsc::Sender<Waiter>>,
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

/// Handle to the flusher thread.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
    _flusher: Arc<Flusher>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub fn start(db: sled::Db) -> Self {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("biogate-group-commit".into())
            .spawn(move || {
                let mut waiting = Vec::new();
                while let Ok(first) = rx.recv() {
                    waiting.push(first);
                    waiting.extend(rx.try_iter());
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
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
        self.tx.send(tx).map_err(|_| "the flusher has stopped".to_string())?;
        rx.await.map_err(|_| "the flusher has stopped".to_string())?
    }
}
