//! The Prometheus shape: a simulated server as a Prometheus server would have
//! scraped it, had it been built on an official MCP SDK with OpenTelemetry's
//! Prometheus exporter, on a host running node_exporter.
//!
//! One OpenMetrics 1.0 file per server, every sample at a scrape time (every
//! `--scrape-interval` from a per-server phase). The MCP process's series
//! (`instance="<server>:9464"`, `job="mcp"`) are what its client library
//! holds at the scrape: the `mcp_server_operation_duration_seconds`
//! histogram with OpenTelemetry's MCP bucket advice and counters, cumulative
//! since the process started, so they start again from zero when the
//! leaking process dies and a new one starts; while it is down its scrapes
//! fail (`up` 0, no other sample). node_exporter's disk series
//! (`instance="<server>:9100"`, `job="node"`) come from the same simulation.
//! Nothing here draws from the simulation's random streams, so the events
//! shape of the same options is unchanged.

use super::plan::{Injected, MINUTE, RESTART_DOWNTIME, STREAM_SCRAPE, ServerPlan, Window};
use super::rng::Pcg64;
use super::sim::{Call, CallError, GaugeRow, Method, ServerData, WARM_UP_MINUTES};
use super::write::{Out, write_seconds};
use super::{GenerateError, GenerateOptions, Incident, IncidentKind, io_error};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

/// The call histogram, OpenTelemetry's `mcp.server.operation.duration` as
/// its Prometheus exporter names it.
pub(crate) const DURATION: &str = "mcp_server_operation_duration_seconds";
pub(crate) const CPU: &str = "process_cpu_seconds";
pub(crate) const MEMORY: &str = "process_resident_memory_bytes";
pub(crate) const START_TIME: &str = "process_start_time_seconds";
pub(crate) const IN_FLIGHT: &str = "mcp_server_requests_in_flight";
pub(crate) const DISK_AVAIL: &str = "node_filesystem_avail_bytes";
pub(crate) const DISK_SIZE: &str = "node_filesystem_size_bytes";

/// Upper bounds of the histogram's finite buckets in tenths of a
/// millisecond (the unit of a simulated duration): OpenTelemetry's advice
/// for MCP durations, 0.01 s to 300 s.
const BOUNDS: [u64; 14] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 300_000, 600_000,
    1_200_000, 3_000_000,
];
/// The same bounds as `le` values, as Prometheus's client libraries print them.
const LE: [&str; 15] = [
    "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "60.0",
    "120.0", "300.0", "+Inf",
];

/// What one server's file came to, for the summary and `incidents.json`.
pub(crate) struct Written {
    pub server: String,
    pub samples: u64,
    /// Scrapes of the MCP process that failed because it was down.
    pub missed_scrapes: usize,
}

/// The MCP process's lives: the first started before the data, and a
/// second one after the memory leak kills it.
struct Lives {
    first_start: i64,
    /// (death, start of the new process)
    restart: Option<(i64, i64)>,
}

impl Lives {
    fn new(plan: &ServerPlan, w: Window, rng: &mut Pcg64) -> Lives {
        // The process started just before the simulation's warm-up, whose
        // calls it has counted; the new one starts a few seconds before it
        // serves calls again.
        let first_start = w.start - WARM_UP_MINUTES * MINUTE - rng.between(2_000, 58_000);
        let restart = match plan.incident {
            Some(Injected::Leak { restart, .. }) => Some((
                restart,
                restart + RESTART_DOWNTIME - rng.between(1_000, 9_000),
            )),
            _ => None,
        };
        Lives {
            first_start,
            restart,
        }
    }

    /// Which process serves at `t`: 0 the first, 1 the second, `None` down.
    fn at(&self, t: i64) -> Option<u8> {
        match self.restart {
            Some((death, _)) if t < death => Some(0),
            Some((_, born)) if t < born => None,
            Some(_) => Some(1),
            None => Some(0),
        }
    }

