//! `mcpops analyze`: one pass over the store that puts the analyzer's
//! findings together: bottlenecks (RED, USE, knees, correlations,
//! queueing), incidents and change points, anomalies, forecasts with a
//! maintenance list, and recommendations ranked by expected effect. Servers
//! are analysed in parallel (rayon); the result serialises as the JSON the
//! report builds on, and prints as tables.

use super::bottleneck::{self, Correlation, Knee, Queueing, Red, Use};
use super::fleet::{BUCKET_MS, FleetData, Gauge, LoadOptions, ServerData};
use super::forecast::{Forecaster, Method};
use super::incidents::{self, Incident, IncidentKind, Severity, Shift};
use crate::dsl::RuleFile;
use crate::dsl::ast::Expr;
use crate::names::{CALL_METRIC, DISK_FREE, MEMORY, MEMORY_LIMIT, SESSIONS, SESSIONS_LIMIT};
use crate::stats::holt::MAX_HORIZON_S;
use crate::stats::robust::point_scores;
use crate::store::{Snapshot, StoreError};
use crate::time::{DAY_MS, HOUR_MS, format_duration_ms, format_ms};
use rayon::prelude::*;
use serde::Serialize;

/// Forecasts whose pessimistic bound falls within this go on the maintenance list.
const MAINTENANCE_HORIZON_MS: i64 = 7 * DAY_MS;
/// The availability objective the error budget is reckoned against, over 30 days.
pub const SLO_TARGET: f64 = 0.999;
const SLO_WINDOW_MS: i64 = 30 * DAY_MS;
/// |z| from which a bucket is anomalous.
const ANOMALY_Z: f64 = 6.0;
/// Anomalies listed, the strongest first.
const MAX_ANOMALIES: usize = 40;
const MAX_ANOMALIES_PER_SERIES: usize = 3;

/// Everything `analyze` found.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub servers: usize,
    pub calls: u64,
    /// The label that names servers (`server`, `instance`, ...).
    pub server_label: String,
    /// (server, tool) ranked by their share of all call time, with the
    /// incidents that explain them.
    pub bottlenecks: Vec<Bottleneck>,
    pub red_tools: Vec<Red>,
    pub red_servers: Vec<Red>,
    #[serde(rename = "use")]
    pub use_: Vec<Use>,
    pub knees: Vec<Knee>,
    pub correlations: Vec<Correlation>,
    pub queueing: Vec<Queueing>,
    pub incidents: Vec<Incident>,
    pub change_points: Vec<Shift>,
    pub anomalies: Vec<Anomaly>,
    pub forecasts: Vec<Forecast>,
    pub maintenance: Vec<Maintenance>,
    pub recommendations: Vec<Recommendation>,
    /// What the analysis had to leave out, one line each (values beyond
    /// ±1e150); absent when nothing was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A ranked bottleneck.
#[derive(Clone, Debug, Serialize)]
pub struct Bottleneck {
    pub rank: usize,
    pub server: String,
    pub tool: String,
    pub share: f64,
    pub p95_ms: f64,
    pub calls: u64,
    pub evidence: String,
}

/// A run of anomalous 5-minute buckets in one series.
#[derive(Clone, Debug, Serialize)]
pub struct Anomaly {
    pub server: String,
    pub series: String,
    pub start_ms: i64,
    pub start: String,
    pub end_ms: i64,
    /// The strongest robust z in the run, and the value there.
    pub peak_z: f64,
    pub value: f64,
}

/// When a resource runs out.
#[derive(Clone, Debug, Serialize)]
pub struct Forecast {
    pub server: String,
    pub resource: String,
    pub metric: String,
    pub current: f64,
    pub limit: f64,
    pub unit: String,
    /// Seconds from the end of the data; `None` when not within 30 days.
    pub seconds: Option<f64>,
    pub lower_s: Option<f64>,
    pub upper_s: Option<f64>,
    pub exhausts_at: Option<String>,
    /// The pessimistic date: maintenance must happen before it.
    pub act_by: Option<String>,
    pub act_by_ms: Option<i64>,
    pub method: String,
    /// Samples the model was fitted on start here.
    pub fitted_from_ms: i64,
}

