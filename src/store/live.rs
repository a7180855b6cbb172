//! The live store `mcpops watch` writes into: appends that are durable when
//! they return, an in-memory head of recent samples, and flushes of the head
//! into the day's Parquet segments through the ordinary atomic commit.
//! Snapshots taken here see the head and the segments together.
//!
//! The door: [`LiveStore::open`], [`LiveStore::append`] (a batch of samples
//! and metadata, as a [`MemorySink`] holds them), [`LiveStore::snapshot`],
//! [`LiveStore::flush`], [`LiveStore::stats`].

use super::{CommitSummary, Snapshot, Store, StoreError};
use crate::model::{MemorySink, SampleSink};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// When the head is flushed into segments.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Flush once the head holds this many samples.
    pub flush_samples: usize,
    /// Flush at least this often while the head holds anything.
    pub flush_interval: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            flush_samples: 2_000_000,
            flush_interval: Duration::from_secs(600),
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
    pub wal_bytes: u64,
    pub head_samples: u64,
    pub head_series: u64,
    pub late_samples: u64,
    pub flushes: u64,
    pub flush_failures: u64,
}

/// A store being written continuously by one process.
pub struct LiveStore {
    store: Store,
    _options: LiveOptions,
    stats: Mutex<LiveStats>,
}

impl LiveStore {
    /// Opens (or creates) the store at `root` for live writing.
    pub fn open(root: &Path, options: LiveOptions) -> Result<LiveStore, StoreError> {
        Ok(LiveStore {
            store: Store::open(root),
            _options: options,
            stats: Mutex::new(LiveStats::default()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores a batch; when this returns `Ok`, the batch survives a crash.
    // Provisional: one commit per batch. The write-ahead log and head replace it.
    pub fn append(&self, batch: &MemorySink) -> Result<AppendSummary, StoreError> {
        let mut writer = self.store.writer()?;
        let ids: Vec<u32> = batch
            .series
            .iter()
            .map(|k| writer.intern(k.clone()))
            .collect();
        for (metric, meta) in &batch.metadata {
            writer.describe(metric, meta.clone());
        }
        for &(s, t, v) in &batch.samples {
            writer
                .push(ids[s as usize], t, v)
                .map_err(|e| StoreError::Invalid(e.0))?;
        }
        writer.commit()?;
        Ok(AppendSummary {
            samples: batch.samples.len() as u64,
            late: 0,
        })
    }

    /// The segments and the head as they are now.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.store.snapshot()
    }

    /// Writes the head into segments now.
    pub fn flush(&self) -> Result<Option<CommitSummary>, StoreError> {
        Ok(None)
    }

    pub fn stats(&self) -> LiveStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
