//! Parquet files as long tables: a `metric` column, a `timestamp` column, a
//! `value` column, and every other column a label. That is both what
//! `mcpops export --format parquet` writes and what the store's own segments
//! hold, so exports and segments copied out of a store ingest as they are
//! (as do such tables written by DuckDB, polars or pandas).
//!
//! - `metric` and the labels: strings (`Utf8`, `LargeUtf8`, `Utf8View`, or a
//!   dictionary of them); a null or empty label cell means no label.
//! - `timestamp`: a Parquet timestamp of any unit (sub-millisecond parts are
//!   floored to the millisecond, as the store keeps it), or integers of epoch
//!   seconds or milliseconds, told apart by size as the text formats do.
//! - `value`: floats or integers (NaN and ±Inf are kept).
//!
//! Parquet is not a line format: a bad row is reported as `FILE:ROW:COL`,
//! with the 1-based row of the file and column of the schema, and
//! `--skip-invalid` skips rows as it skips lines. A file that is not Parquet,
//! or a column of a type that cannot be a metric, label, time or value, stops
//! the run whatever `--skip-invalid` says. The file is read row group by row
//! group; standard input and `.gz` files are read into memory first, since
//! Parquet's footer is at the end.

use super::{
    EPOCH_MS_THRESHOLD, Fail, IngestError, RawMap, Run, bad, check_label_name, show_str, stored_ts,
};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use std::io::BufRead;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 8192;

/// Reads a Parquet file from a stream (standard input, a `.gz`): into memory,
/// then as [`ingest_chunks`] does.
pub(crate) fn ingest_stream(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(|e| super::io_error(&run.name, e))?;
    ingest_chunks(bytes::Bytes::from(buf), run)
}

/// How the `timestamp` column is written.
#[derive(Clone, Copy)]
enum TimeColumn {
    /// A Parquet timestamp: cast to milliseconds.
    Timestamp,
    /// Integers: epoch seconds or milliseconds by size.
    Epoch,
}

/// The columns of the file, by their index in its schema.
struct Layout {
    metric: usize,
    ts: usize,
    time: TimeColumn,
    value: usize,
    /// (column index, label name)
    labels: Vec<(usize, String)>,
}

/// Reads a Parquet file (a `File` or bytes in memory) into the run.
pub(crate) fn ingest_chunks<R: ChunkReader + 'static>(
    input: R,
    run: &mut Run,
) -> Result<(), IngestError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| run.fatal(1, 1, format!("not a readable Parquet file: {e}")))?;
    let layout = layout(builder.schema(), run)?;
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| run.fatal(1, 1, format!("not a readable Parquet file: {e}")))?;
    let mut cache: RawMap<u32> = RawMap::default();
    let mut key = Vec::new();
    let mut row: u64 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| {
            run.fatal(
                row + 1,
                1,
                format!("Parquet data after row {row} could not be read: {e}"),
            )
        })?;
        let cols = Columns::of(&batch, &layout).map_err(|m| run.fatal(row + 1, 1, m))?;
        for i in 0..batch.num_rows() {
            row += 1;
            run.line = row;
            let outcome = cols.row(i, &layout, &mut cache, &mut key, run);
            run.settle(row, outcome)?;
        }
    }
    run.report.lines += row;
    Ok(())
}

