//! The store as polars sees it: scanned series laid out as a long table
//! (`metric`, one column per label, `timestamp` as Datetime[ms, UTC], `value`)
//! for analyst queries, and export of that table as CSV, JSON lines or Parquet.
//!
//! Every export format reads back through `mcpops ingest` to the same
//! samples: times as RFC 3339 in UTC with `Z` (to the millisecond where
//! there are any), values in the shortest text that parses back to the same
//! f64 (`NaN`, `+Inf`, `-Inf` spelt out: JSON has no number for them), and
//! an absent label as an empty CSV cell or a missing JSON field (the store
//! drops empty label values, so the two cannot be confused). CSV and JSON
//! lines are written here rather than by polars, whose writers spell the
//! zone `+0000` and turn NaN into `null`.

use super::{ScanRequest, SeriesData, Snapshot, StoreError};
use polars::prelude::*;
use std::collections::BTreeSet;
use std::io::Write;

/// Output formats of `mcpops export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
    Parquet,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "ndjson" | "json" => Ok(ExportFormat::JsonLines),
            "parquet" => Ok(ExportFormat::Parquet),
            _ => Err(format!(
                "unknown export format `{s}`: expected csv, jsonl or parquet"
            )),
        }
    }
}

fn polars_err(e: PolarsError) -> StoreError {
    match &e {
        // Writing the export failed (a full disk, a closed pipe): an I/O
        // error of the output, which the CLI treats as such.
        PolarsError::IO { error, .. } => StoreError::io(
            "export output",
            std::io::Error::new(error.kind(), e.to_string()),
        ),
        _ => StoreError::Frame(format!("polars: {e}")),
    }
}

/// Lays series out as one long DataFrame, rows in series then time order.
pub fn series_frame(series: &[SeriesData]) -> Result<DataFrame, StoreError> {
    let labels: Vec<&str> = series
        .iter()
        .flat_map(|s| s.key.labels.iter().map(|(k, _)| k.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows: usize = series.iter().map(|s| s.timestamps.len()).sum();
    let mut metric: Vec<&str> = Vec::with_capacity(rows);
    let mut label_cols: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(rows); labels.len()];
    let mut ts: Vec<i64> = Vec::with_capacity(rows);
    let mut values: Vec<f64> = Vec::with_capacity(rows);
    for s in series {
        let n = s.timestamps.len();
        metric.extend(std::iter::repeat_n(s.key.metric.as_str(), n));
        for (col, name) in label_cols.iter_mut().zip(&labels) {
            col.extend(std::iter::repeat_n(s.key.label(name), n));
        }
        ts.extend_from_slice(&s.timestamps);
        values.extend_from_slice(&s.values);
    }
    let mut columns = vec![Column::new("metric".into(), metric)];
    for (name, col) in labels.iter().zip(label_cols) {
        columns.push(Column::new((*name).into(), col));
    }
    let ts = Column::new("timestamp".into(), ts)
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .map_err(polars_err)?;
    columns.push(ts);
    columns.push(Column::new("value".into(), values));
    DataFrame::new(rows, columns).map_err(polars_err)
}

impl Snapshot {
    /// The matching samples as a polars LazyFrame. Pruning happens here,
    /// before polars sees anything: polars gets only the rows that survive.
    pub fn lazy_frame(&self, req: &ScanRequest) -> Result<LazyFrame, StoreError> {
        Ok(series_frame(&self.scan(req)?)?.lazy())
    }

    /// Writes the matching samples to `out`; returns the number of rows.
    pub fn export(
        &self,
        req: &ScanRequest,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<usize, StoreError> {
        let series = self.scan(req)?;
        match format {
            ExportFormat::Csv => write_csv(&series, out),
            ExportFormat::JsonLines => write_jsonl(&series, out),
            ExportFormat::Parquet => {
                let mut df = series_frame(&series)?;
                ParquetWriter::new(out)
                    .with_compression(ParquetCompression::Zstd(None))
                    .finish(&mut df)
                    .map_err(polars_err)?;
                Ok(df.height())
            }
        }
    }
}

/// The label names of any of `series`, sorted: the export's label columns.
fn label_names(series: &[SeriesData]) -> Vec<&str> {
    series
        .iter()
        .flat_map(|s| s.key.labels.iter().map(|(k, _)| k.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A value as text that parses back to the same f64: Rust's `Debug` is the
/// shortest round-tripping form (`0.1`, `1e300`, `-0.0`); the non-finite
/// ones as Prometheus spells them.
pub fn value_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{x:?}")
    }
}

fn export_io(e: std::io::Error) -> StoreError {
    StoreError::io("export output", e)
}

fn csv_err(e: ::csv::Error) -> StoreError {
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => export_io(io),
        other => StoreError::Frame(format!("csv: {other:?}")),
    }
}

/// `metric,<labels>,timestamp,value`, one row per sample.
fn write_csv(series: &[SeriesData], out: &mut dyn Write) -> Result<usize, StoreError> {
    let labels = label_names(series);
    let mut w = ::csv::Writer::from_writer(out);
    let mut header = vec!["metric"];
    header.extend(&labels);
    header.extend(["timestamp", "value"]);
    w.write_record(&header).map_err(csv_err)?;
    let mut rows = 0;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    for s in series {
        for (&t, &v) in s.timestamps.iter().zip(&s.values) {
            record.clear();
            record.push(s.key.metric.clone());
            record.extend(
                labels
                    .iter()
                    .map(|l| s.key.label(l).unwrap_or("").to_string()),
            );
            record.push(crate::time::format_ms(t));
            record.push(value_text(v));
            w.write_record(&record).map_err(csv_err)?;
            rows += 1;
        }
    }
    w.flush().map_err(export_io)?;
    Ok(rows)
}

/// One object per sample: `metric`, the series' labels (absent ones left
/// out), `timestamp`, `value` (a number, or `"NaN"`, `"+Inf"`, `"-Inf"`).
fn write_jsonl(series: &[SeriesData], out: &mut dyn Write) -> Result<usize, StoreError> {
    let mut rows = 0;
    let mut line = Vec::with_capacity(256);
    for s in series {
        // The series' part of each line is the same: written once.
        let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let mut head = format!("{{\"metric\":{}", quote(&s.key.metric));
        for (k, v) in &s.key.labels {
            head.push_str(&format!(",{}:{}", quote(k), quote(v)));
        }
        for (&t, &v) in s.timestamps.iter().zip(&s.values) {
            line.clear();
            line.extend_from_slice(head.as_bytes());
            line.extend_from_slice(b",\"timestamp\":\"");
            line.extend_from_slice(crate::time::format_ms(t).as_bytes());
            line.extend_from_slice(b"\",\"value\":");
            if v.is_finite() {
                // serde_json writes the shortest text that reads back the same.
                serde_json::to_writer(&mut line, &v)
                    .map_err(|e| StoreError::Frame(e.to_string()))?;
            } else {
                line.push(b'"');
                line.extend_from_slice(value_text(v).as_bytes());
                line.push(b'"');
            }
            line.extend_from_slice(b"}\n");
            out.write_all(&line).map_err(export_io)?;
            rows += 1;
        }
    }
    out.flush().map_err(export_io)?;
    Ok(rows)
}
