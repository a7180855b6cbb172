//! `mcpops evaluate --labels WINDOWS.json --data DIR`: NAB's three profile
//! scores, as a table or JSON.

use super::error::{CliError, io_failure};
use super::{EvaluateArgs, TableOrJson};
use mcpops::analyze::nab::NabReport;
use std::io::{self, Write};

pub(super) fn run(args: EvaluateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let report = mcpops::analyze::nab::evaluate(&args.labels, &args.data)
        .map_err(|e| CliError::Input(e.into()))?;
    if args.format == TableOrJson::Json {
        let text = serde_json::to_string_pretty(&report).map_err(CliError::failure)?;
        writeln!(out, "{text}").map_err(io_failure)
    } else {
        write_table(&report, out).map_err(io_failure)
    }
}

/// The corpus in one line, then a row per profile.
fn write_table(report: &NabReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "NAB: {} files, {} rows, {} windows",
        report.files, report.rows, report.windows
    )?;
    writeln!(
        out,
        "{:<20} {:>7} {:>10} {:>9} {:>7} {:>7}",
        "profile", "score", "threshold", "detected", "missed", "FP rows"
    )?;
    for p in &report.profiles {
        writeln!(
            out,
            "{:<20} {:>7.2} {:>10.4} {:>9} {:>7} {:>7}",
            p.profile.name,
            p.score,
            p.threshold,
            p.detected_windows,
            p.missed_windows,
            p.false_positive_rows
        )?;
    }
    Ok(())
}
