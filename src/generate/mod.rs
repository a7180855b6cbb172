//! `mcpops generate`: a deterministic synthetic MCP fleet with injected
//! incidents and their ground truth.
//!
//! [`generate`] writes, for each server, its calls as JSON lines
//! (`calls/<server>.jsonl[.gz]`) and its gauges as OpenMetrics text, one
//! sample per minute (`metrics/<server>.om[.gz]`); then `incidents.json` (the
//! injected incidents, read back with [`load_incidents`]) and a `README.md`
//! saying which command made them. The same options always give byte-identical
//! files: the generator and its distributions are our own (a seeded PCG-64),
//! not a library's that could change between versions.

mod plan;
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
    /// Gauge samples written, over all servers and metrics.
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
    Ok(())
}

/// Generates a fleet into `opts.out` (created if missing; files of the same
/// names are replaced).
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    validate(opts)?;
    let fleet = plan::plan_fleet(opts);
    let calls_dir = opts.out.join("calls");
    let metrics_dir = opts.out.join("metrics");
    for dir in [&calls_dir, &metrics_dir] {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let suffix = if opts.gzip { ".gz" } else { "" };
    let per_server = fleet
        .servers
        .par_iter()
        .map(|server| {
            let data = sim::simulate(server, fleet.window, opts.seed);
            let calls_path = calls_dir.join(format!("{}.jsonl{suffix}", server.name));
            let metrics_path = metrics_dir.join(format!("{}.om{suffix}", server.name));
            write::calls(&calls_path, opts.gzip, server, &data)?;
            let samples = write::metrics(&metrics_path, opts.gzip, server, fleet.window, &data)?;
            Ok((calls_path, metrics_path, data.calls.len() as u64, samples))
        })
        .collect::<Result<Vec<_>, GenerateError>>()?;

    let mut summary = GenerateSummary {
        files: Vec::new(),
        calls: 0,
        gauge_samples: 0,
        incidents: fleet.incidents,
    };
    for (calls_path, metrics_path, calls, samples) in per_server {
        summary.files.push(calls_path);
        summary.files.push(metrics_path);
        summary.calls += calls;
        summary.gauge_samples += samples;
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
    format!(
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
    )
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
