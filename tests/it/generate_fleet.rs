//! The generated fleet: deterministic, matching the shipped `data/fleet`, and
//! showing each injected incident (and nothing alarming elsewhere) in the
//! files themselves, read here with nothing but serde_json and flate2.
//!
//! To regenerate the shipped data after a deliberate change to the generator:
//! `cargo test --release --test it -- --ignored generate_fleet::regenerate_shipped_fleet`.

use mcpops::generate::{
    GenerateError, GenerateOptions, Incident, IncidentKind, generate, load_incidents,
};
use serde::Deserialize;

use crate::common::{files_under, read_text};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const SHIPPED_COMMAND: &str = "mcpops generate --servers 8 --days 3 --seed 7 --out data/fleet";

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fleet")
}

/// The options `SHIPPED_COMMAND` stands for.
fn shipped_options(out: PathBuf) -> GenerateOptions {
    GenerateOptions {
        servers: 8,
        days: 3,
        seed: 7,
        out,
        ..GenerateOptions::default()
    }
}

fn temp_options(dir: &tempfile::TempDir, servers: usize, days: u32, seed: u64) -> GenerateOptions {
    GenerateOptions {
        servers,
        days,
        seed,
        out: dir.path().join("fleet"),
        ..GenerateOptions::default()
    }
}

// ---------------------------------------------------------------- reading a fleet

#[derive(Deserialize)]
struct RawCall {
    ts: String,
    server: String,
    method: String,
    tool: Option<String>,
    duration_ms: f64,
    error: serde_json::Value,
    session: String,
    transport: String,
}

#[derive(Clone, Debug)]
struct Call {
    ts: i64,
    method: String,
    tool: Option<String>,
    duration_ms: f64,
    error: bool,
}

/// One server's files, parsed and checked for form on the way.
struct Server {
    calls: Vec<Call>,
    /// metric -> (timestamp ms, value), in file order.
    gauges: BTreeMap<String, Vec<(i64, f64)>>,
}

impl Server {
    fn gauge(&self, metric: &str) -> &[(i64, f64)] {
        self.gauges
            .get(metric)
            .unwrap_or_else(|| panic!("no {metric}"))
    }

    fn constant(&self, metric: &str) -> f64 {
        let g = self.gauge(metric);
        assert!(g.iter().all(|&(_, v)| v == g[0].1), "{metric} is constant");
        g[0].1
    }

    fn tool_calls<'a>(&'a self, tool: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls
            .iter()
            .filter(move |c| c.tool.as_deref() == Some(tool))
    }
}

fn parse_calls(path: &Path, server: &str, start: i64, end: i64) -> Vec<Call> {
    let text = read_text(path);
    let mut calls = Vec::new();
    let mut last = i64::MIN;
    for (n, line) in text.lines().enumerate() {
        let raw: RawCall = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}: {line}", path.display(), n + 1));
        let ts = mcpops::time::parse_timestamp(&raw.ts).expect("ts is RFC 3339");
        assert!(raw.ts.ends_with('Z') && raw.ts.len() == 24, "{}", raw.ts);
        assert!(
            ts >= last,
            "{}:{}: calls are in time order",
            path.display(),
            n + 1
        );
        assert!((start..end).contains(&ts), "{}: inside the data", raw.ts);
        last = ts;
        assert_eq!(raw.server, server);
        assert!(raw.session.starts_with("s-") && raw.session.len() == 12);
        assert!(["stdio", "streamable-http"].contains(&raw.transport.as_str()));
        assert!(raw.duration_ms > 0.0 && raw.duration_ms <= 30_000.0);
        assert_eq!(raw.tool.is_some(), raw.method == "tools/call", "{line}");
        let error = match &raw.error {
            serde_json::Value::Null => false,
            serde_json::Value::Number(n) => {
                assert!([-32603, -32602].contains(&n.as_i64().unwrap()), "{line}");
                true
            }
            serde_json::Value::String(s) => {
                assert_eq!(s, "timeout");
                assert_eq!(raw.duration_ms, 30_000.0);
                true
            }
            other => panic!("error {other}"),
        };
        calls.push(Call {
            ts,
            method: raw.method,
            tool: raw.tool,
            duration_ms: raw.duration_ms,
            error,
        });
    }
    calls
}

