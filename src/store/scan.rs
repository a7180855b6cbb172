//! Reading the store: select segments from the manifest, row groups from
//! their statistics, then decode only what survives into per-series arrays.
//! Duplicate (series, timestamp) samples resolve to the newest write, so a
//! store reads the same before and after `compact`. Several requests (the
//! metrics of a backtest) can be read in one pass, each row group decoded
//! once for all of them.

use super::checksum::{open_segment, read_row_group_bytes};
use super::head::HeadView;
use super::manifest::{SegmentMeta, WriteRank};
use super::segment::{METRIC_COLUMN, PAGE_ROWS, TIMESTAMP_COLUMN, VALUE_COLUMN, metric_labels};
use super::source::SegmentSource;
use super::{StoreError, time_extent};
use crate::model::{MatchOp, Matcher, SeriesKey, series_matches};
use arrow::array::{Array, AsArray, DictionaryArray, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, Int32Type, TimestampMillisecondType};
use foldhash::{HashMap, HashMapExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, RowGroupMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;
use parquet::schema::types::SchemaDescriptor;
use rayon::prelude::*;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Rows per decoded batch: one page of each column. parquet-rs grows a
/// dictionary column's key buffer page by page, each time by exactly that
/// page (a copy of the batch so far), so batches of several pages copied
/// quadratically: at 64k rows, 80 MB per backtest of the week.
const BATCH_ROWS: usize = PAGE_ROWS;

/// What to read: an inclusive time range, an optional metric name, and label matchers.
#[derive(Clone, Debug)]
pub struct ScanRequest {
    pub start_ms: i64,
    pub end_ms: i64,
    pub metric: Option<String>,
    pub matchers: Vec<Matcher>,
    /// Labels to drop from the series key, as PromQL's `without`: series
    /// that differ only in them are read as one, every sample kept (two
    /// calls in one millisecond are two samples, not a duplicate). Their
    /// columns are not even decoded unless a matcher needs them, which is
    /// what makes reading calls by server and tool cheap when every MCP
    /// session is a series of its own.
    pub without: Vec<String>,
}

impl Default for ScanRequest {
    fn default() -> Self {
        ScanRequest {
            start_ms: i64::MIN,
            end_ms: i64::MAX,
            metric: None,
            matchers: Vec::new(),
            without: Vec::new(),
        }
    }
}

impl ScanRequest {
    pub fn all() -> Self {
        Self::default()
    }

    fn drops(&self, label: &str) -> bool {
        self.without.iter().any(|w| w == label)
    }

    /// Whether a series matches the request's metric and matchers.
    pub(super) fn matches_key(&self, key: &SeriesKey) -> bool {
        self.metric_ok(&key.metric) && series_matches(key, &self.matchers)
    }

    fn metric_ok(&self, metric: &str) -> bool {
        self.metric.as_deref().is_none_or(|m| m == metric)
            && self
                .matchers
                .iter()
                .filter(|m| m.name == "__name__" || m.name == "metric")
                .all(|m| m.matches(Some(metric)))
    }

    /// Label matchers that a segment lacking the label can never satisfy.
    fn required_labels(&self) -> impl Iterator<Item = &Matcher> {
        self.matchers
            .iter()
            .filter(|m| m.name != "__name__" && m.name != "metric" && !m.matches_missing())
    }

    /// Whether a segment can hold matching rows, from its manifest entry alone.
    pub fn may_match(&self, seg: &SegmentMeta) -> bool {
        seg.max_ts >= self.start_ms
            && seg.min_ts <= self.end_ms
            && seg.metrics.iter().any(|m| self.metric_ok(m))
            && self
                .required_labels()
                .all(|m| seg.labels.binary_search(&m.name).is_ok())
    }
}

/// One series' samples in time order, one per timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    pub key: SeriesKey,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// A run of one series' rows from one segment, tagged with the segment's
/// commit order so that merging can let the newest write win.
struct Chunk {
    order: WriteRank,
    key: SeriesKey,
    samples: Samples,
}

/// Where a chunk's samples are.
enum Samples {
    /// Copied out of the batch (or handed over whole by a caller).
    Owned {
        timestamps: Vec<i64>,
        values: Vec<f64>,
    },
    /// Still in the decoded batch, whose columns the chunk shares: these
    /// row ranges of it, in order. Merging then copies each sample once,
    /// from the batch to the series, where a copy into the chunk first
    /// wrote every sample of a backtest twice (the week's calls come in
    /// 20k-row batches, so a series is ninety chunks to join anyway).
    InBatch {
        columns: Arc<BatchColumns>,
        rows: Vec<(u32, u32)>,
    },
}

/// The time and value columns of one decoded batch.
struct BatchColumns {
    timestamps: arrow::buffer::ScalarBuffer<i64>,
    values: arrow::buffer::ScalarBuffer<f64>,
}

impl Chunk {
    fn owned(order: WriteRank, key: SeriesKey, timestamps: Vec<i64>, values: Vec<f64>) -> Chunk {
        Chunk {
            order,
            key,
            samples: Samples::Owned { timestamps, values },
        }
    }

    fn len(&self) -> usize {
        match &self.samples {
            Samples::Owned { timestamps, .. } => timestamps.len(),
            Samples::InBatch { rows, .. } => rows.iter().map(|&(a, b)| (b - a) as usize).sum(),
        }
    }

    /// Appends the chunk's samples to `ts` and `vs`.
    fn append_to(&self, ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
        match &self.samples {
            Samples::Owned { timestamps, values } => {
                ts.extend_from_slice(timestamps);
                vs.extend_from_slice(values);
            }
            Samples::InBatch { columns, rows } => {
                for &(a, b) in rows {
                    let rows = a as usize..b as usize;
                    append_rows(ts, vs, &columns.timestamps, &columns.values, rows);
                }
            }
        }
    }
}

/// Reads the matching series of the given segments (all under `root`).
pub fn scan_segments(
    source: &dyn SegmentSource,
    segments: &[SegmentMeta],
    req: &ScanRequest,
) -> Result<Vec<SeriesData>, StoreError> {
    Ok(
        scan_segments_many(source, segments, std::slice::from_ref(req), &[])?
            .into_iter()
            .next()
            .unwrap_or_default(),
    )
}

/// Chunks from the live head sort after every segment's: the head holds
/// the newest writes (its views in order, the `id`).
const HEAD_COMMITTED: u64 = u64::MAX;

/// The matching series of each request, in one pass over the segments: a
/// row group that several requests need (a day's gauges next to its MCP
/// calls) is opened and decoded once, its value dictionary included, which
/// alone can cost more than the rows a gauge reads from it. The samples of
/// `heads` (a live store's, not yet in segments) merge in as the newest
/// writes.
pub fn scan_segments_many(
    source: &dyn SegmentSource,
    segments: &[SegmentMeta],
    reqs: &[ScanRequest],
    heads: &[HeadView],
) -> Result<Vec<Vec<SeriesData>>, StoreError> {
    let mut results: Vec<Option<Vec<SeriesData>>> = vec![None; reqs.len()];
    let head_entries: Vec<SegmentMeta> = heads.iter().flat_map(|h| h.entries(u64::MAX)).collect();
    for (i, req) in reqs.iter().enumerate() {
        let selected: Vec<&SegmentMeta> = segments.iter().filter(|s| req.may_match(s)).collect();
        let in_head = head_entries.iter().any(|e| req.may_match(e));
        if !req.without.is_empty() && (in_head || any_overlap(&selected)) {
            // Two segments may hold the same sample (a file ingested twice,
            // a head flushed while this snapshot was taken): only the full
            // series key can tell, so resolve duplicates first and drop the
            // labels afterwards.
            let full = ScanRequest {
                without: Vec::new(),
                ..req.clone()
            };
            let series = scan_segments_many(source, segments, std::slice::from_ref(&full), heads)?
                .into_iter()
                .next()
                .unwrap_or_default();
            results[i] = Some(pool_without(series, &req.without));
        }
    }
    // Requests read together drop the same labels: a row's code then
    // stands for one series of each (a request that keeps the session id
    // would otherwise split every pooled run of one that drops it). Each
    // segment joins the passes whose rows cannot split each other's runs
    // ([`joined_passes`]).
    let mut by_dropped: BTreeMap<Vec<&String>, Vec<usize>> = BTreeMap::new();
    for i in (0..reqs.len()).filter(|&i| results[i].is_none()) {
        let mut dropped: Vec<&String> = reqs[i].without.iter().collect();
        dropped.sort();
        by_dropped.entry(dropped).or_default().push(i);
    }
    let passes: Vec<Vec<usize>> = by_dropped.into_values().collect();
    // Footers first, then one task per row group and pass: a week is seven
    // segments of nearly equal size, which two threads would split 4 to 3.
    let selected: Vec<(&SegmentMeta, Vec<Vec<usize>>)> = segments
        .iter()
        .map(|seg| {
            let wanted = passes.iter().map(|pass| {
                pass.iter()
                    .copied()
                    .filter(|&i| reqs[i].may_match(seg))
                    .collect::<Vec<usize>>()
            });
            (seg, wanted.collect::<Vec<_>>())
        })
        .filter(|(_, wanted)| wanted.iter().any(|pass| !pass.is_empty()))
        .collect();
    let parts: Vec<Vec<RowGroupTask>> = selected
        .par_iter()
        .map(|(seg, wanted)| plan_segment(source, seg, reqs, wanted))
        .collect::<Result<_, _>>()?;
    let tasks: Vec<RowGroupTask> = parts.into_iter().flatten().collect();
    let chunks: Vec<Vec<(usize, Chunk)>> = tasks
        .par_iter()
        .map(|task| read_row_group(source, task, reqs))
        .collect::<Result<_, _>>()?;
    // In segment order, then row group order: merging keeps that order for
    // equal timestamps, so the newest write wins.
    let mut per_request: Vec<Vec<Chunk>> = (0..reqs.len()).map(|_| Vec::new()).collect();
    for (i, chunk) in chunks.into_iter().flatten() {
        per_request[i].push(chunk);
    }
    for (i, req) in reqs.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        for (k, head) in (0u64..).zip(heads) {
            for s in head.scan(req) {
                let key = if req.without.is_empty() {
                    s.key
                } else {
                    let labels = s.key.labels.into_iter().filter(|(l, _)| !req.drops(l));
                    SeriesKey::new(s.key.metric, labels.collect())
                };
                let order = WriteRank {
                    committed: HEAD_COMMITTED,
                    id: k,
                };
                per_request[i].push(Chunk::owned(order, key, s.timestamps, s.values));
            }
        }
    }
    let merged: Vec<(usize, Vec<SeriesData>)> = per_request
        .into_par_iter()
        .enumerate()
        .filter(|(i, _)| results[*i].is_none())
        .map(|(i, chunks)| {
            (
                i,
                merge_chunks(chunks.into_iter(), reqs[i].without.is_empty()),
            )
        })
        .collect();
    for (i, series) in merged {
        results[i] = Some(series);
    }
    Ok(results.into_iter().map(Option::unwrap_or_default).collect())
}

