//! The command line: argument parsing only; the work is in `mcpops::commands`.

mod memory;

use clap::{Parser, Subcommand};
use mcpops::analyze::analysis::AnalyzeOptions;
use mcpops::commands::{self, CommandError, QueryTime, duration_arg, label_arg, time_arg};
use mcpops::engine::query::OutputFormat;
use mcpops::generate::GenerateOptions;
use mcpops::ingest::{Format, IngestOptions};
use mcpops::report::ReportOptions;
use mcpops::store::{ExportFormat, Store};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mcpops",
    version,
    about = "Embedded time-series analytics for MCP server operators",
    long_about = "mcpops keeps MCP server metrics as Parquet segments in a local directory, \
                  loads them from Prometheus/OpenMetrics text, CSV, JSON lines and Influx line \
                  protocol, and answers questions about them."
)]
struct Cli {
    /// Store directory [default: $MCPOPS_STORE, else ./mcpops-store]
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    /// No progress bars (they are also hidden when stderr is not a terminal)
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load metric files (or directories of them) into the store, in one commit
    #[command(after_help = "Examples:\n  mcpops ingest data/fleet\n  \
        mcpops ingest scrape.prom --at 2026-11-20T14:00:00Z\n  \
        mcpops ingest nab.csv --metric cpu --label host=a\n  \
        gzip -dc calls.jsonl.gz | mcpops ingest - --format jsonl")]
    Ingest {
        /// Files or directories; `-` reads stdin (then --format is required)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// prometheus | openmetrics | csv | jsonl | influx [default: from the extension]
        #[arg(long)]
        format: Option<Format>,
        /// Timestamp for samples that carry none
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Metric name for a wide CSV's single value column (NAB's timestamp,value)
        #[arg(long)]
        metric: Option<String>,
        /// Extra label for every sample, as name=value (repeatable)
        #[arg(long, value_name = "NAME=VALUE")]
        label: Vec<String>,
        /// Skip lines that do not parse, report how many and the first few
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Write a deterministic sample MCP fleet with injected incidents
    #[command(
        after_help = "Example:\n  mcpops generate --servers 8 --days 3 --seed 7 --out data/fleet"
    )]
    Generate {
        #[arg(long, default_value_t = 8)]
        servers: usize,
        #[arg(long, default_value_t = 3)]
        days: u32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// First timestamp [default: 2026-11-16T00:00:00Z]
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// Mean MCP calls per second per server
        #[arg(long)]
        rate: Option<f64>,
        /// Write plain text instead of .gz files
        #[arg(long)]
        no_gzip: bool,
    },
    /// Segments, series, samples, time range and bytes per sample of the store
    #[command(after_help = "Example:\n  mcpops info --store /var/lib/mcpops")]
    Info {
        /// table | json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Merge each day's small segments and drop duplicate samples (newest write wins)
    #[command(after_help = "Example:\n  mcpops compact")]
    Compact,
    /// Read every segment in full and check it against its checksums and manifest entry
    #[command(
        after_help = "Exits 5 when a segment is damaged or the manifest is lost; \
        `mcpops repair` then sets damaged segments aside.\n\nExample:\n  mcpops verify"
    )]
    Verify {
        /// table | json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Make a damaged store readable: move damaged segments to quarantine/, drop entries of
    /// missing files, rebuild a lost or unreadable manifest from the segments
    #[command(after_help = "Nothing is deleted: damaged segments are moved to \
        STORE/quarantine/, an unreadable manifest is kept beside the new one.\n\n\
        Example:\n  mcpops verify || mcpops repair")]
    Repair,
    /// Drop whole days that end at or before a time
    #[command(
        after_help = "Examples:\n  mcpops retain --before 2026-11-01\n  mcpops retain --before now-30d"
    )]
    Retain {
        #[arg(long, value_name = "TIME")]
        before: String,
    },
    /// Write stored samples as CSV, JSON lines or Parquet
    #[command(after_help = "Examples:\n  \
        mcpops export --metric process.memory.usage --match 'server=mcp-03' --from 2026-11-17 --to 2026-11-18\n  \
        mcpops export --format parquet --out fleet.parquet")]
    Export {
        /// csv | jsonl | parquet
        #[arg(long, default_value = "csv")]
        format: ExportFormat,
        #[arg(long)]
        metric: Option<String>,
        /// Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable)
        #[arg(long = "match", value_name = "MATCHER")]
        matchers: Vec<String>,
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Output file [default: stdout]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check rule files: syntax and meaning, every error with its position
    #[command(
        after_help = "Examples:\n  mcpops check rules/mcp.rules\n  mcpops check --format json rules/*.rules"
    )]
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// text | json
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Evaluate an expression at an instant, or over a range of steps
    #[command(
        after_help = "Examples:\n  mcpops query 'p95(mcp.server.operation.duration[5m]) by (server)'\n  \
        mcpops query 'process.memory.usage' --at 2026-11-18T12:00:00Z --format json\n  \
        mcpops query 'count(mcp.server.operation.duration[1h]) by (server)' --from 2026-11-16 --to 2026-11-17 --step 1h"
    )]
    Query {
        expr: String,
        /// Evaluate at this instant [default: the store's last sample]
        #[arg(long, value_name = "TIME", conflicts_with_all = ["from", "to"])]
        at: Option<String>,
        /// Start of a range evaluation
        #[arg(long, value_name = "TIME", requires = "to")]
        from: Option<String>,
        /// End of a range evaluation
        #[arg(long, value_name = "TIME", requires = "from")]
        to: Option<String>,
        /// Step of a range evaluation
        #[arg(long, default_value = "1m")]
        step: String,
        /// table | csv | json
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        limit: SamplesLimit,
    },
    /// Run the test blocks of rule files (exit 3 when any fails)
    #[command(after_help = "Example:\n  mcpops test rules/mcp.rules rules/examples/*.rules")]
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// text | json
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Replay rules over stored history: alert timeline and dry-run actions
    #[command(
        after_help = "Example:\n  mcpops backtest --rules rules/mcp.rules --from 2026-11-16 --to 2026-11-19 --out bt/"
    )]
    Backtest {
        #[arg(long, required = true, num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Start [default: the first whole step at or after the first sample where the data is dense]
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End [default: the last sample where the data is dense]
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Evaluation step [default: the rules' `evaluate every`, else 1m]
        #[arg(long)]
        step: Option<String>,
        /// table | csv | json
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Also write alerts.parquet and actions.parquet into this directory
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write the output of record rules back to the store
        #[arg(long)]
        record: bool,
        #[command(flatten)]
        limit: SamplesLimit,
    },
    /// Write report.json, report.md and report.html: the cron job's output
    #[command(
        after_help = "With no arguments, reports on the sample fleet in data/ (ingested into an empty \
                      default store) with rules/mcp.rules, into ./mcpops-report/.\n\n\
                      Examples:\n  mcpops report\n  mcpops report --rules rules/mcp.rules --since 24h --out /var/www/mcp --fail-on critical"
    )]
    Report {
        /// Rule files to backtest over the period [default: rules/mcp.rules when present]
        #[arg(long, num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Start of the analysis [default: the first sample where the data is dense; the backtest from the next whole step]
        #[arg(long, value_name = "TIME", conflicts_with = "since")]
        from: Option<String>,
        /// End [default: the last sample where the data is dense]
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// The last DURATION of data, e.g. 24h
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Directory to write into
        #[arg(long, value_name = "DIR", default_value = "mcpops-report")]
        out: PathBuf,
        /// Exit 4 when an alert this severe (critical, or warning) is firing at the end
        #[arg(long, value_name = "SEVERITY")]
        fail_on: Option<String>,
        #[command(flatten)]
        limit: SamplesLimit,
    },
    /// Bottlenecks, incidents, anomalies, forecasts, maintenance and recommendations
    #[command(
        after_help = "Example:\n  mcpops analyze --rules rules/mcp.rules --format json > analysis.json"
    )]
    Analyze {
        /// Start [default: the first sample where the data is dense]
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End [default: the last sample where the data is dense]
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// table | json
        #[arg(long, default_value = "table")]
        format: String,
        /// Rule files whose maintenance windows schedule the maintenance list
        #[arg(long, num_args = 1..)]
        rules: Vec<PathBuf>,
    },
    /// Score every row of a timestamp,value CSV for anomalies (NAB's result format)
    #[command(
        after_help = "Example:\n  mcpops detect ../shared/data/nab/data/artificialNoAnomaly/art_daily_no_noise.csv"
    )]
    Detect { file: PathBuf },
    /// Run the detector over a labelled corpus and print NAB's profile scores
    #[command(
        after_help = "Example:\n  mcpops evaluate --labels ../shared/data/nab/labels/combined_windows.json --data ../shared/data/nab/data"
    )]
    Evaluate {
        #[arg(long, value_name = "WINDOWS.json")]
        labels: PathBuf,
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// table | json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Rewrite rule files in the canonical layout, keeping comments
    #[command(
        after_help = "Examples:\n  mcpops fmt rules/mcp.rules\n  mcpops fmt --check rules/*.rules"
    )]
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only list the files that would change (exit 1 if any)
        #[arg(long)]
        check: bool,
    },
}

