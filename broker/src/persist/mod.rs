//! Persistence: an append-only log of the engines' typed changes, compacted by snapshots.
//!
//! The log is one more reader of the changes (`crate::consumers`): each change that alters stored
//! data becomes a framed, checksummed record with a log sequence number (LSN), appended to an
//! in-memory buffer under the state lock. The buffer reaches the file before the replies of the
//! commands that made it go out, as Redis's `appendfsync` policies say:
//!
//! - `always`: a connection waits until the log is fsynced past its commands' LSN. One writer thread
//!   writes and fsyncs whatever has accumulated, so concurrent clients share each fsync (group
//!   commit) and no io thread ever blocks on the disk.
//! - `everysec`: the connection writes the buffer itself (one write(2) covers every client's pending
//!   records) before it replies; the writer thread fsyncs once a second. A process crash loses
//!   nothing acknowledged; a machine crash may lose about the last second.
//! - `no`: written before the reply like `everysec`; the operating system decides when to flush.
//!
//! When a write or fsync fails (disk full, I/O error), the connection waiting on it is closed
//! without its replies (nothing half-written is acknowledged), writes are refused with `-MISCONF`
//! while reads go on, and the writer thread retries until the disk takes the data again.
//!
//! Files (`files.rs`): a manifest names the current snapshot and log. A rewrite (`snapshot.rs`)
//! starts a new log, writes a snapshot of everything in small steps under the state lock (so clients
//! are never stalled for long), then switches the manifest and deletes what the snapshot replaced.
//! Recovery (`recover.rs`) loads the snapshot, then replays the logs.

mod codec;
mod files;
pub mod record;
mod recover;
mod snapshot;
mod xstream;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Notify;

use crate::engine::change::Change;
pub use recover::Recovered;
pub use snapshot::Rewrite;

/// The `[persistence]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceSettings {
    /// Where the log and snapshots live; empty: persistence is off (everything is in memory).
    pub data_dir: String,
    /// `always`, `everysec` or `no`.
    pub appendfsync: String,
    /// Rewrite the log (snapshot + fresh log) once it has grown by this percentage over its size after
    /// the last rewrite (0: never automatically), as Redis's auto-aof-rewrite-percentage ...
    pub auto_rewrite_percentage: u64,
    /// ... and only once it is at least this big (auto-aof-rewrite-min-size).
    pub auto_rewrite_min_bytes: u64,
    /// Start even when a record in the middle of a file is corrupt, dropping it and everything after.
    pub repair: bool,
}

/// Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fsync {
    Always = 0,
    EverySec = 1,
    No = 2,
}

impl Fsync {
    pub fn parse(text: &str) -> Option<Fsync> {
        match text.to_ascii_lowercase().as_str() {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::EverySec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            1 => Fsync::EverySec,
            _ => Fsync::No,
        }
    }
}

/// Records made under the state lock, waiting to be written.
struct Pending {
    buf: Vec<u8>,
    /// The LSN of the last record in `buf` (or written before it).
    lsn: u64,
    /// While a command runs: where its records start in `buf`, and the LSN before them. They are
    /// not written until it ends, and then as one group frame if there are several, so a crash
    /// never leaves part of a command (or of a MULTI/EXEC) in the log.
    batch: Option<(usize, u64)>,
}

/// The log file records are appended to.
struct LogFile {
    file: File,
    /// Bytes of whole records in the file: a failed write is cut back to here.
    len: u64,
}

/// Counters and times INFO persistence reports.
#[derive(Debug, Default)]
pub struct PersistStats {
    pub changes_since_save: AtomicU64,
    pub last_save_unix: AtomicU64,
    pub saves: AtomicU64,
    pub last_rewrite_ok: AtomicBool,
    pub last_rewrite_ms: AtomicU64,
    pub rewrite_started_ms: AtomicU64,
    pub rewrite_failures: AtomicU64,
    pub base_size: AtomicU64,
    pub log_size: AtomicU64,
    pub fsyncs: AtomicU64,
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
}

pub struct Persistence {
    dir: PathBuf,
    policy: AtomicU8,
    auto_rewrite_percentage: u64,
    auto_rewrite_min_bytes: u64,
    pending: Mutex<Pending>,
    /// The last LSN assigned (readable without the lock).
    assigned: AtomicU64,
    file: Mutex<LogFile>,
    written: AtomicU64,
    synced: AtomicU64,
    /// Woken after each write or fsync round (and on failure), for connections waiting on `always`.
    durable: Notify,
    /// Wakes the writer thread: `true` when there is work.
    wake: (Mutex<bool>, Condvar),
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
    failed: AtomicBool,
    /// The broker's alert word: `LOG_FAILED` mirrors `failed` for the request path.
    alerts: crate::alerts::Alerts,
    /// A rewrite is running; `restart` tells it the state changed under it in a way a fuzzy
    /// snapshot cannot follow (FLUSHALL, SWAPDB), so it starts again.
    pub(crate) rewriting: AtomicBool,
    restart: AtomicBool,
    /// The manifest's generation: files of the current snapshot and log carry it in their names.
    generation: AtomicU64,
    pub stats: PersistStats,
}

