//! Checking a store against itself, and mending what can be mended.
//!
//! [`Store::verify`] reads every segment the manifest lists in full: its
//! length, its checksums (footer and every row group), that it decodes, and
//! that its row count and time range are the ones recorded. It changes
//! nothing.
//!
//! [`Store::repair`] makes a damaged store readable again without deleting
//! anything: a segment that fails the checks is moved to `quarantine/`
//! (outside `segments/`, so no reader or glob sees it) and dropped from the
//! manifest; an entry whose file is gone is dropped; and a manifest that is
//! lost or unreadable is rebuilt from the segments' own contents (the
//! unreadable one kept beside it). A rebuilt manifest lists every segment
//! file, including any that a crashed commit left unlisted: reads resolve
//! duplicate samples to the newest write, so such a file at worst brings
//! back the data of a commit that did not finish.

use super::manifest::{MANIFEST_FILE, Manifest, SegmentMeta, segment_files, sync_dir};
use super::object::{Created, ObjectStorage};
use super::scan::scan_segments;
use super::source::SegmentSource;
use super::writer::{create_dir_durably, lock_store};
use super::{SEGMENTS_DIR, ScanRequest, Store, StoreError, checksum, remote, segment};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `repair` moves segments that fail their checks.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What `verify` found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct VerifyReport {
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
    /// Segments written before checksums were kept: decoded and counted,
    /// but a flipped byte that still decodes cannot be seen in them.
    pub without_checksums: usize,
    pub damaged: Vec<DamagedSegment>,
}

/// A segment that failed a check, and how.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedSegment {
    pub path: String,
    pub problem: String,
}

/// What `repair` did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RepairReport {
    /// The manifest was lost or unreadable and was rebuilt from the segments.
    pub rebuilt: bool,
    /// Where the unreadable manifest was kept, when there was one.
    pub damaged_manifest_kept_as: Option<String>,
    pub segments_kept: usize,
    /// Damaged segments moved to `quarantine/`, with what was wrong.
    pub quarantined: Vec<DamagedSegment>,
    /// Manifest entries whose files were gone.
    pub missing: Vec<String>,
    pub generation: u64,
}

impl RepairReport {
    pub fn changed(&self) -> bool {
        self.rebuilt || !self.quarantined.is_empty() || !self.missing.is_empty()
    }
}

impl Store {
    /// Reads every listed segment in full and checks it; changes nothing.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let manifest = self.load_manifest()?;
        let source = self.source();
        let mut report = VerifyReport::default();
        for segment in &manifest.segments {
            report.segments += 1;
            report.rows += segment.rows;
            report.bytes += segment.bytes;
            if segment.checksums.is_none() {
                report.without_checksums += 1;
            }
            if let Err(problem) = check_segment(&*source, segment) {
                report.damaged.push(DamagedSegment {
                    path: segment.path.clone(),
                    problem,
                });
            }
        }
        Ok(report)
    }

    /// Makes the store readable again: see the module's documentation.
    /// Takes the write lock; commits only when something changed.
    pub fn repair(&self) -> Result<RepairReport, StoreError> {
        let root = match &self.backend {
            super::Backend::Local(root) => root.as_path(),
            super::Backend::Object(object) => {
                return repair_remote(object.own(), &object.root, &object.scope());
            }
        };
        let _lock = lock_store(root)?;
        let manifest_path = root.join(MANIFEST_FILE);
        let mut report = RepairReport::default();
        let (old, kept) = match Manifest::load(root) {
            Ok(manifest) => {
                let mut kept = Vec::new();
                for segment in &manifest.segments {
                    if !root.join(&segment.path).exists() {
                        report.missing.push(segment.path.clone());
                    } else {
                        match check_segment(&super::LocalSegments::new(root), segment) {
                            Ok(()) => kept.push(segment.clone()),
                            Err(problem) => quarantine(root, segment, problem, &mut report)?,
                        }
                    }
                }
                (manifest, kept)
            }
            Err(StoreError::ManifestMissing { .. }) => {
                report.rebuilt = true;
                (Manifest::new(), rebuild(root, &mut report)?)
            }
            Err(StoreError::Corrupt { path, .. }) if Path::new(&path) == manifest_path => {
                let aside = root.join(format!("{MANIFEST_FILE}.damaged-{}", crate::time::now_ms()));
                fs::rename(&manifest_path, &aside).map_err(|e| StoreError::io(&aside, e))?;
                sync_dir(root)?;
                report.rebuilt = true;
                report.damaged_manifest_kept_as = Some(aside.display().to_string());
                (Manifest::new(), rebuild(root, &mut report)?)
            }
            Err(e) => return Err(e),
        };
        report.segments_kept = kept.len();
        report.generation = old.generation;
        if !report.changed() {
            return Ok(report);
        }
        let manifest = repaired_manifest(&old, kept, max_quarantined_id(root));
        manifest.store(root).map_err(|e| match e {
            super::manifest::AtomicWriteError::NotWritten(e)
            | super::manifest::AtomicWriteError::NotDurable(e) => e,
        })?;
        report.generation = manifest.generation;
        Ok(report)
    }
}