    fn start(&self, life: u8) -> i64 {
        match (life, self.restart) {
            (1, Some((_, born))) => born,
            _ => self.first_start,
        }
    }
}

/// A call's duration in tenths of a millisecond (it is simulated at that
/// precision), and when it ended in the same unit.
fn tenths(c: &Call) -> (u64, i64) {
    let d = (c.duration_ms * 10.0).round() as u64;
    (d, c.ts * 10 + d as i64)
}

/// The `error_type` of a failed call. A tool failing inside (-32603 on
/// `tools/call`) is, for an MCP 2025-11-25 server, a result with `isError`.
fn error_type(c: &Call) -> Option<&'static str> {
    match (c.error, c.method) {
        (CallError::None, _) => None,
        (CallError::Internal, Method::ToolsCall) => Some("tool_error"),
        (CallError::Internal, _) => Some("-32603"),
        (CallError::InvalidParams, _) => Some("-32602"),
        (CallError::Timeout, _) => Some("timeout"),
    }
}

/// One recorded duration: when it ended (tenths of ms), how long it took,
/// and which process recorded it.
struct Observation {
    end: i64,
    duration: u64,
    life: u8,
}

/// (method, tool, error type): the labels of one histogram series.
type SeriesKey = (&'static str, Option<&'static str>, Option<&'static str>);

/// The simulated gauges at `t`: the row of the minute holding it, or the
/// last row before (the minute the process died has none).
fn row_at(data: &ServerData, w: Window, t: i64) -> Option<&GaugeRow> {
    let m = ((t - w.start).div_euclid(MINUTE)).clamp(0, data.gauges.len() as i64 - 1) as usize;
    data.gauges[..=m].iter().rev().find_map(Option::as_ref)
}

/// Cumulative CPU seconds since the warm-up began, minute by minute: the
/// simulated utilisation over the data, and over the warm-up the same
/// formula from its call counts (without the gauges' noise, which the
/// simulation does not draw there).
struct CpuClock {
    base: i64,
    rate: Vec<f64>,
    prefix: Vec<f64>,
}

impl CpuClock {
    fn new(plan: &ServerPlan, w: Window, data: &ServerData) -> CpuClock {
        let base = w.start - WARM_UP_MINUTES * MINUTE;
        let warm = WARM_UP_MINUTES as usize;
        let mut counts = vec![0u32; warm];
        for c in &data.warm_up {
            let m = ((c.ts - base) / MINUTE) as usize;
            counts[m.min(warm - 1)] += 1;
        }
        let mut rate: Vec<f64> = counts
            .iter()
            .map(|&n| (0.012 + 0.85 * (f64::from(n) / 60.0) / plan.capacity).clamp(0.001, 1.0))
            .collect();
        let mut last = rate.last().copied().unwrap_or(0.01);
        for row in &data.gauges {
            if let Some(r) = row {
                last = r.cpu;
            }
            rate.push(last);
        }
        let mut prefix = Vec::with_capacity(rate.len() + 1);
        let mut acc = 0.0;
        prefix.push(acc);
        for r in &rate {
            acc += r * 60.0;
            prefix.push(acc);
        }
        CpuClock { base, rate, prefix }
    }

    /// CPU seconds used from the start of the warm-up until `t`.
    fn at(&self, t: i64) -> f64 {
        if t <= self.base {
            return 0.0;
        }
        let m = (((t - self.base) / MINUTE) as usize).min(self.rate.len() - 1);
        let into = (t - self.base - m as i64 * MINUTE) as f64 / 1000.0;
        self.prefix[m] + self.rate[m] * into
    }
}

/// Writes `metrics/<server>.om[.gz]` in the Prometheus shape.
pub(crate) fn write(
    path: &Path,
    opts: &GenerateOptions,
    plan: &ServerPlan,
    w: Window,
    data: &ServerData,
) -> Result<Written, GenerateError> {
    let mut rng = Pcg64::new(opts.seed, STREAM_SCRAPE + plan.index as u64);
    let interval = opts.scrape_interval_ms;
    // Whole seconds, which keep the files a quarter smaller than a
    // millisecond phase would.
    let phase = rng.between(0, (interval - 1) / 1000) * 1000;
    let lives = Lives::new(plan, w, &mut rng);
    let scrapes: Vec<i64> = (0..)
        .map(|k| w.start + phase + k * interval)
        .take_while(|&t| t < w.end)
        .collect();
    let missed_scrapes = scrapes.iter().filter(|&&t| lives.at(t).is_none()).count();

    // Every call since the process started, by series, in the order the
    // client library recorded them (at their end). A call the dying
    // process was still serving is never recorded.
    let mut series: BTreeMap<SeriesKey, Vec<Observation>> = BTreeMap::new();
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for c in data.warm_up.iter().chain(&data.calls) {
        let (duration, end) = tenths(c);
        starts.push(c.ts * 10);
        ends.push(end);
        let Some(life) = lives.at(c.ts) else { continue };
        if let Some((death, _)) = lives.restart
            && life == 0
            && end > death * 10
        {
            continue;
        }
        let tool = plan.tools.get(c.tool as usize).map(|t| t.name);
        series
            .entry((c.method.as_str(), tool, error_type(c)))
            .or_default()
            .push(Observation {
                end,
                duration,
                life,
            });
    }
    for obs in series.values_mut() {
        obs.sort_by_key(|o| o.end);
    }
    ends.sort_unstable();
    let cpu = CpuClock::new(plan, w, data);

    let mcp = format!("instance=\"{}\",job=\"mcp\"", mcp_instance(&plan.name));
    let node = format!("instance=\"{}:{NODE_PORT}\",job=\"node\"", plan.name);
    let disk = format!("device=\"/dev/vda1\",fstype=\"ext4\",{node},mountpoint=\"/data\"");

    let io = || -> io::Result<u64> {
        let mut out = Out::create(path, opts.gzip)?;
        let mut samples = 0u64;
        family(
            &mut out,
            DURATION,
            "histogram",
            Some("seconds"),
            "Duration of MCP requests the server handled (OpenTelemetry mcp.server.operation.duration).",
        )?;
        for (key, obs) in &series {
            samples += histogram(&mut out, &mcp, key, obs, &scrapes, &lives)?;
        }

        let up_scrapes = || scrapes.iter().filter_map(|&t| Some((t, lives.at(t)?)));
        family(
            &mut out,
            CPU,
            "counter",
            Some("seconds"),
            "Total user and system CPU time spent in seconds.",
        )?;
        for (t, life) in up_scrapes() {
            let used = cpu.at(t) - cpu.at(lives.start(life));
            samples += sample(&mut out, "process_cpu_seconds_total", &mcp, t, |o| {
                write!(o, "{used:.2}")
            })?;
        }
        family(
            &mut out,
            MEMORY,
            "gauge",
            Some("bytes"),
            "Resident memory size in bytes.",
        )?;
        for (t, _) in up_scrapes() {
            let bytes = row_at(data, w, t).map_or(plan.mem_base, |r| r.memory) as u64;
            samples += sample(&mut out, MEMORY, &mcp, t, |o| write!(o, "{bytes}"))?;
        }
        family(
            &mut out,
            START_TIME,
            "gauge",
            Some("seconds"),
            "Start time of the process since unix epoch in seconds.",
        )?;
        for (t, life) in up_scrapes() {
            samples += sample(&mut out, START_TIME, &mcp, t, |o| {
                write_seconds(o, lives.start(life))
            })?;
        }
        family(
            &mut out,
            IN_FLIGHT,
            "gauge",
            None,
            "MCP requests being handled at the scrape.",
        )?;
        for (t, _) in up_scrapes() {
            let begun = starts.partition_point(|&s| s <= t * 10);
            let done = ends.partition_point(|&e| e <= t * 10);
            samples += sample(&mut out, IN_FLIGHT, &mcp, t, |o| {
                write!(o, "{}", begun - done)
            })?;
        }
        family(
            &mut out,
            DISK_AVAIL,
            "gauge",
            Some("bytes"),
            "Filesystem space available to non-root users in bytes.",
        )?;
        for &t in &scrapes {
            let bytes = row_at(data, w, t).map_or(plan.disk_free0, |r| r.disk_free) as u64;
            samples += sample(&mut out, DISK_AVAIL, &disk, t, |o| write!(o, "{bytes}"))?;
        }
        family(
            &mut out,
            DISK_SIZE,
            "gauge",
            Some("bytes"),
            "Filesystem size in bytes.",
        )?;
        for &t in &scrapes {
            samples += sample(&mut out, DISK_SIZE, &disk, t, |o| {
                write!(o, "{}", plan.disk_total as u64)
            })?;
        }
        family(
            &mut out,
            "up",
            "gauge",
            None,
            "Whether the last scrape of the target succeeded (1) or failed (0), as Prometheus records it.",
        )?;
        for &t in &scrapes {
            let up = u8::from(lives.at(t).is_some());
            samples += sample(&mut out, "up", &mcp, t, |o| write!(o, "{up}"))?;
        }
        for &t in &scrapes {
            samples += sample(&mut out, "up", &node, t, |o| o.write_all(b"1"))?;
        }
        out.write_all(b"# EOF\n")?;
        out.finish()?;
        Ok(samples)
    };
    let samples = io().map_err(io_error(path))?;
    Ok(Written {
        server: plan.name.clone(),
        samples,
        missed_scrapes,
    })
}

/// A family's `# TYPE`, `# UNIT` and `# HELP` lines.
fn family(out: &mut Out, name: &str, kind: &str, unit: Option<&str>, help: &str) -> io::Result<()> {
    writeln!(out, "# TYPE {name} {kind}")?;
    if let Some(unit) = unit {
        writeln!(out, "# UNIT {name} {unit}")?;
    }
    writeln!(out, "# HELP {name} {help}")
}

/// One sample line; returns 1, the samples written.
fn sample(
    out: &mut Out,
    name: &str,
    labels: &str,
    t: i64,
    value: impl FnOnce(&mut Out) -> io::Result<()>,
) -> io::Result<u64> {
    write!(out, "{name}{{{labels}}} ")?;
    value(out)?;
    out.write_all(b" ")?;
    write_seconds(out, t)?;
    out.write_all(b"\n")?;
    Ok(1)
}

/// One histogram series over every scrape: cumulative since its process
/// started, present from the first scrape after its first observation in
/// that process, gone while the process is down and after a restart until
/// it is observed again. Returns the samples written.
fn histogram(
    out: &mut Out,
    target: &str,
    key: &SeriesKey,
    obs: &[Observation],
    scrapes: &[i64],
    lives: &Lives,
) -> io::Result<u64> {
    let (method, tool, error) = *key;
    let mut labels = format!("{target},mcp_method_name=\"{method}\"");
    if let Some(tool) = tool {
        labels.push_str(&format!(",gen_ai_tool_name=\"{tool}\""));
    }
    if let Some(error) = error {
        labels.push_str(&format!(",error_type=\"{error}\""));
    }
    let mut samples = 0;
    let mut next = 0;
    let mut life = None;
    let (mut buckets, mut sum, mut count) = ([0u64; 15], 0u64, 0u64);
    for &t in scrapes {
        let Some(now) = lives.at(t) else { continue };
        if life != Some(now) {
            (buckets, sum, count) = ([0; 15], 0, 0);
            life = Some(now);
        }
        while let Some(o) = obs.get(next).filter(|o| o.end <= t * 10) {
            next += 1;
            // Recorded by the process that died before its next scrape: lost.
            if o.life != now {
                continue;
            }
            buckets[BOUNDS.partition_point(|&b| b < o.duration)] += 1;
            sum += o.duration;
            count += 1;
        }
        if count == 0 {
            continue;
        }
        let mut cumulative = 0;
        for (b, n) in buckets.iter().enumerate() {
            cumulative += n;
            write!(
                out,
                "{DURATION}_bucket{{{labels},le=\"{}\"}} {cumulative} ",
                LE[b]
            )?;
            write_seconds(out, t)?;
            out.write_all(b"\n")?;
        }
        write!(out, "{DURATION}_count{{{labels}}} {count} ")?;
        write_seconds(out, t)?;
        write!(
            out,
            "\n{DURATION}_sum{{{labels}}} {}.{:04} ",
            sum / 10_000,
            sum % 10_000
        )?;
        write_seconds(out, t)?;
        out.write_all(b"\n")?;
        samples += 17;
    }
    Ok(samples)
}

/// The port the MCP server's metrics are scraped from, and node_exporter's.
const MCP_PORT: u16 = 9464;
const NODE_PORT: u16 = 9100;

/// The `instance` a scrape of the MCP server gets: how this shape names it.
pub(crate) fn mcp_instance(server: &str) -> String {
    format!("{server}:{MCP_PORT}")
}

/// An incident as this shape shows it: the server by its `instance` (what
/// Prometheus, and so the analyzer, call it), the metric in its names, and
/// for the leak what the restart does to the series.
pub(crate) fn adapt_incident(incident: &mut Incident, written: &Written) {
    incident.server = mcp_instance(&incident.server);
    incident.metric = match incident.kind {
        IncidentKind::MemoryLeak => MEMORY,
        IncidentKind::LatencyRegression
        | IncidentKind::ErrorBurst
        | IncidentKind::SaturationKnee => DURATION,
        IncidentKind::DiskFill => DISK_AVAIL,
    }
    .to_string();
    if incident.kind == IncidentKind::ErrorBurst {
        incident.detail = incident.detail.replace(
            "fails with JSON-RPC error -32603",
            "fails inside (error_type=\"tool_error\": a result with isError, JSON-RPC \
             -32603 in the events shape)",
        );
    }
    if incident.kind == IncidentKind::MemoryLeak {
        incident.detail = incident.detail.replace(
            "open sessions drop to 0, one scrape is missing",
            &format!(
                "its counters and histogram series start again from zero, \
                 {START_TIME} changes, {} scrape(s) of job \"mcp\" fail (up 0)",
                written.missed_scrapes
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_le_labels_agree() {
        assert_eq!(LE.len(), BOUNDS.len() + 1);
        for (b, le) in BOUNDS.iter().zip(LE) {
            assert_eq!(*b as f64 / 10_000.0, le.parse::<f64>().unwrap(), "{le}");
        }
        // A duration on a bound falls in that bucket (`le` is inclusive).
        assert_eq!(BOUNDS.partition_point(|&b| b < 100), 0);
        assert_eq!(BOUNDS.partition_point(|&b| b < 101), 1);
        assert_eq!(BOUNDS.partition_point(|&b| b < 300_000), 10);
        assert_eq!(BOUNDS.partition_point(|&b| b < 3_000_001), 14);
    }

    #[test]
    fn a_restart_leaves_a_gap_between_two_lives() {
        let lives = Lives {
            first_start: 0,
            restart: Some((1_000, 1_500)),
        };
        assert_eq!(lives.at(999), Some(0));
        assert_eq!(lives.at(1_000), None);
        assert_eq!(lives.at(1_499), None);
        assert_eq!(lives.at(1_500), Some(1));
        assert_eq!(lives.start(1), 1_500);
        assert_eq!(lives.start(0), 0);
    }
}
