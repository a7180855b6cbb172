//! The actions table: one schema for a backtest's dry run
//! (`actions.parquet` of `backtest --out`) and the live journal's audit, so
//! that whatever reads one reads the other. Each row is one decision
//! ([`ActionEvent`]) with its id and mode, and, for an action carried out,
//! how it ended (outcome, exit code, duration, detail); those columns are
//! null in a dry run. Labels are a `MAP<VARCHAR, VARCHAR>` column
//! (`labels['server']` in DuckDB).

use super::decide::{ActionEvent, EventKind};
use crate::dsl::ast::Mode;
use crate::engine::value::Labels;
use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use std::path::Path;
use std::sync::Arc;

/// One row of the actions table (and, as JSON, of the report's
/// `alerts.carried_out`: the event's fields, then these).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditRow {
    #[serde(flatten)]
    pub event: ActionEvent,
    /// [`ActionEvent::id`]: what `mcpops approve` takes and the journal keys by.
    pub id: String,
    /// How the action ended (`ok`, `failed`, `spawn`, `timeout`, ...), for
    /// an action carried out; `None` in a dry run.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_s: Option<f64>,
    /// Why, in words, with the bounded output kept.
    pub detail: Option<String>,
}

impl AuditRow {
    /// A decision of a dry run: nothing carried out.
    pub fn dry_run(event: &ActionEvent) -> AuditRow {
        AuditRow {
            id: event.id(),
            event: event.clone(),
            outcome: None,
            exit_code: None,
            duration_s: None,
            detail: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {message}")]
    Write { path: String, message: String },
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    /// A file that is not an actions table: a column missing or of another type.
    #[error("{path}: not an actions table: {message}")]
    Schema { path: String, message: String },
}

/// The columns, in order.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone();
    Arc::new(Schema::new(vec![
        Field::new("time", ts, false),
        Field::new("policy", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("trigger", DataType::Utf8, false),
        Field::new("labels", labels, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("approved_by", DataType::Utf8, true),
        Field::new("outcome", DataType::Utf8, true),
        Field::new("exit_code", DataType::Int32, true),
        Field::new("duration_s", DataType::Float64, true),
        Field::new("detail", DataType::Utf8, true),
    ]))
}

/// The rows as one record batch of [`schema`].
pub fn batch(rows: &[AuditRow]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let strs = |f: &dyn Fn(&AuditRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let opt_strs = |f: &dyn Fn(&AuditRow) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        for (k, v) in &r.event.labels {
            labels.keys().append_value(k);
            labels.values().append_value(v);
        }
        labels.append(true)?;
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from(rows.iter().map(|r| r.event.time).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        strs(&|r| r.event.policy.clone()),
        strs(&|r| r.event.kind.name().to_string()),
        strs(&|r| r.event.trigger.clone()),
        Arc::new(labels.finish()),
        strs(&|r| r.event.action.clone()),
        strs(&|r| r.id.clone()),
        strs(&|r| r.event.mode.name().to_string()),
        opt_strs(&|r| r.event.approved_by.clone()),
        opt_strs(&|r| r.outcome.clone()),
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.exit_code).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.duration_s).collect::<Vec<_>>(),
        )),
        opt_strs(&|r| r.detail.clone()),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// Writes the rows to `path` as Parquet, whole or not at all (a reader
/// never sees half a file).
pub fn write(rows: &[AuditRow], path: &Path) -> Result<(), AuditError> {
    let batch = batch(rows).map_err(|e| AuditError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_batch(&batch, path)
}

/// Writes `batch` to `path` as Parquet, whole or not at all: a reader never
/// sees half a file, and a symlink at `path` is replaced rather than
/// written through. The backtest writes its `alerts.parquet` with it too.
pub fn write_batch(batch: &RecordBatch, path: &Path) -> Result<(), AuditError> {
    let err = |e: &dyn std::fmt::Display| AuditError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = crate::fsutil::AtomicFile::create(path).map_err(|e| err(&e))?;
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| err(&e))?;
    w.write(batch).map_err(|e| err(&e))?;
    let file = w.into_inner().map_err(|e| err(&e))?;
    file.commit().map_err(|e| err(&e))
}

/// Reads an actions table that [`write`] wrote (a dry run's or the
/// journal's audit).
pub fn read(path: &Path) -> Result<Vec<AuditRow>, AuditError> {
    let p = path.display().to_string();
    let read_err = |e: &dyn std::fmt::Display| AuditError::Read {
        path: p.clone(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| read_err(&e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| read_err(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| read_err(&e))?;
        rows.extend(rows_of(&batch).map_err(|message| AuditError::Schema {
            path: p.clone(),
            message,
        })?);
    }
    Ok(rows)
}

/// The rows of one batch; the error names the column that does not fit.
fn rows_of(batch: &RecordBatch) -> Result<Vec<AuditRow>, String> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))
    };
    let strs = |name: &str| -> Result<&StringArray, String> {
        col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column `{name}` is not text"))
    };
    let time = col("time")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or("column `time` is not a timestamp in ms")?;
    let (policy, event, trigger, action) = (
        strs("policy")?,
        strs("event")?,
        strs("trigger")?,
        strs("action")?,
    );
    let (id, mode, approved_by, outcome, detail) = (
        strs("id")?,
        strs("mode")?,
        strs("approved_by")?,
        strs("outcome")?,
        strs("detail")?,
    );
    let labels = col("labels")?
        .as_map_opt()
        .ok_or("column `labels` is not a map")?;
    let exit_code = col("exit_code")?
        .as_primitive_opt::<Int32Type>()
        .ok_or("column `exit_code` is not a 32-bit integer")?;
    let duration_s = col("duration_s")?
        .as_primitive_opt::<Float64Type>()
        .ok_or("column `duration_s` is not a float")?;
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let kind = EventKind::from_name(event.value(i))
            .ok_or_else(|| format!("row {i}: unknown event {:?}", event.value(i)))?;
        let mode = match mode.value(i) {
            "auto" => Mode::Auto,
            "dry-run" => Mode::DryRun,
            other => return Err(format!("row {i}: unknown mode {other:?}")),
        };
        let entries = labels.value(i);
        let keys = entries
            .column(0)
            .as_string_opt::<i32>()
            .ok_or("the keys of `labels` are not text")?;
        let values = entries
            .column(1)
            .as_string_opt::<i32>()
            .ok_or("the values of `labels` are not text")?;
        let pairs: Labels = (0..keys.len())
            .map(|j| (keys.value(j).to_string(), values.value(j).to_string()))
            .collect();
        rows.push(AuditRow {
            event: ActionEvent {
                time: time.value(i),
                policy: policy.value(i).to_string(),
                kind,
                trigger: trigger.value(i).to_string(),
                labels: pairs,
                action: action.value(i).to_string(),
                // The episode index is the replay's own; the table does not keep it.
                episode: None,
                value: f64::NAN,
                mode,
                approved_by: opt(approved_by, i),
            },
            id: id.value(i).to_string(),
            outcome: opt(outcome, i),
            exit_code: exit_code.is_valid(i).then(|| exit_code.value(i)),
            duration_s: duration_s.is_valid(i).then(|| duration_s.value(i)),
            detail: opt(detail, i),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, labels: &[(&str, &str)]) -> ActionEvent {
        ActionEvent {
            time: 1_700_000_000_000,
            policy: "Restart".into(),
            kind,
            trigger: "Down".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            action: r#"exec "restart a""#.into(),
            episode: Some(3),
            value: 0.0,
            mode: Mode::DryRun,
            approved_by: None,
        }
    }

    #[test]
    fn a_dry_run_and_a_live_row_share_the_table_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actions.parquet");
        let dry = AuditRow::dry_run(&event(EventKind::Concurrency, &[("server", "a b;x")]));
        let mut ran = event(EventKind::Run, &[("server", "b"), ("zone", "eu")]);
        ran.approved_by = Some("alice".into());
        ran.mode = Mode::Auto;
        let live = AuditRow {
            outcome: Some("failed".into()),
            exit_code: Some(3),
            duration_s: Some(1.25),
            detail: Some("exit code 3".into()),
            ..AuditRow::dry_run(&ran)
        };
        write(&[dry.clone(), live.clone()], &path).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        for (got, want) in back.iter().zip([&dry, &live]) {
            // What the table does not keep: the replay's episode and value.
            let mut want = want.clone();
            want.event.episode = None;
            assert!(got.event.value.is_nan());
            want.event.value = got.event.value;
            assert_eq!(got.id, want.event.id());
            assert_eq!(format!("{got:?}"), format!("{want:?}"));
        }
        assert_eq!(back[0].event.kind.name(), "suppressed (concurrency)");
        assert_eq!(back[0].outcome, None, "a dry run has no outcome");
    }

    #[test]
    fn a_file_that_is_not_an_actions_table_is_refused_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("time", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["x"])) as ArrayRef],
        )
        .unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("other.parquet") && e.contains("`time`"), "{e}");
        let e = read(&dir.path().join("missing.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.parquet"), "{e}");
    }
}
