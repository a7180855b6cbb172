//! `mcpops compact`: one line saying what was merged, or (`--format json`)
//! the same as an object.

use super::error::{CliError, io_failure};
use super::shared::write_json;
use super::{CompactArgs, Context, TextOrJson};
use std::io::Write;

pub(super) fn run(ctx: &Context, args: CompactArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let s = ctx.store()?.compact()?;
    if args.format == TextOrJson::Json {
        let json = serde_json::json!({
            "store": ctx.store()?.location(),
            "days": s.days,
            "segments_merged": s.segments_merged,
            "segments_written": s.commit.segments_added,
            "duplicates_removed": s.duplicates_removed,
            "generation": s.commit.generation,
        });
        return write_json(out, &json).map_err(io_failure);
    }
    writeln!(
        out,
        "compacted {} day(s): merged {} segment(s) into {}, removed {} duplicate sample(s)",
        s.days, s.segments_merged, s.commit.segments_added, s.duplicates_removed
    )
    .map_err(io_failure)
}
