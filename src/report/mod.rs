//! Reports: one analysis and one backtest of a period, written three ways
//! into a directory for cron jobs and people: `report.json` (everything, in
//! the schema of docs/report-schema.md), `report.md` (a verdict first, for
//! a mail or a ticket) and `report.html` (a self-contained dashboard with
//! inline CSS and SVG charts).
//!
//! A report never speaks about a time it has no data for: a reversed
//! period and a period before the data are errors, and a period that ends
//! after the store's newest sample (by more than twice the usual scrape
//! interval, measured from the data) is written, but marked stale in its
//! verdict, so that a cron job whose pipeline stopped does not keep mailing
//! yesterday's "OK".

pub mod charts;
mod html;
mod markdown;

use crate::analyze::analysis::{Analysis, analyze_fleet};
use crate::analyze::fleet::{FleetData, LoadOptions};
use crate::analyze::incidents::{IncidentKind, Severity};
use crate::analyze::shapes::SERVER_LABELS;
use crate::dsl::RuleFile;
use crate::engine::EngineError;
use crate::engine::alerts::Episode;
use crate::engine::backtest::{BacktestOptions, backtest};
use crate::engine::replay::ActionEvent;
use crate::fsutil::write_atomically;
use crate::metadata::MetricType;
use crate::remediate::audit::AuditRow;
use crate::store::{Snapshot, Store, StoreError};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, format_ms};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The version of report.json's schema (docs/report-schema.md).
pub const SCHEMA: &str = "mcpops.report/1";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    NothingToReport(#[from] crate::analyze::analysis::AnalyzeError),
    /// `--from` after `--to`.
    #[error("the period is reversed: it starts at {from} and ends earlier, at {to}")]
    Reversed { from: String, to: String },
    /// The period ends before the store's first sample.
    #[error(
        "nothing to report from {from} to {to}: the store's data starts later, at {first}; give a period that overlaps it"
    )]
    BeforeData {
        from: String,
        to: String,
        first: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The store's action journal (what `watch` did) does not read.
    #[error("the action journal: {0}")]
    Journal(String),
}

/// How bad things are, overall or for one signal of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    fn of(s: Severity) -> Level {
        match s {
            Severity::Info => Level::Ok,
            Severity::Warning => Level::Warning,
            Severity::Critical => Level::Critical,
        }
    }
}

/// One cell of the health grid.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub level: Level,
    pub note: String,
}

/// One row of the health grid: a server and its signals.
#[derive(Clone, Debug, Serialize)]
pub struct HealthRow {
    pub server: String,
    pub level: Level,
    pub signals: BTreeMap<String, Cell>,
}

impl HealthRow {
    /// A server with every signal OK, before the findings mark it.
    fn ok(server: String) -> HealthRow {
        HealthRow {
            server,
            level: Level::Ok,
            signals: SIGNALS
                .iter()
                .map(|s| {
                    let cell = Cell {
                        level: Level::Ok,
                        note: String::new(),
                    };
                    (s.to_string(), cell)
                })
                .collect(),
        }
    }
}

/// The signals of the health grid, in column order.
pub const SIGNALS: [&str; 7] = [
    "latency",
    "errors",
    "saturation",
    "memory",
    "disk",
    "sessions",
    "alerts",
];

/// Availability and error budget of one server.
#[derive(Clone, Debug, Serialize)]
pub struct SloRow {
    pub server: String,
    pub objective: f64,
    pub calls: u64,
    pub server_errors: u64,
    pub availability: f64,
    /// Share of the 30-day budget left (1 = untouched, 0 = spent).
    pub budget_left: f64,
    pub exhausts_at: Option<String>,
    pub level: Level,
}

