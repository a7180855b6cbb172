//! `mcpops export`: the selected samples as CSV, JSON lines or Parquet, to
//! `--out` or stdout (the store writes the format; this says where). A
//! metric the store does not hold is warned about on stderr.

use super::error::{CliError, PathError, io_failure};
use super::shared::time_arg;
use super::{Context, ExportArgs};
use mcpops::fsutil::AtomicFile;
use mcpops::model::Matcher;
use mcpops::store::ScanRequest;
use std::io::Write;

pub(super) fn run(ctx: &Context, args: ExportArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    let req = scan_request(
        args.metric,
        &args.matchers,
        args.from.as_deref(),
        args.to.as_deref(),
    )?;
    let format = args.format.into();
    let snapshot = ctx.store()?.snapshot()?;
    if let Some(metric) = &req.metric {
        warn_unknown_metric(&snapshot, metric);
    }
    match args.out.as_deref() {
        Some(p) => {
            let fail = |source: std::io::Error| {
                CliError::failure(PathError {
                    path: p.display().to_string(),
                    source,
                })
            };
            // A FIFO or a device the user names (`--out /dev/stdout`) is
            // written to as it is: there is no file there to replace.
            let stream = std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir());
            let rows = if stream {
                let mut file = std::io::BufWriter::new(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .map_err(fail)?,
                );
                let rows = snapshot.export(&req, format, &mut file)?;
                file.flush().map_err(io_failure)?;
                rows
            } else {
                // Atomically: a failed export leaves no half file, and a
                // symlink at `p` is replaced rather than written through.
                let mut file = std::io::BufWriter::new(AtomicFile::create(p).map_err(fail)?);
                let rows = snapshot.export(&req, format, &mut file)?;
                file.into_inner()
                    .map_err(|e| fail(e.into_error()))?
                    .commit()
                    .map_err(fail)?;
                rows
            };
            eprintln!("exported {rows} rows to {}", p.display());
        }
        None => {
            snapshot.export(&req, format, stdout)?;
        }
    }
    Ok(())
}

/// A metric the store does not hold exports nothing: said on stderr with
/// the nearest stored names (exit status unchanged: an empty export is an
/// answer).
fn warn_unknown_metric(snapshot: &mcpops::store::Snapshot, metric: &str) {
    let stored: std::collections::BTreeSet<&str> = snapshot
        .manifest()
        .segments
        .iter()
        .flat_map(|s| s.metrics.iter().map(String::as_str))
        .collect();
    if stored.is_empty() || stored.contains(metric) {
        return;
    }
    let near = mcpops::dsl::lint_store::nearest(metric, stored.iter().copied());
    let hint = mcpops::dsl::lint_store::did_you_mean(&near)
        .unwrap_or_else(|| "`mcpops metrics` lists the stored metrics".into());
    eprintln!("mcpops: warning: no series in the store has the metric `{metric}`: {hint}");
}

/// The selection: metric, matchers, range.
fn scan_request(
    metric: Option<String>,
    matchers: &[String],
    from: Option<&str>,
    to: Option<&str>,
) -> Result<ScanRequest, CliError> {
    let matchers = matchers
        .iter()
        .map(|m| Matcher::parse(m).map_err(CliError::usage))
        .collect::<Result<_, _>>()?;
    Ok(ScanRequest {
        start_ms: from
            .map(|t| time_arg("--from", t))
            .transpose()?
            .unwrap_or(i64::MIN),
        end_ms: to
            .map(|t| time_arg("--to", t))
            .transpose()?
            .unwrap_or(i64::MAX),
        metric,
        matchers,
        without: Vec::new(),
    })
}
