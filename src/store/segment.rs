//! One segment: an immutable Parquet file of one UTC day's samples, sorted by
//! series (metric, then label columns in name order, nulls first) and then
//! time, except that labels naming short-lived series (MCP session ids) sort
//! after time ([`SegmentOrder`]). Timestamps are DELTA_BINARY_PACKED; values
//! stay DOUBLE (so every reader sees the numbers as stored, bit for bit) and
//! are BYTE_STREAM_SPLIT or dictionary per row group, whichever trial
//! encodings of each metric's values make smaller, with row groups cut at
//! metric boundaries to let each metric have its own ([`plan_row_groups`]);
//! zstd throughout, except for label columns in
//! long runs (they encode to a few bytes per run, which zstd cannot shrink);
//! page-level statistics so the page index is written.
//! The file's key-value metadata names the label columns each metric's rows
//! use ([`METRIC_LABELS_KEY`]), so that a scan of one metric can leave the
//! others' label columns undecoded.

use super::StoreError;
use super::checksum::checksums_of_bytes;
use super::manifest::SegmentChecksums;
use crate::model::SeriesKey;
use crate::names::{
    MCP_PROTOCOL_VERSION_LABEL, PROTOCOL_NAME_LABEL, PROTOCOL_VERSION_LABEL, TRANSPORT_LABEL,
};
use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

pub const METRIC_COLUMN: &str = "metric";
pub const TIMESTAMP_COLUMN: &str = "timestamp";
pub const VALUE_COLUMN: &str = "value";
/// Key-value metadata: a JSON object from each metric name to the label
/// columns its rows use (sorted). A column it does not name is null on
/// every row of that metric.
pub const METRIC_LABELS_KEY: &str = "mcpops.metric_labels";

/// Rows per row group: small enough that a query for one metric skips most
/// of a day, large enough that per-group overhead stays under a percent.
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Rows per data page: parquet's default limit (20,000), rounded up to the
/// writer's 1,024-row batches as the writer does anyway, so that a page
/// holds exactly this many rows and a reader can take one page per batch.
pub const PAGE_ROWS: usize = 20 * 1024;
/// Values looked at when choosing the value column's encoding.
const TRIAL_VALUES: usize = 32 * 1024;
const ZSTD_LEVEL: i32 = 3;
const VALUE_ZSTD_LEVEL: i32 = 9;

/// Rows ready to become a segment: `series` in the segment's sort order,
/// per row the index of its series in that list, and the rows sorted as
/// [`SegmentOrder::sorted_rows`] sorts them.
pub struct SortedRows<'a> {
    pub series: Vec<&'a SeriesKey>,
    pub row_series: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// The label columns sorted after time ([`SegmentOrder::trailing`]).
    pub trailing: Vec<String>,
}

/// A label whose values are more than one in this many of the rows that
/// carry it, and at least this many, names short-lived series (an MCP
/// session id: a few calls each).
const SHORT_LIVED: usize = 64;

/// Attributes of an MCP session's connection (OpenTelemetry's MCP and
/// network conventions): where session ids sort after time, these do too,
/// so that they do not split a server's and tool's calls in two stretches.
const SESSION_SCOPED: [&str; 4] = [
    TRANSPORT_LABEL,
    PROTOCOL_NAME_LABEL,
    PROTOCOL_VERSION_LABEL,
    MCP_PROTOCOL_VERSION_LABEL,
];

/// How a segment orders its rows: by metric, then by the label columns in
/// name order (a missing label before any value), then by time, except
/// that labels naming short-lived series come after time. The calls of one
/// server and tool then lie in one stretch in time order, as the scans
/// that pool sessions read them, rather than in a run per session.
pub struct SegmentOrder<'a> {
    /// The series in sort order: metric, leading labels, trailing labels.
    pub series: Vec<&'a SeriesKey>,
    /// Per series, the rank of its group: the series that differ only in
    /// trailing labels.
    group: Vec<u32>,
    /// Per series as given to [`Self::of`], its index in `series`.
    rank_of_given: Vec<u32>,
    /// The labels that sort after time, in name order.
    pub trailing: Vec<String>,
}

