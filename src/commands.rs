//! What each subcommand does, behind `main.rs`'s argument parsing: run the
//! library, print what a person (or a cron mail) should read, and say how
//! the process should exit (DESIGN.md: 0 ok, 1 failure, 2 usage or input
//! error, 3 rule problems; 4 for `report --fail-on critical` when a
//! critical alert is firing; 5 when the store is damaged).

use crate::fsutil::AtomicFile;
use crate::generate::{GenerateError, GenerateOptions, generate};
use crate::ingest::{IngestError, IngestOptions, ingest_inputs, resolve_inputs};
use crate::model::Matcher;
use crate::store::{ExportFormat, ScanRequest, Store, StoreError};
use crate::time::{format_ms, now_ms, parse_time};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A command's failure, carrying its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad arguments: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Bad input data: exit 2, store untouched.
    #[error("{0}")]
    Input(String),
    /// Rule files with errors, failing rule tests: exit 3.
    #[error("{0}")]
    Rules(String),
    /// Anything else: exit 1.
    #[error("{0}")]
    Failure(String),
    /// The job ran, and found what `--fail-on` asks to page for: exit 4.
    #[error("{0}")]
    Alerting(String),
    /// The store is damaged (a corrupt or missing segment, a lost
    /// manifest): exit 5; `mcpops verify` and `mcpops repair` say more.
    #[error("{0}")]
    Damaged(String),
    /// Whoever read standard output stopped reading (`mcpops analyze | head`):
    /// not a failure, so exit 0 without a message, as `ls | head` does.
    #[error("standard output closed")]
    OutputClosed,
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::OutputClosed => 0,
            CommandError::Failure(_) => 1,
            CommandError::Usage(_) | CommandError::Input(_) => 2,
            CommandError::Rules(_) => 3,
            CommandError::Alerting(_) => 4,
            CommandError::Damaged(_) => 5,
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => CommandError::Usage(m),
            StoreError::Io { source, .. } if output_closed(&source) => CommandError::OutputClosed,
            damage if damage.is_damage() => CommandError::Damaged(damage.to_string()),
            other => CommandError::Failure(other.to_string()),
        }
    }
}

impl From<IngestError> for CommandError {
    fn from(e: IngestError) -> Self {
        match &e {
            IngestError::Sink(_) => CommandError::Failure(e.to_string()),
            IngestError::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
                CommandError::Failure(e.to_string())
            }
            _ => CommandError::Input(e.to_string()),
        }
    }
}

/// Whether a write failed because the reader of the output went away.
fn output_closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

fn io_failure(e: std::io::Error) -> CommandError {
    if output_closed(&e) {
        CommandError::OutputClosed
    } else {
        CommandError::Failure(e.to_string())
    }
}

/// Parses a `--from`/`--to`/`--at`/`--before` value.
pub fn time_arg(flag: &str, text: &str) -> Result<i64, CommandError> {
    parse_time(text, now_ms()).map_err(|e| CommandError::Usage(format!("{flag}: {e}")))
}

/// Parses a duration flag such as `--step 5m`.
pub fn duration_arg(flag: &str, text: &str) -> Result<i64, CommandError> {
    crate::time::parse_duration_ms(text).map_err(|e| CommandError::Usage(format!("{flag}: {e}")))
}

/// Parses `--label k=v`.
pub fn label_arg(text: &str) -> Result<(String, String), CommandError> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| CommandError::Usage(format!("--label `{text}`: expected name=value")))
}

