//! Where the time goes: RED per server and tool (rate, errors, duration and
//! the share of all call time), USE per resource, the load at which latency
//! doubles (the saturation knee), which resource moves with latency (lagged
//! rank correlation), and queueing by Little's law.

use super::fleet::{BUCKET_MS, FleetData, Gauge, LIMITS, ServerData};
use super::incidents::finite;
use crate::names::{
    CPU, DISK_FREE, DISK_TOTAL, IN_FLIGHT, MEMORY, MEMORY_LIMIT, SESSIONS, SESSIONS_LIMIT,
};
use crate::stats::quantile::quantile_sorted;
use crate::stats::robust::median;
use crate::time::format_ms;
use rayon::prelude::*;
use serde::Serialize;

/// RED figures of one tool on one server (or of a whole server, tool `*`).
#[derive(Clone, Debug, Serialize)]
pub struct Red {
    pub server: String,
    pub tool: String,
    pub calls: u64,
    /// Calls per second over the analysed span.
    pub rate: f64,
    pub errors: u64,
    pub error_ratio: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Seconds spent in these calls.
    pub call_time_s: f64,
    /// Share of the fleet's call time.
    pub share: f64,
}

/// RED per tool (ranked by share of call time) and per server.
pub fn red(fleet: &FleetData, span_s: f64) -> (Vec<Red>, Vec<Red>) {
    let per_server: Vec<(Vec<Red>, Red)> = fleet
        .servers
        .par_iter()
        .map(|s| {
            let tools = s
                .tools
                .iter()
                .map(|t| red_row(&s.server, &t.tool, t.calls.iter(), span_s))
                .collect();
            let all = red_row(
                &s.server,
                "*",
                s.tools.iter().flat_map(|t| &t.calls),
                span_s,
            );
            (tools, all)
        })
        .collect();
    let (tools, mut servers): (Vec<Vec<Red>>, Vec<Red>) = per_server.into_iter().unzip();
    let mut tools: Vec<Red> = tools.into_iter().flatten().collect();
    let total: f64 = servers.iter().map(|r| r.call_time_s).sum();
    for r in tools.iter_mut().chain(servers.iter_mut()) {
        r.share = if total > 0.0 {
            r.call_time_s / total
        } else {
            0.0
        };
    }
    tools.sort_by(|a, b| b.share.total_cmp(&a.share));
    (tools, servers)
}

fn red_row<'a>(
    server: &str,
    tool: &str,
    calls: impl Iterator<Item = &'a super::fleet::Call>,
    span_s: f64,
) -> Red {
    let mut secs: Vec<f64> = Vec::new();
    let mut errors = 0u64;
    for c in calls {
        secs.push(c.seconds);
        errors += u64::from(c.failed);
    }
    let n = secs.len() as u64;
    let call_time_s: f64 = secs.iter().sum();
    secs.sort_by(f64::total_cmp);
    let q = |p: f64| quantile_sorted(&secs, p) * 1000.0;
    Red {
        server: server.to_string(),
        tool: tool.to_string(),
        calls: n,
        rate: if span_s > 0.0 { n as f64 / span_s } else { 0.0 },
        errors,
        error_ratio: if n > 0 { errors as f64 / n as f64 } else { 0.0 },
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        mean_ms: if n > 0 {
            call_time_s / n as f64 * 1000.0
        } else {
            f64::NAN
        },
        call_time_s,
        share: 0.0,
    }
}

/// USE of one resource on one server.
#[derive(Clone, Debug, Serialize)]
pub struct Use {
    pub server: String,
    pub resource: String,
    /// Utilisation as a share of the limit (in-flight: requests, no limit).
    pub utilisation_mean: f64,
    pub utilisation_p95: f64,
    pub utilisation_max: f64,
    /// Share of the time above 90% of the limit (in-flight: the median
    /// Little's-law ratio, observed over expected).
    pub saturation: f64,
    /// Restarts for memory, missing scrapes otherwise.
    pub errors: u64,
    pub unit: String,
}

