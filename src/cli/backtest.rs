//! `mcpops backtest`: the alert timeline (alert, labels, start, end,
//! duration, peak, flaps), the alerts that fired nothing because a selector
//! matched no series, and the dry run of remediation and maintenance
//! actions of a replay over stored history, as a table, CSV or JSON; with
//! `--out`, also as Parquet files (the library writes those).

use super::error::{CliError, io_failure};
use super::query::csv_io;
use super::shared::{
    Bounds, duration_arg, load_checked_rules, period, range_error, time_arg, write_json,
};
use super::{BacktestArgs, Context, TableCsvJson};
use mcpops::engine::EngineError;
use mcpops::engine::backtest::{Backtest, BacktestOptions};
use mcpops::engine::replay::ActionEvent;
use mcpops::engine::value::format_labels;
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
        &ctx.store,
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
        mcpops::engine::backtest::backtest(&ctx.store, &rules, &opts).map_err(|e| match e {
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
    labels: String,
    action: &'a str,
}

fn action_row(a: &ActionEvent) -> ActionRow<'_> {
    ActionRow {
        time: format_ms(a.time),
        policy: &a.policy,
        event: a.kind.name(),
        trigger: &a.trigger,
        labels: format_labels(&a.labels),
        action: &a.action,
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
                "alerts": timeline,
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
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record([
                "kind",
                "time",
                "end",
                "name",
                "severity_or_event",
                "labels",
                "duration_s",
                "peak",
                "flaps",
                "detail",
            ])
            .map_err(csv_io)?;
            for r in &timeline {
                w.write_record([
                    "alert",
                    &r.start,
                    r.end.as_deref().unwrap_or(""),
                    &r.alert,
                    &r.severity,
                    &r.labels,
                    &r.duration_s.to_string(),
                    &r.peak.to_string(),
                    &r.flaps.to_string(),
                    &r.summary,
                ])
                .map_err(csv_io)?;
            }
            for u in &bt.unmatched {
                w.write_record([
                    "unmatched",
                    "",
                    "",
                    &u.alert,
                    "",
                    "",
                    "",
                    "",
                    "",
                    &u.message(),
                ])
                .map_err(csv_io)?;
            }
            for a in &actions {
                w.write_record([
                    "action", &a.time, "", a.policy, a.event, &a.labels, "", "", "", a.action,
                ])
                .map_err(csv_io)?;
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
                "{:<20} {:<24} {:<22} {:<40}  action",
                "time", "policy", "event", "labels"
            )?;
            for a in &actions {
                writeln!(
                    out,
                    "{:<20} {:<24} {:<22} {:<40}  {}",
                    a.time, a.policy, a.event, a.labels, a.action
                )?;
            }
        }
    }
    Ok(())
}
