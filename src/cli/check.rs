//! `mcpops check`: every diagnostic of the rule files, then a count (or one
//! JSON document `{"errors","warnings","diagnostics":[...]}`); exit 3 when
//! any file has errors (warnings alone pass), 2 when a file is unreadable.
//!
//! With a store named (`--store DIR` or `$MCPOPS_STORE`), the rules are
//! also checked against the store's names ([`mcpops::dsl::lint_store`]):
//! metrics no series has, labels no series carries, functions that do not
//! suit a metric's type. The default store is not used unasked: rules are
//! often checked where no store is (an editor, CI).

use super::error::{CliError, io_failure};
use super::{CheckArgs, Context, TextOrJson};
use mcpops::dsl::lint_store::{self, StoreNames};
use mcpops::dsl::{Code, Diagnostic};
use mcpops::metadata::infer;
use mcpops::store::{Snapshot, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

pub(super) fn run(ctx: &Context, args: CheckArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let json = args.format == TextOrJson::Json;
    let files = &args.files;
    let set = mcpops::dsl::load_rules(files).map_err(|e| CliError::Usage(e.into()))?;
    let mut diagnostics = set.diagnostics;
    if !ctx.sample_fallback {
        let sources = read_sources(files)?;
        let wanted = lint_store::selected_metrics(&sources);
        let names = store_names(ctx.store()?, &wanted)?;
        if names.is_empty() {
            eprintln!(
                "mcpops: the store {} holds no series: the rules were not checked against its names",
                ctx.store()?.location()
            );
        } else {
            let order: Vec<String> = sources.iter().map(|(n, _)| n.clone()).collect();
            with_store_warnings(&mut diagnostics, &names, &order, |n| {
                lint_store::lint_sources(&sources, n)
            });
        }
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if json {
        let doc = serde_json::json!({
            "errors": errors,
            "warnings": warnings,
            "diagnostics": diagnostics,
        });
        writeln!(out, "{doc}").map_err(io_failure)?;
    } else {
        for d in &diagnostics {
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

fn read_sources(files: &[std::path::PathBuf]) -> Result<Vec<(String, String)>, CliError> {
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|src| (p.display().to_string(), src))
                .map_err(|e| CliError::usage(format!("{}: {e}", p.display())))
        })
        .collect()
}

/// Adds the store's warnings to a file's diagnostics, in file and position
/// order. A name one edit from a constant (`W003`) that the store holds as
/// a metric is a metric after all: that warning goes.
pub(super) fn with_store_warnings(
    diagnostics: &mut Vec<Diagnostic>,
    names: &StoreNames,
    order: &[String],
    lint: impl FnOnce(&StoreNames) -> Vec<Diagnostic>,
) {
    diagnostics.retain(|d| {
        d.code != Code::NearConstant
            || !names.metrics.contains_key(
                d.source_line
                    .chars()
                    .skip(d.col as usize - 1)
                    .take(d.width as usize)
                    .collect::<String>()
                    .as_str(),
            )
    });
    // A misspelt constant is also a metric the store lacks: one warning,
    // the one that names the likelier fix.
    let near_constants: Vec<(String, u32, u32)> = diagnostics
        .iter()
        .filter(|d| d.code == Code::NearConstant)
        .map(|d| (d.file.clone(), d.line, d.col))
        .collect();
    diagnostics.extend(lint(names).into_iter().filter(|d| {
        d.code != Code::UnknownMetric || !near_constants.contains(&(d.file.clone(), d.line, d.col))
    }));
    let rank = |f: &str| order.iter().position(|o| o == f).unwrap_or(usize::MAX);
    diagnostics.sort_by(|a, b| {
        (rank(&a.file), a.line, a.col, a.severity).cmp(&(rank(&b.file), b.line, b.col, b.severity))
    });
}

/// The names of the store: every metric (from the manifest) with its
/// metadata (declared, else inferred), every label, and the labels each of
/// the `wanted` metrics carries (from the catalog, which reads the key
/// columns of those metrics' segments and no values).
pub(super) fn store_names(
    store: &Store,
    wanted: &BTreeSet<String>,
) -> Result<StoreNames, CliError> {
    let snapshot = store.snapshot()?;
    Ok(names_of(&snapshot, wanted)?)
}

fn names_of(
    snapshot: &Snapshot,
    wanted: &BTreeSet<String>,
) -> Result<StoreNames, mcpops::store::StoreError> {
    let manifest = snapshot.manifest();
    let mut segment_labels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut all_labels = BTreeSet::new();
    for s in &manifest.segments {
        for m in &s.metrics {
            segment_labels
                .entry(m.as_str())
                .or_default()
                .extend(s.labels.iter().map(String::as_str));
        }
        all_labels.extend(s.labels.iter().cloned());
    }
    let stored = |n: &str| segment_labels.contains_key(n);
    let metrics: BTreeMap<String, mcpops::metadata::MetricMeta> = segment_labels
        .iter()
        .map(|(&name, labels)| {
            let meta = manifest
                .metadata
                .get(name)
                .cloned()
                .unwrap_or_else(|| infer(name, labels.contains("le"), &stored));
            (name.to_string(), meta)
        })
        .collect();
    let read: BTreeSet<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|m| metrics.contains_key(*m))
        .collect();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if !read.is_empty() {
        let catalog = snapshot.catalog(&|m| read.contains(m))?;
        for s in &catalog.series {
            let entry = labels.entry(s.key.metric.clone()).or_default();
            for (l, _) in &s.key.labels {
                if !entry.contains(l) {
                    entry.insert(l.clone());
                }
            }
        }
    }
    Ok(StoreNames {
        metrics,
        labels,
        all_labels,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