/// The manifest a repair commits: the kept entries as the next generation
/// of `old`, ids past every kept and quarantined one (quarantined ids stay
/// taken: their files are still around).
fn repaired_manifest(
    old: &Manifest,
    mut kept: Vec<SegmentMeta>,
    quarantined: Option<u64>,
) -> Manifest {
    kept.sort_by(|a, b| a.day.cmp(&b.day).then(a.id.cmp(&b.id)));
    let next_id = kept.iter().map(|s| s.id + 1).max().unwrap_or(0);
    Manifest {
        generation: old.generation + 1,
        next_segment_id: old
            .next_segment_id
            .max(next_id)
            .max(quarantined.map_or(0, |id| id + 1)),
        segments: kept,
        // A readable manifest's metadata stays; a rebuilt one has none
        // (the segments do not hold it), and types are inferred again.
        metadata: old.metadata.clone(),
        ..Manifest::new()
    }
}

/// Every check `verify` makes of one segment; the problem in words.
fn check_segment(source: &dyn SegmentSource, segment: &SegmentMeta) -> Result<(), String> {
    let read = read_in_full(source, segment)?;
    let expected = segment.rows - segment.duplicates.min(segment.rows);
    if read.distinct != expected {
        return Err(format!(
            "{} distinct samples decoded, the manifest records {expected}",
            read.distinct
        ));
    }
    if read.span != Some((segment.min_ts, segment.max_ts)) {
        return Err(format!(
            "samples span {:?} ms, the manifest records {}..{} ms",
            read.span, segment.min_ts, segment.max_ts
        ));
    }
    Ok(())
}

/// A segment read in full through the scan (checksums included).
struct ReadInFull {
    series: Vec<super::SeriesData>,
    /// Samples after duplicates were resolved.
    distinct: u64,
    /// The first and last sample times.
    span: Option<(i64, i64)>,
}

fn read_in_full(source: &dyn SegmentSource, segment: &SegmentMeta) -> Result<ReadInFull, String> {
    let series = scan_segments(source, std::slice::from_ref(segment), &ScanRequest::all())
        .map_err(|e| e.to_string())?;
    let distinct = series.iter().map(|s| s.timestamps.len() as u64).sum();
    let first = series.iter().filter_map(|s| s.timestamps.first()).min();
    let last = series.iter().filter_map(|s| s.timestamps.last()).max();
    Ok(ReadInFull {
        distinct,
        span: first.zip(last).map(|(a, b)| (*a, *b)),
        series,
    })
}

/// Manifest entries rebuilt from the segment files on disk, each read in
/// full; those that do not read are quarantined.
fn rebuild(root: &Path, report: &mut RepairReport) -> Result<Vec<SegmentMeta>, StoreError> {
    let mut kept = Vec::new();
    for file in segment_files(root) {
        let path = root.join(file.path());
        let bytes = fs::metadata(&path)
            .map_err(|e| StoreError::io(&path, e))?
            .len();
        let mut meta = unchecked_entry(&file.day, file.id, bytes);
        match describe(&super::LocalSegments::new(root), &mut meta) {
            Ok(()) => kept.push(meta),
            Err(problem) => quarantine(root, &meta, problem, report)?,
        }
    }
    Ok(kept)
}