/// Parses OpenMetrics text, checking the form this project writes: families
/// contiguous, each with TYPE and HELP before its samples, every sample with
/// the server label and a timestamp in seconds, `# EOF` at the end.
fn parse_openmetrics(path: &Path, server: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let text = read_text(path);
    assert!(
        text.ends_with("# EOF\n"),
        "{} ends with # EOF",
        path.display()
    );
    let mut gauges: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut described: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut current = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let at = || format!("{}:{}: {line}", path.display(), n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            if *line == "# EOF" {
                assert_eq!(n + 1, lines.len(), "{}: # EOF is last", at());
                continue;
            }
            let mut parts = meta.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(["TYPE", "UNIT", "HELP"].contains(&kw), "{}", at());
            assert!(
                !gauges.contains_key(name),
                "{}: metadata before samples",
                at()
            );
            if kw == "TYPE" {
                assert_eq!(parts.next(), Some("gauge"), "{}", at());
            }
            described.entry(name.to_string()).or_default().insert(kw);
            current = name.to_string();
            continue;
        }
        let (series, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
        let (name, labels) = series.split_once('{').unwrap_or_else(|| panic!("{}", at()));
        assert_eq!(labels, format!("server=\"{server}\"}}"), "{}", at());
        assert_eq!(name, current, "{}: families are contiguous", at());
        let desc = &described[name];
        assert!(desc.contains("TYPE") && desc.contains("HELP"), "{}", at());
        let fields: Vec<&str> = rest.split(' ').collect();
        assert_eq!(fields.len(), 2, "{}: value and timestamp", at());
        let value: f64 = fields[0].parse().unwrap_or_else(|_| panic!("{}", at()));
        let secs: i64 = fields[1]
            .parse()
            .unwrap_or_else(|_| panic!("{}: timestamp in whole seconds", at()));
        let samples = gauges.entry(name.to_string()).or_default();
        if let Some(&(prev, _)) = samples.last() {
            assert!(secs * 1000 > prev, "{}: timestamps increase", at());
        }
        samples.push((secs * 1000, value));
    }
    gauges
}

struct Fleet {
    incidents: Vec<Incident>,
    servers: BTreeMap<String, Server>,
    start: i64,
    end: i64,
}

fn load_fleet(dir: &Path, opts: &GenerateOptions) -> Fleet {
    let start = opts.start_ms;
    let end = start + i64::from(opts.days) * 24 * HOUR;
    let gz = if opts.gzip { ".gz" } else { "" };
    let servers = (1..=opts.servers)
        .map(|i| {
            let name = format!("mcp-{i:02}");
            let calls = parse_calls(
                &dir.join(format!("calls/{name}.jsonl{gz}")),
                &name,
                start,
                end,
            );
            let gauges = parse_openmetrics(&dir.join(format!("metrics/{name}.om{gz}")), &name);
            (name, Server { calls, gauges })
        })
        .collect();
    Fleet {
        incidents: load_incidents(dir).unwrap(),
        servers,
        start,
        end,
    }
}

// ---------------------------------------------------------------- statistics

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    assert!(!v.is_empty(), "no values");
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn median(v: Vec<f64>) -> f64 {
    quantile(v, 0.5)
}

/// Least-squares slope (value per ms) and value at the last point.
fn fit(points: &[(i64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let t0 = points[0].0;
    let mx = points.iter().map(|p| (p.0 - t0) as f64).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points
        .iter()
        .map(|p| ((p.0 - t0) as f64 - mx) * (p.1 - my))
        .sum();
    let sxx: f64 = points
        .iter()
        .map(|p| ((p.0 - t0) as f64 - mx).powi(2))
        .sum();
    let slope = sxy / sxx;
    let last = my + slope * ((points[points.len() - 1].0 - t0) as f64 - mx);
    (slope, last)
}

fn between(points: &[(i64, f64)], from: i64, to: i64) -> Vec<(i64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(t, _)| t >= from && t < to)
        .collect()
}

fn mean(v: &[(i64, f64)]) -> f64 {
    v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64
}

/// Calls per hour of the data.
fn hourly<'a>(fleet: &Fleet, calls: impl Iterator<Item = &'a Call>) -> Vec<Vec<&'a Call>> {
    let hours = ((fleet.end - fleet.start) / HOUR) as usize;
    let mut out = vec![Vec::new(); hours];
    for c in calls {
        out[((c.ts - fleet.start) / HOUR) as usize].push(c);
    }
    out
}

// ---------------------------------------------------------------- the checks

