//! Writing: a [`StoreWriter`] buffers samples and spills full buffers to
//! segments. Of a local store it holds the lock, writes segments under
//! temporary names, and on [`commit`] renames them into place and then
//! replaces the manifest. Of a store on object storage it uploads each
//! segment under its own key and commits by creating the next manifest
//! (see [`super::remote`]), rebasing onto another writer's commit when that
//! one came first. Dropped without a commit, it deletes what it wrote: the
//! store stays as it was.
//!
//! [`commit`]: StoreWriter::commit

use super::manifest::{
    AtomicWriteError, MANIFEST_FILE, Manifest, SegmentMeta, day_dirs, parse_segment_file_name,
    segment_file_name, segment_path, sync_dir,
};
use super::segment::{SegmentOrder, SortedRows, encode_segment, gather};
use super::{SEGMENTS_DIR, StoreError, time_extent};
use crate::metadata::{MetricMeta, TypeSource, infer};
use crate::model::{RESERVED_COLUMNS, SampleSink, SeriesKey, SinkError, is_reserved_column};
use crate::time::{DAY_MS, check_stored_range, day_of};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::object::{Created, ObjectStorage};
use super::remote;

pub const LOCK_FILE: &str = "store.lock";
/// Samples buffered before a spill: 20 bytes each, so about 160 MB.
pub const DEFAULT_SPILL_ROWS: usize = 8 * 1024 * 1024;

/// A segment written and waiting for the commit that lists it.
struct Pending {
    /// Of a local store, the temporary file and the name the commit gives
    /// it; on object storage the segment is already under its key.
    file: Option<(PathBuf, PathBuf)>,
    meta: SegmentMeta,
}

/// Where a writer writes.
enum Target {
    /// A directory, held by its lock.
    Local { root: PathBuf, _lock: FileLock },
    /// A prefix on object storage; writers commit optimistically.
    Object {
        storage: Arc<ObjectStorage>,
        /// The Delta table's root (the store's, when this is a shard's)
        /// and this store's paths in it.
        table: Arc<ObjectStorage>,
        scope: String,
    },
}

/// How many times a commit to object storage rebases onto another
/// writer's newer commit before it gives up.
const MAX_REBASES: usize = 16;

/// Writer of a store: of a local one, one at a time, by an OS file lock.
pub struct StoreWriter {
    target: Target,
    manifest: Manifest,
    series: Vec<SeriesKey>,
    /// Per series, whether a label of it clashes with a column of the store
    /// (found once, when it is interned; refused when a sample arrives).
    clashes: Vec<bool>,
    index: HashMap<SeriesKey, u32>,
    rows_series: Vec<u32>,
    rows_ts: Vec<i64>,
    rows_value: Vec<f64>,
    spill_rows: usize,
    pending: Vec<Pending>,
    /// Manifest entries a commit removes (compaction, retention).
    removed: HashSet<u64>,
    /// What the input declared of metric names, merged at the commit.
    described: BTreeMap<String, MetricMeta>,
}

/// What a commit changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitSummary {
    pub segments_added: usize,
    pub segments_removed: usize,
    pub rows_added: u64,
    pub generation: u64,
}

impl StoreWriter {
    /// Creates the store directory if needed, takes the lock, and removes
    /// what a crashed commit may have left (files no manifest lists).
    pub(super) fn open(root: &Path) -> Result<StoreWriter, StoreError> {
        let lock = lock_store(root)?;
        let manifest = Manifest::load(root)?;
        remove_orphans(root, &manifest)?;
        Ok(Self::with_target(
            Target::Local {
                root: root.to_path_buf(),
                _lock: lock,
            },
            manifest,
        ))
    }

    /// A writer of the store on `storage`: reads the newest commit and
    /// deletes what no reader can still need ([`remote::sweep`]). Takes no
    /// lock: the commit finds out whether another writer came first.
    /// `table` and `scope` say where its Delta log is and what its
    /// segments' paths in it begin with (`shards/NAME/` for a shard).
    pub(super) fn open_remote(
        storage: Arc<ObjectStorage>,
        table: Arc<ObjectStorage>,
        scope: String,
    ) -> Result<StoreWriter, StoreError> {
        let manifest = remote::load_manifest(&storage)?;
        remote::sweep(&storage, &manifest, remote::grace_from_env()?)?;
        Ok(Self::with_target(
            Target::Object {
                storage,
                table,
                scope,
            },
            manifest,
        ))
    }

