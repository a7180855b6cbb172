//! report.md: what a person reads in a mail or a ticket. The verdict comes
//! first, then incidents, bottlenecks, forecasts, maintenance, remediation
//! actions and recommendations, each a short table.

use super::{Report, short_time};
use crate::time::format_ms;
use std::fmt::Write;

/// Table cells may not hold a pipe or a line break.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let a = &r.analysis;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# mcpops report: {}\n",
        r.verdict.level.name().to_uppercase()
    );
    for line in &r.summary {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(
        md,
        "\nPeriod {} to {} · {} servers · store `{}` · generated {}\n",
        r.from, r.to, a.servers, r.store, r.generated_at
    );

    let _ = writeln!(md, "## Incidents\n");
    if a.incidents.is_empty() {
        let _ = writeln!(md, "None.\n");
    } else {
        let _ = writeln!(
            md,
            "| severity | kind | server | start | end | what |\n|---|---|---|---|---|---|"
        );
        for i in &a.incidents {
            let _ = writeln!(
                md,
                "| {:?} | {} | {} | {} | {} | {} |",
                i.severity,
                i.kind.as_str(),
                i.server,
                short_time(&i.start),
                i.end.as_deref().map_or("ongoing".into(), short_time),
                cell(&i.summary)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Alerts\n");
    if r.alerts.episodes.is_empty() {
        let _ = writeln!(
            md,
            "No alert fired{}.\n",
            if r.alerts.rules.is_empty() {
                " (no rules given)"
            } else {
                ""
            }
        );
    } else {
        let _ = writeln!(
            md,
            "| alert | severity | server | fired | ended | peak |\n|---|---|---|---|---|---|"
        );
        for e in r.alerts.episodes.iter().filter(|e| e.fired_at.is_some()) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.4} |",
                e.alert,
                e.severity,
                super::server_of(e),
                e.fired_at
                    .map(format_ms)
                    .as_deref()
                    .map_or(String::new(), short_time),
                e.ended_at
                    .map(format_ms)
                    .as_deref()
                    .map_or("firing".into(), short_time),
                e.peak
            );
        }
        md.push('\n');
    }

    let _ = writeln!(
        md,
        "## Bottlenecks\n\n| # | server | tool | share of call time | p95 ms | calls |\n|---|---|---|---|---|---|"
    );
    for b in &a.bottlenecks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}% | {:.0} | {} |",
            b.rank,
            b.server,
            cell(&b.tool),
            b.share * 100.0,
            b.p95_ms,
            b.calls
        );
    }

    let _ = writeln!(
        md,
        "\n## Forecasts\n\n| server | resource | runs out in | 80% range | method |\n|---|---|---|---|---|"
    );
    for f in a.forecasts.iter().filter(|f| f.seconds.is_some()) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} .. {} | {} |",
            f.server,
            f.resource,
            crate::analyze::analysis::opt_time(f.seconds),
            crate::analyze::analysis::opt_time(f.lower_s),
            crate::analyze::analysis::opt_time(f.upper_s),
            f.method
        );
    }

    let _ = writeln!(md, "\n## Maintenance\n");
    if a.maintenance.is_empty() {
        let _ = writeln!(md, "Nothing due within 7 days.");
    } else {
        let _ = writeln!(md, "| by | server | what | next slot |\n|---|---|---|---|");
        for m in &a.maintenance {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                short_time(&m.by),
                m.server,
                cell(&m.what),
                match (&m.rule, &m.next_slot) {
                    (Some(rule), Some(slot)) => format!(
                        "{} ({rule}{})",
                        short_time(slot),
                        if m.slot_in_time == Some(false) {
                            ", too late: act now"
                        } else {
                            ""
                        }
                    ),
                    _ => "no maintenance rule covers it".into(),
                }
            );
        }
    }

    let _ = writeln!(md, "\n## Remediation (dry run)\n");
    if r.alerts.actions.is_empty() {
        let _ = writeln!(md, "No action would have run.");
    } else {
        let _ = writeln!(md, "| time | policy | event | action |\n|---|---|---|---|");
        for x in &r.alerts.actions {
            let _ = writeln!(
                md,
                "| {} | {} | {} | `{}` |",
                short_time(&format_ms(x.time)),
                x.policy,
                x.kind.name(),
                cell(&x.action)
            );
        }
    }

    let _ = writeln!(md, "\n## Recommendations\n");
    for rec in &a.recommendations {
        let _ = writeln!(md, "{}. **{}**: {}", rec.rank, rec.action, rec.effect);
        for e in &rec.evidence {
            let _ = writeln!(md, "   - {e}");
        }
    }
    if !a.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in &a.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}