impl<'a> SegmentOrder<'a> {
    /// The order of these series, each given with its number of rows.
    pub fn of(series: Vec<(&'a SeriesKey, usize)>) -> SegmentOrder<'a> {
        let mut values: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
        for (key, rows) in &series {
            for (name, value) in &key.labels {
                let (distinct, carrying) = values.entry(name.as_str()).or_default();
                distinct.insert(value.as_str());
                *carrying += rows;
            }
        }
        let short_lived = |name: &str| {
            let (distinct, carrying) = &values[name];
            distinct.len() >= SHORT_LIVED && distinct.len() * SHORT_LIVED > *carrying
        };
        let sessions = values.keys().any(|name| short_lived(name));
        let (trailing, leading): (Vec<&str>, Vec<&str>) = values
            .keys()
            .copied()
            .partition(|name| short_lived(name) || (sessions && SESSION_SCOPED.contains(name)));
        let group_key = |key: &'a SeriesKey| {
            let labels: Vec<Option<&'a str>> = leading.iter().map(|n| key.label(n)).collect();
            (key.metric.as_str(), labels)
        };
        let mut keyed: Vec<_> = series
            .into_iter()
            .zip(0u32..)
            .map(|((key, _), given)| {
                let rest: Vec<Option<&str>> = trailing.iter().map(|n| key.label(n)).collect();
                (group_key(key), rest, key, given)
            })
            .collect();
        keyed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut group = Vec::with_capacity(keyed.len());
        let mut rank_of_given = vec![0u32; keyed.len()];
        let mut rank = 0u32;
        for (i, k) in keyed.iter().enumerate() {
            if i > 0 && keyed[i - 1].0 != k.0 {
                rank += 1;
            }
            group.push(rank);
            rank_of_given[k.3 as usize] = i as u32;
        }
        SegmentOrder {
            series: keyed.into_iter().map(|(_, _, key, _)| key).collect(),
            group,
            rank_of_given,
            trailing: trailing.into_iter().map(str::to_string).collect(),
        }
    }

    /// Rows, each with the index of its series as given to [`Self::of`],
    /// sorted by group, time and series; rows equal in all three keep the
    /// order given (the later write stays later).
    pub fn sorted_rows(self, row_given: &[u32], ts: &[i64], vs: &[f64]) -> SortedRows<'a> {
        let row_series: Vec<u32> = row_given
            .iter()
            .map(|&g| self.rank_of_given[g as usize])
            .collect();
        // Rows are counted into their groups in arrival order, then each
        // group is sorted by (time, series) only if it is not in that order
        // already: files list a series' samples in time order, so this is
        // linear where a sort of all rows was not.
        let groups = self.group.last().map_or(0, |&g| g as usize + 1);
        let mut start = vec![0usize; groups + 1];
        for &s in &row_series {
            start[self.group[s as usize] as usize + 1] += 1;
        }
        for g in 0..groups {
            start[g + 1] += start[g];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; row_series.len()];
        for (r, &s) in row_series.iter().enumerate() {
            let slot = &mut next[self.group[s as usize] as usize];
            order[*slot] = r as u32;
            *slot += 1;
        }
        let key = |r: u32| (ts[r as usize], row_series[r as usize]);
        for bounds in start.windows(2) {
            let group = &mut order[bounds[0]..bounds[1]];
            if !group.is_sorted_by_key(|&r| key(r)) {
                // Stable: rows equal in time and series keep arrival order.
                group.sort_by_key(|&r| key(r));
            }
        }
        SortedRows {
            row_series: gather(&row_series, &order),
            timestamps: gather(ts, &order),
            values: gather(vs, &order),
            series: self.series,
            trailing: self.trailing,
        }
    }
}

/// The elements of `column` at `rows`, in that order.
pub(super) fn gather<T: Copy>(column: &[T], rows: &[u32]) -> Vec<T> {
    rows.iter().map(|&r| column[r as usize]).collect()
}

