//! Probes of MCP servers, like a blackbox exporter: over stdio or
//! Streamable HTTP, in either protocol era, phase by phase, each round's
//! results appended to the live store as `mcp_probe_*` series and
//! `mcp.client.operation.duration` samples.
//!
//! The door: [`ProbeConfig`] (a `[[probe]]` table), [`run`] (the loop watch
//! starts per target), and for tests and one-off checks [`Prober`], whose
//! [`Prober::round`] runs one round and returns its [`RoundReport`].
//!
//! A round is what Prometheus's blackbox exporter does per scrape: a stdio
//! server is spawned for the round and killed (its whole process group) and
//! reaped at its end, an HTTP server is connected afresh. Keeping a child
//! across rounds would save a spawn per interval but would measure a warm
//! server only, hide crashes between rounds, and let one wedged child hold
//! the target forever; per round, every failure is seen and nothing
//! outlives its round. The target's protocol era is the one thing carried
//! across rounds (see [`session`]).

mod session;

pub use session::{Era, Failure, FailureKind, Phase, RoundReport, ToolSet};

use super::Shared;
use super::targets::{TargetHealth, TargetKind, TargetStatus};
use crate::metadata::{MetricMeta, MetricType, TypeSource};
use crate::model::{MemorySink, SampleSink, SeriesKey};
use crate::names::{CLIENT_CALL_METRIC, ERROR_LABEL, METHOD_LABEL, TOOL_LABEL};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `job` label of probe series when the target names none.
pub const DEFAULT_JOB: &str = "mcp-probe";

/// How long each phase may take when the target does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest stdio frame (one line) or HTTP response body accepted.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// One probe target (a `[[probe]]` table of `watch.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The `instance` label; defaults to the URL or the command line.
    #[serde(default)]
    pub name: Option<String>,
    /// The `job` label; defaults to [`DEFAULT_JOB`].
    #[serde(default)]
    pub job: Option<String>,
    /// A stdio server: the command line (argv).
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables set for a stdio server (on top of watch's own).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A Streamable HTTP server.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP headers sent with every request (`Authorization`, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub interval: Option<Duration>,
    /// How long each phase may take (default 10 s).
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub timeout: Option<Duration>,
    /// A `tools/call` to make each round, and what its result must hold.
    #[serde(default)]
    pub call: Option<CallConfig>,
    /// The largest stdio line or HTTP body accepted (default 16 MiB).
    #[serde(default)]
    pub max_frame_bytes: Option<usize>,
}

/// `call = { tool = "echo", arguments = { text = "hi" }, expect = "hi" }`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    pub tool: String,
    #[serde(default)]
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
    /// A substring of the result's text, or, when it starts with `{` or `[`,
    /// JSON that the structured result (else the text parsed as JSON) must
    /// contain: every key of an object, recursively; arrays and scalars equal.
    #[serde(default)]
    pub expect: Option<String>,
}

impl ProbeConfig {
    /// A target given as `--probe-cmd 'CMD ARGS'` (split like a shell, no shell run).
    pub fn from_command(argv: Vec<String>) -> ProbeConfig {
        ProbeConfig {
            command: argv,
            ..ProbeConfig::empty()
        }
    }

    /// A target given as `--probe-url URL`.
    pub fn from_url(url: &str) -> ProbeConfig {
        ProbeConfig {
            url: Some(url.to_string()),
            ..ProbeConfig::empty()
        }
    }

    fn empty() -> ProbeConfig {
        ProbeConfig {
            name: None,
            job: None,
            command: Vec::new(),
            env: BTreeMap::new(),
            url: None,
            headers: BTreeMap::new(),
            interval: None,
            timeout: None,
            call: None,
            max_frame_bytes: None,
        }
    }

    /// The `job` label.
    pub fn job(&self) -> String {
        self.job.clone().unwrap_or_else(|| DEFAULT_JOB.to_string())
    }

    /// The `instance` label: the name, else the URL, else the command line.
    pub fn instance(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if let Some(url) = &self.url {
            return url.clone();
        }
        self.command.join(" ")
    }

    /// The URL or the command line, for the target table.
    pub fn address(&self) -> String {
        self.url.clone().unwrap_or_else(|| self.command.join(" "))
    }
}

/// Probes `target` every interval until watch stops. A target that cannot
/// be probed at all (no command and no URL, a bad header) is logged and
/// marked down in the target table once.
pub async fn run(target: ProbeConfig, default_interval: Duration, shared: Shared) {
    let interval = target.interval.unwrap_or(default_interval);
    let mut prober = match Prober::new(target.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("watch: probe not started: {e}");
            shared.targets.update(TargetStatus {
                kind: TargetKind::Probe,
                job: target.job(),
                instance: target.instance(),
                url: target.address(),
                labels: Vec::new(),
                health: TargetHealth::Down,
                last_error: e.to_string(),
                last_round_ms: crate::time::now_ms(),
                last_duration_seconds: 0.0,
                protocol_version: None,
            });
            return;
        }
    };
    let mut shutdown = shared.shutdown.clone();
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = ticks.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
                continue;
            }
        }
        // The round is not interrupted by shutdown: its phases are bounded
        // by the timeout, and a round cut short would leave a child behind.
        let report = prober.round().await;
        if let Err(e) = prober.record(&report, &shared).await {
            eprintln!("watch: probe {}: {e}", prober.instance);
        }
    }
}

