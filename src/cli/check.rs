//! `mcpops check`: every diagnostic of the rule files, then a count (or one
//! JSON document `{"errors","warnings","diagnostics":[...]}`); exit 3 when
//! any file has errors (warnings alone pass), 2 when a file is unreadable.

use super::error::{CliError, io_failure};
use super::{CheckArgs, TextOrJson};
use std::io::Write;

pub(super) fn run(args: CheckArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let json = args.format == TextOrJson::Json;
    let files = &args.files;
    let set = mcpops::dsl::load_rules(files).map_err(|e| CliError::Usage(e.into()))?;
    let (errors, warnings) = (set.errors(), set.warnings());
    if json {
        let doc = serde_json::json!({
            "errors": errors,
            "warnings": warnings,
            "diagnostics": set.diagnostics,
        });
        writeln!(out, "{doc}").map_err(io_failure)?;
    } else {
        for d in &set.diagnostics {
            writeln!(out, "{d}").map_err(io_failure)?;
        }
        writeln!(
            out,
            "checked {} file{}: {} error{}, {} warning{}",
            files.len(),
            plural(files.len()),
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        )
        .map_err(io_failure)?;
    }
    if errors > 0 {
        return Err(CliError::rules(format!(
            "{errors} error(s) in the rule files"
        )));
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
