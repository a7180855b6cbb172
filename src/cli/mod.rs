//! The command line: clap's definitions of every subcommand and flag, and
//! the dispatch to one module per subcommand. Each module runs the library,
//! which returns data, and renders it (tables, CSV, JSON) on stdout.

mod analyze;
mod approve;
mod audit;
mod backtest;
mod check;
mod compact;
mod completions;
mod detect;
pub mod error;
mod export;
mod fmt;
mod generate;
mod info;
mod ingest;
mod labels;
mod metrics;
mod nab;
mod query;
mod repair;
mod report;
mod retain;
mod shared;
mod sync;
mod test;
mod verify;
mod watch;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use error::CliError;
use mcpops::store::Store;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mcpops",
    version,
    about = "Embedded time-series analytics for MCP server operators",
    long_about = "mcpops keeps MCP server metrics as Parquet segments in a local directory, \
                  loads them from Prometheus/OpenMetrics text, CSV, JSON lines and Influx line \
                  protocol, and answers questions about them."
)]
pub struct Cli {
    /// Store: a directory, file://DIR or s3://BUCKET/PREFIX [default: $MCPOPS_STORE, else ./mcpops-store]
    #[arg(long, global = true, value_name = "DIR|URL")]
    store: Option<String>,
    /// S3-compatible server of an s3:// store, e.g. http://127.0.0.1:9000 [default: $AWS_ENDPOINT_URL, else AWS]
    #[arg(long, global = true, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Shard of an s3:// store to write and read (shards/NAME/ under it): one per writer; without it the store reads all its shards as one
    #[arg(long, global = true, value_name = "NAME")]
    shard: Option<String>,
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
    Ingest(IngestArgs),
    /// Write a deterministic sample MCP fleet with injected incidents
    #[command(
        after_help = "Examples:\n  mcpops generate --servers 8 --days 3 --seed 7 --out data/fleet\n  \
        mcpops generate --servers 5 --days 2 --seed 7 --shape prometheus --out data/fleet-prom"
    )]
    Generate(GenerateArgs),
    /// Segments, series, samples, time range and bytes per sample of the store
    #[command(after_help = "Example:\n  mcpops info --store /var/lib/mcpops")]
    Info(InfoArgs),
    /// Stored metrics: type (declared or inferred), unit, series, samples, time range, labels
    #[command(
        after_help = "A histogram or summary family is one row, its _bucket, _sum and \
        _count names its parts.\n\nExamples:\n  mcpops metrics\n  mcpops metrics '^process' --format json"
    )]
    Metrics(MetricsArgs),
    /// Label names of one metric (or of all) with their number of values and top values
    #[command(
        after_help = "Examples:\n  mcpops labels\n  mcpops labels mcp.server.operation.duration --top 10"
    )]
    Labels(LabelsArgs),
    /// Merge each day's small segments and drop duplicate samples (newest write wins)
    #[command(after_help = "Examples:\n  mcpops compact\n  mcpops compact --format json")]
    Compact(CompactArgs),
    /// Make the store TO hold what the store FROM holds, copying only the segments it lacks
    #[command(
        after_help = "FROM and TO are stores as --store names them: a directory, \
        file://DIR or s3://BUCKET/PREFIX (--s3-endpoint applies to either, --shard to TO). Segments are copied \
        as they are and checked against FROM's checksums; TO's other segments are dropped in the \
        same commit.\n\n\
        Examples:\n  mcpops sync ./mcpops-store s3://metrics/fleet\n  \
        mcpops sync s3://metrics/fleet ./copy --format json"
    )]
    Sync(SyncArgs),
    /// Read every segment in full and check it against its checksums and manifest entry
    #[command(
        after_help = "Exits 5 when a segment is damaged or the manifest is lost; \
        `mcpops repair` then sets damaged segments aside.\n\nExample:\n  mcpops verify"
    )]
    Verify(VerifyArgs),
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
    Retain(RetainArgs),
    /// Write stored samples as CSV, JSON lines or Parquet
    #[command(after_help = "Examples:\n  \
        mcpops export --metric process.memory.usage --match 'server=mcp-03' --from 2026-11-17 --to 2026-11-18\n  \
        mcpops export --format parquet --out fleet.parquet")]
    Export(ExportArgs),
    /// Check rule files: syntax and meaning, every error with its position
    #[command(
        after_help = "Examples:\n  mcpops check rules/mcp.rules\n  mcpops check --format json rules/*.rules"
    )]
    Check(CheckArgs),
    /// Evaluate an expression at an instant, or over a range of steps
    #[command(
        after_help = "Examples:\n  mcpops query 'p95(mcp.server.operation.duration[5m]) by (server)'\n  \
        mcpops query 'process.memory.usage' --at 2026-11-18T12:00:00Z --format json\n  \
        mcpops query 'count(mcp.server.operation.duration[1h]) by (server)' --from 2026-11-16 --to 2026-11-17 --step 1h"
    )]
    Query(QueryArgs),
    /// Run the test blocks of rule files (exit 3 when any fails)
    #[command(after_help = "Example:\n  mcpops test rules/mcp.rules rules/examples/*.rules")]
    Test(TestArgs),
    /// Replay rules over stored history: alert timeline and dry-run actions
    #[command(
        after_help = "Example:\n  mcpops backtest --rules rules/mcp.rules --from 2026-11-16 --to 2026-11-19 --out bt/"
    )]
    Backtest(BacktestArgs),
    /// Write report.json, report.md and report.html: the cron job's output
    #[command(
        after_help = "With no arguments, reports on the sample fleet in data/ (ingested into an empty \
                      default store) with rules/mcp.rules, into ./mcpops-report/.\n\n\
                      Examples:\n  mcpops report\n  mcpops report --rules rules/mcp.rules --since 24h --out /var/www/mcp --fail-on critical"
    )]
    Report(ReportArgs),
    /// Bottlenecks, incidents, anomalies, forecasts, maintenance and recommendations
    #[command(
        after_help = "Example:\n  mcpops analyze --rules rules/mcp.rules --format json > analysis.json"
    )]
    Analyze(AnalyzeArgs),
    /// Score every row of a timestamp,value CSV for anomalies (NAB's result format)
    #[command(
        after_help = "Example:\n  mcpops detect tests/data/nab/data/artificialNoAnomaly/art_daily_no_noise.csv"
    )]
    Detect(DetectArgs),
    /// Score the detector on a labelled corpus as NAB does, or cross-validate its tuning
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        mcpops nab score --labels tests/data/nab/labels/combined_windows.json --data tests/data/nab/data\n  \
        mcpops nab cv --labels tests/data/nab/labels/combined_windows.json --data tests/data/nab/data"
    )]
    Nab(NabCommand),
    /// Rewrite rule files in the canonical layout, keeping comments
    #[command(
        after_help = "Examples:\n  mcpops fmt rules/mcp.rules\n  mcpops fmt --check rules/*.rules"
    )]
    Fmt(FmtArgs),
    /// Collect from live MCP servers into the store and serve Prometheus's HTTP API over it
    #[command(
        after_help = "Flags add targets to --config's file and override its values; \
        the store is --store, else the file's `store`, else $MCPOPS_STORE or ./mcpops-store. \
        Exits 0 when stopped by SIGTERM or SIGINT (the store flushed), 2 for a bad config or an \
        address that cannot be bound.\n\n\
        Examples:\n  mcpops watch --store /var/lib/mcpops --scrape http://127.0.0.1:9100/metrics\n  \
        mcpops watch --config watch.toml\n  \
        mcpops watch --probe-cmd 'npx -y @modelcontextprotocol/server-everything' --interval 30s"
    )]
    Watch(WatchArgs),
    /// Approve an action that waits for an approval (a block's `approve within D by "who"`)
    #[command(
        after_help = "ID is the decision's id, as `mcpops audit` lists it; the running \
        `mcpops watch` reads the approval at its next step. Exits 2 when no decision of the \
        journal with that id waits for an approval, or it was approved already.\n\n\
        Example:\n  mcpops approve 3f9a0c1d2e4b5a69 --by alice --store /var/lib/mcpops"
    )]
    Approve(ApproveArgs),
    /// What `mcpops watch` decided and did: the journal as the actions table
    #[command(
        after_help = "The table `backtest --out` writes as actions.parquet, with each \
        action's outcome, exit code, duration and who approved it.\n\n\
        Examples:\n  mcpops audit --store /var/lib/mcpops\n  \
        mcpops audit --format csv > actions.csv\n  mcpops audit --out audit/"
    )]
    Audit(AuditArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:\n  \
        mcpops completions bash > ~/.local/share/bash-completion/completions/mcpops\n  \
        mcpops completions zsh > ~/.zfunc/_mcpops\n  \
        mcpops completions fish > ~/.config/fish/completions/mcpops.fish")]
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per command into a directory
    #[command(after_help = "Examples:\n  mcpops man | man -l -\n  \
        mcpops man --out /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Args)]