/// One row group of a segment to read, with the segment's footer and the
/// requests whose statistics it may match.
struct RowGroupTask<'a> {
    segment: &'a SegmentMeta,
    /// What errors call the segment.
    path: std::path::PathBuf,
    metadata: ArrowReaderMetadata,
    /// The label columns each metric of the segment uses, when recorded.
    metric_labels: Option<Arc<std::collections::HashMap<String, BTreeSet<String>>>>,
    row_group: usize,
    requests: Vec<usize>,
}

/// Whether any two segments' time ranges overlap.
fn any_overlap(segments: &[&SegmentMeta]) -> bool {
    let mut spans: Vec<(i64, i64)> = segments.iter().map(|s| (s.min_ts, s.max_ts)).collect();
    spans.sort_unstable();
    spans.windows(2).any(|w| w[1].0 <= w[0].1)
}

/// Series with the `without` labels dropped, pooling those that become the
/// same series (all samples kept, in time order).
pub fn pool_without(series: Vec<SeriesData>, without: &[String]) -> Vec<SeriesData> {
    let chunks = series.into_iter().map(|s| {
        let labels = s
            .key
            .labels
            .into_iter()
            .filter(|(k, _)| !without.contains(k))
            .collect();
        // Pooling keeps every sample: the rank decides nothing here.
        Chunk::owned(
            WriteRank::default(),
            SeriesKey::new(s.key.metric, labels),
            s.timestamps,
            s.values,
        )
    });
    merge_chunks(chunks, false)
}

/// Samples in time order. Equal timestamps keep the order given (oldest
/// write first); with `dedupe` only the last of them, the newest write,
/// stays. Chunks that follow one another in time (a gauge's row groups, day
/// after day) concatenate already in order and are not sorted.
fn in_time_order(ts: Vec<i64>, vs: Vec<f64>, dedupe: bool) -> (Vec<i64>, Vec<f64>) {
    let (mut ts, mut vs) = if ts.is_sorted() {
        (ts, vs)
    } else {
        sorted_by_time(&ts, &vs)
    };
    if dedupe {
        keep_newest_per_timestamp(&mut ts, &mut vs);
    }
    (ts, vs)
}

/// A stable sort by time. A pooled series is thousands of short sorted
/// runs interleaved (one per MCP session), where comparison sorts spend
/// n·log n; its samples are spread over their span, so most sort in
/// buckets ([`bucket_sorted_by_time`]). The rest are radix-sorted: when
/// they span less than 2^32 ms (49 days), what moves through the sort's
/// passes is each sample's offset from the first time and its index, 8
/// bytes instead of the 16 of a (time, value) pair (the passes are bound by
/// memory traffic), and the values are gathered once at the end.
fn sorted_by_time(ts: &[i64], vs: &[f64]) -> (Vec<i64>, Vec<f64>) {
    let (Some(&min), Some(&max)) = (ts.iter().min(), ts.iter().max()) else {
        return (Vec::new(), Vec::new());
    };
    // max >= min: the difference fits in 64 bits unsigned.
    let span = max.wrapping_sub(min) as u64;
    if let Some(sorted) = bucket_sorted_by_time(ts, vs, min, span) {
        return sorted;
    }
    let narrow = u32::try_from(span).is_ok() && u32::try_from(ts.len()).is_ok();
    if !narrow {
        let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
        radsort::sort_by_key(&mut pairs, |p| p.0);
        return pairs.into_iter().unzip();
    }
    // Both fit: the span and the length were checked above.
    let mut keys: Vec<(u32, u32)> = ts
        .iter()
        .zip(0u32..)
        .map(|(&t, i)| ((t - min) as u32, i))
        .collect();
    radsort::sort_by_key(&mut keys, |k| k.0);
    let ts = keys
        .iter()
        .map(|&(offset, _)| min + i64::from(offset))
        .collect();
    let vs = keys.iter().map(|&(_, i)| vs[i as usize]).collect();
    (ts, vs)
}

/// The most samples that one bucket of [`bucket_sorted_by_time`] may hold:
/// the insertion pass then moves a sample past at most this many others.
const MAX_BUCKET: u32 = 64;