impl Forecast {
    /// Whether even the optimistic edge of the 80% interval runs out within
    /// 30 days: the forecasts worth acting on (a noisy series' pessimistic
    /// edge alone reaches almost any limit).
    pub fn confident(&self) -> bool {
        self.seconds.is_some() && self.upper_s.is_some()
    }
}

/// One item of the maintenance list.
#[derive(Clone, Debug, Serialize)]
pub struct Maintenance {
    pub what: String,
    pub server: String,
    pub resource: String,
    pub by: String,
    pub by_ms: i64,
    /// The `maintenance` rule whose `when` watches this resource, if any.
    pub rule: Option<String>,
    pub window: Option<String>,
    pub next_slot: Option<String>,
    pub next_slot_ms: Option<i64>,
    /// Whether that slot comes before the deadline.
    pub slot_in_time: Option<bool>,
}

/// An optimisation or fix, ranked.
#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    pub rank: usize,
    pub severity: Severity,
    pub server: String,
    pub tool: Option<String>,
    pub action: String,
    pub effect: String,
    /// Share of the fleet's call time saved (performance items), if that is the measure.
    pub call_time_saved: Option<f64>,
    pub evidence: Vec<String>,
}

/// What to analyse.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// The label that names servers; `None` finds it in the data.
    pub server_label: Option<String>,
}

/// One server's findings, computed in parallel.
struct PerServer {
    findings: incidents::Findings,
    knee: Knee,
    correlations: Vec<Correlation>,
    queueing: Queueing,
    anomalies: Vec<Anomaly>,
    forecasts: Vec<Forecast>,
}

/// Why there is no analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The period holds no data, or none the analysis recognises: an
    /// analysis of it would report a healthy fleet of nothing.
    #[error("{0}")]
    NothingToAnalyse(String),
}

/// Fails with [`AnalyzeError::NothingToAnalyse`], naming what the store
/// holds and what the analyzer looks for, when `fleet` holds no calls and
/// no resource the analyzer knows.
pub fn require_data(fleet: &FleetData) -> Result<(), AnalyzeError> {
    if fleet.recognised() {
        return Ok(());
    }
    const SHOWN: usize = 12;
    let found = if fleet.found_metrics.is_empty() {
        "the store holds no metrics".to_string()
    } else {
        let mut names = fleet.found_metrics[..fleet.found_metrics.len().min(SHOWN)].join(", ");
        if fleet.found_metrics.len() > SHOWN {
            names.push_str(&format!(" and {} more", fleet.found_metrics.len() - SHOWN));
        }
        format!("the store holds {names}")
    };
    let period = if fleet.servers.is_empty() {
        format!(
            " (no series with a `{}` label in the period)",
            fleet.server_label
        )
    } else {
        String::new()
    };
    Err(AnalyzeError::NothingToAnalyse(format!(
        "nothing to analyse from {} to {}{period}: {found}; the analyzer looks for {}; \
         name the server label with --server-label if it is another one",
        format_ms(fleet.from_ms.max(0)),
        format_ms(fleet.to_ms.min(crate::time::now_ms().max(fleet.from_ms))),
        super::shapes::looked_for(),
    )))
}

/// Runs the analysis over the store (and the rule files' maintenance
/// windows); fails when the period holds nothing it recognises.
pub fn analyze(
    snapshot: &Snapshot,
    rules: &[RuleFile],
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let from = opts.from_ms.unwrap_or(i64::MIN);
    let to = opts.to_ms.unwrap_or(i64::MAX);
    let fleet = FleetData::load_with(
        snapshot,
        from,
        to,
        &LoadOptions {
            server_label: opts.server_label.clone(),
        },
    )?;
    require_data(&fleet)?;
    Ok(analyze_fleet(&fleet, rules))
}