/// What the rules' backtest over the period found.
#[derive(Clone, Debug, Serialize)]
pub struct Alerts {
    pub rules: Vec<String>,
    /// `alert` blocks in those files; 0 says out loud that no alert was
    /// checked, rather than "0 alerts fired".
    pub alert_rules: usize,
    pub episodes: Vec<Episode>,
    /// Indices into `episodes` of those still firing at the end.
    pub firing_at_end: Vec<usize>,
    /// The remediation and maintenance dry run: the audit of what would run.
    pub actions: Vec<ActionEvent>,
    /// What `mcpops watch` decided and carried out in the period, from the
    /// store's action journal, with each action's outcome: the live audit
    /// beside the dry run.
    pub carried_out: Vec<AuditRow>,
}

/// The journal's decisions with a step in `[from, to]`.
fn carried_out(store: &Store, from: i64, to: i64) -> Result<Vec<AuditRow>, ReportError> {
    // A store on object storage has no journal: `watch` keeps it beside
    // a local store.
    let log = match store.local_root() {
        Some(root) => crate::remediate::journal::read(root)
            .map_err(|e| ReportError::Journal(e.to_string()))?,
        None => crate::remediate::journal::Log::default(),
    };
    Ok(log
        .audit_rows()
        .into_iter()
        .filter(|r| (from..=to).contains(&r.event.time))
        .collect())
}

/// The verdict in one word and one line, and why.
///
/// The one rule that both the headline and `--fail-on` follow: the level is
/// the worst cell of the health grid, where a cell is critical only for what
/// is critical *at the end of the period* (a critical incident still going
/// on, a critical alert still firing, an error budget spent, a resource
/// forecast to run out within 2 days); an incident that ended within the
/// period counts as a warning at most. `--fail-on critical` exits 4 when the
/// level is critical, `--fail-on warning` when it is warning or critical.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub headline: String,
    /// One line per health cell above ok, worst first: server, signal, why.
    pub reasons: Vec<String>,
    /// The period ends after the newest sample (see [`Freshness`]): the
    /// level says nothing about the end of the period.
    pub stale: bool,
}

/// How new the store's newest sample is, against the clock and the period.
#[derive(Clone, Debug, Serialize)]
pub struct Freshness {
    /// The clock when the report was made.
    pub now: String,
    pub now_ms: i64,
    /// The store's newest sample.
    pub newest: String,
    pub newest_ms: i64,
    /// How long before `now` the newest sample is (negative: after).
    pub age_s: f64,
    /// The usual interval between two samples of a series (the median over
    /// the store's non-event series), or 60 s when no series has enough
    /// samples to measure it (`interval_measured` false).
    pub scrape_interval_s: f64,
    pub interval_measured: bool,
    /// The newest sample is newer than `now` minus twice the interval.
    pub fresh: bool,
    /// The period ends later than the newest sample plus twice the interval.
    pub period_stale: bool,
}

/// A whole report: report.json is this, serialised.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: String,
    pub store: String,
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub verdict: Verdict,
    /// Four lines: the verdict, what happened, how fresh the data is, what
    /// to do first.
    pub summary: Vec<String>,
    pub freshness: Freshness,
    pub health: Vec<HealthRow>,
    pub slo: Vec<SloRow>,
    pub alerts: Alerts,
    pub analysis: Analysis,
    /// Not serialised: the series the HTML draws.
    #[serde(skip)]
    pub fleet: Option<FleetData>,
}

/// What to report on.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// The last this much of the data (ignored when `from_ms` is given).
    pub since_ms: Option<i64>,
    /// The first and last sample times the period defaults to; `None` takes
    /// the store's (`mcpops report` gives where its data is dense).
    pub extent: Option<(i64, i64)>,
    /// The most samples one rule's evaluation may hold (see
    /// [`crate::engine::budget`]).
    pub max_samples: u64,
    /// The label that names servers; `None` finds it in the data.
    pub server_label: Option<String>,
    /// The clock the freshness is measured against; `None` reads it.
    pub now_ms: Option<i64>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            from_ms: None,
            to_ms: None,
            since_ms: None,
            extent: None,
            max_samples: crate::engine::budget::DEFAULT_MAX_SAMPLES,
            server_label: None,
            now_ms: None,
        }
    }
}

