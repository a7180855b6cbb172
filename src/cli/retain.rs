//! `mcpops retain --before T`: one line saying what was dropped, or
//! (`--format json`) the same as an object.

use super::error::{CliError, io_failure};
use super::shared::{time_arg, write_json};
use super::{Context, RetainArgs, TextOrJson};
use mcpops::time::format_ms;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: RetainArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let before_ms = time_arg("--before", &args.before)?;
    let s = ctx.store()?.retain(before_ms)?;
    if args.format == TextOrJson::Json {
        let json = serde_json::json!({
            "store": ctx.store()?.location(),
            "before": format_ms(before_ms),
            "segments_removed": s.segments_removed,
            "generation": s.generation,
        });
        return write_json(out, &json).map_err(io_failure);
    }
    writeln!(
        out,
        "dropped {} segment(s) of days ending by {}",
        s.segments_removed,
        format_ms(before_ms)
    )
    .map_err(io_failure)
}
