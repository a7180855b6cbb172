//! The plan of a run: what the checked expressions need, decided once from
//! their structure before anything is read or evaluated; the store source
//! and the evaluator run by it, and `mcpops query --explain` prints it.
//!
//! - **Label pruning.** When every selector of a metric is a range whose
//!   samples are pooled `by` some labels before a function runs
//!   (`p95(x[1h]) by (server)`, `count(x[5m]) by (server)`), the labels no
//!   grouping or matcher names cannot change any result, and the scan can
//!   drop them ([`crate::store::ScanRequest::without`]). For the call metric
//!   that is the MCP session id: one series per session becomes one per
//!   server and tool before anything is decoded.
//! - **Lookback.** How much history before the first step the expressions
//!   read: their longest window plus offset, at least the instant lookback.
//! - **Shared calls.** A call over a range that occurs more than once (the
//!   burn-rate alerts' error counts; a maintenance that repeats an alert's
//!   `time_to`) is computed once per grid. Calls are the same when their
//!   structure is ([`Shape`]): same function, selector, matchers, window,
//!   offset and grouping, however they are spaced or parenthesised.
//! - **Demand pushdown.** `a and b` evaluates `b` first and computes `a`'s
//!   quantiles only at the steps and groups where `b` has series; the
//!   evaluator does it at every `and`, and the explanation says where.

use super::eval::LOOKBACK_MS;
use crate::dsl::ast::{Aggregate, BinOp, Call, Expr, Grouping};
use crate::dsl::functions::{AggKernel, Kernel};
use crate::time::format_duration_ms;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a run of some expressions needs (see the module's documentation).
#[derive(Debug, Default)]
pub struct Plan {
    reads: BTreeMap<String, Option<BTreeSet<String>>>,
    lookback_ms: i64,
    shared: HashMap<Shape, usize>,
}

impl Plan {
    /// The plan of evaluating each of `exprs` (checked, constants inlined)
    /// over one grid.
    pub fn new<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Plan {
        let exprs: Vec<&Expr> = exprs.into_iter().collect();
        let mut uses: HashMap<Shape, usize> = HashMap::new();
        let mut lookback_ms = LOOKBACK_MS;
        for e in &exprs {
            e.walk(&mut |node| match node {
                Expr::Call(_) => *uses.entry(Shape::of(node)).or_default() += 1,
                Expr::Selector(s) => {
                    let r = s.range.as_ref().map_or(LOOKBACK_MS, |d| d.ms);
                    let o = s.offset.as_ref().map_or(0, |d| d.ms);
                    lookback_ms = lookback_ms.max(r.saturating_add(o));
                }
                _ => {}
            });
        }
        Plan {
            reads: needed_labels(exprs.iter().copied()).into_iter().collect(),
            lookback_ms,
            shared: uses.into_iter().filter(|(_, n)| *n > 1).collect(),
        }
    }

    /// Per metric the expressions read: the labels the scan keeps, or
    /// `None` for all of them.
    pub fn reads(&self) -> &BTreeMap<String, Option<BTreeSet<String>>> {
        &self.reads
    }

    /// How far before the first step the expressions read.
    pub fn lookback_ms(&self) -> i64 {
        self.lookback_ms
    }

    /// How many times the call `e` occurs, when more than once: it is
    /// computed once and its value handed to each use.
    pub fn shared_uses(&self, shape: &Shape) -> Option<usize> {
        self.shared.get(shape).copied()
    }

    /// Whether any call is shared.
    pub fn shares_calls(&self) -> bool {
        !self.shared.is_empty()
    }

    /// Whether `a` folds its argument's per-series results into their groups
    /// as they are computed (`max by (server) (p99(x[1h]))`, each MCP session
    /// a series), so they never all exist at once: a sum, min, max or count
    /// of a function over a range that runs per series and is not shared
    /// (a shared call is computed whole, once).
    pub fn streams(&self, a: &Aggregate) -> bool {
        let arg = a.arg.unparen();
        let per_series = matches!(arg, Expr::Call(c) if c.pool.is_none()
            && c.def.is_some_and(|d| d.kernel != Kernel::Absent
                && !matches!(d.kernel, Kernel::Instant(_))
                && matches!(c.args.get(d.range_arg()).map(Expr::unparen),
                    Some(Expr::Selector(s)) if s.range.is_some())));
        matches!(
            a.def.kernel,
            AggKernel::Sum | AggKernel::Min | AggKernel::Max | AggKernel::Count
        ) && per_series
            && !(self.shares_calls() && self.shared_uses(&Shape::of(arg)).is_some())
    }

    /// How `expr` is evaluated under this plan, node by node.
    pub fn explain(&self, expr: &Expr) -> Vec<PlanStep> {
        let mut steps = Vec::new();
        self.explain_node(expr, 0, &mut steps);
        steps
    }

    fn explain_node(&self, e: &Expr, depth: usize, out: &mut Vec<PlanStep>) {
        let mut notes = Vec::new();
        let what = match e {
            Expr::Number(n) => format!("number {}", n.text),
            Expr::Duration(d) => format!("duration {} ({} s)", d.text, d.seconds()),
            Expr::Str(s) => format!("string {:?}", s.value),
            Expr::Const(c) => format!("constant {}", c.name),
            Expr::Paren(inner, _) => return self.explain_node(inner, depth, out),
            Expr::Neg(..) => "negate".to_string(),
            Expr::Selector(s) => {
                let offset = s
                    .offset
                    .as_ref()
                    .map(|d| format!(", offset {}", d.text))
                    .unwrap_or_default();
                match &s.range {
                    Some(r) => format!("window {} of {}{offset}", r.text, selector_text(s)),
                    None => format!(
                        "select {}: each series' newest sample within {}{offset}",
                        selector_text(s),
                        format_duration_ms(LOOKBACK_MS)
                    ),
                }
            }
            Expr::Call(c) => {
                if let Some(n) = self.shared_uses(&Shape::of(e)) {
                    notes.push(format!("shared: computed once for its {n} uses"));
                }
                call_text(c)
            }
            Expr::Aggregate(a) => {
                if self.streams(a) {
                    notes.push(
                        "streamed: the per-series results fold into their groups as they are computed"
                            .into(),
                    );
                }
                format!("{} across series{}", a.def.name, grouping_text(&a.grouping))
            }
            Expr::Binary(b) => {
                let on =
                    b.on.as_ref()
                        .map(|g| format!(" on ({})", names(g)))
                        .unwrap_or_default();
                let bool_kw = if b.return_bool { " bool" } else { "" };
                match b.op {
                    BinOp::And => notes.push(
                        "the right side first; the left side's quantiles run only at the steps and groups where it has series"
                            .into(),
                    ),
                    BinOp::Or | BinOp::Unless => {}
                    _ => notes.push("both sides at once".into()),
                }
                format!("{}{bool_kw}{on}", b.op.symbol())
            }
        };
        out.push(PlanStep { depth, what, notes });
        for child in e.children() {
            self.explain_node(child, depth + 1, out);
        }
    }
}

/// One node of an explained plan, `depth` levels below the root.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanStep {
    pub depth: usize,
    pub what: String,
    pub notes: Vec<String>,
}

