//! `mcpops approve ID`: gives the approval a decision of `approve within D
//! by "who"` waits for, by appending it to the store's journal, where the
//! running `watch` reads it at its next step (and a backtest over the same
//! store applies it too). Exits 2 for an id that waits for no approval.

use super::error::{CliError, io_failure};
use super::{ApproveArgs, Context};
use mcpops::remediate::journal::{self, JournalError};
use mcpops::store::StoreError;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: ApproveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let root = ctx.store()?.require_local("approve")?;
    if !root.exists() {
        return Err(StoreError::NoStore {
            path: root.display().to_string(),
            why: "the directory does not exist",
        }
        .into());
    }
    let by = match args.by {
        Some(by) => by,
        None => ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .ok_or_else(|| CliError::usage("--by WHO is needed: $USER is not set"))?,
    };
    if by.trim().is_empty() {
        return Err(CliError::usage("--by: an empty name approves nothing"));
    }
    let approval = journal::approve(root, &args.id, &by).map_err(journal_error)?;
    writeln!(
        out,
        "approved {} by {} at {}",
        args.id,
        approval.by,
        mcpops::time::format_ms(approval.at_ms)
    )
    .map_err(io_failure)
}

/// A journal's error as the command's: the caller's mistake exits 2, a
/// journal that cannot be read or written 1.
pub(super) fn journal_error(e: JournalError) -> CliError {
    if e.is_user_error() {
        CliError::Input(e.into())
    } else {
        CliError::failure(e)
    }
}
