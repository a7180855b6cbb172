//! The store as polars sees it: scanned series laid out as a long table
//! (`metric`, one column per label, `timestamp` as Datetime[ms, UTC], `value`)
//! for analyst queries, and export of that table as CSV, JSON lines or Parquet.

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
        let mut df = series_frame(&self.scan(req)?)?;
        let rows = df.height();
        match format {
            ExportFormat::Csv => CsvWriter::new(out).finish(&mut df),
            ExportFormat::JsonLines => JsonWriter::new(out)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut df),
            ExportFormat::Parquet => ParquetWriter::new(out)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)
                .map(|_| ()),
        }
        .map_err(polars_err)?;
        Ok(rows)
    }
}