/// A stable sort by time in two passes over the samples: each goes, in
/// the order given, to a bucket of 2^shift ms, sized so that there are
/// about as many buckets as samples; an insertion pass then orders the few
/// that share a bucket (it never moves one past a bucket's edge: every
/// earlier bucket's times are smaller). Half the passes of the radix sort.
/// `None` when a bucket would hold more than [`MAX_BUCKET`] samples (a
/// burst, or an outlier that stretches the span).
fn bucket_sorted_by_time(
    ts: &[i64],
    vs: &[f64],
    min: i64,
    span: u64,
) -> Option<(Vec<i64>, Vec<f64>)> {
    // Positions are counted in 32 bits.
    let n = u64::from(u32::try_from(ts.len()).ok()?);
    // The smallest shift with span >> shift < n: at most n buckets, at least
    // about n / 2. (Below 64: span / n < 2^63 unless n is 1 and span 0.)
    let shift = match span.checked_div(n) {
        Some(q) if q > 0 => (64 - q.leading_zeros()).min(63),
        _ => 0,
    };
    let bucket = |t: i64| (t.wrapping_sub(min) as u64 >> shift) as usize;
    let mut starts = vec![0u32; usize::try_from(span >> shift).ok()?.checked_add(1)?];
    for &t in ts {
        starts[bucket(t)] += 1;
    }
    let mut next = 0u32;
    for start in &mut starts {
        let count = *start;
        if count > MAX_BUCKET {
            return None;
        }
        *start = next;
        next += count;
    }
    let (mut out_ts, mut out_vs) = (vec![0i64; ts.len()], vec![0f64; ts.len()]);
    for (&t, &v) in ts.iter().zip(vs) {
        let slot = &mut starts[bucket(t)];
        out_ts[*slot as usize] = t;
        out_vs[*slot as usize] = v;
        *slot += 1;
    }
    for i in 1..out_ts.len() {
        let (t, v) = (out_ts[i], out_vs[i]);
        let mut j = i;
        // Strictly later times move up: equal ones keep their order.
        while j > 0 && out_ts[j - 1] > t {
            out_ts[j] = out_ts[j - 1];
            out_vs[j] = out_vs[j - 1];
            j -= 1;
        }
        out_ts[j] = t;
        out_vs[j] = v;
    }
    Some((out_ts, out_vs))
}

/// Of samples in time order with equal timestamps, keeps the later one (the
/// newer write).
fn keep_newest_per_timestamp(ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
    if !ts.windows(2).any(|w| w[0] == w[1]) {
        return;
    }
    let mut kept = 0;
    for i in 0..ts.len() {
        if kept > 0 && ts[kept - 1] == ts[i] {
            vs[kept - 1] = vs[i];
        } else {
            ts[kept] = ts[i];
            vs[kept] = vs[i];
            kept += 1;
        }
    }
    ts.truncate(kept);
    vs.truncate(kept);
}

/// The chunks' samples one after another, in the chunks' order (a single
/// owned chunk's columns are taken, not copied).
fn concatenated(mut chunks: Vec<Chunk>) -> (Vec<i64>, Vec<f64>) {
    if let [only] = chunks.as_mut_slice()
        && let Samples::Owned { timestamps, values } = &mut only.samples
    {
        return (std::mem::take(timestamps), std::mem::take(values));
    }
    let total = chunks.iter().map(Chunk::len).sum();
    let (mut ts, mut vs) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for c in &chunks {
        c.append_to(&mut ts, &mut vs);
    }
    (ts, vs)
}