/// A probe target ready to run rounds; remembers the target's era.
pub struct Prober {
    config: ProbeConfig,
    job: String,
    instance: String,
    era: Option<Era>,
    target: session::Target,
    /// The `mcp_probe_*` series the last recorded round wrote: those this
    /// round does not write get a staleness marker, as Prometheus writes for
    /// a series a scrape no longer has, so that an old failure or an old
    /// tool-set hash stops answering instant queries at once.
    previous: Vec<SeriesKey>,
}

impl Prober {
    /// Checks the target (exactly one of a command and a URL; headers that
    /// HTTP can carry; a URL with a host).
    pub fn new(config: ProbeConfig) -> Result<Prober, super::WatchError> {
        let target = session::Target::new(&config)?;
        Ok(Prober {
            job: config.job(),
            instance: config.instance(),
            era: None,
            config,
            target,
            previous: Vec::new(),
        })
    }

    /// The era remembered from the last successful round, if any.
    pub fn era(&self) -> Option<Era> {
        self.era
    }

    /// Runs one round; remembers the era it found, forgets it on failure so
    /// the next round detects it again.
    pub async fn round(&mut self) -> RoundReport {
        let report = session::round(&self.config, &self.target, self.era).await;
        self.era = if report.failure.is_none() {
            report.era
        } else {
            None
        };
        report
    }

    /// Appends the round's series to the store (off the async threads), and
    /// updates the target table and watch's own counters.
    pub async fn record(
        &mut self,
        report: &RoundReport,
        shared: &Shared,
    ) -> Result<(), super::WatchError> {
        let batch = self.batch(report);
        self.previous = gauge_keys(&batch);
        let store = shared.store.clone();
        let appended = tokio::task::spawn_blocking(move || store.append(&batch))
            .await
            .map_err(|e| super::WatchError::Config(format!("probe append task failed: {e}")));
        self.account(report, shared);
        appended??;
        Ok(())
    }

    fn account(&self, report: &RoundReport, shared: &Shared) {
        let health = &shared.health;
        health.describe("mcpops_watch_probes_total", "MCP probe rounds run.");
        health.describe(
            "mcpops_watch_probe_errors_total",
            "MCP probe rounds that failed, by failure kind.",
        );
        health.add("mcpops_watch_probes_total", &[], 1.0);
        if let Some(f) = &report.failure {
            health.add(
                "mcpops_watch_probe_errors_total",
                &[("kind", f.kind.name())],
                1.0,
            );
        }
        shared.targets.update(TargetStatus {
            kind: TargetKind::Probe,
            job: self.job.clone(),
            instance: self.instance.clone(),
            url: self.config.address(),
            labels: Vec::new(),
            health: if report.failure.is_none() {
                TargetHealth::Up
            } else {
                TargetHealth::Down
            },
            last_error: report
                .failure
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default(),
            last_round_ms: report.started_ms,
            last_duration_seconds: report.total_seconds,
            protocol_version: report.protocol_version.clone(),
        });
    }