/// Steps reported to a progress display.
pub trait Progress {
    fn step(&self, what: &str);
}

impl Progress for indicatif::ProgressBar {
    fn step(&self, what: &str) {
        self.set_message(what.to_string());
        self.inc(1);
    }
}

/// Analyses the period and backtests `rules` over it.
///
/// Fails for a reversed period ([`ReportError::Reversed`]), a period that
/// ends before the data ([`ReportError::BeforeData`]), and a period with
/// nothing the analyzer recognises ([`ReportError::NothingToReport`]),
/// unless the period is stale: then the report is built, with no analysis
/// where there is no data, and its verdict says how old the data is.
pub fn build(
    store: &Store,
    rules: &[RuleFile],
    rule_names: &[String],
    opts: &ReportOptions,
    progress: &dyn Progress,
) -> Result<Report, ReportError> {
    let snapshot = store.snapshot()?;
    let stored = snapshot.manifest().extent();
    let (first, last) = opts.extent.or(stored).unwrap_or((0, 0));
    let to = opts.to_ms.unwrap_or(last);
    let from = opts
        .from_ms
        .or(opts.since_ms.map(|s| to.saturating_sub(s)))
        .unwrap_or(first);
    if from > to {
        return Err(ReportError::Reversed {
            from: format_ms(from),
            to: format_ms(to),
        });
    }
    let (stored_first, stored_last) = stored.unwrap_or((first, last));
    if to < stored_first {
        return Err(ReportError::BeforeData {
            from: format_ms(from),
            to: format_ms(to),
            first: format_ms(stored_first),
        });
    }
    let now = opts.now_ms.unwrap_or_else(crate::time::now_ms);
    progress.step("reading calls and gauges");
    let fleet = FleetData::load_with(
        &snapshot,
        from,
        to,
        &LoadOptions {
            server_label: opts.server_label.clone(),
        },
    )?;
    let freshness = freshness(&snapshot, &fleet, stored_last, to, now)?;
    let analysis = match crate::analyze::analysis::require_data(&fleet) {
        Ok(()) => {
            progress.step("analysing");
            analyze_fleet(&fleet, rules)
        }
        // A stale period may hold nothing: the report then says how stale.
        Err(_) if freshness.period_stale => nothing_analysed(&fleet, from, to),
        Err(e) => return Err(e.into()),
    };
    progress.step("replaying the rules");
    let bt = if rules.is_empty() {
        None
    } else {
        Some(backtest(
            store,
            rules,
            &BacktestOptions {
                from_ms: from,
                to_ms: to,
                step_ms: None,
                record: false,
                align_start: opts.from_ms.is_none(),
                max_samples: opts.max_samples,
            },
        )?)
    };
    let (episodes, actions) = bt
        .map(|b| (b.replay.episodes, b.replay.actions))
        .unwrap_or_default();
    let firing_at_end: Vec<usize> = episodes
        .iter()
        .enumerate()
        .filter(|(_, e)| e.fired_at.is_some() && e.ended_at.is_none())
        .map(|(i, _)| i)
        .collect();
    let alerts = Alerts {
        rules: rule_names.to_vec(),
        alert_rules: rules
            .iter()
            .flat_map(|f| &f.items)
            .filter(|i| matches!(i, crate::dsl::Item::Alert(_)))
            .count(),
        episodes,
        firing_at_end,
        actions,
        carried_out: carried_out(store, from, to)?,
    };
    let slo = slo_rows(&fleet, &analysis);
    let health = health(&analysis, &alerts, &slo);
    let verdict = verdict(&health, &alerts, &freshness, to);
    let summary = summary(&verdict, &analysis, &alerts, &freshness, from, to);
    Ok(Report {
        schema: SCHEMA,
        generated_at: format_ms(now / 1000 * 1000),
        store: store.location(),
        from: format_ms(from),
        to: format_ms(to),
        from_ms: from,
        to_ms: to,
        verdict,
        summary,
        freshness,
        health,
        slo,
        alerts,
        analysis,
        fleet: Some(fleet),
    })
}