/// A segment encoded in memory, with what the manifest records of it:
/// ready to be stored as a file or uploaded as an object, as it is.
pub struct EncodedSegment {
    pub bytes: bytes::Bytes,
    pub metrics: Vec<String>,
    pub labels: Vec<String>,
    pub checksums: SegmentChecksums,
}

/// Encodes rows as a Parquet segment (`name` is what errors call it).
/// Takes the rows by value: their columns become the Arrow arrays as they are.
pub fn encode_segment(name: &str, mut rows: SortedRows) -> Result<EncodedSegment, StoreError> {
    // The label columns of each metric: the metrics and the columns follow.
    let mut metric_labels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &rows.series {
        metric_labels
            .entry(s.metric.as_str())
            .or_default()
            .extend(s.labels.iter().map(|(k, _)| k.as_str()));
    }
    let metrics: Vec<String> = metric_labels.keys().map(|m| m.to_string()).collect();
    let label_names: Vec<String> = metric_labels
        .values()
        .flatten()
        .copied()
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();

    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let mut fields = vec![Field::new(METRIC_COLUMN, dict_type.clone(), false)];
    for name in &label_names {
        fields.push(Field::new(name, dict_type.clone(), true));
    }
    let values = Float64Array::from(std::mem::take(&mut rows.values));
    // The label columns are built while the value encodings are tried.
    let (groups, columns) = rayon::join(
        || plan_row_groups(&values, &metric_runs(&rows.series, &rows.row_series)),
        || {
            let metric = dictionary_column(&rows, |s| Some(s.metric.as_str()));
            let labels = label_names
                .par_iter()
                .map(|name| dictionary_column(&rows, |s| s.label(name)));
            rayon::iter::once(metric)
                .chain(labels)
                .collect::<Result<Vec<ArrayRef>, _>>()
        },
    );
    let (groups, mut columns) = (groups?, columns?);
    fields.push(Field::new(
        TIMESTAMP_COLUMN,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    ));
    columns.push(Arc::new(
        TimestampMillisecondArray::from(rows.timestamps).with_timezone("UTC"),
    ));
    fields.push(Field::new(VALUE_COLUMN, DataType::Float64, false));
    columns.push(Arc::new(values));

    let schema = Arc::new(Schema::new(fields));
    // Label columns in long runs (all but the session ids, as rows sort)
    // take a few bytes per run encoded, which zstd cannot shrink: written
    // uncompressed, a reader sets up no decompressor for them.
    let in_long_runs: Vec<&str> = std::iter::once(METRIC_COLUMN)
        .chain(label_names.iter().map(String::as_str))
        .zip(&columns)
        .filter(|(_, column)| key_runs(column.as_ref()) * LONG_RUN <= column.len())
        .map(|(name, _)| name)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(StoreError::arrow)?;

    // Sort order as Parquet metadata: metric, the leading label columns,
    // time, the trailing label columns.
    let trailing = |name: &String| rows.trailing.contains(name);
    let label_column = |name: &String| label_names.iter().position(|n| n == name).map(|i| i + 1);
    let sorting: Vec<SortingColumn> = std::iter::once(0)
        .chain(
            label_names
                .iter()
                .filter(|n| !trailing(n))
                .filter_map(label_column),
        )
        .chain(std::iter::once(label_names.len() + 1))
        .chain(
            label_names
                .iter()
                .filter(|n| trailing(n))
                .filter_map(label_column),
        )
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    let metric_labels =
        serde_json::to_string(&metric_labels).map_err(|e| StoreError::parquet(name, e))?;
    let bytes = write_row_groups(
        Vec::new(),
        &batch,
        &groups,
        Some(sorting),
        &in_long_runs,
        KeyValue::new(METRIC_LABELS_KEY.into(), metric_labels),
    )
    .map_err(|e| StoreError::parquet(name, e))?;
    let bytes = bytes::Bytes::from(bytes);
    let checksums = checksums_of_bytes(&bytes).map_err(|e| StoreError::parquet(name, e))?;
    Ok(EncodedSegment {
        bytes,
        metrics,
        labels: label_names,
        checksums,
    })
}

