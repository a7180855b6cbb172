//! `mcpops nab score|cv --labels WINDOWS.json --data DIR`: the detector
//! measured on a labelled corpus the way the Numenta Anomaly Benchmark
//! measures it (`score`: NAB's three profile scores), and its tuning
//! cross-validated one category at a time (`cv`), as a table or JSON.

use super::error::{CliError, io_failure};
use super::{NabArgs, NabCommand, TableOrJson};
use mcpops::analyze::nab::NabReport;
use mcpops::analyze::nab_cv::CvReport;
use serde::Serialize;
use std::io::{self, Write};

pub(super) fn run(command: NabCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        NabCommand::Score(args) => {
            let report = mcpops::analyze::nab::evaluate(&args.labels, &args.data)
                .map_err(|e| CliError::Input(e.into()))?;
            render(&args, &report, out, write_score)
        }
        NabCommand::Cv(args) => {
            let report = mcpops::analyze::nab_cv::cross_validate_corpus(&args.labels, &args.data)
                .map_err(|e| CliError::Input(e.into()))?;
            render(&args, &report, out, write_cv)
        }
    }
}

fn render<T: Serialize>(
    args: &NabArgs,
    report: &T,
    out: &mut dyn Write,
    table: fn(&T, &mut dyn Write) -> io::Result<()>,
) -> Result<(), CliError> {
    if args.format == TableOrJson::Json {
        let text = serde_json::to_string_pretty(report).map_err(CliError::failure)?;
        writeln!(out, "{text}").map_err(io_failure)
    } else {
        table(report, out).map_err(io_failure)
    }
}

/// The corpus in one line, then a row per profile.
fn write_score(report: &NabReport, out: &mut dyn Write) -> io::Result<()> {
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

/// Per profile: a row per held-out category (what was chosen without it,
/// and how it scored), then the mean held-out and the in-sample score.
fn write_cv(report: &CvReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "NAB leave-one-category-out: {} files, {} rows, {} categories, {} configurations to choose from",
        report.files,
        report.rows,
        report.folds.len(),
        report.candidates.len()
    )?;
    let width = report
        .folds
        .iter()
        .map(|f| f.category.len())
        .chain(report.candidates.iter().map(String::len))
        .max()
        .unwrap_or(0)
        .max(8);
    for (k, summary) in report.summary.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "{}", summary.profile)?;
        writeln!(
            out,
            "  {:<width$} {:>5} {:>7} {:<width$} {:>9} {:>7} {:>9} {:>6} {:>7} {:>8}",
            "held out",
            "files",
            "windows",
            "config",
            "threshold",
            "score",
            "detected",
            "missed",
            "FP rows",
            "raw"
        )?;
        for fold in &report.folds {
            let p = &fold.profiles[k];
            let score = p.score.map_or("-".to_string(), |s| format!("{s:.2}"));
            writeln!(
                out,
                "  {:<width$} {:>5} {:>7} {:<width$} {:>9.4} {:>7} {:>9} {:>6} {:>7} {:>8.3}",
                fold.category,
                fold.files,
                fold.windows,
                p.candidate,
                p.threshold,
                score,
                p.detected_windows,
                p.missed_windows,
                p.false_positive_rows,
                p.raw
            )?;
        }
        writeln!(
            out,
            "  mean held-out {:.2} (lowest {:.2}; over the categories with windows)",
            summary.mean_held_out, summary.min_held_out
        )?;
        writeln!(
            out,
            "  in-sample     {:.2} (config {}, threshold {:.4})",
            summary.in_sample, summary.in_sample_candidate, summary.in_sample_threshold
        )?;
    }
    Ok(())
}
