//! The embedded store (sled). Every durable thing biogate keeps goes through this module
//! (journal, device registry, delivery bookkeeping, plugin key/value spaces), so the
//! storage engine can be replaced behind it.
mod delivery_log;
mod devices;
mod error;
pub mod event_log;
mod group_commit;
mod journal;
mod operations;
mod plugin_kv;
mod reserve;
mod users;

use std::path::Path;

pub use delivery_log::{Attempt, DeadLetter, DeliveryLog, RouteRecord, Trigger};
pub use devices::{Device, DeviceChanges, DeviceState, Registry, generate_token, valid_device_id};
pub use error::StoreError;
pub use group_commit::GroupCommit;
pub use journal::{Appended, Journal, JournalDamage, PunchCursor};
pub use operations::{OperationLog, OperationRecord, OperationState};
pub use plugin_kv::{KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES, PluginKv};
pub use reserve::{DiskReserve, REQUEST_BYTES, RETRY_AFTER_SECS, ReserveState, StorageSettings};
pub use users::{UserDirectory, merge_user};

/// sled's page cache when the config does not say (sled's own default is 1 GiB: at
/// 1M stored punches the gateway held about 800 MiB). sled counts the cache in stored
/// bytes, while a cached entry costs several times its stored size in memory: with
/// compact events, 64 MiB kept a gateway filling 1M punches at 227 MiB (378 MiB at
/// 128 MiB).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The opened database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// sled's data file, `fdatasync`ed after each group flush: sled's own flush on Linux
    /// uses `sync_file_range`, which neither flushes the drive's write cache nor the file
    /// size. `None` for temporary stores.
    data_file: Option<std::sync::Arc<std::fs::File>>,
    /// How many plugin key/value writes were made (see [`Store::plugin_kv_writes`]).
    kv_writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The disk reserve that writes on behalf of devices and clients must leave free.
    reserve: DiskReserve,
    /// The folder of the event log (the journal's events).
    log_dir: std::path::PathBuf,
    /// The journal, opened by the first [`Store::journal`] (the log has one writer).
    journal: std::sync::Arc<std::sync::Mutex<Option<Journal>>>,
    /// The folder of a temporary store, removed with the last clone.
    _temporary: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// The event log's folder inside the store's folder.
pub const EVENT_LOG_DIR: &str = "events";

/// How long an open waits for the store's lock, held by a process that is still exiting
/// (a supervisor restarting the gateway at once) or by the I/O threads of a store closed
/// a moment ago in this process.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting up to [`LOCK_WAIT`] while its lock file is held elsewhere.
fn open_sled(config: sled::Config) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            // sled reports the held lock as an I/O error of kind Other with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return Ok(result?),
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`, with sled's page cache at
    /// [`DEFAULT_CACHE_BYTES`] and no disk reserve.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES, DiskReserve::disabled())
    }

    /// Opens (or creates) the database in `dir` with a page cache of `cache_bytes`, keeping
    /// `reserve` free for the gateway's own writes (check it with [`DiskReserve::at_start`]
    /// before: a store opened on a full disk cannot even recover).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64, reserve: DiskReserve) -> Result<Self, StoreError> {
        let db = open_sled(sled::Config::new().path(dir).cache_capacity(cache_bytes))?;
        let data_file = std::fs::File::open(dir.join("db"))
            .map_err(|e| StoreError::Flush(format!("opening sled's data file: {e}")))?;
        Ok(Store {
            db,
            data_file: Some(std::sync::Arc::new(data_file)),
            kv_writes: Default::default(),
            reserve,
            log_dir: dir.join(EVENT_LOG_DIR),
            journal: Default::default(),
            _temporary: None,
        })
    }

    /// A throw-away database (for tools; tests use a real one in a temporary folder).
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let dir = tempfile::tempdir().map_err(|e| StoreError::Flush(format!("creating a temporary folder: {e}")))?;
        Ok(Store {
            db,
            data_file: None,
            kv_writes: Default::default(),
            reserve: DiskReserve::disabled(),
            log_dir: dir.path().join(EVENT_LOG_DIR),
            journal: Default::default(),
            _temporary: Some(std::sync::Arc::new(dir)),
        })
    }

    /// The disk reserve: callers that write on behalf of a device or client
    /// [`DiskReserve::admit`] the write first (docs/storage.md).
    pub fn reserve(&self) -> &DiskReserve {
        &self.reserve
    }

    /// The key/value space of one plugin.
    pub fn plugin_kv(&self, plugin: &str) -> Result<PluginKv, StoreError> {
        Ok(PluginKv::new(self.db.open_tree("plugin-kv")?, plugin, self.kv_writes.clone()))
    }

    /// A count that grows with every plugin key/value write (not flushed by the write): a
    /// caller that answers a device after a plugin call reads it before and after the call,
    /// and flushes first when it changed (the plugin's state may be what the reply says,
    /// e.g. command lines taken off its own queue).
    pub fn plugin_kv_writes(&self) -> u64 {
        self.kv_writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The journal, with its group-commit flusher, opened (and its index caught up with
    /// the event log) on the first call; later calls share it. Appends need a tokio
    /// runtime.
    pub fn journal(&self) -> Result<Journal, StoreError> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = journal.as_ref() {
            return Ok(open.clone());
        }
        let commit = GroupCommit::start(self.db.clone(), self.data_file.clone());
        let open = Journal::open(&self.db, commit, &self.log_dir)?;
        *journal = Some(open.clone());
        Ok(open)
    }

    /// The device registry.
    pub fn registry(&self) -> Result<Registry, StoreError> {
        Registry::open(&self.db, self.reserve.clone())
    }

    /// The command queue and operation records.
    pub fn operations(&self) -> Result<OperationLog, StoreError> {
        OperationLog::open(&self.db)
    }

    /// What the gateway knows of the users on each device.
    pub fn users(&self) -> Result<UserDirectory, StoreError> {
        UserDirectory::open(&self.db)
    }

    /// Delivery bookkeeping.
    pub fn delivery_log(&self) -> Result<DeliveryLog, StoreError> {
        DeliveryLog::open(&self.db)
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        if let Some(file) = &self.data_file {
            file.sync_data().map_err(|e| StoreError::Flush(e.to_string()))?;
        }
        Ok(())
    }
}
