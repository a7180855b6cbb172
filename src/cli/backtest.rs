//! `mcpops backtest`: the alert timeline (alert, labels, start, end,
//! duration, peak, flaps), the alerts that fired nothing because a selector
//! matched no series, and the dry run of remediation and maintenance
//! actions of a replay over stored history, as a table, CSV or JSON; with
//! `--out`, also as Parquet files (the library writes those). CSV and JSON
//! encode labels and times as `export` and `query` do: one column per label
//! (an object in JSON), RFC 3339 with `Z`.

use super::error::{CliError, io_failure};
use super::query::csv_io;
use super::shared::{
    Bounds, duration_arg, label_cells, label_columns, labels_object, load_checked_rules, period,
    range_error, time_arg, write_json,
};
use super::{BacktestArgs, Context, TableCsvJson};
use mcpops::engine::EngineError;
use mcpops::engine::backtest::{Backtest, BacktestOptions};
use mcpops::engine::replay::ActionEvent;
use mcpops::engine::value::{Labels, format_labels};
use mcpops::time::{format_duration_ms, format_ms};
use serde::Serialize;
use std::io::{self, Write};

pub(super) fn run(ctx: &Context, args: BacktestArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let from_ms = args.from.map(|t| time_arg("--from", &t)).transpose()?;
    let to_ms = args.to.map(|t| time_arg("--to", &t)).transpose()?;
    let step_ms = args.step.map(|s| duration_arg("--step", &s)).transpose()?;
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && to < from
    {
        return Err(CliError::usage("--to is before --from"));
    }
    let rules = load_checked_rules(&args.rules)?;
    let step = step_ms
        .or_else(|| rules.first().map(mcpops::dsl::RuleFile::step_ms))
        .unwrap_or(mcpops::dsl::DEFAULT_STEP_MS);
    let step_from = if step_ms.is_some() {
        "--step"
    } else {
        "`evaluate every`"
    };
    let p = period(
        ctx.store()?,
        from_ms,
        to_ms,
        None,
        Bounds {
            step: Some((step, step_from)),
            analysed: false,
        },
    )?;
    if p.to_ms < p.from_ms {
        return Err(CliError::usage("--to is before --from"));
    }
    let opts = BacktestOptions {
        from_ms: p.from_ms,
        to_ms: p.to_ms,
        step_ms,
        record: args.record,
        // A start no one gave falls on a whole step.
        align_start: from_ms.is_none(),
        max_samples: args.limit.max_samples,
    };
    let bt =
        mcpops::engine::backtest::backtest(ctx.store()?, &rules, &opts).map_err(|e| match e {
            EngineError::Range(e) => range_error(e, step_from),
            other => other.into(),
        })?;
    write_backtest(&bt, args.format, out).map_err(io_failure)?;
    if let Some(dir) = &args.out {
        mcpops::engine::backtest::write_parquet(&bt, dir)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ActionRow<'a> {
    time: String,
    policy: &'a str,
    event: &'static str,
    trigger: &'a str,
    /// As text, for the table; JSON writes `label_pairs` as an object.
    #[serde(skip)]
    labels: String,
    #[serde(rename = "labels", serialize_with = "labels_map")]
    label_pairs: &'a Labels,
    action: &'a str,
    /// The decision's id: `mcpops approve ID` takes an `awaiting approval` one.
    id: String,
    /// The block's `mode`.
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
}

fn labels_map<S: serde::Serializer>(labels: &&Labels, s: S) -> Result<S::Ok, S::Error> {
    labels_object(labels).serialize(s)
}

fn action_row(a: &ActionEvent) -> ActionRow<'_> {
    ActionRow {
        time: format_ms(a.time),
        policy: &a.policy,
        event: a.kind.name(),
        trigger: &a.trigger,
        labels: format_labels(&a.labels),
        label_pairs: &a.labels,
        action: &a.action,
        id: a.id(),
        mode: a.mode.name(),
        approved_by: a.approved_by.as_deref(),
    }
}

/// The CSV's columns before and after the label columns.
const CSV_HEAD: [&str; 5] = ["kind", "time", "end", "name", "severity_or_event"];
const CSV_TAIL: [&str; 4] = ["duration_s", "peak", "flaps", "detail"];

/// A label column's header: the label's name, or `label_NAME` where the
/// name is one of the fixed columns' (a label called `time` would
/// otherwise make two `time` columns).
fn label_header(name: &str) -> String {
    if CSV_HEAD.contains(&name) || CSV_TAIL.contains(&name) {
        format!("label_{name}")
    } else {
        name.to_string()
    }
}