/// `mcpops ingest`: every path in one commit; nothing is stored unless all parse
/// (or `--skip-invalid` skips what does not).
pub fn ingest(
    store: &Store,
    paths: &[PathBuf],
    opts: &IngestOptions,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let started = Instant::now();
    // Before the lock: a missing file, an unknown format or a FIFO fails
    // here, without waiting on (or holding) the store.
    let inputs = resolve_inputs(paths, opts)?;
    let mut writer = store.writer()?;
    let report = ingest_inputs(&inputs, opts, &mut writer)?;
    let (samples, lines, files, skipped) =
        (report.samples, report.lines, report.files, report.skipped);
    let first_skipped = report.first_skipped;
    let commit = writer.commit()?;
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "ingested {samples} samples from {files} file(s), {lines} lines, in {secs:.2}s ({:.0} samples/s) into {} ({} new segment(s), generation {})",
        samples as f64 / secs.max(1e-9),
        store.root().display(),
        commit.segments_added,
        commit.generation,
    )
    .map_err(io_failure)?;
    if skipped > 0 {
        writeln!(out, "skipped {skipped} invalid line(s); the first:").map_err(io_failure)?;
        for e in first_skipped.iter().take(5) {
            writeln!(out, "  {e}").map_err(io_failure)?;
        }
    }
    Ok(())
}

/// `mcpops info`.
pub fn info(store: &Store, json: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let info = store.snapshot()?.info()?;
    if json {
        let text = serde_json::to_string_pretty(&info)
            .map_err(|e| CommandError::Failure(e.to_string()))?;
        writeln!(out, "{text}").map_err(io_failure)?;
        return Ok(());
    }
    let when = |t: Option<i64>| t.map(format_ms).unwrap_or_else(|| "-".into());
    let rows = [
        ("store", info.store.clone()),
        ("generation", info.generation.to_string()),
        ("segments", info.segments.to_string()),
        ("days", info.days.to_string()),
        ("metrics", info.metrics.to_string()),
        ("series", info.series.to_string()),
        ("samples", info.samples.to_string()),
        ("first sample", when(info.first)),
        ("last sample", when(info.last)),
        ("bytes", info.bytes.to_string()),
        ("bytes/sample", format!("{:.3}", info.bytes_per_sample)),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<14} {v}").map_err(io_failure)?;
    }
    Ok(())
}

/// `mcpops compact`.
pub fn compact(store: &Store, out: &mut dyn Write) -> Result<(), CommandError> {
    let s = store.compact()?;
    writeln!(
        out,
        "compacted {} day(s): merged {} segment(s) into {}, removed {} duplicate sample(s)",
        s.days, s.segments_merged, s.commit.segments_added, s.duplicates_removed
    )
    .map_err(io_failure)
}

/// `mcpops verify`: exit 5 when any segment is damaged.
pub fn verify(store: &Store, json: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let report = store.verify()?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CommandError::Failure(e.to_string()))?;
        writeln!(out, "{text}").map_err(io_failure)?;
    } else {
        for d in &report.damaged {
            writeln!(out, "DAMAGED {}: {}", d.path, d.problem).map_err(io_failure)?;
        }
        writeln!(
            out,
            "checked {} segment(s), {} sample(s), {} byte(s): {}",
            report.segments,
            report.rows,
            report.bytes,
            if report.damaged.is_empty() {
                "all intact".to_string()
            } else {
                format!("{} damaged", report.damaged.len())
            }
        )
        .map_err(io_failure)?;
        if report.without_checksums > 0 {
            writeln!(
                out,
                "{} segment(s) predate checksums: they decode, but a flipped byte that still \
                 decodes cannot be seen in them (`mcpops compact` rewrites them with checksums)",
                report.without_checksums
            )
            .map_err(io_failure)?;
        }
    }
    if report.damaged.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Damaged(format!(
            "{} damaged segment(s); `mcpops repair` moves them to {}/ and makes the rest readable",
            report.damaged.len(),
            crate::store::QUARANTINE_DIR
        )))
    }
}

/// `mcpops repair`.
pub fn repair(store: &Store, out: &mut dyn Write) -> Result<(), CommandError> {
    let report = store.repair()?;
    if let Some(kept) = &report.damaged_manifest_kept_as {
        writeln!(out, "the unreadable manifest is kept as {kept}").map_err(io_failure)?;
    }
    if report.rebuilt {
        writeln!(
            out,
            "rebuilt the manifest from {} segment file(s)",
            report.segments_kept
        )
        .map_err(io_failure)?;
    }
    for d in &report.quarantined {
        writeln!(
            out,
            "moved {} to {}/: {}",
            d.path,
            crate::store::QUARANTINE_DIR,
            d.problem
        )
        .map_err(io_failure)?;
    }
    for m in &report.missing {
        writeln!(out, "dropped {m} from the manifest: the file is gone").map_err(io_failure)?;
    }
    if report.changed() {
        writeln!(
            out,
            "the store is readable: {} segment(s), generation {}",
            report.segments_kept, report.generation
        )
    } else {
        writeln!(
            out,
            "nothing to repair: {} segment(s) intact",
            report.segments_kept
        )
    }
    .map_err(io_failure)
}

