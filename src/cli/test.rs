//! `mcpops test`: one line per test block as `cargo test` prints them, then
//! each failure with expected and actual side by side (or JSON); exit 3
//! when any expectation fails.

use super::error::{CliError, io_failure};
use super::shared::load_checked_rules;
use super::{TestArgs, TextOrJson};
use mcpops::engine::testrun::{TestOutcome, run_tests};
use std::io::{self, Write};

pub(super) fn run(args: TestArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let json = args.format == TextOrJson::Json;
    let rules = load_checked_rules(&args.files)?;
    let outcomes = run_tests(&rules);
    let failed = if json {
        let text = serde_json::to_string_pretty(&outcomes).map_err(CliError::failure)?;
        writeln!(out, "{text}").map_err(io_failure)?;
        outcomes.iter().filter(|o| !o.passed()).count()
    } else {
        print_outcomes(&outcomes, out).map_err(io_failure)?
    };
    if failed > 0 {
        return Err(CliError::rules(format!("{failed} rule test(s) failed")));
    }
    Ok(())
}

/// Prints outcomes as `cargo test` does: one line per block, then each
/// failure with expected and actual side by side. Returns the failed count.
fn print_outcomes(outcomes: &[TestOutcome], out: &mut dyn Write) -> io::Result<usize> {
    let mut failed = 0;
    for o in outcomes {
        let status = if o.passed() { "ok" } else { "FAILED" };
        writeln!(
            out,
            "test {}:{} \"{}\" ... {status}",
            o.file, o.line, o.name
        )?;
        if let Some(err) = &o.error {
            writeln!(out, "    error: {err}")?;
        }
        for f in &o.failures {
            writeln!(out, "  {}:{}:{}: {}", o.file, f.line, f.col, f.expect)?;
            let w = f.expected.len().max("expected".len());
            writeln!(out, "    {:<w$} | actual", "expected")?;
            writeln!(out, "    {:<w$} | {}", f.expected, f.actual)?;
        }
        if !o.passed() {
            failed += 1;
        }
    }
    let passed = outcomes.len() - failed;
    writeln!(
        out,
        "\ntest result: {}. {passed} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" }
    )?;
    Ok(failed)
}