struct WatchArgs {
    /// watch.toml: store, listeners, interval, flush thresholds, limits, [[scrape]] and [[probe]] targets
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Scrape this Prometheus text or OpenMetrics endpoint (repeatable)
    #[arg(long, value_name = "URL")]
    scrape: Vec<String>,
    /// Interval of the targets that set none, and of watch's own health [default: 15s]
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Address of the HTTP API, /metrics and OTLP/HTTP [default: 127.0.0.1:9464]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Also receive OTLP/HTTP on this address, e.g. 127.0.0.1:4318
    #[arg(long, value_name = "ADDR")]
    otlp: Option<String>,
    /// Probe an MCP server over stdio: its command line, split as a shell splits words
    /// (no shell runs) (repeatable)
    #[arg(long, value_name = "CMD")]
    probe_cmd: Vec<String>,
    /// Probe an MCP server over Streamable HTTP (repeatable)
    #[arg(long, value_name = "URL")]
    probe_url: Vec<String>,
    /// Evaluate this rule file live: alerts, records, remediations (repeatable)
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Run actions (auto: as each block's own mode says) or journal them only (dry-run)
    /// [default: auto]
    #[arg(long, value_enum)]
    mode: Option<WatchMode>,
    /// Send firing alerts to this Alertmanager, e.g. http://127.0.0.1:9093 (repeatable)
    #[arg(long, value_name = "URL")]
    alertmanager: Vec<String>,
    /// Evaluate steps this far behind the clock, for late samples
    /// [default: the longest interval plus 5s]
    #[arg(long, value_name = "DURATION")]
    offset: Option<String>,
}

/// `mcpops watch --mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WatchMode {
    /// Actions run, unless their block says `mode dry-run`
    Auto,
    /// Every action is journaled and none runs
    DryRun,
}