/// The interval assumed when no series has the samples to measure it:
/// Prometheus's default scrape interval.
const DEFAULT_INTERVAL_MS: i64 = MINUTE_MS;

/// The usual interval between two samples of one series: the median, over
/// the series that are sampled (not one sample per event, whose gaps are
/// the traffic's) and have at least three samples, of their mean gap. The
/// period's gauges, already read, give it; when the period has none (a
/// stale one, or calls only), the store's catalog (keys and times only).
fn scrape_interval(snapshot: &Snapshot, fleet: &FleetData) -> Result<Option<i64>, StoreError> {
    let mean_gap = |first: i64, last: i64, samples: usize| {
        (samples >= 3 && last > first).then(|| (last - first) / (samples as i64 - 1))
    };
    let mut gaps: Vec<i64> = fleet
        .servers
        .iter()
        .flat_map(|s| s.gauges.values())
        .filter_map(|g| mean_gap(*g.ts.first()?, *g.ts.last()?, g.ts.len()))
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        let catalog = snapshot.catalog(&|_| true)?;
        gaps = catalog
            .series
            .iter()
            .filter(|s| {
                catalog
                    .metadata
                    .get(&s.key.metric)
                    .is_none_or(|m| m.kind != MetricType::Event)
            })
            .filter_map(|s| mean_gap(s.first, s.last, s.samples as usize))
            .filter(|g| *g > 0)
            .collect();
    }
    if gaps.is_empty() {
        return Ok(None);
    }
    let mid = gaps.len() / 2;
    Ok(Some(*gaps.select_nth_unstable(mid).1))
}

fn freshness(
    snapshot: &Snapshot,
    fleet: &FleetData,
    newest_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Freshness, StoreError> {
    let measured = scrape_interval(snapshot, fleet)?;
    let interval = measured.unwrap_or(DEFAULT_INTERVAL_MS);
    let slack = interval.saturating_mul(2);
    Ok(Freshness {
        now: format_ms(now_ms / 1000 * 1000),
        now_ms,
        newest: format_ms(newest_ms),
        newest_ms,
        age_s: now_ms.saturating_sub(newest_ms) as f64 / 1000.0,
        scrape_interval_s: interval as f64 / 1000.0,
        interval_measured: measured.is_some(),
        fresh: newest_ms >= now_ms.saturating_sub(slack),
        period_stale: to_ms > newest_ms.saturating_add(slack),
    })
}

/// The analysis of a period with no data in it (a stale report's).
fn nothing_analysed(fleet: &FleetData, from: i64, to: i64) -> Analysis {
    Analysis {
        from: format_ms(from),
        to: format_ms(to),
        from_ms: from,
        to_ms: to,
        servers: 0,
        calls: 0,
        server_label: fleet.server_label.clone(),
        bottlenecks: Vec::new(),
        red_tools: Vec::new(),
        red_servers: Vec::new(),
        use_: Vec::new(),
        knees: Vec::new(),
        correlations: Vec::new(),
        queueing: Vec::new(),
        incidents: Vec::new(),
        change_points: Vec::new(),
        anomalies: Vec::new(),
        forecasts: Vec::new(),
        maintenance: Vec::new(),
        recommendations: Vec::new(),
        notes: vec!["the period holds no data the analyzer recognises".to_string()],
    }
}

/// The health row of alerts that name no server.
pub const FLEET: &str = "(fleet)";

fn server_of(e: &Episode) -> String {
    // The first server label the alert carries, in the analyzer's order.
    SERVER_LABELS
        .iter()
        .find_map(|l| e.labels.iter().find(|(k, _)| k == l))
        .map_or_else(|| FLEET.to_string(), |(_, v)| v.clone())
}

fn slo_rows(fleet: &FleetData, a: &Analysis) -> Vec<SloRow> {
    fleet
        .servers
        .iter()
        .map(|s| {
            let calls = s.call_count() as u64;
            let errors = s
                .tools
                .iter()
                .flat_map(|t| &t.calls)
                .filter(|c| c.server_error)
                .count() as u64;
            let budget = a
                .forecasts
                .iter()
                .find(|f| f.server == s.server && f.resource == "error budget");
            let budget_left = budget.map_or(1.0, |f| f.current);
            let level = if budget_left <= 0.0 {
                Level::Critical
            } else if budget_left < 0.5 {
                Level::Warning
            } else {
                Level::Ok
            };
            SloRow {
                server: s.server.clone(),
                objective: crate::analyze::analysis::SLO_TARGET,
                calls,
                server_errors: errors,
                availability: if calls == 0 {
                    1.0
                } else {
                    1.0 - errors as f64 / calls as f64
                },
                budget_left,
                exhausts_at: budget.and_then(|f| f.exhausts_at.clone()),
                level,
            }
        })
        .collect()
}

/// How an alert's `severity` counts for the verdict: `critical` and
/// `warning` as themselves, anything else (`info`) not at all.
pub(crate) fn alert_level(severity: &str) -> Level {
    match severity {
        "critical" => Level::Critical,
        "warning" => Level::Warning,
        _ => Level::Ok,
    }
}

/// The signal an incident kind belongs to.
fn signal_of(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::LatencyRegression => "latency",
        IncidentKind::ErrorBurst => "errors",
        IncidentKind::SaturationKnee | IncidentKind::LoadSurge => "saturation",
        IncidentKind::MemoryLeak => "memory",
        IncidentKind::DiskFill => "disk",
    }
}