/// How many runs of equal keys (nulls included) a dictionary column has.
fn key_runs(column: &dyn Array) -> usize {
    let Some(dict) = column.as_dictionary_opt::<Int32Type>() else {
        return column.len();
    };
    let keys = dict.keys();
    let key = |i: usize| keys.is_valid(i).then(|| keys.value(i));
    (1..keys.len()).filter(|&i| key(i) != key(i - 1)).count() + usize::from(!keys.is_empty())
}

/// Label columns whose rows hold a run of this many or more per key change,
/// on average, are written uncompressed.
const LONG_RUN: usize = 64;

fn writer_properties(
    value_encoding: Encoding,
    sorting: Option<Vec<SortingColumn>>,
    uncompressed: &[&str],
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL)?;
    let ts = ColumnPath::from(TIMESTAMP_COLUMN);
    let value = ColumnPath::from(VALUE_COLUMN);
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_sorting_columns(sorting)
        // An encoding other than dictionary is only real with dictionaries off.
        .set_column_dictionary_enabled(ts.clone(), false)
        .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED);
    let value_level = ZstdLevel::try_new(VALUE_ZSTD_LEVEL)?;
    builder = builder.set_column_compression(value.clone(), Compression::ZSTD(value_level));
    if value_encoding != Encoding::RLE_DICTIONARY {
        builder = builder
            .set_column_dictionary_enabled(value.clone(), false)
            .set_column_encoding(value, value_encoding);
    }
    for name in uncompressed {
        builder =
            builder.set_column_compression(ColumnPath::from(*name), Compression::UNCOMPRESSED);
    }
    Ok(builder.build())
}

/// The value column's encodings a row group may take: dictionary wins on
/// integer-like and few-decimal gauges, BYTE_STREAM_SPLIT on noisy floats
/// and on slowly moving ones (counters, byte gauges).
const VALUE_ENCODINGS: [Encoding; 2] = [Encoding::RLE_DICTIONARY, Encoding::BYTE_STREAM_SPLIT];

/// What a row group costs beyond its rows' encoded bytes (its column chunks'
/// metadata, statistics and page index entries in the footer), measured on
/// segments of a few label columns: a metric too small to repay it shares
/// its neighbours' encoding instead of starting a row group of its own.
const ROW_GROUP_OVERHEAD: f64 = 600.0;

/// Metrics with fewer rows than this are not tried: their encoding follows
/// their neighbours'.
const TRIAL_MIN_ROWS: usize = 256;

/// The rows of each metric, in row order (rows sort by metric first).
fn metric_runs(series: &[&SeriesKey], row_series: &[u32]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=row_series.len() {
        let ends = i == row_series.len()
            || (row_series[i] != row_series[i - 1]
                && series[row_series[i] as usize].metric
                    != series[row_series[start] as usize].metric);
        if ends {
            runs.push(start..i);
            start = i;
        }
    }
    runs
}

