//! The `mcpops` binary: tunes the allocator, parses the command line, runs
//! the subcommand ([`cli`]) and turns its outcome into an exit code (0 ok,
//! 1 failure, 2 usage or input error, 3 rule problems, 4 `report --fail-on`
//! paging, 5 a damaged store), the error and its causes on stderr.

mod cli;
mod memory;

use clap::FromArgMatches;
use cli::error::CliError;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    memory::tune_allocator();
    // clap exits 2 on a usage error (0 for --help and --version).
    // Parsed from `cli::command()`, not `Cli::parse()`: the top-level help
    // is the grouped one built there.
    let parsed = cli::Cli::from_arg_matches(&cli::command().get_matches());
    let args = parsed.unwrap_or_else(|e| e.exit());
    match cli::run(args) {
        Ok(()) | Err(CliError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            // Nothing to do if stderr is gone too: the exit code still says it.
            let _ = cli::error::report(&e, &mut std::io::stderr().lock());
            ExitCode::from(e.exit_code())
        }
    }
}