/// Loads what the data directory `dir` holds into `state` without opening its log for writing (the
/// move into Redis, `remote/import.rs`). A torn last record is cut off as at start.
pub fn load(dir: &str, repair: bool, state: &mut crate::state::State, now: u64) -> Result<(), String> {
    if !PathBuf::from(dir).join(files::MANIFEST).exists() {
        return Err(format!("{dir} holds no Herald data directory (no {})", files::MANIFEST));
    }
    recover::recover(&PathBuf::from(dir), repair, state, now).map(|_| ())
}

impl Persistence {
    /// Recovers the data directory into `state` (`now`: unix ms, for deadlines that passed while
    /// the broker was down) and opens the log for what comes next.
    pub fn open(
        settings: &PersistenceSettings,
        state: &mut crate::state::State,
        now: u64,
        alerts: crate::alerts::Alerts,
    ) -> Result<Arc<Persistence>, String> {
        let dir = PathBuf::from(&settings.data_dir);
        let policy = Fsync::parse(&settings.appendfsync).ok_or("appendfsync must be always, everysec or no")?;
        let started = Instant::now();
        let recovered = recover::recover(&dir, settings.repair, state, now)?;
        let manifest = &recovered.manifest;
        files::remove_unlisted(&dir, manifest);
        let last = manifest.logs.last().expect("a manifest lists a log");
        let path = dir.join(last);
        let file = files::open_log(&path).map_err(|e| format!("cannot open {} for appending: {e}", path.display()))?;
        let generation = manifest.logs.iter().chain(&manifest.snapshot).filter_map(|n| files::generation_of(n)).max().unwrap_or(1);
        tracing::info!(
            "persistence: loaded {} in {} ms ({} keys, {} expired while down; {} log file(s), up to LSN {}), appendfsync {}",
            dir.display(),
            started.elapsed().as_millis(),
            recovered.keys_loaded,
            recovered.keys_expired,
            manifest.logs.len(),
            recovered.lsn,
            policy.name()
        );
        let stats = PersistStats::default();
        stats.base_size.store(recovered.snapshot_len.max(recovered.log_len), Ordering::Relaxed);
        stats.log_size.store(recovered.log_len, Ordering::Relaxed);
        stats.loaded_keys.store(recovered.keys_loaded, Ordering::Relaxed);
        stats.loaded_expired.store(recovered.keys_expired, Ordering::Relaxed);
        stats.last_rewrite_ok.store(true, Ordering::Relaxed);
        stats.last_save_unix.store(unix_ms() / 1000, Ordering::Relaxed);
        Ok(Arc::new(Persistence {
            dir,
            policy: AtomicU8::new(policy as u8),
            auto_rewrite_percentage: settings.auto_rewrite_percentage,
            auto_rewrite_min_bytes: settings.auto_rewrite_min_bytes,
            pending: Mutex::new(Pending { buf: Vec::new(), lsn: recovered.lsn, batch: None }),
            assigned: AtomicU64::new(recovered.lsn),
            file: Mutex::new(LogFile { file, len: recovered.log_len }),
            written: AtomicU64::new(recovered.lsn),
            synced: AtomicU64::new(recovered.lsn),
            durable: Notify::new(),
            wake: (Mutex::new(false), Condvar::new()),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            alerts,
            rewriting: AtomicBool::new(false),
            restart: AtomicBool::new(false),
            generation: AtomicU64::new(generation),
            stats,
        }))
    }

    /// Starts the writer thread; `rewrite` runs an automatic rewrite (on a thread of its own).
    pub fn start(self: &Arc<Self>, rewrite: impl Fn() + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new().name("herald-log".into()).spawn(move || me.run_writer(rewrite))
    }

