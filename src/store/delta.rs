//! A Delta Lake transaction log beside the manifest of a store on object
//! storage (`_delta_log/`), so that Spark, Trino, Databricks, delta-rs and
//! DuckDB's `delta` extension read the store's segments as one table,
//! partitioned by `day`, with no metastore and no copy.
//!
//! The log follows the store, never leads it: after each commit the writer
//! brings the log up to the manifest ([`catch_up`]): one Delta commit that
//! adds the segments the table lacks and removes those the manifest no
//! longer lists (compaction and retention are remove plus add), with a new
//! `metaData` when a label column appears (a file without the column reads
//! as null for it, as Delta readers do for any column a file lacks). Its
//! version is created with a conditional create like the manifest's, so two
//! writers catching up at once cannot both write version N; the loser reads
//! the log again and writes only what is still missing. A writer killed
//! between the manifest and the log leaves the log one commit behind, and
//! the next writer's catch-up closes the gap.
//!
//! What is written, per the Delta protocol (reader version 1, writer
//! version 2): `protocol` and `metaData` in version 0; `add` with the
//! file's path relative to the table root, its `day` partition value, size
//! and `numRecords` statistics; `remove` with a deletion timestamp; and a
//! `commitInfo` in each version. Segments removed from the table stay in
//! the bucket for the store's grace period (as `VACUUM`'s retention keeps
//! them for time travel), then the store's sweep deletes them.

use super::StoreError;
use super::manifest::{Manifest, SegmentMeta};
use super::object::{Created, ObjectStorage};
use super::remote::{key_number, numbered_key};
use super::segment::{METRIC_COLUMN, TIMESTAMP_COLUMN, VALUE_COLUMN};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The log's directory under the table root (the store's prefix).
pub const DELTA_LOG_DIR: &str = "_delta_log";
/// The partition column: a segment's UTC day, in its path as `day=...`.
const PARTITION_COLUMN: &str = "day";
/// How many times a catch-up starts again after another writer wrote the
/// version it meant to write.
const MAX_ATTEMPTS: usize = 16;

/// The key of the log's commit `version`.
pub fn commit_key(version: u64) -> String {
    numbered_key(DELTA_LOG_DIR, version)
}

/// The version a log key names, if it is a commit's.
fn commit_version(key: &str) -> Option<u64> {
    key_number(DELTA_LOG_DIR, key)
}

/// The table as its log says it is now.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct TableState {
    /// The newest version; `None` before the first commit.
    pub version: Option<u64>,
    /// The table's id (`metaData.id`).
    pub id: Option<String>,
    /// Data files in the table, by path, with their partition's day.
    pub files: BTreeMap<String, String>,
    /// The schema's label columns (every column but the fixed ones).
    pub labels: BTreeSet<String>,
}

/// Replays the log: every commit in version order.
pub(super) fn read_state(storage: &ObjectStorage) -> Result<TableState, StoreError> {
    let mut versions: Vec<u64> = storage
        .list(DELTA_LOG_DIR)?
        .iter()
        .filter_map(|o| commit_version(&o.key))
        .collect();
    versions.sort_unstable();
    let mut state = TableState::default();
    for (expected, &version) in versions.iter().enumerate() {
        let key = commit_key(version);
        let location = format!("{}/{key}", storage.root());
        let corrupt = |message: String| StoreError::Corrupt {
            path: location.clone(),
            message,
        };
        if version != expected as u64 {
            return Err(corrupt(format!(
                "the Delta log has no version {expected} before version {version}"
            )));
        }
        let bytes = storage
            .get(&key)?
            .ok_or_else(|| corrupt("listed, then gone".into()))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let action: Value =
                serde_json::from_str(line).map_err(|e| corrupt(format!("line {}: {e}", n + 1)))?;
            apply(&mut state, &action).map_err(|m| corrupt(format!("line {}: {m}", n + 1)))?;
        }
        state.version = Some(version);
    }
    Ok(state)
}

/// Applies one action of the log to the state.
fn apply(state: &mut TableState, action: &Value) -> Result<(), String> {
    if let Some(add) = action.get("add") {
        let path = add["path"].as_str().ok_or("an add without a path")?;
        let day = add["partitionValues"][PARTITION_COLUMN]
            .as_str()
            .unwrap_or_default();
        state.files.insert(path.to_string(), day.to_string());
    } else if let Some(remove) = action.get("remove") {
        let path = remove["path"].as_str().ok_or("a remove without a path")?;
        state.files.remove(path);
    } else if let Some(meta) = action.get("metaData") {
        state.id = meta["id"].as_str().map(str::to_string);
        let schema: Value = serde_json::from_str(meta["schemaString"].as_str().unwrap_or("{}"))
            .map_err(|e| format!("schemaString: {e}"))?;
        state.labels = schema["fields"]
            .as_array()
            .ok_or("a schema without fields")?
            .iter()
            .filter_map(|f| f["name"].as_str())
            .filter(|n| {
                ![
                    METRIC_COLUMN,
                    TIMESTAMP_COLUMN,
                    VALUE_COLUMN,
                    PARTITION_COLUMN,
                ]
                .contains(n)
            })
            .map(str::to_string)
            .collect();
    }
    Ok(())
}