/// Everything a fleet must show: its form, Little's law, each incident in
/// the data it names, and quiet behaviour everywhere else.
fn check_fleet(dir: &Path, opts: &GenerateOptions) {
    let fleet = load_fleet(dir, opts);
    assert_eq!(fleet.incidents.len(), opts.servers.min(5));
    let by_server: BTreeMap<&str, &Incident> = fleet
        .incidents
        .iter()
        .map(|i| (i.server.as_str(), i))
        .collect();
    assert_eq!(
        by_server.len(),
        fleet.incidents.len(),
        "one incident per server"
    );

    // Once it has slowed down, the regressed tool takes more call time than
    // any tool of its own server or of a quiet server: a bottleneck ranking
    // by call time puts it first. (A surge elsewhere may briefly outweigh it.)
    if let Some(inc) = fleet
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::LatencyRegression)
    {
        let mut time: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for (name, server) in &fleet.servers {
            if name != &inc.server && by_server.contains_key(name.as_str()) {
                continue;
            }
            for c in server.calls.iter().filter(|c| c.ts >= inc.start_ms) {
                *time
                    .entry((name.as_str(), c.tool.as_deref().unwrap_or("")))
                    .or_default() += c.duration_ms;
            }
        }
        let top = time.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(
            *top,
            (inc.server.as_str(), inc.tool.as_deref().unwrap()),
            "the regression is the bottleneck"
        );
    }
    for (server_name, server) in &fleet.servers {
        let incident = by_server.get(server_name.as_str()).copied();
        let kind = incident.map(|i| i.kind);
        let name = &format!("{server_name} ({kind:?})");
        check_form(&fleet, name, server);
        check_littles_law(&fleet, name, server);
        if let Some(inc) = incident {
            assert!(inc.start_ms >= fleet.start + 6 * HOUR, "{inc:?}");
            match inc.kind {
                IncidentKind::MemoryLeak => check_leak(&fleet, server, inc),
                IncidentKind::LatencyRegression => check_regression(server, inc),
                IncidentKind::ErrorBurst => check_burst(&fleet, server, inc),
                IncidentKind::DiskFill => check_disk_fill(&fleet, server, inc),
                IncidentKind::SaturationKnee => check_knee(server, inc),
            }
        }
        // Quiet in every respect the server's own incident does not touch.
        use IncidentKind::*;
        let touches = |ks: &[IncidentKind]| kind.is_some_and(|k| ks.contains(&k));
        if !touches(&[MemoryLeak]) {
            quiet_memory_and_sessions(&fleet, name, server);
        }
        if !touches(&[DiskFill]) {
            quiet_disk(&fleet, name, server);
        }
        // A slower tool (or a saturated server) times out more often.
        if !touches(&[ErrorBurst, SaturationKnee, LatencyRegression]) {
            quiet_errors(&fleet, name, server);
        }
        if !touches(&[LatencyRegression, SaturationKnee]) {
            quiet_latency(&fleet, name, server);
        }
        if !touches(&[SaturationKnee]) {
            // Clients reconnecting after a restart make a short burst of calls.
            let skip = incident
                .filter(|i| i.kind == MemoryLeak)
                .map(|i| (i.end_ms, i.end_ms + 15 * MINUTE));
            quiet_load(&fleet, name, server, skip);
        }
    }
}

fn check_form(fleet: &Fleet, name: &str, s: &Server) {
    let metrics: Vec<&str> = s.gauges.keys().map(String::as_str).collect();
    assert_eq!(
        metrics,
        [
            "disk.free_bytes",
            "disk.total_bytes",
            "mcp.server.requests.in_flight",
            "mcp.server.sessions.limit",
            "mcp.server.sessions.open",
            "process.cpu.utilization",
            "process.memory.limit",
            "process.memory.usage",
        ]
    );
    let minutes = ((fleet.end - fleet.start) / MINUTE) as usize;
    for (metric, samples) in &s.gauges {
        assert!(
            samples.len() == minutes || samples.len() == minutes - 1,
            "{name} {metric}: one sample a minute"
        );
        assert!(
            samples
                .iter()
                .all(|&(t, _)| (t - fleet.start) % MINUTE == 0)
        );
    }
    let methods: BTreeSet<&str> = s.calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        BTreeSet::from([
            "initialize",
            "prompts/get",
            "resources/read",
            "tools/call",
            "tools/list"
        ]),
        "{name}"
    );
    let tool_calls = s.calls.iter().filter(|c| c.method == "tools/call").count();
    assert!(
        tool_calls as f64 > 0.75 * s.calls.len() as f64,
        "{name}: mostly tools/call"
    );
    let tools: BTreeSet<&str> = s.calls.iter().filter_map(|c| c.tool.as_deref()).collect();
    assert!((5..=8).contains(&tools.len()), "{name}: {tools:?}");
    // Each tool has its own long-tailed latency.
    for tool in &tools {
        let d: Vec<f64> = s
            .tool_calls(tool)
            .filter(|c| !c.error)
            .map(|c| c.duration_ms)
            .collect();
        if d.len() > 500 {
            let (p50, p99) = (quantile(d.clone(), 0.5), quantile(d, 0.99));
            assert!(
                p99 > 2.5 * p50,
                "{name} {tool}: a long tail ({p50} / {p99})"
            );
        }
    }
    let util = s.gauge("process.cpu.utilization");
    assert!(util.iter().all(|&(_, v)| (0.0..=1.0).contains(&v)));
    assert!(s.constant("process.memory.limit") > 0.0);
    assert!(s.constant("disk.total_bytes") > 0.0);
    assert!(s.constant("mcp.server.sessions.limit") > 0.0);
    let limit = s.constant("process.memory.limit");
    assert!(
        s.gauge("process.memory.usage")
            .iter()
            .all(|&(_, v)| v > 0.0 && v < limit)
    );
}