/// `mcpops retain --before T`.
pub fn retain(store: &Store, before_ms: i64, out: &mut dyn Write) -> Result<(), CommandError> {
    let s = store.retain(before_ms)?;
    writeln!(
        out,
        "dropped {} segment(s) of days ending by {}",
        s.segments_removed,
        format_ms(before_ms)
    )
    .map_err(io_failure)
}

/// The selection of `export` (and later `query`): metric, matchers, range.
pub fn scan_request(
    metric: Option<String>,
    matchers: &[String],
    from: Option<&str>,
    to: Option<&str>,
) -> Result<ScanRequest, CommandError> {
    let matchers = matchers
        .iter()
        .map(|m| Matcher::parse(m).map_err(CommandError::Usage))
        .collect::<Result<_, _>>()?;
    Ok(ScanRequest {
        start_ms: from
            .map(|t| time_arg("--from", t))
            .transpose()?
            .unwrap_or(i64::MIN),
        end_ms: to
            .map(|t| time_arg("--to", t))
            .transpose()?
            .unwrap_or(i64::MAX),
        metric,
        matchers,
        without: Vec::new(),
    })
}

/// `mcpops export`: to `out_path`, or stdout.
pub fn export(
    store: &Store,
    req: &ScanRequest,
    format: ExportFormat,
    out_path: Option<&Path>,
    stdout: &mut dyn Write,
) -> Result<(), CommandError> {
    let snapshot = store.snapshot()?;
    match out_path {
        Some(p) => {
            let fail = |e: std::io::Error| CommandError::Failure(format!("{}: {e}", p.display()));
            // A FIFO or a device the user names (`--out /dev/stdout`) is
            // written to as it is: there is no file there to replace.
            let stream = std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir());
            let rows = if stream {
                let mut file = std::io::BufWriter::new(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .map_err(fail)?,
                );
                let rows = snapshot.export(req, format, &mut file)?;
                file.flush().map_err(io_failure)?;
                rows
            } else {
                // Atomically: a failed export leaves no half file, and a
                // symlink at `p` is replaced rather than written through.
                let mut file = std::io::BufWriter::new(AtomicFile::create(p).map_err(fail)?);
                let rows = snapshot.export(req, format, &mut file)?;
                file.into_inner()
                    .map_err(|e| fail(e.into_error()))?
                    .commit()
                    .map_err(fail)?;
                rows
            };
            eprintln!("exported {rows} rows to {}", p.display());
        }
        None => {
            snapshot.export(req, format, stdout)?;
        }
    }
    Ok(())
}

/// `mcpops generate`.
pub fn generate_fleet(opts: &GenerateOptions, out: &mut dyn Write) -> Result<(), CommandError> {
    let summary = generate(opts).map_err(|e| match e {
        GenerateError::InvalidOptions(_) => CommandError::Usage(e.to_string()),
        other => CommandError::Failure(other.to_string()),
    })?;
    writeln!(
        out,
        "wrote {} file(s) to {}: {} calls, {} gauge samples, {} incident(s) in incidents.json",
        summary.files.len(),
        opts.out.display(),
        summary.calls,
        summary.gauge_samples,
        summary.incidents.len()
    )
    .map_err(io_failure)
}

/// `mcpops check`: exit 3 when any file has errors (warnings alone pass).
pub fn check(files: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let outcome = crate::dsl::check_command(files, json, out)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    if outcome.errors > 0 {
        return Err(CommandError::Rules(format!(
            "{} error(s) in the rule files",
            outcome.errors
        )));
    }
    Ok(())
}

