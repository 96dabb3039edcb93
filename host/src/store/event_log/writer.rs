//! The group-commit writer: one thread owns the last segment. Appenders hand it framed
//! batches; it takes every batch waiting (up to [`MAX_GROUP_BYTES`]), stamps their
//! checksums with the positions they get, writes them with one `pwrite` and makes them
//! durable with one `fdatasync`, then tells each appender where its records are. N
//! concurrent appenders cost one write and one sync, not N.
//!
//! It rolls to a new segment before a group that would take the current one past the
//! segment size (a group is never split across segments). A failed write is cut off
//! again (`ftruncate` to where the group started) and reported to the group's appenders;
//! a failed `fdatasync` stops all writing (what the kernel kept of the file is unknown
//! after it; the next open's recovery finds out), as does a failed cut.
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::error::LogError;
use super::record::stamp;
use super::segment::{Segment, file_name, sync_dir};
use super::state::LogState;

/// A group takes batches until it holds this many bytes (a larger batch goes alone).
pub(super) const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// Where a batch went: its first position, and the offsets of its records from there.
pub(super) struct Committed {
    pub at: u64,
    pub starts: Vec<usize>,
}

pub(super) type Reply = oneshot::Sender<Result<Committed, LogError>>;

/// One appender's batch.
pub(super) struct Job {
    pub frames: Vec<u8>,
    pub starts: Vec<usize>,
    pub reply: Reply,
}

/// The writer thread; dropping it lets the thread finish its queue and waits for it.
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Starts the writer on `tail`, the last segment.
    pub fn start(state: Arc<LogState>, tail: Arc<Segment>, segment_bytes: u64) -> Result<Writer, LogError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("biogate-event-log".into())
            .spawn(move || run(&state, tail, segment_bytes, rx))
            .map_err(LogError::io("starting the writer thread for", "the event log"))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread) })
    }

    pub fn submit(&self, job: Job) -> Result<(), LogError> {
        self.tx.as_ref().ok_or(LogError::Stopped)?.send(job).map_err(|_| LogError::Stopped)
    }
}

fn run(state: &LogState, mut tail: Arc<Segment>, segment_bytes: u64, rx: mpsc::Receiver<Job>) {
    let mut carried: Option<Job> = None;
    let mut poisoned: Option<String> = None;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut bytes = first.frames.len();
        let mut group = vec![first];
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) if bytes + job.frames.len() > MAX_GROUP_BYTES => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    bytes += job.frames.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        if let Some(reason) = &poisoned {
            for job in group {
                let _ = job.reply.send(Err(LogError::Poisoned(reason.clone())));
            }
            continue;
        }
        let started = Instant::now();
        let used = tail.end() - tail.base;
        if used > 0 && used + bytes as u64 > segment_bytes {
            match roll(state, &tail) {
                Ok(next) => tail = next,
                Err(e) => {
                    let reason = e.to_string();
                    for job in group {
                        let _ = job.reply.send(Err(LogError::Write(reason.clone())));
                    }
                    continue;
                }
            }
        }
        let at = tail.end();
        let mut end = at;
        for job in &mut group {
            stamp(&mut job.frames, &job.starts, end);
            end += job.frames.len() as u64;
        }
        let data = if let [job] = group.as_slice() {
            &job.frames[..]
        } else {
            buf.clear();
            for job in &group {
                buf.extend_from_slice(&job.frames);
            }
            &buf[..]
        };
        let written = tail.file.write_all_at(data, at - tail.base);
        let mut no_space = false;
        let result = match written {
            Ok(()) => match tail.file.sync_data() {
                Ok(()) => Ok(()),
                Err(e) => {
                    let reason = format!("fdatasync of {}: {e}", tail.path.display());
                    poisoned = Some(reason.clone());
                    Err(reason)
                }
            },
            Err(e) => {
                let reason = format!("writing {} bytes to {}: {e}", data.len(), tail.path.display());
                // Nothing of the group is acknowledged: cut what may have reached the file.
                if let Err(cut) = tail.file.set_len(at - tail.base) {
                    poisoned = Some(format!("{reason}; cutting it off again failed: {cut}"));
                }
                no_space = e.kind() == std::io::ErrorKind::StorageFull;
                Err(reason)
            }
        };
        if buf.capacity() > 2 * MAX_GROUP_BYTES {
            buf = Vec::new();
        }
        match result {
            Ok(()) => {
                tail.set_end(end);
                state.committed(end);
                metrics::histogram!("biogate_event_log_group_seconds").record(started.elapsed().as_secs_f64());
                metrics::histogram!("biogate_event_log_group_batches").record(group.len() as f64);
                metrics::histogram!("biogate_event_log_group_bytes").record(bytes as f64);
                let mut next = at;
                for job in group {
                    let committed = Committed { at: next, starts: job.starts };
                    next += job.frames.len() as u64;
                    let _ = job.reply.send(Ok(committed));
                }
            }
            Err(reason) => {
                metrics::counter!("biogate_event_log_write_errors_total").increment(1);
                for job in group {
                    let error =
                        if no_space { LogError::NoSpace(reason.clone()) } else { LogError::Write(reason.clone()) };
                    let _ = job.reply.send(Err(error));
                }
            }
        }
    }
}

/// Starts the next segment where `tail` ends. `tail` is durable already (every group is
/// synced before it is acknowledged); the new name is synced into the folder before any
/// record goes into the file.
fn roll(state: &LogState, tail: &Segment) -> Result<Arc<Segment>, LogError> {
    let base = tail.end();
    let path = state.dir.join(file_name(base));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(LogError::io("creating", &path))?;
    // A file left by a roll that failed after creating it is empty; anything else is not ours.
    let len = file.metadata().map_err(LogError::io("reading the size of", &path))?.len();
    if len != 0 {
        return Err(LogError::Invalid(format!("{} exists and is not empty", path.display())));
    }
    sync_dir(&state.dir)?;
    let segment = Arc::new(Segment::new(base, path, file, base));
    state.push_segment(segment.clone());
    Ok(segment)
}