/// The analysis of data already loaded.
pub fn analyze_fleet(fleet: &FleetData, rules: &[RuleFile]) -> Analysis {
    let (lo, hi) = fleet.extent().unwrap_or((0, 0));
    let span_s = ((hi - lo) as f64 / 1000.0).max(1.0);
    let per_server: Vec<PerServer> = fleet
        .servers
        .par_iter()
        .map(|s| {
            let findings = incidents::find(s);
            let forecasts = forecasts(s, &findings, hi);
            PerServer {
                knee: bottleneck::knee(s),
                correlations: bottleneck::correlations(s),
                queueing: bottleneck::little_ratios(s),
                anomalies: anomalies(s),
                forecasts,
                findings,
            }
        })
        .collect();

    let (red_tools, red_servers) = bottleneck::red(fleet, span_s);
    let restarts: Vec<(String, Vec<i64>)> = fleet
        .servers
        .iter()
        .zip(&per_server)
        .map(|(s, p)| (s.server.clone(), p.findings.restarts.clone()))
        .collect();
    let use_ = bottleneck::use_table(fleet, &restarts);

    let mut incidents: Vec<Incident> = Vec::new();
    let mut change_points = Vec::new();
    let mut knees = Vec::new();
    let mut correlations = Vec::new();
    let mut queueing = Vec::new();
    let mut anomalies = Vec::new();
    let mut forecasts = Vec::new();
    for p in per_server {
        incidents.extend(p.findings.incidents);
        change_points.extend(p.findings.shifts);
        knees.push(p.knee);
        correlations.extend(p.correlations);
        queueing.push(p.queueing);
        anomalies.extend(p.anomalies);
        forecasts.extend(p.forecasts);
    }
    incidents.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.server.cmp(&b.server)));
    change_points.sort_by_key(|c| c.at_ms);
    anomalies.sort_by(|a, b| b.peak_z.abs().total_cmp(&a.peak_z.abs()));
    // The strongest few runs of each series, so one incident does not fill the list.
    let mut per_series: std::collections::HashMap<(String, String), usize> = Default::default();
    anomalies.retain(|x| {
        let n = per_series
            .entry((x.server.clone(), x.series.clone()))
            .or_default();
        *n += 1;
        *n <= MAX_ANOMALIES_PER_SERIES
    });
    anomalies.truncate(MAX_ANOMALIES);

    let bottlenecks = bottlenecks(&red_tools, &incidents);
    let maintenance = maintenance(&forecasts, rules, hi);
    let recommendations = recommend(fleet, &red_tools, &incidents, &knees, &forecasts);
    Analysis {
        from: format_ms(lo),
        to: format_ms(hi),
        from_ms: lo,
        to_ms: hi,
        servers: fleet.servers.len(),
        calls: red_servers.iter().map(|r| r.calls).sum(),
        bottlenecks,
        red_tools,
        red_servers,
        use_,
        knees,
        correlations,
        queueing,
        incidents,
        change_points,
        anomalies,
        forecasts,
        maintenance,
        recommendations,
        notes: fleet
            .servers
            .iter()
            .flat_map(|s| {
                s.left_out
                    .iter()
                    .map(|l| l.note())
                    .chain(s.notes.iter().cloned())
            })
            .collect(),
        server_label: fleet.server_label.clone(),
    }
}

// ------------------------------------------------------------ bottlenecks

const BOTTLENECKS: usize = 10;

fn bottlenecks(red: &[Red], incidents: &[Incident]) -> Vec<Bottleneck> {
    red.iter()
        .take(BOTTLENECKS)
        .enumerate()
        .map(|(i, r)| {
            let mut evidence = format!(
                "{:.1}% of all call time ({} calls, mean {:.0} ms, p95 {:.0} ms)",
                r.share * 100.0,
                r.calls,
                r.mean_ms,
                r.p95_ms
            );
            for inc in incidents
                .iter()
                .filter(|x| x.server == r.server && x.tool.as_deref() == Some(r.tool.as_str()))
            {
                evidence.push_str("; ");
                evidence.push_str(&inc.summary);
            }
            Bottleneck {
                rank: i + 1,
                server: r.server.clone(),
                tool: r.tool.clone(),
                share: r.share,
                p95_ms: r.p95_ms,
                calls: r.calls,
                evidence,
            }
        })
        .collect()
}

// ------------------------------------------------------------ anomalies

