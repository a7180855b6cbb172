//! `mcpops retain --before T`: one line saying what was dropped.

use super::error::{CliError, io_failure};
use super::shared::time_arg;
use super::{Context, RetainArgs};
use mcpops::time::format_ms;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: RetainArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let before_ms = time_arg("--before", &args.before)?;
    let s = ctx.store.retain(before_ms)?;
    writeln!(
        out,
        "dropped {} segment(s) of days ending by {}",
        s.segments_removed,
        format_ms(before_ms)
    )
    .map_err(io_failure)
}
