//! What a run must read of each metric. When every selector of a metric is
//! a range whose samples are pooled `by` some labels before a function runs
//! (`p95(x[1h]) by (server)`, `count(x[5m]) by (server)`), the labels no
//! grouping or matcher names cannot change any result, and the scan can
//! drop them ([`crate::store::ScanRequest::without`]). For the call metric
//! that is the MCP session id: one series per session becomes one per
//! server and tool before anything is decoded.

use crate::dsl::ast::{Call, Expr};
use std::collections::{BTreeSet, HashMap};

/// Per metric: the labels the run needs, or `None` when some use needs
/// every label (an instant selector, a per-series function, `without`).
pub fn needed_labels<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> HashMap<String, Option<BTreeSet<String>>> {
    let mut plan = HashMap::new();
    for e in exprs {
        visit(e, &mut plan);
    }
    plan
}

fn visit(e: &Expr, plan: &mut HashMap<String, Option<BTreeSet<String>>>) {
    match e {
        Expr::Call(c) => {
            if let Some((metric, labels)) = pooled_selector(c) {
                if let Some(kept) = plan.entry(metric).or_insert_with(|| Some(BTreeSet::new())) {
                    kept.extend(labels);
                }
                let ri = c.def.map_or(0, |f| f.range_arg());
                for (i, a) in c.args.iter().enumerate() {
                    if i != ri {
                        visit(a, plan);
                    }
                }
                return;
            }
        }
        Expr::Selector(s) => {
            plan.insert(s.metric.name.clone(), None);
            return;
        }
        _ => {}
    }
    for child in e.children() {
        visit(child, plan);
    }
}

/// The metric and the labels a pooled range selector needs: the grouping's
/// and its matchers'.
fn pooled_selector(c: &Call) -> Option<(String, Vec<String>)> {
    let g = c.pool.as_ref().filter(|g| !g.without)?;
    let def = c.def?;
    let Expr::Selector(sel) = c.args.get(def.range_arg())?.unparen() else {
        return None;
    };
    sel.range.as_ref()?;
    if !def.pools_samples() {
        return None;
    }
    let labels = g
        .labels
        .iter()
        .map(|l| l.name.clone())
        .chain(sel.matchers.iter().map(|m| m.name.clone()))
        .collect();
    Some((sel.metric.name.clone(), labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::parse_query;

    fn plan(texts: &[&str]) -> HashMap<String, Option<BTreeSet<String>>> {
        let exprs: Vec<Expr> = texts
            .iter()
            .map(|t| parse_query(t).expect("parses"))
            .collect();
        needed_labels(exprs.iter())
    }

    fn set(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn pooled_ranges_need_only_their_grouping_and_matchers() {
        let p = plan(&[
            "p95(calls{tool=\"a\"}[1h]) by (server)",
            "count(calls[5m]) by (server, tool) > 3",
        ]);
        assert_eq!(p["calls"], set(&["server", "tool"]));
    }

    #[test]
    fn any_other_use_needs_every_label() {
        for text in [
            "calls",
            "rate(calls[5m])",
            "rate(calls[5m]) by (server)",
            "p95(calls[1h]) without (session)",
            "sum(calls) by (server)",
        ] {
            let p = plan(&["p95(calls[1h]) by (server)", text]);
            assert_eq!(p["calls"], None, "{text}");
        }
    }
}
