//! The live store `mcpops watch` writes into: appends that are durable when
//! they return, an in-memory head of recent samples, and flushes of the head
//! into the day's Parquet segments through the ordinary atomic commit.
//! Snapshots taken here see the head and the segments together.
//!
//! An append checks the batch, writes it to the write-ahead log
//! ([`super::wal`]) in one write, adds it to the head, and returns once an
//! fsync covers it; appenders that arrive while one fsync runs share the
//! next (group commit), so many scrape tasks cost few syncs. A flush (on
//! the head's size, its age, or [`LiveStore::flush`]) starts a new log file
//! and freezes the head, then commits the frozen head as segments; only
//! then are the log files it covers deleted. A crash anywhere leaves the log
//! (replayed by the next [`LiveStore::open`]) or the segments (or, between
//! the commit and the deletion, both: scans keep one of a sample written
//! twice) holding every acknowledged sample. A flush that fails (the store
//! locked by `mcpops ingest`, a full disk) keeps the frozen head and its
//! log and is tried again.
//!
//! The door: [`LiveStore::open`], [`LiveStore::append`] (a batch of samples
//! and metadata, as a [`MemorySink`] holds them), [`LiveStore::snapshot`],
//! [`LiveStore::flush`], [`LiveStore::stats`], [`LiveStore::replay`].

use super::head::{Head, HeadView, committed_by};
use super::manifest::{AtomicWriteError, MANIFEST_FILE, Manifest, sync_dir};
use super::wal::{self, Damage, FileReplay, HEADER_BYTES, RecordBuf, WAL_DIR, WAL_LOCK_FILE};
use super::writer::{create_dir_durably, lock_store};
use super::{CommitSummary, SEGMENTS_DIR, Snapshot, Store, StoreError, check_store_dir};
use crate::metadata::MetricMeta;
use crate::model::{MemorySink, RESERVED_COLUMNS, SeriesKey, is_reserved_column};
use crate::time::check_stored_range;
// Looked up once per series per append: foldhash, as the head does.
use foldhash::{HashMap, HashMapExt};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A log file past this size is closed and a new one started, so that
/// replay and deletion work in pieces of bounded size.
const WAL_FILE_BYTES: u64 = 128 << 20;
/// How often the flusher looks at the head's age at most.
const FLUSH_TICK: Duration = Duration::from_secs(1);
/// The first pause after a failed flush; it doubles up to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// When the head is flushed into segments.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Flush once the head holds this many samples.
    pub flush_samples: usize,
    /// Flush at least this often while the head holds anything.
    pub flush_interval: Duration,
    /// A store (on object storage, or a shard of one) that each flush's
    /// segments are copied to after the flush commits ([`Store::sync_from`]):
    /// the log and the head stay local, where a crash cannot lose them.
    pub mirror: Option<Store>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            // About 320 MB of head (20 bytes a sample). A flush writes each
            // series it holds, so it costs per series as well as per sample:
            // at 1,000 targets x 1,000 series every 15 s, flushing every 2M
            // samples (each series twice) took 35% of watch's CPU; at 16M the
            // whole of watch took about a third less.
            flush_samples: 16_000_000,
            flush_interval: Duration::from_secs(600),
            mirror: None,
        }
    }
}

/// What one append stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendSummary {
    pub samples: u64,
    /// Samples older than the newest sample already held for their series.
    pub late: u64,
}

/// The live store's own health, for `watch`'s `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveStats {
    /// Bytes of the log files on disk.
    pub wal_bytes: u64,
    pub wal_files: u64,
    /// Samples in memory, not yet in segments (a frozen head being
    /// flushed included).
    pub head_samples: u64,
    pub head_series: u64,
    pub late_samples: u64,
    pub appends: u64,
    pub append_failures: u64,
    pub flushes: u64,
    pub flush_failures: u64,
    /// Why the last flush failed, until one succeeds.
    pub last_flush_error: Option<String>,
    /// Syncs to [`LiveOptions::mirror`] after a flush, and those that
    /// failed (the next flush tries again: a sync copies whatever the
    /// mirror lacks).
    pub mirror_syncs: u64,
    pub mirror_failures: u64,
    /// Why the last sync to the mirror failed, until one succeeds.
    pub last_mirror_error: Option<String>,
    /// What [`LiveStore::open`] replayed from the log.
    pub replayed_samples: u64,
    /// Damaged records (in the middle of a file) and torn tails that
    /// opening found in the log; see [`LiveStore::replay`].
    pub wal_corrupt_records: u64,
    pub wal_torn_tails: u64,
}

