//! `mcpops sync FROM TO`: makes one store hold what another holds, in one
//! commit of the destination: a local store pushed to object storage or
//! pulled back, or copied between two of either. Segments are copied as
//! they are (their bytes, checked against the source's checksums on the
//! way), never decoded, and what the destination already holds is not
//! copied again.
//!
//! A destination segment counts as already there when it has the same day,
//! size, rows and checksums as the source's. Duplicate samples resolve to
//! the newest write, so the destination must rank its segments as the
//! source does: segments are copied in the source's write order, and only
//! the longest run of the source's oldest segments that the destination
//! holds, in the same order, is kept; everything after it is copied (a
//! compaction in the source replaces what follows), and whatever else the
//! destination held is removed in the same commit.

use super::checksum::checksums_of_bytes;
use super::manifest::SegmentMeta;
use super::{CommitSummary, Store, StoreError};
use crate::metadata::TypeSource;
use crate::model::SampleSink;
use serde::Serialize;

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSummary {
    pub from: String,
    pub to: String,
    /// Segments the source lists.
    pub segments: usize,
    /// Of those, the ones copied.
    pub copied: usize,
    pub bytes_copied: u64,
    /// Segments the destination held and keeps.
    pub kept: usize,
    /// Segments the destination held and dropped.
    pub removed: usize,
    /// The destination's generation after the sync.
    pub generation: u64,
    #[serde(skip)]
    pub commit: CommitSummary,
}

/// Whether two manifest entries describe the same bytes.
fn same_segment(a: &SegmentMeta, b: &SegmentMeta) -> bool {
    a.checksums.is_some()
        && a.checksums == b.checksums
        && a.day == b.day
        && a.bytes == b.bytes
        && a.rows == b.rows
}

impl Store {
    /// Makes this store hold exactly the segments of `from`'s committed
    /// state (a live store's unflushed head is not in segments: flush it
    /// first), in one commit; see the module doc.
    pub fn sync_from(&self, from: &Store) -> Result<SyncSummary, StoreError> {
        // The manifest only: a live store's log (which a snapshot would
        // replay) is not synced.
        let source = from.existing_manifest()?;
        let mut writer = self.writer()?;
        if source.segments.is_empty() && !writer.manifest().segments.is_empty() {
            // A mistyped source reads as an empty store: syncing it would
            // empty the destination.
            return Err(StoreError::Invalid(format!(
                "{} holds no segments: syncing it would empty {}",
                from.location(),
                self.location()
            )));
        }
        let mut wanted: Vec<&SegmentMeta> = source.segments.iter().collect();
        wanted.sort_by_key(|s| s.write_rank());
        let held = writer.manifest().clone();
        let mut have: Vec<&SegmentMeta> = held.segments.iter().collect();
        have.sort_by_key(|s| s.write_rank());
        let kept = wanted
            .iter()
            .zip(&have)
            .take_while(|(w, h)| same_segment(w, h))
            .count();
        let reader = from.source();
        let mut summary = SyncSummary {
            from: from.location(),
            to: self.location(),
            segments: wanted.len(),
            kept,
            ..SyncSummary::default()
        };
        for segment in &wanted[kept..] {
            let bytes = reader.read(segment, 0..segment.bytes)?;
            if let Some(expected) = &segment.checksums {
                let found = checksums_of_bytes(&bytes)
                    .map_err(|e| StoreError::parquet(reader.name(segment), e))?;
                if &found != expected {
                    return Err(StoreError::Corrupt {
                        path: reader.name(segment),
                        message: "its bytes do not match the checksums the manifest records; \
                                  `mcpops verify` on the source says more"
                            .into(),
                    });
                }
            }
            writer.add_copy(segment, bytes)?;
            summary.copied += 1;
            summary.bytes_copied += segment.bytes;
        }
        for segment in &have[kept..] {
            writer.remove_segment(segment.id);
            summary.removed += 1;
        }
        for (name, meta) in &source.metadata {
            if meta.source == TypeSource::Declared {
                writer.describe(name, meta.clone());
            }
        }
        let commit = writer.commit()?;
        summary.generation = commit.generation;
        summary.commit = commit;
        Ok(summary)
    }
}