/// In-flight requests (the mean over each minute) times time equals the time
/// spent in calls; CPU follows the call rate.
fn check_littles_law(fleet: &Fleet, name: &str, s: &Server) {
    let in_flight = s.gauge("mcp.server.requests.in_flight");
    let cpu = s.gauge("process.cpu.utilization");
    let hours = hourly(fleet, s.calls.iter());
    let (mut rates, mut cpus) = (Vec::new(), Vec::new());
    for (h, calls) in hours.iter().enumerate() {
        let from = fleet.start + h as i64 * HOUR;
        let busy: f64 = calls.iter().map(|c| c.duration_ms).sum();
        // Scrape t covers the minute before it.
        let flight = between(in_flight, from + MINUTE, from + HOUR + MINUTE);
        if flight.len() < 60 {
            continue; // the restart's missing scrape
        }
        let gauge_busy: f64 = flight.iter().map(|p| p.1 * 60_000.0).sum();
        assert!(
            (gauge_busy - busy).abs() <= 0.05 * busy + 65_000.0,
            "{name} hour {h}: in-flight {gauge_busy} ms vs calls {busy} ms"
        );
        rates.push(calls.len() as f64);
        cpus.push(mean(&between(cpu, from + MINUTE, from + HOUR + MINUTE)));
    }
    let n = rates.len() as f64;
    let (mr, mc) = (rates.iter().sum::<f64>() / n, cpus.iter().sum::<f64>() / n);
    let cov: f64 = rates
        .iter()
        .zip(&cpus)
        .map(|(r, c)| (r - mr) * (c - mc))
        .sum();
    let vr: f64 = rates.iter().map(|r| (r - mr).powi(2)).sum();
    let vc: f64 = cpus.iter().map(|c| (c - mc).powi(2)).sum();
    let corr = cov / (vr * vc).sqrt();
    assert!(corr > 0.8, "{name}: CPU follows the call rate (r = {corr})");
}

fn check_leak(fleet: &Fleet, s: &Server, inc: &Incident) {
    let (start, restart) = (inc.start_ms, inc.end_ms);
    let mem = s.gauge("process.memory.usage");
    let limit = s.constant("process.memory.limit");
    let before = between(mem, fleet.start, start);
    assert!(
        before.iter().all(|p| p.1 < 0.5 * limit),
        "baseline before the leak"
    );
    let during = between(mem, start + MINUTE, restart + 1);
    let peak = during.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!(
        peak >= 0.95 * limit,
        "memory reaches {peak} of {limit} before the restart"
    );
    let last = during.last().unwrap();
    assert!(
        last.0 > restart - MINUTE && last.1 >= 0.95 * limit,
        "peak right before the restart"
    );
    // Linear: the middle of the leak is about halfway between baseline and limit.
    let base = median(before.iter().map(|p| p.1).collect());
    let mid = between(mem, start + (restart - start) / 2 - MINUTE, restart);
    let expect = (base + 0.985 * limit) / 2.0;
    assert!(
        (mid[0].1 - expect).abs() < 0.1 * limit,
        "linear growth: {} vs {expect}",
        mid[0].1
    );
    // One scrape missing, then memory back to baseline and no open sessions.
    let gap: Vec<i64> = mem
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 != MINUTE)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert_eq!(gap, vec![2 * MINUTE], "one scrape missing");
    assert!(between(mem, restart + 1, restart + MINUTE + 1).is_empty());
    let after = between(mem, restart + MINUTE + 1, fleet.end + 1);
    assert!(
        after[0].1 < 0.5 * limit,
        "memory back to baseline after the restart"
    );
    assert!(after.iter().all(|p| p.1 < 0.5 * limit));
    let sessions = s.gauge("mcp.server.sessions.open");
    let first_after = between(sessions, restart + MINUTE + 1, fleet.end + 1)[0];
    assert_eq!(first_after.1, 0.0, "sessions drop to 0");
    assert!(
        between(sessions, restart - 10 * MINUTE, restart + 1)
            .iter()
            .all(|p| p.1 > 0.0)
    );
    assert!(
        !s.calls
            .iter()
            .any(|c| c.ts >= restart && c.ts < restart + 2 * MINUTE),
        "no calls while the server is down"
    );
}

