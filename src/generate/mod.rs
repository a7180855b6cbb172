//! `mcpops generate`: a deterministic synthetic MCP fleet with injected
//! incidents and their ground truth.
//!
//! [`generate`] simulates the fleet once and writes it in one of two shapes
//! ([`Shape`]). The events shape writes, for each server, its calls as JSON
//! lines (`calls/<server>.jsonl[.gz]`) and its gauges as OpenMetrics text,
//! one sample per minute (`metrics/<server>.om[.gz]`). The Prometheus shape
//! writes what a Prometheus server scraping the same servers would hold: per
//! server one OpenMetrics file of cumulative histograms and counters that
//! reset at restarts, process and node_exporter gauges, every sample at a
//! scrape time (`prom.rs`). Both then write `incidents.json` (the injected
//! incidents, read back with [`load_incidents`]) and a `README.md` saying
//! which command made them. The same options always give byte-identical
//! files: the generator and its distributions are our own (a seeded PCG-64),
//! not a library's that could change between versions.

mod plan;
mod prom;
mod rng;
mod sim;
mod write;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// 2026-11-16T00:00:00Z, a Monday: the default start, so runs are reproducible.
pub const DEFAULT_START_MS: i64 = 1_794_787_200_000;
/// Default mean call rate per server (calls per second, over the day).
pub const DEFAULT_CALLS_PER_SECOND: f64 = 0.17;
/// Default scrape interval of the Prometheus shape, ms.
pub const DEFAULT_SCRAPE_INTERVAL_MS: i64 = 60_000;

/// The form the simulated fleet is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// One JSON line per MCP call and per-minute OpenMetrics gauges under
    /// OpenTelemetry's dotted names.
    #[default]
    Events,
    /// What Prometheus scrapes from servers built on the official SDKs with
    /// OpenTelemetry's Prometheus exporter, plus node_exporter: cumulative
    /// histograms and counters, `instance` and `job` labels.
    Prometheus,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    pub servers: usize,
    pub days: u32,
    pub seed: u64,
    pub out: PathBuf,
    /// Start of the data, ms UTC (default [`DEFAULT_START_MS`]).
    pub start_ms: i64,
    /// Mean call rate per server over the day, calls per second (default
    /// [`DEFAULT_CALLS_PER_SECOND`]); the quietest hours run at about 2/3 of it.
    pub calls_per_second: f64,
    /// Gzip the calls and metrics files (`.jsonl.gz`, `.om.gz`).
    pub gzip: bool,
    /// Which files to write for the simulated fleet (default [`Shape::Events`]).
    pub shape: Shape,
    /// Prometheus shape: time between two scrapes of a target, ms (default
    /// [`DEFAULT_SCRAPE_INTERVAL_MS`]).
    pub scrape_interval_ms: i64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            servers: 8,
            days: 3,
            seed: 7,
            out: PathBuf::from("fleet"),
            start_ms: DEFAULT_START_MS,
            calls_per_second: DEFAULT_CALLS_PER_SECOND,
            gzip: true,
            shape: Shape::Events,
            scrape_interval_ms: DEFAULT_SCRAPE_INTERVAL_MS,
        }
    }
}