    fn with_target(target: Target, manifest: Manifest) -> StoreWriter {
        StoreWriter {
            target,
            manifest,
            series: Vec::new(),
            clashes: Vec::new(),
            index: HashMap::new(),
            rows_series: Vec::new(),
            rows_ts: Vec::new(),
            rows_value: Vec::new(),
            spill_rows: DEFAULT_SPILL_ROWS,
            pending: Vec::new(),
            removed: HashSet::new(),
            described: BTreeMap::new(),
        }
    }

    /// Sets how many samples are buffered before they spill to a segment.
    pub fn with_spill_rows(mut self, rows: usize) -> Self {
        self.spill_rows = rows.max(1);
        self
    }

    /// The manifest as it was when the lock was taken.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Marks a committed segment for removal by this commit.
    pub fn remove_segment(&mut self, id: u64) {
        self.removed.insert(id);
    }

    /// Writes the buffered samples as segments, one per UTC day.
    pub fn spill(&mut self) -> Result<(), StoreError> {
        if self.rows_ts.is_empty() {
            return Ok(());
        }
        let day = |t: &i64| t.div_euclid(DAY_MS);
        let first = day(&self.rows_ts[0]);
        if self.rows_ts.iter().all(|t| day(t) == first) {
            // The usual case, one day: its rows are all the rows, not copied.
            self.write_day(first * DAY_MS, None)?;
        } else {
            let mut by_day: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (i, t) in self.rows_ts.iter().enumerate() {
                by_day.entry(day(t)).or_default().push(i as u32);
            }
            for (day_index, rows) in by_day {
                self.write_day(day_index * DAY_MS, Some(&rows))?;
            }
        }
        self.rows_series.clear();
        self.rows_ts.clear();
        self.rows_value.clear();
        Ok(())
    }

    /// Writes the day's buffered rows (`None`: all of them) as a segment.
    fn write_day(&mut self, day_start: i64, rows: Option<&[u32]>) -> Result<(), StoreError> {
        // The sorted rows borrow the series table while the segment is added.
        let series = std::mem::take(&mut self.series);
        let result = self.write_day_with(&series, day_start, rows);
        self.series = series;
        result
    }

    fn write_day_with(
        &mut self,
        series: &[SeriesKey],
        day_start: i64,
        rows: Option<&[u32]>,
    ) -> Result<(), StoreError> {
        // In arrival order: the sort keeps it for equal (series, time).
        let (row_series, ts, vs) = match rows {
            None => (
                Cow::Borrowed(&self.rows_series[..]),
                Cow::Borrowed(&self.rows_ts[..]),
                Cow::Borrowed(&self.rows_value[..]),
            ),
            Some(rows) => (
                Cow::Owned(gather(&self.rows_series, rows)),
                Cow::Owned(gather(&self.rows_ts, rows)),
                Cow::Owned(gather(&self.rows_value, rows)),
            ),
        };
        let mut rows_of = vec![0usize; series.len()];
        for &s in row_series.iter() {
            rows_of[s as usize] += 1;
        }
        // The day's series, and each one's place among them.
        let present: Vec<usize> = (0..series.len()).filter(|&s| rows_of[s] > 0).collect();
        let mut given = vec![0u32; series.len()];
        for (i, &s) in present.iter().enumerate() {
            given[s] = i as u32;
        }
        let segment_order =
            SegmentOrder::of(present.iter().map(|&s| (&series[s], rows_of[s])).collect());
        let row_given: Vec<u32> = row_series.iter().map(|&s| given[s as usize]).collect();
        let sorted = segment_order.sorted_rows(&row_given, &ts, &vs);
        self.add_segment(day_start, sorted)
    }

    /// Writes sorted rows of one day as a pending segment.
    pub(super) fn add_segment(
        &mut self,
        day_start: i64,
        rows: SortedRows,
    ) -> Result<(), StoreError> {
        let Some((min_ts, max_ts)) = time_extent(&rows.timestamps) else {
            return Ok(());
        };
        let row_count = rows.timestamps.len() as u64;
        let series = rows.series.len() as u64;
        let duplicates = count_duplicates(&rows);
        let day = day_of(day_start);
        let name = format!(
            "{}/{}",
            self.location(),
            segment_path(&day, self.manifest.next_segment_id)
        );
        let encoded = encode_segment(&name, rows)?;
        let meta = SegmentMeta {
            id: 0,
            path: String::new(),
            day,
            rows: row_count,
            series,
            min_ts,
            max_ts,
            bytes: encoded.bytes.len() as u64,
            duplicates,
            metrics: encoded.metrics,
            labels: encoded.labels,
            checksums: Some(encoded.checksums),
            committed: 0,
        };
        self.store_segment(meta, encoded.bytes)
    }

