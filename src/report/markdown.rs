//! report.md: what a person reads in a mail or a ticket. The verdict comes
//! first with its reasons and what to do, then incidents, alerts,
//! bottlenecks, forecasts, maintenance and remediation actions, each a
//! short table.
//!
//! Everything that comes from the data (server names, tool names, which
//! clients choose, alert summaries, paths) goes through [`text`]: it shows
//! as the characters it is, never as Markdown or HTML, and never breaks a
//! table.

use super::{Report, human_seconds, human_value, when, when_ms};
use std::fmt::Write;

/// Text from the data as Markdown that shows it literally: HTML's special
/// characters as entities (a tool named `<img src=x onerror=...>` stays
/// text), Markdown's inline punctuation backslash-escaped (`|` would end a
/// table cell, `*` and backticks would start emphasis or code, `[` and `]`
/// a link), line breaks as spaces. Parentheses, `!` and `#` need nothing:
/// without `[`/`]` they make no link or image, and data never starts a line. An underscore between two letters or digits is left alone:
/// CommonMark never reads it as emphasis (`fetch_url`).
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '_' => {
                let word = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                if !(word(i.checked_sub(1)) && word(Some(i + 1))) {
                    out.push('\\');
                }
                out.push('_');
            }
            '\\' | '`' | '*' | '|' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let a = &r.analysis;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# mcpops report: {}\n",
        if r.verdict.stale {
            "STALE".to_string()
        } else {
            r.verdict.level.name().to_uppercase()
        }
    );
    for line in &r.summary {
        let _ = writeln!(md, "- {}", text(line));
    }
    let _ = writeln!(
        md,
        "\nPeriod {} to {} · {} servers · store {} · generated {}\n",
        when(&r.from),
        when(&r.to),
        a.servers,
        text(&r.store),
        when(&r.generated_at)
    );

    if !r.verdict.reasons.is_empty() {
        let _ = writeln!(md, "## Why {}\n", r.verdict.level.name());
        for reason in &r.verdict.reasons {
            let _ = writeln!(md, "- {}", text(reason));
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Recommendations\n");
    if a.recommendations.is_empty() {
        let _ = writeln!(md, "Nothing to do.\n");
    }
    for rec in &a.recommendations {
        let _ = writeln!(
            md,
            "{}. **{}**: {}",
            rec.rank,
            text(&rec.action),
            text(&rec.effect)
        );
        for e in &rec.evidence {
            let _ = writeln!(md, "   - {}", text(e));
        }
    }
    if !a.recommendations.is_empty() {
        md.push('\n');
    }

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
                text(&i.server),
                when(&i.start),
                i.end.as_deref().map_or("ongoing".into(), when),
                text(&i.summary)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Alerts\n");
    if r.alerts.alert_rules == 0 {
        let _ = writeln!(
            md,
            "No rules loaded: no alert was checked{}.\n",
            if r.alerts.rules.is_empty() {
                " (give --rules FILE)".to_string()
            } else {
                format!(" ({} hold no alert rule)", text(&r.alerts.rules.join(", ")))
            }
        );
    } else if r.alerts.episodes.iter().all(|e| e.fired_at.is_none()) {
        let _ = writeln!(
            md,
            "No alert fired ({} rules from {}).\n",
            r.alerts.alert_rules,
            text(&r.alerts.rules.join(", "))
        );
    } else {
        let _ = writeln!(
            md,
            "| alert | severity | server | fired | ended | peak |\n|---|---|---|---|---|---|"
        );
        for e in r.alerts.episodes.iter().filter(|e| e.fired_at.is_some()) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                text(&e.alert),
                text(e.severity),
                text(&super::server_of(e)),
                e.fired_at.map(when_ms).unwrap_or_default(),
                e.ended_at.map_or("firing".into(), when_ms),
                super::charts::short_number(e.peak)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(
        md,
        "## Bottlenecks\n\n| # | server | tool | share of call time | p95 | calls |\n|---|---|---|---|---|---|"
    );
    for b in &a.bottlenecks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}% | {} | {} |",
            b.rank,
            text(&b.server),
            text(&b.tool),
            b.share * 100.0,
            human_value(b.p95_ms, "ms"),
            b.calls
        );
    }

    let _ = writeln!(
        md,
        "\n## Forecasts\n\n| server | resource | now | runs out in | 80% range | method |\n|---|---|---|---|---|---|"
    );
    for f in a.forecasts.iter().filter(|f| f.seconds.is_some()) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} .. {} | {} |",
            text(&f.server),
            text(&f.resource),
            human_value(f.current, &f.unit),
            human_seconds(f.seconds),
            human_seconds(f.lower_s),
            human_seconds(f.upper_s),
            text(&f.method)
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
                when(&m.by),
                text(&m.server),
                text(&m.what),
                match (&m.rule, &m.next_slot) {
                    (Some(rule), Some(slot)) => format!(
                        "{} ({}{})",
                        when(slot),
                        text(rule),
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
                "| {} | {} | {} | {} |",
                when_ms(x.time),
                text(&x.policy),
                x.kind.name(),
                text(&x.action)
            );
        }
    }

    if !r.alerts.carried_out.is_empty() {
        let _ = writeln!(md, "\n## Actions carried out by watch\n");
        let _ = writeln!(
            md,
            "| time | policy | event | action | outcome | approved by |\n|---|---|---|---|---|---|"
        );
        for x in &r.alerts.carried_out {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                when_ms(x.event.time),
                text(&x.event.policy),
                x.event.kind.name(),
                text(&x.event.action),
                text(x.outcome.as_deref().unwrap_or("")),
                text(x.event.approved_by.as_deref().unwrap_or(""))
            );
        }
    }

    if !a.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in &a.notes {
            let _ = writeln!(md, "- {}", text(n));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipes of a table row that end a cell (not the escaped ones).
    fn cell_bars(line: &str) -> usize {
        let mut n = 0;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => n += 1,
                _ => escaped = false,
            }
        }
        n
    }

    #[test]
    fn markup_in_data_stays_text() {
        let hostile = "<img src=x onerror=alert(1)> | *bold* `code` [a](b) \\ x_ _y\nz";
        let t = text(hostile);
        assert!(!t.contains('<') && !t.contains('>'), "{t}");
        assert_eq!(cell_bars(&format!("| {t} |")), 2, "{t}");
        for raw in ["*bold*", "`code`", "[a](b)", "\n"] {
            assert!(!t.contains(raw), "{raw} in {t}");
        }
        assert!(t.contains("\\*bold\\*"), "{t}");
        assert!(t.contains(" \\\\ "), "{t}");
        // An underscore inside a word cannot emphasise; at a word's edge it is escaped.
        assert_eq!(text("fetch_url"), "fetch_url");
        assert_eq!(text("_y"), "\\_y");
    }
}
