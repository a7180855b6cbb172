//! The Parquet segment store: a directory holding `manifest.json` and
//! `segments/day=YYYY-MM-DD/seg-N.parquet`. Segments are immutable; a commit
//! writes new ones under temporary names, renames them into place and then
//! atomically replaces the manifest, so a crash leaves the store as it was
//! before the commit or as it is after it. One writer at a time holds
//! `store.lock`; readers work from a manifest snapshot and never block.
//!
//! The door: [`Store::open`], [`Store::writer`] (a [`SampleSink`](crate::model::SampleSink)),
//! [`Snapshot::scan`], [`Snapshot::lazy_frame`], [`Store::compact`],
//! [`Store::retain`], [`Snapshot::info`], [`Snapshot::catalog`] (series and
//! metric metadata), [`Snapshot::export`].

mod catalog;
mod checksum;
mod delta;
mod frame;
mod head;
mod live;
mod location;
mod manifest;
mod object;
mod remote;
mod repair;
mod scan;
mod segment;
mod source;
mod sync;
mod wal;
mod writer;
pub(crate) use writer::{FileLock, lock_file};

pub use catalog::{Catalog, SeriesStats};
pub use delta::DELTA_LOG_DIR;
pub use frame::ExportFormat;
pub use head::HeadView;
pub use live::{AppendSummary, LiveOptions, LiveStats, LiveStore};
pub use location::StoreLocation;
pub use manifest::{MANIFEST_FILE, Manifest, SegmentChecksums, SegmentMeta};
pub use object::{Created, Listed, ObjectStorage, RemoteKind, RemotePolicy, S3Config};
pub use remote::MANIFESTS_DIR;
pub use repair::{DamagedSegment, QUARANTINE_DIR, RepairReport, VerifyReport};
pub use scan::{ScanRequest, SeriesData, pool_without};
pub use source::{LocalSegments, SegmentSource};
pub use sync::SyncSummary;
pub use wal::{Damage, FileReplay, WAL_DIR, WAL_LOCK_FILE};
pub use writer::{CommitSummary, LOCK_FILE, StoreWriter};

