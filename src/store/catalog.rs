//! The store's catalog: every series with its sample count and time range,
//! and each metric name's metadata, for `mcpops metrics` and `mcpops
//! labels`. Reading it decodes only the metric, label and timestamp
//! columns (never the values) and names each run of rows once, so it costs
//! a fraction of a scan; row groups are read in parallel and checked
//! against their checksums like any read.

use super::checksum::{open_segment, read_row_group_bytes};
use super::manifest::SegmentMeta;
use super::scan::{row_codes, run_starts};
use super::segment::{METRIC_COLUMN, TIMESTAMP_COLUMN, VALUE_COLUMN};
use super::source::SegmentSource;
use super::{Snapshot, StoreError};
use crate::metadata::{MetricMeta, infer};
use crate::model::SeriesKey;
use arrow::array::{Array, AsArray, DictionaryArray, StringArray};
use arrow::datatypes::{Int32Type, TimestampMillisecondType};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One series as the catalog lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesStats {
    pub key: SeriesKey,
    /// Rows stored (duplicates that `compact` would drop included).
    pub samples: u64,
    pub first: i64,
    pub last: i64,
}

impl SeriesStats {
    fn add(&mut self, other: &SeriesStats) {
        self.samples += other.samples;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

/// Every series of the store (of the metrics `wanted` accepts), and the
/// metadata of each stored metric name.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Sorted by key.
    pub series: Vec<SeriesStats>,
    /// The manifest's metadata, completed by inference (from the names and
    /// their `le` labels) for names it lacks (stores written before it
    /// was kept).
    pub metadata: BTreeMap<String, MetricMeta>,
}

impl Snapshot {
    /// The catalog of the metrics for which `wanted` holds.
    pub fn catalog(&self, wanted: &(dyn Fn(&str) -> bool + Sync)) -> Result<Catalog, StoreError> {
        let source = self.store.source();
        let source = &*source;
        let segments: Vec<&SegmentMeta> = self
            .manifest
            .segments
            .iter()
            .filter(|s| s.metrics.iter().any(|m| wanted(m)))
            .collect();
        let tasks: Vec<(&SegmentMeta, usize)> = segments
            .par_iter()
            .map(|s| row_group_count(source, s).map(|n| (0..n).map(move |rg| (*s, rg))))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let parts: Vec<Vec<SeriesStats>> = tasks
            .par_iter()
            .map(|(s, rg)| read_row_group(source, s, *rg, wanted))
            .collect::<Result<_, _>>()?;
        let mut all: HashMap<SeriesKey, SeriesStats> = HashMap::new();
        // The live head's series count as one more part.
        let head_parts = self.heads.iter().map(|h| {
            h.series_stats(wanted)
                .into_iter()
                .map(|(key, samples, first, last)| SeriesStats {
                    key,
                    samples,
                    first,
                    last,
                })
                .collect::<Vec<_>>()
        });
        for part in parts.into_iter().chain(head_parts) {
            for stats in part {
                match all.get_mut(&stats.key) {
                    Some(s) => s.add(&stats),
                    None => {
                        all.insert(stats.key.clone(), stats);
                    }
                }
            }
        }
        let mut series: Vec<SeriesStats> = all.into_values().collect();
        series.sort_by(|a, b| a.key.cmp(&b.key));
        let metadata = self.metadata_of(&series);
        Ok(Catalog { series, metadata })
    }

    /// The manifest's metadata of the names in `series`, inferred where the
    /// manifest has none.
    fn metadata_of(&self, series: &[SeriesStats]) -> BTreeMap<String, MetricMeta> {
        let stored: BTreeSet<&str> = self
            .manifest()
            .segments
            .iter()
            .flat_map(|s| s.metrics.iter().map(String::as_str))
            .collect();
        let mut with_le: BTreeMap<&str, bool> = BTreeMap::new();
        for s in series {
            *with_le.entry(s.key.metric.as_str()).or_default() |= s.key.label("le").is_some();
        }
        with_le
            .into_iter()
            .map(|(name, has_le)| {
                let meta = self
                    .manifest()
                    .metadata
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| infer(name, has_le, &|n| stored.contains(n)));
                (name.to_string(), meta)
            })
            .collect()
    }
}

