//! What the analyzer reads from the store: every MCP call per server and
//! tool (time, duration, outcome), and each server's gauges, plus the
//! regular per-server buckets (calls, errors, latency quantiles, gauge
//! means) that knees, correlations, queueing checks and anomaly scores
//! share.
//!
//! Calls are read with the session label dropped ([`ScanRequest::without`]):
//! an MCP session is a series of its own in the store, and the analyzer
//! only ever pools calls by server and tool.

use super::histogram::{self, Outcome};
use super::shapes::{self, Conversion, HistogramPart, Role};
use crate::model::SeriesKey;
use crate::names::{
    CPU, DISK_FREE, DISK_TOTAL, IN_FLIGHT, MEMORY, MEMORY_LIMIT, SERVER_LABEL, SESSIONS,
    SESSIONS_LIMIT,
};
use crate::store::{ScanRequest, SeriesData, Snapshot, StoreError};
use crate::time::MINUTE_MS;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Gauges that hold a capacity, not a signal: the limits others are measured against.
pub const LIMITS: [&str; 3] = [MEMORY_LIMIT, SESSIONS_LIMIT, DISK_TOTAL];

/// Width of the regular buckets knees, correlations and anomalies work on.
pub const BUCKET_MS: i64 = 5 * MINUTE_MS;

/// The most buckets per server the analyzer works on: a year of data (a leap
/// one). Every bucket costs each server about 150 bytes and each signal's
/// decomposition its share of the time, so a range reaching back to 1970
/// would take gigabytes.
pub const MAX_BUCKETS: i64 = 366 * 24 * 12;

/// Values beyond ±this are left out of the analysis (and named in its
/// notes): no metric means such a number, and the kernels' sums of squares
/// (least squares, variances, change-point costs) stay within f64 only below
/// about 1e150 (squares to 1e300, and up to 1e8 of them to f64::MAX).
pub const MAX_ANALYSABLE: f64 = 1e150;

/// Samples of one series left out of the analysis for being beyond
/// ±[`MAX_ANALYSABLE`].
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut {
    pub server: String,
    /// The metric, or for calls "duration of TOOL calls".
    pub series: String,
    pub count: u64,
    /// The first of them.
    pub first_ms: i64,
    pub first_value: f64,
}

impl LeftOut {
    /// One line for the analysis' notes.
    pub fn note(&self) -> String {
        format!(
            "{}: {} value(s) of {} beyond ±{MAX_ANALYSABLE:e} left out, the first {:e} at {}",
            self.server,
            self.count,
            self.series,
            self.first_value,
            crate::time::format_ms(self.first_ms)
        )
    }
}

/// Whether a value can take part in the analysis: finite values beyond
/// ±[`MAX_ANALYSABLE`] cannot (non-finite ones are skipped by every kernel).
fn overflows(v: f64) -> bool {
    v.is_finite() && v.abs() > MAX_ANALYSABLE
}

/// Fails with a message when [from, to] holds more than [`MAX_BUCKETS`]
/// buckets: the check the analyzer makes before it allocates them.
pub fn check_span(from_ms: i64, to_ms: i64) -> Result<(), String> {
    let buckets = (i128::from(to_ms) - i128::from(from_ms)) / i128::from(BUCKET_MS) + 1;
    if buckets > i128::from(MAX_BUCKETS) {
        return Err(format!(
            "the data from {} to {} spans {} days; the analyzer takes at most {} days \
             ({MAX_BUCKETS} five-minute buckets): choose a shorter period with --from/--to",
            crate::time::format_ms(from_ms),
            crate::time::format_ms(to_ms),
            (i128::from(to_ms) - i128::from(from_ms)) / 86_400_000,
            MAX_BUCKETS / 288,
        ));
    }
    Ok(())
}

/// One MCP call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Call {
    pub t: i64,
    pub seconds: f64,
    /// Failed with an error the server owns (not a client's malformed or
    /// unknown request: JSON-RPC -32700 and -32600 to -32602).
    pub server_error: bool,
    /// Failed for any reason.
    pub failed: bool,
}

/// The calls of one tool (or, for calls that name no tool, one method) on one server.
#[derive(Clone, Debug)]
pub struct ToolCalls {
    pub tool: String,
    /// In time order.
    pub calls: Vec<Call>,
    /// Rebuilt from histogram buckets: durations are known to a bucket,
    /// so a level is a mean of log durations, not a median that jumps a
    /// whole bucket when the true one crosses a bound.
    pub binned: bool,
}