fn check_regression(s: &Server, inc: &Incident) {
    let tool = inc.tool.as_deref().expect("a regression names its tool");
    assert!(inc.detail.contains(tool));
    let ok = |c: &&Call| !c.error;
    let before: Vec<f64> = s
        .tool_calls(tool)
        .filter(ok)
        .filter(|c| c.ts < inc.start_ms)
        .map(|c| c.duration_ms)
        .collect();
    let after: Vec<f64> = s
        .tool_calls(tool)
        .filter(ok)
        .filter(|c| c.ts >= inc.start_ms)
        .map(|c| c.duration_ms)
        .collect();
    let ratio = median(after) / median(before);
    assert!((2.0..=3.6).contains(&ratio), "{tool}: median x{ratio}");
    // The other tools keep their latency.
    let tools: BTreeSet<&str> = s.calls.iter().filter_map(|c| c.tool.as_deref()).collect();
    for other in tools.iter().filter(|t| **t != tool) {
        let b: Vec<f64> = s
            .tool_calls(other)
            .filter(ok)
            .filter(|c| c.ts < inc.start_ms)
            .map(|c| c.duration_ms)
            .collect();
        let a: Vec<f64> = s
            .tool_calls(other)
            .filter(ok)
            .filter(|c| c.ts >= inc.start_ms)
            .map(|c| c.duration_ms)
            .collect();
        if a.len() > 100 && b.len() > 100 {
            let r = median(a) / median(b);
            assert!((0.8..1.25).contains(&r), "{other} unchanged, got x{r}");
        }
    }
    // The regressed tool takes the largest share of call time: the bottleneck.
    let mut time: BTreeMap<&str, f64> = BTreeMap::new();
    for c in s.calls.iter().filter(|c| c.ts >= inc.start_ms) {
        *time.entry(c.tool.as_deref().unwrap_or("")).or_default() += c.duration_ms;
    }
    let top = time.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(*top, tool, "{time:?}");
}

fn check_burst(fleet: &Fleet, s: &Server, inc: &Incident) {
    let tool = inc.tool.as_deref().expect("a burst names its tool");
    assert!(inc.detail.contains(tool));
    let len = inc.end_ms - inc.start_ms;
    assert!((15 * MINUTE..=45 * MINUTE).contains(&len));
    let inside: Vec<&Call> = s
        .tool_calls(tool)
        .filter(|c| c.ts >= inc.start_ms && c.ts < inc.end_ms)
        .collect();
    let outside: Vec<&Call> = s
        .tool_calls(tool)
        .filter(|c| c.ts < inc.start_ms || c.ts >= inc.end_ms)
        .collect();
    let ratio = |v: &[&Call]| v.iter().filter(|c| c.error).count() as f64 / v.len() as f64;
    assert!(inside.len() >= 20, "{} calls in the burst", inside.len());
    assert!(inside.iter().filter(|c| c.error).count() >= 5);
    assert!(
        ratio(&inside) >= 0.15,
        "burst error ratio {}",
        ratio(&inside)
    );
    assert!(
        ratio(&outside) <= 0.02,
        "error ratio outside {}",
        ratio(&outside)
    );
    // Server-wide, the burst stands out too: at least 4% errors over the window.
    let all: Vec<&Call> = s
        .calls
        .iter()
        .filter(|c| c.ts >= inc.start_ms && c.ts < inc.end_ms)
        .collect();
    assert!(ratio(&all) >= 0.04, "server error ratio {}", ratio(&all));
    // Nothing like it outside the window: 30-minute windows stay under 10%.
    let windows = (fleet.end - fleet.start) / (30 * MINUTE);
    for w in 0..windows {
        let from = fleet.start + w * 30 * MINUTE;
        let to = from + 30 * MINUTE;
        if to > inc.start_ms && from < inc.end_ms {
            continue;
        }
        let calls: Vec<&Call> = s
            .tool_calls(tool)
            .filter(|c| c.ts >= from && c.ts < to)
            .collect();
        if calls.len() >= 20 {
            assert!(ratio(&calls) < 0.10, "window {w}: {}", ratio(&calls));
        }
    }
}

fn check_disk_fill(fleet: &Fleet, s: &Server, inc: &Incident) {
    let free = s.gauge("disk.free_bytes");
    let total = s.constant("disk.total_bytes");
    assert!(
        inc.end_ms > fleet.end,
        "exhaustion is projected past the data"
    );
    // Falling since the start, projecting exhaustion 24-48 hours after the end,
    // whether the fit takes the whole fall or the last 12 hours.
    for from in [inc.start_ms + MINUTE, fleet.end - 12 * HOUR] {
        let (slope, last) = fit(&between(free, from, fleet.end + 1));
        assert!(slope < 0.0);
        let zero = fleet.end + (last / -slope) as i64;
        let hours = (zero - fleet.end) as f64 / HOUR as f64;
        assert!(
            (24.0..=48.0).contains(&hours),
            "fills {hours} h after the end"
        );
        assert!(
            (zero - inc.end_ms).abs() < 3 * HOUR,
            "end is the projected exhaustion"
        );
    }
    // Steady before the start.
    let before = between(free, fleet.start, inc.start_ms);
    let (slope, _) = fit(&before);
    assert!(
        slope * 24.0 * HOUR as f64 > -0.01 * total,
        "flat before the fall"
    );
}

