//! The store's layout on object storage, where nothing can be renamed:
//! segments under the same keys as on disk
//! (`segments/day=YYYY-MM-DD/seg-N.parquet`), and instead of one
//! `manifest.json` replaced in place, one manifest object per commit,
//! `_mcpops/manifests/GENERATION.json` (twenty digits, so that keys sort as
//! generations do). A commit is the conditional create (`If-None-Match: *`)
//! of the next generation's manifest: of two writers that read the same
//! snapshot only one can create it, and the other learns so (HTTP 412)
//! and rebases onto the winner's manifest. A reader lists the manifests
//! and reads the newest, so it always sees a whole commit.
//!
//! Segments are uploaded before the manifest that names them, each with a
//! conditional create too, so that two writers that picked the same id
//! never overwrite each other's file: the second takes the next id. Objects
//! that no manifest names (a writer killed before its commit, segments a
//! compaction replaced) are ignored by readers and deleted by a later
//! writer ([`sweep`]), but only once no manifest written within the grace
//! period names them and they are older than it: a reader that took its
//! snapshot less than that long ago never loses a file under it.

use super::manifest::{Manifest, SegmentMeta, parse_day_dir_name, parse_segment_file_name};
use super::object::{Created, ObjectStorage};
use super::source::SegmentSource;
use super::{SEGMENTS_DIR, StoreError};
use bytes::Bytes;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// Where the manifests live, under the store's prefix.
pub const MANIFESTS_DIR: &str = "_mcpops/manifests";

/// How long an object no manifest names is kept by default: a reader's
/// snapshot older than this may lose segments that a later compaction or
/// retention replaced (`MCPOPS_S3_GRACE_SECS` overrides it).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// The key of the `n`th of a series of JSON objects in `dir` (manifests,
/// Delta commits): twenty digits, so that keys sort as numbers do.
pub fn numbered_key(dir: &str, n: u64) -> String {
    format!("{dir}/{n:020}.json")
}

/// The number a key of [`numbered_key`]'s form in `dir` names, if it is one.
pub fn key_number(dir: &str, key: &str) -> Option<u64> {
    let digits = key
        .strip_prefix(dir)?
        .strip_prefix('/')?
        .strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The key of generation `generation`'s manifest.
pub fn manifest_key(generation: u64) -> String {
    numbered_key(MANIFESTS_DIR, generation)
}

/// The generation a manifest key names, if it is one.
fn manifest_generation(key: &str) -> Option<u64> {
    key_number(MANIFESTS_DIR, key)
}

/// The grace period: [`DEFAULT_GRACE`] unless `MCPOPS_S3_GRACE_SECS` says.
pub fn grace_from_env() -> Result<Duration, StoreError> {
    match std::env::var("MCPOPS_S3_GRACE_SECS") {
        Err(_) => Ok(DEFAULT_GRACE),
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                StoreError::Invalid(format!(
                    "MCPOPS_S3_GRACE_SECS: {text:?} is not a whole number of seconds"
                ))
            }),
    }
}

/// The newest committed manifest: an empty one when none was ever written.
/// A missing bucket or refused access is an error, never an empty store.
pub fn load_manifest(storage: &ObjectStorage) -> Result<Manifest, StoreError> {
    // A manifest listed and then swept before it is read (a writer removes
    // old ones) is gone because a newer one exists: list again.
    for _ in 0..3 {
        let Some(generation) = newest_generation(storage)? else {
            // No commit, but segments: the manifests were lost (deleted
            // by hand, a lifecycle rule), or the first writer died before
            // its commit. Read as empty, the store would show nothing and
            // its next writer would sweep the segments: `mcpops repair`
            // rebuilds the manifest from them instead.
            let segments = storage
                .list(SEGMENTS_DIR)?
                .iter()
                .filter(|o| segment_of_key(&o.key).is_some())
                .count();
            if segments > 0 {
                return Err(StoreError::ManifestMissing {
                    path: format!("{}/{MANIFESTS_DIR}", storage.root()),
                    segments,
                });
            }
            return Ok(Manifest::new());
        };
        let key = manifest_key(generation);
        if let Some(bytes) = storage.get(&key)? {
            let location = format!("{}/{key}", storage.root());
            let text = std::str::from_utf8(&bytes).map_err(|e| StoreError::Corrupt {
                path: location.clone(),
                message: format!("not UTF-8: {e}"),
            })?;
            let manifest = Manifest::parse(Path::new(&location), text)?;
            if manifest.generation != generation {
                return Err(StoreError::Corrupt {
                    path: location,
                    message: format!(
                        "holds generation {} under the key of generation {generation}",
                        manifest.generation
                    ),
                });
            }
            return Ok(manifest);
        }
    }
    Err(StoreError::Remote {
        op: "get",
        location: format!("{}/{MANIFESTS_DIR}", storage.root()),
        kind: super::RemoteKind::Other,
        message: "the newest manifest vanished three times between listing and reading".into(),
    })
}