/// What [`LiveStore::open`] found in the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    pub files: Vec<FileReplay>,
}

impl ReplayReport {
    pub fn samples(&self) -> u64 {
        self.files.iter().map(|f| f.samples).sum()
    }

    /// Each problem as a line naming the file, offset and what it was.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.files {
            for d in &f.damage {
                out.push(match d {
                    Damage::TornTail { offset, bytes } => format!(
                        "{}: a record cut short at byte {offset} ({bytes} bytes, never \
                         acknowledged) was truncated away",
                        f.path.display()
                    ),
                    Damage::Corrupt {
                        offset,
                        bytes,
                        message,
                    } => format!(
                        "{}: damaged record at byte {offset} ({bytes} bytes skipped): {message}",
                        f.path.display()
                    ),
                });
            }
            if f.orphan_samples > 0 {
                out.push(format!(
                    "{}: {} sample(s) of a series whose record was damaged were dropped",
                    f.path.display(),
                    f.orphan_samples
                ));
            }
        }
        out
    }

    fn count(&self, torn: bool) -> u64 {
        self.files
            .iter()
            .flat_map(|f| &f.damage)
            .filter(|d| matches!(d, Damage::TornTail { .. }) == torn)
            .count() as u64
    }
}

/// A store being written continuously by one process.
pub struct LiveStore {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
}

struct Inner {
    store: Store,
    wal_dir: PathBuf,
    options: LiveOptions,
    /// Held while the store is open: one live writer per store.
    _lock: super::writer::FileLock,
    state: Mutex<State>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// One flush at a time.
    flushing: Mutex<()>,
    wake: Mutex<bool>,
    woken: Condvar,
    stop: AtomicBool,
    replay: ReplayReport,
    late_samples: AtomicU64,
    appends: AtomicU64,
    append_failures: AtomicU64,
    flushes: AtomicU64,
    flush_failures: AtomicU64,
    last_flush_error: Mutex<Option<String>>,
    mirror_syncs: AtomicU64,
    mirror_failures: AtomicU64,
    last_mirror_error: Mutex<Option<String>>,
}

/// The log file being written and the head, changed together under one
/// lock so that the head holds batches in the log's order.
struct State {
    file: Arc<File>,
    seq: u64,
    path: PathBuf,
    file_len: u64,
    /// Bytes of the log files before this one still on disk.
    older_bytes: u64,
    older_files: u64,
    /// Bytes written since opening, over all files: what fsyncs cover.
    written: u64,
    /// A failed write could not be cut back off the file: start another.
    broken: bool,
    series: HashMap<SeriesKey, SeriesState>,
    next_id: u32,
    /// Metadata logged in this file, to log a name again only on change.
    meta_logged: HashMap<String, MetricMeta>,
    buf: RecordBuf,
    active: Arc<Head>,
    active_since: Option<Instant>,
    /// Heads frozen for a flush that has not committed yet, oldest first.
    frozen: Vec<Arc<Head>>,
}

struct SeriesState {
    /// The log file whose series record numbers it, and that number.
    seq: u64,
    id: u32,
    /// The newest timestamp held, for counting late samples.
    newest: i64,
}

#[derive(Default)]
struct SyncState {
    /// Bytes of [`State::written`] known to be on disk.
    synced: u64,
    syncing: bool,
    /// An fsync failed over bytes up to here: their durability is
    /// unknown, so their appends fail (the head still holds them and the
    /// next flush writes them to segments).
    failed_upto: u64,
}