fn check_knee(s: &Server, inc: &Incident) {
    const RAMP: i64 = 10 * MINUTE;
    let (from, to) = (inc.start_ms + RAMP, inc.end_ms - RAMP);
    let (pre_from, pre_to) = (inc.start_ms - 2 * HOUR, inc.start_ms);
    let count = |a: i64, b: i64| s.calls.iter().filter(|c| c.ts >= a && c.ts < b).count() as f64;
    let rate_up =
        (count(from, to) / (to - from) as f64) / (count(pre_from, pre_to) / (2 * HOUR) as f64);
    assert!((2.5..=6.0).contains(&rate_up), "call rate x{rate_up}");
    let p95 = |a: i64, b: i64| {
        quantile(
            s.calls
                .iter()
                .filter(|c| c.ts >= a && c.ts < b && c.method == "tools/call")
                .map(|c| c.duration_ms)
                .collect(),
            0.95,
        )
    };
    let slow = p95(from, to) / p95(pre_from, pre_to);
    assert!(slow >= 2.0, "p95 x{slow} in the surge");
    let flight = s.gauge("mcp.server.requests.in_flight");
    let f_up = mean(&between(flight, from, to)) / mean(&between(flight, pre_from, pre_to));
    assert!(f_up >= 4.0, "in-flight x{f_up}");
    // The knee: latency is flat while in-flight is low and climbs past a threshold.
    let cpu = s.gauge("process.cpu.utilization");
    assert!(mean(&between(cpu, from, to)) > 0.6, "busy during the surge");
}

fn quiet_memory_and_sessions(fleet: &Fleet, name: &str, s: &Server) {
    let limit = s.constant("process.memory.limit");
    let mem = s.gauge("process.memory.usage");
    let max = mem.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!(max < 0.6 * limit, "{name}: memory {max} of {limit}");
    let minutes = ((fleet.end - fleet.start) / MINUTE) as usize;
    assert_eq!(mem.len(), minutes, "{name}: no missing scrapes");
    let open = s.gauge("mcp.server.sessions.open");
    let limit = s.constant("mcp.server.sessions.limit");
    assert!(open.iter().all(|p| p.1 <= 0.5 * limit), "{name}: sessions");
    // Sessions are open from the first minute: the data starts in a steady state.
    assert!(
        open[..10].iter().all(|p| p.1 > 0.0),
        "{name}: sessions at the start"
    );
}

fn quiet_disk(fleet: &Fleet, name: &str, s: &Server) {
    let free = s.gauge("disk.free_bytes");
    for from in [fleet.start, fleet.end - 24 * HOUR, fleet.end - 6 * HOUR] {
        let (slope, last) = fit(&between(free, from, fleet.end + 1));
        if slope < 0.0 {
            let days = last / -slope / (24 * HOUR) as f64;
            assert!(days > 30.0, "{name}: disk would fill in {days} days");
        }
    }
}

fn quiet_errors(fleet: &Fleet, name: &str, s: &Server) {
    let errors = s.calls.iter().filter(|c| c.error).count() as f64 / s.calls.len() as f64;
    assert!(
        // 0.03-0.07% base failures (a 99.9% SLO met), plus the odd timeout.
        (0.0001..=0.002).contains(&errors),
        "{name}: base error rate {errors}"
    );
    for (h, calls) in hourly(fleet, s.calls.iter()).iter().enumerate() {
        let e = calls.iter().filter(|c| c.error).count() as f64 / calls.len() as f64;
        assert!(e < 0.05, "{name} hour {h}: {e} errors");
    }
    let tools: BTreeSet<&str> = s.calls.iter().filter_map(|c| c.tool.as_deref()).collect();
    for tool in tools {
        let windows = (fleet.end - fleet.start) / (30 * MINUTE);
        for w in 0..windows {
            let from = fleet.start + w * 30 * MINUTE;
            let calls: Vec<&Call> = s
                .tool_calls(tool)
                .filter(|c| c.ts >= from && c.ts < from + 30 * MINUTE)
                .collect();
            // What a sane rule would call a burst: 5 errors or more, and 10% or more.
            let errors = calls.iter().filter(|c| c.error).count();
            let e = errors as f64 / calls.len() as f64;
            assert!(
                errors < 5 || e < 0.10,
                "{name} {tool} window {w}: {errors} errors, {e}"
            );
        }
    }
}

fn quiet_latency(fleet: &Fleet, name: &str, s: &Server) {
    let p95s: Vec<f64> = hourly(fleet, s.calls.iter().filter(|c| c.method == "tools/call"))
        .into_iter()
        .map(|calls| quantile(calls.iter().map(|c| c.duration_ms).collect(), 0.95))
        .collect();
    let typical = median(p95s.clone());
    let worst = p95s.iter().copied().fold(0.0, f64::max);
    assert!(
        worst < 3.0 * typical,
        "{name}: hourly p95 up to {worst}, typically {typical}"
    );
    // Each tool keeps its median through the data (6-hour blocks).
    let tools: BTreeSet<&str> = s.calls.iter().filter_map(|c| c.tool.as_deref()).collect();
    for tool in tools {
        let all = median(s.tool_calls(tool).map(|c| c.duration_ms).collect());
        for block in 0..(fleet.end - fleet.start) / (6 * HOUR) {
            let from = fleet.start + block * 6 * HOUR;
            let d: Vec<f64> = s
                .tool_calls(tool)
                .filter(|c| c.ts >= from && c.ts < from + 6 * HOUR)
                .map(|c| c.duration_ms)
                .collect();
            if d.len() >= 100 {
                let r = median(d) / all;
                assert!((0.7..1.4).contains(&r), "{name} {tool} block {block}: x{r}");
            }
        }
    }
}

