//! The head: samples logged but not yet in segments, held in memory as the
//! batches they arrived in (each an immutable block), with the series they
//! name and, per UTC day, what a manifest entry would say of them (rows,
//! extent, metrics, labels), so that a snapshot can list the head beside
//! the segments at no cost. A [`HeadView`] is a snapshot's share of a
//! head: the blocks there were when it was taken.

use super::manifest::SegmentMeta;
use super::scan::ScanRequest;
use crate::metadata::MetricMeta;
use crate::model::{SampleSink, SeriesKey, SinkError};
use crate::time::{DAY_MS, day_of};
use std::collections::{BTreeMap, BTreeSet};
// Every scrape round and OTLP request looks its series up here: SipHash
// over label strings was a fifth of watch's CPU under scrape load.
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One appended batch, by the head's series numbers.
struct Block {
    series: Vec<u32>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

/// What one day of the head holds, as a manifest entry would say it.
#[derive(Default)]
struct Day {
    rows: u64,
    min_ts: i64,
    max_ts: i64,
    series: HashSet<u32>,
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

#[derive(Default)]
pub(super) struct HeadInner {
    series: Vec<SeriesKey>,
    index: HashMap<SeriesKey, u32>,
    /// The day each series last had a sample in, to note a series in a day
    /// once.
    last_day: Vec<i64>,
    blocks: Vec<Block>,
    samples: u64,
    days: BTreeMap<i64, Day>,
    metadata: BTreeMap<String, MetricMeta>,
}

/// One generation of the head (the live one, or one frozen for a flush).
#[derive(Default)]
pub(super) struct Head {
    inner: RwLock<HeadInner>,
    /// For a frozen head, the manifest generation whose commit holds it (0
    /// while none is under way): a snapshot whose manifest has reached it
    /// reads the head from segments and leaves this copy out.
    pub committed_in: AtomicU64,
}

impl Head {
    pub fn new() -> Arc<Head> {
        Arc::new(Head::default())
    }

    fn read(&self) -> RwLockReadGuard<'_, HeadInner> {
        // A panic while holding the lock cannot leave a block half pushed
        // (blocks are built before they are pushed): the data is sound.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HeadInner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a batch: `keys` are the batch's series, `samples` name them by
    /// index. Returns nothing; the caller has checked the samples.
    pub fn append(
        &self,
        keys: &[SeriesKey],
        samples: &[(u32, i64, f64)],
        metadata: &BTreeMap<String, MetricMeta>,
    ) {
        if samples.is_empty() && metadata.is_empty() {
            return;
        }
        let mut h = self.write();
        let ids: Vec<u32> = keys.iter().map(|k| h.intern(k)).collect();
        h.add(
            samples.iter().map(|&(s, t, v)| (ids[s as usize], t, v)),
            samples.len(),
        );
        for (m, meta) in metadata {
            h.metadata.insert(m.clone(), meta.clone());
        }
    }

    /// Adds samples already numbered by `table` (a log file's series),
    /// for replay.
    pub fn append_numbered(&self, table: &[Option<SeriesKey>], samples: &[(u32, i64, f64)]) {
        let mut h = self.write();
        let mut ids: HashMap<u32, u32> = HashMap::new();
        let mut mapped = Vec::with_capacity(samples.len());
        for &(s, t, v) in samples {
            let id = match ids.get(&s) {
                Some(&id) => id,
                None => {
                    // replay_file passes only samples of known series.
                    let Some(Some(key)) = table.get(s as usize) else {
                        continue;
                    };
                    let id = h.intern(key);
                    ids.insert(s, id);
                    id
                }
            };
            mapped.push((id, t, v));
        }
        let n = mapped.len();
        h.add(mapped.into_iter(), n);
    }

    pub fn describe(&self, metric: &str, meta: &MetricMeta) {
        self.write()
            .metadata
            .insert(metric.to_string(), meta.clone());
    }

    pub fn samples(&self) -> u64 {
        self.read().samples
    }

    pub fn series_count(&self) -> u64 {
        self.read().series.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        let h = self.read();
        h.samples == 0 && h.metadata.is_empty()
    }

    /// A snapshot's view: the blocks there are now.
    pub fn view(self: &Arc<Self>) -> HeadView {
        let blocks = self.read().blocks.len();
        HeadView {
            head: Arc::clone(self),
            blocks,
        }
    }

    /// Every sample in arrival order, and the metadata, into `sink` (a
    /// flush's store writer).
    pub fn write_into(&self, sink: &mut dyn SampleSink) -> Result<(), SinkError> {
        let h = self.read();
        let ids: Vec<u32> = h.series.iter().map(|k| sink.intern(k.clone())).collect();
        for b in &h.blocks {
            for i in 0..b.series.len() {
                sink.push(ids[b.series[i] as usize], b.timestamps[i], b.values[i])?;
            }
        }
        for (m, meta) in &h.metadata {
            sink.describe(m, meta.clone());
        }
        Ok(())
    }
}

impl HeadInner {
    fn intern(&mut self, key: &SeriesKey) -> u32 {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(key.clone());
        self.index.insert(key.clone(), id);
        self.last_day.push(i64::MIN);
        id
    }

