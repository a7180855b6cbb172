//! `mcpops query`: one expression, at an instant or over a range of steps,
//! printed as a table, CSV (one column per label, as `export` writes) or
//! JSON in Prometheus's API envelope (`{"status":"success","data":{...}}`
//! holding a vector or a scalar for an instant, a matrix for a range; on
//! failure `{"status":"error","errorType":...,"error":...}` with the exit
//! code unchanged). Errors in the expression exit 3 with their position;
//! metrics and labels the store does not hold, and functions that do not
//! suit a metric's type, are warned about on stderr (exit status unchanged).

use super::error::{CliError, io_failure};
use super::shared::{
    duration_arg, label_cells, label_columns, range_error, store_extent, time_arg, write_json,
};
use super::{Context, QueryArgs, TableCsvJson};
use mcpops::dsl::ast::Expr;
use mcpops::engine::plan::Plan;
use mcpops::engine::value::{Grid, Series, StepValue, Value, format_labels};
use mcpops::model::prom_float;
use mcpops::time::{format_duration_ms, format_ms};
use mcpops::watch::api::json::{self as prom, ErrorType, ResultKind};
use std::io::{self, Write};

/// When a query runs: an instant, or a range of steps.
enum QueryTime {
    At(i64),
    Range { from: i64, to: i64, step: i64 },
}

pub(super) fn run(ctx: &Context, args: QueryArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let json = args.format == TableCsvJson::Json && !args.explain;
    let result = evaluate(ctx, args, out);
    if json && let Err(e) = &result {
        // Scripts and client libraries read the error from stdout too, as
        // from Prometheus's API; the message still goes to stderr.
        let error_type = match e {
            CliError::OutputClosed => return result,
            CliError::Usage(_) | CliError::Input(_) | CliError::Rules(_) => ErrorType::BadData,
            CliError::Failure(_) | CliError::Damaged(_) => ErrorType::Internal,
            _ => ErrorType::Execution,
        };
        write_json(out, &prom::error(error_type, &e.to_string())).map_err(io_failure)?;
    }
    result
}

fn evaluate(ctx: &Context, args: QueryArgs, out: &mut dyn Write) -> Result<(), CliError> {
    // The expression first: its mistakes are reported before the store's.
    let expr = parse(&args.expr)?;
    if args.explain {
        return write_plan(&args.expr, &Plan::new([&expr]), &expr, out).map_err(io_failure);
    }
    let when = match (args.at, args.from, args.to) {
        (Some(at), _, _) => QueryTime::At(time_arg("--at", &at)?),
        (None, Some(from), Some(to)) => QueryTime::Range {
            from: time_arg("--from", &from)?,
            to: time_arg("--to", &to)?,
            step: duration_arg("--step", &args.step)?,
        },
        _ => QueryTime::At(store_extent(ctx.store()?)?.1),
    };
    warn_against_store(ctx, &args.expr, &expr)?;
    let (grid, kind) = match when {
        QueryTime::At(t) => (
            Grid::checked_range(t, t, 1)
                .map_err(|_| CliError::usage("--at: the time is outside the years 0000-9999"))?,
            ResultKind::Instant,
        ),
        QueryTime::Range { from, to, step } => (
            Grid::checked_range(from, to, step).map_err(|e| range_error(e, "--step"))?,
            ResultKind::Range,
        ),
    };
    let value = mcpops::engine::query::query(
        ctx.store()?.snapshot()?,
        &expr,
        grid,
        args.limit.max_samples,
    )?;
    write_value(&value, grid, kind, args.format, out).map_err(io_failure)
}

/// The expression, checked; its diagnostics as the error.
fn parse(text: &str) -> Result<Expr, CliError> {
    mcpops::dsl::parse_query(text).map_err(|diags| {
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        CliError::rules(text.join("\n"))
    })
}

/// The store's warnings about the expression (metrics and labels it does
/// not hold, functions that do not suit a metric's type) on stderr; they
/// do not change the exit status.
fn warn_against_store(ctx: &Context, text: &str, expr: &Expr) -> Result<(), CliError> {
    let mut wanted = std::collections::BTreeSet::new();
    expr.walk(&mut |e| {
        if let Expr::Selector(s) = e {
            wanted.insert(s.metric.name.clone());
        }
    });
    if wanted.is_empty() {
        return Ok(());
    }
    let names = super::check::store_names(ctx.store()?, &wanted)?;
    if names.is_empty() {
        return Ok(());
    }
    for d in mcpops::dsl::lint_store::lint_query(text, &names) {
        eprint!("mcpops: {d}");
    }
    Ok(())
}