#[derive(Args)]
struct ApproveArgs {
    /// The id of the decision awaiting approval (`mcpops audit` lists it)
    id: String,
    /// Who approves [default: $USER, else $LOGNAME]
    #[arg(long, value_name = "WHO")]
    by: Option<String>,
}

#[derive(Args)]
struct AuditArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = TableCsvJson::Table)]
    format: TableCsvJson,
    /// Also write actions.parquet into this directory
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ManArgs {
    /// Write mcpops.1 and one mcpops-COMMAND.1 per command into this directory
    /// [default: print mcpops.1 on stdout]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct IngestArgs {
    /// Files or directories; `-` reads stdin (then --format is required)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Input format [default: from the extension]
    #[arg(long, value_enum, ignore_case = true)]
    format: Option<IngestFormat>,
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
    /// What to print when done: a line of text, or a JSON summary object
    /// (`--format` names the input's format)
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    output: TextOrJson,
}

#[derive(Args)]
struct SyncArgs {
    /// The store to copy from
    #[arg(value_name = "FROM")]
    from: String,
    /// The store to make hold the same
    #[arg(value_name = "TO")]
    to: String,
    /// Output format: a line of text, or a JSON summary object
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
struct CompactArgs {
    /// Output format: a line of text, or a JSON summary object
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
struct GenerateArgs {
    /// Number of MCP servers in the fleet
    #[arg(long, default_value_t = 8, value_name = "N")]
    servers: usize,
    /// Days of data per server
    #[arg(long, default_value_t = 3, value_name = "N")]
    days: u32,
    /// Seed of the generator: the same seed writes the same files
    #[arg(long, default_value_t = 7, value_name = "N")]
    seed: u64,
    /// Directory to write the fleet and its ground truth (incidents.json) into
    #[arg(long, value_name = "DIR")]
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
    /// What to write: one JSON line per call and per-minute gauges (events), or what
    /// Prometheus scrapes from the same fleet: histograms, counters, `instance`/`job` (prometheus)
    #[arg(long, value_enum, default_value_t = GenerateShape::Events)]
    shape: GenerateShape,
    /// Time between two scrapes of a target, for --shape prometheus [default: 60s]
    #[arg(long, value_name = "DURATION")]
    scrape_interval: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenerateShape {
    Events,
    Prometheus,
}

#[derive(Args)]
struct InfoArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
}

#[derive(Args)]
struct MetricsArgs {
    /// Only metrics whose name (or family name) this regular expression matches
    #[arg(value_name = "MATCH")]
    pattern: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
}

#[derive(Args)]
struct LabelsArgs {
    /// One metric's labels [default: every series of the store]
    metric: Option<String>,
    /// How many of each label's values to show, most series first
    #[arg(long, default_value_t = 5, value_name = "N")]
    top: usize,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
}

#[derive(Args)]
struct VerifyArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
}

#[derive(Args)]
struct RetainArgs {
    /// Drop the days that end at or before this TIME
    #[arg(long, value_name = "TIME")]
    before: String,
    /// Output format: a line of text, or a JSON summary object
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
struct ExportArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    format: ExportFormat,
    /// Only this metric [default: every metric]
    #[arg(long)]
    metric: Option<String>,
    /// Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable)
    #[arg(long = "match", value_name = "MATCHER")]
    matchers: Vec<String>,
    /// Only samples at or after this TIME
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only samples at or before this TIME
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Output file [default: stdout]
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Rule files to check
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
struct QueryArgs {
    /// An expression of the rule language, e.g. `p95(mcp.server.operation.duration[5m]) by (server)`
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
    /// Step of a range evaluation (a DURATION)
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    step: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableCsvJson::Table)]
    format: TableCsvJson,
    /// Print the plan (what is read, the lookback, shared calls, how each
    /// node is computed) instead of evaluating
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    limit: SamplesLimit,
}

