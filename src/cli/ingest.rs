//! `mcpops ingest`: every path in one commit; nothing is stored unless all
//! parse (or `--skip-invalid` skips what does not), and a run that fails on
//! a store directory it created leaves no directory behind. Says what was
//! stored as a line of text or (`--output json`) a summary object.

use super::error::{CliError, io_failure};
use super::shared::{time_arg, write_json};
use super::{Context, IngestArgs, TextOrJson};
use mcpops::ingest::{IngestOptions, ingest_inputs, resolve_inputs};
use mcpops::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(super) fn run(ctx: &Context, args: IngestArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let opts = IngestOptions {
        format: args.format.map(Into::into),
        at_ms: args.at.map(|t| time_arg("--at", &t)).transpose()?,
        metric: args.metric,
        labels: args
            .label
            .iter()
            .map(|l| label_arg(l))
            .collect::<Result<_, _>>()?,
        skip_invalid: args.skip_invalid,
        quiet: ctx.quiet,
    };
    ingest_as(ctx.store()?, &args.paths, &opts, args.output, out)
}

/// Parses `--label k=v`.
fn label_arg(text: &str) -> Result<(String, String), CliError> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| CliError::usage(format!("--label `{text}`: expected name=value")))
}

/// Ingests `paths` into `store` and says what was stored (also for `report`,
/// which fills an empty default store with the sample fleet).
pub(super) fn ingest(
    store: &Store,
    paths: &[PathBuf],
    opts: &IngestOptions,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    ingest_as(store, paths, opts, TextOrJson::Text, out)
}

/// [`ingest`], saying what was stored as text or as a JSON object.
fn ingest_as(
    store: &Store,
    paths: &[PathBuf],
    opts: &IngestOptions,
    format: TextOrJson,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let started = Instant::now();
    // Before the lock: a missing file, an unknown format or a FIFO fails
    // here, without waiting on (or holding) the store.
    let inputs = resolve_inputs(paths, opts)?;
    // A local store this ingest creates is removed again if it fails.
    let created = store.local_root().filter(|root| !root.exists());
    let stored = (|| {
        let mut writer = store.writer()?;
        let report = ingest_inputs(&inputs, opts, &mut writer)?;
        let commit = writer.commit()?;
        Ok::<_, CliError>((report, commit))
    })();
    let (report, commit) = match stored {
        Ok(done) => done,
        Err(e) => {
            if let Some(root) = created {
                remove_new_store(root);
            }
            return Err(e);
        }
    };
    // Warnings go to stderr (also with --quiet): the data is stored, but a
    // person should look at it.
    let mut err = std::io::stderr().lock();
    for w in &report.warnings {
        let _ = writeln!(err, "{w}");
    }
    let unshown = report.warnings_total - report.warnings.len() as u64;
    if unshown > 0 {
        let _ = writeln!(err, "warning: and {unshown} more warning(s) like these");
    }
    let secs = started.elapsed().as_secs_f64();
    if format == TextOrJson::Json {
        let json = serde_json::json!({
            "store": store.location(),
            "files": report.files,
            "lines": report.lines,
            "samples": report.samples,
            "series": report.series,
            "skipped": report.skipped,
            "first_skipped": report.first_skipped.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            "warnings": report.warnings_total,
            "segments_added": commit.segments_added,
            "generation": commit.generation,
            "seconds": (secs * 1000.0).round() / 1000.0,
        });
        return write_json(out, &json).map_err(io_failure);
    }
    let (samples, lines, files, skipped) =
        (report.samples, report.lines, report.files, report.skipped);
    writeln!(
        out,
        "ingested {samples} samples from {files} file(s), {lines} lines, in {secs:.2}s ({:.0} samples/s) into {} ({} new segment(s), generation {})",
        samples as f64 / secs.max(1e-9),
        store.location(),
        commit.segments_added,
        commit.generation,
    )
    .map_err(io_failure)?;
    if skipped > 0 {
        writeln!(out, "skipped {skipped} invalid line(s); the first:").map_err(io_failure)?;
        for e in report.first_skipped.iter().take(5) {
            writeln!(out, "  {e}").map_err(io_failure)?;
        }
    }
    Ok(())
}

/// Removes a store directory this run created and did not commit to: a
/// failed ingest into a new `--store` leaves nothing behind. Only when no
/// manifest appeared (no commit, ours or another writer's, happened there).
fn remove_new_store(root: &Path) {
    if !root.join(mcpops::store::MANIFEST_FILE).exists() {
        let _ = std::fs::remove_dir_all(root);
    }
}