/// The generation of the newest manifest listed, readable or not.
pub fn newest_generation(storage: &ObjectStorage) -> Result<Option<u64>, StoreError> {
    Ok(storage
        .list(MANIFESTS_DIR)?
        .iter()
        .filter_map(|o| manifest_generation(&o.key))
        .max())
}

/// Creates `manifest`'s object if no commit of its generation exists yet.
pub fn create_manifest(
    storage: &ObjectStorage,
    manifest: &Manifest,
) -> Result<Created, StoreError> {
    let key = manifest_key(manifest.generation);
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::Corrupt {
        path: format!("{}/{key}", storage.root()),
        message: e.to_string(),
    })?;
    storage.put_create(&key, Bytes::from(text))
}

/// The segments of a store on object storage, read by ranged GETs.
pub struct ObjectSegments<'a> {
    storage: &'a ObjectStorage,
}

impl<'a> ObjectSegments<'a> {
    pub fn new(storage: &'a ObjectStorage) -> Self {
        ObjectSegments { storage }
    }
}

impl SegmentSource for ObjectSegments<'_> {
    fn name(&self, segment: &SegmentMeta) -> String {
        format!("{}/{}", self.storage.root(), segment.path)
    }

    fn len(&self, segment: &SegmentMeta) -> Result<u64, StoreError> {
        self.storage
            .head(&segment.path)?
            .ok_or_else(|| StoreError::Corrupt {
                path: self.name(segment),
                message: "the manifest lists this segment but the object is gone".into(),
            })
    }

    fn read(&self, segment: &SegmentMeta, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.storage.get_range(&segment.path, range)
    }
}

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub segments: usize,
    pub manifests: usize,
}

/// Deletes what no reader can still need: segment objects of the store's
/// naming that neither `newest` nor any manifest younger than `grace`
/// names, when they are older than `grace` themselves (a writer uploading
/// now has not committed yet); and manifests older than `grace` other
/// than the newest. Best effort: a failed delete is left for the next
/// writer.
pub fn sweep(
    storage: &ObjectStorage,
    newest: &Manifest,
    grace: Duration,
) -> Result<Swept, StoreError> {
    let now = chrono::Utc::now();
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let old = |t: chrono::DateTime<chrono::Utc>| now.signed_duration_since(t) > grace;
    let mut named: HashSet<(String, u64)> = newest
        .segments
        .iter()
        .map(|s| (s.day.clone(), s.id))
        .collect();
    let mut swept = Swept::default();
    for listed in storage.list(MANIFESTS_DIR)? {
        let Some(generation) = manifest_generation(&listed.key) else {
            continue;
        };
        if generation >= newest.generation {
            continue;
        }
        if old(listed.last_modified) {
            if storage.delete(&listed.key).is_ok() {
                swept.manifests += 1;
            }
            continue;
        }
        // A recent snapshot: what it names stays.
        if let Some(bytes) = storage.get(&listed.key)?
            && let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(m) = serde_json::from_str::<Manifest>(text)
        {
            named.extend(m.segments.iter().map(|s| (s.day.clone(), s.id)));
        } else {
            // Unreadable: nothing can be known to be unneeded.
            return Ok(swept);
        }
    }
    for listed in storage.list(SEGMENTS_DIR)? {
        let Some((day, id)) = segment_of_key(&listed.key) else {
            continue;
        };
        if !named.contains(&(day.to_string(), id))
            && old(listed.last_modified)
            && storage.delete(&listed.key).is_ok()
        {
            swept.segments += 1;
        }
    }
    Ok(swept)
}

/// The (day, id) of a key of the store's segment naming.
pub(super) fn segment_of_key(key: &str) -> Option<(&str, u64)> {
    let rest = key.strip_prefix(SEGMENTS_DIR)?.strip_prefix('/')?;
    let (dir, file) = rest.split_once('/')?;
    Some((parse_day_dir_name(dir)?, parse_segment_file_name(file)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_sort_as_generations_and_parse_back() {
        assert_eq!(
            manifest_key(7),
            "_mcpops/manifests/00000000000000000007.json"
        );
        assert!(manifest_key(9) < manifest_key(10));
        assert_eq!(manifest_generation(&manifest_key(u64::MAX)), Some(u64::MAX));
        for bad in [
            "_mcpops/manifests/7.json",
            "_mcpops/manifests/0000000000000000000x.json",
            "_mcpops/manifests/00000000000000000007.json.tmp",
            "other/00000000000000000007.json",
        ] {
            assert_eq!(manifest_generation(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_store_s_segment_keys_are_segments() {
        assert_eq!(
            segment_of_key("segments/day=2026-01-02/seg-0000000003.parquet"),
            Some(("2026-01-02", 3))
        );
        for other in [
            "segments/day=2026-13-02/seg-0000000003.parquet",
            "segments/day=2026-01-02/notes.txt",
            "segments/seg-0000000003.parquet",
            "elsewhere/day=2026-01-02/seg-0000000003.parquet",
        ] {
            assert_eq!(segment_of_key(other), None, "{other}");
        }
    }
}