/// `mcpops fmt`: exit 3 when a file does not parse; with `--check`, exit 1
/// when a file would change (as `cargo fmt --check` does).
pub fn fmt(files: &[PathBuf], check_only: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let outcome = crate::dsl::fmt_command(files, check_only, out)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    if outcome.errors > 0 {
        return Err(CommandError::Rules(format!(
            "{} file(s) do not parse and were left alone",
            outcome.errors
        )));
    }
    if check_only && !outcome.changed.is_empty() {
        return Err(CommandError::Failure(format!(
            "{} file(s) are not formatted",
            outcome.changed.len()
        )));
    }
    Ok(())
}

impl From<crate::engine::EngineError> for CommandError {
    fn from(e: crate::engine::EngineError) -> Self {
        match e {
            crate::engine::EngineError::Store(s) => s.into(),
            crate::engine::EngineError::Eval(m) => CommandError::Input(m),
            crate::engine::EngineError::Range(e) => range_error(e, "the step"),
            e @ crate::engine::EngineError::TooManySamples { .. } => {
                CommandError::Input(e.to_string())
            }
            crate::engine::EngineError::Io(e) => io_failure(e),
            other => CommandError::Failure(other.to_string()),
        }
    }
}

/// A range that [`crate::engine::Grid::checked_range`] refused, as a usage
/// error that names the flags (or `step_from`: `--step`, or the rule
/// file's `evaluate every` when no `--step` was given).
pub fn range_error(e: crate::engine::value::GridError, step_from: &str) -> CommandError {
    use crate::engine::value::{Bound, GridError};
    CommandError::Usage(match e {
        GridError::StepNotPositive => format!("{step_from}: {e}"),
        GridError::Reversed => "--to is before --from".into(),
        GridError::OutOfYears(Bound::From) => {
            "--from: the time is outside the years 0000-9999".into()
        }
        GridError::OutOfYears(Bound::To) => "--to: the time is outside the years 0000-9999".into(),
        GridError::TooManySteps(n) => format!(
            "--from .. --to every {step_from}: {n} steps is more than the {} allowed: choose a larger step or a shorter range",
            crate::dsl::MAX_STEPS
        ),
    })
}

/// When a query runs: an instant, or a range of steps.
#[derive(Clone, Debug)]
pub enum QueryTime {
    At(i64),
    Range { from: i64, to: i64, step: i64 },
}

/// `mcpops query`: errors in the expression exit 3 with their position.
pub fn query(
    store: &Store,
    expr_text: &str,
    when: QueryTime,
    format: crate::engine::query::OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let expr = crate::dsl::parse_query(expr_text).map_err(|diags| {
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        CommandError::Rules(text.join("\n"))
    })?;
    let grid = match when {
        QueryTime::At(t) => crate::engine::Grid::checked_range(t, t, 1).map_err(|_| {
            CommandError::Usage("--at: the time is outside the years 0000-9999".into())
        })?,
        QueryTime::Range { from, to, step } => crate::engine::Grid::checked_range(from, to, step)
            .map_err(|e| range_error(e, "--step"))?,
    };
    let value = crate::engine::query::query(store.snapshot()?, &expr, grid)?;
    crate::engine::query::write_value(&value, grid, format, out)?;
    Ok(())
}

/// Loads rule files for test and backtest: unreadable files are usage
/// errors, files with errors exit 3 with their diagnostics.
fn load_checked_rules(files: &[PathBuf]) -> Result<Vec<crate::dsl::RuleFile>, CommandError> {
    let set = crate::dsl::load_rules(files).map_err(|e| CommandError::Usage(e.to_string()))?;
    if set.has_errors() {
        let text: Vec<String> = set
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        return Err(CommandError::Rules(text.join("\n")));
    }
    Ok(set.files)
}

/// `mcpops test`: exit 3 when any expectation fails.
pub fn test(files: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let rules = load_checked_rules(files)?;
    let outcomes = crate::engine::testrun::run_tests(&rules);
    let failed = if json {
        let text = serde_json::to_string_pretty(&outcomes)
            .map_err(|e| CommandError::Failure(e.to_string()))?;
        writeln!(out, "{text}").map_err(io_failure)?;
        outcomes.iter().filter(|o| !o.passed()).count()
    } else {
        crate::engine::testrun::print_outcomes(&outcomes, out).map_err(io_failure)?
    };
    if failed > 0 {
        return Err(CommandError::Rules(format!("{failed} rule test(s) failed")));
    }
    Ok(())
}