/// The label names of a grouping, in the order written.
pub(super) fn label_names(g: &Grouping) -> Vec<String> {
    g.labels.iter().map(|l| l.name.clone()).collect()
}

fn names(g: &Grouping) -> String {
    label_names(g).join(", ")
}

fn grouping_text(g: &Option<Grouping>) -> String {
    match g {
        Some(g) if g.without => format!(" without ({})", names(g)),
        Some(g) => format!(" by ({})", names(g)),
        None => String::new(),
    }
}

fn selector_text(s: &crate::dsl::ast::Selector) -> String {
    let matchers: Vec<String> = s
        .matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name, m.op.symbol(), m.value))
        .collect();
    if matchers.is_empty() {
        s.metric.name.clone()
    } else {
        format!("{}{{{}}}", s.metric.name, matchers.join(", "))
    }
}

fn call_text(c: &Call) -> String {
    let Some(def) = c.def else {
        return format!("{} (unknown function)", c.func.name);
    };
    let kernel = match def.kernel {
        Kernel::OverTime(f) => format!("{f:?}"),
        Kernel::QuantileAt => "Quantile(q)".into(),
        Kernel::PredictAt => "Predict(horizon)".into(),
        Kernel::Absent => "Absent".into(),
        Kernel::Instant(f) => format!("{f:?}"),
        Kernel::Histogram(f) => {
            return format!(
                "{} of classic buckets: kernel Histogram{f:?}, at each step one pass over each group of series that differ only in `le`",
                def.name
            );
        }
    };
    let how = match &c.pool {
        None if def.kernel == Kernel::Absent => {
            "over all the selector's series together".to_string()
        }
        None => "per series".to_string(),
        Some(g) if def.pools_samples() => format!(
            "the samples of each group{} merged, then the kernel once per group",
            grouping_text(&Some(g.clone()))
        ),
        Some(g) => format!(
            "per series, the results added up{}",
            grouping_text(&Some(g.clone()))
        ),
    };
    format!("{} over time: kernel {kernel}, {how}", def.name)
}