    /// Adds a segment of another store as it is (`mcpops sync`): its bytes
    /// and what its manifest entry says of them, under an id of this store.
    pub fn add_copy(&mut self, segment: &SegmentMeta, bytes: Bytes) -> Result<(), StoreError> {
        if bytes.len() as u64 != segment.bytes {
            return Err(StoreError::Corrupt {
                path: segment.path.clone(),
                message: format!(
                    "{} bytes read, the manifest records {}",
                    bytes.len(),
                    segment.bytes
                ),
            });
        }
        self.store_segment(segment.clone(), bytes)
    }

    /// Where the writer writes, as errors name it.
    fn location(&self) -> String {
        match &self.target {
            Target::Local { root, .. } => root.display().to_string(),
            Target::Object { storage, .. } => storage.root().to_string(),
        }
    }

    /// Writes a segment's bytes under the next free id of its day and
    /// lists it as pending; `meta` describes the bytes (its id, path and
    /// commit are this store's to give).
    fn store_segment(&mut self, mut meta: SegmentMeta, bytes: Bytes) -> Result<(), StoreError> {
        let mut id = self.manifest.next_segment_id;
        let rel_dir = format!("{SEGMENTS_DIR}/day={}", meta.day);
        let file = match &self.target {
            Target::Local { root, .. } => {
                let dir = root.join(&rel_dir);
                create_dir_durably(&dir)?;
                let name = segment_file_name(id);
                let tmp = dir.join(format!(".{name}.tmp"));
                if let Err(e) = write_durably(&tmp, &bytes) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                Some((tmp, dir.join(&name)))
            }
            Target::Object { storage, .. } => {
                // Another writer may have taken this id (or left an
                // uncommitted object under it): take the next one. Ids are
                // unique among uploaded objects, so a rebase never has to
                // upload a segment again.
                while storage.put_create(&segment_path(&meta.day, id), bytes.clone())?
                    == Created::AlreadyExists
                {
                    id += 1;
                }
                None
            }
        };
        self.manifest.next_segment_id = id + 1;
        meta.id = id;
        meta.path = segment_path(&meta.day, id);
        // Set by the commit that lists it.
        meta.committed = 0;
        self.pending.push(Pending { file, meta });
        Ok(())
    }