/// What `mcpops backtest` was asked for.
#[derive(Clone, Debug, Default)]
pub struct BacktestArgs {
    /// [default: where the store's data is dense, see [`period`]]
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// [default: the first rule file's `evaluate every`, else 1m]
    pub step_ms: Option<i64>,
    pub record: bool,
}

/// `mcpops backtest`.
pub fn backtest(
    store: &Store,
    files: &[PathBuf],
    args: &BacktestArgs,
    format: crate::engine::query::OutputFormat,
    out_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    if let (Some(from), Some(to)) = (args.from_ms, args.to_ms)
        && to < from
    {
        return Err(CommandError::Usage("--to is before --from".into()));
    }
    let rules = load_checked_rules(files)?;
    let step = args
        .step_ms
        .or_else(|| rules.first().map(crate::dsl::RuleFile::step_ms))
        .unwrap_or(crate::dsl::DEFAULT_STEP_MS);
    let step_from = if args.step_ms.is_some() {
        "--step"
    } else {
        "`evaluate every`"
    };
    let p = period(
        store,
        args.from_ms,
        args.to_ms,
        None,
        Bounds {
            step: Some((step, step_from)),
            analysed: false,
        },
    )?;
    if p.to_ms < p.from_ms {
        return Err(CommandError::Usage("--to is before --from".into()));
    }
    let opts = crate::engine::backtest::BacktestOptions {
        from_ms: p.from_ms,
        to_ms: p.to_ms,
        step_ms: args.step_ms,
        record: args.record,
        // A start no one gave falls on a whole step.
        align_start: args.from_ms.is_none(),
    };
    let bt = crate::engine::backtest::backtest(store, &rules, &opts).map_err(|e| match e {
        crate::engine::EngineError::Range(e) => range_error(e, step_from),
        other => other.into(),
    })?;
    crate::engine::backtest::write_backtest(&bt, format, out)?;
    if let Some(dir) = out_dir {
        crate::engine::backtest::write_parquet(&bt, dir)?;
    }
    Ok(())
}

/// `mcpops analyze`: bottlenecks, incidents, forecasts, maintenance and
/// recommendations over the store (maintenance slots from `rules`).
pub fn analyze(
    store: &Store,
    rules: &[PathBuf],
    opts: &crate::analyze::analysis::AnalyzeOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let rules = load_checked_rules(rules)?;
    let p = period(
        store,
        opts.from_ms,
        opts.to_ms,
        None,
        Bounds {
            step: None,
            analysed: true,
        },
    )?;
    let opts = crate::analyze::analysis::AnalyzeOptions {
        from_ms: Some(p.from_ms),
        to_ms: Some(p.to_ms),
    };
    let analysis = crate::analyze::analysis::analyze(&store.snapshot()?, &rules, &opts)?;
    if analysis.servers == 0 {
        return Err(CommandError::Usage(format!(
            "no calls or gauges with a `server` label in {}: ingest data first (mcpops ingest data/fleet)",
            store.root().display()
        )));
    }
    if json {
        crate::analyze::analysis::write_json(&analysis, out)
    } else {
        crate::analyze::analysis::write_table(&analysis, out)
    }
    .map_err(io_failure)
}

/// What `mcpops report` was asked for.
#[derive(Clone, Debug, Default)]
pub struct ReportArgs {
    pub rules: Vec<PathBuf>,
    pub range: crate::report::ReportOptions,
    pub out_dir: PathBuf,
    /// Exit 4 when an alert of this severity is firing at the end.
    pub fail_on: Option<String>,
    /// No `--store` given: an empty default store is filled from `data/fleet`.
    pub sample_fallback: bool,
    pub quiet: bool,
}

