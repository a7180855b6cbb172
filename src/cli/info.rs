//! `mcpops info`: the store's summary as a table of two columns, or JSON.

use super::error::{CliError, io_failure};
use super::{Context, InfoArgs, TableOrJson};
use mcpops::time::format_ms;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: InfoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let info = ctx.store()?.existing_snapshot()?.info()?;
    if args.format == TableOrJson::Json {
        let text = serde_json::to_string_pretty(&info).map_err(CliError::failure)?;
        writeln!(out, "{text}").map_err(io_failure)?;
        return Ok(());
    }
    let when = |t: Option<i64>| t.map(format_ms).unwrap_or_else(|| "-".into());
    let rows = [
        ("store", info.store.clone()),
        ("generation", info.generation.to_string()),
        ("segments", info.segments.to_string()),
        ("days", info.days.to_string()),
        ("metrics", info.metrics.to_string()),
        ("series", info.series.to_string()),
        ("samples", info.samples.to_string()),
        (
            "duplicates",
            if info.duplicates > 0 {
                format!(
                    "{} (repeated samples: reads use the newest; `mcpops compact` removes them)",
                    info.duplicates
                )
            } else {
                "0".to_string()
            },
        ),
        ("first sample", when(info.first)),
        ("last sample", when(info.last)),
        ("bytes", info.bytes.to_string()),
        ("bytes/sample", format!("{:.3}", info.bytes_per_sample)),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<14} {v}").map_err(io_failure)?;
    }
    Ok(())
}
