//! [`EventLog`], the handle: open (recovery), append (group commit), read by position,
//! iterate, remove old segments, verify.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::damage::{Damage, Missing, RecoveryReport};
use super::error::LogError;
use super::position::Position;
use super::reader::{LogIter, read};
use super::record::{LogBatch, Record};
use super::recovery::recover;
use super::segment::{Scanner, Step, sync_dir};
use super::state::LogState;
use super::writer::{Committed, Job, Writer};

/// The segment size at which the writer starts a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// How to open a log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Start a new segment before a write that would take the current one past this.
    pub segment_bytes: u64,
    /// A position known to start an intact record in the last segment (or to be its
    /// end), e.g. the end of what an index holds: recovery scans from there, not from
    /// the segment's start. Ignored when it is not one.
    pub scan_from: Option<Position>,
    /// A position the log is known to have reached (e.g. the end of the last record an
    /// index points at). If the files end before it, the range is reported missing and
    /// writing resumes after it, so no position is ever given to two records.
    pub known_end: Option<Position>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: DEFAULT_SEGMENT_BYTES, scan_from: None, known_end: None }
    }
}

/// One segment, as [`EventLog::segments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// Its first position (its file name).
    pub start: Position,
    /// The position after its last readable byte.
    pub end: Position,
}

/// What [`EventLog::retain_from`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub segments: usize,
    pub bytes: u64,
    /// The log's first position afterwards.
    pub start: Position,
}

/// An append-only log of event records in segment files, written by group commit.
/// Clones share the log; the writer thread stops when the last clone is dropped (after
/// finishing the writes handed to it).
#[derive(Clone)]
pub struct EventLog {
    state: Arc<LogState>,
    writer: Arc<Writer>,
    retention: Arc<Mutex<()>>,
}

impl EventLog {
    /// Opens (or creates) the log in `dir` with default options. The report says what
    /// recovery found; the log is open whatever it found (damage is marked unreadable).
    pub fn open(dir: &Path) -> Result<(EventLog, RecoveryReport), LogError> {
        Self::open_with(dir, LogOptions::default())
    }

    /// Opens (or creates) the log in `dir`.
    pub fn open_with(dir: &Path, options: LogOptions) -> Result<(EventLog, RecoveryReport), LogError> {
        let recovered = recover(dir, options.scan_from, options.known_end)?;
        let report = recovered.report;
        let state = Arc::new(LogState::new(
            dir.to_path_buf(),
            recovered.segments,
            recovered.tail.end(),
            report.damaged.clone(),
            report.missing.clone(),
        ));
        let writer = Writer::start(state.clone(), recovered.tail, options.segment_bytes.max(1))?;
        Ok((EventLog { state, writer: Arc::new(writer), retention: Arc::default() }, report))
    }

    fn submit(&self, batch: LogBatch) -> Result<oneshot::Receiver<Result<Committed, LogError>>, LogError> {
        let (frames, starts) = batch.into_parts();
        let (reply, rx) = oneshot::channel();
        self.writer.submit(Job { frames, starts, reply })?;
        Ok(rx)
    }

    fn positions(committed: Committed) -> Vec<Position> {
        committed.starts.iter().map(|start| Position(committed.at + *start as u64)).collect()
    }