/// A gauge's samples in time order.
#[derive(Clone, Debug, Default)]
pub struct Gauge {
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

impl Gauge {
    /// The newest finite value.
    pub fn last(&self) -> Option<f64> {
        self.vs.iter().rev().copied().find(|v| v.is_finite())
    }
}

/// Per-bucket figures of one server over the analysed range.
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    /// Start of bucket 0; bucket k covers [start + k·BUCKET_MS, +BUCKET_MS).
    pub start_ms: i64,
    pub calls: Vec<u32>,
    pub server_errors: Vec<u32>,
    /// Calls per second.
    pub rate: Vec<f64>,
    /// p95 latency in seconds (NaN with fewer than 5 calls).
    pub p95: Vec<f64>,
    /// Mean latency in seconds (NaN without calls).
    pub mean: Vec<f64>,
    /// Mean of each gauge's samples in the bucket (NaN without one).
    pub gauges: BTreeMap<String, Vec<f64>>,
}

impl Buckets {
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn time(&self, k: usize) -> i64 {
        self.start_ms + k as i64 * BUCKET_MS
    }

    /// Every signal per bucket by the analyzer's name for it: the call
    /// rate, p95 latency, the server error ratio and each gauge but the limits.
    /// Borrowed where stored; only the error ratio is computed.
    pub fn signals(&self) -> Vec<(&str, Cow<'_, [f64]>)> {
        let mut out = vec![
            ("call rate", Cow::Borrowed(self.rate.as_slice())),
            ("p95 latency", Cow::Borrowed(self.p95.as_slice())),
            ("server error ratio", Cow::Owned(self.error_ratio())),
        ];
        out.extend(
            self.gauges
                .iter()
                .filter(|(name, _)| !LIMITS.contains(&name.as_str()))
                .map(|(name, v)| (name.as_str(), Cow::Borrowed(v.as_slice()))),
        );
        out
    }

    /// Server errors per call in each bucket (NaN without calls).
    pub fn error_ratio(&self) -> Vec<f64> {
        self.calls
            .iter()
            .zip(&self.server_errors)
            .map(|(c, e)| {
                if *c == 0 {
                    f64::NAN
                } else {
                    f64::from(*e) / f64::from(*c)
                }
            })
            .collect()
    }
}

/// One server: its calls per tool, gauges, and buckets.
#[derive(Clone, Debug)]
pub struct ServerData {
    pub server: String,
    pub tools: Vec<ToolCalls>,
    pub gauges: BTreeMap<String, Gauge>,
    pub buckets: Buckets,
    /// Samples left out for being beyond ±[`MAX_ANALYSABLE`].
    pub left_out: Vec<LeftOut>,
    /// When the process restarted, as its start time or its counters say.
    pub restarts: Vec<i64>,
    /// What reading its series found wrong (a bucket bound that is not a
    /// number, a histogram without `+Inf`), one line each.
    pub notes: Vec<String>,
}

impl ServerData {
    /// A server from its calls and gauges (each in time order), with buckets
    /// over their span clipped to [from, to].
    pub fn new(
        server: String,
        tools: Vec<ToolCalls>,
        gauges: BTreeMap<String, Gauge>,
        (from_ms, to_ms): (i64, i64),
        left_out: Vec<LeftOut>,
    ) -> ServerData {
        let buckets = bucketize(&tools, &gauges, from_ms, to_ms);
        ServerData {
            server,
            tools,
            gauges,
            buckets,
            left_out,
            restarts: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn gauge(&self, name: &str) -> Option<&Gauge> {
        self.gauges.get(name).filter(|g| !g.ts.is_empty())
    }

    pub fn call_count(&self) -> usize {
        self.tools.iter().map(|t| t.calls.len()).sum()
    }
}

/// Everything the analyzer reads, per server in name order.
#[derive(Clone, Debug)]
pub struct FleetData {
    pub from_ms: i64,
    pub to_ms: i64,
    pub servers: Vec<ServerData>,
    /// The label that names servers.
    pub server_label: String,
    /// Every metric name in the store, recognised or not.
    pub found_metrics: Vec<String>,
}

/// How [`FleetData::load_with`] reads the store.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The label that names servers; `None` finds it ([`shapes::SERVER_LABELS`]).
    pub server_label: Option<String>,
}

/// The most calls the analyzer rebuilds from counters and histograms in
/// one run (about 24 bytes each): beyond it, it asks for a shorter period
/// rather than take gigabytes.
pub const MAX_REBUILT_CALLS: usize = 40_000_000;

/// One server's series as the store gave them, sorted by role.
#[derive(Default)]
struct RawServer {
    events: Vec<SeriesData>,
    histograms: Vec<(HistogramPart, SeriesData)>,
    counters: Vec<SeriesData>,
    starts: Vec<SeriesData>,
    gauges: Vec<(&'static str, Conversion, SeriesData)>,
    generic: Vec<(bool, SeriesData)>,
}

impl RawServer {
    fn has_calls(&self) -> bool {
        !self.events.is_empty() || !self.histograms.is_empty() || !self.counters.is_empty()
    }