fn anomalies(s: &ServerData) -> Vec<Anomaly> {
    let b = &s.buckets;
    let period = (DAY_MS / BUCKET_MS) as usize;
    let series = b.signals();
    let mut out = Vec::new();
    for (name, v) in &series {
        let z = point_scores(v, period);
        let mut k = 0;
        while k < z.len() {
            if z[k].abs() >= ANOMALY_Z {
                let a = k;
                let mut peak = k;
                while k < z.len() && z[k].abs() >= ANOMALY_Z / 2.0 {
                    if z[k].abs() > z[peak].abs() {
                        peak = k;
                    }
                    k += 1;
                }
                out.push(Anomaly {
                    server: s.server.clone(),
                    series: name.to_string(),
                    start_ms: b.time(a),
                    start: format_ms(b.time(a)),
                    end_ms: b.time(k),
                    peak_z: z[peak],
                    value: v[peak],
                });
            } else {
                k += 1;
            }
        }
    }
    out
}

// ------------------------------------------------------------ forecasts

/// A projected time, to the minute: a forecast is not more precise.
fn to_minute(ms: i64) -> i64 {
    ((ms as f64 / 60_000.0).round() as i64).saturating_mul(60_000)
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::LeastSquares => "least squares",
        Method::Holt => "Holt",
        Method::HoltWinters => "Holt-Winters",
    }
}

/// Forecasts of memory, disk and sessions against their limits, and of the
/// error budget, from the data since the last regime change (a restart for
/// memory, the start of a fill for disk).
fn forecasts(s: &ServerData, f: &incidents::Findings, end_ms: i64) -> Vec<Forecast> {
    let mut out = Vec::new();
    let last_restart = f.restarts.last().copied();
    let fill_start = f
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::DiskFill)
        .map(|i| i.start_ms)
        .next_back();
    // (resource, gauge, its limit's gauge, fit from, unit)
    type Spec<'a> = (&'a str, &'a str, Option<&'a str>, Option<i64>, &'a str);
    let gauges: [Spec; 3] = [
        ("memory", MEMORY, Some(MEMORY_LIMIT), last_restart, "bytes"),
        ("disk", DISK_FREE, None, fill_start, "bytes"),
        ("sessions", SESSIONS, Some(SESSIONS_LIMIT), None, "sessions"),
    ];
    for (resource, metric, limit_metric, since, unit) in gauges {
        let Some(g) = s.gauge(metric) else { continue };
        let limit = match limit_metric {
            Some(l) => match s.gauge(l).and_then(Gauge::last) {
                Some(v) => v,
                None => continue,
            },
            None => 0.0,
        };
        // At most the last three days, and nothing from before the regime change.
        let from = since.map_or(end_ms - 3 * DAY_MS, |t| t.max(end_ms - 3 * DAY_MS));
        let a = g.ts.partition_point(|t| *t < from);
        // Skip the restart's own dip.
        let a = if since == last_restart && since.is_some() {
            (a + 2).min(g.ts.len())
        } else {
            a
        };
        let (ts, vs) = (&g.ts[a..], &g.vs[a..]);
        let Some(model) = Forecaster::fit(ts, vs, Some(DAY_MS)) else {
            continue;
        };
        let ex = model.exhaustion(limit);
        let finite = |x: f64| (x.is_finite() && x < MAX_HORIZON_S).then_some(x);
        let seconds = finite(ex.seconds);
        let last_t = *ts.last().unwrap_or(&end_ms);
        let at = |x: Option<f64>| x.map(|x| to_minute(last_t.saturating_add((x * 1000.0) as i64)));
        let act_by_ms = at(finite(ex.lower_s)).or(at(seconds));
        out.push(Forecast {
            server: s.server.clone(),
            resource: resource.into(),
            metric: metric.into(),
            current: g.last().unwrap_or(f64::NAN),
            limit,
            unit: unit.into(),
            seconds,
            lower_s: finite(ex.lower_s),
            upper_s: finite(ex.upper_s),
            exhausts_at: at(seconds).map(format_ms),
            act_by: act_by_ms.map(format_ms),
            act_by_ms,
            method: method_name(ex.method).into(),
            fitted_from_ms: ts.first().copied().unwrap_or(end_ms),
        });
    }
    out.extend(error_budget(s, end_ms));
    out
}