/// The sample fleet and policy that ship with mcpops, for `report` with no arguments.
pub const SAMPLE_FLEET: &str = "data/fleet";
pub const SAMPLE_RULES: &str = "rules/mcp.rules";

/// `mcpops report`: analysis and backtest of a period, written as JSON,
/// Markdown and HTML into `out_dir`; prints where, and a three-line summary.
pub fn report(store: &Store, args: &ReportArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    if let Some(level) = &args.fail_on
        && level != "critical"
        && level != "warning"
    {
        return Err(CommandError::Usage(format!(
            "--fail-on {level}: expected critical or warning"
        )));
    }
    let empty = store.snapshot()?.manifest().extent().is_none();
    if empty && args.sample_fallback && Path::new(SAMPLE_FLEET).is_dir() {
        writeln!(
            out,
            "the store {} is empty: ingesting the sample fleet in {SAMPLE_FLEET}",
            store.root().display()
        )
        .map_err(io_failure)?;
        let opts = IngestOptions {
            quiet: args.quiet,
            ..IngestOptions::default()
        };
        ingest(
            store,
            &[PathBuf::from(SAMPLE_FLEET)],
            &opts,
            &mut std::io::sink(),
        )?;
    } else if empty {
        return Err(CommandError::Usage(format!(
            "the store {} is empty: ingest data first (mcpops ingest data/fleet)",
            store.root().display()
        )));
    }
    let rule_paths: Vec<PathBuf> = if args.rules.is_empty() && Path::new(SAMPLE_RULES).is_file() {
        vec![PathBuf::from(SAMPLE_RULES)]
    } else {
        args.rules.clone()
    };
    let rules = load_checked_rules(&rule_paths)?;
    let names: Vec<String> = rule_paths.iter().map(|p| p.display().to_string()).collect();
    let p = period(
        store,
        args.range.from_ms,
        args.range.to_ms,
        args.range.since_ms,
        Bounds {
            step: rules.first().map(|r| (r.step_ms(), "`evaluate every`")),
            analysed: true,
        },
    )?;
    let range = crate::report::ReportOptions {
        extent: Some(p.extent),
        ..args.range.clone()
    };
    let bar = crate::progress::steps_bar(4, args.quiet, "report");
    let report = crate::report::build(store, &rules, &names, &range, &bar)
        .map_err(|e| CommandError::Failure(e.to_string()))?;
    crate::report::Progress::step(&bar, "writing");
    let html = crate::report::write(&report, &args.out_dir)
        .map_err(|e| CommandError::Failure(e.to_string()))?;
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
        .filter(|e| match args.fail_on.as_deref() {
            Some("critical") => e.severity == "critical",
            Some(_) => e.severity == "critical" || e.severity == "warning",
            None => false,
        })
        .map(|e| e.alert.as_str())
        .collect();
    if !firing.is_empty() {
        return Err(CommandError::Alerting(format!(
            "{} alert(s) firing at the end of the period: {}",
            firing.len(),
            firing.join(", ")
        )));
    }
    Ok(())
}

/// What a [`period`] must fit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds {
    /// The period is evaluated at this step, and where the step comes from
    /// (`--step`, or the rules' `evaluate every`): the engine's own guard
    /// ([`crate::engine::Grid::checked_range`]) must accept the grid.
    pub step: Option<(i64, &'static str)>,
    /// The period is analysed: its data may span at most
    /// [`crate::analyze::fleet::MAX_BUCKETS`] five-minute buckets.
    pub analysed: bool,
}

/// The period a command works on, and the extent of the data it defaulted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Where the store's data is dense: the first and last sample times the
    /// defaults come from.
    pub extent: (i64, i64),
}

