//! `mcpops compact`: one line saying what was merged.

use super::Context;
use super::error::{CliError, io_failure};
use std::io::Write;

pub(super) fn run(ctx: &Context, out: &mut dyn Write) -> Result<(), CliError> {
    let s = ctx.store.compact()?;
    writeln!(
        out,
        "compacted {} day(s): merged {} segment(s) into {}, removed {} duplicate sample(s)",
        s.days, s.segments_merged, s.commit.segments_added, s.duplicates_removed
    )
    .map_err(io_failure)
}
