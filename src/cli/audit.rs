//! `mcpops audit`: the store's action journal (what `mcpops watch` decided
//! and did) as the actions table that `backtest --out` writes: one row per
//! decision with its id, mode, who approved it and, for an action carried
//! out, its outcome, exit code, duration and detail. As a table, CSV or
//! JSON; with `--out`, also `actions.parquet`.

use super::approve::journal_error;
use super::error::{CliError, io_failure};
use super::query::csv_io;
use super::shared::{label_cells, label_columns, labels_object, write_json};
use super::{AuditArgs, Context, TableCsvJson};
use mcpops::engine::value::format_labels;
use mcpops::remediate::audit::{self, AuditRow};
use mcpops::remediate::journal;
use mcpops::store::StoreError;
use mcpops::time::format_ms;
use std::io::{self, Write};

pub(super) fn run(ctx: &Context, args: AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let root = ctx.store()?.require_local("audit")?;
    if !root.exists() {
        return Err(StoreError::NoStore {
            path: root.display().to_string(),
            why: "the directory does not exist",
        }
        .into());
    }
    let log = journal::read(root).map_err(journal_error)?;
    let rows = log.audit_rows();
    write_rows(&rows, args.format, out).map_err(io_failure)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failure(format!("{}: {e}", dir.display())))?;
        audit::write(&rows, &dir.join("actions.parquet")).map_err(CliError::failure)?;
    }
    Ok(())
}

/// The fixed columns before and after the labels (CSV) or the labels
/// object (JSON).
const HEAD: [&str; 4] = ["time", "policy", "event", "trigger"];
const TAIL: [&str; 8] = [
    "action",
    "id",
    "mode",
    "approved_by",
    "outcome",
    "exit_code",
    "duration_s",
    "detail",
];

/// A row's fixed cells, as text (empty for a null).
fn cells(r: &AuditRow) -> ([String; 4], [String; 8]) {
    let e = &r.event;
    (
        [
            format_ms(e.time),
            e.policy.clone(),
            e.kind.name().to_string(),
            e.trigger.clone(),
        ],
        [
            e.action.clone(),
            r.id.clone(),
            e.mode.name().to_string(),
            e.approved_by.clone().unwrap_or_default(),
            r.outcome.clone().unwrap_or_default(),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.duration_s.map(|d| d.to_string()).unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
        ],
    )
}

fn write_rows(rows: &[AuditRow], format: TableCsvJson, out: &mut dyn Write) -> io::Result<()> {
    match format {
        TableCsvJson::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let e = &r.event;
                    serde_json::json!({
                        "time": format_ms(e.time),
                        "policy": e.policy,
                        "event": e.kind.name(),
                        "trigger": e.trigger,
                        "labels": labels_object(&e.labels),
                        "action": e.action,
                        "id": r.id,
                        "mode": e.mode.name(),
                        "approved_by": e.approved_by,
                        "outcome": r.outcome,
                        "exit_code": r.exit_code,
                        "duration_s": r.duration_s,
                        "detail": r.detail,
                    })
                })
                .collect();
            write_json(out, &serde_json::Value::from(json))
        }
        TableCsvJson::Csv => {
            let columns = label_columns(rows.iter().map(|r| &r.event.labels));
            let header: Vec<String> = HEAD
                .iter()
                .map(|c| c.to_string())
                .chain(columns.iter().map(|c| {
                    // A label named like a fixed column gets a prefix.
                    if HEAD.contains(c) || TAIL.contains(c) {
                        format!("label_{c}")
                    } else {
                        c.to_string()
                    }
                }))
                .chain(TAIL.iter().map(|c| c.to_string()))
                .collect();
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(&header).map_err(csv_io)?;
            for r in rows {
                let (head, tail) = cells(r);
                let record: Vec<&str> = head
                    .iter()
                    .map(String::as_str)
                    .chain(label_cells(&r.event.labels, &columns))
                    .chain(tail.iter().map(String::as_str))
                    .collect();
                w.write_record(&record).map_err(csv_io)?;
            }
            w.flush()
        }
        TableCsvJson::Table => {
            writeln!(out, "ACTIONS ({} decisions)", rows.len())?;
            writeln!(
                out,
                "{:<20} {:<16} {:<20} {:<24} {:<14} {:<8} {:<32}  action",
                "time", "id", "policy", "event", "outcome", "mode", "labels"
            )?;
            for r in rows {
                let e = &r.event;
                let outcome = match (&r.outcome, &e.approved_by) {
                    (Some(o), Some(by)) => format!("{o}, approved by {by}"),
                    (None, Some(by)) => format!("approved by {by}"),
                    (Some(o), None) => o.clone(),
                    (None, None) => String::new(),
                };
                writeln!(
                    out,
                    "{:<20} {:<16} {:<20} {:<24} {:<14} {:<8} {:<32}  {}",
                    format_ms(e.time),
                    r.id,
                    e.policy,
                    e.kind.name(),
                    outcome,
                    e.mode.name(),
                    format_labels(&e.labels),
                    e.action
                )?;
            }
            Ok(())
        }
    }
}
