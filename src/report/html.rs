//! report.html: the operational dashboard, one self-contained page (inline
//! CSS and SVG, no script, nothing fetched), in the order an operator reads
//! it next to Grafana: the verdict, what to do first and why the verdict is
//! what it is; then fleet health (with a colour legend), SLOs and error
//! budget, the alert timeline; then the details: incidents, forecasts with
//! the projected line and the date of exhaustion, anomalies drawn on their
//! series, bottlenecks, the maintenance schedule and the remediation audit.
//! Tables longer than [`FOLD`] rows show their first rows and fold the rest
//! under `<details>`. Every section has an `id` so tools (and the tests)
//! can find it.

use super::charts::{self, Overlay, Span};
use super::{
    Level, Report, SIGNALS, human_duration_ms, human_seconds, human_value, server_of, when, when_ms,
};
use crate::analyze::fleet::{BUCKET_MS, ServerData};
use crate::analyze::forecast::forecast_path;
use crate::time::DAY_MS;
use std::fmt::Write;

const WIDE: (u32, u32) = (1100, 300);
const HALF: (u32, u32) = (560, 280);
/// Charts of each kind drawn (the tables list the rest).
const MAX_CHARTS: usize = 4;
/// Rows a table shows before the rest folds under `<details>`.
pub const FOLD: usize = 8;

