//! Incidents found in the data, each with its time, size and evidence:
//!
//! - error bursts: a Bernoulli CUSUM over each tool's calls in time order,
//!   the start refined to the most likely first failing call;
//! - latency shifts: PELT change points in each tool's 10-minute median
//!   log latency, the time refined to the call; a shift that persists is a
//!   regression (a deploy), one that comes back is part of something else;
//! - load surges: change points in the call rate; with p95 latency doubling
//!   during the surge it is a saturation knee;
//! - ramps: change points in the slope of a gauge (15-minute block means):
//!   memory climbing towards its limit (a leak, often ended by a restart)
//!   and free disk falling (a disk filling up).

use super::fleet::{BUCKET_MS, Call, Gauge, ServerData};
use crate::names::{CALL_METRIC, DISK_FREE, DISK_TOTAL, MEMORY, MEMORY_LIMIT};
use crate::stats::changepoint::change_points;
use crate::stats::robust::{mad_scaled, median};
use crate::time::{HOUR_MS, MINUTE_MS, format_ms};
use serde::Serialize;

/// What kind of incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    LatencyRegression,
    ErrorBurst,
    SaturationKnee,
    LoadSurge,
    MemoryLeak,
    DiskFill,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::LatencyRegression => "latency_regression",
            IncidentKind::ErrorBurst => "error_burst",
            IncidentKind::SaturationKnee => "saturation_knee",
            IncidentKind::LoadSurge => "load_surge",
            IncidentKind::MemoryLeak => "memory_leak",
            IncidentKind::DiskFill => "disk_fill",
        }
    }
}

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One incident with its evidence.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub severity: Severity,
    pub server: String,
    pub tool: Option<String>,
    /// The series the evidence comes from.
    pub metric: String,
    pub start_ms: i64,
    pub start: String,
    /// `None` while it lasts at the end of the data.
    pub end_ms: Option<i64>,
    pub end: Option<String>,
    /// The level before and during (units in `unit`).
    pub before: f64,
    pub after: f64,
    pub unit: String,
    pub summary: String,
}

impl Incident {
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: IncidentKind,
        severity: Severity,
        server: &str,
        tool: Option<&str>,
        metric: &str,
        (start_ms, end_ms): (i64, Option<i64>),
        (before, after): (f64, f64),
        unit: &str,
        summary: String,
    ) -> Incident {
        Incident {
            kind,
            severity,
            server: server.to_string(),
            tool: tool.map(str::to_string),
            metric: metric.to_string(),
            start_ms,
            start: format_ms(start_ms),
            end_ms,
            end: end_ms.map(format_ms),
            before,
            after,
            unit: unit.to_string(),
            summary,
        }
    }
}

/// A level shift in a series: a change point with its size.
#[derive(Clone, Debug, Serialize)]
pub struct Shift {
    pub server: String,
    pub tool: Option<String>,
    /// What shifted, e.g. "median latency" or "call rate".
    pub series: String,
    pub at_ms: i64,
    pub at: String,
    pub before: f64,
    pub after: f64,
    /// after / before.
    pub ratio: f64,
    pub unit: String,
    /// Whether the new level lasted to the end of the data (or 6 hours).
    pub persistent: bool,
}

/// What [`find`] reports for one server.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    pub incidents: Vec<Incident>,
    pub shifts: Vec<Shift>,
    /// Times the process restarted (memory collapsed or scrapes stopped).
    pub restarts: Vec<i64>,
}

/// All incidents and shifts of one server.
pub fn find(server: &ServerData) -> Findings {
    let mut out = Findings::default();
    error_bursts(server, &mut out);
    let surges = load_surges(server, &mut out);
    latency_shifts(server, &surges, &mut out);
    out.restarts = restarts(server);
    gauge_ramps(server, &mut out);
    out.incidents.sort_by_key(|i| i.start_ms);
    out
}

// ------------------------------------------------------------ error bursts

/// Errors a burst needs, and the share of its calls that must fail.
const BURST_MIN_ERRORS: usize = 5;
const BURST_MIN_RATIO: f64 = 0.05;
/// CUSUM decision threshold: ln(10⁶), a false alarm per million calls or so.
const CUSUM_H: f64 = 13.8;

