//! `mcpops sync FROM TO`: one line saying what was copied, or
//! (`--format json`) the same as an object.

use super::error::{CliError, io_failure};
use super::shared::write_json;
use super::{Context, SyncArgs, TextOrJson};
use mcpops::store::Store;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: SyncArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let endpoint = ctx.s3_endpoint.as_deref();
    let from = Store::resolve(Some(&args.from), endpoint)?;
    let mut to = Store::resolve(Some(&args.to), endpoint)?;
    // `--shard` names the shard of TO that the sync writes.
    if let Some(shard) = &ctx.shard {
        to = to.shard(shard)?;
    }
    let s = to.sync_from(&from)?;
    if args.format == TextOrJson::Json {
        return write_json(out, &serde_json::to_value(&s).map_err(CliError::failure)?)
            .map_err(io_failure);
    }
    writeln!(
        out,
        "synced {} to {}: copied {} segment(s) ({} bytes), kept {}, removed {} (generation {})",
        s.from, s.to, s.copied, s.bytes_copied, s.kept, s.removed, s.generation
    )
    .map_err(io_failure)
}