/// Row groups and their value encoding. Each metric's values are encoded
/// every way on a trial sample (the whole metric when it is small), which
/// estimates what each encoding would cost it; then the metrics, in row
/// order, are cut into row groups of at most [`ROW_GROUP_ROWS`] rows that
/// minimise the estimated bytes plus [`ROW_GROUP_OVERHEAD`] per group, each
/// group taking the encoding cheapest for the metrics in it. A segment of
/// counters and gauges thus stores each the way it compresses best, in one
/// file whose value column stays DOUBLE for every reader.
fn plan_row_groups(
    values: &Float64Array,
    metric_runs: &[Range<usize>],
) -> Result<Vec<(Range<usize>, Encoding)>, StoreError> {
    // A metric longer than a row group is several pieces, each its own choice.
    let pieces: Vec<Range<usize>> = metric_runs
        .iter()
        .flat_map(|run| {
            (run.start..run.end)
                .step_by(ROW_GROUP_ROWS)
                .map(move |s| s..(s + ROW_GROUP_ROWS).min(run.end))
        })
        .collect();
    let costs = pieces
        .par_iter()
        .map(|piece| trial_costs(&values.values()[piece.clone()]))
        .collect::<Result<Vec<_>, _>>()?;
    // cheapest[j]: (total cost, start piece of the last group, its encoding)
    // for the pieces before j.
    let mut cheapest: Vec<(f64, usize, Encoding)> = vec![(0.0, 0, Encoding::PLAIN)];
    for j in 1..=pieces.len() {
        let mut best = (f64::INFINITY, 0, Encoding::PLAIN);
        let mut sums = [0.0; VALUE_ENCODINGS.len()];
        for i in (0..j).rev() {
            if pieces[j - 1].end - pieces[i].start > ROW_GROUP_ROWS {
                break;
            }
            for (sum, cost) in sums.iter_mut().zip(&costs[i]) {
                *sum += cost;
            }
            for (k, sum) in sums.iter().enumerate() {
                let total = cheapest[i].0 + sum + ROW_GROUP_OVERHEAD;
                if total < best.0 {
                    best = (total, i, VALUE_ENCODINGS[k]);
                }
            }
        }
        cheapest.push(best);
    }
    let mut groups = Vec::new();
    let mut j = pieces.len();
    while j > 0 {
        let (_, i, encoding) = cheapest[j];
        groups.push((pieces[i].start..pieces[j - 1].end, encoding));
        j = i;
    }
    groups.reverse();
    Ok(groups)
}

/// Estimated bytes of these values under each of [`VALUE_ENCODINGS`]: a
/// sample of a few evenly spread stretches is written each way, and its size
/// scaled to all the values. Too few values to tell cost the same each way.
fn trial_costs(values: &[f64]) -> Result<[f64; VALUE_ENCODINGS.len()], StoreError> {
    let n = values.len();
    if n < TRIAL_MIN_ROWS {
        return Ok([0.0; VALUE_ENCODINGS.len()]);
    }
    let sample: Vec<f64> = if n <= TRIAL_VALUES {
        values.to_vec()
    } else {
        let stretches = 8;
        let len = TRIAL_VALUES / stretches;
        (0..stretches)
            .flat_map(|r| {
                let start = r * n / stretches;
                values[start..(start + len).min(n)].iter().copied()
            })
            .collect()
    };
    let scale = n as f64 / sample.len() as f64;
    let schema = Arc::new(Schema::new(vec![Field::new(
        VALUE_COLUMN,
        DataType::Float64,
        false,
    )]));
    let sample = Arc::new(Float64Array::from(sample)) as ArrayRef;
    let batch = RecordBatch::try_new(schema, vec![sample]).map_err(StoreError::arrow)?;
    let mut costs = [0.0; VALUE_ENCODINGS.len()];
    for (cost, encoding) in costs.iter_mut().zip(VALUE_ENCODINGS) {
        let whole = vec![(0..batch.num_rows(), encoding)];
        let bytes = write_row_groups(
            Vec::new(),
            &batch,
            &whole,
            None,
            &[],
            KeyValue::new(String::new(), None),
        )
        .map_err(|e| StoreError::parquet("trial encoding", e))?
        .len();
        *cost = bytes as f64 * scale;
    }
    Ok(costs)
}