    /// Makes everything written visible at once, or nothing if it fails.
    ///
    /// Of a local store, the manifest's rename is the commit point. Before
    /// it, a failure leaves the new segments unlisted (the next writer
    /// sweeps them); after it, nothing is taken back: a failed sync of the
    /// directory is reported as [`StoreError::NotDurable`], and the segments
    /// this commit replaced stay on disk, since the old manifest that lists
    /// them may be what a crash brings back. On object storage the commit
    /// point is the creation of the next manifest (see [`super::remote`]).
    pub fn commit(mut self) -> Result<CommitSummary, StoreError> {
        self.spill()?;
        let root = match &self.target {
            Target::Local { root, .. } => root.clone(),
            Target::Object {
                storage,
                table,
                scope,
            } => {
                let (storage, table, scope) = (storage.clone(), table.clone(), scope.clone());
                return self.commit_remote(&storage, &table, &scope);
            }
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, target) in self.pending.iter().filter_map(|p| p.file.as_ref()) {
            fs::rename(tmp, target).map_err(|e| StoreError::io(target, e))?;
            if let Some(d) = target.parent()
                && !dirs.iter().any(|x| x == d)
            {
                dirs.push(d.to_path_buf());
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        let Some((manifest, removed, summary)) = self.next_manifest(&self.manifest) else {
            self.pending.clear();
            return Ok(CommitSummary {
                generation: self.manifest.generation,
                ..CommitSummary::default()
            });
        };
        match manifest.store(&root) {
            Ok(()) => {}
            Err(AtomicWriteError::NotDurable(e)) => {
                self.pending.clear();
                return Err(not_durable(e));
            }
            Err(AtomicWriteError::NotWritten(e)) => {
                // A rename that reports an error may still have happened:
                // only the manifest on disk tells whether this committed.
                match Manifest::load(&root) {
                    Ok(on_disk) if on_disk == manifest => {
                        self.pending.clear();
                        return Err(not_durable(e));
                    }
                    Ok(on_disk) if on_disk == self.manifest => {
                        // Not committed: the renamed segments are listed
                        // nowhere, so taking them back loses nothing.
                        for (_, target) in self.pending.iter().filter_map(|p| p.file.as_ref()) {
                            let _ = fs::remove_file(target);
                        }
                    }
                    // Unknown: leave everything for the next writer,
                    // which sweeps only what the manifest it reads omits.
                    _ => {}
                }
                self.pending.clear();
                return Err(e);
            }
        }
        self.pending.clear();
        self.manifest = manifest;
        // Readers holding an older snapshot may still want these; they retry
        // on a missing file. Removing them is best effort: the next writer
        // removes any file no manifest lists.
        for s in removed {
            remove_listed_segment(&root, &s);
        }
        remove_empty_day_dirs(&root);
        Ok(summary)
    }

    /// The manifest this commit makes of `base`: its segments less the
    /// removed ones, plus the pending ones, as the next generation. `None`
    /// when the commit changes nothing. Also returns the removed entries.
    fn next_manifest(
        &self,
        base: &Manifest,
    ) -> Option<(Manifest, Vec<SegmentMeta>, CommitSummary)> {
        let mut manifest = base.clone();
        let generation = base.generation + 1;
        let removed: Vec<SegmentMeta> = manifest
            .segments
            .iter()
            .filter(|s| self.removed.contains(&s.id))
            .cloned()
            .collect();
        manifest.segments.retain(|s| !self.removed.contains(&s.id));
        let added: Vec<SegmentMeta> = self
            .pending
            .iter()
            .map(|p| SegmentMeta {
                committed: generation,
                ..p.meta.clone()
            })
            .collect();
        if added.is_empty() && removed.is_empty() {
            return None;
        }
        let summary = CommitSummary {
            segments_added: added.len(),
            segments_removed: removed.len(),
            rows_added: added.iter().map(|s| s.rows).sum(),
            generation,
        };
        manifest.segments.extend(added);
        manifest
            .segments
            .sort_by(|a, b| a.day.cmp(&b.day).then(a.id.cmp(&b.id)));
        manifest.next_segment_id = base.next_segment_id.max(self.manifest.next_segment_id);
        self.merge_metadata(&mut manifest);
        manifest.generation = generation;
        Some((manifest, removed, summary))
    }

    /// The commit on object storage: creates the next generation's
    /// manifest; when another writer created it first, rebases onto the
    /// newest commit and tries again, unless that commit conflicts with
    /// this one ([`StoreWriter::check_rebase`]). The segments are uploaded
    /// already and keep their ids, so a rebase uploads only a manifest.
    fn commit_remote(
        mut self,
        storage: &ObjectStorage,
        table: &ObjectStorage,
        scope: &str,
    ) -> Result<CommitSummary, StoreError> {
        let mut base = self.manifest.clone();
        for _ in 0..MAX_REBASES {
            let Some((manifest, _, summary)) = self.next_manifest(&base) else {
                self.pending.clear();
                return Ok(CommitSummary {
                    generation: base.generation,
                    ..CommitSummary::default()
                });
            };
            match remote::create_manifest(storage, &manifest) {
                Ok(Created::Created) => {
                    // What this commit replaced stays until no snapshot a
                    // reader may hold still names it (`remote::sweep`).
                    self.pending.clear();
                    super::delta::catch_up(table, scope, &manifest)?;
                    self.manifest = manifest;
                    return Ok(summary);
                }
                Ok(Created::AlreadyExists) => {
                    base = remote::load_manifest(storage)?;
                    self.check_rebase(storage, &base)?;
                }
                Err(e) => {
                    // The create may have happened all the same: its
                    // segments must stay (a later writer sweeps them if it
                    // did not).
                    self.pending.clear();
                    return Err(e);
                }
            }
        }
        Err(StoreError::Conflict {
            location: storage.root().to_string(),
            message: format!(
                "other writers committed first {MAX_REBASES} times in a row; nothing of this \
                 commit was kept: run it again"
            ),
        })
    }

    /// Whether this commit may go on top of `newest`, which other writers
    /// committed since this writer's snapshot. Adding segments always may:
    /// a later commit's samples win over an earlier one's. Removing them
    /// (compaction, retention) may only if the segments are still there,
    /// and, when the commit also adds segments (a compaction's merged ones,
    /// which rewrite older samples), only if no other commit added segments
    /// to the same days: the rewritten samples would otherwise outrank that
    /// commit's newer ones.
    fn check_rebase(&self, storage: &ObjectStorage, newest: &Manifest) -> Result<(), StoreError> {
        if self.removed.is_empty() {
            return Ok(());
        }
        let conflict = |message: String| StoreError::Conflict {
            location: storage.root().to_string(),
            message: format!("{message}; nothing of this commit was kept: run it again"),
        };
        let now: HashSet<u64> = newest.segments.iter().map(|s| s.id).collect();
        if let Some(gone) = self.removed.iter().find(|id| !now.contains(id)) {
            return Err(conflict(format!(
                "segment {gone}, which this commit replaces, was removed by another writer's commit"
            )));
        }
        let ours: HashSet<u64> = self.manifest.segments.iter().map(|s| s.id).collect();
        let days: HashSet<&str> = self.pending.iter().map(|p| p.meta.day.as_str()).collect();
        if let Some(theirs) = newest
            .segments
            .iter()
            .find(|s| !ours.contains(&s.id) && days.contains(s.day.as_str()))
        {
            return Err(conflict(format!(
                "another writer's commit added samples to {} while this one rewrote that day",
                theirs.day
            )));
        }
        Ok(())
    }
}

impl StoreWriter {
    /// The manifest's metadata after this commit: declarations of this
    /// run replace what was there (the newest wins); every other stored
    /// name keeps a declared type, and is inferred again from the store's
    /// names otherwise (a `_count` becomes a histogram's once its
    /// `_bucket` arrives); names no segment holds any more are dropped.
    fn merge_metadata(&self, manifest: &mut Manifest) {
        let present: BTreeSet<&str> = manifest
            .segments
            .iter()
            .flat_map(|s| s.metrics.iter().map(String::as_str))
            .collect();
        let with_le: HashSet<&str> = self
            .series
            .iter()
            .filter(|k| k.label("le").is_some())
            .map(|k| k.metric.as_str())
            .collect();
        let mut merged = std::mem::take(&mut manifest.metadata);
        for (name, meta) in &self.described {
            merged.insert(name.clone(), meta.clone());
        }
        merged.retain(|name, _| present.contains(name.as_str()));
        for name in &present {
            let before = merged.get(*name);
            if before.is_some_and(|m| m.source == TypeSource::Declared) {
                continue;
            }
            let has_le = with_le.contains(name) || before.is_some_and(MetricMeta::is_bucket);
            let inferred = infer(name, has_le, &|n| present.contains(n));
            merged.insert(name.to_string(), inferred);
        }
        manifest.metadata = merged;
    }
}

/// An exclusive lock on a lock file (the store's `store.lock`, the live
/// store's `wal/lock`), held until dropped.
pub(crate) struct FileLock(File);

impl Drop for FileLock {
    fn drop(&mut self) {
        // Released here, not when the last copy of the descriptor closes: a
        // child process forked meanwhile holds one until it execs, and the
        // next writer would find the store locked.
        let _ = self.0.unlock();
    }
}

/// Creates the store's directories if needed and takes its write lock.
pub(super) fn lock_store(root: &Path) -> Result<FileLock, StoreError> {
    super::check_store_dir(root)?;
    create_dir_durably(&root.join(SEGMENTS_DIR))?;
    lock_file(&root.join(LOCK_FILE))
}

/// Takes the lock on `path` (created if missing), or says it is held.
pub(crate) fn lock_file(path: &Path) -> Result<FileLock, StoreError> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(FileLock(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(path, e)),
    }
}

/// A failed sync after the commit point, named as such.
fn not_durable(e: StoreError) -> StoreError {
    match e {
        StoreError::Io { path, source } => StoreError::NotDurable { path, source },
        other => other,
    }
}

/// Creates a directory and whatever of its ancestors is missing, syncing the
/// parent of each one it creates, so that a segment renamed into a new
/// `day=` directory survives a crash along with the directory's own entry.
pub(super) fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

/// Deletes a segment the manifest no longer lists, without following a
/// symlink: its day directory must be a real directory of the store.
fn remove_listed_segment(root: &Path, segment: &SegmentMeta) {
    let day_dir = root.join(SEGMENTS_DIR).join(format!("day={}", segment.day));
    let is_real_dir = fs::symlink_metadata(&day_dir).is_ok_and(|m| m.is_dir());
    if is_real_dir {
        let _ = fs::remove_file(day_dir.join(segment_file_name(segment.id)));
    }
}

/// Writes `bytes` as the file at `path` and syncs it to disk.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    file.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    file.sync_all().map_err(|e| StoreError::io(path, e))
}

