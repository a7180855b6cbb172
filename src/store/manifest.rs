//! The manifest: the one file that says which segments make up the store.
//! It is replaced atomically (temporary file, fsync, rename, fsync of the
//! directory), so a reader always sees a whole commit or the one before it.
//! Loading it checks what a writer would later act on: every entry names a
//! segment inside the store's own layout, so no manifest can make a writer
//! delete or a reader open a file elsewhere; and a store whose manifest is
//! gone while segments remain is reported, not read as empty.

use super::{SEGMENTS_DIR, StoreError};
use crate::fsutil::AtomicFile;
use crate::metadata::MetricMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// Bumped by every commit.
    pub generation: u64,
    pub next_segment_id: u64,
    pub segments: Vec<SegmentMeta>,
    /// What each stored metric name is (type, unit, help, declared or
    /// inferred), merged at each commit. Manifests written before it was
    /// kept have none: their types are inferred when read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, MetricMeta>,
}

/// What a commit records of each segment, enough to prune without opening it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    pub id: u64,
    /// `YYYY-MM-DD`, the UTC day every row of the segment falls in.
    pub day: String,
    /// Relative to the store root, with `/` separators.
    pub path: String,
    pub rows: u64,
    pub series: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub bytes: u64,
    /// Rows that repeat the (series, timestamp) of the row before them;
    /// `compact` removes them.
    #[serde(default)]
    pub duplicates: u64,
    /// Distinct metric names, sorted.
    pub metrics: Vec<String>,
    /// Label columns, sorted.
    pub labels: Vec<String>,
    /// CRC-32 checksums of the file's bytes, verified as they are read.
    /// Segments written before checksums were kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<SegmentChecksums>,
    /// The generation of the commit that added the segment; 0 in entries
    /// written before it was kept, and in entries rebuilt by a repair.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub committed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a segment's rows rank among the store's writes, for letting the
/// newest write of a (series, timestamp) win: a later commit's rows are
/// newer, and within a commit a higher id's. Ids alone would do under one
/// writer at a time, which takes them in commit order; writers that commit
/// optimistically (each from the snapshot it read) need not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WriteRank {
    pub committed: u64,
    pub id: u64,
}

/// CRC-32s (the polynomial of zlib and of Parquet's own page checksums) of
/// the regions a reader reads at once: the footer region when it opens the
/// segment, and a row group's column chunks when it decodes them. A flipped
/// byte anywhere a read touches is found before its data is used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentChecksums {
    /// Of each row group's column chunks (contiguous in the file), in order.
    pub row_groups: Vec<u32>,
    /// How many bytes follow the last row group: page index and footer.
    pub footer_bytes: u64,
    /// Of those bytes.
    pub footer: u32,
}

impl SegmentMeta {
    pub fn write_rank(&self) -> WriteRank {
        WriteRank {
            committed: self.committed,
            id: self.id,
        }
    }

    /// The one path an entry may name: `segments/day=DAY/seg-ID.parquet`,
    /// its own day and id. Anything else (`../x`, an absolute path) is a
    /// damaged or hostile manifest.
    pub fn expected_path(&self) -> String {
        segment_path(&self.day, self.id)
    }
}

/// Where segment `id` of `day` lives, relative to the store root.
pub fn segment_path(day: &str, id: u64) -> String {
    format!("{SEGMENTS_DIR}/day={day}/{}", segment_file_name(id))
}

/// A segment's file name.
pub fn segment_file_name(id: u64) -> String {
    format!("seg-{id:010}.parquet")
}

/// The id of a segment file name (`seg-0000000012.parquet`), if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".parquet")?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The day of a day directory's name (`day=2026-11-16`), if it is one.
pub fn parse_day_dir_name(name: &str) -> Option<&str> {
    let day = name.strip_prefix("day=")?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == day)
        .map(|_| day)
}