/// The table's schema with these label columns, as `schemaString` holds it.
fn schema_string(labels: &BTreeSet<String>) -> String {
    let field = |name: &str, kind: &str, nullable: bool| json!({"name": name, "type": kind, "nullable": nullable, "metadata": {}});
    let mut fields = vec![field(METRIC_COLUMN, "string", false)];
    fields.extend(labels.iter().map(|l| field(l, "string", true)));
    fields.push(field(TIMESTAMP_COLUMN, "timestamp", false));
    fields.push(field(VALUE_COLUMN, "double", false));
    fields.push(field(PARTITION_COLUMN, "string", false));
    json!({"type": "struct", "fields": fields}).to_string()
}

/// A table id in UUID form, from the system's randomness (std's hasher
/// keys) and the time.
fn new_table_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(crate::time::now_ms() as u128 * 31 + i as u128);
        h.write_u32(std::process::id());
        *w = h.finish();
    }
    let [a, b] = words;
    // Version 4, variant 1.
    let a = (a & !0xF000) | 0x4000;
    let b = (b & !(0xC << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// Whether a table path is one of the store `scope` names: a shard's
/// (`shards/NAME/...`), or with an empty scope the root's own (any path
/// outside `shards/`).
fn in_scope(path: &str, scope: &str) -> bool {
    if scope.is_empty() {
        !path.starts_with(&format!("{}/", super::SHARDS_DIR))
    } else {
        path.starts_with(scope)
    }
}

/// The actions that take the files of `scope` in the table from `state`
/// to `manifest` (its paths relative to `scope`); empty when they are
/// there already. Other shards' files are left as they are.
fn actions_to(state: &TableState, scope: &str, manifest: &Manifest, now_ms: i64) -> Vec<Value> {
    let listed: BTreeMap<String, &SegmentMeta> = manifest
        .segments
        .iter()
        .map(|s| (format!("{scope}{}", s.path), s))
        .collect();
    let mut actions = Vec::new();
    let labels: BTreeSet<String> = state
        .labels
        .iter()
        .cloned()
        .chain(
            manifest
                .segments
                .iter()
                .flat_map(|s| s.labels.iter().cloned()),
        )
        .collect();
    let first = state.version.is_none();
    if first {
        actions.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
    }
    if first || labels != state.labels {
        actions.push(json!({"metaData": {
            "id": state.id.clone().unwrap_or_else(new_table_id),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string(&labels),
            "partitionColumns": [PARTITION_COLUMN],
            "configuration": {},
            "createdTime": now_ms,
        }}));
    }
    for (path, day) in &state.files {
        if in_scope(path, scope) && !listed.contains_key(path.as_str()) {
            actions.push(json!({"remove": {
                "path": path,
                "deletionTimestamp": now_ms,
                "dataChange": true,
                "extendedFileMetadata": false,
                "partitionValues": {PARTITION_COLUMN: day},
            }}));
        }
    }
    for (path, segment) in &listed {
        if !state.files.contains_key(path) {
            actions.push(json!({"add": {
                "path": path,
                "partitionValues": {PARTITION_COLUMN: segment.day},
                "size": segment.bytes,
                "modificationTime": now_ms,
                "dataChange": true,
                "stats": json!({"numRecords": segment.rows}).to_string(),
            }}));
        }
    }
    actions
}

/// Brings the log up to `manifest`, just committed: writes the next
/// version with what the table lacks, unless nothing does. Returns the
/// version written; a failure is [`StoreError::DeltaLogBehind`], since the
/// commit it follows stands.
pub fn catch_up(
    storage: &ObjectStorage,
    scope: &str,
    manifest: &Manifest,
) -> Result<Option<u64>, StoreError> {
    write_missing(storage, scope, manifest).map_err(|e| StoreError::DeltaLogBehind {
        location: format!("{}/{DELTA_LOG_DIR}", storage.root()),
        source: Box::new(e),
    })
}

/// [`catch_up`]'s work, with its errors as they happened.
fn write_missing(
    storage: &ObjectStorage,
    scope: &str,
    manifest: &Manifest,
) -> Result<Option<u64>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let state = read_state(storage)?;
        let now = crate::time::now_ms();
        let mut actions = actions_to(&state, scope, manifest, now);
        if actions.is_empty() {
            return Ok(None);
        }
        actions.push(json!({"commitInfo": {
            "timestamp": now,
            "operation": "WRITE",
            "operationParameters": {"mode": "Append", "partitionBy": json!([PARTITION_COLUMN]).to_string()},
            "engineInfo": concat!("mcpops/", env!("CARGO_PKG_VERSION")),
            "mcpopsGeneration": manifest.generation,
        }}));
        let mut text = String::new();
        for a in &actions {
            text.push_str(&a.to_string());
            text.push('\n');
        }
        let version = state.version.map_or(0, |v| v + 1);
        match storage.put_create(&commit_key(version), Bytes::from(text))? {
            Created::Created => return Ok(Some(version)),
            // Another writer wrote this version: read the log again.
            Created::AlreadyExists => continue,
        }
    }
    Err(StoreError::Conflict {
        location: format!("{}/{DELTA_LOG_DIR}", storage.root()),
        message: format!(
            "other writers wrote the Delta log's next version {MAX_ATTEMPTS} times in a row; \
             the next commit brings it up to date"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(id: u64, day: &str, labels: &[&str]) -> SegmentMeta {
        SegmentMeta {
            id,
            day: day.into(),
            path: super::super::manifest::segment_path(day, id),
            rows: 10,
            series: 1,
            min_ts: 0,
            max_ts: 0,
            bytes: 100,
            duplicates: 0,
            metrics: vec!["m".into()],
            labels: labels.iter().map(|s| s.to_string()).collect(),
            checksums: None,
            committed: 1,
        }
    }

    fn replay(actions: &[Value], state: &mut TableState) {
        for a in actions {
            apply(state, a).unwrap();
        }
        state.version = Some(state.version.map_or(0, |v| v + 1));
    }

    #[test]
    fn the_log_follows_the_manifest_through_adds_removes_and_a_new_label() {
        let mut manifest = Manifest::new();
        manifest.segments = vec![segment(0, "2026-01-01", &["server"])];
        let mut state = TableState::default();
        let first = actions_to(&state, "", &manifest, 1);
        assert!(first[0].get("protocol").is_some(), "{first:?}");
        assert!(first[1].get("metaData").is_some(), "{first:?}");
        assert_eq!(first.len(), 3, "{first:?}");
        replay(&first, &mut state);
        assert_eq!(state.labels, BTreeSet::from(["server".to_string()]));
        assert!(actions_to(&state, "", &manifest, 2).is_empty());
        // A compaction: segment 0 replaced by 1, which has a new label.
        manifest.segments = vec![segment(1, "2026-01-01", &["region", "server"])];
        let next = actions_to(&state, "", &manifest, 3);
        let kinds: Vec<&str> = next
            .iter()
            .map(|a| a.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        assert_eq!(kinds, ["metaData", "remove", "add"]);
        replay(&next, &mut state);
        assert_eq!(state.files.len(), 1);
        assert!(state.files.contains_key(&manifest.segments[0].path));
        assert_eq!(state.labels.len(), 2);
        assert_eq!(state.id.as_deref().map(str::len), Some(36));
    }

    #[test]
    fn a_shard_catches_up_only_its_own_files() {
        let mut state = TableState::default();
        let mut east = Manifest::new();
        east.segments = vec![segment(0, "2026-01-01", &["site"])];
        replay(&actions_to(&state, "shards/east/", &east, 1), &mut state);
        let mut root = Manifest::new();
        root.segments = vec![segment(0, "2026-01-01", &[])];
        replay(&actions_to(&state, "", &root, 2), &mut state);
        assert_eq!(
            state.files.keys().collect::<Vec<_>>(),
            [
                "segments/day=2026-01-01/seg-0000000000.parquet",
                "shards/east/segments/day=2026-01-01/seg-0000000000.parquet"
            ]
        );
        // The root emptied: the shard's file stays.
        replay(&actions_to(&state, "", &Manifest::new(), 3), &mut state);
        assert_eq!(state.files.len(), 1);
        assert!(state.files.keys().all(|p| p.starts_with("shards/east/")));
        assert!(actions_to(&state, "shards/east/", &east, 4).is_empty());
    }

    #[test]
    fn commit_keys_parse_back_and_nothing_else_does() {
        assert_eq!(commit_key(3), "_delta_log/00000000000000000003.json");
        assert_eq!(commit_version(&commit_key(3)), Some(3));
        for other in [
            "_delta_log/00000000000000000003.checkpoint.parquet",
            "_delta_log/_last_checkpoint",
            "_delta_log/3.json",
        ] {
            assert_eq!(commit_version(other), None, "{other}");
        }
    }
}
