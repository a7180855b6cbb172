//! report.html: the operational dashboard, one self-contained page (inline
//! CSS and SVG, no script, nothing fetched): fleet health at a glance, SLOs
//! and error budget, the alert timeline, bottlenecks, anomalies drawn on
//! their series, forecasts with the projected line and the date of
//! exhaustion, the maintenance schedule and the remediation audit. Every
//! section has an `id` so tools (and the tests) can find it.

use super::charts::{self, Overlay, Span};
use super::{Level, Report, SIGNALS, server_of, short_time};
use crate::analyze::fleet::{BUCKET_MS, ServerData};
use crate::analyze::forecast::forecast_path;
use crate::time::{DAY_MS, format_duration_ms, format_ms};
use std::fmt::Write;

const WIDE: (u32, u32) = (1100, 300);
const HALF: (u32, u32) = (560, 280);
/// Charts of each kind drawn (the tables list the rest).
const MAX_CHARTS: usize = 4;

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
header.ok{background:#15803d}header.warning{background:#b45309}header.critical{background:#b91c1c}
header h1{margin:0 0 6px;font-size:22px}header p{margin:2px 0;font-size:14px;opacity:.95}
main{padding:12px 28px 40px;max-width:1180px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:14px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:17px;margin:2px 0 10px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
td:first-child,th:first-child{white-space:nowrap}
th{background:#f9fafb;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{background:#dcfce7}td.warning{background:#fef3c7}td.critical{background:#fee2e2;font-weight:600}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.pill.ok{background:#15803d}.pill.warning{background:#b45309}.pill.critical{background:#b91c1c}
.bar{background:#e5e7eb;border-radius:3px;height:10px;width:120px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:10px;border-radius:3px}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.muted{color:#6b7280;font-size:13px}
code{font-size:12px}
summary{cursor:pointer;color:#374151;margin:6px 0}
"#;

pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let level = r.verdict.level.name();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mcpops report: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.verdict.headline)
    );
    let _ = write!(
        h,
        "<header class=\"{level}\" id=\"verdict\"><h1>{}</h1>",
        esc(&r.verdict.headline)
    );
    for line in r.summary.iter().skip(1) {
        let _ = write!(h, "<p>{}</p>", esc(line));
    }
    let _ = writeln!(
        h,
        "<p>{} to {} UTC · {} servers · {} calls</p></header>\n<main>",
        short_time(&r.from),
        short_time(&r.to),
        r.analysis.servers,
        r.analysis.calls
    );
    health(&mut h, r);
    slo(&mut h, r);
    timeline(&mut h, r);
    bottlenecks(&mut h, r);
    incidents(&mut h, r);
    anomalies(&mut h, r);
    forecasts(&mut h, r);
    maintenance(&mut h, r);
    remediation(&mut h, r);
    recommendations(&mut h, r);
    notes(&mut h, r);
    let _ = writeln!(
        h,
        "<p class=\"muted\">Generated {} by mcpops from the store <code>{}</code>; schema {}.</p>\n</main></body></html>",
        esc(&r.generated_at),
        esc(&r.store),
        super::SCHEMA
    );
    h
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
    h.push_str("</table></section>\n");
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
                .map_or("not within 30 days".into(), short_time)
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
            critical: e.severity == "critical",
            open: e.ended_at.is_none(),
        })
        .collect();
    match charts::timeline(&spans, r.from_ms.max(r.analysis.from_ms), r.to_ms, WIDE.0) {
        Some(svg) => h.push_str(&svg),
        None => {
            let _ = write!(
                h,
                "<p class=\"muted\">No alert fired{}.</p>",
                if r.alerts.rules.is_empty() {
                    " (no rule files given)"
                } else {
                    ""
                }
            );
        }
    }
    if !fired.is_empty() {
        // The chart is the overview; the episodes fold away under it.
        let _ = write!(
            h,
            "<details><summary>{} alert episode(s), {} still firing</summary>",
            fired.len(),
            r.alerts.firing_at_end.len()
        );
        h.push_str("<table><tr><th>alert</th><th>severity</th><th>server</th><th>fired</th><th>ended</th><th>duration</th><th>peak</th><th>flaps</th><th>summary</th></tr>\n");
        for e in &fired {
            let fired_at = e.fired_at.unwrap_or(e.active_at);
            let _ = writeln!(
                h,
                "<tr class=\"episode\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&e.alert),
                esc(e.severity),
                esc(&server_of(e)),
                short_time(&format_ms(fired_at)),
                e.ended_at
                    .map_or("firing".into(), |t| short_time(&format_ms(t))),
                format_duration_ms((e.ended_at.unwrap_or(r.to_ms) - fired_at) / 60_000 * 60_000),
                e.peak,
                e.flaps,
                esc(&e.summary)
            );
        }
        h.push_str("</table></details>");
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
    h.push_str("<table><tr><th>#</th><th>server</th><th>tool</th><th>share</th><th>p95 ms</th><th>calls</th><th>evidence</th></tr>\n");
    for b in &a.bottlenecks {
        let _ = writeln!(
            h,
            "<tr class=\"bottleneck\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.0}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            b.rank,
            esc(&b.server),
            esc(&b.tool),
            b.share * 100.0,
            b.p95_ms,
            b.calls,
            esc(&b.evidence)
        );
    }
    h.push_str("</table>");
    let knees: Vec<&crate::analyze::bottleneck::Knee> =
        a.knees.iter().filter(|k| k.knee_rate.is_some()).collect();
    for k in knees {
        let _ = write!(
            h,
            "<p>Saturation knee on <b>{}</b>: p95 doubles at {:.2} calls/s (low-load p95 {:.0} ms; {:.1}x at {:.2} calls/s).</p>",
            esc(&k.server),
            k.knee_rate.unwrap_or(f64::NAN),
            k.low_load_p95_ms,
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
        h.push_str("<table><tr><th>severity</th><th>kind</th><th>server</th><th>start</th><th>end</th><th>what</th></tr>\n");
        for i in &r.analysis.incidents {
            let _ = writeln!(
                h,
                "<tr class=\"incident\" data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i.kind.as_str(),
                pill(super::Level::of(i.severity)),
                i.kind.as_str(),
                esc(&i.server),
                short_time(&i.start),
                i.end.as_deref().map_or("ongoing".into(), short_time),
                esc(&i.summary)
            );
        }
        h.push_str("</table>");
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
    h.push_str("</div><table><tr><th>server</th><th>series</th><th>start</th><th>robust z</th><th>value</th></tr>\n");
    for x in &a.anomalies {
        let _ = writeln!(
            h,
            "<tr class=\"anomaly\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:+.1}</td><td class=\"num\">{}</td></tr>",
            esc(&x.server),
            esc(&x.series),
            short_time(&x.start),
            x.peak_z,
            charts::short_number(x.value)
        );
    }
    h.push_str("</table></section>\n");
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
                        format!("runs out {}", short_time(t)),
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
    h.push_str("</div><table><tr><th>server</th><th>resource</th><th>now</th><th>runs out</th><th>80% range</th><th>act by</th><th>method</th></tr>\n");
    for f in &a.forecasts {
        let _ = writeln!(
            h,
            "<tr class=\"forecast\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{} .. {}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.server),
            esc(&f.resource),
            charts::short_number(f.current),
            f.exhausts_at
                .as_deref()
                .map_or("not within 30 days".into(), short_time),
            crate::analyze::analysis::opt_time(f.lower_s),
            crate::analyze::analysis::opt_time(f.upper_s),
            f.act_by
                .as_deref()
                .filter(|_| f.confident())
                .map_or("-".into(), short_time),
            esc(&f.method)
        );
    }
    h.push_str("</table></section>\n");
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
                short_time(&m.by),
                esc(&m.server),
                esc(&m.resource),
                esc(&m.what),
                esc(m.rule.as_deref().unwrap_or("-")),
                match (&m.next_slot, m.slot_in_time) {
                    (Some(s), Some(true)) => format!(
                        "{} ({})",
                        short_time(s),
                        esc(m.window.as_deref().unwrap_or(""))
                    ),
                    (Some(s), _) => format!("{}: after the deadline, act now", short_time(s)),
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
                short_time(&format_ms(x.time)),
                esc(&x.policy),
                x.kind.name(),
                esc(&x.trigger),
                esc(&x.action)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn recommendations(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"recommendations\"><h2>Recommendations</h2><ol>"
    );
    for rec in &r.analysis.recommendations {
        let _ = write!(
            h,
            "<li class=\"recommendation\"><b>{}</b>: {}<ul>",
            esc(&rec.action),
            esc(&rec.effect)
        );
        for e in &rec.evidence {
            let _ = write!(h, "<li>{}</li>", esc(e));
        }
        h.push_str("</ul></li>");
    }
    h.push_str("</ol></section>\n");
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
