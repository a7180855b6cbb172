//! `mcpops detect FILE.csv`: every row scored as it streams in, in NAB's
//! result format on stdout (the library writes that format as it scores).

use super::DetectArgs;
use super::error::{CliError, output_closed};
use mcpops::analyze::detect::{DetectError, detect_csv};
use std::io::Write;

pub(super) fn run(args: DetectArgs, out: &mut dyn Write) -> Result<(), CliError> {
    detect_csv(&args.file, out)
        .map(|_| ())
        .map_err(|e| match e {
            DetectError::Write { ref source, .. } if output_closed(source) => {
                CliError::OutputClosed
            }
            DetectError::Write { .. } => CliError::failure(e),
            other => CliError::Input(other.into()),
        })
}