use crate::model::SeriesKey;
use crate::time::DAY_MS;
use segment::{SegmentOrder, SortedRows};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SEGMENTS_DIR: &str = "segments";
/// Where a store lives when neither `--store` nor `MCPOPS_STORE` says.
pub const DEFAULT_STORE_DIR: &str = "mcpops-store";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: parquet: {message}")]
    Parquet { path: String, message: String },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("another writer holds {path}; try again when it has finished")]
    Locked { path: String },
    #[error(
        "{path} is missing, but the store holds {segments} segment file(s): read as empty, or \
         written to, the store would lose them; `mcpops repair` rebuilds the manifest from them"
    )]
    ManifestMissing { path: String, segments: usize },
    #[error(
        "the commit is in place, but {path} could not be synced ({source}): a crash of the \
         machine now may lose it; nothing was deleted"
    )]
    NotDurable {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an mcpops store: it has no manifest.json and no segments/, but holds \
         {found}; give --store an empty or new directory, or an existing store"
    )]
    NotAStore { path: String, found: String },
    #[error("{path}: no store here ({why})")]
    NoStore { path: String, why: &'static str },
    #[error("{0}")]
    Frame(String),
    /// A request to object storage failed (or its client could not be set
    /// up): `op` (get, put, list, delete, configure) on `location`, and the
    /// server's own words in `message`. `kind` says whose problem it is.
    #[error("{op} {location}: {message}")]
    Remote {
        op: &'static str,
        location: String,
        kind: RemoteKind,
        message: String,
    },
    /// Another writer's commit to the same store on object storage
    /// conflicts with this one (see [`remote`]).
    #[error("{location}: {message}")]
    Conflict { location: String, message: String },
    /// The commit is in place, but the Delta log beside it could not be
    /// brought up to it (see [`delta`]).
    #[error(
        "the commit is in place, but the Delta log at {location} could not be brought up to \
         it ({source}); the next commit brings it up to date"
    )]
    DeltaLogBehind {
        location: String,
        source: Box<StoreError>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl AsRef<Path>, e: impl std::fmt::Display) -> Self {
        StoreError::Parquet {
            path: path.as_ref().display().to_string(),
            message: e.to_string(),
        }
    }

    pub(crate) fn arrow(e: arrow::error::ArrowError) -> Self {
        StoreError::Frame(format!("arrow: {e}"))
    }

    /// Whether the store itself is damaged (a corrupt or missing file, a lost
    /// manifest), as opposed to an I/O failure or bad input: `mcpops verify`
    /// and `mcpops repair` are the way on.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. } | StoreError::ManifestMissing { .. }
        )
    }

    /// A listed segment whose file is gone for good: damage, not an I/O
    /// failure.
    fn into_missing_segment(self) -> Self {
        match self {
            StoreError::Io { path, .. } => StoreError::Corrupt {
                path,
                message: "the manifest lists this segment but the file is gone; \
                          `mcpops repair` drops it from the manifest"
                    .to_string(),
            },
            other => other,
        }
    }

    /// A segment file gone between snapshot and open (an open file stays
    /// readable after removal, so only opening can find it missing).
    fn is_missing_file(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A store directory that must exist (`info`, `sync`'s source): a missing
/// one is [`StoreError::NoStore`] rather than an empty store.
fn check_dir_exists(root: &Path) -> Result<(), StoreError> {
    if root.exists() {
        return Ok(());
    }
    Err(StoreError::NoStore {
        path: root.display().to_string(),
        why: "the directory does not exist",
    })
}

/// Refuses a directory that is not a store, before anything is read from or
/// written into it: one with no manifest and no `segments/`, but files of
/// its own (a home directory, a project, another program's data), as SQLite
/// refuses a file that is not a database. An empty or missing directory is
/// a new store; dotfiles and `lost+found` (a mounted volume) are ignored.
pub(crate) fn check_store_dir(root: &Path) -> Result<(), StoreError> {
    if root.join(MANIFEST_FILE).exists() || root.join(SEGMENTS_DIR).is_dir() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        // Missing, or not a directory: the caller's own error says so.
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.starts_with('.')
                && n != "lost+found"
                && n != LOCK_FILE
                && n != QUARANTINE_DIR
                && n != WAL_DIR
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let shown: Vec<String> = foreign.iter().take(3).map(|n| format!("`{n}`")).collect();
    let more = foreign.len().saturating_sub(3);
    Err(StoreError::NotAStore {
        path: root.display().to_string(),
        found: if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        },
    })
}

/// Where a store's manifest and segments are kept.
#[derive(Clone, Debug)]
enum Backend {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix on object storage (see [`remote`]), or one shard of it.
    Object(ObjectBackend),
}

/// Where shards of a store on object storage live: `shards/NAME/`, each a
/// store of its own that one writer (a site, a `watch`) commits to.
pub const SHARDS_DIR: &str = "shards";

/// A store on object storage, or a shard of one.
#[derive(Clone, Debug)]
struct ObjectBackend {
    /// The store's prefix: the Delta table's root, and what reads of the
    /// whole store list.
    root: Arc<ObjectStorage>,
    /// The shard this store writes and reads (`shards/NAME/`), or the root.
    shard: Option<(String, Arc<ObjectStorage>)>,
}

impl ObjectBackend {
    /// The objects this store writes: its shard's, or the root's own.
    fn own(&self) -> &Arc<ObjectStorage> {
        self.shard.as_ref().map_or(&self.root, |(_, s)| s)
    }

    /// Table paths of this store's segments begin with this.
    fn scope(&self) -> String {
        self.shard
            .as_ref()
            .map_or(String::new(), |(name, _)| format!("{SHARDS_DIR}/{name}/"))
    }

    /// The committed manifest: a shard's own; at the root, the root's own
    /// with every shard's beside it, as one (see [`merge_shards`]).
    fn load_manifest(&self) -> Result<Manifest, StoreError> {
        if self.shard.is_some() {
            return remote::load_manifest(self.own());
        }
        let own = remote::load_manifest(&self.root)?;
        let mut shards = Vec::new();
        for name in self.root.list_dirs(SHARDS_DIR)? {
            let storage = self.root.child(&format!("{SHARDS_DIR}/{name}"))?;
            shards.push((name, remote::load_manifest(&storage)?));
        }
        Ok(merge_shards(own, shards))
    }
}

/// Several shards' manifests as one, for reading: every segment's path
/// relative to the store's root, ids renumbered to be unique, the root's
/// own segments ranked below the shards' and the shards' in name order
/// (each keeping its own write order), so that a (series, timestamp) two
/// shards both wrote resolves the same way every time. The generation is
/// the sum of theirs, so that it grows with every commit to any of them.
fn merge_shards(root: Manifest, shards: Vec<(String, Manifest)>) -> Manifest {
    if shards.is_empty() {
        return root;
    }
    let mut merged = Manifest {
        generation: root.generation,
        metadata: root.metadata.clone(),
        ..Manifest::new()
    };
    let groups = std::iter::once((String::new(), root)).chain(
        shards
            .into_iter()
            .map(|(name, m)| (format!("{SHARDS_DIR}/{name}/"), m)),
    );
    for (prefix, manifest) in groups {
        if !prefix.is_empty() {
            merged.generation += manifest.generation;
            for (name, meta) in manifest.metadata {
                merged.metadata.entry(name).or_insert(meta);
            }
        }
        let mut segments = manifest.segments;
        segments.sort_by_key(SegmentMeta::write_rank);
        for mut s in segments {
            s.id = merged.next_segment_id;
            merged.next_segment_id += 1;
            s.committed = 0;
            s.path = format!("{prefix}{}", s.path);
            merged.segments.push(s);
        }
    }
    merged
        .segments
        .sort_by(|a, b| a.day.cmp(&b.day).then(a.id.cmp(&b.id)));
    merged
}

/// A store: a directory, or a prefix on object storage. Opening does not
/// create it; the first write does.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// The store in the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Store {
        Store {
            backend: Backend::Local(root.into()),
        }
    }

    /// The store under `storage`'s prefix.
    pub fn on_object_storage(storage: ObjectStorage) -> Store {
        Store {
            backend: Backend::Object(ObjectBackend {
                root: Arc::new(storage),
                shard: None,
            }),
        }
    }

    /// The shard `name` of this store on object storage: it writes under
    /// `shards/NAME/` (one writer per shard, a site or a `watch`, so that
    /// writers never race), and reads only that shard. The store itself
    /// reads all of its shards as one.
    pub fn shard(self, name: &str) -> Result<Store, StoreError> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(StoreError::Invalid(format!(
                "shard {name:?}: a shard's name is 1 to 128 letters, digits, `-`, `_` or `.`"
            )));
        }
        match self.backend {
            Backend::Local(root) => Err(StoreError::Invalid(format!(
                "--shard {name}: shards are for a store on object storage; {} is a directory",
                root.display()
            ))),
            Backend::Object(ObjectBackend { root, .. }) => {
                let own = Arc::new(root.child(&format!("{SHARDS_DIR}/{name}"))?);
                Ok(Store {
                    backend: Backend::Object(ObjectBackend {
                        root,
                        shard: Some((name.to_string(), own)),
                    }),
                })
            }
        }
    }

    /// The store at `location`; `endpoint` is an S3-compatible server's URL
    /// for an `s3://` location (else the `AWS_*` environment's, or AWS).
    /// No request is sent yet.
    pub fn at(location: &StoreLocation, endpoint: Option<&str>) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Local(root) => Ok(Store::open(root.clone())),
            StoreLocation::S3 { bucket, prefix } => {
                let storage = ObjectStorage::s3(&S3Config {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    endpoint: endpoint.map(str::to_string),
                    ..S3Config::default()
                })?;
                Ok(Store::on_object_storage(storage))
            }
        }
    }

    /// The store named by `--store`, else `MCPOPS_STORE`, else
    /// `./mcpops-store`: a path, `file://PATH` or `s3://BUCKET/PREFIX`.
    pub fn resolve(flag: Option<&str>, endpoint: Option<&str>) -> Result<Store, StoreError> {
        let text = match flag {
            Some(text) => text.to_string(),
            None => match std::env::var_os("MCPOPS_STORE") {
                Some(v) => v.to_string_lossy().into_owned(),
                None => DEFAULT_STORE_DIR.to_string(),
            },
        };
        Store::at(&StoreLocation::parse(&text)?, endpoint)
    }

    /// The store's directory; `None` for a store on object storage.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(root) => Some(root),
            Backend::Object(_) => None,
        }
    }

    /// The store's directory, for what only a local store keeps (the
    /// remediation journal, approvals, the live write-ahead log); `what`
    /// names it in the error an object-storage store gets.
    pub fn require_local(&self, what: &str) -> Result<&Path, StoreError> {
        self.local_root().ok_or_else(|| {
            StoreError::Invalid(format!(
                "{what} needs a store in a local directory; {} is on object storage",
                self.location()
            ))
        })
    }

    /// Where the store is, as the user would write it.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Local(root) => root.display().to_string(),
            Backend::Object(object) => object.own().root().to_string(),
        }
    }

    /// Whether the store is on object storage.
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Object(_))
    }

    /// Reads the segments the manifest lists.
    fn source(&self) -> Box<dyn SegmentSource + '_> {
        match &self.backend {
            Backend::Local(root) => Box::new(LocalSegments::new(root)),
            Backend::Object(object) => Box::new(remote::ObjectSegments::new(object.own())),
        }
    }

    /// The committed manifest now.
    fn load_manifest(&self) -> Result<Manifest, StoreError> {
        match &self.backend {
            Backend::Local(root) => Manifest::load(root),
            Backend::Object(object) => object.load_manifest(),
        }
    }

    /// A writer: of a local store, holding its lock (a second writer gets
    /// [`StoreError::Locked`]); of a store on object storage, committing
    /// optimistically (see [`remote`]).
    pub fn writer(&self) -> Result<StoreWriter, StoreError> {
        match &self.backend {
            Backend::Local(root) => StoreWriter::open(root),
            Backend::Object(object) => {
                StoreWriter::open_remote(object.own().clone(), object.root.clone(), object.scope())
            }
        }
    }

    /// [`Store::snapshot`] of a store that must exist: a missing directory
    /// is [`StoreError::NoStore`] rather than an empty store (`info` on a
    /// mistyped path should not print a table of zeros). On object storage
    /// a missing bucket is an error already, and a prefix with no commit is
    /// `NoStore` too.
    pub fn existing_snapshot(&self) -> Result<Snapshot, StoreError> {
        match &self.backend {
            // The log is read before the manifest (see `snapshot`).
            Backend::Local(root) => {
                check_dir_exists(root)?;
                self.snapshot()
            }
            Backend::Object(_) => Ok(Snapshot::new(
                self.clone(),
                self.existing_manifest()?,
                Vec::new(),
            )),
        }
    }

    /// The committed manifest of a store that must exist (see
    /// [`Store::existing_snapshot`]).
    fn existing_manifest(&self) -> Result<Manifest, StoreError> {
        if let Backend::Local(root) = &self.backend {
            check_dir_exists(root)?;
        }
        let manifest = self.load_manifest()?;
        if self.is_remote() && manifest.generation == 0 {
            // A mistyped prefix: nothing was ever committed under it.
            return Err(StoreError::NoStore {
                path: self.location(),
                why: "nothing was ever committed under this prefix",
            });
        }
        Ok(manifest)
    }

    /// The committed state now; later commits do not change it. A store
    /// that `mcpops watch` writes (or wrote and crashed) has samples in its
    /// write-ahead log not yet in segments: they are read too, read-only
    /// (only the live writer repairs a log), before the manifest, so that
    /// a flush in between shows its samples twice (scans keep one) rather
    /// than not at all.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let overlay = match &self.backend {
            Backend::Local(root) => live::read_overlay(root)?,
            Backend::Object(_) => None,
        };
        let manifest = self.load_manifest()?;
        Ok(Snapshot::new(
            self.clone(),
            manifest,
            overlay.into_iter().collect(),
        ))
    }

    /// Merges the segments of each day that has more than one, or that holds
    /// duplicate samples or lacks checksums, into one, keeping the newest write of each
    /// (series, timestamp). One commit.
    pub fn compact(&self) -> Result<CompactSummary, StoreError> {
        let mut writer = self.writer()?;
        let mut by_day: BTreeMap<String, Vec<SegmentMeta>> = BTreeMap::new();
        for s in &writer.manifest().segments {
            by_day.entry(s.day.clone()).or_default().push(s.clone());
        }
        let mut summary = CompactSummary::default();
        for segs in by_day.into_values() {
            // A lone segment is rewritten only to drop duplicates or to
            // gain the checksums it was written without.
            if segs.len() < 2
                && segs
                    .iter()
                    .all(|s| s.duplicates == 0 && s.checksums.is_some())
            {
                continue;
            }
            let rows_before: u64 = segs.iter().map(|s| s.rows).sum();
            let series = scan::scan_segments(&*self.source(), &segs, &ScanRequest::all())?;
            let rows = rows_of(&series);
            let rows_after = rows.timestamps.len() as u64;
            let day_start = segs
                .iter()
                .map(|s| s.min_ts.div_euclid(DAY_MS))
                .min()
                .unwrap_or(0)
                * DAY_MS;
            writer.add_segment(day_start, rows)?;
            for s in &segs {
                writer.remove_segment(s.id);
            }
            summary.days += 1;
            summary.segments_merged += segs.len();
            summary.duplicates_removed += rows_before - rows_after;
        }
        summary.commit = writer.commit()?;
        Ok(summary)
    }

    /// Drops every whole day that ends at or before `before_ms`. One commit.
    pub fn retain(&self, before_ms: i64) -> Result<CommitSummary, StoreError> {
        let mut writer = self.writer()?;
        let doomed: Vec<u64> = writer
            .manifest()
            .segments
            .iter()
            .filter(|s| s.min_ts.div_euclid(DAY_MS) * DAY_MS + DAY_MS <= before_ms)
            .map(|s| s.id)
            .collect();
        for id in doomed {
            writer.remove_segment(id);
        }
        writer.commit()
    }
}