fn error_bursts(server: &ServerData, out: &mut Findings) {
    let total = server.call_count();
    let errors: usize = server
        .tools
        .iter()
        .flat_map(|t| &t.calls)
        .filter(|c| c.server_error)
        .count();
    // The usual failure rate (with a prior, so a clean server is not 0).
    let p0 = ((errors as f64 + 1.0) / (total as f64 + 1000.0)).clamp(1e-4, 0.02);
    let p1 = (20.0 * p0).max(0.10);
    let up = (p1 / p0).ln();
    let down = ((1.0 - p1) / (1.0 - p0)).ln();
    for tool in &server.tools {
        let calls = &tool.calls;
        let mut s = 0.0;
        let mut first: Option<usize> = None;
        let mut last = 0;
        let mut alarm = false;
        let mut episodes: Vec<(usize, usize)> = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            s += if c.server_error { up } else { down };
            if s <= 0.0 {
                if let (true, Some(a)) = (alarm, first) {
                    episodes.push((a, last));
                }
                s = 0.0;
                first = None;
                alarm = false;
                continue;
            }
            if c.server_error {
                first.get_or_insert(i);
                last = i;
            }
            alarm |= s > CUSUM_H;
        }
        if let (true, Some(a)) = (alarm, first) {
            episodes.push((a, last));
        }
        for (a, b) in episodes {
            let (a, b) = most_likely_span(calls, a, b, p0);
            let n = b - a + 1;
            let e = calls[a..=b].iter().filter(|c| c.server_error).count();
            let ratio = e as f64 / n as f64;
            if e < BURST_MIN_ERRORS || ratio < BURST_MIN_RATIO {
                continue;
            }
            let (start, end) = (calls[a].t, calls[b].t);
            // Still failing at the end: hardly a good call since.
            let ongoing = calls.len() - 1 - b < 20;
            let severity = if ratio >= 0.2 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.incidents.push(Incident::new(
                IncidentKind::ErrorBurst,
                severity,
                &server.server,
                Some(&tool.tool),
                CALL_METRIC,
                (start, (!ongoing).then_some(end)),
                (p0, ratio),
                "ratio",
                format!(
                    "{} on {} failed {:.0}% of its calls ({e} of {n}) for {} from {} (usually {:.2}%)",
                    tool.tool,
                    server.server,
                    ratio * 100.0,
                    crate::time::format_duration_ms(((end - start) / 1000 * 1000).max(MINUTE_MS)),
                    format_ms(start),
                    p0 * 100.0
                ),
            ));
        }
    }
}

/// The log-likelihood ratio of `e` failures in `n` calls at their own
/// rate against the usual rate `p0`.
fn burst_llr(n: f64, e: f64, p0: f64) -> f64 {
    let p = e / n;
    let fails = if e > 0.0 { e * (p / p0).ln() } else { 0.0 };
    let passes = if p < 1.0 {
        (n - e) * ((1.0 - p) / (1.0 - p0)).ln()
    } else {
        0.0
    };
    fails + passes
}

/// The stretch of calls[a..=b], from a failure to a failure, that is most
/// likely a burst: a CUSUM alarm runs on well past a burst (its statistic
/// takes many good calls to drain), and a stray failure before or after
/// would otherwise stretch it. The end is chosen first, then the start.
fn most_likely_span(calls: &[Call], a: usize, b: usize, p0: f64) -> (usize, usize) {
    let failures: Vec<usize> = (a..=b).filter(|&i| calls[i].server_error).collect();
    let (Some(&first), Some(&last)) = (failures.first(), failures.last()) else {
        return (a, b);
    };
    let mut best = (f64::NEG_INFINITY, last);
    for (k, &j) in failures.iter().enumerate() {
        let llr = burst_llr((j - first + 1) as f64, (k + 1) as f64, p0);
        if llr > best.0 {
            best = (llr, j);
        }
    }
    let end = best.1;
    let upto = failures.partition_point(|&i| i <= end);
    let mut best = (f64::NEG_INFINITY, first);
    for (k, &j) in failures[..upto].iter().enumerate() {
        let llr = burst_llr((end - j + 1) as f64, (upto - k) as f64, p0);
        if llr > best.0 {
            best = (llr, j);
        }
    }
    (best.1, end)
}

// ------------------------------------------------------------ load surges

/// A stretch of high load: [start, end) in ms.
#[derive(Clone, Copy, Debug)]
pub struct Surge {
    pub start_ms: i64,
    pub end_ms: i64,
}