/// Writes the timeline and the actions.
fn write_backtest(bt: &Backtest, format: TableCsvJson, out: &mut dyn Write) -> io::Result<()> {
    let timeline = bt.timeline();
    let actions: Vec<ActionRow> = bt.replay.actions.iter().map(action_row).collect();
    match format {
        TableCsvJson::Json => {
            let json = serde_json::json!({
                "from": format_ms(bt.grid.start),
                "to": format_ms(bt.grid.end()),
                "step_s": bt.grid.step / 1000,
                "samples_read": bt.samples_read,
                "alerts": timeline.iter().map(|r| serde_json::json!({
                    "alert": r.alert,
                    "severity": r.severity,
                    "labels": labels_object(&r.label_pairs),
                    "start": r.start,
                    "end": r.end,
                    "duration_s": r.duration_s,
                    "peak": r.peak,
                    "flaps": r.flaps,
                    "summary": r.summary,
                })).collect::<Vec<_>>(),
                "unmatched": bt.unmatched.iter().map(|u| serde_json::json!({
                    "alert": u.alert,
                    "selector": u.selector,
                    "message": u.message(),
                })).collect::<Vec<_>>(),
                "actions": actions,
            });
            write_json(out, &json)?;
        }
        TableCsvJson::Csv => {
            // kind, time, end, name, severity_or_event, one column per
            // label (as `export` and `query` write them), then the
            // alert's numbers and the detail.
            let columns = label_columns(
                timeline
                    .iter()
                    .map(|r| &r.label_pairs)
                    .chain(actions.iter().map(|a| a.label_pairs)),
            );
            let none = Labels::new();
            let mut w = csv::Writer::from_writer(&mut *out);
            let header: Vec<String> = CSV_HEAD
                .iter()
                .map(|c| c.to_string())
                .chain(columns.iter().map(|c| label_header(c)))
                .chain(CSV_TAIL.iter().map(|c| c.to_string()))
                .collect();
            w.write_record(&header).map_err(csv_io)?;
            let mut row = |head: [&str; 5], labels: &Labels, tail: [&str; 4]| {
                let record: Vec<&str> = head
                    .into_iter()
                    .chain(label_cells(labels, &columns))
                    .chain(tail)
                    .collect();
                w.write_record(&record).map_err(csv_io)
            };
            for r in &timeline {
                row(
                    [
                        "alert",
                        &r.start,
                        r.end.as_deref().unwrap_or(""),
                        &r.alert,
                        &r.severity,
                    ],
                    &r.label_pairs,
                    [
                        &r.duration_s.to_string(),
                        &r.peak.to_string(),
                        &r.flaps.to_string(),
                        &r.summary,
                    ],
                )?;
            }
            for u in &bt.unmatched {
                row(
                    ["unmatched", "", "", &u.alert, ""],
                    &none,
                    ["", "", "", &u.message()],
                )?;
            }
            for a in &actions {
                row(
                    ["action", &a.time, "", a.policy, a.event],
                    a.label_pairs,
                    ["", "", "", a.action],
                )?;
            }
            w.flush()?;
        }
        TableCsvJson::Table => {
            writeln!(
                out,
                "backtest {} .. {} every {}: {} alert episodes fired, {} action events",
                format_ms(bt.grid.start),
                format_ms(bt.grid.end()),
                format_duration_ms(bt.grid.step),
                timeline.len(),
                actions.len()
            )?;
            writeln!(out, "\nALERTS")?;
            writeln!(
                out,
                "{:<24} {:<9} {:<20} {:<20} {:>10} {:>12} {:>5}  labels",
                "alert", "severity", "start", "end", "duration", "peak", "flaps"
            )?;
            for r in &timeline {
                writeln!(
                    out,
                    "{:<24} {:<9} {:<20} {:<20} {:>10} {:>12.6} {:>5}  {}",
                    r.alert,
                    r.severity,
                    r.start,
                    r.end.as_deref().unwrap_or("(firing)"),
                    format_duration_ms((r.duration_s * 1000.0) as i64),
                    r.peak,
                    r.flaps,
                    r.labels
                )?;
            }
            for u in &bt.unmatched {
                writeln!(out, "{:<24} {}", u.alert, u.message())?;
            }
            writeln!(out, "\nACTIONS (dry run)")?;
            writeln!(
                out,
                "{:<20} {:<24} {:<24} {:<40}  action",
                "time", "policy", "event", "labels"
            )?;
            for a in &actions {
                // What `mcpops approve` takes, where an approval is awaited.
                let note = match (a.event, a.approved_by) {
                    ("awaiting approval", _) => format!("  (id {})", a.id),
                    (_, Some(by)) => format!("  (approved by {by})"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{:<20} {:<24} {:<24} {:<40}  {}{note}",
                    a.time, a.policy, a.event, a.labels, a.action
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_named_like_a_fixed_column_get_a_prefix() {
        assert_eq!(label_header("server"), "server");
        assert_eq!(label_header("time"), "label_time");
        assert_eq!(label_header("detail"), "label_detail");
    }
}
