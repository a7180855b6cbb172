//! `mcpops metrics [MATCH]`: every stored metric with its type (declared or
//! inferred), unit, help, series, samples, time range and label names. A
//! histogram or summary family is one row (its `_bucket`, `_sum`, `_count`
//! and `_created` names are its parts, listed in JSON); every other stored
//! name is a row of its own. MATCH is a regular expression searched for in
//! the name (or the family's name).

use super::error::{CliError, io_failure};
use super::shared::write_json;
use super::{Context, MetricsArgs, TableOrJson};
use mcpops::metadata::{MetricMeta, MetricType};
use mcpops::store::SeriesStats;
use mcpops::time::format_ms;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// One row: a stored name, or a histogram's or summary's family.
struct Row<'a> {
    name: String,
    meta: &'a MetricMeta,
    /// The stored names it covers, with their series and samples.
    parts: Vec<(&'a str, u64, u64)>,
    /// Distinct label sets, `le` and `quantile` left out for a family.
    series: u64,
    samples: u64,
    first: i64,
    last: i64,
    labels: BTreeSet<&'a str>,
}

pub(super) fn run(ctx: &Context, args: MetricsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let pattern = args
        .pattern
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| CliError::usage(format!("MATCH: not a regular expression: {e}")))?;
    let snapshot = ctx.store()?.snapshot()?;
    let metadata = &snapshot.manifest().metadata;
    let is_match = |name: &str| {
        pattern.as_ref().is_none_or(|p| {
            p.is_match(name) || metadata.get(name).is_some_and(|m| p.is_match(&m.family))
        })
    };
    let catalog = snapshot.catalog(&is_match)?;
    let rows = rows(&catalog.series, &catalog.metadata);
    if args.format == TableOrJson::Json {
        let metrics: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "type": r.meta.kind,
                    "source": r.meta.source,
                    "unit": r.meta.unit,
                    "help": r.meta.help,
                    "declared_at": r.meta.declared_at,
                    "series": r.series,
                    "samples": r.samples,
                    "first": format_ms(r.first),
                    "last": format_ms(r.last),
                    "labels": r.labels,
                    "parts": r.parts.iter().map(|(n, series, samples)| json!({
                        "name": n, "series": series, "samples": samples,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return write_json(out, &json!({ "metrics": metrics })).map_err(io_failure);
    }
    if rows.is_empty() {
        let what = if pattern.is_some() {
            "no stored metric matches"
        } else {
            "the store holds no metrics"
        };
        writeln!(out, "{what}").map_err(io_failure)?;
        return Ok(());
    }
    let header = [
        "METRIC", "TYPE", "SOURCE", "UNIT", "SERIES", "SAMPLES", "FIRST", "LAST", "LABELS", "HELP",
    ];
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let kind = if r.parts.len() > 1 || r.name != r.parts[0].0 {
                let parts: Vec<&str> = r
                    .parts
                    .iter()
                    .map(|(n, _, _)| n.strip_prefix(r.name.as_str()).unwrap_or(n))
                    .map(|s| s.trim_start_matches('_'))
                    .collect();
                format!("{} ({})", r.meta.kind, parts.join(","))
            } else {
                r.meta.type_text()
            };
            [
                r.name.clone(),
                kind,
                r.meta.source.name().to_string(),
                r.meta.unit.clone().unwrap_or_else(|| "-".into()),
                r.series.to_string(),
                r.samples.to_string(),
                format_ms(r.first),
                format_ms(r.last),
                if r.labels.is_empty() {
                    "-".into()
                } else {
                    r.labels.iter().copied().collect::<Vec<_>>().join(",")
                },
                r.meta.help.clone().unwrap_or_default().replace('\n', " "),
            ]
        })
        .collect();
    super::labels::write_table(out, &header, &cells).map_err(io_failure)
}

/// The rows of the catalog, by name: histogram, gauge histogram and
/// summary families folded into one row each.
fn rows<'a>(series: &'a [SeriesStats], metadata: &'a BTreeMap<String, MetricMeta>) -> Vec<Row<'a>> {
    let folds = |m: &MetricMeta| {
        matches!(
            m.kind,
            MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Summary
        )
    };
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut label_sets: BTreeMap<String, BTreeSet<Vec<(&str, &str)>>> = BTreeMap::new();
    for s in series {
        let name = s.key.metric.as_str();
        let Some(meta) = metadata.get(name) else {
            continue;
        };
        let (row_name, folded) = if folds(meta) {
            (meta.family.clone(), true)
        } else {
            (name.to_string(), false)
        };
        let row = rows.entry(row_name.clone()).or_insert_with(|| Row {
            name: row_name.clone(),
            meta,
            parts: Vec::new(),
            series: 0,
            samples: 0,
            first: i64::MAX,
            last: i64::MIN,
            labels: BTreeSet::new(),
        });
        // A family's metadata: of its declared part if any (they agree).
        if meta.source == mcpops::metadata::TypeSource::Declared {
            row.meta = meta;
        }
        match row.parts.iter_mut().find(|(n, _, _)| *n == name) {
            Some(p) => {
                p.1 += 1;
                p.2 += s.samples;
            }
            None => row.parts.push((name, 1, s.samples)),
        }
        row.samples += s.samples;
        row.first = row.first.min(s.first);
        row.last = row.last.max(s.last);
        let skip = |k: &str| folded && (k == "le" || k == "quantile");
        row.labels.extend(
            s.key
                .labels
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !skip(k)),
        );
        label_sets.entry(row_name).or_default().insert(
            s.key
                .labels
                .iter()
                .filter(|(k, _)| !skip(k))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        );
    }
    rows.into_values()
        .map(|mut r| {
            r.series = label_sets.get(&r.name).map_or(0, |s| s.len() as u64);
            r.parts.sort();
            r
        })
        .collect()
}