/// `query --explain`: the plan of one expression.
fn write_plan(text: &str, plan: &Plan, expr: &Expr, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "plan of {text}")?;
    writeln!(out, "reads:")?;
    for (metric, labels) in plan.reads() {
        match labels {
            Some(keep) => writeln!(
                out,
                "  {metric}: labels {} (the scan drops the others)",
                keep.iter().cloned().collect::<Vec<_>>().join(", ")
            )?,
            None => writeln!(out, "  {metric}: every label")?,
        }
    }
    writeln!(
        out,
        "lookback: {} of history before the first step",
        format_duration_ms(plan.lookback_ms())
    )?;
    writeln!(out, "evaluation:")?;
    for step in plan.explain(expr) {
        let pad = "  ".repeat(step.depth + 1);
        writeln!(out, "{pad}{}", step.what)?;
        for note in &step.notes {
            writeln!(out, "{pad}  - {note}")?;
        }
    }
    Ok(())
}

fn series_name(s: &Series) -> String {
    format!(
        "{}{}",
        s.metric.as_deref().unwrap_or(""),
        format_labels(&s.labels)
    )
}

/// A CSV writer's error as the I/O error it is (a closed pipe matters).
pub(super) fn csv_io(e: csv::Error) -> io::Error {
    if !e.is_io_error() {
        return io::Error::other(e);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Writes a query's result.
fn write_value(
    value: &Value,
    grid: Grid,
    kind: ResultKind,
    format: TableCsvJson,
    out: &mut dyn Write,
) -> io::Result<()> {
    // A number over a range of steps is a series without labels, as
    // Prometheus answers a range query of a scalar.
    let spread;
    let value = match value {
        Value::Scalar(x) if kind == ResultKind::Range => {
            spread = Value::Vector(vec![Series::new(
                Vec::new(),
                0,
                vec![StepValue::some(*x); grid.n],
            )]);
            &spread
        }
        _ => value,
    };
    let rows: Vec<(String, &Series)> = match value {
        Value::Scalar(_) => Vec::new(),
        Value::Vector(v) => v.iter().map(|s| (series_name(s), s)).collect(),
    };
    let points = |s: &Series| prom::points(s, grid);
    match format {
        TableCsvJson::Json => {
            let data = prom::query_data(value, grid, kind);
            write_json(out, &prom::success(data, &[]))?;
        }
        TableCsvJson::Csv => {
            // `metric,<labels>,timestamp,value`, as `export` writes: one
            // column per label name of any series, empty where a series
            // lacks it.
            let labels = label_columns(rows.iter().map(|(_, s)| &s.labels));
            let mut w = csv::Writer::from_writer(out);
            let mut header = vec!["metric"];
            header.extend(&labels);
            header.extend(["timestamp", "value"]);
            w.write_record(&header).map_err(csv_io)?;
            if let Value::Scalar(x) = value {
                let mut record = vec![String::new(); labels.len() + 1];
                record.extend([format_ms(grid.end()), prom_float(*x)]);
                w.write_record(&record).map_err(csv_io)?;
            }
            for (_, s) in &rows {
                let mut record = vec![s.metric.clone().unwrap_or_default()];
                record.extend(
                    label_cells(&s.labels, &labels)
                        .into_iter()
                        .map(String::from),
                );
                for (t, x) in points(s) {
                    record.truncate(labels.len() + 1);
                    record.extend([format_ms(t), prom_float(x)]);
                    w.write_record(&record).map_err(csv_io)?;
                }
            }
            w.flush()?;
        }
        TableCsvJson::Table => {
            if let Value::Scalar(x) = value {
                writeln!(out, "{}", prom_float(*x))?;
                return Ok(());
            }
            if rows.is_empty() {
                writeln!(out, "(no series)")?;
                return Ok(());
            }
            let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
            if kind == ResultKind::Instant {
                writeln!(out, "{:<width$}  value", "series")?;
                for (name, s) in &rows {
                    if let Some(x) = s.at(0) {
                        writeln!(out, "{name:<width$}  {}", prom_float(x))?;
                    }
                }
            } else {
                writeln!(out, "{:<width$}  {:<20}  value", "series", "time")?;
                for (name, s) in &rows {
                    for (t, x) in points(s) {
                        writeln!(
                            out,
                            "{name:<width$}  {:<20}  {}",
                            format_ms(t),
                            prom_float(x)
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}