/// Merges chunks per series: oldest write first, and with `dedupe` one
/// sample per timestamp (the newest write's); without it every sample stays.
fn merge_chunks(chunks: impl Iterator<Item = Chunk>, dedupe: bool) -> Vec<SeriesData> {
    let mut by_series: HashMap<SeriesKey, Vec<Chunk>> = HashMap::new();
    for chunk in chunks {
        by_series.entry(chunk.key.clone()).or_default().push(chunk);
    }
    let mut out: Vec<SeriesData> = by_series
        .into_par_iter()
        .map(|(key, mut chunks)| {
            chunks.sort_by_key(|c| c.order);
            let (ts, vs) = concatenated(chunks);
            let (timestamps, values) = in_time_order(ts, vs, dedupe);
            SeriesData {
                key,
                timestamps,
                values,
            }
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The columns whose statistics and page index can rule rows out.
struct KeyColumns<'a> {
    ts_col: Option<usize>,
    metric_col: Option<usize>,
    /// Label columns with an equality matcher.
    label_cols: Vec<(usize, &'a Matcher)>,
}

impl<'a> KeyColumns<'a> {
    fn of(schema: &SchemaDescriptor, req: &'a ScanRequest) -> Self {
        let column_index = |name: &str| schema.columns().iter().position(|c| c.name() == name);
        KeyColumns {
            ts_col: column_index(TIMESTAMP_COLUMN),
            metric_col: column_index(METRIC_COLUMN),
            label_cols: req
                .matchers
                .iter()
                .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
                .filter_map(|m| column_index(&m.name).map(|c| (c, m)))
                .collect(),
        }
    }

    /// Whether a row group's statistics allow a matching row.
    fn row_group_may_match(&self, rg: &RowGroupMetaData, req: &ScanRequest) -> bool {
        self.ts_col
            .is_none_or(|c| i64_range_overlaps(rg, c, req.start_ms, req.end_ms))
            && self.metric_col.is_none_or(|c| match req.metric.as_deref() {
                Some(m) => bytes_range_contains(rg, c, m),
                None => true,
            })
            && self
                .label_cols
                .iter()
                .all(|(c, m)| bytes_range_contains(rg, *c, &m.value))
    }

    /// What the page index of each column must allow for a page to be read.
    fn page_filters(&self, req: &'a ScanRequest) -> Vec<(usize, PagePredicate<'a>)> {
        let mut filters = Vec::new();
        if let Some(c) = self.ts_col {
            filters.push((c, PagePredicate::TimeOverlaps(req.start_ms, req.end_ms)));
        }
        if let (Some(c), Some(m)) = (self.metric_col, req.metric.as_deref()) {
            filters.push((c, PagePredicate::Holds(m.as_bytes())));
        }
        for (c, m) in &self.label_cols {
            filters.push((*c, PagePredicate::Holds(m.value.as_bytes())));
        }
        filters
    }
}

/// The row groups of a segment whose statistics allow a match, once for
/// each pass of `wanted` (requests read together) with the requests of the
/// pass that it may match.
fn plan_segment<'a>(
    source: &dyn SegmentSource,
    segment: &'a SegmentMeta,
    reqs: &[ScanRequest],
    wanted: &[Vec<usize>],
) -> Result<Vec<RowGroupTask<'a>>, StoreError> {
    let path = std::path::PathBuf::from(source.name(segment));
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let metadata = open_segment(source, segment, options)?;
    let meta = metadata.metadata();
    let schema = meta.file_metadata().schema_descr();
    let labels_of = metric_labels(meta.file_metadata()).map(Arc::new);
    let mut tasks = Vec::new();
    for pass in &joined_passes(wanted, reqs, labels_of.as_deref()) {
        let keys: Vec<(usize, KeyColumns)> = pass
            .iter()
            .map(|&i| (i, KeyColumns::of(schema, &reqs[i])))
            .collect();
        for row_group in 0..meta.num_row_groups() {
            let requests: Vec<usize> = keys
                .iter()
                .filter(|(i, k)| k.row_group_may_match(meta.row_group(row_group), &reqs[*i]))
                .map(|(i, _)| *i)
                .collect();
            if !requests.is_empty() {
                tasks.push(RowGroupTask {
                    segment,
                    path: path.clone(),
                    metadata: metadata.clone(),
                    metric_labels: labels_of.clone(),
                    row_group,
                    requests,
                });
            }
        }
    }
    Ok(tasks)
}

/// The passes of `wanted` joined where reading them together splits no
/// request's runs: a label column that one request drops but another reads
/// must be null on the first one's rows (its metric never uses the label in
/// this segment). A day's gauges then share one read of a row group with
/// the calls that drop the session id, and the row group's shared pages,
/// value dictionary and column setup are decoded once, not once per pass.
fn joined_passes(
    wanted: &[Vec<usize>],
    reqs: &[ScanRequest],
    labels_of: Option<&std::collections::HashMap<String, BTreeSet<String>>>,
) -> Vec<Vec<usize>> {
    // Whether `a`'s runs survive the columns `b` reads.
    let keeps_runs = |a: &ScanRequest, b: &ScanRequest| {
        a.without
            .iter()
            .all(|label| !reads_label(labels_of, b, label) || !metric_may_use(labels_of, a, label))
    };
    let mut joined: Vec<Vec<usize>> = Vec::new();
    for pass in wanted.iter().filter(|p| !p.is_empty()) {
        let fits = |other: &Vec<usize>| {
            pass.iter().all(|&a| {
                other
                    .iter()
                    .all(|&b| keeps_runs(&reqs[a], &reqs[b]) && keeps_runs(&reqs[b], &reqs[a]))
            })
        };
        match joined.iter_mut().find(|other| fits(other)) {
            Some(other) => other.extend(pass),
            None => joined.push(pass.clone()),
        }
    }
    joined
}

/// Whether rows of the request's metric may carry the label in a segment
/// whose record of each metric's labels is `labels_of` (no record, or no
/// metric named: any label may be on any row).
fn metric_may_use(
    labels_of: Option<&std::collections::HashMap<String, BTreeSet<String>>>,
    req: &ScanRequest,
    label: &str,
) -> bool {
    match (labels_of, &req.metric) {
        (Some(labels), Some(metric)) => labels.get(metric).is_none_or(|l| l.contains(label)),
        _ => true,
    }
}

/// Whether a request reads a label's column in such a segment: its metric
/// may carry the label and it keeps it, or a matcher names it.
fn reads_label(
    labels_of: Option<&std::collections::HashMap<String, BTreeSet<String>>>,
    req: &ScanRequest,
    label: &str,
) -> bool {
    (metric_may_use(labels_of, req, label) && !req.drops(label))
        || req.matchers.iter().any(|m| m.name == label)
}

/// The chunks of one row group, each tagged with the request it answers.
fn read_row_group(
    source: &dyn SegmentSource,
    task: &RowGroupTask,
    reqs: &[ScanRequest],
) -> Result<Vec<(usize, Chunk)>, StoreError> {
    let path = task.path.as_path();
    let order = task.segment.write_rank();
    let meta = task.metadata.metadata();
    let schema = meta.file_metadata().schema_descr();
    let rg = task.row_group;
    // Within the row group, skip the pages that the page index excludes
    // for every request: rows are sorted by series, so one metric or server
    // is a few pages.
    let kept: Vec<(&ScanRequest, Option<Vec<Range<usize>>>)> = task
        .requests
        .iter()
        .map(|&i| {
            let req = &reqs[i];
            let filters = KeyColumns::of(schema, req).page_filters(req);
            (req, select_pages(meta, rg, &filters))
        })
        .collect();
    // The rows any of them keeps; all rows when one has no page selection.
    let read: Option<Vec<Range<usize>>> = kept
        .iter()
        .map(|(_, k)| k.as_deref())
        .collect::<Option<Vec<&[Range<usize>]>>>()
        .map(|lists| joined(lists.concat()));
    if read.as_ref().is_some_and(|r| r.is_empty()) {
        return Ok(Vec::new());
    }
    // Columns left out: labels that `without` drops (unless a matcher reads
    // them), and label columns that are null on every page the selection
    // reads (a session id column scanned for a gauge): decoding those costs
    // their whole dictionary only to yield nulls. A column is read when any
    // request needs it.
    // A label column that the request's metric never uses in this segment
    // is null on every row it keeps (a gauge read from pages it shares with
    // the calls need not decode their session ids).
    let needed_by = |req: &ScanRequest, kept: &Option<Vec<Range<usize>>>, i: usize| {
        let column = schema.column(i);
        let name = column.name();
        let matched = req.matchers.iter().any(|m| m.name == name);
        reads_label(task.metric_labels.as_deref(), req, name)
            && (matched || kept.as_ref().is_none_or(|k| !all_null_in(meta, rg, i, k)))
    };
    let needed = |i: usize| {
        let column = schema.column(i);
        let name = column.name();
        name == TIMESTAMP_COLUMN
            || name == VALUE_COLUMN
            || name == METRIC_COLUMN
            || kept.iter().any(|(req, k)| needed_by(req, k, i))
    };
    let leaves: Vec<usize> = (0..schema.num_columns()).filter(|&i| needed(i)).collect();
    // The whole row group is read and checked at once: the pages the
    // selection leaves out cost a read from the page cache and a CRC, far
    // less than decoding, and nothing is decoded from unchecked bytes.
    let bytes = read_row_group_bytes(source, task.segment, meta, rg)?;
    let mut builder =
        ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, task.metadata.clone());
    if leaves.len() < schema.num_columns() {
        builder = builder.with_projection(ProjectionMask::leaves(schema, leaves));
    }
    if let Some(read) = read {
        builder = builder.with_row_selection(RowSelection::from_consecutive_ranges(
            read.into_iter(),
            meta.row_group(rg).num_rows() as usize,
        ));
    }
    let reader = builder
        .with_row_groups(vec![rg])
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| StoreError::parquet(path, e))?;
    // Requests whose time range holds the whole row group (a backtest reads
    // its history whole) need no look at any batch's times.
    let ts_col = schema
        .columns()
        .iter()
        .position(|c| c.name() == TIMESTAMP_COLUMN);
    let holds_row_group: Vec<bool> = reqs
        .iter()
        .map(|req| {
            ts_col
                .is_some_and(|c| i64_range_within(meta.row_group(rg), c, req.start_ms, req.end_ms))
        })
        .collect();
    let mut chunks = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::parquet(path, e))?;
        chunks_of_batch(
            path,
            &batch,
            order,
            reqs,
            &task.requests,
            &holds_row_group,
            &mut chunks,
        )?;
    }
    chunks.retain(|(_, c)| c.len() > 0);
    Ok(chunks)
}

/// What a page's min/max must allow for any of its rows to be wanted.
enum PagePredicate<'a> {
    /// Timestamps overlapping the inclusive range.
    TimeOverlaps(i64, i64),
    /// A text column that may hold this value (all-null pages cannot).
    Holds(&'a [u8]),
}

impl PagePredicate<'_> {
    fn may_match(&self, index: &ColumnIndexMetaData, page: usize) -> bool {
        match (self, index) {
            (PagePredicate::TimeOverlaps(start, end), ColumnIndexMetaData::INT64(ix)) => {
                match (ix.min_value(page), ix.max_value(page)) {
                    (Some(min), Some(max)) => max >= start && min <= end,
                    _ => true,
                }
            }
            (PagePredicate::Holds(v), ColumnIndexMetaData::BYTE_ARRAY(ix)) => {
                if ix.is_null_page(page) {
                    return false;
                }
                match (ix.min_value(page), ix.max_value(page)) {
                    (Some(min), Some(max)) => min <= *v && *v <= max,
                    _ => true,
                }
            }
            _ => true,
        }
    }
}

/// The rows of row group `rg` that survive every page filter, as sorted
/// disjoint ranges; `None` when there is no filter or no page index.
fn select_pages(
    meta: &ParquetMetaData,
    rg: usize,
    filters: &[(usize, PagePredicate)],
) -> Option<Vec<Range<usize>>> {
    if filters.is_empty() {
        return None;
    }
    let rows = meta.row_group(rg).num_rows() as usize;
    let page_index = meta.page_index_for_row_group(rg);
    let mut keep: Vec<Range<usize>> = std::iter::once(0..rows).collect();
    for (col, predicate) in filters {
        let (Some(ci), Some(oi)) = (page_index.column_index(*col), page_index.offset_index(*col))
        else {
            return None;
        };
        let ranges: Vec<Range<usize>> = page_rows(oi.page_locations(), rows)
            .enumerate()
            .filter(|(page, _)| predicate.may_match(ci, *page))
            .map(|(_, r)| r)
            .collect();
        keep = intersect_ranges(&keep, &ranges);
    }
    Some(keep)
}