    pub fn policy(&self) -> Fsync {
        Fsync::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set_policy(&self, policy: Fsync) {
        self.policy.store(policy as u8, Ordering::Relaxed);
        self.wake_writer();
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The last LSN assigned to a record.
    pub fn lsn(&self) -> u64 {
        self.assigned.load(Ordering::Acquire)
    }

    pub fn written_lsn(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    pub fn synced_lsn(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Bytes recorded but not written yet.
    pub fn pending_bytes(&self) -> usize {
        lock(&self.pending).buf.len()
    }

    /// Why writes are refused now, if they are (Redis's `-MISCONF`).
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.failure).clone()
    }

    fn fail(&self, what: &str, e: &std::io::Error) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            tracing::error!("persistence: {what} {}: {e}; refusing writes until the disk accepts data again", self.dir.display());
        }
        *failure = Some(e.to_string());
        self.failed.store(true, Ordering::Release);
        self.alerts.set(crate::alerts::LOG_FAILED, true);
        self.durable.notify_waiters();
    }

    fn recovered(&self) {
        if self.failed.swap(false, Ordering::AcqRel) {
            self.alerts.set(crate::alerts::LOG_FAILED, false);
            tracing::info!("persistence: the disk accepts writes again; writes resume");
            *lock(&self.failure) = None;
        }
    }

    /// A command starts changing the engines (under the state lock): its records stay together.
    pub fn begin_batch(&self) {
        let mut p = lock(&self.pending);
        p.batch = Some((p.buf.len(), p.lsn));
    }

    /// The command ended: its records may be written, as one group frame when there are several.
    pub fn end_batch(&self) {
        let mut p = lock(&self.pending);
        let Some((from, lsn_before)) = p.batch.take() else { return };
        if p.lsn <= lsn_before + 1 {
            return;
        }
        let inner = p.buf.split_off(from);
        codec::frame(&mut p.buf, |w| record::encode_group(w, &inner));
    }