/// USE per server and resource.
pub fn use_table(fleet: &FleetData, restarts: &[(String, Vec<i64>)]) -> Vec<Use> {
    let mut out = Vec::new();
    for s in &fleet.servers {
        let restart_count = restarts
            .iter()
            .find(|(name, _)| *name == s.server)
            .map_or(0, |(_, r)| r.len() as u64);
        let ratio = |num: &str, den: Option<&str>, complement: bool| -> Option<Vec<f64>> {
            let g = s.gauge(num)?;
            let limit = match den {
                Some(d) => s.gauge(d)?.last()?,
                None => 1.0,
            };
            (limit > 0.0).then(|| {
                g.vs.iter()
                    .map(|v| {
                        if complement {
                            1.0 - v / limit
                        } else {
                            v / limit
                        }
                    })
                    .collect()
            })
        };
        // (resource, gauge, its limit, free rather than used, errors, unit)
        let rows = [
            ("cpu", CPU, None, false, 0, "share of a core"),
            (
                "memory",
                MEMORY,
                Some(MEMORY_LIMIT),
                false,
                restart_count,
                "share of limit",
            ),
            (
                "sessions",
                SESSIONS,
                Some(SESSIONS_LIMIT),
                false,
                0,
                "share of limit",
            ),
            ("disk", DISK_FREE, Some(DISK_TOTAL), true, 0, "share used"),
        ];
        for (resource, metric, limit, complement, errors, unit) in rows {
            let Some(values) = ratio(metric, limit, complement) else {
                continue;
            };
            let missed = s.gauge(metric).map_or(0, missing_scrapes);
            out.push(use_row(s, resource, &values, errors.max(missed), unit));
        }
        if let Some(g) = s.gauge(IN_FLIGHT) {
            let mut row = use_row(s, "in_flight", &g.vs, missing_scrapes(g), "requests");
            row.saturation = little_ratios(s).median.unwrap_or(f64::NAN);
            out.push(row);
        }
    }
    out
}

fn use_row(s: &ServerData, resource: &str, values: &[f64], errors: u64, unit: &str) -> Use {
    let mut v = finite(values);
    v.sort_by(f64::total_cmp);
    let mean = if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    };
    let above = v.iter().filter(|x| **x >= 0.9).count();
    Use {
        server: s.server.clone(),
        resource: resource.to_string(),
        utilisation_mean: mean,
        utilisation_p95: quantile_sorted(&v, 0.95),
        utilisation_max: v.last().copied().unwrap_or(f64::NAN),
        saturation: if v.is_empty() {
            f64::NAN
        } else {
            above as f64 / v.len() as f64
        },
        errors,
        unit: unit.to_string(),
    }
}

/// Scrapes missing: gaps longer than 1.5 usual intervals, counted in intervals.
fn missing_scrapes(g: &Gauge) -> u64 {
    let gaps: Vec<f64> = g.ts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let Some(usual) = median(&gaps).filter(|u| *u > 0.0) else {
        return 0;
    };
    gaps.iter()
        .filter(|g| **g > 1.5 * usual)
        .map(|g| (g / usual).round() as u64 - 1)
        .sum()
}

/// The saturation knee of one server.
#[derive(Clone, Debug, Serialize)]
pub struct Knee {
    pub server: String,
    /// Load (calls/s) at which p95 latency first reaches twice its
    /// low-load level; `None` when it never does within the observed load.
    pub knee_rate: Option<f64>,
    /// Mean in-flight requests at that load.
    pub knee_in_flight: Option<f64>,
    /// p95 (ms) at low load: the lowest third of 5-minute buckets by load.
    pub low_load_p95_ms: f64,
    /// The highest load seen, and p95 there relative to the low-load level.
    pub max_rate: f64,
    pub p95_ratio_at_max: f64,
}

/// Load bins per server: enough buckets per bin for a stable median.
const KNEE_BINS: usize = 16;

