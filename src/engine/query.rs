//! `mcpops query`: one expression, at an instant or over a range of steps,
//! printed as a table, CSV or JSON (Prometheus's API shapes: a vector or a
//! scalar for an instant, a matrix for a range).

use super::EngineError;
use super::eval::Evaluator;
use super::source::StoreSource;
use super::value::{Grid, Series, StepValue, Value, format_labels};
use crate::dsl::ast::Expr;
use crate::store::Snapshot;
use crate::time::format_ms;
use std::io::Write;

/// Output formats shared by query and backtest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            _ => Err(format!("unknown format `{s}`: expected table, csv or json")),
        }
    }
}

/// The longest stretch of history before a step that `expr` reads.
pub fn expr_lookback_ms(expr: &Expr) -> i64 {
    let mut longest = super::eval::LOOKBACK_MS;
    expr.walk(&mut |x| {
        if let Expr::Selector(s) = x {
            let r = s.range.as_ref().map_or(super::eval::LOOKBACK_MS, |d| d.ms);
            let o = s.offset.as_ref().map_or(0, |d| d.ms);
            longest = longest.max(r.saturating_add(o));
        }
    });
    longest
}

/// Evaluates `expr` over `grid` against a store snapshot, reading only the
/// days and row groups the grid and the expression's windows need.
pub fn query(snapshot: Snapshot, expr: &Expr, grid: Grid) -> Result<Value, EngineError> {
    let source = StoreSource::new(
        snapshot,
        grid.start.saturating_sub(expr_lookback_ms(expr)),
        grid.end(),
    )
    .for_expressions([expr]);
    source.prefetch()?;
    Evaluator::new(&source, grid).sharing([expr]).eval(expr)
}

fn series_name(s: &Series) -> String {
    format!(
        "{}{}",
        s.metric.as_deref().unwrap_or(""),
        format_labels(&s.labels)
    )
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        x.to_string()
    }
}

/// Writes a query's result.
pub fn write_value(
    value: &Value,
    grid: Grid,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), EngineError> {
    // A number over a range of steps is a series without labels, as
    // Prometheus answers a range query of a scalar.
    let spread;
    let value = match value {
        Value::Scalar(x) if grid.n > 1 => {
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
    let points = |s: &Series| -> Vec<(i64, f64)> {
        s.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.get().map(|v| (grid.time(s.start + i), v)))
            .collect()
    };
    match format {
        OutputFormat::Json => {
            let json = match value {
                Value::Scalar(x) => {
                    serde_json::json!({"resultType": "scalar", "result": [grid.end() as f64 / 1000.0, number(*x)]})
                }
                Value::Vector(v) => {
                    let result: Vec<serde_json::Value> = v
                        .iter()
                        .map(|s| {
                            let mut metric = serde_json::Map::new();
                            if let Some(m) = &s.metric {
                                metric.insert("__name__".into(), m.clone().into());
                            }
                            for (k, val) in &s.labels {
                                metric.insert(k.clone(), val.clone().into());
                            }
                            let pts: Vec<serde_json::Value> = points(s)
                                .into_iter()
                                .map(|(t, x)| serde_json::json!([t as f64 / 1000.0, number(x)]))
                                .collect();
                            if grid.n == 1 {
                                serde_json::json!({"metric": metric, "value": pts.first()})
                            } else {
                                serde_json::json!({"metric": metric, "values": pts})
                            }
                        })
                        .collect();
                    let kind = if grid.n == 1 { "vector" } else { "matrix" };
                    serde_json::json!({"resultType": kind, "result": result})
                }
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            )?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["series", "timestamp", "value"])?;
            if let Value::Scalar(x) = value {
                w.write_record(["", &format_ms(grid.end()), &number(*x)])?;
            }
            for (name, s) in &rows {
                for (t, x) in points(s) {
                    w.write_record([name.as_str(), &format_ms(t), &number(x)])?;
                }
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            if let Value::Scalar(x) = value {
                writeln!(out, "{}", number(*x))?;
                return Ok(());
            }
            if rows.is_empty() {
                writeln!(out, "(no series)")?;
                return Ok(());
            }
            let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
            if grid.n == 1 {
                writeln!(out, "{:<width$}  value", "series")?;
                for (name, s) in &rows {
                    if let Some(x) = s.at(0) {
                        writeln!(out, "{name:<width$}  {}", number(x))?;
                    }
                }
            } else {
                writeln!(out, "{:<width$}  {:<20}  value", "series", "time")?;
                for (name, s) in &rows {
                    for (t, x) in points(s) {
                        writeln!(out, "{name:<width$}  {:<20}  {}", format_ms(t), number(x))?;
                    }
                }
            }
        }
    }
    Ok(())
}