    fn all(&self) -> impl Iterator<Item = &SeriesData> {
        self.events
            .iter()
            .chain(self.histograms.iter().map(|h| &h.1))
            .chain(&self.counters)
            .chain(&self.starts)
            .chain(self.gauges.iter().map(|g| &g.2))
            .chain(self.generic.iter().map(|g| &g.1))
    }

    fn absorb_resources(&mut self, other: &RawServer) {
        self.gauges.extend(other.gauges.iter().cloned());
        self.generic.extend(other.generic.iter().cloned());
        self.starts.extend(other.starts.iter().cloned());
    }
}

/// The label naming servers: the first of [`shapes::SERVER_LABELS`] that a
/// series the table recognises carries, else the first any series carries.
fn find_server_label(
    labels_of: &BTreeMap<&str, BTreeSet<&str>>,
    roles: &[(String, Role)],
) -> String {
    let carried = |recognised: bool| {
        shapes::SERVER_LABELS.iter().find(|l| {
            roles.iter().any(|(m, r)| {
                (!recognised || !matches!(r, Role::Generic { .. }))
                    && labels_of.get(m.as_str()).is_some_and(|ls| ls.contains(*l))
            })
        })
    };
    carried(true)
        .or_else(|| carried(false))
        .unwrap_or(&SERVER_LABEL)
        .to_string()
}

/// A bucket's upper bound as Prometheus reads it (`+Inf` included); `None`
/// for anything that is not a number.
fn parse_le(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| !v.is_nan())
}

/// The host part of an `instance` value (`host:port`, `[v6]:port`).
fn host_of(instance: &str) -> Option<&str> {
    let (host, port) = instance.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(host)
}

impl FleetData {
    /// Reads calls and gauges in [from, to] (inclusive), with the server
    /// label found in the data. See [`FleetData::load_with`].
    pub fn load(snapshot: &Snapshot, from_ms: i64, to_ms: i64) -> Result<FleetData, StoreError> {
        Self::load_with(snapshot, from_ms, to_ms, &LoadOptions::default())
    }

