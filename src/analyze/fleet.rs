//! What the analyzer reads from the store: every MCP call per server and
//! tool (time, duration, outcome), and each server's gauges, plus the
//! regular per-server buckets (calls, errors, latency quantiles, gauge
//! means) that knees, correlations, queueing checks and anomaly scores
//! share.
//!
//! Calls are read with the session label dropped ([`ScanRequest::without`]):
//! an MCP session is a series of its own in the store, and the analyzer
//! only ever pools calls by server and tool.

use crate::names::{
    CALL_METRIC, DISK_TOTAL, ERROR_LABEL, MEMORY_LIMIT, METHOD_LABEL, SERVER_LABEL, SESSION_LABEL,
    SESSIONS_LIMIT, TOOL_LABEL, TRANSPORT_LABEL,
};
use crate::store::{ScanRequest, SeriesData, Snapshot, StoreError};
use crate::time::MINUTE_MS;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Labels of the call metric dropped on reading: the analyzer pools sessions.
const DROPPED_CALL_LABELS: [&str; 2] = [SESSION_LABEL, TRANSPORT_LABEL];

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
}

/// JSON-RPC errors that are the client's doing.
fn is_client_error(code: &str) -> bool {
    matches!(code, "-32700" | "-32600" | "-32601" | "-32602")
}

impl FleetData {
    /// Reads calls and gauges with a `server` label in [from, to] (inclusive).
    /// Values beyond ±[`MAX_ANALYSABLE`] are left out (see
    /// [`ServerData::left_out`]); data spanning more than [`MAX_BUCKETS`]
    /// buckets is refused ([`StoreError::Invalid`]) before the buckets are made.
    pub fn load(snapshot: &Snapshot, from_ms: i64, to_ms: i64) -> Result<FleetData, StoreError> {
        let calls = snapshot.scan(&ScanRequest {
            start_ms: from_ms,
            end_ms: to_ms,
            metric: Some(CALL_METRIC.to_string()),
            without: DROPPED_CALL_LABELS.iter().map(|s| s.to_string()).collect(),
            ..ScanRequest::all()
        })?;
        // Gauges metric by metric: a scan for one metric name reads only its
        // pages, where "every metric but the calls" would decode every call
        // row (and its session id) only to drop it.
        let names: BTreeSet<&String> = snapshot
            .manifest()
            .segments
            .iter()
            .flat_map(|seg| &seg.metrics)
            .filter(|m| *m != CALL_METRIC)
            .collect();
        let mut gauges = Vec::new();
        for name in names {
            gauges.extend(snapshot.scan(&ScanRequest {
                start_ms: from_ms,
                end_ms: to_ms,
                metric: Some(name.clone()),
                ..ScanRequest::all()
            })?);
        }

        // Series by server first (moves only); the per-call work then runs
        // per server in parallel.
        type Raw = (Vec<SeriesData>, Vec<SeriesData>);
        let mut by_server: BTreeMap<String, Raw> = BTreeMap::new();
        for s in calls {
            if let Some(server) = s.key.label(SERVER_LABEL) {
                by_server.entry(server.to_string()).or_default().0.push(s);
            }
        }
        for s in gauges {
            if let Some(server) = s.key.label(SERVER_LABEL) {
                by_server.entry(server.to_string()).or_default().1.push(s);
            }
        }
        let (lo, hi) = (from_ms, to_ms);
        let extent = by_server
            .values()
            .flat_map(|(calls, gauges)| calls.iter().chain(gauges))
            .filter_map(|s| Some((*s.timestamps.first()?, *s.timestamps.last()?)))
            .fold(None, |acc: Option<(i64, i64)>, (a, b)| {
                let (a, b) = (a.min(b).max(lo), a.max(b).min(hi));
                Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
            });
        if let Some((first, last)) = extent {
            check_span(first, last).map_err(StoreError::Invalid)?;
        }
        let servers: Vec<ServerData> = by_server
            .into_par_iter()
            .map(|(server, (calls, gauges))| {
                let mut left_out = Vec::new();
                let tools = tool_calls(&server, calls, &mut left_out);
                let mut pooled: BTreeMap<String, Gauge> = BTreeMap::new();
                for s in gauges {
                    // Several series of one gauge on a server (other labels): pooled.
                    let g = pooled.entry(s.key.metric.clone()).or_default();
                    for (t, v) in s.timestamps.iter().zip(&s.values) {
                        if overflows(*v) {
                            note_left_out(&mut left_out, &server, &s.key.metric, *t, *v);
                        } else {
                            g.ts.push(*t);
                            g.vs.push(*v);
                        }
                    }
                }
                for g in pooled.values_mut() {
                    sort_gauge(g);
                }
                left_out.sort_by(|a, b| a.series.cmp(&b.series));
                ServerData::new(server, tools, pooled, (lo, hi), left_out)
            })
            .collect();
        Ok(FleetData {
            from_ms,
            to_ms,
            servers,
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
        let tool = s
            .key
            .label(TOOL_LABEL)
            .or(s.key.label(METHOD_LABEL))
            .unwrap_or("(unknown)")
            .to_string();
        let error = s.key.label(ERROR_LABEL);
        let failed = error.is_some();
        let server_error = error.is_some_and(|e| !is_client_error(e));
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
            ToolCalls { tool, calls }
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