/// Each page's rows within its row group of `rows` rows.
fn page_rows(
    locations: &[parquet::file::page_index::offset_index::PageLocation],
    rows: usize,
) -> impl Iterator<Item = Range<usize>> + '_ {
    locations.iter().enumerate().map(move |(page, loc)| {
        let start = loc.first_row_index as usize;
        let end = locations
            .get(page + 1)
            .map_or(rows, |next| next.first_row_index as usize);
        start..end
    })
}

/// Whether text column `col` of row group `rg` is null on every page that
/// overlaps the kept rows.
fn all_null_in(meta: &ParquetMetaData, rg: usize, col: usize, kept: &[Range<usize>]) -> bool {
    let rows = meta.row_group(rg).num_rows() as usize;
    let page_index = meta.page_index_for_row_group(rg);
    let (Some(ColumnIndexMetaData::BYTE_ARRAY(ci)), Some(oi)) =
        (page_index.column_index(col), page_index.offset_index(col))
    else {
        return false;
    };
    page_rows(oi.page_locations(), rows)
        .enumerate()
        .filter(|(_, r)| kept.iter().any(|k| k.start < r.end && r.start < k.end))
        .all(|(page, _)| ci.is_null_page(page))
}

/// Ranges in any order joined into sorted, disjoint ones (overlapping or
/// touching ranges merged, empty ones dropped).
fn joined(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The intersection of two sorted lists of disjoint ranges.
fn intersect_ranges(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The smallest and largest value of integer column `col` in a row group,
/// when its statistics say.
fn i64_extent(rg: &RowGroupMetaData, col: usize) -> Option<(i64, i64)> {
    match rg.column(col).statistics() {
        Some(Statistics::Int64(s)) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

fn i64_range_overlaps(rg: &RowGroupMetaData, col: usize, start: i64, end: i64) -> bool {
    i64_extent(rg, col).is_none_or(|(min, max)| max >= start && min <= end)
}

/// Whether a row group's statistics put all its values of `col` in start..=end.
fn i64_range_within(rg: &RowGroupMetaData, col: usize, start: i64, end: i64) -> bool {
    i64_extent(rg, col).is_some_and(|(min, max)| min >= start && max <= end)
}

fn bytes_range_contains(rg: &RowGroupMetaData, col: usize, value: &str) -> bool {
    match rg.column(col).statistics() {
        Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => {
                let v = value.as_bytes();
                min.data() <= v && v <= max.data()
            }
            _ => true,
        },
        _ => true,
    }
}

/// Splits a batch into runs of one series (rows are sorted by series) and
/// keeps, for each of the `requests` (indices into `reqs`), the runs whose
/// series match it and the rows in its time range: chunks tagged with the
/// request. `holds_row_group[i]`: whether `reqs[i]`'s time range holds the
/// whole row group of the batch.
fn chunks_of_batch(
    path: &Path,
    batch: &RecordBatch,
    order: WriteRank,
    reqs: &[ScanRequest],
    requests: &[usize],
    holds_row_group: &[bool],
    out: &mut Vec<(usize, Chunk)>,
) -> Result<(), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt {
        path: path.display().to_string(),
        message: what.to_string(),
    };
    // Chunks before this one belong to earlier batches of the row group.
    let before = out.len();
    let schema = batch.schema();
    let mut key_columns: Vec<(&str, &DictionaryArray<Int32Type>)> = Vec::new();
    let mut metric: Option<&DictionaryArray<Int32Type>> = None;
    for (i, field) in schema.fields().iter().enumerate() {
        let name = field.name().as_str();
        if name == TIMESTAMP_COLUMN || name == VALUE_COLUMN {
            continue;
        }
        let dict = batch
            .column(i)
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| corrupt(&format!("column `{name}` is not dictionary-encoded text")))?;
        if name == METRIC_COLUMN {
            metric = Some(dict);
        } else {
            key_columns.push((name, dict));
        }
    }
    let metric = metric.ok_or_else(|| corrupt("no `metric` column"))?;
    let ts = batch
        .column_by_name(TIMESTAMP_COLUMN)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| corrupt("no millisecond `timestamp` column"))?;
    let vals = batch
        .column_by_name(VALUE_COLUMN)
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .ok_or_else(|| corrupt("no f64 `value` column"))?;
    let ts = ts.values();
    let vals = vals.values();

    let text = |d: &DictionaryArray<Int32Type>, row: usize| -> Option<String> {
        if d.is_null(row) {
            return None;
        }
        let values: &StringArray = d.values().as_string();
        Some(values.value(d.keys().value(row) as usize).to_string())
    };
    // Runs of rows with the same labels, by one code per row for its keys
    // in every decoded column: each distinct run is named (strings built)
    // and matched once, and runs that `without` pools land in one chunk.
    let rows = batch.num_rows();
    let columns: Vec<&DictionaryArray<Int32Type>> = std::iter::once(metric)
        .chain(key_columns.iter().map(|(_, d)| *d))
        .collect();
    let starts = run_starts(&columns, rows);
    let codes = row_codes(&columns, &starts);
    // The chunks (indices into `out`) of each run's code, and of each
    // request's series key.
    let mut chunk_of_run: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut chunk_of_key: HashMap<(usize, SeriesKey), usize> = HashMap::new();
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (k, (&start, &code)) in starts.iter().zip(&codes).enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(rows);
        let slots = match chunk_of_run.entry(code) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let metric_name = text(metric, start).ok_or_else(|| corrupt("null metric"))?;
                let mut labels: Option<Vec<(String, String)>> = None;
                let mut slots = Vec::new();
                for &r in requests {
                    let req = &reqs[r];
                    if !req.metric_ok(&metric_name) {
                        continue;
                    }
                    let labels = labels
                        .get_or_insert_with(|| {
                            key_columns
                                .iter()
                                .filter_map(|(name, d)| {
                                    text(d, start).map(|v| (name.to_string(), v))
                                })
                                .collect()
                        })
                        .clone();
                    let key = SeriesKey::new(metric_name.clone(), labels);
                    if !series_matches(&key, &req.matchers) {
                        continue;
                    }
                    let key = if req.without.is_empty() {
                        key
                    } else {
                        let labels = key
                            .labels
                            .into_iter()
                            .filter(|(k, _)| !req.drops(k))
                            .collect();
                        SeriesKey::new(key.metric, labels)
                    };
                    let next = out.len();
                    let index = *chunk_of_key.entry((r, key.clone())).or_insert(next);
                    if index == next {
                        out.push((r, Chunk::owned(order, key, Vec::new(), Vec::new())));
                    }
                    slots.push(index);
                }
                e.insert(slots)
            }
        };
        for &index in slots.iter() {
            runs.push((index, start, end));
        }
    }
    // Usually the whole batch lies in every request's range (a backtest
    // reads its history whole): then no row needs a look, and the chunks
    // share the batch's columns instead of copying them, when they keep at
    // least half its rows (a narrow read would otherwise hold on to whole
    // batches for a few rows of each).
    let extent = (!requests.iter().all(|&r| holds_row_group[r])).then(|| time_extent(ts));
    let all_wanted: Vec<bool> = reqs
        .iter()
        .zip(holds_row_group)
        .map(|(req, &holds)| {
            holds
                || extent
                    .flatten()
                    .is_some_and(|(first, last)| first >= req.start_ms && last <= req.end_ms)
        })
        .collect();
    let mut rows_of = vec![0usize; out.len() - before];
    let mut runs_of = vec![0usize; out.len() - before];
    for &(index, a, b) in &runs {
        rows_of[index - before] += b - a;
        runs_of[index - before] += 1;
    }
    let shared_rows: usize = out[before..]
        .iter()
        .zip(&rows_of)
        .filter(|((r, _), _)| all_wanted[*r])
        .map(|(_, n)| n)
        .sum();
    // Row numbers are kept in 32 bits: a batch has BATCH_ROWS rows.
    let columns = (shared_rows * 2 >= rows && u32::try_from(rows).is_ok()).then(|| {
        Arc::new(BatchColumns {
            timestamps: ts.clone(),
            values: vals.clone(),
        })
    });
    // This batch's chunks are new and empty: each shares the batch or gets
    // room for every run first (pooled chunks gather thousands of short
    // runs, and growing them one push at a time reallocates and faults).
    for (((r, chunk), chunk_rows), chunk_runs) in out[before..].iter_mut().zip(rows_of).zip(runs_of)
    {
        chunk.samples = match &columns {
            Some(columns) if all_wanted[*r] => Samples::InBatch {
                columns: columns.clone(),
                rows: Vec::with_capacity(chunk_runs),
            },
            _ => Samples::Owned {
                timestamps: Vec::with_capacity(chunk_rows + SHORT_RUN),
                values: Vec::with_capacity(chunk_rows + SHORT_RUN),
            },
        };
    }
    for (index, a, b) in runs {
        let (r, chunk) = &mut out[index];
        let (timestamps, values) = match &mut chunk.samples {
            Samples::InBatch { rows, .. } => {
                let (a, b) = (a as u32, b as u32);
                match rows.last_mut() {
                    Some(last) if last.1 == a => last.1 = b,
                    _ => rows.push((a, b)),
                }
                continue;
            }
            Samples::Owned { timestamps, values } => (timestamps, values),
        };
        if all_wanted[*r] {
            append_rows(timestamps, values, ts, vals, a..b);
            continue;
        }
        // The batch reaches past the request's range. A run is one series in
        // time order (the segments' sort order, checked here all the same):
        // most lie wholly in the range. Runs of a few rows (a session's
        // calls) are cheaper copied row by row than checked and copied as
        // slices.
        let wanted = reqs[*r].start_ms..=reqs[*r].end_ms;
        let run = &ts[a..b];
        if run.len() > 8
            && wanted.contains(&run[0])
            && wanted.contains(&run[run.len() - 1])
            && run.is_sorted()
        {
            append_rows(timestamps, values, ts, vals, a..b);
            continue;
        }
        for row in a..b {
            if wanted.contains(&ts[row]) {
                timestamps.push(ts[row]);
                values.push(vals[row]);
            }
        }
    }
    Ok(())
}