/// How close a forecast's pessimistic date is: within two days is critical,
/// within a week a warning.
fn forecast_level(act_by_ms: Option<i64>, end_ms: i64) -> Level {
    match act_by_ms {
        Some(t) if t - end_ms <= 2 * 86_400_000 => Level::Critical,
        Some(t) if t - end_ms <= 7 * 86_400_000 => Level::Warning,
        _ => Level::Ok,
    }
}

fn health(a: &Analysis, alerts: &Alerts, slo: &[SloRow]) -> Vec<HealthRow> {
    let mut rows: Vec<HealthRow> = a
        .red_servers
        .iter()
        .map(|r| HealthRow::ok(r.server.clone()))
        .collect();
    // An alert firing at the end on no server the analyzer knows (a
    // fleet-wide rule: `absent(...)`, a sum without the server label) still
    // counts for the verdict: it gets a row of its own.
    for &i in &alerts.firing_at_end {
        let server = server_of(&alerts.episodes[i]);
        if !rows.iter().any(|r| r.server == server) {
            rows.push(HealthRow::ok(server));
        }
    }
    let mut raise = |server: &str, signal: &str, level: Level, note: String| {
        if let Some(cell) = rows
            .iter_mut()
            .find(|r| r.server == server)
            .and_then(|r| r.signals.get_mut(signal))
            && (level > cell.level || cell.note.is_empty())
        {
            cell.level = level;
            cell.note = note;
        }
    };
    for r in &a.red_servers {
        raise(
            &r.server,
            "latency",
            Level::Ok,
            format!("p95 {:.0} ms", r.p95_ms),
        );
        raise(
            &r.server,
            "errors",
            Level::Ok,
            format!("{:.2}% failed", r.error_ratio * 100.0),
        );
    }
    for s in slo {
        raise(
            &s.server,
            "errors",
            s.level,
            format!("{:.0}% of the error budget left", s.budget_left * 100.0),
        );
    }
    for i in &a.incidents {
        // What ended within the period is worth a look, not a page: the
        // verdict is about the end of the period.
        let (level, note) = match &i.end {
            None => (
                Level::of(i.severity),
                format!(
                    "{} since {}, ongoing",
                    i.kind.as_str().replace('_', " "),
                    when(&i.start)
                ),
            ),
            Some(end) => (
                Level::of(i.severity).min(Level::Warning),
                format!(
                    "{} from {} to {}",
                    i.kind.as_str().replace('_', " "),
                    when(&i.start),
                    when(end)
                ),
            ),
        };
        raise(&i.server, signal_of(i.kind), level, note);
    }
    for f in &a.forecasts {
        let signal = match f.resource.as_str() {
            "memory" => "memory",
            "disk" => "disk",
            "sessions" => "sessions",
            _ => continue,
        };
        if !f.confident() {
            continue;
        }
        let level = forecast_level(f.act_by_ms, a.to_ms);
        if level > Level::Ok {
            raise(
                &f.server,
                signal,
                level,
                format!("full by {}", when(f.exhausts_at.as_deref().unwrap_or("?"))),
            );
        }
    }
    for &i in &alerts.firing_at_end {
        let e = &alerts.episodes[i];
        let level = alert_level(e.severity);
        raise(
            &server_of(e),
            "alerts",
            level,
            format!("{} firing", e.alert),
        );
    }
    for row in &mut rows {
        row.level = row
            .signals
            .values()
            .map(|c| c.level)
            .max()
            .unwrap_or(Level::Ok);
    }
    rows
}

