//! `mcpops labels [METRIC]`: every label name of one metric (or of the
//! whole store) with how many distinct values it takes and its most common
//! values, counted in series.

use super::error::{CliError, io_failure};
use super::shared::write_json;
use super::{Context, LabelsArgs, TableOrJson};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

pub(super) fn run(ctx: &Context, args: LabelsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let snapshot = ctx.store()?.snapshot()?;
    let metric = args.metric.as_deref();
    let catalog = snapshot.catalog(&|name| metric.is_none_or(|m| m == name))?;
    if let Some(m) = metric
        && catalog.series.is_empty()
    {
        return Err(CliError::usage(format!(
            "no metric named `{m}` in the store; `mcpops metrics` lists them"
        )));
    }
    // Label name -> value -> series holding it.
    let mut values: BTreeMap<&str, HashMap<&str, u64>> = BTreeMap::new();
    for s in &catalog.series {
        for (k, v) in &s.key.labels {
            *values.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    let top = args.top;
    let labels: Vec<LabelRow> = values
        .into_iter()
        .map(|(name, counts)| {
            let distinct = counts.len();
            let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            ranked.truncate(top);
            (name, distinct, ranked)
        })
        .collect();
    if args.format == TableOrJson::Json {
        let doc = json!({
            "metric": metric,
            "series": catalog.series.len(),
            "labels": labels.iter().map(|(name, distinct, ranked)| json!({
                "name": name,
                "values": distinct,
                "top": ranked.iter().map(|(v, n)| json!({"value": v, "series": n})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        return write_json(out, &doc).map_err(io_failure);
    }
    writeln!(
        out,
        "{} series{}",
        catalog.series.len(),
        metric.map(|m| format!(" of {m}")).unwrap_or_default()
    )
    .map_err(io_failure)?;
    if labels.is_empty() {
        writeln!(out, "no labels").map_err(io_failure)?;
        return Ok(());
    }
    let cells: Vec<[String; 3]> = labels
        .iter()
        .map(|(name, distinct, ranked)| {
            let shown: Vec<String> = ranked
                .iter()
                .map(|(v, n)| format!("{} ({n})", quoted(v)))
                .collect();
            [name.to_string(), distinct.to_string(), shown.join(", ")]
        })
        .collect();
    let header = ["LABEL", "VALUES", &format!("TOP {top} (series)")];
    write_table(out, &header, &cells).map_err(io_failure)
}

/// A label name, its number of distinct values, and its top values with
/// the series holding each.
type LabelRow<'a> = (&'a str, usize, Vec<(&'a str, u64)>);

/// A label value as Prometheus prints it: quoted, `\`, `"` and newlines escaped.
fn quoted(v: &str) -> String {
    format!(
        "\"{}\"",
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

/// A table with columns padded to their widest cell (the last unpadded).
pub(super) fn write_table<const N: usize>(
    out: &mut dyn Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
