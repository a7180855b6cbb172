//! `mcpops fmt`: rewrites rule files in the canonical layout and names each
//! one it changed (with `--check`, each one it would change: exit 1 if any,
//! as `cargo fmt --check` does); a file that does not parse is left alone,
//! its diagnostics printed, and the run exits 3.

use super::FmtArgs;
use super::error::{CliError, PathError, io_failure};
use std::io::Write;

pub(super) fn run(args: FmtArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let files = &args.files;
    // Every file is read before any is rewritten: a missing one changes nothing.
    let mut sources = Vec::with_capacity(files.len());
    for p in files {
        let src = std::fs::read_to_string(p).map_err(|source| {
            CliError::Usage(
                PathError {
                    path: p.display().to_string(),
                    source,
                }
                .into(),
            )
        })?;
        sources.push(src);
    }
    let (mut changed, mut errors) = (0, 0);
    for (p, src) in files.iter().zip(&sources) {
        match mcpops::dsl::format_str(src, &p.display().to_string()) {
            Err(diags) => {
                errors += 1;
                for d in diags {
                    writeln!(out, "{d}").map_err(io_failure)?;
                }
            }
            Ok(formatted) if formatted != *src => {
                if !args.check {
                    mcpops::dsl::replace_file(p, &formatted)
                        .map_err(|e| CliError::Usage(e.into()))?;
                }
                writeln!(out, "{}", p.display()).map_err(io_failure)?;
                changed += 1;
            }
            Ok(_) => {}
        }
    }
    if errors > 0 {
        return Err(CliError::rules(format!(
            "{errors} file(s) do not parse and were left alone"
        )));
    }
    if args.check && changed > 0 {
        return Err(CliError::failure(format!(
            "{changed} file(s) are not formatted"
        )));
    }
    Ok(())
}