/// `--max-samples`, for the commands that evaluate rules or expressions.
#[derive(clap::Args)]
struct SamplesLimit {
    /// The most samples one expression may hold at once (read by its windows,
    /// plus its results: series x steps); more fails with exit 2
    #[arg(long, value_name = "N", env = "MCPOPS_MAX_SAMPLES",
          default_value_t = mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_samples: u64,
}

impl SamplesLimit {
    fn apply(&self) {
        mcpops::engine::budget::set_max_samples(self.max_samples);
    }
}

fn run(cli: Cli) -> Result<(), CommandError> {
    let store = Store::resolve(cli.store.as_deref());
    // No --store (nor $MCPOPS_STORE): `report` may fill an empty default store with the sample fleet.
    let sample_fallback = cli.store.is_none() && std::env::var_os("MCPOPS_STORE").is_none();
    let cli_quiet = cli.quiet;
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Ingest {
            paths,
            format,
            at,
            metric,
            label,
            skip_invalid,
        } => {
            let opts = IngestOptions {
                format,
                at_ms: at.map(|t| time_arg("--at", &t)).transpose()?,
                metric,
                labels: label
                    .iter()
                    .map(|l| label_arg(l))
                    .collect::<Result<_, _>>()?,
                skip_invalid,
                quiet: cli.quiet,
            };
            commands::ingest(&store, &paths, &opts, &mut stdout)
        }
        Command::Generate {
            servers,
            days,
            seed,
            out,
            start,
            rate,
            no_gzip,
        } => {
            let mut opts = GenerateOptions {
                servers,
                days,
                seed,
                out,
                gzip: !no_gzip,
                ..GenerateOptions::default()
            };
            if let Some(t) = start {
                opts.start_ms = time_arg("--start", &t)?;
            }
            if let Some(r) = rate {
                opts.calls_per_second = r;
            }
            commands::generate_fleet(&opts, &mut stdout)
        }
        Command::Info { format } => commands::info(&store, format == "json", &mut stdout),
        Command::Compact => commands::compact(&store, &mut stdout),
        Command::Verify { format } => commands::verify(&store, format == "json", &mut stdout),
        Command::Repair => commands::repair(&store, &mut stdout),
        Command::Retain { before } => {
            commands::retain(&store, time_arg("--before", &before)?, &mut stdout)
        }
        Command::Export {
            format,
            metric,
            matchers,
            from,
            to,
            out,
        } => {
            let req = commands::scan_request(metric, &matchers, from.as_deref(), to.as_deref())?;
            commands::export(&store, &req, format, out.as_deref(), &mut stdout)
        }
        Command::Check { files, format } => match format.as_str() {
            "text" | "json" => commands::check(&files, format == "json", &mut stdout),
            other => Err(CommandError::Usage(format!(
                "--format {other}: expected text or json"
            ))),
        },
        Command::Fmt { files, check } => commands::fmt(&files, check, &mut stdout),
        Command::Report {
            rules,
            from,
            to,
            since,
            out,
            fail_on,
            limit,
        } => {
            limit.apply();
            let args = commands::ReportArgs {
                rules,
                range: ReportOptions {
                    from_ms: from.map(|t| time_arg("--from", &t)).transpose()?,
                    to_ms: to.map(|t| time_arg("--to", &t)).transpose()?,
                    since_ms: since.map(|d| duration_arg("--since", &d)).transpose()?,
                    extent: None,
                },
                out_dir: out,
                fail_on,
                sample_fallback,
                quiet: cli_quiet,
            };
            commands::report(&store, &args, &mut stdout)
        }
        Command::Analyze {
            from,
            to,
            format,
            rules,
        } => {
            let opts = AnalyzeOptions {
                from_ms: from.map(|t| time_arg("--from", &t)).transpose()?,
                to_ms: to.map(|t| time_arg("--to", &t)).transpose()?,
            };
            match format.as_str() {
                "table" | "json" => {
                    commands::analyze(&store, &rules, &opts, format == "json", &mut stdout)
                }
                other => Err(CommandError::Usage(format!(
                    "--format {other}: expected table or json"
                ))),
            }
        }
        Command::Detect { file } => commands::detect(&file, &mut stdout),
        Command::Evaluate {
            labels,
            data,
            format,
        } => commands::evaluate(&labels, &data, format == "json", &mut stdout),
        Command::Query {
            expr,
            at,
            from,
            to,
            step,
            format,
            limit,
        } => {
            limit.apply();
            let when = match (at, from, to) {
                (Some(at), _, _) => QueryTime::At(time_arg("--at", &at)?),
                (None, Some(from), Some(to)) => QueryTime::Range {
                    from: time_arg("--from", &from)?,
                    to: time_arg("--to", &to)?,
                    step: duration_arg("--step", &step)?,
                },
                _ => QueryTime::At(commands::store_extent(&store)?.1),
            };
            commands::query(&store, &expr, when, format, &mut stdout)
        }
        Command::Test { files, format } => match format.as_str() {
            "text" | "json" => commands::test(&files, format == "json", &mut stdout),
            other => Err(CommandError::Usage(format!(
                "--format {other}: expected text or json"
            ))),
        },
        Command::Backtest {
            rules,
            from,
            to,
            step,
            format,
            out,
            record,
            limit,
        } => {
            limit.apply();
            let args = commands::BacktestArgs {
                from_ms: from.map(|t| time_arg("--from", &t)).transpose()?,
                to_ms: to.map(|t| time_arg("--to", &t)).transpose()?,
                step_ms: step.map(|s| duration_arg("--step", &s)).transpose()?,
                record,
            };
            commands::backtest(&store, &rules, &args, format, out.as_deref(), &mut stdout)
        }
    }
}

fn main() -> ExitCode {
    memory::tune_allocator();
    match run(Cli::parse()) {
        Ok(()) | Err(CommandError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpops: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
