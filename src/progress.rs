//! Progress bars that show on a terminal and stay silent in cron: hidden with
//! `--quiet` or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress may be drawn at all.
pub fn visible(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// One bar for a whole ingest run: bytes read of all its files (`None` when
/// a stream of unknown length, stdin, is among them), the files done of
/// `files` as its prefix and the file being read as its message. One bar
/// for the run rather than one per file: a directory of small files showed
/// a bar per file, each gone at once with "eta 0s". Cleared when dropped, so
/// a run that fails leaves no half bar above its error.
pub fn run_bar(files: usize, total_bytes: Option<u64>, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total_bytes, draw_target(quiet))
        .with_finish(ProgressFinish::AndClear);
    let template = if total_bytes.is_some() {
        "ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}, {prefix}: {wide_msg}"
    } else {
        "ingest {spinner} {bytes} {bytes_per_sec}, {prefix}: {wide_msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(files_done(0, files));
    bar
}

/// The prefix of a [`run_bar`]: `done` files of `files`.
pub fn files_done(done: usize, files: usize) -> String {
    format!("{done}/{files} files")
}

/// A spinner through `steps` named steps of a job.
pub fn steps_bar(steps: u64, quiet: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps), draw_target(quiet));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{pos}/{len}] {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn draw_target(quiet: bool) -> ProgressDrawTarget {
    if visible(quiet) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_bars_draw_nothing() {
        assert!(run_bar(3, Some(100), true).is_hidden());
        assert!(!visible(true));
    }
}
