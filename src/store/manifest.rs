//! The manifest: the one file that says which segments make up the store.
//! It is replaced atomically (temporary file, fsync, rename, fsync of the
//! directory), so a reader always sees a whole commit or the one before it.

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// Bumped by every commit.
    pub generation: u64,
    pub next_segment_id: u64,
    pub segments: Vec<SegmentMeta>,
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
}

impl Manifest {
    pub fn new() -> Self {
        Manifest {
            format: FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// Reads the manifest of a store; a store without one is empty.
    pub fn load(root: &Path) -> Result<Manifest, StoreError> {
        let path = root.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::new()),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
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
        Ok(manifest)
    }

    /// Replaces the manifest atomically.
    pub fn store(&self, root: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Corrupt {
            path: root.join(MANIFEST_FILE).display().to_string(),
            message: e.to_string(),
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

/// Writes `dir/name` through a synced temporary file and a rename.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
    file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(|e| StoreError::io(&target, e))?;
    sync_dir(dir)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}