pub fn knee(s: &ServerData) -> Knee {
    let b = &s.buckets;
    let in_flight = b.gauges.get(IN_FLIGHT);
    let mut pts: Vec<(f64, f64, f64)> = (0..b.len())
        .filter(|&k| b.p95[k].is_finite() && b.calls[k] > 0)
        .map(|k| {
            let inf = in_flight.map_or(f64::NAN, |g| g[k]);
            (b.rate[k], b.p95[k], inf)
        })
        .collect();
    pts.sort_by(|a, c| a.0.total_cmp(&c.0));
    let low: Vec<f64> = pts[..pts.len() / 3].iter().map(|p| p.1).collect();
    let low_p95 = median(&low).unwrap_or(f64::NAN);
    let mut knee_rate = None;
    let mut knee_in_flight = None;
    let mut ratio_at_max = f64::NAN;
    // Bins by rank of load, the top bins narrower so a short surge's
    // plateau is a bin of its own.
    let n = pts.len();
    if n >= KNEE_BINS * 4 && low_p95 > 0.0 {
        let mut edges: Vec<usize> = (0..=KNEE_BINS / 2)
            .map(|i| i * (n / 2) / (KNEE_BINS / 2))
            .collect();
        let mut top = n / 2;
        while n - top > 8 {
            top += (n - top) / 2;
            edges.push(top);
        }
        edges.push(n);
        edges.dedup();
        for w in edges.windows(2) {
            let bin = &pts[w[0]..w[1]];
            if bin.len() < 4 {
                continue;
            }
            let p95s: Vec<f64> = bin.iter().map(|p| p.1).collect();
            let ratio = median(&p95s).unwrap_or(f64::NAN) / low_p95;
            ratio_at_max = ratio;
            if knee_rate.is_none() && ratio >= 2.0 {
                let rates: Vec<f64> = bin.iter().map(|p| p.0).collect();
                knee_rate = median(&rates);
                knee_in_flight = median(&finite(&bin.iter().map(|p| p.2).collect::<Vec<_>>()));
            }
        }
    }
    Knee {
        server: s.server.clone(),
        knee_rate,
        knee_in_flight,
        low_load_p95_ms: low_p95 * 1000.0,
        max_rate: pts.last().map_or(0.0, |p| p.0),
        p95_ratio_at_max: ratio_at_max,
    }
}

/// How strongly a resource moves with p95 latency on one server.
#[derive(Clone, Debug, Serialize)]
pub struct Correlation {
    pub server: String,
    pub resource: String,
    /// Spearman's rank correlation at the best lag.
    pub rho: f64,
    /// Minutes by which the resource leads latency (negative: lags it).
    pub lag_minutes: i64,
    pub buckets: usize,
}

/// Lags tried, in buckets either way.
const MAX_LAG: i64 = 3;

/// Resources (gauges and the call rate) ranked by |ρ| with p95 latency.
pub fn correlations(s: &ServerData) -> Vec<Correlation> {
    let b = &s.buckets;
    let mut series: Vec<(String, &[f64])> = vec![("call rate".to_string(), &b.rate)];
    for (name, v) in &b.gauges {
        if LIMITS.contains(&name.as_str()) {
            continue;
        }
        series.push((name.clone(), v));
    }
    let mut out: Vec<Correlation> = series
        .into_iter()
        .filter_map(|(name, x)| {
            let mut best: Option<(f64, i64, usize)> = None;
            for lag in -MAX_LAG..=MAX_LAG {
                // x at k − lag against p95 at k: x leads by `lag` buckets.
                let pairs: Vec<(f64, f64)> = (0..b.len() as i64)
                    .filter_map(|k| {
                        let j = k - lag;
                        if j < 0 || j >= b.len() as i64 {
                            return None;
                        }
                        let (xv, yv) = (x[j as usize], b.p95[k as usize]);
                        (xv.is_finite() && yv.is_finite()).then_some((xv, yv))
                    })
                    .collect();
                if pairs.len() < 12 {
                    continue;
                }
                let rho = spearman(&pairs);
                if rho.is_finite() && best.is_none_or(|(r, _, _)| rho.abs() > r.abs()) {
                    best = Some((rho, lag, pairs.len()));
                }
            }
            let (rho, lag, n) = best?;
            Some(Correlation {
                server: s.server.clone(),
                resource: name,
                rho,
                lag_minutes: lag * BUCKET_MS / 60_000,
                buckets: n,
            })
        })
        .collect();
    out.sort_by(|a, c| c.rho.abs().total_cmp(&a.rho.abs()));
    out
}

