//! What the log's handles, its readers and its writer share: the ordered segments, the
//! durable end, and the damage and missing ranges known so far.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::damage::{Damage, Missing};
use super::error::LogError;
use super::position::Position;
use super::segment::{Segment, file_name};

pub(super) struct LogState {
    pub dir: PathBuf,
    /// By first position; the last one is being written.
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    /// Everything below is on disk and readable.
    durable_end: AtomicU64,
    /// Group commits made since the log was opened.
    groups: AtomicU64,
    damage: RwLock<Vec<Damage>>,
    missing: RwLock<Vec<Missing>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl LogState {
    pub fn new(
        dir: PathBuf,
        segments: BTreeMap<u64, Arc<Segment>>,
        durable_end: u64,
        damage: Vec<Damage>,
        missing: Vec<Missing>,
    ) -> Self {
        LogState {
            dir,
            segments: RwLock::new(segments),
            durable_end: AtomicU64::new(durable_end),
            groups: AtomicU64::new(0),
            damage: RwLock::new(damage),
            missing: RwLock::new(missing),
        }
    }

    pub fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    /// Moves the durable end after a group commit.
    pub fn committed(&self, end: u64) {
        self.durable_end.store(end, Ordering::Release);
        self.groups.fetch_add(1, Ordering::Relaxed);
    }

    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// The first position still held.
    pub fn start(&self) -> u64 {
        read(&self.segments).keys().next().copied().unwrap_or(0)
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        read(&self.segments).values().cloned().collect()
    }

    /// Adds the segment the writer rolled to.
    pub fn push_segment(&self, segment: Arc<Segment>) {
        write(&self.segments).insert(segment.base, segment);
    }

    /// Forgets a segment retention removed, and what was known about its range.
    pub fn remove_segment(&self, base: u64) {
        let mut segments = write(&self.segments);
        segments.remove(&base);
        let start = segments.keys().next().copied().unwrap_or(0);
        drop(segments);
        write(&self.damage).retain(|d| d.position.0 >= start);
        write(&self.missing).retain(|m| m.to.0 > start);
    }

    /// The segment holding the durable position `pos`.
    pub fn segment_at(&self, pos: Position) -> Result<Arc<Segment>, LogError> {
        let segments = read(&self.segments);
        let start = segments.keys().next().copied().unwrap_or(0);
        if pos.0 < start {
            return Err(LogError::Retained { position: pos, start: Position(start) });
        }
        let end = self.durable_end();
        if pos.0 >= end {
            return Err(LogError::PastEnd { position: pos, end: Position(end) });
        }
        let Some((_, segment)) = segments.range(..=pos.0).next_back() else {
            return Err(LogError::Retained { position: pos, start: Position(start) });
        };
        if pos.0 < segment.end() {
            return Ok(segment.clone());
        }
        // Between a segment's end and the next one's start.
        if let Some(missing) = self.missing_at(pos) {
            return Err(LogError::Missing(missing));
        }
        let to = segments.range(pos.0..).next().map(|(base, _)| *base).unwrap_or(end);
        Err(LogError::Missing(Missing {
            from: Position(segment.end()),
            to: Position(to),
            expected_file: self.dir.join(file_name(segment.end())),
        }))
    }

    /// The known damaged region holding `pos`, if any.
    pub fn damage_at(&self, pos: Position) -> Option<Damage> {
        read(&self.damage).iter().find(|d| d.contains(pos)).cloned()
    }

    fn missing_at(&self, pos: Position) -> Option<Missing> {
        read(&self.missing).iter().find(|m| m.contains(pos)).cloned()
    }

    /// Remembers a damaged region a scan found (once).
    pub fn note_damage(&self, damage: &Damage) {
        let mut known = write(&self.damage);
        if !known.iter().any(|d| d.position == damage.position) {
            known.push(damage.clone());
            known.sort_by_key(|d| d.position);
        }
    }

    /// Every damaged region known so far.
    pub fn damage(&self) -> Vec<Damage> {
        read(&self.damage).clone()
    }

    /// Every missing range known so far.
    pub fn missing(&self) -> Vec<Missing> {
        read(&self.missing).clone()
    }
}