/// Writes `batch` as Parquet to `out`, a row group per range in `groups`
/// with the value column in that group's encoding, and returns `out`.
/// Encodings may differ between row groups, not between column chunks of
/// one writer: so each encoding has a column-writer factory of its own,
/// built from a writer to nowhere, and its chunks are spliced into the file.
fn write_row_groups<W: Write + Send>(
    out: W,
    batch: &RecordBatch,
    groups: &[(Range<usize>, Encoding)],
    sorting: Option<Vec<SortingColumn>>,
    uncompressed: &[&str],
    metadata: KeyValue,
) -> Result<W, parquet::errors::ParquetError> {
    let schema = batch.schema();
    let props = |encoding| writer_properties(encoding, sorting.clone(), uncompressed);
    let writer = ArrowWriter::try_new(out, schema.clone(), Some(props(Encoding::PLAIN)?))?;
    let (mut file, _) = writer.into_serialized_writer()?;
    if !metadata.key.is_empty() {
        file.append_key_value_metadata(metadata);
    }
    let mut factories = Vec::with_capacity(VALUE_ENCODINGS.len());
    // Only the encodings some group takes (a trial takes one).
    for encoding in VALUE_ENCODINGS
        .into_iter()
        .filter(|e| groups.iter().any(|(_, g)| g == e))
    {
        let nowhere =
            ArrowWriter::try_new(std::io::sink(), schema.clone(), Some(props(encoding)?))?;
        factories.push((encoding, nowhere.into_serialized_writer()?.1));
    }
    // Row groups are encoded in parallel, then spliced into the file in order.
    let encoded = groups
        .par_iter()
        .enumerate()
        .map(|(index, (rows, encoding))| {
            let Some((_, factory)) = factories.iter().find(|(e, _)| e == encoding) else {
                return Err(parquet::errors::ParquetError::General(format!(
                    "no writer for {encoding}"
                )));
            };
            let mut writers = factory.create_column_writers(index)?;
            let group = batch.slice(rows.start, rows.len());
            for ((writer, field), column) in
                writers.iter_mut().zip(schema.fields()).zip(group.columns())
            {
                for leaf in compute_leaves(field, column)? {
                    writer.write(&leaf)?;
                }
            }
            writers
                .into_iter()
                .map(|writer| writer.close())
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for chunks in encoded {
        let mut row_group = file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    file.into_inner()
}

/// A dictionary column whose value per row comes from the row's series.
fn dictionary_column<'a>(
    rows: &SortedRows<'a>,
    value_of: impl Fn(&'a SeriesKey) -> Option<&'a str>,
) -> Result<ArrayRef, StoreError> {
    let per_series: Vec<Option<&str>> = rows.series.iter().map(|s| value_of(s)).collect();
    let distinct: Vec<&str> = per_series
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let key_of_series: Vec<Option<i32>> = per_series
        .iter()
        .map(|v| v.and_then(|v| distinct.binary_search(&v).ok().map(|i| i as i32)))
        .collect();
    let keys: Vec<i32> = rows
        .row_series
        .iter()
        .map(|&s| key_of_series[s as usize].unwrap_or(0))
        .collect();
    let nulls = key_of_series.iter().any(Option::is_none).then(|| {
        rows.row_series
            .iter()
            .map(|&s| key_of_series[s as usize].is_some())
            .collect::<NullBuffer>()
    });
    let keys = Int32Array::new(keys.into(), nulls);
    let values = Arc::new(StringArray::from(distinct)) as ArrayRef;
    let array = DictionaryArray::<Int32Type>::try_new(keys, values).map_err(StoreError::arrow)?;
    Ok(Arc::new(array))
}

/// The label columns each metric's rows use, from a segment's metadata;
/// `None` for a segment written before they were recorded (or unreadable
/// metadata): any column may then hold any metric's labels.
pub fn metric_labels(
    meta: &parquet::file::metadata::FileMetaData,
) -> Option<HashMap<String, BTreeSet<String>>> {
    let text = meta
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == METRIC_LABELS_KEY)?
        .value
        .as_deref()?;
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter's values, a three-decimal gauge's and a handful of another metric's.
    fn counter_gauge_and_a_few() -> (Vec<f64>, Vec<Range<usize>>) {
        let mut seed = 42u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        let mut values = Vec::new();
        let mut total = 1e9;
        for _ in 0..20_000 {
            total += (next() % 5000) as f64;
            values.push(total);
        }
        values.extend((0..20_000).map(|_| (next() % 300) as f64 / 1000.0));
        values.extend((0..10).map(|i| i as f64));
        (values, vec![0..20_000, 20_000..40_000, 40_000..40_010])
    }

    #[test]
    fn rows_sort_as_a_stable_sort_by_group_time_and_series_sorts_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Short-lived sessions (sorted after time), and long-lived series.
        let mut keys: Vec<SeriesKey> = (0..200)
            .map(|i| {
                let labels = vec![
                    ("server".to_string(), format!("s{}", i % 3)),
                    ("session".to_string(), format!("id{i}")),
                ];
                SeriesKey::new("calls", labels)
            })
            .collect();
        keys.extend(
            (0..5).map(|i| SeriesKey::new("up", vec![("instance".to_string(), format!("h{i}"))])),
        );
        for in_time_order in [true, false] {
            let (mut given, mut ts, mut vs) = (Vec::new(), Vec::new(), Vec::new());
            for row in 0..5_000u32 {
                let series = rng.random_range(0..keys.len() as u32);
                let at = if in_time_order {
                    i64::from(row / 4)
                } else {
                    rng.random_range(0..50)
                };
                given.push(series);
                ts.push(at);
                vs.push(f64::from(row));
            }
            let mut rows_of = vec![0usize; keys.len()];
            for &g in &given {
                rows_of[g as usize] += 1;
            }
            let order = || SegmentOrder::of(keys.iter().zip(rows_of.iter().copied()).collect());
            let reference = order();
            assert!(!reference.trailing.is_empty());
            let ranks: Vec<u32> = given
                .iter()
                .map(|&g| reference.rank_of_given[g as usize])
                .collect();
            let mut want: Vec<usize> = (0..given.len()).collect();
            want.sort_by_key(|&r| (reference.group[ranks[r] as usize], ts[r], ranks[r]));
            let got = order().sorted_rows(&given, &ts, &vs);
            let want_values: Vec<f64> = want.iter().map(|&r| vs[r]).collect();
            assert_eq!(got.values, want_values, "in time order: {in_time_order}");
            let want_series: Vec<u32> = want.iter().map(|&r| ranks[r]).collect();
            assert_eq!(got.row_series, want_series);
        }
    }

    #[test]
    fn each_metric_gets_the_encoding_that_stores_it_smallest() {
        let (values, runs) = counter_gauge_and_a_few();
        let groups = plan_row_groups(&Float64Array::from(values), &runs).unwrap();
        // The counter moves slowly (BYTE_STREAM_SPLIT); the gauge has few
        // distinct values (dictionary); the ten rows join a neighbour
        // rather than pay for a row group of their own.
        assert_eq!(
            groups,
            vec![
                (0..20_000, Encoding::BYTE_STREAM_SPLIT),
                (20_000..40_010, Encoding::RLE_DICTIONARY)
            ]
        );
    }

    #[test]
    fn row_groups_hold_at_most_their_row_limit() {
        let values: Vec<f64> = (0..ROW_GROUP_ROWS * 2 + 5).map(|i| i as f64).collect();
        let whole: Range<usize> = 0..values.len();
        let groups = plan_row_groups(
            &Float64Array::from(values.clone()),
            std::slice::from_ref(&whole),
        )
        .unwrap();
        assert!(groups.iter().all(|(r, _)| r.len() <= ROW_GROUP_ROWS));
        let covered: Vec<usize> = groups.iter().flat_map(|(r, _)| r.clone()).collect();
        assert_eq!(covered, (0..values.len()).collect::<Vec<_>>());
    }

    #[test]
    fn mixed_encodings_read_back_bit_for_bit() {
        let (mut values, runs) = counter_gauge_and_a_few();
        values[5] = f64::from_bits(crate::model::STALE_NAN_BITS);
        values[25_000] = -0.0;
        let groups = plan_row_groups(&Float64Array::from(values.clone()), &runs).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            VALUE_COLUMN,
            DataType::Float64,
            false,
        )]));
        let column = Arc::new(Float64Array::from(values.clone())) as ArrayRef;
        let batch = RecordBatch::try_new(schema, vec![column]).unwrap();
        let kv = KeyValue::new("k".into(), "v".to_string());
        let bytes = write_row_groups(Vec::new(), &batch, &groups, None, &[], kv).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            bytes::Bytes::from(bytes),
            8192,
        )
        .unwrap();
        let mut read = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            read.extend(
                batch
                    .column(0)
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .values()
                    .iter()
                    .map(|v| v.to_bits()),
            );
        }
        let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(read, want);
    }
}