    fn add(&mut self, samples: impl Iterator<Item = (u32, i64, f64)>, n: usize) {
        let mut block = Block {
            series: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        };
        for (s, t, v) in samples {
            block.series.push(s);
            block.timestamps.push(t);
            block.values.push(v);
            let day_index = t.div_euclid(DAY_MS);
            let day = self.days.entry(day_index).or_insert_with(|| Day {
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                ..Day::default()
            });
            day.rows += 1;
            day.min_ts = day.min_ts.min(t);
            day.max_ts = day.max_ts.max(t);
            if self.last_day[s as usize] != day_index {
                self.last_day[s as usize] = day_index;
                if day.series.insert(s) {
                    let key = &self.series[s as usize];
                    if !day.metrics.contains(&key.metric) {
                        day.metrics.insert(key.metric.clone());
                    }
                    for (l, _) in &key.labels {
                        if !day.labels.contains(l) {
                            day.labels.insert(l.clone());
                        }
                    }
                }
            }
        }
        self.samples += block.series.len() as u64;
        if !block.series.is_empty() {
            self.blocks.push(block);
        }
    }
}

/// A snapshot's share of one head generation.
#[derive(Clone)]
pub struct HeadView {
    head: Arc<Head>,
    blocks: usize,
}

impl std::fmt::Debug for HeadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeadView({} blocks)", self.blocks)
    }
}

/// A series' samples from a head, in arrival order.
pub(super) struct HeadSeries {
    pub key: SeriesKey,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

impl HeadView {
    pub(super) fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// Manifest entries describing this view, one per day (path `wal`, no
    /// file behind it), numbered downward from `id`. Their extents may run
    /// past the view's blocks (appends since): wider, never narrower, so
    /// pruning by them stays right.
    pub(super) fn entries(&self, id: u64) -> Vec<SegmentMeta> {
        let h = self.head.read();
        h.days
            .iter()
            .zip(0u64..)
            .map(|((&day_index, d), k)| SegmentMeta {
                id: id - k,
                day: day_of(day_index * DAY_MS),
                path: super::wal::WAL_DIR.to_string(),
                rows: d.rows,
                series: d.series.len() as u64,
                min_ts: d.min_ts,
                max_ts: d.max_ts,
                bytes: 0,
                duplicates: 0,
                metrics: d.metrics.iter().cloned().collect(),
                labels: d.labels.iter().cloned().collect(),
                checksums: None,
                committed: 0,
            })
            .collect()
    }

    pub(super) fn metadata(&self) -> BTreeMap<String, MetricMeta> {
        self.head.read().metadata.clone()
    }

    /// Samples in the view.
    pub(super) fn samples(&self) -> u64 {
        let h = self.head.read();
        h.blocks[..self.blocks]
            .iter()
            .map(|b| b.series.len() as u64)
            .sum()
    }

    /// The series `req` matches, with their samples in its time range.
    pub(super) fn scan(&self, req: &ScanRequest) -> Vec<HeadSeries> {
        let h = self.head.read();
        let mut slot: Vec<Option<Option<usize>>> = vec![None; h.series.len()];
        let mut out: Vec<HeadSeries> = Vec::new();
        for b in &h.blocks[..self.blocks] {
            for i in 0..b.series.len() {
                let t = b.timestamps[i];
                if t < req.start_ms || t > req.end_ms {
                    continue;
                }
                let s = b.series[i] as usize;
                let at = *slot[s].get_or_insert_with(|| {
                    let key = &h.series[s];
                    req.matches_key(key).then(|| {
                        out.push(HeadSeries {
                            key: key.clone(),
                            timestamps: Vec::new(),
                            values: Vec::new(),
                        });
                        out.len() - 1
                    })
                });
                if let Some(at) = at {
                    out[at].timestamps.push(t);
                    out[at].values.push(b.values[i]);
                }
            }
        }
        out
    }

    /// Each series (of the metrics `wanted` accepts) with its sample count
    /// and time range.
    pub(super) fn series_stats(
        &self,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Vec<(SeriesKey, u64, i64, i64)> {
        let h = self.head.read();
        let mut stats: Vec<Option<(u64, i64, i64)>> = vec![None; h.series.len()];
        for b in &h.blocks[..self.blocks] {
            for (&s, &t) in b.series.iter().zip(&b.timestamps) {
                let e = stats[s as usize].get_or_insert((0, i64::MAX, i64::MIN));
                e.0 += 1;
                e.1 = e.1.min(t);
                e.2 = e.2.max(t);
            }
        }
        stats
            .into_iter()
            .zip(&h.series)
            .filter_map(|(s, key)| {
                let (n, lo, hi) = s?;
                wanted(&key.metric).then(|| (key.clone(), n, lo, hi))
            })
            .collect()
    }
}

/// Whether a frozen head's commit is in `generation`'s manifest.
pub(super) fn committed_by(head: &Head, generation: u64) -> bool {
    let g = head.committed_in.load(Ordering::Acquire);
    g != 0 && generation >= g
}
