//! `mcpops completions SHELL` and `mcpops man`: shell completion scripts and
//! roff man pages generated from the same clap definitions that parse the
//! command line ([`super::command`]), so they cannot fall out of step.

use super::error::{CliError, io_failure};
use super::{CompletionsArgs, ManArgs};
use std::io::Write;
use std::path::Path;

/// Writes the completion script for one shell on stdout.
pub(super) fn completions(args: CompletionsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut cmd = super::command();
    // Into memory first: clap_complete panics on a failed write, and a
    // closed pipe (`| head`) is no reason to.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mcpops", &mut script);
    out.write_all(&script).map_err(io_failure)
}

/// Writes the man page of `mcpops` on stdout, or with `--out DIR` one page
/// per command (`mcpops.1`, `mcpops-ingest.1`, ...) into DIR.
pub(super) fn man(args: ManArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let cmd = super::command();
    match args.out {
        None => clap_mangen::Man::new(cmd).render(out).map_err(io_failure),
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| write_error(&dir, e))?;
            writeln!(out, "man pages written to {}", dir.display()).map_err(io_failure)
        }
    }
}

/// A man page directory that could not be written, named.
fn write_error(dir: &Path, e: std::io::Error) -> CliError {
    CliError::failure(format!("man --out {}: {e}", dir.display()))
}