#[derive(Args)]
struct TestArgs {
    /// Rule files whose `test` blocks to run
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

#[derive(Args)]
struct BacktestArgs {
    /// Rule files to replay (all their alerts, records and policies)
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Start [default: the first whole step at or after the first sample where the data is dense]
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End [default: the last sample where the data is dense]
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Evaluation step [default: the rules' `evaluate every`, else 1m]
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableCsvJson::Table)]
    format: TableCsvJson,
    /// Also write alerts.parquet and actions.parquet into this directory
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the output of record rules back to the store
    #[arg(long)]
    record: bool,
    #[command(flatten)]
    limit: SamplesLimit,
}

#[derive(Args)]
struct ReportArgs {
    /// Rule files to backtest over the period [default: rules/mcp.rules when present]
    #[arg(long, num_args = 1.., value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Start of the analysis [default: the first sample where the data is dense; the backtest from the next whole step]
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    from: Option<String>,
    /// End [default: now when --from or --since is given, else the last sample where the data is dense]
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The DURATION before --to (default: now), e.g. 24h
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Count --since back from the store's last sample instead of from now
    #[arg(long, requires = "since", conflicts_with = "to")]
    since_last_sample: bool,
    /// Directory to write into
    #[arg(long, value_name = "DIR", default_value = "mcpops-report")]
    out: PathBuf,
    /// Also write a dated copy into DIR/archive/YYYY-MM-DDTHHMMZ/
    #[arg(long)]
    archive: bool,
    /// Exit 4 when the verdict is this severe (critical, or warning and worse)
    #[arg(long, value_name = "SEVERITY", value_enum)]
    fail_on: Option<FailOn>,
    /// The label that names servers [default: found in the data, as analyze does]
    #[arg(long, value_name = "LABEL")]
    server_label: Option<String>,
    /// What to print: the summary lines as text, or one JSON object (verdict,
    /// summary, files written, exit code and its meaning)
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
    #[command(flatten)]
    limit: SamplesLimit,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Start [default: the first sample where the data is dense]
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End [default: the last sample where the data is dense]
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
    /// Rule files whose maintenance windows schedule the maintenance list
    #[arg(long, num_args = 1.., value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// The label that names servers [default: the first of server, instance, service.instance.id, service.name, host.name (or their underscore forms) the data carries]
    #[arg(long, value_name = "LABEL")]
    server_label: Option<String>,
}

