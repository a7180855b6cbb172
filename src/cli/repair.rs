//! `mcpops repair`: one line per thing it set right.

use super::Context;
use super::error::{CliError, io_failure};
use mcpops::store::QUARANTINE_DIR;
use std::io::Write;

pub(super) fn run(ctx: &Context, out: &mut dyn Write) -> Result<(), CliError> {
    let report = ctx.store()?.repair()?;
    if let Some(kept) = &report.damaged_manifest_kept_as {
        writeln!(out, "the unreadable manifest is kept as {kept}").map_err(io_failure)?;
    }
    if report.rebuilt {
        writeln!(
            out,
            "rebuilt the manifest from {} segment file(s)",
            report.segments_kept
        )
        .map_err(io_failure)?;
    }
    for d in &report.quarantined {
        writeln!(out, "moved {} to {QUARANTINE_DIR}/: {}", d.path, d.problem)
            .map_err(io_failure)?;
    }
    for m in &report.missing {
        writeln!(out, "dropped {m} from the manifest: the file is gone").map_err(io_failure)?;
    }
    if report.changed() {
        writeln!(
            out,
            "the store is readable: {} segment(s), generation {}",
            report.segments_kept, report.generation
        )
    } else {
        writeln!(
            out,
            "nothing to repair: {} segment(s) intact",
            report.segments_kept
        )
    }
    .map_err(io_failure)
}