/// The smallest and the largest time, in one pass without a branch per row.
fn time_extent(ts: &[i64]) -> Option<(i64, i64)> {
    let first = *ts.first()?;
    Some(
        ts.iter()
            .fold((first, first), |(lo, hi), &t| (lo.min(t), hi.max(t))),
    )
}

/// Lays scanned series out as one segment's sorted rows.
fn rows_of(series: &[SeriesData]) -> SortedRows<'_> {
    let order = SegmentOrder::of(
        series
            .iter()
            .map(|s| (&s.key, s.timestamps.len()))
            .collect(),
    );
    let total = series.iter().map(|s| s.timestamps.len()).sum();
    let (mut row_given, mut ts, mut vs) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    for (s, given) in series.iter().zip(0u32..) {
        row_given.extend(std::iter::repeat_n(given, s.timestamps.len()));
        ts.extend_from_slice(&s.timestamps);
        vs.extend_from_slice(&s.values);
    }
    order.sorted_rows(&row_given, &ts, &vs)
}

/// What `compact` did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CompactSummary {
    pub days: usize,
    pub segments_merged: usize,
    pub duplicates_removed: u64,
    #[serde(skip)]
    pub commit: CommitSummary,
}

/// A read-only view of one committed state of the store, and of the live
/// store's head when there is one.
#[derive(Clone, Debug)]
pub struct Snapshot {
    store: Store,
    /// The manifest on disk: the segments to read.
    manifest: Manifest,
    /// The head's samples not in those segments, oldest generation first.
    heads: Vec<HeadView>,
    /// With a head: the manifest plus an entry per day of the head (path
    /// `wal`, no file) and the head's metadata, so that whoever plans from
    /// the manifest (extents, label names, metric types) sees it too.
    view: Option<Manifest>,
}

