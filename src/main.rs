//! The command line: argument parsing only; the work is in `mcpops::commands`.

use clap::{Parser, Subcommand};
use mcpops::commands::{self, CommandError, label_arg, time_arg};
use mcpops::generate::GenerateOptions;
use mcpops::ingest::{Format, IngestOptions};
use mcpops::store::{ExportFormat, Store};
use std::path::PathBuf;
use std::process::ExitCode;

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

fn run(cli: Cli) -> Result<(), CommandError> {
    let store = Store::resolve(cli.store.as_deref());
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
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpops: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
