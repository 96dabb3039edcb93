//! The disk reserve (`[storage] min_free_mb`): free space on the data folder's filesystem
//! that writes made on behalf of devices and clients may not use, so that the writes the
//! gateway must make to stay consistent never meet a full disk (`ENOSPC`), and a full disk
//! never costs data or needs a restart.
//!
//! Two kinds of writes (docs/storage.md, "The disk reserve"):
//! - **Refused below the reserve**, with [`StoreError::DiskFull`] before they reach sled:
//!   what devices and clients ask the gateway to store. Device events of every transport
//!   (the ingest step), device registrations (the registry: operators, and unknown devices
//!   recorded as pending), operations submitted or cancelled, replays, route changes. The
//!   sender still holds the data and sends it again (HTTP 503 with `Retry-After`, or no
//!   MQTT PUBACK).
//! - **Allowed to use the reserve**: what the gateway writes to keep what it already
//!   acknowledged consistent. Delivery cursors, attempts and dead letters; commands marked
//!   sent when handed out; operations closed, expired or failed, and the final statuses
//!   journaled for the callbacks; plugin key/value state written while commands are handed
//!   out; retention. None of these grows with new input, so the reserve bounds them.
//!
//! The check is cheap: the free space is measured with `statvfs` at most every
//! [`REFRESH`], or sooner once about [`REFRESH_BYTES`] may have been written since, and
//! cached in atomics; [`DiskReserve::admit`] is a few atomic loads between measurements.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::StoreError;

/// The longest a cached measurement is trusted.
pub const REFRESH: Duration = Duration::from_millis(250);
/// Estimated bytes written since the last measurement that trigger a new one.
pub const REFRESH_BYTES: u64 = 4 << 20;
/// The default reserve is this percentage of the filesystem...
pub const DEFAULT_PERCENT: u64 = 5;
/// ...but never more than this.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// What refused senders are told to wait before sending again (`Retry-After`, seconds).
pub const RETRY_AFTER_SECS: u32 = 5;
/// The estimate of a client request's write (an operation record, a registry entry,
/// replay marks), for [`DiskReserve::admit`].
pub const REQUEST_BYTES: u64 = 16 << 10;

const MIB: u64 = 1 << 20;

/// `[storage]`: the disk reserve.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Free space (MiB) on the data folder's filesystem that device and client writes may
    /// not use. Absent: 5% of the filesystem or 256 MiB, whichever is smaller, computed at
    /// start. `0` turns the reserve off.
    pub min_free_mb: Option<u64>,
}

impl StorageSettings {
    /// The reserve in bytes on a filesystem of `total_bytes`.
    pub fn reserve_bytes(&self, total_bytes: u64) -> u64 {
        match self.min_free_mb {
            Some(mb) => mb.saturating_mul(MIB),
            None => {
                (u128::from(total_bytes) * u128::from(DEFAULT_PERCENT) / 100).min(u128::from(DEFAULT_MAX_BYTES)) as u64
            }
        }
    }
}

/// The space of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Available to the gateway (`f_bavail`: blocks kept for root on ext4 are not counted).
    pub free: u64,
    /// The filesystem's size.
    pub total: u64,
}

/// Measures the filesystem holding `path` (or, when `path` does not exist yet, its
/// nearest existing ancestor).
pub fn measure(path: &Path) -> std::io::Result<Space> {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    let stat = rustix::fs::statvfs(existing).map_err(std::io::Error::from)?;
    Ok(Space { free: stat.f_bavail.saturating_mul(stat.f_frsize), total: stat.f_blocks.saturating_mul(stat.f_frsize) })
}

/// Where a measurement comes from: `statvfs` on the data folder, or a test's numbers.
type Probe = Box<dyn Fn() -> std::io::Result<Space> + Send + Sync>;

/// What the reserve looks like now (for `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveState {
    /// Free bytes at the last measurement.
    pub free_bytes: u64,
    /// The reserve; 0 when off.
    pub reserve_bytes: u64,
    /// Below the reserve: device and client writes are refused.
    pub degraded: bool,
}

struct Inner {
    dir: PathBuf,
    /// `None`: a disabled reserve, never measured.
    probe: Option<Probe>,
    /// 0: the reserve is off.
    reserve: u64,
    /// Free bytes at the last measurement.
    free: AtomicU64,
    /// Estimated bytes admitted since the last measurement.
    written: AtomicU64,
    /// When the last measurement was taken, in ms since `epoch`.
    measured_at_ms: AtomicU64,
    epoch: Instant,
    degraded: AtomicBool,
    /// The last measurement failed (logged once until one succeeds again).
    probe_failing: AtomicBool,
}