    /// Records one change (called by the consumers of changes, under the state lock).
    pub fn observe(&self, change: &Change<'_>) {
        if !record::recorded(change) {
            return;
        }
        if matches!(change, Change::Flush(_) | Change::SwapDb(..)) && self.rewriting.load(Ordering::Acquire) {
            self.restart.store(true, Ordering::Release);
        }
        let mut p = lock(&self.pending);
        let lsn = p.lsn + 1;
        codec::frame(&mut p.buf, |w| record::encode(w, lsn, change));
        p.lsn = lsn;
        self.assigned.store(lsn, Ordering::Release);
        self.stats.changes_since_save.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes every record up to `lsn` as durable as the policy promises before a reply goes out:
    /// written (`everysec`, `no`) or fsynced (`always`). An error means the records may not be on
    /// disk: the caller must not acknowledge them.
    pub async fn commit(&self, lsn: u64) -> Result<(), String> {
        if self.synced_lsn() >= lsn {
            return Ok(());
        }
        match self.policy() {
            Fsync::EverySec | Fsync::No => {
                // Let the other connections of this io thread that have requests ready run them first:
                // one write then covers all their records (as Redis writes once per event loop turn),
                // instead of one write per connection.
                if self.written_lsn() < lsn {
                    tokio::task::yield_now().await;
                }
                self.write_through(lsn)
            }
            Fsync::Always => loop {
                let durable = self.durable.notified();
                tokio::pin!(durable);
                durable.as_mut().enable();
                if self.synced_lsn() >= lsn {
                    return Ok(());
                }
                if let Some(why) = self.failure() {
                    return Err(why);
                }
                self.wake_writer();
                durable.await;
            },
        }
    }

    /// Writes pending records up to at least `lsn` now, on the caller's thread (one write covers
    /// every record pending, whoever made it).
    fn write_through(&self, lsn: u64) -> Result<(), String> {
        if self.written_lsn() >= lsn {
            return Ok(());
        }
        let mut file = lock(&self.file);
        if self.written_lsn() >= lsn {
            return Ok(());
        }
        self.write_pending(&mut file).map_err(|e| format!("write error on the log: {e}"))
    }

    /// Moves the pending buffer into the file. On failure the records go back to the front of the
    /// buffer and the file is cut back to its last whole record, so a retry writes them again.
    fn write_pending(&self, file: &mut LogFile) -> std::io::Result<()> {
        let (buf, lsn) = {
            let mut p = lock(&self.pending);
            match p.batch {
                // A command is still running: write what came before it.
                Some((from, lsn_before)) => {
                    let rest = p.buf.split_off(from);
                    p.batch = Some((0, lsn_before));
                    (std::mem::replace(&mut p.buf, rest), lsn_before)
                }
                None => (std::mem::take(&mut p.buf), p.lsn),
            }
        };
        if buf.is_empty() {
            self.written.fetch_max(lsn, Ordering::AcqRel);
            return Ok(());
        }
        let result = fault::check_write().and_then(|_| file.file.write_all(&buf));
        match result {
            Ok(()) => {
                file.len += buf.len() as u64;
                self.stats.log_size.store(file.len, Ordering::Relaxed);
                self.written.fetch_max(lsn, Ordering::AcqRel);
                self.recovered();
                Ok(())
            }
            Err(e) => {
                let _ = file.file.set_len(file.len);
                let mut p = lock(&self.pending);
                let newer = std::mem::replace(&mut p.buf, buf);
                if let Some((from, lsn_before)) = p.batch {
                    p.batch = Some((from + p.buf.len(), lsn_before));
                }
                p.buf.extend_from_slice(&newer);
                drop(p);
                self.fail("cannot write the log in", &e);
                Err(e)
            }
        }
    }

    /// Writes what is pending and fsyncs the log; the fsync runs on a second handle so connections
    /// can keep writing meanwhile.
    fn sync(&self) -> std::io::Result<()> {
        let (handle, lsn) = {
            let mut file = lock(&self.file);
            self.write_pending(&mut file)?;
            (file.file.try_clone()?, self.written_lsn())
        };
        if self.synced_lsn() >= lsn {
            return Ok(());
        }
        match fault::check_sync().and_then(|_| handle.sync_data()) {
            Ok(()) => {
                self.synced.fetch_max(lsn, Ordering::AcqRel);
                self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.fail("cannot fsync the log in", &e);
                Err(e)
            }
        }
    }

    fn wake_writer(&self) {
        let (flag, cv) = &self.wake;
        *lock(flag) = true;
        cv.notify_one();
    }

    /// The writer thread: group commits for `always`, the once-a-second fsync for `everysec`, a
    /// periodic write for records no connection waits on (expiries, leases run out), retries after
    /// a failure, and automatic rewrites.
    fn run_writer(self: Arc<Self>, rewrite: impl Fn() + Send) {
        let mut last_sync = Instant::now();
        let tick = Duration::from_millis(100);
        loop {
            let policy = self.policy();
            {
                let (flag, cv) = &self.wake;
                let mut woken = lock(flag);
                if !*woken && !self.stop.load(Ordering::Acquire) {
                    woken = cv.wait_timeout(woken, tick).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
                }
                *woken = false;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let due = match policy {
                Fsync::Always => true,
                Fsync::EverySec => last_sync.elapsed() >= Duration::from_secs(1),
                Fsync::No => false,
            };
            let result = if due || self.failed.load(Ordering::Acquire) && policy != Fsync::No {
                last_sync = Instant::now();
                self.sync()
            } else {
                let mut file = lock(&self.file);
                self.write_pending(&mut file)
            };
            self.durable.notify_waiters();
            if result.is_ok() && self.wants_rewrite() {
                rewrite();
            }
        }
    }

    /// Whether the log has grown enough over its size after the last rewrite to compact it.
    fn wants_rewrite(&self) -> bool {
        if self.auto_rewrite_percentage == 0 || self.rewrite_in_progress() {
            return false;
        }
        let size = self.stats.log_size.load(Ordering::Relaxed);
        let base = self.stats.base_size.load(Ordering::Relaxed).max(1);
        size >= self.auto_rewrite_min_bytes && size.saturating_sub(base) * 100 / base >= self.auto_rewrite_percentage
    }

    /// Final write and fsync (shutdown): everything recorded is on disk when this returns Ok.
    pub fn flush_all(&self) -> std::io::Result<()> {
        self.sync()
    }

    pub fn stop_writer(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake_writer();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unix time in ms from the system clock (file times, LASTSAVE); engine time comes from the
/// broker's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Fault injection for the tests of write failures: `HERALD_FAULT_LOG_WRITES=fail` makes every log
/// write fail with "No space left on device" (as a full disk does) until the file
/// `$HERALD_FAULT_LOG_WRITES_CLEAR` exists. Used only when a small full file system cannot be
/// mounted; it costs one relaxed load per write otherwise.
mod fault {
    use std::sync::OnceLock;

    fn armed() -> &'static Option<Option<String>> {
        static ARMED: OnceLock<Option<Option<String>>> = OnceLock::new();
        ARMED.get_or_init(|| {
            (std::env::var("HERALD_FAULT_LOG_WRITES").as_deref() == Ok("fail")).then(|| std::env::var("HERALD_FAULT_LOG_WRITES_CLEAR").ok())
        })
    }

    fn failing() -> bool {
        match armed() {
            None => false,
            Some(clear) => !clear.as_ref().is_some_and(|path| std::path::Path::new(path).exists()),
        }
    }

    pub fn check_write() -> std::io::Result<()> {
        if failing() { Err(std::io::Error::from_raw_os_error(28)) } else { Ok(()) }
    }

    pub fn check_sync() -> std::io::Result<()> {
        check_write()
    }
}