/// What an expression means, as a key: its nodes in order, each with what
/// it holds (names, numbers, matchers, windows, groupings) and how many
/// children it has, spans and parentheses aside. Two calls with the same
/// shape give the same value over the same grid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape(Vec<(Node, usize)>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Node {
    Number(u64),
    Duration(i64),
    Str(String),
    Const(String),
    Selector {
        metric: String,
        matchers: Vec<(String, &'static str, String)>,
        range: Option<i64>,
        offset: Option<i64>,
    },
    Call {
        func: String,
        pool: Option<(bool, Vec<String>)>,
    },
    Aggregate {
        op: String,
        grouping: Option<(bool, Vec<String>)>,
    },
    Binary {
        op: BinOp,
        return_bool: bool,
        on: Option<(bool, Vec<String>)>,
    },
    Neg,
}

impl Shape {
    pub fn of(e: &Expr) -> Shape {
        let mut nodes = Vec::new();
        push_shape(e, &mut nodes);
        Shape(nodes)
    }
}

fn grouping_key(g: &Option<Grouping>) -> Option<(bool, Vec<String>)> {
    g.as_ref().map(|g| (g.without, label_names(g)))
}

fn push_shape(e: &Expr, out: &mut Vec<(Node, usize)>) {
    let node = match e {
        Expr::Paren(inner, _) => return push_shape(inner, out),
        Expr::Number(n) => Node::Number(n.value.to_bits()),
        Expr::Duration(d) => Node::Duration(d.ms),
        Expr::Str(s) => Node::Str(s.value.clone()),
        Expr::Const(c) => Node::Const(c.name.clone()),
        Expr::Selector(s) => Node::Selector {
            metric: s.metric.name.clone(),
            matchers: s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.op.symbol(), m.value.clone()))
                .collect(),
            range: s.range.as_ref().map(|d| d.ms),
            offset: s.offset.as_ref().map(|d| d.ms),
        },
        Expr::Call(c) => Node::Call {
            func: c.func.name.clone(),
            pool: grouping_key(&c.pool),
        },
        Expr::Aggregate(a) => Node::Aggregate {
            op: a.op.name.clone(),
            grouping: grouping_key(&a.grouping),
        },
        Expr::Binary(b) => Node::Binary {
            op: b.op,
            return_bool: b.return_bool,
            on: grouping_key(&b.on),
        },
        Expr::Neg(..) => Node::Neg,
    };
    let children = e.children();
    out.push((node, children.len()));
    for c in children {
        push_shape(c, out);
    }
}

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

    #[test]
    fn an_aggregate_streams_a_per_series_call_unless_the_call_is_shared() {
        let agg = parse_query("max by (server) (p99(x[1h]))").expect("parses");
        let Expr::Aggregate(a) = &agg else {
            panic!("an aggregation")
        };
        assert!(Plan::new([&agg]).streams(a));
        let again = parse_query("p99(x[1h]) > 1").expect("parses");
        let shared = Plan::new([&agg, &again]);
        assert!(!shared.streams(a));
        assert!(
            !shared
                .explain(&agg)
                .iter()
                .any(|s| s.notes.iter().any(|n| n.starts_with("streamed"))),
            "a shared call is computed whole, not streamed"
        );
        for text in [
            "avg by (server) (p99(x[1h]))",
            "max by (server) (p99(x[1h]) by (tool))",
            "max(absent(x[5m]))",
        ] {
            let e = parse_query(text).expect("parses");
            let Expr::Aggregate(a) = &e else {
                panic!("{text}")
            };
            assert!(!Plan::new([&e]).streams(a), "{text}");
        }
    }
}