/// The disk reserve of a store: shared by every clone.
#[derive(Clone)]
pub struct DiskReserve(Arc<Inner>);

impl std::fmt::Debug for DiskReserve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskReserve").field("dir", &self.0.dir).field("state", &self.cached()).finish()
    }
}

impl DiskReserve {
    /// No reserve: every write is admitted (temporary stores, tools, tests).
    pub fn disabled() -> Self {
        Self::with_probe(PathBuf::new(), 0, Space { free: u64::MAX, total: u64::MAX }, None)
    }

    /// The reserve of the store in `data_dir`, checked before the store is opened: a
    /// filesystem already below it refuses the start ([`StoreError::NoRoomToStart`]),
    /// before anything is created or written in `data_dir`.
    pub fn at_start(data_dir: &Path, settings: &StorageSettings) -> Result<Self, StoreError> {
        let dir = data_dir.to_path_buf();
        let space = measure(&dir).map_err(|source| StoreError::FreeSpace { dir: dir.clone(), source })?;
        let reserve = settings.reserve_bytes(space.total);
        if space.free < reserve {
            return Err(StoreError::NoRoomToStart { dir, free_bytes: space.free, reserve_bytes: reserve });
        }
        if reserve == 0 {
            tracing::info!(data_dir = %dir.display(), "the disk reserve is off (storage.min_free_mb = 0)");
        } else {
            tracing::info!(data_dir = %dir.display(), free_mib = space.free / MIB, reserve_mib = reserve / MIB, "disk reserve");
        }
        let probe_dir = dir.clone();
        Ok(Self::with_probe(dir, reserve, space, Some(Box::new(move || measure(&probe_dir)))))
    }

    fn with_probe(dir: PathBuf, reserve: u64, first: Space, probe: Option<Probe>) -> Self {
        let measured = probe.is_some();
        let reserve = DiskReserve(Arc::new(Inner {
            dir,
            probe,
            reserve,
            free: AtomicU64::new(first.free),
            written: AtomicU64::new(0),
            measured_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            degraded: AtomicBool::new(false),
            probe_failing: AtomicBool::new(false),
        }));
        if measured {
            reserve.publish(first.free);
        }
        reserve
    }