impl GenerateOptions {
    /// The `mcpops generate` command line that makes these options, defaults left out.
    pub fn command_line(&self) -> String {
        let mut cmd = format!(
            "mcpops generate --servers {} --days {} --seed {} --out {}",
            self.servers,
            self.days,
            self.seed,
            self.out.display()
        );
        if self.start_ms != DEFAULT_START_MS {
            cmd.push_str(&format!(
                " --start {}",
                crate::time::format_ms(self.start_ms)
            ));
        }
        if self.calls_per_second != DEFAULT_CALLS_PER_SECOND {
            cmd.push_str(&format!(" --rate {}", self.calls_per_second));
        }
        if !self.gzip {
            cmd.push_str(" --no-gzip");
        }
        if self.shape == Shape::Prometheus {
            cmd.push_str(" --shape prometheus");
        }
        if self.scrape_interval_ms != DEFAULT_SCRAPE_INTERVAL_MS {
            cmd.push_str(&format!(
                " --scrape-interval {}",
                crate::time::format_duration_ms(self.scrape_interval_ms)
            ));
        }
        cmd
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSummary {
    /// Every file written, in a stable order: calls and metrics per server,
    /// then `incidents.json` and `README.md`.
    pub files: Vec<PathBuf>,
    /// MCP calls written, over all servers.
    pub calls: u64,
    /// Samples written to the metrics files, over all servers and metrics:
    /// the gauges of the events shape, every sample of the Prometheus shape.
    pub gauge_samples: u64,
    /// The injected incidents, as in `incidents.json`.
    pub incidents: Vec<Incident>,
}

/// The kinds of incident the generator injects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Memory grows linearly to the limit, then the process restarts.
    MemoryLeak,
    /// One tool's latency steps up 2-3x after a deploy and stays there.
    LatencyRegression,
    /// 20-40% errors on one tool for 15-45 minutes.
    ErrorBurst,
    /// Free disk falls steadily towards zero, 30-40 hours after the data ends.
    DiskFill,
    /// A 3-4x load surge drives the server past the knee where latency climbs.
    SaturationKnee,
}

/// One injected incident: the ground truth detectors are scored against.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Incident {
    pub kind: IncidentKind,
    pub server: String,
    /// RFC 3339, as `start_ms`.
    pub start: String,
    /// RFC 3339, as `end_ms`: the restart for a leak, the end of the data for a
    /// regression, the projected exhaustion (after the data) for a disk fill.
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The tool concerned, for a latency regression or an error burst.
    #[serde(default)]
    pub tool: Option<String>,
    /// The series where the incident shows most directly.
    pub metric: String,
    /// What was injected, in words and figures.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generate options: {0}")]
    InvalidOptions(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a list of incidents: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn validate(opts: &GenerateOptions) -> Result<(), GenerateError> {
    let bad = |m: &str| Err(GenerateError::InvalidOptions(m.to_string()));
    if opts.servers == 0 || opts.servers > 10_000 {
        return bad("--servers must be between 1 and 10000");
    }
    if opts.days == 0 || opts.days > 366 {
        return bad("--days must be between 1 and 366");
    }
    if !(opts.calls_per_second.is_finite()
        && opts.calls_per_second > 0.0
        && opts.calls_per_second <= 1000.0)
    {
        return bad("--rate must be a number of calls per second above 0 and at most 1000");
    }
    // Keep every time representable (chrono's range, with room for forecasts).
    if !(0..=32_503_680_000_000 - 400 * plan::DAY).contains(&opts.start_ms) {
        return bad("--start must be between 1970 and 2999");
    }
    if !(1000..=crate::time::HOUR_MS).contains(&opts.scrape_interval_ms) {
        return bad("--scrape-interval must be between 1s and 1h");
    }
    if opts.shape == Shape::Events && opts.scrape_interval_ms != DEFAULT_SCRAPE_INTERVAL_MS {
        return bad(
            "--scrape-interval applies to --shape prometheus; the events shape has one gauge \
             sample per minute",
        );
    }
    Ok(())
}

/// Generates a fleet into `opts.out` (created if missing; files of the same
/// names are replaced).
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    validate(opts)?;
    let fleet = plan::plan_fleet(opts);
    let mut summary = GenerateSummary {
        files: Vec::new(),
        calls: 0,
        gauge_samples: 0,
        incidents: fleet.incidents,
    };
    let suffix = if opts.gzip { ".gz" } else { "" };
    let metrics_dir = opts.out.join("metrics");
    match opts.shape {
        Shape::Events => {
            let calls_dir = opts.out.join("calls");
            for dir in [&calls_dir, &metrics_dir] {
                fs::create_dir_all(dir).map_err(io_error(dir))?;
            }
            let per_server = fleet
                .servers
                .par_iter()
                .map(|server| {
                    let data = sim::simulate(server, fleet.window, opts.seed);
                    let calls_path = calls_dir.join(format!("{}.jsonl{suffix}", server.name));
                    let metrics_path = metrics_dir.join(format!("{}.om{suffix}", server.name));
                    write::calls(&calls_path, opts.gzip, server, &data)?;
                    let samples =
                        write::metrics(&metrics_path, opts.gzip, server, fleet.window, &data)?;
                    Ok((calls_path, metrics_path, data.calls.len() as u64, samples))
                })
                .collect::<Result<Vec<_>, GenerateError>>()?;
            for (calls_path, metrics_path, calls, samples) in per_server {
                summary.files.push(calls_path);
                summary.files.push(metrics_path);
                summary.calls += calls;
                summary.gauge_samples += samples;
            }
        }
        Shape::Prometheus => {
            fs::create_dir_all(&metrics_dir).map_err(io_error(&metrics_dir))?;
            let per_server = fleet
                .servers
                .par_iter()
                .map(|server| {
                    let data = sim::simulate(server, fleet.window, opts.seed);
                    let path = metrics_dir.join(format!("{}.om{suffix}", server.name));
                    let written = prom::write(&path, opts, server, fleet.window, &data)?;
                    Ok((path, data.calls.len() as u64, written))
                })
                .collect::<Result<Vec<_>, GenerateError>>()?;
            for (path, calls, written) in per_server {
                summary.files.push(path);
                summary.calls += calls;
                summary.gauge_samples += written.samples;
                if let Some(incident) = summary
                    .incidents
                    .iter_mut()
                    .find(|i| i.server == written.server)
                {
                    prom::adapt_incident(incident, &written);
                }
            }
        }
    }
    let incidents_path = opts.out.join("incidents.json");
    let mut json =
        serde_json::to_string_pretty(&summary.incidents).map_err(|source| GenerateError::Json {
            path: incidents_path.clone(),
            source,
        })?;
    json.push('\n');
    fs::write(&incidents_path, json).map_err(io_error(&incidents_path))?;
    summary.files.push(incidents_path);

    let readme_path = opts.out.join("README.md");
    fs::write(&readme_path, readme(opts, &summary)).map_err(io_error(&readme_path))?;
    summary.files.push(readme_path);
    Ok(summary)
}

fn readme(opts: &GenerateOptions, summary: &GenerateSummary) -> String {
    let gz = if opts.gzip { ".gz" } else { "" };
    let kinds: Vec<String> = summary
        .incidents
        .iter()
        .map(|i| {
            let kind = serde_json::to_value(i.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{kind} on {}", i.server)
        })
        .collect();
    let quiet = opts.servers - summary.incidents.len();
    match opts.shape {
        Shape::Events => format!(
            "# Generated MCP fleet\n\n\
             Generated by `{cmd}`: a synthetic, deterministic fleet of {servers} MCP servers over \
             {days} day(s) from {start}, {calls} calls and {samples} gauge samples; the same command \
             always writes byte-identical files. `calls/<server>.jsonl{gz}` holds one JSON object per \
             MCP call in time order (`ts`, `server`, `method`, `tool`, `duration_ms`, `error` as a \
             JSON-RPC code or \"timeout\", `session`, `transport`); `metrics/<server>.om{gz}` is \
             OpenMetrics 1.0 text with one sample per minute of `process.cpu.utilization`, \
             `process.memory.usage`, `process.memory.limit`, `mcp.server.sessions.open`, \
             `mcp.server.sessions.limit`, `mcp.server.requests.in_flight` (the mean over the minute), \
             `disk.free_bytes` and `disk.total_bytes`, labelled `server`, timestamps in seconds; \
             `incidents.json` is the ground truth, one object per injected incident (`kind`, `server`, \
             `start`, `end`, `tool`, `metric`, `detail`): {kinds}; the other {quiet} server(s) stay \
             quiet.\n",
            cmd = opts.command_line(),
            servers = opts.servers,
            days = opts.days,
            start = crate::time::format_ms(opts.start_ms),
            calls = summary.calls,
            samples = summary.gauge_samples,
            kinds = kinds.join(", "),
        ),
        Shape::Prometheus => format!(
            "# Generated MCP fleet, as Prometheus scrapes it\n\n\
             Generated by `{cmd}`: a synthetic, deterministic fleet of {servers} MCP servers over \
             {days} day(s) from {start}, {calls} simulated calls, written as {samples} samples that \
             a Prometheus server scraping every {interval} would hold; the same command always \
             writes byte-identical files, and `--shape events` writes the same fleet (same calls, \
             same incidents) as one JSON line per call.\n\n\
             `metrics/<server>.om{gz}` is OpenMetrics 1.0 text (`# TYPE`, `# UNIT`, `# HELP`, \
             timestamps in seconds, `# EOF`), every sample at a scrape time, each server scraped \
             from its own phase. The MCP server (`instance=\"<server>:9464\"`, `job=\"mcp\"`) is \
             one built on an official SDK with OpenTelemetry's Prometheus exporter:\n\n\
             - `mcp_server_operation_duration_seconds` histogram (`_bucket{{le}}`, `_count`, \
             `_sum`; buckets 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300 s and \
             +Inf), labelled `mcp_method_name`, `gen_ai_tool_name` (tools/call only) and \
             `error_type` (failed calls only: `-32602`, `-32603`, `timeout`, or `tool_error` for \
             a tool that failed inside, which an MCP 2025-11-25 server returns as a result with \
             `isError`). Each call is recorded when it ends; the values are cumulative since the \
             process started, and a series appears at the first scrape after its first call.\n\
             - `process_cpu_seconds_total` (counter), `process_resident_memory_bytes`, \
             `process_start_time_seconds` (unix seconds).\n\
             - `mcp_server_requests_in_flight`: the calls being served at the scrape instant (not \
             an OpenTelemetry convention; the simulation's in-flight requests).\n\
             - `up`, as Prometheus records each scrape: 0 while the process is down.\n\n\
             node_exporter on the same host (`instance=\"<server>:9100\"`, `job=\"node\"`) gives \
             `node_filesystem_avail_bytes` and `node_filesystem_size_bytes` of the data volume \
             (`device=\"/dev/vda1\"`, `fstype=\"ext4\"`, `mountpoint=\"/data\"`) and its own `up`.\n\n\
             When the leaking process dies, its scrapes fail until the new process starts; every \
             counter and histogram of the new process starts again from zero, \
             `process_start_time_seconds` changes, and the calls it was serving, and those it \
             recorded after its last scrape, are never seen.\n\n\
             `incidents.json` is the ground truth, one object per injected incident (`kind`, \
             `server`, `start`, `end`, `tool`, `metric` in this shape's names, `detail`): {kinds}; \
             the other {quiet} server(s) stay quiet. The simulation's sessions and memory and \
             session limits have no series here.\n",
            cmd = opts.command_line(),
            servers = opts.servers,
            days = opts.days,
            start = crate::time::format_ms(opts.start_ms),
            interval = crate::time::format_duration_ms(opts.scrape_interval_ms),
            calls = summary.calls,
            samples = summary.gauge_samples,
            kinds = kinds.join(", "),
        ),
    }
}

/// Reads `incidents.json` (or the one in a generated directory).
pub fn load_incidents(path: &Path) -> Result<Vec<Incident>, GenerateError> {
    let path = if path.is_dir() {
        path.join("incidents.json")
    } else {
        path.to_path_buf()
    };
    let text = fs::read_to_string(&path).map_err(io_error(&path))?;
    serde_json::from_str(&text).map_err(|source| GenerateError::Json { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_names_only_what_differs_from_the_defaults() {
        let mut o = GenerateOptions {
            seed: 7,
            out: PathBuf::from("data/fleet"),
            ..GenerateOptions::default()
        };
        assert_eq!(
            o.command_line(),
            "mcpops generate --servers 8 --days 3 --seed 7 --out data/fleet"
        );
        o.gzip = false;
        o.calls_per_second = 0.5;
        o.start_ms = DEFAULT_START_MS + 86_400_000;
        assert_eq!(
            o.command_line(),
            "mcpops generate --servers 8 --days 3 --seed 7 --out data/fleet \
             --start 2026-11-17T00:00:00Z --rate 0.5 --no-gzip"
        );
        assert_eq!(
            crate::time::format_ms(DEFAULT_START_MS),
            "2026-11-16T00:00:00Z"
        );
    }

    #[test]
    fn the_prometheus_shape_is_named_on_the_command_line() {
        let mut o = GenerateOptions {
            servers: 5,
            days: 2,
            out: PathBuf::from("data/fleet-prom"),
            shape: Shape::Prometheus,
            ..GenerateOptions::default()
        };
        assert_eq!(
            o.command_line(),
            "mcpops generate --servers 5 --days 2 --seed 7 --out data/fleet-prom --shape prometheus"
        );
        o.scrape_interval_ms = 15_000;
        assert!(
            o.command_line()
                .ends_with(" --shape prometheus --scrape-interval 15s")
        );
    }

    #[test]
    fn bad_options_are_refused() {
        for o in [
            GenerateOptions {
                servers: 0,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                days: 0,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                calls_per_second: f64::NAN,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                calls_per_second: 0.0,
                ..GenerateOptions::default()
            },
            // The events shape has a gauge sample per minute, whatever is asked.
            GenerateOptions {
                scrape_interval_ms: 15_000,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                shape: Shape::Prometheus,
                scrape_interval_ms: 999,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                shape: Shape::Prometheus,
                scrape_interval_ms: 2 * 3_600_000,
                ..GenerateOptions::default()
            },
        ] {
            assert!(matches!(
                generate(&o),
                Err(GenerateError::InvalidOptions(_))
            ));
        }
    }

    #[test]
    fn incident_kinds_are_snake_case() {
        let v = serde_json::to_string(&IncidentKind::SaturationKnee).unwrap();
        assert_eq!(v, "\"saturation_knee\"");
        let k: IncidentKind = serde_json::from_str("\"memory_leak\"").unwrap();
        assert_eq!(k, IncidentKind::MemoryLeak);
    }
}