fn load_surges(server: &ServerData, out: &mut Findings) -> Vec<Surge> {
    let b = &server.buckets;
    let bucket_s = BUCKET_MS as f64 / 1000.0;
    let log_rate: Vec<f64> = b.rate.iter().map(|r| (r + 1.0 / bucket_s).ln()).collect();
    let cps = change_points(&log_rate, 3, None);
    let baseline_p95 = median(&finite(&b.p95)).unwrap_or(f64::NAN);
    let mut surges = Vec::new();
    for (i, cp) in cps.iter().enumerate() {
        let ratio = (cp.after - cp.before).exp();
        if ratio < 2.0 {
            continue;
        }
        let end_k = cps
            .iter()
            .skip(i + 1)
            .find(|c| c.after < cp.before + 2f64.ln() * 0.5)
            .map_or(b.len(), |c| c.index);
        let k0 = cp.index;
        let start_ms = refine_rate_start(server, b.time(k0));
        let end_ms = b.time(end_k);
        let during = finite(&b.p95[k0..end_k]);
        let p95_during = median(&during).unwrap_or(f64::NAN);
        let p95_ratio = p95_during / baseline_p95;
        let peak_rate = b.rate[k0..end_k].iter().copied().fold(0.0, f64::max);
        let before_rate = (cp.before).exp() - 1.0 / bucket_s;
        let (kind, severity) = if p95_ratio >= 2.0 {
            (IncidentKind::SaturationKnee, Severity::Critical)
        } else {
            (IncidentKind::LoadSurge, Severity::Info)
        };
        let ongoing = end_k >= b.len();
        out.shifts.push(Shift {
            server: server.server.clone(),
            tool: None,
            series: "call rate".into(),
            at_ms: start_ms,
            at: format_ms(start_ms),
            before: before_rate,
            after: before_rate * ratio,
            ratio,
            unit: "calls/s".into(),
            persistent: ongoing,
        });
        out.incidents.push(Incident::new(
            kind,
            severity,
            &server.server,
            None,
            crate::names::IN_FLIGHT,
            (start_ms, (!ongoing).then_some(end_ms)),
            (baseline_p95, p95_during),
            "s",
            format!(
                "{}: calls rose {ratio:.1}x (to a peak of {peak_rate:.2}/s) for {} from {}; p95 latency {} {:.1}x its usual {:.0} ms",
                server.server,
                crate::time::format_duration_ms(end_ms - start_ms),
                format_ms(start_ms),
                if p95_ratio >= 2.0 { "climbed to" } else { "stayed at" },
                p95_ratio,
                baseline_p95 * 1000.0
            ),
        ));
        surges.push(Surge { start_ms, end_ms });
    }
    surges
}

/// The minute where calls per minute changed most, within 30 minutes of a
/// bucket-level change point (the largest excursion of the centred CUSUM).
fn refine_rate_start(server: &ServerData, around_ms: i64) -> i64 {
    let lo = around_ms - 30 * MINUTE_MS;
    let n = 60usize;
    let mut counts = vec![0f64; n];
    for c in server.tools.iter().flat_map(|t| &t.calls) {
        let k = (c.t - lo).div_euclid(MINUTE_MS);
        if (0..n as i64).contains(&k) {
            counts[k as usize] += 1.0;
        }
    }
    lo + cusum_split(&counts) as i64 * MINUTE_MS
}