/// The period of `analyze`, `report` and `backtest`: `--to` (default: the
/// last sample where the store's data is dense), `--from` (else `to -
/// since`, else the first such sample). Outlying samples the defaults leave
/// out ([`crate::analyze::period`]) are named in one line on stderr with how
/// to include them. A period that needs more than [`crate::dsl::MAX_STEPS`] steps or more
/// than a year of analysis fails with a usage error (exit 2) before anything
/// is allocated for it.
pub fn period(
    store: &Store,
    from: Option<i64>,
    to: Option<i64>,
    since: Option<i64>,
    bounds: Bounds,
) -> Result<Period, CommandError> {
    let snapshot = store.snapshot()?;
    let segments = &snapshot.manifest().segments;
    let dense = match (crate::analyze::period::dense_period(segments), to) {
        (Some(dense), _) => dense,
        // An empty store needs no default when both ends are given.
        (None, Some(to_ms)) if from.is_some() || since.is_some() => {
            crate::analyze::period::DensePeriod {
                from_ms: to_ms,
                to_ms,
                left_out: Vec::new(),
            }
        }
        (None, _) => return Err(empty_store(store)),
    };
    let to_ms = to.unwrap_or(dense.to_ms);
    let from_ms = from
        .or(since.map(|s| to_ms.saturating_sub(s)))
        .unwrap_or(dense.from_ms);
    let from_given = from.is_some() || since.is_some();
    let left_out: Vec<_> = dense
        .left_out
        .iter()
        .filter(|r| (!from_given && r.to_ms < from_ms) || (to.is_none() && r.from_ms > to_ms))
        .collect();
    if !left_out.is_empty() {
        let samples: u64 = left_out.iter().map(|r| r.rows).sum();
        let mut runs: Vec<String> = left_out
            .iter()
            .take(3)
            .map(|r| {
                let (a, b) = (crate::time::day_of(r.from_ms), crate::time::day_of(r.to_ms));
                if a == b {
                    format!("{} on {a}", r.rows)
                } else {
                    format!("{} from {a} to {b}", r.rows)
                }
            })
            .collect();
        if left_out.len() > 3 {
            runs.push(format!("{} more runs", left_out.len() - 3));
        }
        eprintln!(
            "mcpops: left out {samples} sample(s) far from the rest of the data ({}); give --from/--to to include them",
            runs.join(", ")
        );
    }
    if to_ms >= from_ms {
        if let Some((step, step_from)) = bounds.step {
            crate::engine::Grid::checked_range(from_ms, to_ms, step)
                .map_err(|e| range_error(e, step_from))?;
        }
        if bounds.analysed
            && let Some((a, b)) = crate::analyze::period::extent_within(segments, from_ms, to_ms)
        {
            crate::analyze::fleet::check_span(a, b).map_err(CommandError::Usage)?;
        }
    }
    Ok(Period {
        from_ms,
        to_ms,
        extent: (dense.from_ms, dense.to_ms),
    })
}

fn empty_store(store: &Store) -> CommandError {
    CommandError::Usage(format!(
        "the store {} is empty: ingest data first (mcpops ingest data/fleet)",
        store.root().display()
    ))
}

/// The store's first and last sample times, for commands whose range defaults to all of it.
pub fn store_extent(store: &Store) -> Result<(i64, i64), CommandError> {
    match store.snapshot()?.manifest().extent() {
        Some(extent) => Ok(extent),
        None => Err(CommandError::Usage(format!(
            "the store {} is empty: ingest data first (mcpops ingest data/fleet)",
            store.root().display()
        ))),
    }
}

/// `mcpops detect FILE.csv`: NAB's result format on stdout.
pub fn detect(path: &Path, out: &mut dyn Write) -> Result<(), CommandError> {
    use crate::analyze::detect::DetectError;
    crate::analyze::detect::detect_csv(path, out)
        .map(|_| ())
        .map_err(|e| match e {
            DetectError::Write { source, .. } if output_closed(&source) => {
                CommandError::OutputClosed
            }
            DetectError::Write { .. } => CommandError::Failure(e.to_string()),
            other => CommandError::Input(other.to_string()),
        })
}

/// `mcpops evaluate --labels WINDOWS.json --data DIR`: NAB's three profile scores.
pub fn evaluate(
    labels: &Path,
    data: &Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let report = crate::analyze::nab::evaluate(labels, data)
        .map_err(|e| CommandError::Input(e.to_string()))?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CommandError::Failure(e.to_string()))?;
        writeln!(out, "{text}").map_err(io_failure)
    } else {
        write!(out, "{report}").map_err(io_failure)
    }
}