/// Rows equal in series and timestamp to the row before them.
fn count_duplicates(rows: &SortedRows) -> u64 {
    (1..rows.timestamps.len())
        .filter(|&i| {
            rows.row_series[i] == rows.row_series[i - 1]
                && rows.timestamps[i] == rows.timestamps[i - 1]
        })
        .count() as u64
}

impl Drop for StoreWriter {
    /// Takes back what an uncommitted writer wrote (best effort: a
    /// sweep of a later writer removes what this misses).
    fn drop(&mut self) {
        for p in &self.pending {
            match (&self.target, &p.file) {
                (_, Some((tmp, _))) => {
                    let _ = fs::remove_file(tmp);
                }
                (Target::Object { storage, .. }, None) => {
                    let _ = storage.delete(&p.meta.path);
                }
                (Target::Local { .. }, None) => {}
            }
        }
    }
}

impl SampleSink for StoreWriter {
    fn intern(&mut self, key: SeriesKey) -> u32 {
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = self.series.len() as u32;
        self.clashes
            .push(key.labels.iter().any(|(k, _)| is_reserved_column(k)));
        self.series.push(key.clone());
        self.index.insert(key, id);
        id
    }

    fn push(&mut self, series: u32, timestamp_ms: i64, value: f64) -> Result<(), SinkError> {
        // The parsers refuse these with a position; this is the last line.
        check_stored_range(timestamp_ms).map_err(SinkError)?;
        let Some(&clashes) = self.clashes.get(series as usize) else {
            return Err(SinkError(format!("series id {series} was never interned")));
        };
        if clashes {
            let key = &self.series[series as usize];
            let name = key
                .labels
                .iter()
                .map(|(k, _)| k.as_str())
                .find(|k| is_reserved_column(k))
                .unwrap_or_default();
            return Err(SinkError(format!(
                "label `{name}` of {} clashes with a column of the store ({})",
                key.metric,
                RESERVED_COLUMNS.join(", ")
            )));
        }
        self.rows_series.push(series);
        self.rows_ts.push(timestamp_ms);
        self.rows_value.push(value);
        if self.rows_ts.len() >= self.spill_rows {
            self.spill().map_err(|e| SinkError(e.to_string()))?;
        }
        Ok(())
    }