/// Entry ids of the head's days count down from here: no segment has one.
const HEAD_ENTRY_IDS: u64 = u64::MAX;

impl Snapshot {
    fn new(store: Store, manifest: Manifest, heads: Vec<HeadView>) -> Snapshot {
        let view = (!heads.is_empty()).then(|| {
            let mut view = manifest.clone();
            let mut id = HEAD_ENTRY_IDS;
            for h in &heads {
                let entries = h.entries(id);
                id -= entries.len() as u64;
                view.segments.extend(entries);
                view.metadata.extend(h.metadata());
            }
            view
        });
        Snapshot {
            store,
            manifest,
            heads,
            view,
        }
    }

    /// The manifest, with the head's days listed as entries of their own
    /// (path `wal`, no file behind them) when the snapshot has a head.
    pub fn manifest(&self) -> &Manifest {
        self.view.as_ref().unwrap_or(&self.manifest)
    }

    /// Samples of the snapshot that are in the head, not in segments.
    pub fn head_samples(&self) -> u64 {
        self.heads.iter().map(HeadView::samples).sum()
    }

    /// Every matching series with its samples in the time range (inclusive),
    /// skipping segments and row groups whose statistics exclude them.
    pub fn scan(&self, req: &ScanRequest) -> Result<Vec<SeriesData>, StoreError> {
        Ok(self
            .scan_many(std::slice::from_ref(req))?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// [`Snapshot::scan`] for several requests at once, in one pass: a row
    /// group that more than one of them needs is decoded once.
    pub fn scan_many(&self, reqs: &[ScanRequest]) -> Result<Vec<Vec<SeriesData>>, StoreError> {
        self.read_segments(|segments| {
            scan::scan_segments_many(&*self.store.source(), segments, reqs, &self.heads)
        })
    }

    /// `read` over the snapshot's segments, or over the current manifest's
    /// when a compaction committed since the snapshot was taken and removed
    /// files it listed: the newer manifest holds the same samples.
    fn read_segments<T>(
        &self,
        read: impl Fn(&[SegmentMeta]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match read(&self.manifest.segments) {
            Err(e) if e.is_missing_file() => match read(&self.store.load_manifest()?.segments) {
                Err(e) if e.is_missing_file() => Err(e.into_missing_segment()),
                other => other,
            },
            other => other,
        }
    }

    /// Counts and extents of the store.
    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let segs = &self.manifest.segments;
        // Reads resolve a (series, timestamp) written twice to the newest
        // write, so the scan's samples are the distinct ones; the segments'
        // rows (what DuckDB counts) include the repeats until `compact`.
        let scanned = self.scan(&ScanRequest::all())?;
        let distinct: u64 = scanned.iter().map(|s| s.timestamps.len() as u64).sum();
        let series: BTreeSet<SeriesKey> = scanned.into_iter().map(|s| s.key).collect();
        let rows = self.manifest.total_rows() + self.head_samples();
        let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
        let metrics: BTreeSet<&str> = self
            .manifest()
            .segments
            .iter()
            .flat_map(|s| s.metrics.iter().map(String::as_str))
            .collect();
        let days: BTreeSet<&str> = segs.iter().map(|s| s.day.as_str()).collect();
        Ok(StoreInfo {
            store: self.store.location(),
            generation: self.manifest.generation,
            segments: segs.len(),
            days: days.len(),
            metrics: metrics.len(),
            series: series.len(),
            samples: rows,
            duplicates: rows.saturating_sub(distinct),
            first: self.manifest().extent().map(|e| e.0),
            last: self.manifest().extent().map(|e| e.1),
            bytes,
            bytes_per_sample: if rows > 0 {
                bytes as f64 / rows as f64
            } else {
                0.0
            },
        })
    }
}

/// What `mcpops info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    pub store: String,
    pub generation: u64,
    pub segments: usize,
    pub days: usize,
    pub metrics: usize,
    pub series: usize,
    /// Rows in the segments and the live head, repeats included.
    pub samples: u64,
    /// Rows that repeat the (series, timestamp) of another (a file ingested
    /// twice): reads take the newest, `compact` removes them.
    pub duplicates: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub bytes: u64,
    pub bytes_per_sample: f64,
}