/// The error budget of a 99.9% availability SLO over 30 days: spent so far
/// in the data, and when the rest runs out at the last six hours' burn
/// (bounds from an 80% Poisson interval on that burn).
fn error_budget(s: &ServerData, end_ms: i64) -> Option<Forecast> {
    let calls: Vec<&super::fleet::Call> = s.tools.iter().flat_map(|t| &t.calls).collect();
    let (first, last) = (
        calls.iter().map(|c| c.t).min()?,
        calls.iter().map(|c| c.t).max()?,
    );
    let span_ms = (last - first).max(1);
    let errors = calls.iter().filter(|c| c.server_error).count() as f64;
    let rate_per_ms = calls.len() as f64 / span_ms as f64;
    let allowed = (1.0 - SLO_TARGET) * rate_per_ms * SLO_WINDOW_MS as f64;
    let left = allowed - errors;
    let recent_from = end_ms - 6 * HOUR_MS;
    let recent = calls
        .iter()
        .filter(|c| c.t >= recent_from && c.server_error)
        .count() as f64;
    let window_ms = (end_ms - recent_from.max(first)).max(1) as f64;
    let burn = |count: f64| count / window_ms * 1000.0; // errors per second
    let seconds_at = |count: f64| -> Option<f64> {
        if left <= 0.0 {
            return Some(0.0);
        }
        let b = burn(count);
        (b > 0.0).then(|| left / b).filter(|x| *x < MAX_HORIZON_S)
    };
    // 80% interval of a Poisson count, by the normal approximation.
    let z = super::forecast::INTERVAL_Z;
    let high = recent + z * recent.sqrt() + 1.0;
    let low = (recent - z * recent.sqrt()).max(0.0);
    let seconds = seconds_at(recent);
    let lower_s = seconds_at(high);
    let at = |x: Option<f64>| x.map(|x| to_minute(end_ms + (x * 1000.0) as i64));
    Some(Forecast {
        server: s.server.clone(),
        resource: "error budget".into(),
        metric: CALL_METRIC.into(),
        current: (left / allowed).max(0.0),
        limit: 0.0,
        unit: "share of the 30-day budget left".into(),
        seconds,
        lower_s,
        upper_s: seconds_at(low),
        exhausts_at: at(seconds).map(format_ms),
        act_by: at(lower_s).or(at(seconds)).map(format_ms),
        act_by_ms: at(lower_s).or(at(seconds)),
        method: "burn rate (last 6h)".into(),
        fitted_from_ms: recent_from.max(first),
    })
}

// ------------------------------------------------------------ maintenance

/// The metrics a maintenance rule's `when` reads, with its name and window.
/// A maintenance rule: its name, the metrics its `when` reads, its window and the window as written.
type MaintenanceRule = (String, Vec<String>, crate::dsl::window::Window, String);

fn maintenance_rules(rules: &[RuleFile]) -> Vec<MaintenanceRule> {
    let mut out = Vec::new();
    for file in rules {
        for m in file.maintenances() {
            let Some(window) = m.window.window.clone() else {
                continue;
            };
            let mut metrics = Vec::new();
            m.when.walk(&mut |e| {
                if let Expr::Selector(sel) = e {
                    metrics.push(sel.metric.name.clone());
                }
            });
            out.push((
                m.name.name.clone(),
                metrics,
                window,
                m.window.text.value.clone(),
            ));
        }
    }
    out
}

fn maintenance(forecasts: &[Forecast], rules: &[RuleFile], end_ms: i64) -> Vec<Maintenance> {
    let rules = maintenance_rules(rules);
    let mut out: Vec<Maintenance> = forecasts
        .iter()
        .filter_map(|f| {
            if !f.confident() {
                return None;
            }
            let by_ms = f.act_by_ms?;
            if by_ms - end_ms > MAINTENANCE_HORIZON_MS {
                return None;
            }
            let what = match f.resource.as_str() {
                "disk" => "free disk space or grow the volume",
                "memory" => "restart the process (and fix the leak) before it hits its limit",
                "sessions" => "raise the session limit or close idle sessions",
                _ => "stop the failures spending the error budget; freeze risky deploys",
            };
            let rule = rules
                .iter()
                .find(|(_, metrics, _, _)| metrics.contains(&f.metric));
            let slot = rule.map(|(_, _, w, _)| w.slot_at_or_after(end_ms).0);
            Some(Maintenance {
                what: what.into(),
                server: f.server.clone(),
                resource: f.resource.clone(),
                by: format_ms(by_ms),
                by_ms,
                rule: rule.map(|r| r.0.clone()),
                window: rule.map(|r| r.3.clone()),
                next_slot: slot.map(format_ms),
                next_slot_ms: slot,
                slot_in_time: slot.map(|s| s <= by_ms),
            })
        })
        .collect();
    out.sort_by_key(|m| m.by_ms);
    out
}