/// An entry as a segment found without its manifest entry describes
/// itself: no checksums to hold it to (they were in the lost manifest), so
/// it is read as it is.
fn unchecked_entry(day: &str, id: u64, bytes: u64) -> SegmentMeta {
    SegmentMeta {
        id,
        day: day.to_string(),
        path: super::manifest::segment_path(day, id),
        rows: 0,
        series: 0,
        min_ts: i64::MIN,
        max_ts: i64::MAX,
        bytes,
        duplicates: 0,
        metrics: Vec::new(),
        labels: Vec::new(),
        checksums: None,
        committed: 0,
    }
}

/// Fills in an entry's counts, extent, names and checksums from its bytes.
fn describe(source: &dyn SegmentSource, meta: &mut SegmentMeta) -> Result<(), String> {
    let bytes = source
        .read(meta, 0..meta.bytes)
        .map_err(|e| e.to_string())?;
    let footer = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .map_err(|e| format!("parquet: {e}"))?;
    let rows = footer.file_metadata().num_rows();
    // The scan picks segments by their entries' metric names: until the
    // rows say which, the names the file records (or, in a segment too old
    // to record them, a name that any unfiltered scan takes).
    meta.metrics = match segment::metric_labels(footer.file_metadata()) {
        Some(labels) => labels.into_keys().collect(),
        None => vec![String::new()],
    };
    let ReadInFull {
        series,
        distinct,
        span,
    } = read_in_full(source, meta)?;
    let rows = u64::try_from(rows).map_err(|_| format!("{rows} rows"))?;
    let Some((first, last)) = span else {
        return Err("the segment holds no samples".to_string());
    };
    let day_start = crate::time::parse_time(&meta.day, 0).map_err(|e| e.to_string())?;
    if first.div_euclid(86_400_000) != day_start.div_euclid(86_400_000)
        || last.div_euclid(86_400_000) != day_start.div_euclid(86_400_000)
    {
        return Err(format!(
            "samples from {first} to {last} ms do not all fall in its day {}",
            meta.day
        ));
    }
    meta.rows = rows;
    meta.duplicates = rows.saturating_sub(distinct);
    meta.series = series.len() as u64;
    meta.min_ts = first;
    meta.max_ts = last;
    meta.metrics = series
        .iter()
        .map(|s| s.key.metric.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    meta.labels = series
        .iter()
        .flat_map(|s| s.key.labels.iter().map(|(k, _)| k.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    meta.checksums = Some(checksum::checksums_of_bytes(&bytes).map_err(|e| e.to_string())?);
    Ok(())
}

/// Moves a damaged segment to `quarantine/day=DAY/` (kept, never deleted).
fn quarantine(
    root: &Path,
    segment: &SegmentMeta,
    problem: String,
    report: &mut RepairReport,
) -> Result<(), StoreError> {
    let dir = root
        .join(QUARANTINE_DIR)
        .join(format!("day={}", segment.day));
    create_dir_durably(&dir)?;
    let from = root.join(&segment.path);
    let name = super::manifest::segment_file_name(segment.id);
    let mut to: PathBuf = dir.join(&name);
    if to.exists() {
        // Never overwrite what an earlier repair set aside.
        to = dir.join(format!("{name}.{}", crate::time::now_ms()));
    }
    fs::rename(&from, &to).map_err(|e| StoreError::io(&from, e))?;
    sync_dir(&dir)?;
    if let Some(parent) = from.parent() {
        sync_dir(parent)?;
    }
    report.quarantined.push(DamagedSegment {
        path: segment.path.clone(),
        problem,
    });
    Ok(())
}

/// The highest segment id in quarantine, so new segments never reuse one.
fn max_quarantined_id(root: &Path) -> Option<u64> {
    let days = fs::read_dir(root.join(QUARANTINE_DIR)).ok()?;
    days.flatten()
        .filter_map(|d| fs::read_dir(d.path()).ok())
        .flat_map(|files| files.flatten())
        .filter_map(|f| {
            f.file_name()
                .to_str()
                .and_then(super::manifest::parse_segment_file_name)
        })
        .max()
}

/// [`Store::repair`] of a store on object storage: the same checks and
/// outcomes, with the quarantine under `quarantine/` of its prefix, and the
/// new manifest created as the next generation (a writer that committed in
/// the meantime makes it a conflict: run the repair again). A damaged
/// newest manifest stays where it is, below the new one.
fn repair_remote(
    storage: &ObjectStorage,
    table: &ObjectStorage,
    scope: &str,
) -> Result<RepairReport, StoreError> {
    let source = remote::ObjectSegments::new(storage);
    let mut report = RepairReport::default();
    let (old, kept) = match remote::load_manifest(storage) {
        Ok(manifest) => {
            let mut kept = Vec::new();
            for segment in &manifest.segments {
                if storage.head(&segment.path)?.is_none() {
                    report.missing.push(segment.path.clone());
                    continue;
                }
                match check_segment(&source, segment) {
                    Ok(()) => kept.push(segment.clone()),
                    Err(problem) => quarantine_remote(storage, segment, problem, &mut report)?,
                }
            }
            (manifest, kept)
        }
        Err(StoreError::ManifestMissing { .. }) => {
            report.rebuilt = true;
            (Manifest::new(), rebuild_remote(storage, &mut report)?)
        }
        Err(StoreError::Corrupt { path, .. }) if path.contains(remote::MANIFESTS_DIR) => {
            report.rebuilt = true;
            report.damaged_manifest_kept_as = Some(path);
            let old = Manifest {
                generation: remote::newest_generation(storage)?.unwrap_or(0),
                ..Manifest::new()
            };
            (old, rebuild_remote(storage, &mut report)?)
        }
        Err(e) => return Err(e),
    };
    report.segments_kept = kept.len();
    report.generation = old.generation;
    if !report.changed() {
        return Ok(report);
    }
    let quarantined = storage
        .list(QUARANTINE_DIR)?
        .iter()
        .filter_map(|o| {
            o.key
                .rsplit('/')
                .next()
                .and_then(super::manifest::parse_segment_file_name)
        })
        .max();
    let manifest = repaired_manifest(&old, kept, quarantined);
    if remote::create_manifest(storage, &manifest)? == Created::AlreadyExists {
        return Err(StoreError::Conflict {
            location: storage.root().to_string(),
            message: "another writer committed during the repair; nothing was committed: run \
                      it again"
                .into(),
        });
    }
    super::delta::catch_up(table, scope, &manifest)?;
    report.generation = manifest.generation;
    Ok(report)
}

/// Manifest entries rebuilt from the segment objects under the prefix,
/// each read in full; those that do not read are quarantined.
fn rebuild_remote(
    storage: &ObjectStorage,
    report: &mut RepairReport,
) -> Result<Vec<SegmentMeta>, StoreError> {
    let source = remote::ObjectSegments::new(storage);
    let mut kept = Vec::new();
    for listed in storage.list(SEGMENTS_DIR)? {
        let Some((day, id)) = remote::segment_of_key(&listed.key) else {
            continue;
        };
        let mut meta = unchecked_entry(day, id, listed.size);
        match describe(&source, &mut meta) {
            Ok(()) => kept.push(meta),
            Err(problem) => quarantine_remote(storage, &meta, problem, report)?,
        }
    }
    Ok(kept)
}

/// Moves a damaged segment object to `quarantine/day=DAY/` (a copy, then
/// the original's deletion; never over an earlier repair's).
fn quarantine_remote(
    storage: &ObjectStorage,
    segment: &SegmentMeta,
    problem: String,
    report: &mut RepairReport,
) -> Result<(), StoreError> {
    let Some(bytes) = storage.get(&segment.path)? else {
        report.missing.push(segment.path.clone());
        return Ok(());
    };
    let name = super::manifest::segment_file_name(segment.id);
    let mut to = format!("{QUARANTINE_DIR}/day={}/{name}", segment.day);
    if storage.head(&to)?.is_some() {
        to = format!("{to}.{}", crate::time::now_ms());
    }
    storage.put_overwrite(&to, bytes)?;
    storage.delete(&segment.path)?;
    report.quarantined.push(DamagedSegment {
        path: segment.path.clone(),
        problem,
    });
    Ok(())
}