#[derive(Args)]
struct DetectArgs {
    /// A CSV file with a `timestamp,value` header, as NAB's data files
    #[arg(value_name = "FILE.csv")]
    file: PathBuf,
}

#[derive(Subcommand)]
enum NabCommand {
    /// Run the default detector over a labelled corpus and print NAB's profile scores
    #[command(
        after_help = "Each profile's threshold is the one that maximises its total over the whole \
        corpus; the score is normalised so that detecting nothing scores 0 and detecting each \
        window's first row scores 100.\n\n\
        Example:\n  mcpops nab score --labels tests/data/nab/labels/combined_windows.json --data tests/data/nab/data"
    )]
    Score(NabArgs),
    /// Leave-one-category-out cross-validation: each category scored with what the others tuned
    #[command(
        after_help = "A category is the first path component of each labels key. For each \
        category, the detector configuration (out of a small declared search space) and each \
        profile's threshold are chosen on the other categories only; the held-out category is \
        then scored with exactly those, every file online. A category without windows has no \
        normalised score (NAB's normalisation is 0/0 there): its row shows its false-positive \
        rows and raw score (0 at best), and the mean is over the categories with windows. \
        In-sample tunes on every category at once.\n\n\
        Example:\n  mcpops nab cv --labels tests/data/nab/labels/combined_windows.json --data tests/data/nab/data"
    )]
    Cv(NabArgs),
}

#[derive(Args)]
struct NabArgs {
    /// NAB's anomaly windows: a JSON object from each data file to its [start, end] windows
    #[arg(long, value_name = "WINDOWS.json")]
    labels: PathBuf,
    /// The corpus directory the windows' file paths are relative to
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    format: TableOrJson,
}

#[derive(Args)]
struct FmtArgs {
    /// Rule files to rewrite in place
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Only list the files that would change (exit 1 if any)
    #[arg(long)]
    check: bool,
}

/// `--format` of info, verify, analyze and nab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TableOrJson {
    Table,
    Json,
}

/// `--format` of check, test, compact, retain and report; `ingest --output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

/// `--format` of query and backtest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TableCsvJson {
    Table,
    Csv,
    Json,
}

/// `export --format`: the formats the store writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Csv,
    #[value(alias = "ndjson", alias = "json")]
    Jsonl,
    Parquet,
}