impl LiveStore {
    /// Opens (or creates) the store at `root` for live writing: takes the
    /// log's lock (a second live writer gets [`StoreError::Locked`]),
    /// replays the log into the head, truncating a torn tail and skipping
    /// damaged records ([`LiveStore::replay`] says what was found), and
    /// starts a new log file.
    pub fn open(root: &Path, options: LiveOptions) -> Result<LiveStore, StoreError> {
        check_store_dir(root)?;
        create_dir_durably(&root.join(SEGMENTS_DIR))?;
        let wal_dir = root.join(WAL_DIR);
        create_dir_durably(&wal_dir)?;
        let lock = super::writer::lock_file(&wal_dir.join(WAL_LOCK_FILE))?;
        write_first_manifest(root)?;
        let head = Head::new();
        let mut replay = ReplayReport::default();
        let files = wal::wal_files(&wal_dir)?;
        let (mut older_bytes, older_files) = (0, files.len() as u64);
        for (seq, path) in &files {
            let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
            let r = replay_into(&head, *seq, path, &bytes);
            if r.valid_len < r.len
                && r.damage
                    .iter()
                    .any(|d| matches!(d, Damage::TornTail { .. }))
            {
                // What follows the last whole record was never acknowledged;
                // cut it so that no reader trips on it again.
                let f = File::options()
                    .write(true)
                    .open(path)
                    .map_err(|e| StoreError::io(path, e))?;
                f.set_len(r.valid_len.max(HEADER_BYTES.min(r.len)))
                    .and_then(|()| f.sync_all())
                    .map_err(|e| StoreError::io(path, e))?;
            }
            older_bytes += r.valid_len.max(r.len.min(HEADER_BYTES));
            replay.files.push(r);
        }
        let seq = files.last().map_or(1, |(s, _)| s + 1);
        let file = wal::create_file(&wal_dir, seq)?;
        // The newest time of each replayed series, for counting late samples.
        let series: HashMap<SeriesKey, SeriesState> = head
            .view()
            .series_stats(&|_| true)
            .into_iter()
            .map(|(key, _, _, newest)| {
                (
                    key,
                    SeriesState {
                        seq: 0,
                        id: 0,
                        newest,
                    },
                )
            })
            .collect();
        let replayed = !head.is_empty();
        let state = State {
            file: Arc::new(file),
            seq,
            path: wal_dir.join(wal::file_name(seq)),
            file_len: HEADER_BYTES,
            older_bytes,
            older_files,
            written: 0,
            broken: false,
            series,
            next_id: 0,
            meta_logged: HashMap::new(),
            buf: RecordBuf::default(),
            active: head,
            active_since: replayed.then(Instant::now),
            frozen: Vec::new(),
        };
        let inner = Arc::new(Inner {
            store: Store::open(root),
            wal_dir,
            options,
            _lock: lock,
            state: Mutex::new(state),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            flushing: Mutex::new(()),
            wake: Mutex::new(false),
            woken: Condvar::new(),
            stop: AtomicBool::new(false),
            replay,
            late_samples: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            append_failures: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            flush_failures: AtomicU64::new(0),
            last_flush_error: Mutex::new(None),
            mirror_syncs: AtomicU64::new(0),
            mirror_failures: AtomicU64::new(0),
            last_mirror_error: Mutex::new(None),
        });
        let flusher = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("mcpops-flush".into())
                .spawn(move || inner.run_flusher())
                .map_err(|e| StoreError::io(root, e))?
        };
        Ok(LiveStore {
            inner,
            flusher: Some(flusher),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// What opening found in the log: files, samples replayed, damage.
    pub fn replay(&self) -> &ReplayReport {
        &self.inner.replay
    }

    /// Stores a batch; when this returns `Ok`, the batch survives a crash.
    /// A batch with a bad sample (a time outside the storable years, a
    /// label that takes a column's name, an unknown series id) is refused
    /// whole, before anything is written.
    pub fn append(&self, batch: &MemorySink) -> Result<AppendSummary, StoreError> {
        let result = self.inner.append(batch);
        let counter = match result {
            Ok(_) => &self.inner.appends,
            Err(_) => &self.inner.append_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// The segments and the head as they are now. During a flush it holds
    /// the frozen head until the manifest it reads has the flush's commit.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let (frozen, active) = {
            let st = self.inner.state();
            let frozen: Vec<Arc<Head>> = st.frozen.clone();
            (frozen, Arc::clone(&st.active))
        };
        // Views before the manifest: a commit in between shows its samples
        // in both (one kept by scans), never in neither.
        let mut views: Vec<HeadView> = frozen.iter().map(Head::view).collect();
        views.push(active.view());
        let manifest = self.inner.store.load_manifest()?;
        let heads: Vec<HeadView> = views
            .into_iter()
            .filter(|v| !committed_by(v.head(), manifest.generation))
            .collect();
        Ok(Snapshot::new(self.inner.store.clone(), manifest, heads))
    }

    /// Writes the head into segments now; `None` when it was empty.
    pub fn flush(&self) -> Result<Option<CommitSummary>, StoreError> {
        self.inner.flush()
    }

    pub fn stats(&self) -> LiveStats {
        let i = &self.inner;
        let (wal_bytes, wal_files, head_samples, head_series) = {
            let st = i.state();
            let heads = st.frozen.iter().chain(std::iter::once(&st.active));
            let (samples, series) = heads.fold((0, 0), |(a, b), h| {
                (a + h.samples(), b.max(h.series_count()))
            });
            (
                st.older_bytes + st.file_len,
                st.older_files + 1,
                samples,
                series,
            )
        };
        LiveStats {
            wal_bytes,
            wal_files,
            head_samples,
            head_series,
            late_samples: i.late_samples.load(Ordering::Relaxed),
            appends: i.appends.load(Ordering::Relaxed),
            append_failures: i.append_failures.load(Ordering::Relaxed),
            flushes: i.flushes.load(Ordering::Relaxed),
            flush_failures: i.flush_failures.load(Ordering::Relaxed),
            last_flush_error: i
                .last_flush_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default(),
            mirror_syncs: i.mirror_syncs.load(Ordering::Relaxed),
            mirror_failures: i.mirror_failures.load(Ordering::Relaxed),
            last_mirror_error: i
                .last_mirror_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default(),
            replayed_samples: i.replay.samples(),
            wal_corrupt_records: i.replay.count(false),
            wal_torn_tails: i.replay.count(true),
        }
    }
}

impl Drop for LiveStore {
    fn drop(&mut self) {
        // The log holds the head: stopping needs no flush.
        self.inner.stop.store(true, Ordering::Release);
        self.inner.poke();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
    }
}

/// Gives a new store its (empty) manifest now. A store's first commit
/// renames its segments into place before the manifest exists, and a
/// reader in between finds segments without a manifest (a lost manifest,
/// to it): a live store flushes while it is read, so it must never be in
/// that state. A store locked by another writer is left to it.
fn write_first_manifest(root: &Path) -> Result<(), StoreError> {
    if root.join(MANIFEST_FILE).exists() {
        return Ok(());
    }
    let _lock = match lock_store(root) {
        Ok(lock) => lock,
        Err(StoreError::Locked { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    // Loading fails if segments are there without a manifest: that is for
    // `mcpops repair`, not for a new empty manifest to hide.
    let manifest = Manifest::load(root)?;
    if root.join(MANIFEST_FILE).exists() {
        return Ok(());
    }
    match manifest.store(root) {
        Ok(()) => Ok(()),
        Err(AtomicWriteError::NotWritten(e) | AtomicWriteError::NotDurable(e)) => Err(e),
    }
}

/// Replays one log file into `head`.
fn replay_into(head: &Head, seq: u64, path: &Path, bytes: &[u8]) -> FileReplay {
    wal::replay_file(seq, path, bytes, &mut |table, record| match record {
        wal::Record::Samples(s) => head.append_numbered(table, &s),
        wal::Record::Meta { metric, meta } => head.describe(&metric, &meta),
        wal::Record::Series { .. } => {}
    })
}

/// The log of a store read by another process than its live writer (or
/// left by one that crashed), as a head: read-only, damage skipped and not
/// repaired. `None` when there is no log or it holds nothing.
pub(super) fn read_overlay(root: &Path) -> Result<Option<HeadView>, StoreError> {
    let files = wal::wal_files(&root.join(WAL_DIR))?;
    if files.is_empty() {
        return Ok(None);
    }
    let head = Head::new();
    for (seq, path) in files {
        match fs::read(&path) {
            Ok(bytes) => {
                replay_into(&head, seq, &path, &bytes);
            }
            // Deleted by a flush since listed: its samples are in the
            // manifest, which is read after this.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    Ok((!head.is_empty()).then(|| head.view()))
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // State is changed only where nothing can panic midway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync_state(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poke(&self) {
        if let Ok(mut w) = self.wake.lock() {
            *w = true;
        }
        self.woken.notify_all();
    }

    fn append(&self, batch: &MemorySink) -> Result<AppendSummary, StoreError> {
        check_batch(batch)?;
        if batch.samples.is_empty() && batch.metadata.is_empty() {
            return Ok(AppendSummary::default());
        }
        let (end, late, head_samples) = {
            let mut st = self.state();
            if st.broken || st.file_len >= WAL_FILE_BYTES {
                self.rotate(&mut st)?;
            }
            let st = &mut *st;
            let seq = st.seq;
            let mut buf = std::mem::take(&mut st.buf);
            buf.clear();
            // Numbers for series new to this file, taken for good only once
            // the write succeeds.
            let mut next = st.next_id;
            let mut ids = Vec::with_capacity(batch.series.len());
            let mut newest = Vec::with_capacity(batch.series.len());
            for key in &batch.series {
                match st.series.get(key) {
                    Some(s) if s.seq == seq => {
                        ids.push(s.id);
                        newest.push(s.newest);
                    }
                    known => {
                        buf.series(next, key);
                        ids.push(next);
                        newest.push(known.map_or(i64::MIN, |s| s.newest));
                        next += 1;
                    }
                }
            }
            let mut metas = Vec::new();
            for (metric, meta) in &batch.metadata {
                if st.meta_logged.get(metric) != Some(meta) {
                    buf.meta(metric, meta);
                    metas.push(metric);
                }
            }
            buf.samples(
                batch
                    .samples
                    .iter()
                    .map(|&(s, t, v)| (ids[s as usize], t, v)),
            );
            let at = st.file_len;
            if let Err(e) = st.file.write_all_at(&buf.buf, at) {
                // Cut the partial record off, so that the next record
                // follows the last whole one; if even that fails, the
                // next append starts a new file (replay reads the partial
                // record as a torn tail of this one).
                if st.file.set_len(at).is_err() {
                    st.broken = true;
                }
                st.buf = buf;
                return Err(StoreError::io(&st.path, e));
            }
            let len = buf.buf.len() as u64;
            st.buf = buf;
            st.file_len += len;
            st.written += len;
            st.next_id = next;
            // Late samples, against the newest time held for each series.
            let mut late = 0;
            for &(s, t, _) in &batch.samples {
                let n = &mut newest[s as usize];
                if t < *n {
                    late += 1;
                } else {
                    *n = t;
                }
            }
            for (i, key) in batch.series.iter().enumerate() {
                match st.series.get_mut(key) {
                    Some(s) => {
                        s.seq = seq;
                        s.id = ids[i];
                        s.newest = newest[i];
                    }
                    None => {
                        st.series.insert(
                            key.clone(),
                            SeriesState {
                                seq,
                                id: ids[i],
                                newest: newest[i],
                            },
                        );
                    }
                }
            }
            for metric in metas {
                st.meta_logged
                    .insert(metric.clone(), batch.metadata[metric].clone());
            }
            st.active
                .append(&batch.series, &batch.samples, &batch.metadata);
            st.active_since.get_or_insert_with(Instant::now);
            (st.written, late, st.active.samples())
        };
        self.late_samples.fetch_add(late, Ordering::Relaxed);
        self.sync_to(end)?;
        if head_samples >= self.options.flush_samples as u64 {
            self.poke();
        }
        Ok(AppendSummary {
            samples: batch.samples.len() as u64,
            late,
        })
    }

    /// Waits until an fsync covers the log up to `end`: one appender syncs
    /// for all that have written by then, the others wait for it.
    fn sync_to(&self, end: u64) -> Result<(), StoreError> {
        let mut s = self.sync_state();
        loop {
            if s.synced >= end {
                return Ok(());
            }
            if end <= s.failed_upto {
                return Err(self.sync_failed());
            }
            if !s.syncing {
                s.syncing = true;
                break;
            }
            s = self.synced.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        drop(s);
        let (file, target, path) = {
            let st = self.state();
            (Arc::clone(&st.file), st.written, st.path.clone())
        };
        let result = file.sync_data();
        let mut s = self.sync_state();
        s.syncing = false;
        match &result {
            Ok(()) => s.synced = s.synced.max(target),
            Err(_) => s.failed_upto = s.failed_upto.max(target),
        }
        self.synced.notify_all();
        drop(s);
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Start a fresh file: this one's state on disk is unknown.
                self.state().broken = true;
                Err(StoreError::io(path, e))
            }
        }
    }

    fn sync_failed(&self) -> StoreError {
        StoreError::Io {
            path: self.wal_dir.display().to_string(),
            source: std::io::Error::other(
                "an fsync of the write-ahead log failed; the batch is in memory and goes \
                 to segments at the next flush, but was not acknowledged",
            ),
        }
    }

    /// Closes the log file (synced) and starts the next one. Called with
    /// the state locked.
    fn rotate(&self, st: &mut State) -> Result<(), StoreError> {
        if !st.broken {
            st.file
                .sync_data()
                .map_err(|e| StoreError::io(&st.path, e))?;
        }
        let seq = st.seq + 1;
        let file = wal::create_file(&self.wal_dir, seq)?;
        if !st.broken {
            let mut s = self.sync_state();
            s.synced = s.synced.max(st.written);
            self.synced.notify_all();
        }
        st.older_bytes += st.file_len;
        st.older_files += 1;
        st.file = Arc::new(file);
        st.seq = seq;
        st.path = self.wal_dir.join(wal::file_name(seq));
        st.file_len = HEADER_BYTES;
        st.next_id = 0;
        st.meta_logged.clear();
        st.broken = false;
        Ok(())
    }

    fn flush(&self) -> Result<Option<CommitSummary>, StoreError> {
        let _one = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.flush_locked();
        if let Err(e) = &result {
            self.flush_failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_flush_error.lock() {
                *last = Some(e.to_string());
            }
        }
        result
    }

    /// [`Inner::flush`], with the flush lock held.
    fn flush_locked(&self) -> Result<Option<CommitSummary>, StoreError> {
        let (heads, cut) = {
            let mut st = self.state();
            if !st.active.is_empty() {
                self.rotate(&mut st)?;
                let old = std::mem::replace(&mut st.active, Head::new());
                st.active_since = None;
                st.frozen.push(old);
                // Series not seen in the file just closed are forgotten:
                // the map would otherwise grow with every series ever seen.
                let closed = st.seq - 1;
                st.series.retain(|_, s| s.seq >= closed);
            }
            if st.frozen.is_empty() {
                return Ok(None);
            }
            (st.frozen.clone(), st.seq)
        };
        match self.commit(&heads) {
            Ok(summary) => {
                self.state()
                    .frozen
                    .retain(|h| !heads.iter().any(|c| Arc::ptr_eq(h, c)));
                self.flushes.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = self.last_flush_error.lock() {
                    *e = None;
                }
                // The files before the cut hold only what was committed.
                // Deleting them is best effort: left, they replay as
                // duplicates that scans resolve.
                let mut removed = (0, 0);
                for (seq, path) in wal::wal_files(&self.wal_dir).unwrap_or_default() {
                    if seq >= cut {
                        continue;
                    }
                    let bytes = fs::metadata(&path).map_or(0, |m| m.len());
                    if fs::remove_file(&path).is_ok() {
                        removed.0 += bytes;
                        removed.1 += 1;
                    }
                }
                let _ = sync_dir(&self.wal_dir);
                {
                    let mut st = self.state();
                    st.older_bytes = st.older_bytes.saturating_sub(removed.0);
                    st.older_files = st.older_files.saturating_sub(removed.1);
                }
                self.sync_mirror();
                Ok(Some(summary))
            }
            Err(e) => Err(e),
        }
    }

    /// Copies the store's segments to the mirror, if there is one. A
    /// failure is counted and kept for the stats, never the flush's: the
    /// samples are safe in the local segments, and the next flush's sync
    /// copies what this one did not.
    fn sync_mirror(&self) {
        let Some(mirror) = &self.options.mirror else {
            return;
        };
        let (counter, error) = match mirror.sync_from(&self.store) {
            Ok(_) => (&self.mirror_syncs, None),
            Err(e) => (&self.mirror_failures, Some(e.to_string())),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_mirror_error.lock() {
            *last = error;
        }
    }

    /// Commits frozen heads as segments, oldest first (so newer writes of a
    /// sample stay the newer ones).
    fn commit(&self, heads: &[Arc<Head>]) -> Result<CommitSummary, StoreError> {
        let mut writer = self.store.writer()?;
        let generation = writer.manifest().generation + 1;
        for h in heads {
            h.write_into(&mut writer)
                .map_err(|e| StoreError::Invalid(e.0))?;
        }
        // From here a snapshot whose manifest has reached `generation`
        // reads these heads from segments. The store's lock is held
        // until the commit returns, so no other commit can take that
        // generation first; a failed one clears the mark right after.
        for h in heads {
            h.committed_in.store(generation, Ordering::Release);
        }
        match writer.commit() {
            Ok(summary) => Ok(summary),
            // In place but perhaps not durable: the log stays (the next
            // flush deletes it once its own commit is synced).
            Err(e @ StoreError::NotDurable { .. }) => Err(e),
            Err(e) => {
                for h in heads {
                    h.committed_in.store(0, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    /// The flusher thread: flushes when the head is full or old, and after
    /// a failure again with growing pauses.
    fn run_flusher(&self) {
        let interval = self.options.flush_interval;
        let tick = FLUSH_TICK.min(interval / 2).max(Duration::from_millis(5));
        let mut retry = RETRY_FIRST;
        let mut not_before = Instant::now();
        loop {
            {
                let w = self.wake.lock().unwrap_or_else(|e| e.into_inner());
                let (mut w, _) = self
                    .woken
                    .wait_timeout_while(w, tick, |w| !*w)
                    .unwrap_or_else(|e| e.into_inner());
                *w = false;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let due = {
                let st = self.state();
                st.active.samples() >= self.options.flush_samples as u64
                    || st.active_since.is_some_and(|t| t.elapsed() >= interval)
                    || !st.frozen.is_empty()
            };
            if !due || Instant::now() < not_before {
                continue;
            }
            match self.flush() {
                Ok(_) => retry = RETRY_FIRST,
                Err(_) => {
                    not_before = Instant::now() + retry;
                    retry = (retry * 2).min(RETRY_LAST);
                }
            }
        }
    }
}

/// Refuses a batch that a flush could not write, before it reaches the log.
fn check_batch(batch: &MemorySink) -> Result<(), StoreError> {
    for key in &batch.series {
        if let Some((name, _)) = key.labels.iter().find(|(k, _)| is_reserved_column(k)) {
            return Err(StoreError::Invalid(format!(
                "label `{name}` of {} clashes with a column of the store ({})",
                key.metric,
                RESERVED_COLUMNS.join(", ")
            )));
        }
    }
    let n = batch.series.len();
    for &(s, t, _) in &batch.samples {
        if s as usize >= n {
            return Err(StoreError::Invalid(format!(
                "a sample names series {s}, but the batch has {n}"
            )));
        }
        check_stored_range(t)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", batch.series[s as usize])))?;
    }
    Ok(())
}