/// Runs of at most this many rows are copied as this many, and cut back.
const SHORT_RUN: usize = 8;

/// Appends rows `rows` of a batch's time and value columns. A run of a few
/// rows (a session's calls) is copied as [`SHORT_RUN`] rows, a copy of
/// fixed length whose end no loop mispredicts, and the rows past it are
/// dropped again.
fn append_rows(
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
    batch_ts: &[i64],
    batch_vs: &[f64],
    rows: Range<usize>,
) {
    let (a, b) = (rows.start, rows.end);
    if b - a <= SHORT_RUN && a + SHORT_RUN <= batch_ts.len().min(batch_vs.len()) {
        let keep = ts.len() + (b - a);
        ts.extend_from_slice(&batch_ts[a..a + SHORT_RUN]);
        vs.extend_from_slice(&batch_vs[a..a + SHORT_RUN]);
        ts.truncate(keep);
        vs.truncate(keep);
    } else {
        ts.extend_from_slice(&batch_ts[rows.clone()]);
        vs.extend_from_slice(&batch_vs[rows]);
    }
}

/// Where each run of rows that hold the same dictionary key (or null) in
/// every column starts: 0, then each row that differs from the one before.
/// Neighbours are compared column by column, a pass of 32-bit compares
/// each, so that only a run's first row needs a code ([`row_codes`]).
pub(super) fn run_starts(columns: &[&DictionaryArray<Int32Type>], rows: usize) -> Vec<usize> {
    if rows == 0 {
        return Vec::new();
    }
    // changed[i]: row i + 1 differs from row i in some column so far.
    let mut changed = vec![false; rows - 1];
    let mut digits: Vec<i32> = Vec::new();
    for d in columns {
        let keys = &d.keys().values()[..rows];
        let keys: &[i32] = match d.nulls().filter(|n| n.null_count() > 0) {
            None => keys,
            Some(nulls) => {
                // A null's key is unspecified: compare key + 1 (keys are
                // at least 0; wrapping keeps distinct keys distinct) or 0.
                digits.clear();
                let bits = nulls.inner().bit_chunks();
                let words = bits.iter().chain(std::iter::once(bits.remainder_bits()));
                for (valid, keys) in words.zip(keys.chunks(64)) {
                    match valid {
                        0 => digits.extend(std::iter::repeat_n(0, keys.len())),
                        u64::MAX => digits.extend(keys.iter().map(|&k| k.wrapping_add(1))),
                        _ => digits.extend(
                            keys.iter()
                                .enumerate()
                                .map(|(i, &k)| k.wrapping_add(1) * ((valid >> i) & 1) as i32),
                        ),
                    }
                }
                &digits
            }
        };
        for (c, (a, b)) in changed.iter_mut().zip(keys.iter().zip(&keys[1..])) {
            *c |= a != b;
        }
    }
    std::iter::once(0)
        .chain((1..rows).filter(|&i| changed[i - 1]))
        .collect()
}

/// One code for each of the rows `at` that two of them share exactly when
/// every column holds the same dictionary key (or null) in both: the
/// columns' keys as digits of a mixed-radix number, null one more digit
/// value. Where the digits would overflow 64 bits, the codes so far are
/// renumbered densely first (they then take at most 32 bits).
pub(super) fn row_codes(columns: &[&DictionaryArray<Int32Type>], at: &[usize]) -> Vec<u64> {
    let mut codes = vec![0u64; at.len()];
    let mut used = 1u64;
    for d in columns {
        let radix = d.values().len() as u64 + 1;
        if used.checked_mul(radix).is_none() {
            used = renumber(&mut codes);
        }
        used = used.saturating_mul(radix);
        let keys = d.keys();
        for (code, &row) in codes.iter_mut().zip(at) {
            let digit = if keys.is_valid(row) {
                u64::from(keys.value(row) as u32) + 1
            } else {
                0
            };
            *code = *code * radix + digit;
        }
    }
    codes
}