fn quiet_load(fleet: &Fleet, name: &str, s: &Server, skip: Option<(i64, i64)>) {
    let rates: Vec<f64> = hourly(fleet, s.calls.iter())
        .iter()
        .map(|c| c.len() as f64 / 3600.0)
        .collect();
    let typical = median(rates.clone());
    let (min, max) = (
        rates.iter().copied().fold(f64::MAX, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    assert!(
        max < 2.2 * typical,
        "{name}: no surge ({max} vs {typical} calls/s)"
    );
    assert!(
        min > 0.35 * typical,
        "{name}: no hole ({min} vs {typical} calls/s)"
    );
    // Busy by day (UTC), quiet by night.
    let hour_of_day =
        |h: usize| ((fleet.start + h as i64 * HOUR).rem_euclid(24 * HOUR) / HOUR) as usize;
    let day: Vec<f64> = (0..rates.len())
        .filter(|&h| (12..16).contains(&hour_of_day(h)))
        .map(|h| rates[h])
        .collect();
    let night: Vec<f64> = (0..rates.len())
        .filter(|&h| (0..4).contains(&hour_of_day(h)))
        .map(|h| rates[h])
        .collect();
    assert!(
        median(day.clone()) > 1.3 * median(night.clone()),
        "{name}: a daily cycle"
    );
    let (from, to) = skip.unwrap_or((0, 0));
    let cpu: Vec<(i64, f64)> = s
        .gauge("process.cpu.utilization")
        .iter()
        .copied()
        .filter(|&(t, _)| t < from || t > to)
        .collect();
    let peak = cpu.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!(peak < 0.7, "{name}: CPU up to {peak} in a minute");
    let peak10 = cpu
        .chunks(10)
        .map(|c| c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64)
        .fold(0.0, f64::max);
    assert!(peak10 < 0.45, "{name}: CPU up to {peak10} over 10 minutes");
}

// ---------------------------------------------------------------- tests

#[test]
fn shipped_fleet_matches_a_fresh_generation_of_its_recorded_command() {
    let shipped = shipped_dir();
    let readme = read_text(&shipped.join("README.md"));
    assert!(
        readme.contains(&format!("`{SHIPPED_COMMAND}`")),
        "data/fleet/README.md records its command"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fleet");
    let summary = generate(&shipped_options(out.clone())).unwrap();
    assert_eq!(files_under(&shipped), files_under(&out), "the same files");
    assert_eq!(summary.files.len(), files_under(&out).len());
    for rel in files_under(&out) {
        let fresh = read_text(&out.join(&rel)).replace(&out.display().to_string(), "data/fleet");
        // Compare text, not gzip bytes: the deflate backend may change with
        // the dependency tree; the data must not.
        assert!(
            read_text(&shipped.join(&rel)) == fresh,
            "data/fleet/{} differs from a fresh generation: regenerate it with \
             `cargo test --release --test it -- --ignored generate_fleet::regenerate_shipped_fleet`",
            rel.display()
        );
    }
    let bytes: u64 = files_under(&shipped)
        .iter()
        .map(|r| fs::metadata(shipped.join(r)).unwrap().len())
        .sum();
    assert!(
        bytes < 8_000_000,
        "data/fleet is {bytes} bytes: a few MB at most"
    );
    let calls_bytes: u64 = files_under(&shipped)
        .iter()
        .filter(|r| r.starts_with("calls"))
        .map(|r| fs::metadata(shipped.join(r)).unwrap().len())
        .sum();
    assert!(
        (2_000_000..=5_500_000).contains(&calls_bytes),
        "calls: {calls_bytes} bytes"
    );
}

#[test]
fn shipped_fleet_shows_every_incident_and_nothing_else() {
    check_fleet(&shipped_dir(), &shipped_options(shipped_dir()));
}

#[test]
fn fresh_seeds_show_every_incident_and_nothing_else() {
    for (servers, days, seed) in [(6, 2, 11), (7, 2, 2024)] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = temp_options(&tmp, servers, days, seed);
        generate(&opts).unwrap();
        check_fleet(&opts.out, &opts);
    }
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (oa, ob) = (temp_options(&a, 6, 1, 99), temp_options(&b, 6, 1, 99));
    let sa = generate(&oa).unwrap();
    let sb = generate(&ob).unwrap();
    assert_eq!(sa.incidents, sb.incidents);
    assert_eq!((sa.calls, sa.gauge_samples), (sb.calls, sb.gauge_samples));
    assert_eq!(files_under(&oa.out), files_under(&ob.out));
    for rel in files_under(&oa.out) {
        let (x, y) = (
            fs::read(oa.out.join(&rel)).unwrap(),
            fs::read(ob.out.join(&rel)).unwrap(),
        );
        if rel.ends_with("README.md") {
            let strip = |v: Vec<u8>, o: &Path| {
                String::from_utf8(v)
                    .unwrap()
                    .replace(&o.display().to_string(), "OUT")
            };
            assert_eq!(strip(x, &oa.out), strip(y, &ob.out));
        } else {
            assert!(x == y, "{} is byte-identical", rel.display());
        }
    }
    // Plain text is the same data as gzip.
    let c = tempfile::tempdir().unwrap();
    let oc = GenerateOptions {
        gzip: false,
        ..temp_options(&c, 6, 1, 99)
    };
    let sc = generate(&oc).unwrap();
    assert_eq!(sc.incidents, sa.incidents);
    assert_eq!(
        read_text(&oc.out.join("calls/mcp-03.jsonl")),
        read_text(&oa.out.join("calls/mcp-03.jsonl.gz"))
    );
    assert_eq!(
        read_text(&oc.out.join("metrics/mcp-05.om")),
        read_text(&oa.out.join("metrics/mcp-05.om.gz"))
    );
    assert!(read_text(&oc.out.join("README.md")).contains("--no-gzip"));
    // Another seed, another fleet.
    let d = tempfile::tempdir().unwrap();
    let od = temp_options(&d, 6, 1, 100);
    let sd = generate(&od).unwrap();
    assert_ne!(sd.incidents, sa.incidents);
    assert_ne!(
        read_text(&od.out.join("calls/mcp-01.jsonl.gz")),
        read_text(&oa.out.join("calls/mcp-01.jsonl.gz"))
    );
}

#[test]
fn incidents_round_trip_and_bad_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = temp_options(&tmp, 3, 1, 5);
    let summary = generate(&opts).unwrap();
    let kinds: Vec<IncidentKind> = summary.incidents.iter().map(|i| i.kind).collect();
    let mut expect = vec![
        IncidentKind::MemoryLeak,
        IncidentKind::LatencyRegression,
        IncidentKind::ErrorBurst,
    ];
    let mut got = kinds.clone();
    got.sort_by_key(|k| format!("{k:?}"));
    expect.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(got, expect, "with 3 servers, the first three kinds");
    let path = opts.out.join("incidents.json");
    assert_eq!(load_incidents(&path).unwrap(), summary.incidents);
    assert_eq!(load_incidents(&opts.out).unwrap(), summary.incidents);
    let json: serde_json::Value = serde_json::from_str(&read_text(&path)).unwrap();
    let first = &json[0];
    for field in [
        "kind", "server", "start", "end", "start_ms", "end_ms", "tool", "metric", "detail",
    ] {
        assert!(first.get(field).is_some(), "incidents.json has {field}");
    }
    for inc in &summary.incidents {
        assert_eq!(
            mcpops::time::parse_timestamp(&inc.start),
            Some(inc.start_ms)
        );
        assert_eq!(mcpops::time::parse_timestamp(&inc.end), Some(inc.end_ms));
    }
    fs::write(&path, "[{\"kind\":\"meteor_strike\"}]").unwrap();
    match load_incidents(&path) {
        Err(e @ GenerateError::Json { .. }) => assert!(e.to_string().contains("incidents.json")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load_incidents(&tmp.path().join("missing.json")),
        Err(GenerateError::Io { .. })
    ));
}

/// The checks over many seeds and shapes (slow in debug builds):
/// `cargo test --release --test it -- --ignored generate_fleet::many_seeds`.
#[test]
#[ignore]
fn many_seeds() {
    let seeds = std::env::var("MCPOPS_SEEDS").unwrap_or_else(|_| "0..40".into());
    let (a, b) = seeds.split_once("..").expect("MCPOPS_SEEDS=FROM..TO");
    for seed in a.parse::<u64>().unwrap()..b.parse().unwrap() {
        let tmp = tempfile::tempdir().unwrap();
        let (servers, days) = [(8, 3), (6, 1), (10, 4), (5, 2)][seed as usize % 4];
        let opts = temp_options(&tmp, servers, days, seed);
        generate(&opts).unwrap();
        eprintln!("seed {seed}: {servers} servers, {days} days");
        check_fleet(&opts.out, &opts);
    }
}

/// Writes data/fleet. Run by hand after a deliberate change to the generator.
#[test]
#[ignore]
fn regenerate_shipped_fleet() {
    // Relative to the crate root (cargo's working directory for tests), so
    // that README.md records `--out data/fleet`.
    assert_eq!(
        std::env::current_dir().unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
    );
    let out = PathBuf::from("data/fleet");
    for sub in ["calls", "metrics"] {
        let _ = fs::remove_dir_all(out.join(sub));
    }
    let summary = generate(&shipped_options(out)).unwrap();
    eprintln!(
        "{} calls, {} gauge samples, {} incidents",
        summary.calls,
        summary.gauge_samples,
        summary.incidents.len()
    );
}