/// Spearman's ρ: Pearson's correlation of the ranks (ties share the mean rank).
pub fn spearman(pairs: &[(f64, f64)]) -> f64 {
    let rx = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            out[o] = rank;
        }
        i = j + 1;
    }
    out
}

/// Little's law on one server: observed in-flight requests against call
/// rate times mean latency.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Queueing {
    pub server: String,
    /// Median of observed / expected over 5-minute buckets.
    pub median: Option<f64>,
    /// Stretches of 15 minutes or more where observed is over twice expected.
    pub spans: Vec<QueueSpan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueSpan {
    pub start: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub peak_ratio: f64,
}

/// Observed in-flight over λ·W above this is queueing the calls do not show.
const QUEUE_RATIO: f64 = 2.0;

pub fn little_ratios(s: &ServerData) -> Queueing {
    let b = &s.buckets;
    let Some(inf) = b.gauges.get(IN_FLIGHT) else {
        return Queueing {
            server: s.server.clone(),
            ..Queueing::default()
        };
    };
    let ratios: Vec<f64> = (0..b.len())
        .map(|k| {
            let expected = b.rate[k] * b.mean[k];
            if expected > 0.01 && inf[k].is_finite() {
                inf[k] / expected
            } else {
                f64::NAN
            }
        })
        .collect();
    let mut spans = Vec::new();
    let mut k = 0;
    while k < ratios.len() {
        if ratios[k] > QUEUE_RATIO {
            let a = k;
            let mut peak = ratios[k];
            while k < ratios.len() && ratios[k] > QUEUE_RATIO {
                peak = peak.max(ratios[k]);
                k += 1;
            }
            if k - a >= 3 {
                spans.push(QueueSpan {
                    start: format_ms(b.time(a)),
                    start_ms: b.time(a),
                    end_ms: b.time(k),
                    peak_ratio: peak,
                });
            }
        } else {
            k += 1;
        }
    }
    Queueing {
        server: s.server.clone(),
        median: median(&finite(&ratios)),
        spans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testutil::server_with;
    use crate::stats::testutil::HOSTILE;

    /// RED, USE, the knee, lagged rank correlations and Little's law on a
    /// server whose calls and gauges each hold one hostile value: no panic,
    /// correlations stay correlations, and the ordinary figures stay finite.
    #[test]
    fn regressions_survive_hostile_values() {
        for h in HOSTILE {
            let s = server_with(h);
            let fleet = FleetData {
                from_ms: i64::MIN,
                to_ms: i64::MAX,
                servers: vec![s.clone()],
                server_label: "server".into(),
                found_metrics: Vec::new(),
            };
            let (tools, servers) = red(&fleet, 3.0 * 86_400.0);
            assert_eq!((tools.len(), servers.len()), (1, 1));
            assert!(servers[0].p50_ms.is_finite(), "{h}: {:?}", servers[0]);
            assert!(servers[0].rate.is_finite() && servers[0].error_ratio.is_finite());
            let _ = use_table(&fleet, &[]);
            let k = knee(&s);
            assert!(k.max_rate.is_finite(), "{h}: {k:?}");
            for c in correlations(&s) {
                assert!((-1.0..=1.0).contains(&c.rho), "{h}: {c:?}");
            }
            let q = little_ratios(&s);
            assert!(q.median.is_none_or(|m| m.is_finite()), "{h}: {q:?}");
            let pairs: Vec<(f64, f64)> = (0..50)
                .map(|i| (i as f64, if i == 7 { h } else { i as f64 }))
                .collect();
            let rho = spearman(&pairs);
            assert!(rho.is_nan() || (-1.0..=1.0).contains(&rho), "{h}: {rho}");
        }
    }
}