fn row_group_count(source: &dyn SegmentSource, segment: &SegmentMeta) -> Result<usize, StoreError> {
    let meta = open_segment(source, segment, ArrowReaderOptions::new())?;
    Ok(meta.metadata().num_row_groups())
}

/// The series of one row group with their counts and time ranges.
fn read_row_group(
    source: &dyn SegmentSource,
    segment: &SegmentMeta,
    rg: usize,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<SeriesStats>, StoreError> {
    let path = source.name(segment);
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.clone(),
        message: what,
    };
    let metadata = open_segment(source, segment, ArrowReaderOptions::new())?;
    let meta = metadata.metadata();
    let schema = meta.file_metadata().schema_descr();
    let leaves: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| schema.column(i).name() != VALUE_COLUMN)
        .collect();
    let bytes = read_row_group_bytes(source, segment, meta, rg)?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata.clone())
        .with_projection(ProjectionMask::leaves(schema, leaves))
        .with_row_groups(vec![rg])
        .build()
        .map_err(|e| StoreError::parquet(&path, e))?;
    let mut found: Vec<SeriesStats> = Vec::new();
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::parquet(&path, e))?;
        let schema = batch.schema();
        let mut metric = None;
        let mut labels: Vec<(&str, &DictionaryArray<Int32Type>)> = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name().as_str();
            if name == TIMESTAMP_COLUMN {
                continue;
            }
            let dict = batch
                .column(i)
                .as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| {
                    corrupt(format!("column `{name}` is not dictionary-encoded text"))
                })?;
            if name == METRIC_COLUMN {
                metric = Some(dict);
            } else {
                labels.push((name, dict));
            }
        }
        let metric = metric.ok_or_else(|| corrupt("no `metric` column".into()))?;
        let ts = batch
            .column_by_name(TIMESTAMP_COLUMN)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| corrupt("no millisecond `timestamp` column".into()))?
            .values();
        let rows = batch.num_rows();
        let columns: Vec<&DictionaryArray<Int32Type>> = std::iter::once(metric)
            .chain(labels.iter().map(|(_, d)| *d))
            .collect();
        let starts = run_starts(&columns, rows);
        let codes = row_codes(&columns, &starts);
        let text = |d: &DictionaryArray<Int32Type>, row: usize| -> Option<String> {
            if d.is_null(row) {
                return None;
            }
            let values: &StringArray = d.values().as_string();
            Some(values.value(d.keys().value(row) as usize).to_string())
        };
        // Each distinct code is named once per batch (its place in
        // `found`); `None`: a metric not wanted.
        let mut named: HashMap<u64, Option<usize>> = HashMap::new();
        for (k, (&start, code)) in starts.iter().zip(codes).enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(rows);
            let slot = match named.get(&code) {
                Some(&slot) => slot,
                None => {
                    let name = text(metric, start).ok_or_else(|| corrupt("null metric".into()))?;
                    let slot = if wanted(&name) {
                        let key = SeriesKey::new(
                            name,
                            labels
                                .iter()
                                .filter_map(|(n, d)| text(d, start).map(|v| (n.to_string(), v)))
                                .collect(),
                        );
                        let next = found.len();
                        let slot = *index.entry(key.clone()).or_insert(next);
                        if slot == next {
                            found.push(SeriesStats {
                                key,
                                samples: 0,
                                first: i64::MAX,
                                last: i64::MIN,
                            });
                        }
                        Some(slot)
                    } else {
                        None
                    };
                    named.insert(code, slot);
                    slot
                }
            };
            let Some(slot) = slot else { continue };
            let (lo, hi) = ts[start..end]
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
            let s = &mut found[slot];
            s.samples += (end - start) as u64;
            s.first = s.first.min(lo);
            s.last = s.last.max(hi);
        }
    }
    Ok(found)
}