/// The index k maximising |Σ_{i<k} (x_i − mean)|: where a mean shift most
/// likely happened (0 for fewer than two values).
fn cusum_split(x: &[f64]) -> usize {
    if x.len() < 2 {
        return 0;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let mut s = 0.0;
    let mut best = (0.0, 0usize);
    for (i, v) in x.iter().enumerate() {
        s += v - mean;
        if s.abs() > best.0 {
            best = (s.abs(), i + 1);
        }
    }
    best.1.min(x.len() - 1)
}

// ------------------------------------------------------------ latency shifts

const LATENCY_BUCKET_MS: i64 = 10 * MINUTE_MS;
/// A new level must hold this long (or to the end) to be a regression.
const PERSIST_MS: i64 = 6 * HOUR_MS;

fn latency_shifts(server: &ServerData, surges: &[Surge], out: &mut Findings) {
    if server.buckets.is_empty() {
        return;
    }
    let first = server.buckets.start_ms;
    let end = server.buckets.time(server.buckets.len());
    let n = ((end - first) / LATENCY_BUCKET_MS).max(0) as usize + 1;
    for tool in &server.tools {
        if tool.calls.len() < 100 {
            continue;
        }
        let mut logs: Vec<Vec<f64>> = vec![Vec::new(); n];
        for c in &tool.calls {
            let k = ((c.t - first) / LATENCY_BUCKET_MS).clamp(0, n as i64 - 1) as usize;
            if c.seconds > 0.0 {
                logs[k].push(c.seconds.ln());
            }
        }
        let level: Vec<f64> = logs
            .iter()
            .map(|v| {
                if v.len() < 3 {
                    f64::NAN
                } else if tool.binned {
                    v.iter().sum::<f64>() / v.len() as f64
                } else {
                    median(v).unwrap_or(f64::NAN)
                }
            })
            .collect();
        let cps = change_points(&level, 3, None);
        for (i, cp) in cps.iter().enumerate() {
            let ratio = (cp.after - cp.before).exp();
            if !(ratio >= 1.5 || ratio <= 1.0 / 1.5) {
                continue;
            }
            let at_coarse = first + cp.index as i64 * LATENCY_BUCKET_MS;
            // Comes back within PERSIST_MS: part of something passing.
            let returns = cps.iter().skip(i + 1).find(|c| {
                (c.after - cp.before).abs() < 1.3f64.ln()
                    && first + c.index as i64 * LATENCY_BUCKET_MS - at_coarse < PERSIST_MS
            });
            let persistent = returns.is_none();
            let at = refine_latency_shift(&tool.calls, at_coarse);
            let (before_ms, after_ms) = (cp.before.exp() * 1000.0, cp.after.exp() * 1000.0);
            out.shifts.push(Shift {
                server: server.server.clone(),
                tool: Some(tool.tool.clone()),
                series: "median latency".into(),
                at_ms: at,
                at: format_ms(at),
                before: before_ms,
                after: after_ms,
                ratio,
                unit: "ms".into(),
                persistent,
            });
            let in_surge = surges
                .iter()
                .any(|s| at >= s.start_ms - 30 * MINUTE_MS && at < s.end_ms);
            if ratio >= 1.5 && persistent && !in_surge {
                out.incidents.push(Incident::new(
                    IncidentKind::LatencyRegression,
                    if ratio >= 2.0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    &server.server,
                    Some(&tool.tool),
                    CALL_METRIC,
                    (at, None),
                    (before_ms, after_ms),
                    "ms",
                    format!(
                        "{} on {} became {ratio:.2}x slower at {} and stayed so (median {before_ms:.0} ms -> {after_ms:.0} ms): a step, as after a deploy",
                        tool.tool,
                        server.server,
                        format_ms(at)
                    ),
                ));
            }
        }
    }
}

/// The call at which log latency shifted most, within an hour of a
/// bucket-level change point (a wide window: more calls on both sides make
/// the split sharper, and a deploy is one step).
fn refine_latency_shift(calls: &[Call], around_ms: i64) -> i64 {
    let lo = calls.partition_point(|c| c.t < around_ms - 6 * LATENCY_BUCKET_MS);
    let hi = calls.partition_point(|c| c.t < around_ms + 6 * LATENCY_BUCKET_MS);
    let window = &calls[lo..hi];
    let x: Vec<f64> = window.iter().map(|c| c.seconds.max(1e-9).ln()).collect();
    if x.len() < 2 {
        return around_ms;
    }
    window[cusum_split(&x)].t
}

// ------------------------------------------------------------ gauge ramps

/// Blocks whose means the slope is taken over: long enough to average out
/// a garbage collector's sawtooth (a cycle of 8 to 15 minutes).
const RAMP_BLOCK_MS: i64 = 30 * MINUTE_MS;

/// A stretch where a gauge climbs or falls steadily.
#[derive(Clone, Copy, Debug)]
struct Ramp {
    start_ms: i64,
    end_ms: i64,
    /// Per hour, during and before.
    slope: f64,
    slope_before: f64,
    /// Whether it lasts to the end of the data.
    ongoing: bool,
}

/// Steady climbs (`direction` 1) or falls (−1) in a gauge.
fn ramps(g: &Gauge, direction: f64) -> Vec<Ramp> {
    let (Some(&t0), Some(&t1)) = (g.ts.first(), g.ts.last()) else {
        return Vec::new();
    };
    let n = ((t1 - t0) / RAMP_BLOCK_MS) as usize + 1;
    let mut sum = vec![0.0; n];
    let mut count = vec![0u32; n];
    for (t, v) in g.ts.iter().zip(&g.vs) {
        if v.is_finite() {
            let k = ((t - t0) / RAMP_BLOCK_MS) as usize;
            sum[k] += v;
            count[k] += 1;
        }
    }
    let means: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, c)| if *c == 0 { f64::NAN } else { s / f64::from(*c) })
        .collect();
    let d: Vec<f64> = means.windows(2).map(|w| w[1] - w[0]).collect();
    let noise = {
        let dd: Vec<f64> = finite(&d).windows(2).map(|w| w[1] - w[0]).collect();
        mad_scaled(&dd).unwrap_or(0.0) / std::f64::consts::SQRT_2
    };
    let cps = change_points(&d, 2, None);
    let per_hour = HOUR_MS as f64 / RAMP_BLOCK_MS as f64;
    let mut out: Vec<Ramp> = Vec::new();
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cps.iter().map(|c| c.index))
        .chain(std::iter::once(d.len()))
        .collect();
    // Segments of steady slope: (first block difference, end, median slope).
    let segs: Vec<(usize, usize, f64)> = bounds
        .windows(2)
        .map(|w| (w[0], w[1], median(&finite(&d[w[0]..w[1]])).unwrap_or(0.0)))
        .collect();
    let threshold = 6.0 * noise.max(f64::MIN_POSITIVE);
    let steep = |level: f64| direction * level > threshold;
    let similar = |level: f64, to: f64| (0.5..=2.0).contains(&(level / to));
    let mut i = 0;
    while i < segs.len() {
        let (a, _, level) = segs[i];
        if !steep(level) {
            i += 1;
            continue;
        }
        // Steep segments of a similar slope are one ramp, also across a
        // short interruption (logs rotated at midnight free some disk).
        let first = i;
        let mut last = i;
        let mut k = i + 1;
        while k < segs.len() {
            if steep(segs[k].2) && similar(segs[k].2, level) {
                last = k;
                k += 1;
            } else if segs[k].1 - segs[k].0 < 4
                && k + 1 < segs.len()
                && steep(segs[k + 1].2)
                && similar(segs[k + 1].2, level)
            {
                last = k + 1;
                k += 2;
            } else {
                break;
            }
        }
        i = last + 1;
        let b = segs[last].1;
        if b - a < 4 {
            continue;
        }
        let slope = median(&finite(&d[a..b])).unwrap_or(level);
        let ongoing = b == d.len();
        let end_ms = if ongoing {
            t1
        } else {
            t0 + (b as i64 + 1) * RAMP_BLOCK_MS
        };
        // Block a's difference is the first of the new slope: the bend is
        // in block a or a+1. Find it at the sample: the hinge.
        let start_ms = if a == 0 {
            t0
        } else {
            let coarse = t0 + a as i64 * RAMP_BLOCK_MS;
            refine_hinge(
                g,
                coarse - 90 * MINUTE_MS,
                (coarse + 3 * HOUR_MS).min(end_ms),
                direction,
            )
        };
        out.push(Ramp {
            start_ms,
            end_ms,
            slope: slope * per_hour,
            slope_before: first.checked_sub(1).map_or(0.0, |p| segs[p].2 * per_hour),
            ongoing,
        });
    }
    out
}

