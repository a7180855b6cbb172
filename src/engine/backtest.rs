//! `mcpops backtest`: replays rule files over stored history and reports the
//! alert timeline (alert, labels, start, end, duration, peak, flaps) and the
//! dry run of remediation and maintenance actions (the binary prints them as
//! a table, CSV or JSON), optionally as Parquet files. `record` rules can be
//! written back. In the Parquet files an alert's or action's labels are a
//! `MAP<VARCHAR, VARCHAR>` column (`labels['server']` in DuckDB), not text
//! to parse.

use super::EngineError;
use super::plan::Plan;
use super::replay::{Replay, as_samples, replay};
use super::source::StoreSource;
use super::value::{Grid, Labels, format_labels};
use crate::dsl::ast::RuleFile;
use crate::model::SampleSink;
use crate::remediate::audit::{AuditError, AuditRow, write_batch};
use crate::remediate::decide::Approvals;
use crate::store::{Store, StoreError};
use crate::time::format_ms;
use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct BacktestOptions {
    pub from_ms: i64,
    pub to_ms: i64,
    /// The step; `None` takes the first file's `evaluate every` (else 1m).
    pub step_ms: Option<i64>,
    /// Write the output of `record` rules back to the store.
    pub record: bool,
    /// Start at the first whole step (of the epoch) at or after `from_ms`,
    /// so that the steps fall on round times: for a start that no one gave,
    /// the store's first sample or a report's `--since` back from its last
    /// (00:00:00.296 would put every step at .296).
    pub align_start: bool,
    /// The most samples one rule's evaluation may hold (see
    /// [`super::budget`]).
    pub max_samples: u64,
}

/// A backtest's result.
#[derive(Clone, Debug)]
pub struct Backtest {
    pub grid: Grid,
    pub replay: Replay,
    /// Samples read from the store (each metric once, lookback included).
    pub samples_read: u64,
    /// Samples written back by `--record`.
    pub samples_recorded: u64,
    /// The alerts that fired no episode because a selector of theirs
    /// matched no series in the period: a misspelt metric or label, or
    /// data that is missing, which "0 episodes" alone does not tell apart
    /// from a quiet period.
    pub unmatched: Vec<Unmatched>,
}

/// An alert with no episode, and the first of its selectors that matched
/// no series in the period (lookback included).
#[derive(Clone, Debug, Serialize)]
pub struct Unmatched {
    pub alert: String,
    /// The selector as written, without its range: `x{a="b"}`.
    pub selector: String,
}

impl Unmatched {
    /// The line the backtest shows for it.
    pub fn message(&self) -> String {
        format!("0 episodes; selector `{}` matched no series", self.selector)
    }
}

/// One row of the alert timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineRow {
    pub alert: String,
    pub severity: String,
    pub labels: String,
    pub start: String,
    pub end: Option<String>,
    pub duration_s: f64,
    pub peak: f64,
    pub flaps: u32,
    pub summary: String,
    /// The labels as pairs (`labels` is their text): the Parquet MAP.
    #[serde(skip)]
    pub label_pairs: Labels,
    #[serde(skip)]
    pub start_ms: i64,
    #[serde(skip)]
    pub end_ms: Option<i64>,
}

impl Backtest {
    /// The episodes that fired, in order of firing.
    pub fn timeline(&self) -> Vec<TimelineRow> {
        let end = self.grid.end();
        let mut rows: Vec<TimelineRow> = self
            .replay
            .episodes
            .iter()
            .filter_map(|e| {
                let start = e.fired_at?;
                Some(TimelineRow {
                    alert: e.alert.clone(),
                    severity: e.severity.to_string(),
                    labels: format_labels(&e.labels),
                    start: format_ms(start),
                    end: e.ended_at.map(format_ms),
                    duration_s: (e.ended_at.unwrap_or(end) - start) as f64 / 1000.0,
                    peak: e.peak,
                    flaps: e.flaps,
                    summary: e.summary.clone(),
                    label_pairs: e.labels.clone(),
                    start_ms: start,
                    end_ms: e.ended_at,
                })
            })
            .collect();
        rows.sort_by_key(|r| r.start_ms);
        rows
    }
}

/// Replays `files` over the store between the options' bounds.
pub fn backtest(
    store: &Store,
    files: &[RuleFile],
    opts: &BacktestOptions,
) -> Result<Backtest, EngineError> {
    let step = opts
        .step_ms
        .or_else(|| files.first().map(RuleFile::step_ms))
        .unwrap_or(crate::dsl::DEFAULT_STEP_MS);
    let into_step = opts.from_ms.rem_euclid(step.max(1));
    let from = if opts.align_start && into_step > 0 {
        opts.from_ms
            .checked_add(step - into_step)
            .unwrap_or(opts.from_ms)
    } else {
        opts.from_ms
    };
    // Aligning the start may pass the end (one sample, off the step): no steps.
    let grid = Grid::checked_range(from, opts.to_ms.max(from), step)?;
    let grid = Grid {
        n: if opts.to_ms < from { 0 } else { grid.n },
        ..grid
    };
    let plan = Plan::new(&super::replay::rule_expressions(files));
    let source = StoreSource::new(
        store.snapshot()?,
        from.saturating_sub(plan.lookback_ms()),
        opts.to_ms,
    )
    .with_plan(&plan);
    source.prefetch()?;
    let approvals = store_approvals(store)?;
    let replay = replay(files, &source, grid, opts.max_samples, &approvals)?;
    let unmatched = unmatched(files, &replay, &source)?;
    let samples_read = source
        .samples_read
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut samples_recorded = 0;
    if opts.record && !replay.records.is_empty() {
        let mut writer = store.writer()?;
        for (name, series) in &replay.records {
            for s in as_samples(name, series, grid) {
                let id = writer.intern(s.key.clone());
                for (&t, &v) in s.timestamps.iter().zip(&s.values) {
                    writer
                        .push(id, t, v)
                        .map_err(|e| EngineError::Store(StoreError::Invalid(e.0)))?;
                    samples_recorded += 1;
                }
            }
        }
        writer.commit()?;
    }
    Ok(Backtest {
        grid,
        replay,
        samples_read,
        samples_recorded,
        unmatched,
    })
}