/// Renumbers codes densely (0, 1, ... in order of first appearance) and
/// returns how many distinct ones there are.
fn renumber(codes: &mut [u64]) -> u64 {
    let mut dense: HashMap<u64, u64> = HashMap::new();
    for code in codes.iter_mut() {
        let next = dense.len() as u64;
        *code = *dense.entry(*code).or_insert(next);
    }
    dense.len().max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Gauges join the calls that drop the session id (gauge rows have no
    /// session id), a request that reads the session id does not, and
    /// without a record of each metric's labels nothing joins.
    #[test]
    fn passes_join_only_where_no_dropped_label_is_read_for_another() {
        let request = |metric: &str, without: &[&str]| ScanRequest {
            metric: Some(metric.to_string()),
            without: without.iter().map(|w| w.to_string()).collect(),
            ..ScanRequest::all()
        };
        let reqs = [
            request("calls", &["session"]),
            request("cpu", &[]),
            request("calls", &[]),
            request("mem", &[]),
        ];
        let labels: std::collections::HashMap<String, BTreeSet<String>> = [
            ("calls", &["server", "tool", "session"][..]),
            ("cpu", &["server"][..]),
            ("mem", &["server"][..]),
        ]
        .into_iter()
        .map(|(m, l)| (m.to_string(), l.iter().map(|s| s.to_string()).collect()))
        .collect();
        // As scan_segments_many groups them: by the labels each drops.
        let wanted = vec![vec![1, 2, 3], vec![0]];
        assert_eq!(
            joined_passes(&wanted, &reqs, Some(&labels)),
            vec![vec![1, 2, 3], vec![0]]
        );
        let wanted = vec![vec![1, 3], vec![0], vec![]];
        assert_eq!(
            joined_passes(&wanted, &reqs, Some(&labels)),
            vec![vec![1, 3, 0]]
        );
        assert_eq!(
            joined_passes(&wanted, &reqs, None),
            vec![vec![1, 3], vec![0]]
        );
        // A matcher on the session id reads it even for a gauge.
        let mut reqs = reqs;
        reqs[1].matchers = vec![Matcher::parse("session=s1").unwrap()];
        assert_eq!(
            joined_passes(&wanted, &reqs, Some(&labels)),
            vec![vec![1, 3], vec![0]]
        );
    }

    #[test]
    fn range_lists_intersect() {
        assert_eq!(
            intersect_ranges(&[0..10, 20..30], &[5..25, 28..40]),
            vec![5..10, 20..25, 28..30]
        );
        let (left, right): (Vec<Range<usize>>, Vec<Range<usize>>) = (
            std::iter::once(0..5).collect(),
            std::iter::once(5..9).collect(),
        );
        assert!(intersect_ranges(&left, &right).is_empty());
    }

    /// What merging must give: the chunks' samples by a stable comparison
    /// sort on time (oldest write first), with `dedupe` the last of each
    /// timestamp.
    fn merged_by_reference(chunks: &[Chunk], dedupe: bool) -> (Vec<i64>, Vec<f64>) {
        let mut pairs: Vec<(i64, f64)> = chunks
            .iter()
            .flat_map(|c| {
                let (mut ts, mut vs) = (Vec::new(), Vec::new());
                c.append_to(&mut ts, &mut vs);
                ts.into_iter().zip(vs)
            })
            .collect();
        pairs.sort_by_key(|p| p.0);
        if dedupe {
            let mut kept: Vec<(i64, f64)> = Vec::new();
            for p in pairs {
                match kept.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => kept.push(p),
                }
            }
            pairs = kept;
        }
        pairs.into_iter().unzip()
    }

    fn chunk_of(order: u64, samples: &[(i64, f64)]) -> Chunk {
        Chunk::owned(
            WriteRank {
                committed: 0,
                id: order,
            },
            SeriesKey::new("m", Vec::new()),
            samples.iter().map(|p| p.0).collect(),
            samples.iter().map(|p| p.1).collect(),
        )
    }

    /// Chunks in time order, overlapping, unsorted, with duplicate times,
    /// and pooled runs over a narrow span (offsets sorted in 32 bits) and a
    /// wide one (over 2^32 ms: whole pairs sorted) all merge as the
    /// reference sort orders them.
    #[test]
    fn chunks_merge_as_a_stable_sort_by_time_orders_them() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut sets: Vec<Vec<Vec<(i64, f64)>>> = vec![
            vec![vec![(1, 1.0), (2, 2.0), (2, 2.5), (3, 3.0)]],
            vec![vec![(1, 1.0), (3, 3.0)], vec![(3, 3.5), (4, 4.0)]],
            vec![vec![], vec![(5, 5.0)], vec![(5, 6.0), (9, 9.0)]],
            vec![vec![(1, 1.0), (5, 5.0)], vec![(3, 3.0)]],
            vec![vec![(5, 5.0), (1, 1.0), (5, 5.5)]],
            vec![vec![
                (i64::MIN, 1.0),
                (i64::MAX, 2.0),
                (0, 3.0),
                (i64::MIN, 4.0),
            ]],
        ];
        let mut rng = StdRng::seed_from_u64(7);
        for span in [1_000i64, 86_400_000, 1 << 40] {
            for _ in 0..20 {
                let base = rng.random_range(-(1i64 << 50)..(1i64 << 50));
                // Short sorted runs (sessions), interleaved in time.
                let runs = (0..rng.random_range(1..6))
                    .map(|_| {
                        let mut run: Vec<(i64, f64)> = (0..rng.random_range(0..40))
                            .map(|_| (base + rng.random_range(0..span), rng.random::<f64>()))
                            .collect();
                        run.sort_by_key(|p| p.0);
                        run
                    })
                    .collect();
                sets.push(runs);
            }
        }
        // A day of many sessions (the bucket sort's case), a burst within
        // one millisecond next to an outlier a day away (more than a
        // bucket holds: the radix sort's), and ties throughout.
        for (sessions, burst) in [(400, false), (50, true)] {
            let mut runs: Vec<Vec<(i64, f64)>> = (0..sessions)
                .map(|_| {
                    let start = rng.random_range(0..86_400_000i64);
                    let mut t = start;
                    (0..rng.random_range(1..30))
                        .map(|_| {
                            t += rng.random_range(0..5_000);
                            (t - t % 1_000, rng.random::<f64>())
                        })
                        .collect()
                })
                .collect();
            if burst {
                runs.push((0..500).map(|i| (5_000_000, f64::from(i))).collect());
                runs.push(vec![(-86_400_000, 0.5)]);
            }
            sets.push(runs);
        }
        for set in sets {
            let chunks = || (0u64..).zip(&set).map(|(o, s)| chunk_of(o, s));
            for dedupe in [true, false] {
                let want = merged_by_reference(&chunks().collect::<Vec<_>>(), dedupe);
                let got = merge_chunks(chunks(), dedupe);
                let got = got
                    .first()
                    .map(|s| (s.timestamps.clone(), s.values.clone()))
                    .unwrap_or_default();
                assert_eq!(got, want, "{set:?} dedupe {dedupe}");
            }
        }
    }

    /// The bucket sort orders spread samples stably (ties in the order
    /// given) and declines a burst that would overfill a bucket, which
    /// the radix sort then takes.
    #[test]
    fn bucket_sort_orders_spread_samples_and_declines_bursts() {
        let ts: Vec<i64> = (0..5_000i64).map(|i| (i * 7_919) % 2_503 - 3).collect();
        let vs: Vec<f64> = (0..5_000).map(f64::from).collect();
        let min = *ts.iter().min().unwrap_or(&0);
        let span = (ts.iter().max().unwrap_or(&0) - min) as u64;
        let mut want: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
        want.sort_by_key(|p| p.0);
        let got = bucket_sorted_by_time(&ts, &vs, min, span).expect("spread samples bucket");
        assert_eq!(got, want.into_iter().unzip());
        // Ties (samples i and i + 2503 share a time) kept their order.
        assert!(
            got.0
                .windows(2)
                .zip(got.1.windows(2))
                .all(|(t, v)| t[0] != t[1] || v[0] < v[1])
        );
        let mut burst = vec![1i64; 100];
        burst.push(1_000);
        assert!(bucket_sorted_by_time(&burst, &[0.0; 101], 1, 999).is_none());
        assert_eq!(sorted_by_time(&burst, &[0.0; 101]).0, {
            let mut b = burst.clone();
            b.sort();
            b
        });
    }

    /// A batch that a request reads whole is shared, not copied, by the
    /// chunks of that request; a request whose range cuts the batch copies
    /// what it keeps; and a batch of which the chunks keep under half is
    /// copied whatever the range. Every way, a chunk holds its series' rows.
    #[test]
    fn chunks_share_batches_they_keep_most_of() {
        use arrow::array::{Float64Array, Int32Array, StringArray, TimestampMillisecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let text = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new(METRIC_COLUMN, text, false),
            Field::new(
                TIMESTAMP_COLUMN,
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new(VALUE_COLUMN, DataType::Float64, false),
        ]));
        // Metric m at times 0..6 (values 0..6), then n at 0..14 (6..20).
        let metric: Vec<i32> = (0..20).map(|i| i32::from(i >= 6)).collect();
        let times: Vec<i64> = (0..20).map(|i| if i < 6 { i } else { i - 6 }).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        Int32Array::from(metric),
                        Arc::new(StringArray::from(vec!["m", "n"])),
                    )
                    .expect("dictionary"),
                ),
                Arc::new(TimestampMillisecondArray::from(times)),
                Arc::new(Float64Array::from(
                    (0..20).map(f64::from).collect::<Vec<f64>>(),
                )),
            ],
        )
        .expect("batch");
        let request = |metric: Option<&str>, start_ms: i64| ScanRequest {
            start_ms,
            metric: metric.map(str::to_string),
            ..ScanRequest::default()
        };
        // (request, metric, shared, times, values) of each chunk.
        type Read = (usize, String, bool, Vec<i64>, Vec<f64>);
        let read = |reqs: &[ScanRequest]| -> Vec<Read> {
            let mut out = Vec::new();
            let requests: Vec<usize> = (0..reqs.len()).collect();
            let holds = vec![false; reqs.len()];
            chunks_of_batch(
                Path::new("t"),
                &batch,
                WriteRank::default(),
                reqs,
                &requests,
                &holds,
                &mut out,
            )
            .expect("chunks");
            out.into_iter()
                .map(|(r, c)| {
                    let (mut ts, mut vs) = (Vec::new(), Vec::new());
                    c.append_to(&mut ts, &mut vs);
                    let shared = matches!(c.samples, Samples::InBatch { .. });
                    (r, c.key.metric, shared, ts, vs)
                })
                .collect()
        };
        let m = |from: i64| ((from..6).collect(), (from..6).map(|i| i as f64).collect());
        let n = || ((0..14).collect(), (6..20).map(f64::from).collect());
        let chunk = |r: usize, metric: &str, shared: bool, (ts, vs): (Vec<i64>, Vec<f64>)| {
            (r, metric.to_string(), shared, ts, vs)
        };
        // Everything, and m from time 4: the first shares, the second copies.
        assert_eq!(
            read(&[request(None, 0), request(Some("m"), 4)]),
            vec![
                chunk(0, "m", true, m(0)),
                chunk(1, "m", false, m(4)),
                chunk(0, "n", true, n()),
            ]
        );
        // n alone keeps most of the batch and shares it; m alone copies.
        assert_eq!(
            read(&[request(Some("n"), 0)]),
            vec![chunk(0, "n", true, n())]
        );
        assert_eq!(
            read(&[request(Some("m"), 0)]),
            vec![chunk(0, "m", false, m(0))]
        );
    }

    /// A null and key 0 are different digits in every column, the first
    /// and the later ones, where every other column is the same on both
    /// rows, for codes and for run starts alike. It fails when a column's
    /// nulls take key 0's digit.
    #[test]
    fn row_codes_tell_a_null_from_key_zero_in_any_column() {
        use arrow::array::{Int32Array, StringArray};
        let values = Arc::new(StringArray::from(vec!["a", "b"]));
        let constant = || {
            DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![1; 4]), values.clone())
                .expect("dictionary")
        };
        let varying = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(vec![None, Some(0), None, Some(0)]),
            values.clone(),
        )
        .expect("dictionary");
        for position in 0..3 {
            let columns: Vec<DictionaryArray<Int32Type>> = (0..3)
                .map(|c| {
                    if c == position {
                        varying.clone()
                    } else {
                        constant()
                    }
                })
                .collect();
            let refs: Vec<&DictionaryArray<Int32Type>> = columns.iter().collect();
            let codes = row_codes(&refs, &[0, 1, 2, 3]);
            assert_ne!(codes[0], codes[1], "column {position}");
            assert_eq!(codes[0], codes[2], "column {position}");
            assert_eq!(codes[1], codes[3], "column {position}");
            assert_eq!(run_starts(&refs, 4), [0, 1, 2, 3], "column {position}");
        }
    }

    /// Runs start, and two rows share a code, exactly where every column
    /// agrees on them (key or null), over nulls in stretches and scattered, lengths that are not
    /// whole words, arrays sliced off a word boundary, and enough columns
    /// with enough values that the codes must be renumbered on the way.
    #[test]
    fn runs_and_codes_follow_exactly_where_every_column_is_equal() {
        use arrow::array::{Int32Array, StringArray};
        let mut state = 7u64;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % below
        };
        let wide: Vec<String> = (0..70_000).map(|i| format!("v{i}")).collect();
        let values = [
            StringArray::from(vec!["a", "b", "c"]),
            StringArray::from(wide.iter().map(String::as_str).collect::<Vec<_>>()),
        ];
        for len in [1usize, 63, 64, 65, 200, 1000] {
            let columns: Vec<DictionaryArray<Int32Type>> = (0..7)
                .map(|c| {
                    let n = if c % 2 == 0 { 3 } else { 70_000 };
                    let keys: Int32Array = (0..len)
                        .map(|i| match (i / 50 + c) % 3 {
                            0 => None,                                  // a null stretch
                            1 => Some((i / 7 % 3) as i32),              // runs
                            _ => (next(3) > 0).then(|| next(n) as i32), // scattered
                        })
                        .collect();
                    DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values[c % 2].clone()))
                        .expect("dictionary")
                })
                .collect();
            for offset in [0, 1, 13.min(len - 1)] {
                let sliced: Vec<DictionaryArray<Int32Type>> = columns
                    .iter()
                    .map(|d| d.slice(offset, len - offset))
                    .collect();
                let refs: Vec<&DictionaryArray<Int32Type>> = sliced.iter().collect();
                let rows = len - offset;
                let all: Vec<usize> = (0..rows).collect();
                let codes = row_codes(&refs, &all);
                let key = |i: usize| -> Vec<Option<i32>> {
                    refs.iter()
                        .map(|d| d.is_valid(i).then(|| d.keys().value(i)))
                        .collect()
                };
                let starts: Vec<usize> = (0..rows)
                    .filter(|&i| i == 0 || key(i) != key(i - 1))
                    .collect();
                assert_eq!(run_starts(&refs, rows), starts, "len {len} offset {offset}");
                for i in 0..rows {
                    for j in [i.saturating_sub(1), (i * 31 + 5) % rows] {
                        assert_eq!(
                            codes[i] == codes[j],
                            key(i) == key(j),
                            "len {len} offset {offset} rows {i} {j}"
                        );
                    }
                }
            }
        }
    }

    /// Two commits write one sample differently; the later commit's value
    /// is read, whatever the segment ids say (optimistic writers take ids
    /// before they commit, so a later commit may hold the lower id).
    #[test]
    fn the_later_commit_wins_a_duplicate_sample_not_the_higher_id() {
        use crate::model::SampleSink;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::super::Store::open(dir.path());
        for value in [1.0, 2.0] {
            let mut writer = store.writer().expect("writer");
            let id = writer.intern(SeriesKey::new("m", Vec::new()));
            writer.push(id, 1_795_305_600_000, value).expect("push");
            writer.commit().expect("commit");
        }
        let mut segments = store
            .snapshot()
            .expect("snapshot")
            .manifest()
            .segments
            .clone();
        let read = |segments: &[SegmentMeta]| {
            let source = super::super::LocalSegments::new(dir.path());
            let series = scan_segments_many(&source, segments, &[ScanRequest::all()], &[])
                .expect("scan")
                .remove(0);
            assert_eq!(series.len(), 1);
            series[0].values.clone()
        };
        assert_eq!((segments[0].committed, segments[1].committed), (1, 2));
        assert_eq!(read(&segments), vec![2.0]);
        // The first value's segment committed last, under the lower id.
        segments[0].committed = 3;
        assert_eq!(read(&segments), vec![1.0]);
        // Entries from before commits were recorded rank by id.
        segments[0].committed = 0;
        segments[1].committed = 0;
        assert_eq!(read(&segments), vec![2.0]);
    }

    #[test]
    fn newest_write_wins_on_duplicate_timestamps() {
        let ts = vec![3, 1, 2, 1, 3];
        let vs = vec![30.0, 10.0, 20.0, 11.0, 31.0];
        let (t, v) = in_time_order(ts.clone(), vs.clone(), true);
        assert_eq!(t, vec![1, 2, 3]);
        assert_eq!(v, vec![11.0, 20.0, 31.0]);
        // Pooled, every sample stays; equal times in the order given.
        let (t, v) = in_time_order(ts, vs, false);
        assert_eq!(t, vec![1, 1, 2, 3, 3]);
        assert_eq!(v, vec![10.0, 11.0, 20.0, 30.0, 31.0]);
    }
}