/// Finds the columns; a schema that is not a long table is an error naming
/// what it has.
fn layout(schema: &arrow::datatypes::Schema, run: &Run) -> Result<Layout, IngestError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
    let (Some(metric), Some(ts), Some(value)) = (find("metric"), find("timestamp"), find("value"))
    else {
        return Err(run.fatal(
            1,
            1,
            format!(
                "a Parquet file to ingest has `metric`, `timestamp` and `value` columns (and one \
                 column per label), as `mcpops export` and the store's segments write them; this \
                 one has {}",
                names
                    .iter()
                    .map(|n| format!("`{}`", show_str(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let type_of = |i: usize| schema.field(i).data_type();
    let wrong = |i: usize, want: &str| {
        run.fatal(
            1,
            i + 1,
            format!("column `{}` is {}: {want}", show_str(names[i]), type_of(i)),
        )
    };
    if !is_text(type_of(metric)) {
        return Err(wrong(metric, "the metric name is a string"));
    }
    let time = match type_of(ts) {
        DataType::Timestamp(..) => TimeColumn::Timestamp,
        t if t.is_integer() => TimeColumn::Epoch,
        _ => {
            return Err(wrong(
                ts,
                "the time is a Parquet timestamp, or integer epoch seconds or milliseconds",
            ));
        }
    };
    if !(type_of(value).is_floating() || type_of(value).is_integer()) {
        return Err(wrong(value, "the value is a number"));
    }
    let mut labels = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i == metric || i == ts || i == value {
            continue;
        }
        if !is_text(type_of(i)) {
            return Err(wrong(
                i,
                "every column but timestamp and value is a label, a string",
            ));
        }
        check_label_name(name).map_err(|m| run.fatal(1, i + 1, m))?;
        if let Some((_, other)) = labels
            .iter()
            .find(|(_, other): &&(usize, String)| other.eq_ignore_ascii_case(name))
        {
            return Err(run.fatal(1, i + 1, super::case_clash(name, other)));
        }
        labels.push((i, name.to_string()));
    }
    Ok(Layout {
        metric,
        ts,
        time,
        value,
        labels,
    })
}

/// Whether a column holds strings (or a dictionary of them).
fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// One batch's columns, cast to one type each.
struct Columns {
    metric: StringArray,
    ts: ArrayRef,
    value: ArrayRef,
    labels: Vec<StringArray>,
}

impl Columns {
    fn of(batch: &RecordBatch, layout: &Layout) -> Result<Columns, String> {
        let cast_to = |i: usize, t: &DataType| {
            cast(batch.column(i), t).map_err(|e| {
                format!(
                    "column `{}` could not be read as {t}: {e}",
                    show_str(batch.schema().field(i).name())
                )
            })
        };
        let text = |i: usize| cast_to(i, &DataType::Utf8).map(|a| a.as_string::<i32>().clone());
        let ts = match layout.time {
            TimeColumn::Timestamp => {
                // Floor, not truncate toward zero, for times before 1970:
                // cast the raw integers and divide.
                let unit = match batch.column(layout.ts).data_type() {
                    DataType::Timestamp(unit, _) => *unit,
                    _ => TimeUnit::Millisecond,
                };
                let raw = cast_to(layout.ts, &DataType::Int64)?;
                let ms: arrow::array::TimestampMillisecondArray = raw
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|t| {
                        t.and_then(|t| match unit {
                            TimeUnit::Second => t.checked_mul(1000),
                            TimeUnit::Millisecond => Some(t),
                            TimeUnit::Microsecond => Some(t.div_euclid(1000)),
                            TimeUnit::Nanosecond => Some(t.div_euclid(1_000_000)),
                        })
                    })
                    .collect();
                std::sync::Arc::new(ms) as ArrayRef
            }
            TimeColumn::Epoch => cast_to(layout.ts, &DataType::Int64)?,
        };
        Ok(Columns {
            metric: text(layout.metric)?,
            ts,
            value: cast_to(layout.value, &DataType::Float64)?,
            labels: layout
                .labels
                .iter()
                .map(|(i, _)| text(*i))
                .collect::<Result<_, _>>()?,
        })
    }

    fn row(
        &self,
        i: usize,
        layout: &Layout,
        cache: &mut RawMap<u32>,
        key: &mut Vec<u8>,
        run: &mut Run,
    ) -> Result<(), Fail> {
        let ts_col = layout.ts + 1;
        if self.ts.is_null(i) {
            return bad(
                ts_col,
                "the timestamp is null (or beyond any year the store keeps)",
            );
        }
        let ms = match layout.time {
            TimeColumn::Timestamp => self.ts.as_primitive::<TimestampMillisecondType>().value(i),
            TimeColumn::Epoch => {
                let t = self.ts.as_primitive::<Int64Type>().value(i);
                if (t.unsigned_abs() as f64) >= EPOCH_MS_THRESHOLD {
                    t
                } else {
                    t.saturating_mul(1000)
                }
            }
        };
        let ms = stored_ts(ms, ms.to_string().as_bytes(), ts_col, "")?;
        if self.value.is_null(i) {
            return bad(layout.value + 1, "the value is null");
        }
        let v = self.value.as_primitive::<Float64Type>().value(i);
        if self.metric.is_null(i) || self.metric.value(i).is_empty() {
            return bad(layout.metric + 1, "the metric name is null or empty");
        }
        let metric = self.metric.value(i);
        key.clear();
        let mut add = |text: Option<&str>| match text {
            None => key.extend_from_slice(&u32::MAX.to_le_bytes()),
            Some(t) => {
                key.extend_from_slice(&(t.len() as u32).to_le_bytes());
                key.extend_from_slice(t.as_bytes());
            }
        };
        add(Some(metric));
        for col in &self.labels {
            add((!col.is_null(i)).then(|| col.value(i)));
        }
        let id = match cache.get(key.as_slice()) {
            Some(&id) => id,
            None => {
                let pairs = layout
                    .labels
                    .iter()
                    .zip(&self.labels)
                    .filter(|(_, col)| !col.is_null(i))
                    .map(|((_, name), col)| (name.clone(), col.value(i).to_string()))
                    .collect();
                let id = run.intern(metric.to_string(), pairs, layout.metric + 1)?;
                cache.insert(key.as_slice().into(), id);
                id
            }
        };
        run.push(id, ms, v)?;
        Ok(())
    }
}