    fn describe(&mut self, metric: &str, meta: MetricMeta) {
        self.described.insert(metric.to_string(), meta);
    }

    fn declared(&self) -> BTreeMap<String, MetricMeta> {
        self.manifest
            .metadata
            .iter()
            .filter(|(_, m)| m.source == TypeSource::Declared)
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect()
    }

    fn label_names(&self) -> Vec<String> {
        let stored = self.manifest.segments.iter().flat_map(|s| s.labels.iter());
        let interned = self
            .series
            .iter()
            .flat_map(|k| k.labels.iter().map(|(n, _)| n));
        let names: std::collections::BTreeSet<&String> = stored.chain(interned).collect();
        names.into_iter().cloned().collect()
    }
}

/// Deletes segment files and temporaries that the manifest does not list:
/// what a crash between writing segments and replacing the manifest leaves.
/// Only names the store itself writes, in real `day=` directories: a file of
/// another name, or anything behind a symlinked directory, is left alone.
fn remove_orphans(root: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let listed: HashSet<(&str, u64)> = manifest
        .segments
        .iter()
        .map(|s| (s.day.as_str(), s.id))
        .collect();
    for (day, dir) in day_dirs(root) {
        let Ok(files) = fs::read_dir(&dir) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some(name) = name.to_str() else { continue };
            let orphan = match parse_segment_file_name(name) {
                Some(id) => !listed.contains(&(day.as_str(), id)),
                None => name
                    .strip_prefix('.')
                    .and_then(|n| n.strip_suffix(".tmp"))
                    .and_then(parse_segment_file_name)
                    .is_some(),
            };
            if orphan {
                let _ = fs::remove_file(f.path());
            }
        }
    }
    // The manifest's temporaries: `.manifest.json.tmp` (older writers) and
    // `.manifest.json.PID.N.tmp`.
    if let Ok(entries) = fs::read_dir(root) {
        let prefix = format!(".{MANIFEST_FILE}.");
        for e in entries.flatten() {
            let name = e.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
            {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    remove_empty_day_dirs(root);
    Ok(())
}

fn remove_empty_day_dirs(root: &Path) {
    for (_, dir) in day_dirs(root) {
        let _ = fs::remove_dir(dir); // fails, harmlessly, unless empty
    }
}
