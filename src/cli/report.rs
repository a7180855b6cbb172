//! `mcpops report`: analysis and backtest of a period, written as JSON,
//! Markdown and HTML into `--out` (the library writes the files); prints
//! where, and the report's summary lines. Exit 4 when `--fail-on` names a
//! severity an alert firing at the end of the period has.

use super::error::{CliError, io_failure};
use super::shared::{Bounds, duration_arg, load_checked_rules, period, time_arg};
use super::{Context, FailOn, ReportArgs};
use mcpops::ingest::IngestOptions;
use mcpops::report::ReportOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The sample fleet and policy that ship with mcpops, for `report` with no arguments.
const SAMPLE_FLEET: &str = "data/fleet";
const SAMPLE_RULES: &str = "rules/mcp.rules";

pub(super) fn run(ctx: &Context, args: ReportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let range = ReportOptions {
        from_ms: args.from.map(|t| time_arg("--from", &t)).transpose()?,
        to_ms: args.to.map(|t| time_arg("--to", &t)).transpose()?,
        since_ms: args
            .since
            .map(|d| duration_arg("--since", &d))
            .transpose()?,
        extent: None,
        max_samples: args.limit.max_samples,
        server_label: args.server_label,
    };
    let store = &ctx.store;
    let empty = store.snapshot()?.manifest().extent().is_none();
    if empty && ctx.sample_fallback && Path::new(SAMPLE_FLEET).is_dir() {
        writeln!(
            out,
            "the store {} is empty: ingesting the sample fleet in {SAMPLE_FLEET}",
            store.root().display()
        )
        .map_err(io_failure)?;
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
    bar.finish_and_clear();
    writeln!(out, "report written to {}", html.display()).map_err(io_failure)?;
    for line in &report.summary {
        writeln!(out, "  {line}").map_err(io_failure)?;
    }
    let firing: Vec<&str> = report
        .alerts
        .firing_at_end
        .iter()
        .map(|&i| &report.alerts.episodes[i])
        .filter(|e| match args.fail_on {
            Some(FailOn::Critical) => e.severity == "critical",
            Some(FailOn::Warning) => e.severity == "critical" || e.severity == "warning",
            None => false,
        })
        .map(|e| e.alert.as_str())
        .collect();
    if !firing.is_empty() {
        return Err(CliError::Alerting(
            format!(
                "{} alert(s) firing at the end of the period: {}",
                firing.len(),
                firing.join(", ")
            )
            .into(),
        ));
    }
    Ok(())
}