impl From<ExportFormat> for mcpops::store::ExportFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => Self::Csv,
            ExportFormat::Jsonl => Self::JsonLines,
            ExportFormat::Parquet => Self::Parquet,
        }
    }
}

/// `ingest --format`: the formats ingest reads, with the short names it
/// has always taken (`prom`, `om`, `ndjson`, `json`, `lp`), in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum IngestFormat {
    #[value(alias = "prom")]
    Prometheus,
    #[value(alias = "om")]
    Openmetrics,
    Csv,
    #[value(alias = "ndjson", alias = "json")]
    Jsonl,
    #[value(alias = "lp")]
    Influx,
    Parquet,
    Otlp,
}

impl From<IngestFormat> for mcpops::ingest::Format {
    fn from(f: IngestFormat) -> Self {
        match f {
            IngestFormat::Prometheus => Self::Prometheus,
            IngestFormat::Openmetrics => Self::OpenMetrics,
            IngestFormat::Csv => Self::Csv,
            IngestFormat::Jsonl => Self::JsonLines,
            IngestFormat::Influx => Self::Influx,
            IngestFormat::Parquet => Self::Parquet,
            IngestFormat::Otlp => Self::Otlp,
        }
    }
}

/// `report --fail-on`: the least severe alert that pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Critical,
    Warning,
}

/// `--max-samples`, for the commands that evaluate rules or expressions.
#[derive(Args)]
struct SamplesLimit {
    /// The most samples one expression may hold at once (read by its windows,
    /// plus its results: series x steps); more fails with exit 2
    #[arg(long, value_name = "N", env = "MCPOPS_MAX_SAMPLES",
          default_value_t = mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_samples: u64,
}

/// The top-level help's listing of subcommands, by what they work on
/// (clap lists subcommands in one flat list; this replaces it). Every
/// subcommand is in exactly one group: a test checks it.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "Store",
        &[
            "ingest", "info", "metrics", "labels", "export", "compact", "retain", "verify",
            "repair", "sync",
        ],
    ),
    ("Rules", &["check", "fmt", "test", "backtest", "query"]),
    ("Analysis", &["analyze", "detect", "nab"]),
    ("Reports", &["report"]),
    ("Live", &["watch", "approve", "audit"]),
    ("Setup", &["generate", "completions", "man", "help"]),
];

/// The accepted time and duration formats, stated once (here, in the
/// top-level help); subcommands with TIME or DURATION flags point to it.
const TIME_NOTE: &str = "\
TIME (--from, --to, --at, --before, --start): RFC 3339 (2026-11-20T14:00:00Z),
  `YYYY-MM-DD HH:MM:SS` (UTC), `YYYY-MM-DD`, epoch seconds or milliseconds (told
  apart by magnitude), `now`, or `now-DURATION` (now-24h).
DURATION (--step, --since, --scrape-interval, --interval): 250ms, 15s, 5m, 1h30m, 2d, 1w.

`mcpops help COMMAND` shows a command's options and examples.";

/// The pointer from a subcommand's help to [`TIME_NOTE`].
const TIME_REF: &str = "TIME and DURATION: the formats `mcpops --help` lists.";

/// The whole command line as clap sees it, with the grouped listing and the
/// time formats in the top-level help: for parsing, completions and man pages.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    let width = cmd
        .get_subcommands()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut listing = String::new();
    for (group, names) in GROUPS {
        listing.push_str(&format!("{group} commands:\n"));
        for name in *names {
            let about = cmd
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            listing.push_str(&format!("  {name:<width$}  {about}\n"));
        }
        listing.push('\n');
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |sub| {
            let timed = sub.get_arguments().any(|a| {
                a.get_value_names()
                    .is_some_and(|v| v.iter().any(|n| n == "TIME" || n == "DURATION"))
            });
            if !timed {
                return sub;
            }
            let after = match sub.get_after_help() {
                Some(text) => format!("{TIME_REF}\n\n{text}"),
                None => TIME_REF.to_string(),
            };
            sub.after_help(after)
        });
    }
    cmd.help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{listing}Options:\n{{options}}{{after-help}}"
    ))
    .after_help(TIME_NOTE)
}

