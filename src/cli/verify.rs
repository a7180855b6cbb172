//! `mcpops verify`: each damaged segment and a summary, or JSON; exit 5
//! when any segment is damaged.

use super::error::{CliError, io_failure};
use super::{Context, TableOrJson, VerifyArgs};
use std::io::Write;

pub(super) fn run(ctx: &Context, args: VerifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let report = ctx.store()?.verify()?;
    if args.format == TableOrJson::Json {
        let text = serde_json::to_string_pretty(&report).map_err(CliError::failure)?;
        writeln!(out, "{text}").map_err(io_failure)?;
    } else {
        for d in &report.damaged {
            writeln!(out, "DAMAGED {}: {}", d.path, d.problem).map_err(io_failure)?;
        }
        writeln!(
            out,
            "checked {} segment(s), {} sample(s), {} byte(s): {}",
            report.segments,
            report.rows,
            report.bytes,
            if report.damaged.is_empty() {
                "all intact".to_string()
            } else {
                format!("{} damaged", report.damaged.len())
            }
        )
        .map_err(io_failure)?;
        if report.without_checksums > 0 {
            writeln!(
                out,
                "{} segment(s) predate checksums: they decode, but a flipped byte that still \
                 decodes cannot be seen in them (`mcpops compact` rewrites them with checksums)",
                report.without_checksums
            )
            .map_err(io_failure)?;
        }
    }
    if report.damaged.is_empty() {
        Ok(())
    } else {
        Err(CliError::Damaged(
            format!(
                "{} damaged segment(s); `mcpops repair` moves them to {}/ and makes the rest readable",
                report.damaged.len(),
                mcpops::store::QUARANTINE_DIR
            )
            .into(),
        ))
    }
}
