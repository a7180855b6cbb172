//! One segment: an immutable Parquet file of one UTC day's samples, sorted by
//! series (metric, then label columns in name order, nulls first) and then
//! time, except that labels naming short-lived series (MCP session ids) sort
//! after time ([`SegmentOrder`]). Timestamps are DELTA_BINARY_PACKED; values
//! BYTE_STREAM_SPLIT or dictionary, whichever a trial encoding of a sample of
//! the column makes smaller; zstd throughout, except for label columns in
//! long runs (they encode to a few bytes per run, which zstd cannot shrink);
//! page-level statistics so the page index is written.
//! The file's key-value metadata names the label columns each metric's rows
//! use ([`METRIC_LABELS_KEY`]), so that a scan of one metric can leave the
//! others' label columns undecoded.

use super::StoreError;
use crate::model::SeriesKey;
use crate::names::{
    MCP_PROTOCOL_VERSION_LABEL, PROTOCOL_NAME_LABEL, PROTOCOL_VERSION_LABEL, TRANSPORT_LABEL,
};
use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::Path;
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
        let mut order: Vec<u32> = (0..row_series.len() as u32).collect();
        order.sort_by_key(|&r| {
            let s = row_series[r as usize];
            (self.group[s as usize], ts[r as usize], s)
        });
        SortedRows {
            row_series: order.iter().map(|&r| row_series[r as usize]).collect(),
            timestamps: order.iter().map(|&r| ts[r as usize]).collect(),
            values: order.iter().map(|&r| vs[r as usize]).collect(),
            series: self.series,
            trailing: self.trailing,
        }
    }
}

/// What writing a segment found out, for the manifest.
pub struct WrittenSegment {
    pub bytes: u64,
    pub metrics: Vec<String>,
    pub labels: Vec<String>,
}

/// Writes rows as a Parquet segment at `path` and syncs it to disk.
/// Takes the rows by value: their columns become the Arrow arrays as they are.
pub fn write_segment(path: &Path, rows: SortedRows) -> Result<WrittenSegment, StoreError> {
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
    let mut columns: Vec<ArrayRef> = vec![dictionary_column(&rows, |s| Some(s.metric.as_str()))?];
    for name in &label_names {
        fields.push(Field::new(name, dict_type.clone(), true));
        columns.push(dictionary_column(&rows, |s| s.label(name))?);
    }
    fields.push(Field::new(
        TIMESTAMP_COLUMN,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    ));
    columns.push(Arc::new(
        TimestampMillisecondArray::from(rows.timestamps).with_timezone("UTC"),
    ));
    fields.push(Field::new(VALUE_COLUMN, DataType::Float64, false));
    let values = Float64Array::from(rows.values);
    let value_encoding = choose_value_encoding(&values)?;
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
    let props = writer_properties(value_encoding, Some(sorting), &in_long_runs)?;

    let file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| StoreError::parquet(path, e))?;
    let metric_labels =
        serde_json::to_string(&metric_labels).map_err(|e| StoreError::parquet(path, e))?;
    writer.append_key_value_metadata(KeyValue::new(METRIC_LABELS_KEY.into(), metric_labels));
    writer
        .write(&batch)
        .map_err(|e| StoreError::parquet(path, e))?;
    let mut file = writer
        .into_inner()
        .map_err(|e| StoreError::parquet(path, e))?;
    file.flush().map_err(|e| StoreError::io(path, e))?;
    file.sync_all().map_err(|e| StoreError::io(path, e))?;
    let bytes = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    Ok(WrittenSegment {
        bytes,
        metrics,
        labels: label_names,
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
) -> Result<WriterProperties, StoreError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| StoreError::parquet("zstd", e))?;
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

/// Encodes a sample of the values both ways and keeps the smaller: dictionary
/// wins on integer-like and few-decimal gauges, BYTE_STREAM_SPLIT on noisy floats.
fn choose_value_encoding(values: &Float64Array) -> Result<Encoding, StoreError> {
    let n = values.len();
    if n == 0 {
        return Ok(Encoding::BYTE_STREAM_SPLIT);
    }
    // Take a few evenly spread runs rather than just the head, which is one metric.
    let runs = 8.min(n);
    let run = (TRIAL_VALUES / runs).max(1);
    let mut sample = Vec::with_capacity(TRIAL_VALUES);
    for r in 0..runs {
        let start = r * n / runs;
        let end = (start + run).min(n);
        sample.extend_from_slice(&values.values()[start..end]);
    }
    let sample = Arc::new(Float64Array::from(sample)) as ArrayRef;
    let schema = Arc::new(Schema::new(vec![Field::new(
        VALUE_COLUMN,
        DataType::Float64,
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![sample]).map_err(StoreError::arrow)?;
    let size = |encoding| -> Result<usize, StoreError> {
        let props = writer_properties(encoding, None, &[])?;
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .map_err(|e| StoreError::parquet("trial encoding", e))?;
        writer
            .write(&batch)
            .map_err(|e| StoreError::parquet("trial encoding", e))?;
        Ok(writer
            .into_inner()
            .map_err(|e| StoreError::parquet("trial encoding", e))?
            .len())
    };
    let split = size(Encoding::BYTE_STREAM_SPLIT)?;
    let dict = size(Encoding::RLE_DICTIONARY)?;
    Ok(if dict < split {
        Encoding::RLE_DICTIONARY
    } else {
        Encoding::BYTE_STREAM_SPLIT
    })
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
    let keys: Int32Array = rows
        .row_series
        .iter()
        .map(|&s| key_of_series[s as usize])
        .collect();
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