    /// Reads calls and gauges in [from, to] (inclusive), by server, through
    /// [`shapes`]: calls from per-call samples, histograms and request
    /// counters; resources under their known names; counters as rates.
    /// Values beyond ±[`MAX_ANALYSABLE`] are left out (see
    /// [`ServerData::left_out`]); data spanning more than [`MAX_BUCKETS`]
    /// buckets, or more than [`MAX_REBUILT_CALLS`] calls to rebuild, is
    /// refused ([`StoreError::Invalid`]) before the memory is taken.
    pub fn load_with(
        snapshot: &Snapshot,
        from_ms: i64,
        to_ms: i64,
        opts: &LoadOptions,
    ) -> Result<FleetData, StoreError> {
        let manifest = snapshot.manifest();
        let mut labels_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for seg in &manifest.segments {
            for m in &seg.metrics {
                labels_of
                    .entry(m.as_str())
                    .or_default()
                    .extend(seg.labels.iter().map(String::as_str));
            }
        }
        let histograms: Vec<String> = labels_of
            .iter()
            .filter(|(_, ls)| ls.contains("le"))
            .filter_map(|(m, _)| m.strip_suffix("_bucket").map(str::to_string))
            .collect();
        let roles: Vec<(String, Role)> = labels_of
            .keys()
            .map(|m| {
                // A counter by its `# TYPE` (or the store's inference), so
                // `requests` declared a counter is a rate without `_total`.
                let counter = manifest.metadata.get(*m).and_then(|meta| {
                    if meta.is_cumulative() {
                        Some(true)
                    } else if meta.is_gauge() {
                        Some(false)
                    } else {
                        None
                    }
                });
                (m.to_string(), shapes::role(m, &histograms, counter))
            })
            .collect();
        let label = opts
            .server_label
            .clone()
            .unwrap_or_else(|| find_server_label(&labels_of, &roles));

        // Metric by metric: a scan for one name reads only its pages.
        let mut by_server: BTreeMap<String, RawServer> = BTreeMap::new();
        for (metric, role) in &roles {
            let part = match role {
                Role::CallHistogram { part, .. } => Some(*part),
                Role::OtherHistogram(part) => Some(*part),
                _ => None,
            };
            if matches!(part, Some(HistogramPart::Created))
                || matches!(role, Role::OtherHistogram(HistogramPart::Bucket))
            {
                continue;
            }
            let without = if *role == Role::CallEvents {
                shapes::POOLED_CALL_LABELS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                Vec::new()
            };
            let series = snapshot.scan(&ScanRequest {
                start_ms: from_ms,
                end_ms: to_ms,
                metric: Some(metric.clone()),
                without,
                ..ScanRequest::all()
            })?;
            for s in series {
                let Some(server) = s.key.label(&label) else {
                    continue;
                };
                let raw = by_server.entry(server.to_string()).or_default();
                match role {
                    Role::CallEvents => raw.events.push(s),
                    Role::CallHistogram { part, .. } => raw.histograms.push((*part, s)),
                    Role::RequestCounter => raw.counters.push(s),
                    Role::StartTime => raw.starts.push(s),
                    Role::Resource(r) => raw.gauges.push((r.gauge, r.conversion, s)),
                    Role::OtherHistogram(_) => raw.generic.push((true, s)),
                    Role::Generic { counter } => raw.generic.push((*counter, s)),
                }
            }
        }
        join_hosts(&mut by_server);

        let (lo, hi) = (from_ms, to_ms);
        let extent = by_server
            .values()
            .flat_map(RawServer::all)
            .filter_map(|s| Some((*s.timestamps.first()?, *s.timestamps.last()?)))
            .fold(None, |acc: Option<(i64, i64)>, (a, b)| {
                let (a, b) = (a.min(b).max(lo), a.max(b).min(hi));
                Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
            });
        if let Some((first, last)) = extent {
            check_span(first, last).map_err(StoreError::Invalid)?;
        }
        let rebuilt = AtomicUsize::new(0);
        let servers: Vec<ServerData> = by_server
            .into_par_iter()
            .map(|(server, raw)| server_data(server, raw, (lo, hi), &rebuilt))
            .collect::<Result<_, _>>()?;
        let found_metrics = roles.into_iter().map(|(m, _)| m).collect();
        Ok(FleetData {
            from_ms,
            to_ms,
            servers,
            server_label: label,
            found_metrics,
        })
    }