// ------------------------------------------------------------ recommendations

fn recommend(
    fleet: &FleetData,
    red: &[Red],
    incidents: &[Incident],
    knees: &[Knee],
    forecasts: &[Forecast],
) -> Vec<Recommendation> {
    let total_call_time: f64 = red.iter().map(|r| r.call_time_s).sum::<f64>().max(1e-9);
    let red_of =
        |server: &str, tool: &str| red.iter().find(|r| r.server == server && r.tool == tool);
    let mut out: Vec<(f64, Recommendation)> = Vec::new();
    let mut covered: Vec<(String, String)> = Vec::new();
    for inc in incidents {
        let tool = inc.tool.clone();
        let mut evidence = vec![inc.summary.clone()];
        let (priority, action, effect, saved) = match inc.kind {
            IncidentKind::LatencyRegression => {
                let t = tool.as_deref().unwrap_or("");
                covered.push((inc.server.clone(), t.to_string()));
                let ratio = inc.after / inc.before;
                let after_time: f64 = fleet
                    .servers
                    .iter()
                    .filter(|s| s.server == inc.server)
                    .flat_map(|s| &s.tools)
                    .filter(|x| x.tool == t)
                    .flat_map(|x| &x.calls)
                    .filter(|c| c.t >= inc.start_ms)
                    .map(|c| c.seconds)
                    .sum();
                let saved = after_time * (1.0 - 1.0 / ratio) / total_call_time;
                if let Some(r) = red_of(&inc.server, t) {
                    evidence.push(format!(
                        "{t} on {} is {:.0}% of all call time (p95 {:.0} ms)",
                        inc.server,
                        r.share * 100.0,
                        r.p95_ms
                    ));
                }
                evidence.push(format!(
                    "change point at {}: a step of {ratio:.2}x that has not come back",
                    inc.start
                ));
                (
                    saved,
                    format!(
                        "Roll back or fix what changed in {t} on {} at {}",
                        inc.server, inc.start
                    ),
                    format!(
                        "its median back from {:.0} ms to {:.0} ms; {:.1}% less call time in the fleet",
                        inc.after,
                        inc.before,
                        saved * 100.0
                    ),
                    Some(saved),
                )
            }
            IncidentKind::SaturationKnee => {
                let knee = knees.iter().find(|k| k.server == inc.server);
                let knee_text = knee
                    .and_then(|k| k.knee_rate)
                    .map_or("its knee".to_string(), |r| format!("{r:.2} calls/s"));
                if let Some(k) = knee {
                    evidence.push(format!(
                        "p95 at low load {:.0} ms; {:.1}x at the highest load ({:.2} calls/s)",
                        k.low_load_p95_ms, k.p95_ratio_at_max, k.max_rate
                    ));
                }
                (
                    1.0,
                    format!(
                        "Add capacity to {} or shed load above {knee_text}",
                        inc.server
                    ),
                    format!(
                        "p95 stays near {:.0} ms instead of {:.1}x that under surges",
                        inc.before * 1000.0,
                        inc.after / inc.before
                    ),
                    None,
                )
            }
            IncidentKind::ErrorBurst => (
                0.9,
                format!(
                    "Find why {} on {} failed from {}{}",
                    tool.as_deref().unwrap_or("calls"),
                    inc.server,
                    inc.start,
                    if inc.end_ms.is_none() {
                        " (still failing)"
                    } else {
                        ""
                    }
                ),
                format!(
                    "{:.0}% of its calls failing back to {:.2}%",
                    inc.after * 100.0,
                    inc.before * 100.0
                ),
                None,
            ),
            IncidentKind::MemoryLeak => (
                0.95,
                format!(
                    "Fix the memory leak on {}; until then restart it in a maintenance window",
                    inc.server
                ),
                format!(
                    "no crash: it climbed {:.0} MiB to its limit and restarted",
                    (inc.after - inc.before) / 1048576.0
                ),
                None,
            ),
            IncidentKind::DiskFill => {
                let f = forecasts
                    .iter()
                    .find(|f| f.server == inc.server && f.resource == "disk");
                let when = f
                    .and_then(|f| f.exhausts_at.clone())
                    .unwrap_or_else(|| "beyond 30 days".into());
                if let Some(f) = f {
                    evidence.push(format!(
                        "{} forecast: full at {when} (act by {})",
                        f.method,
                        f.act_by.clone().unwrap_or_default()
                    ));
                }
                (
                    0.97,
                    format!("Free disk on {} before {when}", inc.server),
                    "no outage from a full disk".to_string(),
                    None,
                )
            }
            IncidentKind::LoadSurge => continue,
        };
        // What is still going on at the end comes before what has passed.
        let weight = match inc.severity {
            Severity::Critical => 2.0,
            Severity::Warning => 1.0,
            Severity::Info => 0.5,
        } + if inc.end_ms.is_none() { 1.0 } else { 0.0 };
        out.push((
            weight + priority,
            Recommendation {
                rank: 0,
                severity: inc.severity,
                server: inc.server.clone(),
                tool,
                action,
                effect,
                call_time_saved: saved,
                evidence,
            },
        ));
    }
    // The heaviest tools not already explained: a fifth faster saves a fifth of their time.
    for r in red.iter().take(3) {
        if covered.contains(&(r.server.clone(), r.tool.clone())) || r.share < 0.02 {
            continue;
        }
        let saved = 0.2 * r.share;
        out.push((
            saved,
            Recommendation {
                rank: 0,
                severity: Severity::Info,
                server: r.server.clone(),
                tool: Some(r.tool.clone()),
                action: format!(
                    "Optimise {} on {} (cache, batch, or trim its work)",
                    r.tool, r.server
                ),
                effect: format!(
                    "20% faster saves {:.1}% of the fleet's call time",
                    saved * 100.0
                ),
                call_time_saved: Some(saved),
                evidence: vec![format!(
                    "{:.0}% of all call time: {} calls, mean {:.0} ms, p95 {:.0} ms",
                    r.share * 100.0,
                    r.calls,
                    r.mean_ms,
                    r.p95_ms
                )],
            },
        ));
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.into_iter()
        .enumerate()
        .map(|(i, (_, mut r))| {
            r.rank = i + 1;
            r
        })
        .collect()
}

// ------------------------------------------------------------ output

/// Seconds as a duration to the minute ("> 30d" for none).
pub fn opt_time(x: Option<f64>) -> String {
    x.map_or("> 30d".into(), |s| {
        format_duration_ms(((s / 60.0).round() * 60_000.0) as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testutil::server_with;
    use crate::stats::testutil::HOSTILE;

    /// The whole analyzer (incidents and change points, anomalies,
    /// forecasts, the error budget, recommendations) and its output on a
    /// server whose calls and gauges each hold one hostile value, as a
    /// library caller may hand it over without FleetData::load's filter.
    #[test]
    fn the_analysis_survives_hostile_values() {
        for h in HOSTILE {
            let fleet = FleetData {
                from_ms: i64::MIN,
                to_ms: i64::MAX,
                servers: vec![server_with(h)],
                server_label: "server".into(),
                found_metrics: Vec::new(),
            };
            let a = analyze_fleet(&fleet, &[]);
            assert_eq!(a.servers, 1);
            for f in &a.forecasts {
                assert!(f.seconds.is_none_or(|s| s >= 0.0), "{h}: {f:?}");
            }
            let json = serde_json::to_string_pretty(&a).unwrap();
            serde_json::from_str::<serde_json::Value>(&json).unwrap();
            for f in &a.forecasts {
                for s in [f.seconds, f.lower_s, f.upper_s] {
                    opt_time(s);
                }
            }
        }
    }
}