    /// The round as samples: every `mcp_probe_*` series at the round's
    /// start, and one `mcp.client.operation.duration` sample per call at
    /// the call's start.
    pub fn batch(&self, report: &RoundReport) -> MemorySink {
        let mut sink = MemorySink::default();
        describe_all(&mut sink);
        let at = report.started_ms;
        let base = [
            ("job", self.job.as_str()),
            ("instance", self.instance.as_str()),
        ];
        let put = |sink: &mut MemorySink, metric: &str, extra: &[(&str, &str)], t: i64, v: f64| {
            let labels = base
                .iter()
                .chain(extra.iter())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let id = sink.intern(SeriesKey::new(metric, labels));
            // A MemorySink never refuses a sample.
            let _ = sink.push(id, t, v);
        };
        for phase in &report.phases {
            let name = phase.phase.name();
            put(
                &mut sink,
                "mcp_probe_success",
                &[("phase", name)],
                at,
                bool_f(phase.ok),
            );
            if let Some(seconds) = phase.seconds {
                put(
                    &mut sink,
                    "mcp_probe_duration_seconds",
                    &[("phase", name)],
                    at,
                    seconds,
                );
            }
        }
        let ok = report.failure.is_none();
        put(
            &mut sink,
            "mcp_probe_success",
            &[("phase", "total")],
            at,
            bool_f(ok),
        );
        put(
            &mut sink,
            "mcp_probe_duration_seconds",
            &[("phase", "total")],
            at,
            report.total_seconds,
        );
        put(&mut sink, "mcp_probe_up", &[], at, bool_f(ok));
        if let (Some(version), Some(era)) = (&report.protocol_version, report.era) {
            put(
                &mut sink,
                "mcp_probe_protocol_version_info",
                &[("version", version), ("era", era.name())],
                at,
                1.0,
            );
        }
        if let Some(tools) = &report.tools {
            put(&mut sink, "mcp_probe_tools", &[], at, tools.count as f64);
            put(
                &mut sink,
                "mcp_probe_tools_hash",
                &[],
                at,
                tools.hash48 as f64,
            );
            put(
                &mut sink,
                "mcp_probe_tools_info",
                &[("sha256", &tools.sha256)],
                at,
                1.0,
            );
        }
        if let Some(f) = &report.failure {
            let mut labels = vec![("phase", f.phase.name()), ("kind", f.kind.name())];
            let code;
            if let FailureKind::Exited { code: c } = &f.kind {
                code = c.clone();
                labels.push(("exit_code", code.as_str()));
            }
            put(&mut sink, "mcp_probe_failure", &labels, at, 1.0);
        }
        // Samples for what the last round had and this one has not.
        let now: std::collections::HashSet<&SeriesKey> = sink.series.iter().collect();
        let gone: Vec<SeriesKey> = self
            .previous
            .iter()
            .filter(|k| !now.contains(k))
            .cloned()
            .collect();
        for key in gone {
            let id = sink.intern(key);
            let _ = sink.push(id, at, crate::engine::value::stale_nan());
        }
        for call in &report.calls {
            let mut labels = vec![(METHOD_LABEL, call.method)];
            if let Some(tool) = &call.tool {
                labels.push((TOOL_LABEL, tool.as_str()));
            }
            if let Some(e) = &call.error_type {
                labels.push((ERROR_LABEL, e.as_str()));
            }
            put(
                &mut sink,
                CLIENT_CALL_METRIC,
                &labels,
                call.at_ms,
                call.seconds,
            );
        }
        sink
    }
}

/// The round's `mcp_probe_*` series (not the per-call samples, which are
/// events and never go stale).
fn gauge_keys(batch: &MemorySink) -> Vec<SeriesKey> {
    let mut seen = std::collections::HashSet::new();
    batch
        .samples
        .iter()
        .filter(|(_, _, v)| !crate::engine::value::is_stale(*v))
        .map(|&(id, _, _)| &batch.series[id as usize])
        .filter(|k| k.metric.starts_with("mcp_probe_") && seen.insert((*k).clone()))
        .cloned()
        .collect()
}

fn bool_f(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Declares every metric a round may write, so `/api/v1/metadata` and
/// `mcpops metrics` know them before the first failure.
fn describe_all(sink: &mut MemorySink) {
    let gauges: [(&str, Option<&str>, &str); 8] = [
        (
            "mcp_probe_success",
            None,
            "Whether the probe phase succeeded this round (1) or not (0).",
        ),
        (
            "mcp_probe_duration_seconds",
            Some("seconds"),
            "How long the probe phase took.",
        ),
        (
            "mcp_probe_up",
            None,
            "Whether the whole probe round succeeded.",
        ),
        (
            "mcp_probe_protocol_version_info",
            None,
            "The MCP protocol version the server speaks, and its era (modern: server/discover; legacy: initialize).",
        ),
        ("mcp_probe_tools", None, "How many tools the server lists."),
        (
            "mcp_probe_tools_hash",
            None,
            "The first 48 bits of the SHA-256 of the sorted tool names and canonical schemas: changes when the tool set does.",
        ),
        (
            "mcp_probe_tools_info",
            None,
            "The full SHA-256 of the tool set, as a label.",
        ),
        (
            "mcp_probe_failure",
            None,
            "Why the probe round failed: the phase and the kind (timeout, down, auth_required, invalid_frame, exited, error, tool_error, unexpected).",
        ),
    ];
    for (name, unit, help) in gauges {
        sink.describe(name, declared(MetricType::Gauge, name, unit, help));
    }
    sink.describe(
        CLIENT_CALL_METRIC,
        declared(
            MetricType::Event,
            CLIENT_CALL_METRIC,
            Some("seconds"),
            "One sample per MCP call the probe made: its duration as the client saw it.",
        ),
    );
}

fn declared(kind: MetricType, name: &str, unit: Option<&str>, help: &str) -> MetricMeta {
    MetricMeta {
        kind,
        source: TypeSource::Declared,
        family: name.to_string(),
        part: None,
        unit: unit.map(str::to_string),
        help: Some(help.to_string()),
        declared_at: Some("mcpops watch probe".to_string()),
    }
}