/// The approvals given with `mcpops approve` in the store's journal, so
/// that a backtest decides approved actions as `watch` did. A store on
/// object storage has no journal (`watch` keeps it beside a local store).
fn store_approvals(store: &Store) -> Result<Approvals, EngineError> {
    let log = match store.local_root() {
        Some(root) => crate::remediate::journal::read(root)
            .map_err(|e| EngineError::Journal(e.to_string()))?,
        None => crate::remediate::journal::Log::default(),
    };
    Ok(log.approvals)
}

/// The alerts of `files` that fired nothing, each with its first selector
/// that matched no series of the source. Selectors of `record` rules read
/// the replay's own output, not the store: they are not asked about.
fn unmatched(
    files: &[RuleFile],
    replay: &Replay,
    source: &StoreSource,
) -> Result<Vec<Unmatched>, EngineError> {
    use super::source::Source;
    use crate::dsl::ast::Expr;
    let fired: std::collections::HashSet<&str> = replay
        .episodes
        .iter()
        .filter(|e| e.fired_at.is_some())
        .map(|e| e.alert.as_str())
        .collect();
    let records: std::collections::HashSet<&str> = files
        .iter()
        .flat_map(|f| f.records().map(|r| r.name.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for f in files {
        for a in f.alerts() {
            if fired.contains(a.name.name.as_str()) {
                continue;
            }
            let mut selectors = Vec::new();
            a.when.walk(&mut |e| {
                if let Expr::Selector(s) = e
                    && !records.contains(s.metric.name.as_str())
                {
                    selectors.push(s);
                }
            });
            for s in selectors {
                // A matcher that does not compile is the checker's error;
                // a checked rule has none.
                let Ok(matchers) = s.compile_matchers() else {
                    continue;
                };
                let found = source.select(&s.metric.name, &matchers, i64::MIN, i64::MAX)?;
                if found.iter().all(|d| d.timestamps.is_empty()) {
                    let bare = Expr::Selector(crate::dsl::ast::Selector {
                        range: None,
                        offset: None,
                        ..s.clone()
                    });
                    out.push(Unmatched {
                        alert: a.name.name.clone(),
                        selector: crate::dsl::format::render(&bare),
                    });
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn ts_array(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
}

fn ts_field(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        nullable,
    )
}

/// Label sets as a MAP column (keys sorted, as the labels are).
fn labels_map<'a>(sets: impl Iterator<Item = &'a Labels>) -> Result<ArrayRef, EngineError> {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for labels in sets {
        for (k, v) in labels {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true)
            .map_err(|e| EngineError::Internal(e.into()))?;
    }
    Ok(Arc::new(b.finish()))
}

/// The field of a [`labels_map`] column.
fn labels_field(column: &ArrayRef) -> Field {
    Field::new("labels", column.data_type().clone(), false)
}

/// A file of `--out` that could not be written.
fn output_error(e: AuditError) -> EngineError {
    match e {
        AuditError::Write { path, message }
        | AuditError::Read { path, message }
        | AuditError::Schema { path, message } => EngineError::Output { path, message },
    }
}

/// Writes `alerts.parquet` and `actions.parquet` into `dir`.
pub fn write_parquet(bt: &Backtest, dir: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir)?;
    let timeline = bt.timeline();
    let strings = |f: &dyn Fn(&TimelineRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            timeline.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let labels = labels_map(timeline.iter().map(|r| &r.label_pairs))?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("alert", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        labels_field(&labels),
        ts_field("start", false),
        ts_field("end", true),
        Field::new("duration_s", DataType::Float64, false),
        Field::new("peak", DataType::Float64, false),
        Field::new("flaps", DataType::UInt32, false),
        Field::new("summary", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| r.alert.clone()),
        strings(&|r| r.severity.clone()),
        labels,
        ts_array(timeline.iter().map(|r| Some(r.start_ms)).collect()),
        ts_array(timeline.iter().map(|r| r.end_ms).collect()),
        Arc::new(Float64Array::from(
            timeline.iter().map(|r| r.duration_s).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            timeline.iter().map(|r| r.peak).collect::<Vec<_>>(),
        )),
        Arc::new(UInt32Array::from(
            timeline.iter().map(|r| r.flaps).collect::<Vec<_>>(),
        )),
        strings(&|r| r.summary.clone()),
    ];
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| EngineError::Internal(e.into()))?;
    write_batch(&batch, &dir.join("alerts.parquet")).map_err(output_error)?;

    // The dry run's actions in the table the live journal's audit uses too.
    let rows: Vec<AuditRow> = bt.replay.actions.iter().map(AuditRow::dry_run).collect();
    crate::remediate::audit::write(&rows, &dir.join("actions.parquet")).map_err(output_error)
}