/// "2026-11-16T10:54:15Z" as "2026-11-16 10:54 UTC": the year and the
/// zone always, so that a report read weeks later says when it speaks of.
pub(crate) fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..16), rfc3339.ends_with('Z')) {
        (Some(minute), true) => format!("{} UTC", minute.replace('T', " ")),
        _ => rfc3339.to_string(),
    }
}

/// A time in milliseconds as [`when`] writes it.
pub(crate) fn when_ms(ms: i64) -> String {
    when(&format_ms(ms))
}

/// A duration as people say it: its two largest units ("1d 22h",
/// "41m 42s", "350 ms"), not `1d22h41m42s916ms`.
pub fn human_duration_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < SECOND_MS as u64 {
        return format!("{sign}{ms} ms");
    }
    if ms < MINUTE_MS as u64 {
        return format!("{sign}{:.1} s", ms as f64 / 1000.0);
    }
    let units = [
        ("d", DAY_MS as u64),
        ("h", HOUR_MS as u64),
        ("m", MINUTE_MS as u64),
        ("s", SECOND_MS as u64),
    ];
    // From a minute up, whole units: the two largest.
    let Some(i) = units.iter().position(|(_, size)| ms >= *size) else {
        return format!("{sign}{ms} ms");
    };
    let (big, size) = units[i];
    let mut text = format!("{sign}{}{big}", ms / size);
    if let Some((small, small_size)) = units.get(i + 1) {
        let rest = ms % size / small_size;
        if rest > 0 {
            text.push_str(&format!(" {rest}{small}"));
        }
    }
    text
}

/// Seconds (a forecast's horizon) as [`human_duration_ms`] writes them;
/// `None` is beyond the 30-day horizon.
pub(crate) fn human_seconds(s: Option<f64>) -> String {
    match s {
        Some(s) if s.is_finite() => human_duration_ms((s * 1000.0).round() as i64),
        _ => "> 30d".to_string(),
    }
}