/// Within [lo, hi), where a gauge bends into a ramp in `direction`: the
/// largest excursion of the centred CUSUM of its first differences. A jump
/// or two against the ramp (logs rotated away) is replaced by the median
/// difference first, so that a step cannot pass for a bend; jumps that
/// recur (a garbage collector's sawtooth) are the series' own rhythm and
/// stay.
fn refine_hinge(g: &Gauge, lo: i64, hi: i64, direction: f64) -> i64 {
    let a = g.ts.partition_point(|t| *t < lo);
    let b = g.ts.partition_point(|t| *t < hi);
    if b < a + 3 {
        return lo.max(g.ts.first().copied().unwrap_or(lo));
    }
    let mut d: Vec<f64> = g.vs[a..b]
        .windows(2)
        .map(|w| w[1] - w[0])
        .map(|x| if x.is_finite() { x } else { 0.0 })
        .collect();
    let mid = median(&d).unwrap_or(0.0);
    let spread = mad_scaled(&d).unwrap_or(0.0);
    let against = |x: f64| spread > 0.0 && direction * (x - mid) < -6.0 * spread;
    if d.iter().filter(|x| against(**x)).count() <= 2 {
        for x in d.iter_mut() {
            if against(*x) {
                *x = mid;
            }
        }
    }
    g.ts[a + cusum_split(&d)]
}

