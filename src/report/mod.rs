//! Reports: one analysis and one backtest of a period, written three ways
//! into a directory for cron jobs and people: `report.json` (everything, in
//! the schema of docs/report-schema.md), `report.md` (a verdict first, for
//! a mail or a ticket) and `report.html` (a self-contained dashboard with
//! inline CSS and SVG charts).

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
use crate::store::{Store, StoreError};
use crate::time::format_ms;
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
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
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
    pub episodes: Vec<Episode>,
    /// Indices into `episodes` of those still firing at the end.
    pub firing_at_end: Vec<usize>,
    /// The remediation and maintenance dry run: the audit of what would run.
    pub actions: Vec<ActionEvent>,
}

/// The verdict in one word and one line.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub headline: String,
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
    /// Three lines: the verdict, what happened, what to do first.
    pub summary: Vec<String>,
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
pub fn build(
    store: &Store,
    rules: &[RuleFile],
    rule_names: &[String],
    opts: &ReportOptions,
    progress: &dyn Progress,
) -> Result<Report, ReportError> {
    let snapshot = store.snapshot()?;
    let (first, last) = opts
        .extent
        .or_else(|| snapshot.manifest().extent())
        .unwrap_or((0, 0));
    let to = opts.to_ms.unwrap_or(last);
    let from = opts
        .from_ms
        .or(opts.since_ms.map(|s| to.saturating_sub(s)))
        .unwrap_or(first);
    progress.step("reading calls and gauges");
    let fleet = FleetData::load_with(
        &snapshot,
        from,
        to,
        &LoadOptions {
            server_label: opts.server_label.clone(),
        },
    )?;
    crate::analyze::analysis::require_data(&fleet)?;
    progress.step("analysing");
    let analysis = analyze_fleet(&fleet, rules);
    progress.step("replaying the rules");
    let bt = if rules.is_empty() || to < from {
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
        episodes,
        firing_at_end,
        actions,
    };
    let slo = slo_rows(&fleet, &analysis);
    let health = health(&analysis, &alerts, &slo);
    let verdict = verdict(&health, &alerts);
    let summary = summary(&verdict, &analysis, &alerts);
    Ok(Report {
        schema: SCHEMA,
        generated_at: format_ms(crate::time::now_ms() / 1000 * 1000),
        store: store.root().display().to_string(),
        from: format_ms(from.max(analysis.from_ms)),
        to: format_ms(to.min(analysis.to_ms.max(from))),
        from_ms: from,
        to_ms: to,
        verdict,
        summary,
        health,
        slo,
        alerts,
        analysis,
        fleet: Some(fleet),
    })
}

fn server_of(e: &Episode) -> String {
    // The first server label the alert carries, in the analyzer's order.
    SERVER_LABELS
        .iter()
        .find_map(|l| e.labels.iter().find(|(k, _)| k == l))
        .map_or_else(|| "(fleet)".to_string(), |(_, v)| v.clone())
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
        .map(|r| HealthRow {
            server: r.server.clone(),
            level: Level::Ok,
            signals: SIGNALS
                .iter()
                .map(|s| {
                    (
                        s.to_string(),
                        Cell {
                            level: Level::Ok,
                            note: String::new(),
                        },
                    )
                })
                .collect(),
        })
        .collect();
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
        raise(
            &i.server,
            signal_of(i.kind),
            Level::of(i.severity),
            format!(
                "{} from {}",
                i.kind.as_str().replace('_', " "),
                short_time(&i.start)
            ),
        );
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
                format!(
                    "full by {}",
                    short_time(f.exhausts_at.as_deref().unwrap_or("?"))
                ),
            );
        }
    }
    for &i in &alerts.firing_at_end {
        let e = &alerts.episodes[i];
        let level = if e.severity == "critical" {
            Level::Critical
        } else {
            Level::Warning
        };
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

/// "2026-11-16T10:54:15Z" as "11-16 10:54".
pub(crate) fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(5..16)
        .map_or_else(|| rfc3339.to_string(), |s| s.replace('T', " "))
}

fn verdict(health: &[HealthRow], alerts: &Alerts) -> Verdict {
    let level = health.iter().map(|r| r.level).max().unwrap_or(Level::Ok);
    let bad: Vec<&str> = health
        .iter()
        .filter(|r| r.level == level && level > Level::Ok)
        .map(|r| r.server.as_str())
        .collect();
    let firing = alerts.firing_at_end.len();
    let headline = match level {
        Level::Ok => format!("OK: {} servers healthy, no alert firing", health.len()),
        Level::Warning => format!(
            "WARNING: {} of {} servers need attention ({}); {firing} alert(s) firing at the end",
            bad.len(),
            health.len(),
            bad.join(", ")
        ),
        Level::Critical => format!(
            "CRITICAL: {} of {} servers ({}); {firing} alert(s) firing at the end",
            bad.len(),
            health.len(),
            bad.join(", ")
        ),
    };
    Verdict { level, headline }
}

fn summary(v: &Verdict, a: &Analysis, alerts: &Alerts) -> Vec<String> {
    let critical = a
        .incidents
        .iter()
        .filter(|i| i.severity == Severity::Critical)
        .count();
    vec![
        v.headline.clone(),
        format!(
            "{} incidents ({critical} critical), {} alerts fired, {} maintenance item(s) due, over {} calls on {} servers (named by `{}`) from {} to {}",
            a.incidents.len(),
            alerts
                .episodes
                .iter()
                .filter(|e| e.fired_at.is_some())
                .count(),
            a.maintenance.len(),
            a.calls,
            a.servers,
            a.server_label,
            short_time(&a.from),
            short_time(&a.to)
        ),
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
    let fail = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Write { path, source }
    };
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