/// A value in its unit, scaled to read at a glance: bytes in KiB..TiB,
/// durations humanised, shares in percent, counts with k/M/G.
pub fn human_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return format!("{v} {unit}").trim_end().to_string();
    }
    match unit {
        "bytes" => {
            let mut x = v;
            for u in ["B", "KiB", "MiB", "GiB", "TiB"] {
                if x.abs() < 1024.0 || u == "TiB" {
                    return if u == "B" {
                        format!("{x:.0} B")
                    } else {
                        format!("{x:.1} {u}")
                    };
                }
                x /= 1024.0;
            }
            unreachable!("the loop returns at TiB")
        }
        "seconds" | "s" => human_duration_ms((v * 1000.0).round() as i64),
        "ms" => {
            if v.abs() >= 10_000.0 {
                human_duration_ms(v.round() as i64)
            } else {
                format!("{} ms", charts::short_number(v))
            }
        }
        "ratio" | "share of calls" | "share of a core" | "share of scrapes up" | "share" => {
            format!("{:.1}%", v * 100.0)
        }
        "share of the 30-day budget left" => format!("{:.0}% of the budget", v * 100.0),
        "" => charts::short_number(v),
        u => format!("{} {u}", charts::short_number(v)),
    }
}

fn verdict(health: &[HealthRow], alerts: &Alerts, fresh: &Freshness, to_ms: i64) -> Verdict {
    let level = health.iter().map(|r| r.level).max().unwrap_or(Level::Ok);
    let bad: Vec<&str> = health
        .iter()
        .filter(|r| r.level == level && level > Level::Ok)
        .map(|r| r.server.as_str())
        .collect();
    let firing = alerts.firing_at_end.len();
    let servers = health.iter().filter(|r| r.server != FLEET).count();
    let alerts_part = if alerts.alert_rules == 0 {
        "no alert rules loaded".to_string()
    } else {
        format!("{firing} alert(s) firing at the end")
    };
    let mut reasons: Vec<(Level, String)> = health
        .iter()
        .flat_map(|r| {
            r.signals
                .iter()
                .filter(|(_, c)| c.level > Level::Ok)
                .map(move |(signal, c)| {
                    (
                        c.level,
                        format!(
                            "{}: {} {signal}: {}",
                            c.level.name().to_uppercase(),
                            r.server,
                            c.note
                        ),
                    )
                })
        })
        .collect();
    reasons.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let headline = if fresh.period_stale {
        format!(
            "STALE: the newest sample ({}) is {} older than the end of the period ({}): nothing is known about the fleet after it",
            when(&fresh.newest),
            human_duration_ms(to_ms.saturating_sub(fresh.newest_ms)),
            when_ms(to_ms),
        )
    } else {
        match level {
            Level::Ok => format!("OK: {servers} servers healthy, {alerts_part}"),
            Level::Warning => format!(
                "WARNING: {} of {servers} servers need attention ({}); {alerts_part}",
                bad.len(),
                bad.join(", ")
            ),
            Level::Critical => format!(
                "CRITICAL: {} of {servers} servers ({}); {alerts_part}",
                bad.len(),
                bad.join(", ")
            ),
        }
    };
    Verdict {
        level,
        headline,
        reasons: reasons.into_iter().map(|(_, r)| r).collect(),
        stale: fresh.period_stale,
    }
}

/// How fresh the data is, in one line.
fn freshness_line(f: &Freshness) -> String {
    let interval = human_duration_ms((f.scrape_interval_s * 1000.0) as i64);
    let basis = if f.interval_measured {
        format!("the usual interval between samples is {interval}")
    } else {
        format!("assuming samples every {interval}: too few to measure")
    };
    let age = if f.age_s >= 0.0 {
        format!(
            "{} before now ({})",
            human_duration_ms((f.age_s * 1000.0) as i64),
            when(&f.now)
        )
    } else {
        format!(
            "{} after now ({})",
            human_duration_ms((-f.age_s * 1000.0) as i64),
            when(&f.now)
        )
    };
    format!(
        "data {}: newest sample {}, {age}; {basis}",
        if f.fresh { "fresh" } else { "NOT fresh" },
        when(&f.newest),
    )
}