impl Manifest {
    pub fn new() -> Self {
        Manifest {
            format: FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// Reads the manifest of a store. A store without one is empty, unless
    /// segment files are there: then the manifest was lost, and reading the
    /// store as empty (or a writer sweeping the files as orphans) would lose
    /// them; that is [`StoreError::ManifestMissing`].
    pub fn load(root: &Path) -> Result<Manifest, StoreError> {
        let path = root.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let found = segment_files(root).len();
                if found > 0 {
                    return Err(StoreError::ManifestMissing {
                        path: path.display().to_string(),
                        segments: found,
                    });
                }
                super::check_store_dir(root)?;
                return Ok(Manifest::new());
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        Manifest::parse(&path, &text)
    }

    /// A manifest's text, checked: format version and entry paths.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, StoreError> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if manifest.format != FORMAT_VERSION {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                message: format!(
                    "manifest format {} is not the supported {FORMAT_VERSION}",
                    manifest.format
                ),
            });
        }
        for s in &manifest.segments {
            let day_ok = parse_day_dir_name(&format!("day={}", s.day)).is_some();
            if !day_ok || s.path != s.expected_path() {
                return Err(StoreError::Corrupt {
                    path: path.display().to_string(),
                    message: format!(
                        "segment {} names `{}`, not a segment of the store's layout ({})",
                        s.id,
                        s.path,
                        if day_ok {
                            s.expected_path()
                        } else {
                            format!("`{}` is not a day", s.day)
                        }
                    ),
                });
            }
        }
        Ok(manifest)
    }

    /// Replaces the manifest atomically.
    pub fn store(&self, root: &Path) -> Result<(), AtomicWriteError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            AtomicWriteError::NotWritten(StoreError::Corrupt {
                path: root.join(MANIFEST_FILE).display().to_string(),
                message: e.to_string(),
            })
        })?;
        write_atomically(root, MANIFEST_FILE, &text)
    }

    /// The first and last sample times of the store, `None` when it is empty.
    pub fn extent(&self) -> Option<(i64, i64)> {
        let first = self.segments.iter().map(|s| s.min_ts).min()?;
        let last = self.segments.iter().map(|s| s.max_ts).max()?;
        Some((first, last))
    }

    pub fn total_rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }
}

/// The `day=YYYY-MM-DD` directories under `root/segments` that are real
/// directories (a symlink is never followed), with their days.
pub fn day_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(days) = fs::read_dir(root.join(SEGMENTS_DIR)) else {
        return Vec::new();
    };
    days.flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|d| {
            let name = d.file_name();
            let day = name.to_str().and_then(parse_day_dir_name)?.to_string();
            Some((day, d.path()))
        })
        .collect()
}

/// The segment files under `root/segments`, by the store's own naming only
/// (`day=YYYY-MM-DD/seg-N.parquet`), regular files in real directories, in
/// day and id order.
pub fn segment_files(root: &Path) -> Vec<SegmentFile> {
    let mut found = Vec::new();
    for (day, dir) in day_dirs(root) {
        let Ok(files) = fs::read_dir(dir) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some(id) = name.to_str().and_then(parse_segment_file_name) else {
                continue;
            };
            if f.file_type().is_ok_and(|t| t.is_file()) {
                found.push(SegmentFile {
                    day: day.clone(),
                    id,
                });
            }
        }
    }
    found.sort_by(|a, b| a.day.cmp(&b.day).then(a.id.cmp(&b.id)));
    found
}

/// A segment file found on disk.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentFile {
    pub day: String,
    pub id: u64,
}

impl SegmentFile {
    pub fn path(&self) -> String {
        segment_path(&self.day, self.id)
    }
}

/// Why a replacement through [`write_atomically`] failed: before the rename
/// nothing changed; after it the new file is in place but may not survive a
/// crash, and whoever wrote it must treat it as the current one.
#[derive(Debug)]
pub enum AtomicWriteError {
    NotWritten(StoreError),
    NotDurable(StoreError),
}

/// Writes `dir/name` through a synced temporary file and a rename. The
/// temporary file is created afresh (never through a symlink planted at
/// its name).
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let target = dir.join(name);
    let not_written = |e| AtomicWriteError::NotWritten(StoreError::io(&target, e));
    let mut file = AtomicFile::create(&target).map_err(not_written)?;
    file.write_all(bytes).map_err(not_written)?;
    file.rename_into_place().map_err(not_written)?;
    sync_dir(dir).map_err(AtomicWriteError::NotDurable)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    crate::fsutil::sync_dir(dir).map_err(|e| StoreError::io(dir, e))
}