    /// Appends the records of `batch` and returns their positions, in order, once they
    /// are on disk. Concurrent appends share one write and one `fdatasync`. Not
    /// cancel-safe: a dropped call may still have stored its records (a caller that
    /// must know where they went runs it to completion, e.g. in a task of its own).
    pub async fn append(&self, batch: LogBatch) -> Result<Vec<Position>, LogError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let committed = self.submit(batch)?.await.map_err(|_| LogError::Stopped)??;
        Ok(Self::positions(committed))
    }

    /// [`EventLog::append`] for blocking code (also on a runtime's thread, which it
    /// blocks).
    pub fn append_blocking(&self, batch: LogBatch) -> Result<Vec<Position>, LogError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.submit(batch)?;
        // `blocking_recv` refuses to run on a thread that drives a runtime (a store opened
        // from async code): wait on a thread of its own there.
        let committed = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| reply.blocking_recv()).join())
                .map_err(|_| LogError::Stopped)?
                .map_err(|_| LogError::Stopped)??
        } else {
            reply.blocking_recv().map_err(|_| LogError::Stopped)??
        };
        Ok(Self::positions(committed))
    }

    /// The record at `pos` (one `pread`; the checksum is checked on every read).
    pub fn read(&self, pos: Position) -> Result<Record, LogError> {
        read(&self.state, pos)
    }

    /// Records in order from `pos` (a record's position, or [`EventLog::start`]) up to
    /// the durable end as it is now.
    pub fn iter_from(&self, pos: Position) -> LogIter {
        LogIter::new(self.state.clone(), pos, None)
    }

    /// The records in `bytes` bytes from `pos`, e.g. those of one append (its first
    /// position, and the [`LogBatch::bytes`] it had), read with one `pread`.
    pub fn iter_span(&self, pos: Position, bytes: u64) -> LogIter {
        LogIter::new(self.state.clone(), pos, Some(Position(pos.0.saturating_add(bytes))))
    }

    /// The first position still held.
    pub fn start(&self) -> Position {
        Position(self.state.start())
    }

    /// The durable end: the next record goes there (or in a new segment).
    pub fn end(&self) -> Position {
        Position(self.state.durable_end())
    }

    /// How many group commits (one write and one `fdatasync` each) since the log opened.
    pub fn groups_written(&self) -> u64 {
        self.state.groups()
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.state
            .segments()
            .iter()
            .map(|s| SegmentInfo { path: s.path.clone(), start: Position(s.base), end: Position(s.end()) })
            .collect()
    }

    /// Damaged regions known so far (found by recovery, iteration or [`EventLog::verify`]).
    pub fn damage(&self) -> Vec<Damage> {
        self.state.damage()
    }

    /// Ranges no segment holds, found when the log opened.
    pub fn missing(&self) -> Vec<Missing> {
        self.state.missing()
    }

    /// Removes every segment whose records all lie before `pos` (never the one being
    /// written). Blocks on file removal: call it outside async code.
    pub fn retain_from(&self, pos: Position) -> Result<Retention, LogError> {
        let _one_at_a_time = self.retention.lock().unwrap_or_else(|p| p.into_inner());
        let segments = self.state.segments();
        let mut removed = Retention::default();
        let mut result = Ok(());
        if let Some((_, older)) = segments.split_last() {
            for segment in older.iter().take_while(|s| s.end() <= pos.0) {
                if let Err(e) = std::fs::remove_file(&segment.path) {
                    result = Err(LogError::Io { action: "removing", path: segment.path.clone(), source: e });
                    break;
                }
                self.state.remove_segment(segment.base);
                removed.segments += 1;
                removed.bytes += segment.end() - segment.base;
            }
        }
        if removed.segments > 0 {
            sync_dir(&self.state.dir)?;
        }
        result?;
        removed.start = self.start();
        Ok(removed)
    }

    /// Reads every record of every segment and checks it; returns the damaged regions
    /// found (they are remembered too: reads inside them answer with the damage).
    /// Blocks: call it outside async code.
    pub fn verify(&self) -> Result<Vec<Damage>, LogError> {
        let end = self.state.durable_end();
        let mut found = Vec::new();
        for segment in self.state.segments() {
            let limit = segment.end().min(end).saturating_sub(segment.base);
            let mut scanner = Scanner::new(segment.clone(), 0, limit);
            loop {
                match scanner.next_step()? {
                    Step::Record { .. } => {}
                    Step::Damaged { damage, .. } => {
                        self.state.note_damage(&damage);
                        found.push(damage);
                    }
                    Step::End => break,
                }
            }
        }
        Ok(found)
    }
}