fn summary(
    v: &Verdict,
    a: &Analysis,
    alerts: &Alerts,
    fresh: &Freshness,
    from: i64,
    to: i64,
) -> Vec<String> {
    let critical = a
        .incidents
        .iter()
        .filter(|i| i.severity == Severity::Critical)
        .count();
    let alerts_part = if alerts.alert_rules == 0 {
        if alerts.rules.is_empty() {
            "NO RULES LOADED (no alert was checked: give --rules FILE)".to_string()
        } else {
            format!(
                "NO ALERT RULES in {} (no alert was checked)",
                alerts.rules.join(", ")
            )
        }
    } else {
        format!(
            "{} alerts fired ({} rules)",
            alerts
                .episodes
                .iter()
                .filter(|e| e.fired_at.is_some())
                .count(),
            alerts.alert_rules
        )
    };
    vec![
        v.headline.clone(),
        format!(
            "{} incidents ({critical} critical), {alerts_part}, {} maintenance item(s) due, over {} calls on {} servers (named by `{}`) from {} to {}",
            a.incidents.len(),
            a.maintenance.len(),
            a.calls,
            a.servers,
            a.server_label,
            when_ms(from),
            when_ms(to)
        ),
        freshness_line(fresh),
        match a.recommendations.first() {
            Some(r) => format!("first: {} ({})", r.action, r.effect),
            None => "nothing to do".to_string(),
        },
    ]
}

/// Writes report.json, report.md and report.html into `dir` (created if
/// needed); returns the HTML's path. Each file is written atomically
/// ([`crate::fsutil`]): a reader sees the previous report or the new one,
/// and a symlink in `dir` is replaced, not written through.
pub fn write(report: &Report, dir: &Path) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(fail(dir))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report)
        .map_err(std::io::Error::other)
        .map_err(fail(&json_path))?;
    write_atomically(&json_path, (json + "\n").as_bytes()).map_err(fail(&json_path))?;
    let md_path = dir.join("report.md");
    write_atomically(&md_path, markdown::render(report).as_bytes()).map_err(fail(&md_path))?;
    let html_path = dir.join("report.html");
    write_atomically(&html_path, html::render(report).as_bytes()).map_err(fail(&html_path))?;
    Ok(html_path)
}

fn fail(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.display().to_string();
    move |source| ReportError::Write { path, source }
}

/// The directory of a dated copy: `DIR/archive/2026-12-07T0600Z`, from
/// when the report was made, to the minute.
pub fn archive_dir(report: &Report, dir: &Path) -> PathBuf {
    let stamp: String = report
        .generated_at
        .get(..16)
        .unwrap_or(&report.generated_at)
        .chars()
        .filter(|c| *c != ':')
        .collect();
    dir.join("archive").join(format!("{stamp}Z"))
}

/// Writes the report, as [`write`] does, into [`archive_dir`] too (a run
/// within the same minute replaces that copy); returns the copy's directory.
pub fn write_archive(report: &Report, dir: &Path) -> Result<PathBuf, ReportError> {
    let copy = archive_dir(report, dir);
    write(report, &copy)?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_values_read_at_a_glance() {
        assert_eq!(human_duration_ms(169_302_916), "1d 23h");
        assert_eq!(human_duration_ms(2_502_916), "41m 42s");
        assert_eq!(human_duration_ms(3_600_000), "1h");
        assert_eq!(human_duration_ms(17_542), "17.5 s");
        assert_eq!(human_duration_ms(350), "350 ms");
        assert_eq!(human_value(14275.1564, "ms"), "14.3 s");
        assert_eq!(
            human_value(3.5 * 1024.0 * 1024.0 * 1024.0, "bytes"),
            "3.5 GiB"
        );
        assert_eq!(human_value(0.0123, "ratio"), "1.2%");
        assert_eq!(human_value(0.0, "requests"), "0 requests");
        assert_eq!(human_value(0.70312, "calls/s"), "0.703 calls/s");
        assert_eq!(when("2026-11-16T10:54:15.388Z"), "2026-11-16 10:54 UTC");
    }
}
