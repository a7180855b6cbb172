//! `mcpops analyze`: bottlenecks, incidents, forecasts, maintenance and
//! recommendations over the store (maintenance slots from `--rules`), as
//! plain-text tables, one section per finding kind, or JSON.

use super::error::{CliError, io_failure};
use super::shared::{Bounds, load_checked_rules, period, time_arg};
use super::{AnalyzeArgs, Context, TableOrJson};
use mcpops::analyze::analysis::{Analysis, AnalyzeOptions, opt_time};
use std::io::{self, Write};

pub(super) fn run(ctx: &Context, args: AnalyzeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let from_ms = args.from.map(|t| time_arg("--from", &t)).transpose()?;
    let to_ms = args.to.map(|t| time_arg("--to", &t)).transpose()?;
    let json = args.format == TableOrJson::Json;
    let store = ctx.store()?;
    let rules = load_checked_rules(&args.rules)?;
    let p = period(
        store,
        from_ms,
        to_ms,
        None,
        Bounds {
            step: None,
            analysed: true,
        },
    )?;
    let opts = AnalyzeOptions {
        from_ms: Some(p.from_ms),
        to_ms: Some(p.to_ms),
        server_label: args.server_label,
    };
    let analysis = mcpops::analyze::analysis::analyze(&store.snapshot()?, &rules, &opts)?;
    if json {
        write_json(&analysis, out)
    } else {
        write_table(&analysis, out)
    }
    .map_err(io_failure)
}

/// Writes the analysis as JSON.
fn write_json(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, a)?;
    writeln!(out)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Writes the analysis as plain-text tables, one section per finding kind.
fn write_table(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "analysis of {} servers (by `{}`), {} calls, {} .. {}",
        a.servers, a.server_label, a.calls, a.from, a.to
    )?;
    writeln!(out, "\nincidents")?;
    for i in &a.incidents {
        writeln!(
            out,
            "  {:<8} {:<18} {:<7} {:<20} {}",
            format!("{:?}", i.severity).to_lowercase(),
            i.kind.as_str(),
            i.server,
            i.start,
            i.summary
        )?;
    }
    writeln!(out, "\nbottlenecks (share of all call time)")?;
    for b in &a.bottlenecks {
        writeln!(
            out,
            "  {:>2}. {:<7} {:<16} {:>6}  {}",
            b.rank,
            b.server,
            b.tool,
            pct(b.share),
            b.evidence
        )?;
    }
    writeln!(out, "\nRED per server")?;
    writeln!(
        out,
        "  {:<7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "server", "calls/s", "errors", "p50 ms", "p95 ms", "p99 ms", "share"
    )?;
    for r in &a.red_servers {
        writeln!(
            out,
            "  {:<7} {:>9.3} {:>8} {:>8.0} {:>8.0} {:>8.0} {:>7}",
            r.server,
            r.rate,
            pct(r.error_ratio),
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            pct(r.share)
        )?;
    }
    writeln!(out, "\nsaturation knees (load at which p95 doubles)")?;
    for k in &a.knees {
        match k.knee_rate {
            Some(r) => writeln!(
                out,
                "  {:<7} knee at {r:.2} calls/s ({} in flight); low-load p95 {:.0} ms; {:.1}x at {:.2} calls/s",
                k.server,
                k.knee_in_flight.map_or("?".into(), |v| format!("{v:.1}")),
                k.low_load_p95_ms,
                k.p95_ratio_at_max,
                k.max_rate
            )?,
            None => writeln!(
                out,
                "  {:<7} no knee up to {:.2} calls/s (p95 {:.1}x its low-load {:.0} ms)",
                k.server, k.max_rate, k.p95_ratio_at_max, k.low_load_p95_ms
            )?,
        }
    }
    writeln!(out, "\nwhat moves with p95 latency (top per server)")?;
    let mut seen: Vec<&str> = Vec::new();
    for c in &a.correlations {
        if seen.contains(&c.server.as_str()) {
            continue;
        }
        seen.push(&c.server);
        writeln!(
            out,
            "  {:<7} {:<32} rho {:+.2} lag {}m",
            c.server, c.resource, c.rho, c.lag_minutes
        )?;
    }
    for q in a.queueing.iter().filter(|q| !q.spans.is_empty()) {
        writeln!(
            out,
            "  {:<7} queueing (Little's law): {} spans, first at {}",
            q.server,
            q.spans.len(),
            q.spans[0].start
        )?;
    }
    writeln!(out, "\nforecasts")?;
    for f in &a.forecasts {
        writeln!(
            out,
            "  {:<7} {:<13} runs out in {} (80%: {} .. {}) by {}",
            f.server,
            f.resource,
            opt_time(f.seconds),
            opt_time(f.lower_s),
            opt_time(f.upper_s),
            f.method
        )?;
    }
    writeln!(out, "\nmaintenance")?;
    for m in &a.maintenance {
        writeln!(
            out,
            "  {:<7} {:<13} by {}: {}{}",
            m.server,
            m.resource,
            m.by,
            m.what,
            match (&m.rule, &m.next_slot) {
                (Some(r), Some(s)) => format!(" (rule {r}, next slot {s})"),
                _ => String::new(),
            }
        )?;
    }
    writeln!(out, "\nanomalies (strongest first)")?;
    for x in a.anomalies.iter().take(15) {
        writeln!(
            out,
            "  {:<7} {:<32} {} z {:+.1} value {:.4}",
            x.server, x.series, x.start, x.peak_z, x.value
        )?;
    }
    writeln!(out, "\nrecommendations")?;
    for r in &a.recommendations {
        writeln!(out, "  {}. {} -> {}", r.rank, r.action, r.effect)?;
        for e in &r.evidence {
            writeln!(out, "       {e}")?;
        }
    }
    if !a.notes.is_empty() {
        writeln!(out, "\nnotes")?;
        for n in &a.notes {
            writeln!(out, "  {n}")?;
        }
    }
    Ok(())
}