    /// Admits a write of about `estimated_bytes` made on behalf of a device or client, or
    /// refuses it with [`StoreError::DiskFull`] when the filesystem is below the reserve.
    /// Call it before the write reaches the store; nothing is written when it refuses.
    pub fn admit(&self, estimated_bytes: u64) -> Result<(), StoreError> {
        let inner = &self.0;
        if inner.reserve == 0 {
            return Ok(());
        }
        let written = inner.written.fetch_add(estimated_bytes, Ordering::Relaxed).saturating_add(estimated_bytes);
        let cached = inner.free.load(Ordering::Relaxed);
        let degraded = inner.degraded.load(Ordering::Relaxed);
        // Measure again when the last measurement is old, when enough may have been written
        // since, or when this write would be the one that crosses the reserve.
        let crossing = !degraded && cached.saturating_sub(written) < inner.reserve;
        let free = if self.stale() || written >= REFRESH_BYTES || crossing {
            self.refresh().free_bytes
        } else {
            cached.saturating_sub(written)
        };
        if free < inner.reserve {
            // Not written after all.
            let _ = inner
                .written
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(estimated_bytes)));
            metrics::counter!("biogate_storage_refused_total").increment(1);
            return Err(StoreError::DiskFull { free_bytes: free, reserve_bytes: inner.reserve });
        }
        Ok(())
    }

    /// The state, measured again when the last measurement is older than [`REFRESH`].
    pub fn state(&self) -> ReserveState {
        if self.stale() { self.refresh() } else { self.cached() }
    }

    /// Whether device and client writes are refused now (as last measured).
    pub fn is_degraded(&self) -> bool {
        self.0.degraded.load(Ordering::Relaxed)
    }

    fn cached(&self) -> ReserveState {
        let inner = &self.0;
        ReserveState {
            free_bytes: inner.free.load(Ordering::Relaxed),
            reserve_bytes: inner.reserve,
            degraded: inner.degraded.load(Ordering::Relaxed),
        }
    }

    fn now_ms(&self) -> u64 {
        self.0.epoch.elapsed().as_millis() as u64
    }

    fn stale(&self) -> bool {
        self.now_ms().saturating_sub(self.0.measured_at_ms.load(Ordering::Relaxed)) >= REFRESH.as_millis() as u64
    }

    /// Measures the free space now. A failed measurement keeps the last value (logged
    /// once).
    pub fn refresh(&self) -> ReserveState {
        let inner = &self.0;
        let Some(probe) = &inner.probe else {
            return self.cached();
        };
        inner.measured_at_ms.store(self.now_ms(), Ordering::Relaxed);
        match probe() {
            Ok(space) => {
                inner.written.store(0, Ordering::Relaxed);
                inner.free.store(space.free, Ordering::Relaxed);
                if inner.probe_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(data_dir = %inner.dir.display(), "measuring the free space works again");
                }
                self.publish(space.free);
            }
            Err(error) => {
                if !inner.probe_failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(data_dir = %inner.dir.display(), %error, "measuring the free space failed; the last measurement stays in use");
                }
            }
        }
        self.cached()
    }

    /// Records a measurement: the state, its one log line when it changes, the gauges.
    fn publish(&self, free: u64) {
        let inner = &self.0;
        let below = free < inner.reserve;
        let was = inner.degraded.swap(below, Ordering::Relaxed);
        if below && !was {
            tracing::warn!(
                data_dir = %inner.dir.display(),
                free_bytes = free,
                reserve_bytes = inner.reserve,
                "the disk is below its reserve: device and client writes are refused (503) until space is freed"
            );
        } else if was && !below {
            tracing::info!(
                data_dir = %inner.dir.display(),
                free_bytes = free,
                reserve_bytes = inner.reserve,
                "the disk is above its reserve again: writes are accepted"
            );
        }
        metrics::gauge!("biogate_storage_free_bytes").set(free as f64);
        metrics::gauge!("biogate_storage_reserve_bytes").set(inner.reserve as f64);
        metrics::gauge!("biogate_storage_degraded").set(if below { 1.0 } else { 0.0 });
    }

    /// Measures every `every` until `shutdown`, so the state, the gauges and the log line
    /// follow the disk even when no request comes in.
    pub async fn watch(self, every: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if self.0.reserve == 0 {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if self.stale() {
                self.refresh();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reserve of `reserve` bytes over a filesystem whose free space the test sets.
    fn fake(reserve: u64, free: u64) -> (DiskReserve, Arc<AtomicU64>, Arc<AtomicU64>) {
        let free = Arc::new(AtomicU64::new(free));
        let probes = Arc::new(AtomicU64::new(0));
        let (f, p) = (free.clone(), probes.clone());
        let probe: Probe = Box::new(move || {
            p.fetch_add(1, Ordering::Relaxed);
            Ok(Space { free: f.load(Ordering::Relaxed), total: 1 << 30 })
        });
        let first = Space { free: free.load(Ordering::Relaxed), total: 1 << 30 };
        (DiskReserve::with_probe(PathBuf::from("/data"), reserve, first, Some(probe)), free, probes)
    }

    #[test]
    fn the_default_is_five_percent_or_256_mib_whichever_is_smaller() {
        let default = StorageSettings::default();
        assert_eq!(default.reserve_bytes(40 * MIB), 2 * MIB);
        assert_eq!(default.reserve_bytes(1 << 30), (1 << 30) * 5 / 100);
        assert_eq!(default.reserve_bytes(100 << 30), 256 * MIB, "capped on large disks");
        assert_eq!(StorageSettings { min_free_mb: Some(16) }.reserve_bytes(100 << 30), 16 * MIB);
        assert_eq!(StorageSettings { min_free_mb: Some(0) }.reserve_bytes(100 << 30), 0, "0 turns it off");
    }

    #[test]
    fn writes_are_refused_below_the_reserve_and_admitted_again_once_space_is_back() {
        let (reserve, free, _) = fake(10 * MIB, 50 * MIB);
        assert!(reserve.admit(1000).is_ok());
        assert!(!reserve.state().degraded);
        free.store(9 * MIB, Ordering::Relaxed);
        reserve.refresh();
        match reserve.admit(1000) {
            Err(StoreError::DiskFull { free_bytes, reserve_bytes }) => {
                assert!(free_bytes <= 9 * MIB && free_bytes > 8 * MIB, "{free_bytes}");
                assert_eq!(reserve_bytes, 10 * MIB);
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        assert!(reserve.state().degraded);
        free.store(11 * MIB, Ordering::Relaxed);
        std::thread::sleep(REFRESH + Duration::from_millis(20));
        assert!(reserve.admit(1000).is_ok(), "the cached measurement is refreshed by the next write");
        assert!(!reserve.is_degraded());
    }

    #[test]
    fn the_free_space_is_measured_at_most_every_refresh_interval() {
        let (reserve, _, probes) = fake(10 * MIB, 1 << 30);
        reserve.refresh();
        let before = probes.load(Ordering::Relaxed);
        for _ in 0..10_000 {
            reserve.admit(100).expect("admitted");
        }
        assert!(probes.load(Ordering::Relaxed) - before <= 1, "10,000 small writes in a few ms measure at most once");
        std::thread::sleep(REFRESH + Duration::from_millis(20));
        reserve.admit(100).expect("admitted");
        assert!(probes.load(Ordering::Relaxed) > before, "a stale measurement is taken again");
    }

    #[test]
    fn estimated_writes_count_between_measurements() {
        // 10 MiB reserve, 12 MiB free: a 3 MiB write would cross it. The write is checked
        // against a fresh measurement, not admitted on the strength of the cached one.
        let (reserve, free, probes) = fake(10 * MIB, 12 * MIB);
        reserve.refresh();
        let before = probes.load(Ordering::Relaxed);
        reserve.admit(MIB).expect("11 MiB would stay free");
        assert_eq!(probes.load(Ordering::Relaxed), before, "no measurement needed");
        free.store(9 * MIB, Ordering::Relaxed); // someone else filled the disk
        assert!(matches!(reserve.admit(2 * MIB), Err(StoreError::DiskFull { .. })));
        assert!(probes.load(Ordering::Relaxed) > before, "a write that may cross the reserve measures first");
        // Many small writes add up to a measurement too.
        let (reserve, _, probes) = fake(MIB, 1 << 40);
        reserve.refresh();
        let before = probes.load(Ordering::Relaxed);
        for _ in 0..(REFRESH_BYTES / 4096) {
            reserve.admit(4096).expect("admitted");
        }
        assert!(probes.load(Ordering::Relaxed) > before, "{REFRESH_BYTES} bytes written measure again");
    }

    #[test]
    fn a_reserve_of_zero_admits_everything() {
        let (reserve, _, probes) = fake(0, 0);
        assert!(reserve.admit(u64::MAX).is_ok());
        assert_eq!(probes.load(Ordering::Relaxed), 0, "a write never measures");
        assert!(!reserve.state().degraded);
        assert!(DiskReserve::disabled().admit(1 << 40).is_ok());
    }

    #[test]
    fn a_failed_measurement_keeps_the_last_value() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let probe: Probe = Box::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
            Err(std::io::Error::other("gone"))
        });
        let reserve =
            DiskReserve::with_probe(PathBuf::from("/data"), MIB, Space { free: 5 * MIB, total: 1 << 30 }, Some(probe));
        let state = reserve.refresh();
        assert_eq!(state.free_bytes, 5 * MIB);
        assert!(!state.degraded);
        assert!(reserve.admit(10).is_ok());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_start_is_refused_below_the_reserve_before_anything_is_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let space = measure(&data).expect("statvfs on the temp dir's filesystem");
        assert!(space.total > 0 && space.free <= space.total);
        // More than the whole filesystem: the start is refused, and the folder not created.
        let huge = StorageSettings { min_free_mb: Some(space.total / MIB + 1) };
        let error = DiskReserve::at_start(&data, &huge).expect_err("refused");
        let message = error.to_string();
        assert!(matches!(error, StoreError::NoRoomToStart { .. }), "{error:?}");
        assert!(message.contains(&data.display().to_string()), "{message}");
        assert!(message.contains("free space or lower storage.min_free_mb"), "{message}");
        assert!(!data.exists(), "nothing created");
        let off = DiskReserve::at_start(&data, &StorageSettings { min_free_mb: Some(0) }).expect("reserve off");
        assert_eq!(off.state().reserve_bytes, 0);
        let small = DiskReserve::at_start(&data, &StorageSettings { min_free_mb: Some(1) }).expect("1 MiB is free");
        assert!(small.admit(1).is_ok());
    }
}