/// Text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;color:#111827}
header{padding:18px 28px;color:#fff}
header.ok{background:#15803d}header.warning{background:#b45309}header.critical{background:#b91c1c}header.stale{background:#4b5563}
header h1{margin:0 0 6px;font-size:22px}header p{margin:2px 0;font-size:14px;opacity:.95}
main{padding:12px 28px 40px;max-width:1180px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:14px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:17px;margin:2px 0 10px}
table{border-collapse:collapse;font-size:14px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
td,th{white-space:nowrap}td:last-child,#health td{white-space:normal}
th{background:#f9fafb;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{background:#dcfce7}td.warning{background:#fef3c7}td.critical{background:#fee2e2;font-weight:600}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;color:#fff}
.pill.ok{background:#15803d}.pill.info{background:#6b7280}.pill.warning{background:#b45309}.pill.critical{background:#b91c1c}
.bar{background:#e5e7eb;border-radius:3px;height:10px;width:120px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:10px;border-radius:3px}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.muted{color:#6b7280;font-size:14px}
.legend{font-size:13px;color:#374151;margin:8px 0 0}.legend span{margin-right:14px}
.swatch{display:inline-block;width:14px;height:10px;border-radius:2px;vertical-align:middle;margin-right:4px}
ul.reasons li,ol li{margin:3px 0;font-size:15px}
code{font-size:13px}
summary{cursor:pointer;color:#374151;margin:6px 0}
"#;

pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let class = if r.verdict.stale {
        "stale"
    } else {
        r.verdict.level.name()
    };
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>mcpops report: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.verdict.headline)
    );
    let _ = write!(
        h,
        "<header class=\"{class}\" id=\"verdict\"><h1>{}</h1>",
        esc(&r.verdict.headline)
    );
    for line in r.summary.iter().skip(1) {
        let _ = write!(h, "<p>{}</p>", esc(line));
    }
    let _ = writeln!(
        h,
        "<p>Period {} to {} · {} servers · {} calls</p></header>\n<main>",
        when(&r.from),
        when(&r.to),
        r.analysis.servers,
        r.analysis.calls
    );
    recommendations(&mut h, r);
    reasons(&mut h, r);
    health(&mut h, r);
    slo(&mut h, r);
    timeline(&mut h, r);
    incidents(&mut h, r);
    forecasts(&mut h, r);
    anomalies(&mut h, r);
    bottlenecks(&mut h, r);
    maintenance(&mut h, r);
    remediation(&mut h, r);
    notes(&mut h, r);
    let _ = writeln!(
        h,
        "<p class=\"muted\">Generated {} by mcpops from the store <code>{}</code>; schema {}.</p>\n</main></body></html>",
        esc(&when(&r.generated_at)),
        esc(&r.store),
        super::SCHEMA
    );
    h
}

/// A table: its header row, then its rows; beyond [`FOLD`] rows the rest
/// folds under `<details>` in a second table with the same header.
fn table(h: &mut String, header: &[&str], rows: &[String], what: &str) {
    let head: String = header.iter().map(|c| format!("<th>{c}</th>")).collect();
    let _ = writeln!(h, "<table><tr>{head}</tr>");
    for row in rows.iter().take(FOLD) {
        h.push_str(row);
    }
    h.push_str("</table>");
    if rows.len() > FOLD {
        let _ = writeln!(
            h,
            "<details><summary>{} more {what}</summary><table><tr>{head}</tr>",
            rows.len() - FOLD
        );
        for row in &rows[FOLD..] {
            h.push_str(row);
        }
        h.push_str("</table></details>");
    }
}

/// What the colours of the health grid and the pills mean.
fn legend(h: &mut String) {
    h.push_str("<p class=\"legend\"><span><span class=\"swatch\" style=\"background:#dcfce7\"></span>ok</span><span><span class=\"swatch\" style=\"background:#fef3c7\"></span>warning: look at it (an incident that ended, a warning alert, under half the error budget left, a resource out within 7 days)</span><span><span class=\"swatch\" style=\"background:#fee2e2\"></span>critical: act now (a critical incident still going on, a critical alert firing at the end, the error budget spent, a resource out within 2 days)</span></p>");
}

/// Why the verdict is what it is: every health cell above ok, worst first.
fn reasons(h: &mut String, r: &Report) {
    let _ = write!(h, "<section id=\"reasons\"><h2>Why the verdict</h2>");
    if r.verdict.stale {
        let _ = write!(
            h,
            "<p><b>{}</b></p>",
            esc(r.summary.get(2).map_or("", String::as_str))
        );
    }
    if r.alerts.alert_rules == 0 {
        h.push_str(
            "<p><b>No rules loaded: no alert was checked.</b> Give <code>--rules FILE</code>.</p>",
        );
    }
    if r.verdict.reasons.is_empty() {
        h.push_str(
            "<p class=\"muted\">Every signal of every server is ok at the end of the period.</p>",
        );
    } else {
        h.push_str("<ul class=\"reasons\">");
        for line in r.verdict.reasons.iter().take(FOLD) {
            let _ = write!(h, "<li>{}</li>", esc(line));
        }
        h.push_str("</ul>");
        if r.verdict.reasons.len() > FOLD {
            let _ = write!(
                h,
                "<details><summary>{} more</summary><ul class=\"reasons\">",
                r.verdict.reasons.len() - FOLD
            );
            for line in &r.verdict.reasons[FOLD..] {
                let _ = write!(h, "<li>{}</li>", esc(line));
            }
            h.push_str("</ul></details>");
        }
    }
    h.push_str("</section>\n");
}

fn pill(level: Level) -> String {
    format!("<span class=\"pill {0}\">{0}</span>", level.name())
}

fn health(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"health\"><h2>Fleet health</h2><table><tr><th>server</th><th>overall</th>"
    );
    for s in SIGNALS {
        let _ = write!(h, "<th>{s}</th>");
    }
    h.push_str("</tr>\n");
    for row in &r.health {
        let _ = write!(
            h,
            "<tr data-server=\"{0}\"><th>{0}</th><td>{1}</td>",
            esc(&row.server),
            pill(row.level)
        );
        for s in SIGNALS {
            if let Some(c) = row.signals.get(s) {
                let _ = write!(
                    h,
                    "<td class=\"{}\" data-signal=\"{s}\">{}</td>",
                    c.level.name(),
                    esc(&c.note)
                );
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>");
    legend(h);
    h.push_str("</section>\n");
}

fn slo(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        "<section id=\"slo\"><h2>SLO: availability {:.1}% over 30 days, error budget left</h2><table><tr><th>server</th><th>calls</th><th>server errors</th><th>availability</th><th>budget left</th><th>runs out</th></tr>",
        r.slo.first().map_or(99.9, |s| s.objective * 100.0)
    );
    for s in &r.slo {
        let color = match s.level {
            Level::Ok => "#16a34a",
            Level::Warning => "#d97706",
            Level::Critical => "#dc2626",
        };
        let _ = writeln!(
            h,
            "<tr data-server=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}%</td><td><span class=\"bar\"><span style=\"width:{:.0}%;background:{color}\"></span></span> {:.0}%</td><td>{}</td></tr>",
            esc(&s.server),
            esc(&s.server),
            s.calls,
            s.server_errors,
            s.availability * 100.0,
            (s.budget_left.clamp(0.0, 1.0)) * 100.0,
            s.budget_left * 100.0,
            s.exhausts_at
                .as_deref()
                .map_or("not within 30 days".into(), when)
        );
    }
    h.push_str("</table></section>\n");
}

fn timeline(h: &mut String, r: &Report) {
    let _ = write!(h, "<section id=\"alerts\"><h2>Alert timeline</h2>");
    let fired: Vec<&crate::engine::alerts::Episode> = r
        .alerts
        .episodes
        .iter()
        .filter(|e| e.fired_at.is_some())
        .collect();
    let spans: Vec<Span> = fired
        .iter()
        .map(|e| Span {
            row: format!("{} {}", e.alert, server_of(e)),
            start_ms: e.fired_at.unwrap_or(e.active_at),
            end_ms: e.ended_at.unwrap_or(r.to_ms),
            level: super::alert_level(e.severity),
            open: e.ended_at.is_none(),
        })
        .collect();
    match charts::timeline(&spans, r.from_ms.max(r.analysis.from_ms), r.to_ms, WIDE.0) {
        Some(svg) => {
            h.push_str(&svg);
            h.push_str("<p class=\"legend\"><span><span class=\"swatch\" style=\"background:#dc2626\"></span>critical</span><span><span class=\"swatch\" style=\"background:#d97706\"></span>warning</span><span><span class=\"swatch\" style=\"background:#6b7280\"></span>info (does not count for the verdict)</span><span>solid: still firing at the end; lighter: ended</span></p>");
        }
        None if r.alerts.alert_rules == 0 => {
            h.push_str("<p><b>No rules loaded: no alert was checked.</b></p>");
        }
        None => {
            let _ = write!(
                h,
                "<p class=\"muted\">No alert fired ({} rules).</p>",
                r.alerts.alert_rules
            );
        }
    }
    if !fired.is_empty() {
        let rows: Vec<String> = fired
            .iter()
            .map(|e| {
                let fired_at = e.fired_at.unwrap_or(e.active_at);
                format!(
                    "<tr class=\"episode\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                    esc(&e.alert),
                    esc(e.severity),
                    esc(&server_of(e)),
                    when_ms(fired_at),
                    e.ended_at.map_or("firing".into(), when_ms),
                    human_duration_ms((e.ended_at.unwrap_or(r.to_ms) - fired_at) / 60_000 * 60_000),
                    charts::short_number(e.peak),
                    e.flaps,
                    esc(&e.summary)
                )
            })
            .collect();
        let _ = write!(
            h,
            "<p>{} alert episode(s), {} still firing at the end:</p>",
            fired.len(),
            r.alerts.firing_at_end.len()
        );
        table(
            h,
            &[
                "alert",
                "severity",
                "server",
                "fired",
                "ended",
                "duration",
                "peak value",
                "flaps",
                "summary",
            ],
            &rows,
            "episodes",
        );
    }
    h.push_str("</section>\n");
}

fn bottlenecks(h: &mut String, r: &Report) {
    let a = &r.analysis;
    let _ = write!(
        h,
        "<section id=\"bottlenecks\"><h2>Where the time goes: top bottlenecks</h2>"
    );
    let items: Vec<(String, f64)> = a
        .bottlenecks
        .iter()
        .map(|b| (format!("{} {}", b.server, b.tool), b.share))
        .collect();
    if let Some(svg) = charts::bars("share of all call time", &items, WIDE.0) {
        h.push_str(&svg);
    }
    let rows: Vec<String> = a
        .bottlenecks
        .iter()
        .map(|b| {
            format!(
                "<tr class=\"bottleneck\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                b.rank,
                esc(&b.server),
                esc(&b.tool),
                b.share * 100.0,
                human_value(b.p95_ms, "ms"),
                b.calls,
                esc(&b.evidence)
            )
        })
        .collect();
    table(
        h,
        &["#", "server", "tool", "share", "p95", "calls", "evidence"],
        &rows,
        "bottlenecks",
    );
    let knees: Vec<&crate::analyze::bottleneck::Knee> =
        a.knees.iter().filter(|k| k.knee_rate.is_some()).collect();
    for k in knees {
        let _ = write!(
            h,
            "<p>Saturation knee on <b>{}</b>: p95 doubles at {:.2} calls/s (low-load p95 {}; {:.1}x at {:.2} calls/s).</p>",
            esc(&k.server),
            k.knee_rate.unwrap_or(f64::NAN),
            human_value(k.low_load_p95_ms, "ms"),
            k.p95_ratio_at_max,
            k.max_rate
        );
    }
    h.push_str("</section>\n");
}

fn incidents(h: &mut String, r: &Report) {
    let _ = write!(h, "<section id=\"incidents\"><h2>Incidents</h2>");
    if r.analysis.incidents.is_empty() {
        h.push_str("<p class=\"muted\">None found.</p>");
    } else {
        let rows: Vec<String> = r
            .analysis
            .incidents
            .iter()
            .map(|i| {
                format!(
                    "<tr class=\"incident\" data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    i.kind.as_str(),
                    pill(super::Level::of(i.severity)),
                    i.kind.as_str(),
                    esc(&i.server),
                    when(&i.start),
                    i.end.as_deref().map_or("ongoing".into(), when),
                    esc(&i.summary)
                )
            })
            .collect();
        table(
            h,
            &["severity", "kind", "server", "start", "end", "what"],
            &rows,
            "incidents",
        );
    }
    h.push_str("</section>\n");
}

/// A server's bucketed series by the analyzer's name for it.
fn bucket_series(s: &ServerData, name: &str) -> Option<Vec<(i64, f64)>> {
    let b = &s.buckets;
    let values = b.signals().into_iter().find(|(n, _)| *n == name)?.1;
    Some(
        values
            .iter()
            .copied()
            .enumerate()
            .map(|(k, v)| (b.time(k), v))
            .collect(),
    )
}

fn unit_of(series: &str) -> &'static str {
    match series {
        "call rate" => "calls/s",
        "p95 latency" => "seconds",
        "server error ratio" => "share of calls",
        "up" => "share of scrapes up",
        s if s.contains("bytes") || s.contains("memory") => "bytes",
        s if s.contains("cpu") => "share of a core",
        s if s.contains("sessions") => "sessions",
        s if s.contains("in_flight") => "requests",
        _ => "",
    }
}

fn anomalies(h: &mut String, r: &Report) {
    let a = &r.analysis;
    let _ = write!(
        h,
        "<section id=\"anomalies\"><h2>Anomalies</h2><div class=\"charts\">"
    );
    let mut drawn: Vec<(String, String)> = Vec::new();
    if let Some(fleet) = &r.fleet {
        for x in &a.anomalies {
            let key = (x.server.clone(), x.series.clone());
            if drawn.contains(&key) || drawn.len() >= MAX_CHARTS {
                continue;
            }
            let Some(s) = fleet.servers.iter().find(|s| s.server == x.server) else {
                continue;
            };
            let Some(points) = bucket_series(s, &x.series) else {
                continue;
            };
            let overlay = Overlay {
                anomalies: a
                    .anomalies
                    .iter()
                    .filter(|y| y.server == x.server && y.series == x.series)
                    .map(|y| (y.start_ms, y.end_ms.max(y.start_ms + BUCKET_MS)))
                    .collect(),
                ..Overlay::default()
            };
            let title = format!("{} {} (5-minute buckets)", x.server, x.series);
            if let Some(svg) = charts::series(&title, unit_of(&x.series), &points, &overlay, HALF) {
                h.push_str(&svg);
                drawn.push(key);
            }
        }
    }
    h.push_str("</div>");
    let rows: Vec<String> = a
        .anomalies
        .iter()
        .map(|x| {
            format!(
                "<tr class=\"anomaly\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:+.1}</td><td class=\"num\">{}</td></tr>\n",
                esc(&x.server),
                esc(&x.series),
                when(&x.start),
                x.peak_z,
                esc(&human_value(x.value, unit_of(&x.series)))
            )
        })
        .collect();
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">None found.</p>");
    } else {
        table(
            h,
            &["server", "series", "start", "robust z", "value"],
            &rows,
            "anomalies",
        );
    }
    h.push_str("</section>\n");
}

fn forecasts(h: &mut String, r: &Report) {
    let a = &r.analysis;
    let _ = write!(
        h,
        "<section id=\"forecasts\"><h2>Forecasts: when resources run out</h2><div class=\"charts\">"
    );
    let mut soon: Vec<&crate::analyze::analysis::Forecast> = a
        .forecasts
        .iter()
        .filter(|f| f.seconds.is_some() && f.resource != "error budget")
        .collect();
    soon.sort_by(|x, y| {
        x.seconds
            .unwrap_or(f64::MAX)
            .total_cmp(&y.seconds.unwrap_or(f64::MAX))
    });
    if let Some(fleet) = &r.fleet {
        for f in soon.iter().take(MAX_CHARTS) {
            let Some(s) = fleet.servers.iter().find(|s| s.server == f.server) else {
                continue;
            };
            let Some(g) = s.gauge(&f.metric) else {
                continue;
            };
            let from = g.ts.partition_point(|t| *t < f.fitted_from_ms);
            let (ts, vs) = (&g.ts[from..], &g.vs[from..]);
            let last = *ts.last().unwrap_or(&r.to_ms);
            let until =
                last + ((f.seconds.unwrap_or(0.0) * 1000.0) as i64).max(3_600_000) * 11 / 10;
            let at: Vec<i64> = (1..=60).map(|i| last + (until - last) * i / 60).collect();
            let path = forecast_path(ts, vs, Some(DAY_MS), &at);
            let history = bucket_series(s, &f.metric).unwrap_or_default();
            let overlay = Overlay {
                forecast: path
                    .map(|p| {
                        p.points
                            .iter()
                            .map(|q| (q.t_ms, q.value, q.lower, q.upper))
                            .collect()
                    })
                    .unwrap_or_default(),
                limit: Some((
                    f.limit,
                    if f.limit == 0.0 {
                        "empty".into()
                    } else {
                        "limit".into()
                    },
                )),
                marker: f.exhausts_at.as_ref().map(|t| {
                    (
                        last + (f.seconds.unwrap_or(0.0) * 1000.0) as i64,
                        format!("runs out {}", when(t)),
                    )
                }),
                ..Overlay::default()
            };
            let title = format!("{} {} ({})", f.server, f.metric, f.method);
            if let Some(svg) = charts::series(&title, &f.unit, &history, &overlay, HALF) {
                h.push_str(&svg);
            }
        }
    }
    h.push_str("</div>");
    // Soonest first: what runs out within the horizon, then the rest.
    let mut listed: Vec<&crate::analyze::analysis::Forecast> = a.forecasts.iter().collect();
    listed.sort_by(|x, y| {
        x.seconds
            .unwrap_or(f64::INFINITY)
            .total_cmp(&y.seconds.unwrap_or(f64::INFINITY))
    });
    let rows: Vec<String> = listed
        .iter()
        .map(|f| {
            format!(
                "<tr class=\"forecast\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{} .. {}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&f.server),
                esc(&f.resource),
                esc(&human_value(f.current, &f.unit)),
                f.exhausts_at
                    .as_deref()
                    .map_or("not within 30 days".into(), when),
                human_seconds(f.lower_s),
                human_seconds(f.upper_s),
                f.act_by
                    .as_deref()
                    .filter(|_| f.confident())
                    .map_or("-".into(), when),
                esc(&f.method)
            )
        })
        .collect();
    table(
        h,
        &[
            "server",
            "resource",
            "now",
            "runs out",
            "80% range",
            "act by",
            "method",
        ],
        &rows,
        "forecasts",
    );
    h.push_str("</section>\n");
}

fn maintenance(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"maintenance\"><h2>Maintenance schedule</h2>"
    );
    if r.analysis.maintenance.is_empty() {
        h.push_str("<p class=\"muted\">Nothing due within 7 days.</p>");
    } else {
        h.push_str("<table><tr><th>by</th><th>server</th><th>resource</th><th>what</th><th>rule</th><th>next slot</th></tr>\n");
        for m in &r.analysis.maintenance {
            let _ = writeln!(
                h,
                "<tr class=\"maintenance\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(&m.by),
                esc(&m.server),
                esc(&m.resource),
                esc(&m.what),
                esc(m.rule.as_deref().unwrap_or("-")),
                match (&m.next_slot, m.slot_in_time) {
                    (Some(s), Some(true)) =>
                        format!("{} ({})", when(s), esc(m.window.as_deref().unwrap_or(""))),
                    (Some(s), _) => format!("{}: after the deadline, act now", when(s)),
                    _ => "no window: act now".into(),
                }
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn remediation(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"remediation\"><h2>Remediation audit (dry run of the rules' actions)</h2>"
    );
    if r.alerts.actions.is_empty() {
        h.push_str("<p class=\"muted\">No action would have run.</p>");
    } else {
        h.push_str("<table><tr><th>time</th><th>policy</th><th>event</th><th>trigger</th><th>action</th></tr>\n");
        for x in &r.alerts.actions {
            let _ = writeln!(
                h,
                "<tr class=\"action\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                when_ms(x.time),
                esc(&x.policy),
                x.kind.name(),
                esc(&x.trigger),
                esc(&x.action)
            );
        }
        h.push_str("</table>");
    }
    if !r.alerts.carried_out.is_empty() {
        h.push_str("<h3>Carried out by watch</h3><table><tr><th>time</th><th>policy</th><th>event</th><th>trigger</th><th>action</th><th>outcome</th><th>approved by</th></tr>\n");
        for x in &r.alerts.carried_out {
            let _ = writeln!(
                h,
                "<tr class=\"action\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                when_ms(x.event.time),
                esc(&x.event.policy),
                x.event.kind.name(),
                esc(&x.event.trigger),
                esc(&x.event.action),
                esc(x.outcome.as_deref().unwrap_or("")),
                esc(x.event.approved_by.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn recommendations(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"recommendations\"><h2>What to do first</h2>"
    );
    if r.analysis.recommendations.is_empty() {
        h.push_str("<p class=\"muted\">Nothing to do.</p>");
    } else {
        h.push_str("<ol>");
        for (k, rec) in r.analysis.recommendations.iter().enumerate() {
            if k == FOLD {
                let _ = write!(
                    h,
                    "</ol><details><summary>{} more</summary><ol start=\"{}\">",
                    r.analysis.recommendations.len() - FOLD,
                    FOLD + 1
                );
            }
            let _ = write!(
                h,
                "<li class=\"recommendation\">{} <b>{}</b>: {}<details><summary>evidence</summary><ul>",
                match rec.severity {
                    crate::analyze::incidents::Severity::Info =>
                        "<span class=\"pill info\">info</span>".to_string(),
                    s => pill(super::Level::of(s)),
                },
                esc(&rec.action),
                esc(&rec.effect)
            );
            for e in &rec.evidence {
                let _ = write!(h, "<li>{}</li>", esc(e));
            }
            h.push_str("</ul></details></li>");
        }
        h.push_str("</ol>");
        if r.analysis.recommendations.len() > FOLD {
            h.push_str("</details>");
        }
    }
    h.push_str("</section>\n");
}

/// What the analysis left out, when it left anything out.
fn notes(h: &mut String, r: &Report) {
    if r.analysis.notes.is_empty() {
        return;
    }
    let _ = write!(h, "<section id=\"notes\"><h2>Notes</h2><ul>");
    for n in &r.analysis.notes {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    h.push_str("</ul></section>\n");
}