/// When the process restarted: memory halved between two samples, or the
/// scrapes stopped for more than 2.5 times their usual interval.
fn restarts(server: &ServerData) -> Vec<i64> {
    // What the process said itself (its start time, its counters' resets)
    // first; memory halving or a gap in its samples where it says nothing.
    let mut out: Vec<i64> = server.restarts.clone();
    if let Some(g) = server.gauge(MEMORY) {
        let gaps: Vec<f64> = g.ts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let usual = median(&gaps).unwrap_or(0.0);
        for i in 1..g.ts.len() {
            let halved =
                g.vs[i].is_finite() && g.vs[i - 1].is_finite() && g.vs[i] < 0.5 * g.vs[i - 1];
            let gap = usual > 0.0 && (g.ts[i] - g.ts[i - 1]) as f64 > 2.5 * usual;
            if halved || gap {
                let t = g.ts[i - 1];
                if out.iter().all(|l| (t - l).abs() > 10 * MINUTE_MS) {
                    out.push(t);
                }
            }
        }
    }
    out.sort_unstable();
    out
}

fn gauge_ramps(server: &ServerData, out: &mut Findings) {
    if let Some(mem) = server.gauge(MEMORY) {
        let limit = server.gauge(MEMORY_LIMIT).and_then(Gauge::last);
        for r in ramps(mem, 1.0) {
            let at = |t: i64| value_at(mem, t);
            let (from, to) = (at(r.start_ms), at_before_drop(mem, r.start_ms, r.end_ms));
            let rise = to - from;
            let big = match limit {
                Some(l) if l > 0.0 => rise >= 0.2 * l,
                _ => rise >= 0.5 * from.abs(),
            };
            if !big || r.end_ms - r.start_ms < HOUR_MS {
                continue;
            }
            let restart = out
                .restarts
                .iter()
                .copied()
                .find(|t| *t >= r.start_ms && *t <= r.end_ms + 30 * MINUTE_MS);
            let end = restart.or((!r.ongoing).then_some(r.end_ms));
            let of_limit = limit.map_or(String::new(), |l| {
                format!(" ({:.0}% of its {:.0} MiB limit)", to / l * 100.0, l / MIB)
            });
            out.incidents.push(Incident::new(
                IncidentKind::MemoryLeak,
                Severity::Critical,
                &server.server,
                None,
                MEMORY,
                (r.start_ms, end),
                (from, to),
                "bytes",
                format!(
                    "memory on {} grew {:.0} MiB/h from {} ({:.0} MiB) to {:.0} MiB{of_limit}{}",
                    server.server,
                    r.slope / MIB,
                    format_ms(r.start_ms),
                    from / MIB,
                    to / MIB,
                    restart.map_or(String::new(), |t| format!(
                        "; the process restarted at {}",
                        format_ms(t)
                    ))
                ),
            ));
        }
    }
    if let Some(disk) = server.gauge(DISK_FREE) {
        let total = server.gauge(DISK_TOTAL).and_then(Gauge::last);
        for r in ramps(disk, -1.0) {
            let (from, to) = (value_at(disk, r.start_ms), value_at(disk, r.end_ms));
            let fall = from - to;
            let big = match total {
                Some(t) if t > 0.0 => fall >= 0.05 * t,
                _ => fall >= 0.2 * from.abs(),
            };
            if !big || r.end_ms - r.start_ms < 2 * HOUR_MS {
                continue;
            }
            out.incidents.push(Incident::new(
                IncidentKind::DiskFill,
                if r.ongoing {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                &server.server,
                None,
                DISK_FREE,
                (r.start_ms, (!r.ongoing).then_some(r.end_ms)),
                (r.slope_before, r.slope),
                "bytes/h",
                format!(
                    "free disk on {} falls {:.0} MiB/h from {} (was {:.0} MiB/h): {:.0} MiB left of {:.0} MiB",
                    server.server,
                    -r.slope / MIB,
                    format_ms(r.start_ms),
                    -r.slope_before / MIB,
                    to / MIB,
                    total.unwrap_or(f64::NAN) / MIB
                ),
            ));
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The gauge's value at or just after `t`.
fn value_at(g: &Gauge, t: i64) -> f64 {
    let i =
        g.ts.partition_point(|x| *x < t)
            .min(g.ts.len().saturating_sub(1));
    g.vs.get(i).copied().unwrap_or(f64::NAN)
}

/// The highest value in [from, to]: a ramp's top before a restart drops it.
fn at_before_drop(g: &Gauge, from: i64, to: i64) -> f64 {
    let a = g.ts.partition_point(|x| *x < from);
    let b = g.ts.partition_point(|x| *x <= to);
    g.vs[a..b]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max)
}

pub(crate) fn finite(v: &[f64]) -> Vec<f64> {
    v.iter().copied().filter(|x| x.is_finite()).collect()
}
