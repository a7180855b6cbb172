//! `mcpops report`: analysis and backtest of a period, written as JSON,
//! Markdown and HTML into `--out` (the library writes the files, and a
//! dated copy with `--archive`); prints where, and the report's summary
//! lines. `--since` and a lone `--from` end the period now, so that a cron
//! job reports on the last day, not on the store's last day. Exit 7 when the
//! period ends after the store's newest sample (the report is written,
//! marked stale); else exit 4 when the verdict is as severe as `--fail-on`
//! (the verdict and the exit code follow one rule: [`mcpops::report::Verdict`]).
//! `--format json` prints the same as one object: the verdict, the summary
//! lines, the files written and the exit code with what it means.

use super::error::{CliError, io_failure};
use super::shared::{Bounds, duration_arg, load_checked_rules, period, time_arg, write_json};
use super::{Context, FailOn, ReportArgs, TextOrJson};
use mcpops::ingest::IngestOptions;
use mcpops::report::{Level, ReportOptions};
use mcpops::time::{format_ms, now_ms};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The sample fleet and policy that ship with mcpops, for `report` with no arguments.
const SAMPLE_FLEET: &str = "data/fleet";
const SAMPLE_RULES: &str = "rules/mcp.rules";

pub(super) fn run(ctx: &Context, args: ReportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    // To the second: the period's end is printed, and milliseconds of the
    // clock say nothing.
    let now = now_ms() / 1000 * 1000;
    let from = args.from.map(|t| time_arg("--from", &t)).transpose()?;
    let to_given = args.to.map(|t| time_arg("--to", &t)).transpose()?;
    let since = args
        .since
        .map(|d| duration_arg("--since", &d))
        .transpose()?;
    // A period asked for from a start (`--from`, `--since`) runs to now,
    // unless `--to` ends it or `--since-last-sample` counts from the data.
    let to = to_given
        .or(((from.is_some() || since.is_some()) && !args.since_last_sample).then_some(now));
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(CliError::usage(format!(
            "--from {} is after {} {}: the period is reversed",
            format_ms(f),
            if to_given.is_some() { "--to" } else { "now," },
            format_ms(t)
        )));
    }
    let range = ReportOptions {
        from_ms: from,
        to_ms: to,
        since_ms: since,
        extent: None,
        max_samples: args.limit.max_samples,
        server_label: args.server_label,
        now_ms: Some(now),
    };
    let store = ctx.store()?;
    let empty = store.snapshot()?.manifest().extent().is_none();
    let sample_fleet = empty && ctx.sample_fallback && Path::new(SAMPLE_FLEET).is_dir();
    if sample_fleet {
        // JSON says so in its object, where a line of text would break it.
        if args.format == TextOrJson::Text {
            writeln!(
                out,
                "the store {} is empty: ingesting the sample fleet in {SAMPLE_FLEET}",
                store.location()
            )
            .map_err(io_failure)?;
        }
        let opts = IngestOptions {
            quiet: ctx.quiet,
            ..IngestOptions::default()
        };
        super::ingest::ingest(
            store,
            &[PathBuf::from(SAMPLE_FLEET)],
            &opts,
            &mut std::io::sink(),
        )?;
    } else if empty {
        return Err(super::shared::empty_store(store));
    }
    let rule_paths: Vec<PathBuf> = if args.rules.is_empty() && Path::new(SAMPLE_RULES).is_file() {
        vec![PathBuf::from(SAMPLE_RULES)]
    } else {
        args.rules
    };
    let rules = load_checked_rules(&rule_paths)?;
    let names: Vec<String> = rule_paths.iter().map(|p| p.display().to_string()).collect();
    let p = period(
        store,
        range.from_ms,
        range.to_ms,
        range.since_ms,
        Bounds {
            step: rules.first().map(|r| (r.step_ms(), "`evaluate every`")),
            analysed: true,
        },
    )?;
    let range = ReportOptions {
        extent: Some(p.extent),
        ..range
    };
    let bar = mcpops::progress::steps_bar(4, ctx.quiet, "report");
    let report = mcpops::report::build(store, &rules, &names, &range, &bar)?;
    mcpops::report::Progress::step(&bar, "writing");
    let html = mcpops::report::write(&report, &args.out).map_err(CliError::failure)?;
    let archived = if args.archive {
        Some(mcpops::report::write_archive(&report, &args.out).map_err(CliError::failure)?)
    } else {
        None
    };
    bar.finish_and_clear();
    let outcome = verdict_outcome(&report, args.fail_on);
    if args.format == TextOrJson::Json {
        let written: Vec<String> = ["report.json", "report.md", "report.html"]
            .iter()
            .map(|f| args.out.join(f).display().to_string())
            .collect();
        let (code, meaning) = match &outcome {
            Ok(()) => (0, "ok: nothing to page about".to_string()),
            Err(e) => (e.exit_code(), e.to_string()),
        };
        let json = serde_json::json!({
            "verdict": {
                "level": report.verdict.level.name(),
                "headline": report.verdict.headline,
                "reasons": report.verdict.reasons,
                "stale": report.verdict.stale,
            },
            "from": format_ms(report.from_ms),
            "to": format_ms(report.to_ms),
            "newest_sample": report.freshness.newest,
            "summary": report.summary,
            "written": written,
            "archived": archived.as_ref().map(|d| d.display().to_string()),
            "sample_fleet_ingested": sample_fleet,
            "exit": {"code": code, "meaning": meaning},
        });
        write_json(out, &json).map_err(io_failure)?;
        return outcome;
    }
    writeln!(out, "report written to {}", html.display()).map_err(io_failure)?;
    if let Some(dir) = archived {
        writeln!(out, "archived in {}", dir.display()).map_err(io_failure)?;
    }
    for line in &report.summary {
        writeln!(out, "  {line}").map_err(io_failure)?;
    }
    outcome
}

/// The exit the report calls for: stale (7) before all, then a verdict as
/// severe as `--fail-on` (4), else success.
fn verdict_outcome(
    report: &mcpops::report::Report,
    fail_on: Option<FailOn>,
) -> Result<(), CliError> {
    if report.verdict.stale {
        return Err(CliError::Stale(
            format!(
                "the report is stale: its period ends at {}, but the store's newest sample is {} (the report says so in its verdict)",
                format_ms(report.to_ms),
                report.freshness.newest
            )
            .into(),
        ));
    }
    let threshold = match fail_on {
        Some(FailOn::Critical) => Level::Critical,
        Some(FailOn::Warning) => Level::Warning,
        None => return Ok(()),
    };
    if report.verdict.level >= threshold {
        let shown = 3;
        let mut why: Vec<&str> = report
            .verdict
            .reasons
            .iter()
            .take(shown)
            .map(String::as_str)
            .collect();
        let more = report.verdict.reasons.len().saturating_sub(shown);
        let more_text = format!("{more} more in the report");
        if more > 0 {
            why.push(&more_text);
        }
        return Err(CliError::Alerting(
            format!(
                "the verdict is {} (--fail-on {}): {}",
                report.verdict.level.name().to_uppercase(),
                threshold.name(),
                why.join("; ")
            )
            .into(),
        ));
    }
    Ok(())
}