/// What every subcommand may need besides its own flags.
struct Context {
    /// `--store` as given (`watch` ranks it above its config file's).
    store_flag: Option<String>,
    s3_endpoint: Option<String>,
    shard: Option<String>,
    /// The store, once a subcommand asks for it (those that need none do
    /// not fail on a bad `$MCPOPS_STORE`).
    store: std::cell::OnceCell<Store>,
    /// No `--store` (nor `$MCPOPS_STORE`): `report` may fill an empty
    /// default store with the sample fleet.
    sample_fallback: bool,
    quiet: bool,
}

impl Context {
    /// The store `--store` (or `$MCPOPS_STORE`, or the default) names.
    fn store(&self) -> Result<&Store, CliError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let mut store = Store::resolve(self.store_flag.as_deref(), self.s3_endpoint.as_deref())?;
        if let Some(shard) = &self.shard {
            store = store.shard(shard)?;
        }
        Ok(self.store.get_or_init(|| store))
    }
}

/// Runs the subcommand, its output on stdout.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context {
        store_flag: cli.store.clone(),
        s3_endpoint: cli.s3_endpoint.clone(),
        shard: cli.shard.clone(),
        store: std::cell::OnceCell::new(),
        sample_fallback: cli.store.is_none() && std::env::var_os("MCPOPS_STORE").is_none(),
        quiet: cli.quiet,
    };
    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    match cli.command {
        Command::Ingest(args) => ingest::run(&ctx, args, out),
        Command::Generate(args) => generate::run(args, out),
        Command::Info(args) => info::run(&ctx, args, out),
        Command::Metrics(args) => metrics::run(&ctx, args, out),
        Command::Labels(args) => labels::run(&ctx, args, out),
        Command::Compact(args) => compact::run(&ctx, args, out),
        Command::Sync(args) => sync::run(&ctx, args, out),
        Command::Verify(args) => verify::run(&ctx, args, out),
        Command::Repair => repair::run(&ctx, out),
        Command::Retain(args) => retain::run(&ctx, args, out),
        Command::Export(args) => export::run(&ctx, args, out),
        Command::Check(args) => check::run(&ctx, args, out),
        Command::Fmt(args) => fmt::run(args, out),
        Command::Report(args) => report::run(&ctx, args, out),
        Command::Analyze(args) => analyze::run(&ctx, args, out),
        Command::Detect(args) => detect::run(args, out),
        Command::Nab(command) => nab::run(command, out),
        Command::Query(args) => query::run(&ctx, args, out),
        Command::Test(args) => test::run(args, out),
        Command::Backtest(args) => backtest::run(&ctx, args, out),
        Command::Watch(args) => watch::run(&ctx, args),
        Command::Approve(args) => approve::run(&ctx, args, out),
        Command::Audit(args) => audit::run(&ctx, args, out),
        Command::Completions(args) => completions::completions(args, out),
        Command::Man(args) => completions::man(args, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument and subcommand, at any depth, says what it is in
    /// `--help`: names the undescribed ones.
    #[test]
    fn every_argument_and_subcommand_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "mcpops", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }

    /// The grouped listing names every subcommand once, and nothing else.
    #[test]
    fn groups_list_every_subcommand_once() {
        let cmd = command();
        let mut listed: Vec<&str> = GROUPS.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        listed.sort_unstable();
        let mut actual: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        actual.sort_unstable();
        assert_eq!(listed, actual);
    }

    /// The help text checks clap's own rules (conflicting names, bad
    /// defaults) only when built: build it.
    #[test]
    fn command_line_is_consistent() {
        command().debug_assert();
    }
}