    /// The time span the data really covers (the requested one may be open-ended).
    pub fn extent(&self) -> Option<(i64, i64)> {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for s in &self.servers {
            for t in &s.tools {
                if let (Some(a), Some(b)) = (t.calls.first(), t.calls.last()) {
                    lo = lo.min(a.t);
                    hi = hi.max(b.t);
                }
            }
            for g in s.gauges.values() {
                if let (Some(a), Some(b)) = (g.ts.first(), g.ts.last()) {
                    lo = lo.min(*a);
                    hi = hi.max(*b);
                }
            }
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Whether the analysis found anything it recognises: calls, or a
    /// resource it knows.
    pub fn recognised(&self) -> bool {
        self.servers.iter().any(|s| {
            s.call_count() > 0
                || s.gauges
                    .keys()
                    .any(|g| KNOWN_GAUGES.contains(&g.as_str()) && s.gauge(g).is_some())
        })
    }
}

/// The analyzer's own gauge names: what [`FleetData::recognised`] counts.
const KNOWN_GAUGES: [&str; 8] = [
    CPU,
    MEMORY,
    MEMORY_LIMIT,
    SESSIONS,
    SESSIONS_LIMIT,
    IN_FLIGHT,
    DISK_FREE,
    DISK_TOTAL,
];

/// Resources of an `instance` with no calls (node_exporter on `host:9100`)
/// belong to the servers on the same host (the MCP server on `host:9464`).
fn join_hosts(by_server: &mut BTreeMap<String, RawServer>) {
    let lonely: Vec<String> = by_server
        .iter()
        .filter(|(name, raw)| {
            !raw.has_calls()
                && host_of(name).is_some_and(|h| {
                    by_server
                        .iter()
                        .any(|(n, r)| r.has_calls() && host_of(n) == Some(h))
                })
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in lonely {
        let Some(raw) = by_server.remove(&name) else {
            continue;
        };
        let host = host_of(&name).map(str::to_string);
        for (n, r) in by_server.iter_mut() {
            if r.has_calls() && host_of(n).map(str::to_string) == host {
                r.absorb_resources(&raw);
            }
        }
    }
}

/// The value of the first of `names` a series carries.
fn first_label<'a>(key: &'a SeriesKey, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| key.label(n))
}

/// How a call series' calls ended, from its error or status label.
fn outcome_of(key: &SeriesKey) -> Outcome {
    let error = first_label(key, &shapes::ERROR_LABELS).or_else(|| {
        first_label(key, &shapes::STATUS_LABELS)
            .filter(|s| shapes::FAILED_STATUSES.contains(&s.to_ascii_lowercase().as_str()))
    });
    Outcome {
        failed: error.is_some(),
        server_error: error.is_some_and(|e| !shapes::is_client_error(e)),
    }
}

/// The tool (or, for calls that name none, the method) of a call series.
fn tool_of(key: &SeriesKey) -> String {
    first_label(key, &shapes::TOOL_LABELS)
        .or(first_label(key, &shapes::METHOD_LABELS))
        .unwrap_or("(unknown)")
        .to_string()
}

/// One server's data from its raw series: calls rebuilt from histograms and
/// counters beside the per-call samples, gauges converted and pooled,
/// restarts from start times and counter resets.
fn server_data(
    server: String,
    raw: RawServer,
    range: (i64, i64),
    rebuilt: &AtomicUsize,
) -> Result<ServerData, StoreError> {
    let mut left_out = Vec::new();
    let mut notes = Vec::new();
    let origin = raw
        .all()
        .filter_map(|s| s.timestamps.first().copied())
        .min()
        .unwrap_or(range.0);
    let mut tools: BTreeMap<String, Vec<Call>> = BTreeMap::new();
    for t in tool_calls(&server, raw.events, &mut left_out) {
        tools.entry(t.tool).or_default().extend(t.calls);
    }
    let mut restarts: Vec<i64> = Vec::new();

    // Histogram series grouped by their labels but `le`.
    type Group = (
        Vec<(f64, SeriesData)>,
        Option<SeriesData>,
        Option<SeriesData>,
    );
    let mut groups: BTreeMap<Vec<(String, String)>, Group> = BTreeMap::new();
    for (part, s) in raw.histograms {
        let key: Vec<(String, String)> = s
            .key
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        let g = groups.entry(key).or_default();
        match part {
            HistogramPart::Bucket => match s.key.label("le").map(parse_le) {
                Some(Some(le)) => g.0.push((le, s)),
                _ => notes.push(format!(
                    "{server}: {} has an `le` that is not a number ({:?}): left out",
                    s.key,
                    s.key.label("le").unwrap_or("")
                )),
            },
            HistogramPart::Count => g.1 = Some(s),
            HistogramPart::Sum => g.2 = Some(s),
            HistogramPart::Created => {}
        }
    }
    let mut count = 0usize;
    let mut binned: BTreeSet<String> = BTreeSet::new();
    for (_, (buckets, counts, sums)) in groups {
        let Some(key) = buckets
            .first()
            .map(|b| &b.1.key)
            .or(counts.as_ref().map(|c| &c.key))
        else {
            continue;
        };
        let (tool, outcome) = (tool_of(key), outcome_of(key));
        if !buckets.is_empty() {
            binned.insert(tool.clone());
        }
        if let Some(c) = &counts {
            restarts.extend(histogram::resets(&c.timestamps, &c.values));
        }
        let calls = tools.entry(tool).or_default();
        if !buckets.is_empty() {
            if !buckets.iter().any(|b| b.0 == f64::INFINITY) {
                notes.push(format!(
                    "{server}: {} has no `+Inf` bucket: calls slower than its highest bound are not counted",
                    buckets[0].1.key
                ));
            }
            let bounds = buckets
                .iter()
                .map(|(le, s)| (*le, s.timestamps.as_slice(), s.values.as_slice()))
                .collect();
            count += histogram::calls_from_histogram(
                histogram::Buckets { bounds },
                outcome,
                origin,
                calls,
            );
        } else if let Some(c) = counts {
            // Seconds per call over each interval: the `_sum`'s increase
            // over the `_count`'s.
            let sums: HashMap<(i64, i64), f64> = sums
                .map(|s| histogram::increases(&s.timestamps, &s.values, origin))
                .unwrap_or_default()
                .into_iter()
                .map(|(t0, t1, inc)| ((t0, t1), inc))
                .collect();
            let counts: HashMap<(i64, i64), f64> =
                histogram::increases(&c.timestamps, &c.values, origin)
                    .into_iter()
                    .map(|(t0, t1, inc)| ((t0, t1), inc))
                    .collect();
            let mean_of = |t0: i64, t1: i64| match (sums.get(&(t0, t1)), counts.get(&(t0, t1))) {
                (Some(s), Some(n)) if *n > 0.0 => s / n,
                _ => f64::NAN,
            };
            count += histogram::calls_from_counter(
                &c.timestamps,
                &c.values,
                mean_of,
                outcome,
                origin,
                calls,
            );
        }
        note_rebuilt(rebuilt, &mut count)?;
    }
    for c in raw.counters {
        restarts.extend(histogram::resets(&c.timestamps, &c.values));
        let calls = tools.entry(tool_of(&c.key)).or_default();
        count += histogram::calls_from_counter(
            &c.timestamps,
            &c.values,
            |_, _| f64::NAN,
            outcome_of(&c.key),
            origin,
            calls,
        );
        note_rebuilt(rebuilt, &mut count)?;
    }
    let tools: Vec<ToolCalls> = tools
        .into_iter()
        .filter(|(_, calls)| !calls.is_empty())
        .map(|(tool, mut calls)| {
            calls.sort_by_key(|c| c.t);
            let binned = binned.contains(&tool);
            ToolCalls {
                tool,
                calls,
                binned,
            }
        })
        .collect();

    for s in &raw.starts {
        restarts.extend(start_changes(s));
    }
    let mut pooled: BTreeMap<String, Gauge> = BTreeMap::new();
    let mut rates: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut filesystems: BTreeMap<(&str, String), Gauge> = BTreeMap::new();
    let gauges = raw
        .gauges
        .into_iter()
        .map(|(g, c, s)| (Cow::Borrowed(g), c, s));
    let generic = raw.generic.into_iter().map(|(counter, s)| {
        if counter {
            (
                Cow::Owned(format!("rate({})", s.key.metric)),
                Conversion::Rate,
                s,
            )
        } else {
            (Cow::Owned(s.key.metric.clone()), Conversion::AsIs, s)
        }
    });
    for (name, conversion, s) in gauges.chain(generic) {
        match conversion {
            Conversion::Rate => {
                if name == CPU {
                    restarts.extend(histogram::resets(&s.timestamps, &s.values));
                }
                let r = rates.entry(name.into_owned()).or_default();
                // A rate needs two samples: no origin, so a series' first
                // value is never taken for an increase from zero.
                let no_origin = i64::MAX;
                for (t0, t1, inc) in histogram::increases(&s.timestamps, &s.values, no_origin) {
                    if t1 > t0 {
                        *r.entry(t1).or_default() += inc / (t1.saturating_sub(t0) as f64 / 1000.0);
                    }
                }
            }
            Conversion::AsIs => {
                let fs: Vec<&str> = shapes::FILESYSTEM_LABELS
                    .iter()
                    .filter_map(|l| s.key.label(l))
                    .collect();
                let g = if fs.is_empty() || !(name == DISK_FREE || name == DISK_TOTAL) {
                    // Several series of one gauge on a server (other labels): pooled.
                    pooled.entry(name.into_owned()).or_default()
                } else {
                    let which = if name == DISK_FREE {
                        DISK_FREE
                    } else {
                        DISK_TOTAL
                    };
                    filesystems.entry((which, fs.join(" "))).or_default()
                };
                for (t, v) in s.timestamps.iter().zip(&s.values) {
                    if overflows(*v) {
                        note_left_out(&mut left_out, &server, &s.key.metric, *t, *v);
                    } else {
                        g.ts.push(*t);
                        g.vs.push(*v);
                    }
                }
            }
        }
    }
    pick_filesystem(&mut pooled, filesystems);
    for (name, r) in rates {
        let (ts, vs) = r.into_iter().unzip();
        pooled.insert(name, Gauge { ts, vs });
    }
    for g in pooled.values_mut() {
        sort_gauge(g);
    }
    left_out.sort_by(|a, b| a.series.cmp(&b.series));
    restarts.sort_unstable();
    restarts.dedup_by(|b, a| *b - *a < 10 * MINUTE_MS);
    let mut data = ServerData::new(server, tools, pooled, range, left_out);
    data.restarts = restarts;
    data.notes = notes;
    Ok(data)
}

/// Adds a server's rebuilt calls to the run's count; fails past [`MAX_REBUILT_CALLS`].
fn note_rebuilt(total: &AtomicUsize, count: &mut usize) -> Result<(), StoreError> {
    let now = total.fetch_add(*count, Ordering::Relaxed) + *count;
    *count = 0;
    if now > MAX_REBUILT_CALLS {
        return Err(StoreError::Invalid(format!(
            "the period holds more than {MAX_REBUILT_CALLS} calls counted by histograms and \
             counters; the analyzer rebuilds each one: choose a shorter period with --from/--to"
        )));
    }
    Ok(())
}

/// When a process start time changed: the new start (when it falls between
/// the two samples), else the sample that shows it.
fn start_changes(s: &SeriesData) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 1..s.values.len() {
        let (a, b) = (s.values[i - 1], s.values[i]);
        if a.is_finite() && b.is_finite() && (b - a).abs() >= 1.0 {
            let start = (b * 1000.0) as i64;
            let (t0, t1) = (s.timestamps[i - 1], s.timestamps[i]);
            out.push(if (t0..=t1).contains(&start) {
                start
            } else {
                t1
            });
        }
    }
    out
}

/// Of several filesystems, the one closest to full (the smallest share
/// free at its last sample) is the server's disk.
fn pick_filesystem(pooled: &mut BTreeMap<String, Gauge>, mut fs: BTreeMap<(&str, String), Gauge>) {
    let free_share = |key: &String, free: &Gauge| -> f64 {
        let size = fs
            .get(&(DISK_TOTAL, key.clone()))
            .and_then(Gauge::last)
            .filter(|s| *s > 0.0);
        match (free.last(), size) {
            (Some(f), Some(s)) => f / s,
            _ => f64::INFINITY,
        }
    };
    let Some(key) = fs
        .iter()
        .filter(|((which, _), _)| *which == DISK_FREE)
        .min_by(|a, b| free_share(&a.0.1, a.1).total_cmp(&free_share(&b.0.1, b.1)))
        .map(|((_, key), _)| key.clone())
    else {
        return;
    };
    for which in [DISK_FREE, DISK_TOTAL] {
        if let Some(g) = fs.remove(&(which, key.clone())) {
            pooled.insert(which.to_string(), g);
        }
    }
}

/// Counts a value left out of `series` on `server`.
fn note_left_out(left_out: &mut Vec<LeftOut>, server: &str, series: &str, t: i64, v: f64) {
    match left_out.iter_mut().find(|l| l.series == series) {
        Some(l) => {
            l.count += 1;
            if t < l.first_ms {
                (l.first_ms, l.first_value) = (t, v);
            }
        }
        None => left_out.push(LeftOut {
            server: server.to_string(),
            series: series.to_string(),
            count: 1,
            first_ms: t,
            first_value: v,
        }),
    }
}

/// One server's call series as calls per tool (or method), in time order;
/// durations beyond [`MAX_ANALYSABLE`] seconds go to `left_out`.
fn tool_calls(
    server: &str,
    series: Vec<SeriesData>,
    left_out: &mut Vec<LeftOut>,
) -> Vec<ToolCalls> {
    let mut tools: BTreeMap<String, Vec<Call>> = BTreeMap::new();
    for s in series {
        let tool = tool_of(&s.key);
        let Outcome {
            failed,
            server_error,
        } = outcome_of(&s.key);
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            if overflows(*v) {
                note_left_out(
                    left_out,
                    server,
                    &format!("duration of {tool} calls"),
                    *t,
                    *v,
                );
            }
        }
        tools.entry(tool).or_default().extend(
            s.timestamps
                .iter()
                .zip(&s.values)
                .filter(|(_, v)| v.is_finite() && **v >= 0.0 && !overflows(**v))
                .map(|(t, v)| Call {
                    t: *t,
                    seconds: *v,
                    server_error,
                    failed,
                }),
        );
    }
    tools
        .into_iter()
        .map(|(tool, mut calls)| {
            calls.sort_by_key(|c| c.t);
            ToolCalls {
                tool,
                calls,
                binned: false,
            }
        })
        .collect()
}

fn sort_gauge(g: &mut Gauge) {
    if g.ts.windows(2).all(|w| w[0] <= w[1]) {
        return;
    }
    let mut pairs: Vec<(i64, f64)> = g.ts.iter().copied().zip(g.vs.iter().copied()).collect();
    pairs.sort_by_key(|p| p.0);
    (g.ts, g.vs) = pairs.into_iter().unzip();
}

/// Buckets over the data's own span (clipped to the requested range).
fn bucketize(
    tools: &[ToolCalls],
    gauges: &BTreeMap<String, Gauge>,
    from_ms: i64,
    to_ms: i64,
) -> Buckets {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for c in tools
        .iter()
        .flat_map(|t| [t.calls.first(), t.calls.last()])
        .flatten()
    {
        lo = lo.min(c.t);
        hi = hi.max(c.t);
    }
    for g in gauges.values() {
        if let (Some(a), Some(b)) = (g.ts.first(), g.ts.last()) {
            lo = lo.min(*a);
            hi = hi.max(*b);
        }
    }
    let (lo, hi) = (lo.max(from_ms), hi.min(to_ms));
    // FleetData::load refuses longer spans with a message; a caller that
    // hands over such data gets no buckets rather than gigabytes of them.
    if lo > hi || check_span(lo, hi).is_err() {
        return Buckets::default();
    }
    let Some(start_ms) = lo.div_euclid(BUCKET_MS).checked_mul(BUCKET_MS) else {
        return Buckets::default();
    };
    // Buckets up to the last sample; one at exactly a bucket edge (data
    // that ends at midnight) does not open a bucket of its own, which
    // would hold a few samples and look like a collapse.
    let n = ((hi - start_ms) / BUCKET_MS).max(1) as usize
        + usize::from((hi - start_ms) % BUCKET_MS != 0);
    let index = |t: i64| -> Option<usize> {
        let k = t.checked_sub(start_ms)?.div_euclid(BUCKET_MS);
        (0..n as i64).contains(&k).then_some(k as usize)
    };
    let mut calls = vec![0u32; n];
    let mut server_errors = vec![0u32; n];
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); n];
    for c in tools.iter().flat_map(|t| &t.calls) {
        if let Some(k) = index(c.t) {
            calls[k] += 1;
            server_errors[k] += u32::from(c.server_error);
            durations[k].push(c.seconds);
        }
    }
    let bucket_s = BUCKET_MS as f64 / 1000.0;
    let rate = calls.iter().map(|c| f64::from(*c) / bucket_s).collect();
    let mean = durations
        .iter()
        .map(|d| {
            if d.is_empty() {
                f64::NAN
            } else {
                d.iter().sum::<f64>() / d.len() as f64
            }
        })
        .collect();
    let p95 = durations
        .iter_mut()
        .map(|d| {
            if d.len() < 5 {
                return f64::NAN;
            }
            d.sort_by(f64::total_cmp);
            crate::stats::quantile::quantile_sorted(d, 0.95)
        })
        .collect();
    let gauges = gauges
        .iter()
        .map(|(name, g)| {
            let mut sum = vec![0.0f64; n];
            let mut count = vec![0u32; n];
            for (t, v) in g.ts.iter().zip(&g.vs) {
                if let (Some(k), true) = (index(*t), v.is_finite()) {
                    sum[k] += v;
                    count[k] += 1;
                }
            }
            let means = sum
                .iter()
                .zip(&count)
                .map(|(s, c)| if *c == 0 { f64::NAN } else { s / f64::from(*c) })
                .collect();
            (name.clone(), means)
        })
        .collect();
    Buckets {
        start_ms,
        calls,
        server_errors,
        rate,
        p95,
        mean,
        gauges,
    }
}
