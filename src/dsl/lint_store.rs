//! Checks of rules and queries against the names a store holds: a rule
//! whose selector names a metric no series has, or a label no series of its
//! metric carries, checks cleanly and then never fires. With the store's
//! names ([`StoreNames`], which the command line reads from the manifest and
//! the catalog) these become warnings with "did you mean" from the store:
//!
//! - `W004`: a selector whose metric no stored series has;
//! - `W005`: a label (in a matcher, `by`/`without` of a function or an
//!   aggregation, `on` of an operator) that no series of the
//!   metrics beneath it carries;
//! - `W006`: a function that does not suit the metric's type from the
//!   store's metadata: `rate`/`increase` of a gauge, `delta`/`deriv` of a
//!   counter, a quantile over a histogram's `_bucket` counters, and
//!   `histogram_quantile` over something that is not `_bucket` series.
//!
//! The checks are warnings: the store may not hold the data yet, and a rule
//! written for data to come is not wrong. The dsl room knows no store: the
//! names come in as plain data.

use super::ast::*;
use super::check::closest;
use super::diag::{Code, Diagnostic, LineIndex};
use super::functions::{AggKernel, Kernel, TimeFunc};
use crate::metadata::MetricMeta;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a store holds, by name.
#[derive(Clone, Debug, Default)]
pub struct StoreNames {
    /// Every stored metric name and its metadata (declared, else inferred).
    pub metrics: BTreeMap<String, MetricMeta>,
    /// The label names the series of a metric carry. A stored metric
    /// missing here is checked against [`StoreNames::all_labels`] only.
    pub labels: BTreeMap<String, BTreeSet<String>>,
    /// Every label name of the store.
    pub all_labels: BTreeSet<String>,
}

impl StoreNames {
    /// Whether the store holds nothing to check against.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The labels `metric`'s series carry, as far as known.
    fn labels_of(&self, metric: &str) -> &BTreeSet<String> {
        self.labels.get(metric).unwrap_or(&self.all_labels)
    }

    /// Up to three stored metric names close to `name`, nearest first.
    pub fn nearest_metrics(&self, name: &str) -> Vec<&str> {
        nearest(name, self.metrics.keys().map(String::as_str))
    }
}

/// Up to three names close to `name`: by edit distance, then those equal to
/// it once `.` and `_` are one (OpenTelemetry's dotted names translated to
/// Prometheus's), or extending it with a suffix (`_total`, `_seconds_bucket`),
/// or holding it as a whole dotted or underscored part (`tool` in
/// `gen_ai.tool.name`).
pub fn nearest<'n>(name: &str, names: impl Iterator<Item = &'n str> + Clone) -> Vec<&'n str> {
    let mut out: Vec<&str> = Vec::new();
    if let Some(n) = closest(name, names.clone()) {
        out.push(n);
    }
    let flat = |s: &str| s.replace('.', "_");
    let wanted = flat(name);
    let mut related: Vec<&str> = names
        .filter(|n| {
            let f = flat(n);
            f == wanted
                || f.strip_prefix(&wanted)
                    .is_some_and(|rest| rest.starts_with('_'))
                || f.split('_').any(|part| part == wanted)
        })
        .collect();
    related.sort_by_key(|n| (n.len(), *n));
    for n in related {
        if !out.contains(&n) && n != name {
            out.push(n);
        }
    }
    out.truncate(3);
    out
}

/// "did you mean `a`?", or "did you mean `a`, `b` or `c`?".
pub fn did_you_mean(names: &[&str]) -> Option<String> {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(format!("did you mean {one}?")),
        [init @ .., last] => Some(format!("did you mean {} or {last}?", init.join(", "))),
    }
}

/// What to say when no carried label is near: the labels there are, when
/// they are few enough to read.
fn carried_help<'n>(carried: impl Iterator<Item = &'n str>) -> Option<String> {
    let all: Vec<String> = carried.map(|l| format!("`{l}`")).collect();
    match all.len() {
        0 => Some("its series carry no labels".into()),
        1..=8 => Some(format!("its series carry {}", all.join(", "))),
        _ => None,
    }
}

/// Every metric name the selectors of `sources` name (their rules, records
/// and maintenance conditions), so that a caller reads labels of those only.
pub fn selected_metrics(sources: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, src) in sources {
        let file = super::parse::parse_source(src, name).file;
        {
            for e in expressions(&file) {
                e.walk(&mut |x| {
                    if let Expr::Selector(s) = x {
                        out.insert(s.metric.name.clone());
                    }
                });
            }
        }
    }
    out
}

/// The store warnings of rule files checked together (a selector naming a
/// `record` of any of them is no stored metric). Of a file with syntax
/// errors, the blocks that parsed are linted; the errors are the checker's.
pub fn lint_sources(sources: &[(String, String)], names: &StoreNames) -> Vec<Diagnostic> {
    let files: Vec<(RuleFile, &str)> = sources
        .iter()
        .map(|(name, src)| (super::parse::parse_source(src, name).file, src.as_str()))
        .collect();
    let records: HashSet<String> = files
        .iter()
        .flat_map(|(f, _)| f.records().map(|r| r.name.name.clone()))
        .collect();
    let mut out = Vec::new();
    for (file, src) in &files {
        let idx = LineIndex::new(src);
        let mut l = Linter {
            file: &file.name,
            idx: &idx,
            names,
            records: &records,
            diags: Vec::new(),
        };
        for e in expressions(file) {
            l.expr(e);
        }
        let mut diags = l.diags;
        diags.sort_by_key(|d| (d.line, d.col));
        diags.dedup();
        out.extend(diags);
    }
    out
}

/// The store warnings of one query as `mcpops query` takes it, placed on
/// the lines of the expression as [`super::parse_query`]'s errors are.
pub fn lint_query(text: &str, names: &StoreNames) -> Vec<Diagnostic> {
    let src = format!("record query =\n{text}\n");
    let mut diags = lint_sources(&[("query".to_string(), src)], names);
    for d in &mut diags {
        d.line = d.line.saturating_sub(1).max(1);
    }
    diags
}

/// The expressions of a file that read the store: alerts (with their
/// `resolve when`), records, maintenance conditions and the guards of
/// remediation and maintenance blocks (test blocks read their own series).
fn expressions(file: &RuleFile) -> Vec<&Expr> {
    file.alerts()
        .flat_map(|a| std::iter::once(&a.when).chain(a.resolve_when.as_ref()))
        .chain(file.records().map(|r| &r.expr))
        .chain(
            file.maintenances()
                .flat_map(|m| std::iter::once(&m.when).chain(m.guard.as_ref())),
        )
        .chain(file.remediations().filter_map(|r| r.guard.as_ref()))
        .collect()
}

struct Linter<'a> {
    file: &'a str,
    idx: &'a LineIndex<'a>,
    names: &'a StoreNames,
    records: &'a HashSet<String>,
    diags: Vec<Diagnostic>,
}

impl<'a> Linter<'a> {
    fn warn(&mut self, code: Code, span: Span, message: String, help: Option<String>) {
        let mut d = self
            .idx
            .diag(self.file, code, span.start, span.end, message);
        d.help = help;
        self.diags.push(d);
    }

    /// The stored metrics the selectors under `e` name; `None` when one of
    /// them is a record or not stored, so that nothing can be said of
    /// the labels beneath.
    fn stored_under(&self, e: &Expr) -> Option<Vec<String>> {
        let mut metrics = Vec::new();
        let mut known = true;
        e.walk(&mut |x| {
            if let Expr::Selector(s) = x {
                if self.names.metrics.contains_key(&s.metric.name) {
                    metrics.push(s.metric.name.clone());
                } else {
                    known = false;
                }
            }
        });
        (known && !metrics.is_empty()).then_some(metrics)
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Selector(s) => self.selector(s),
            Expr::Call(c) => {
                self.call(c);
                if let Some(g) = &c.pool {
                    let under: Vec<&Expr> = c.args.iter().collect();
                    self.grouping(g, &under, false);
                }
            }
            Expr::Aggregate(a) => {
                self.aggregate(a);
                if let Some(g) = &a.grouping {
                    self.grouping(g, &[&a.arg], false);
                }
            }
            Expr::Binary(b) => {
                if let Some(g) = &b.on {
                    self.grouping(g, &[&b.lhs, &b.rhs], true);
                }
            }
            _ => {}
        }
        for c in e.children() {
            self.expr(c);
        }
    }

    fn selector(&mut self, s: &Selector) {
        let metric = s.metric.name.as_str();
        if self.records.contains(metric) {
            return;
        }
        if !self.names.metrics.contains_key(metric) {
            let near = self.names.nearest_metrics(metric);
            self.warn(
                Code::UnknownMetric,
                s.metric.span,
                format!("no series in the store has the metric `{metric}`"),
                did_you_mean(&near)
                    .or_else(|| Some("`mcpops metrics` lists the stored metrics".to_string())),
            );
            return;
        }
        let carried = self.names.labels_of(metric);
        for m in &s.matchers {
            if m.name == "metric" || m.name == "__name__" || carried.contains(&m.name) {
                continue;
            }
            // `l=""` and the like select series without the label: true of
            // every series, and a way of saying so.
            if m.compile().is_ok_and(|c| c.matches_missing()) {
                continue;
            }
            let near = nearest(&m.name, carried.iter().map(String::as_str));
            self.warn(
                Code::UnknownStoreLabel,
                m.span,
                format!(
                    "no series of `{metric}` carries the label `{}`: the matcher selects nothing",
                    m.name
                ),
                did_you_mean(&near).or_else(|| carried_help(carried.iter().map(String::as_str))),
            );
        }
    }

    /// `by`/`without`/`on` labels that no series of the metrics
    /// under `under` carries.
    fn grouping(&mut self, g: &Grouping, under: &[&Expr], on: bool) {
        let mut metrics = Vec::new();
        for e in under {
            match self.stored_under(e) {
                Some(m) => metrics.extend(m),
                None => return,
            }
        }
        let carried: BTreeSet<&str> = metrics
            .iter()
            .flat_map(|m| self.names.labels_of(m).iter().map(String::as_str))
            .collect();
        let keyword = match (on, g.without) {
            (true, _) => "on",
            (false, true) => "without",
            (false, false) => "by",
        };
        let shown: Vec<&str> = {
            let mut m: Vec<&str> = metrics.iter().map(String::as_str).collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        let of = shown
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for l in &g.labels {
            if carried.contains(l.name.as_str()) {
                continue;
            }
            let near = nearest(&l.name, carried.iter().copied());
            self.warn(
                Code::UnknownStoreLabel,
                l.span,
                format!(
                    "`{keyword} ({})` names `{}`, a label no series of {of} carries",
                    g.labels
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    l.name
                ),
                did_you_mean(&near).or_else(|| carried_help(carried.iter().copied())),
            );
        }
    }

    fn meta_of_range<'e>(&self, e: &'e Expr) -> Option<(&'e Selector, &'a MetricMeta)> {
        match e.unparen() {
            Expr::Selector(s) => Some((s, self.names.metrics.get(&s.metric.name)?)),
            _ => None,
        }
    }

    fn call(&mut self, c: &Call) {
        let name = c.func.name.as_str();
        if name == "histogram_quantile" {
            self.histogram_quantile(c);
            return;
        }
        let kernel = c.def.map(|d| d.kernel);
        let over_time =
            |f: &dyn Fn(TimeFunc) -> bool| matches!(kernel, Some(Kernel::OverTime(t)) if f(t));
        let counter_only = over_time(&|t| matches!(t, TimeFunc::Rate | TimeFunc::Increase))
            || matches!(name, "irate" | "resets");
        let gauge_only = over_time(&|t| matches!(t, TimeFunc::Delta | TimeFunc::Deriv));
        let quantile = over_time(&|t| matches!(t, TimeFunc::Quantile(_)))
            || matches!(kernel, Some(Kernel::QuantileAt));
        let Some((s, meta)) = c.args.iter().find_map(|a| self.meta_of_range(a)) else {
            return;
        };
        let metric = s.metric.name.as_str();
        if counter_only && meta.is_gauge() {
            self.warn(
                Code::TypeMismatch,
                c.func.span,
                format!(
                    "`{name}` of `{metric}`, a {}: `{name}` is for counters, which only grow between resets",
                    meta.kind
                ),
                Some("for a gauge use `deriv` (its slope per second) or `delta` (its change over the window)".into()),
            );
        } else if gauge_only && meta.is_cumulative() {
            self.warn(
                Code::TypeMismatch,
                c.func.span,
                format!(
                    "`{name}` of `{metric}`, a {}: a reset makes `{name}` of a counter negative",
                    meta.kind
                ),
                Some(
                    "use `rate` (per second) or `increase` (over the window), which allow for resets"
                        .into(),
                ),
            );
        } else if quantile && meta.is_bucket() {
            self.warn(
                Code::TypeMismatch,
                c.func.span,
                format!(
                    "`{name}` over `{metric}`, a histogram's bucket counters: it gives a quantile of the counts, not of what they count"
                ),
                Some(format!(
                    "did you mean `histogram_quantile`? as in `histogram_quantile(0.95, sum by (le) (rate({metric}[5m])))`"
                )),
            );
        }
    }

    fn aggregate(&mut self, a: &Aggregate) {
        if a.def.kernel != AggKernel::Quantile {
            return;
        }
        let mut bucket = None;
        a.arg.walk(&mut |x| {
            if let Expr::Selector(s) = x
                && bucket.is_none()
                && self
                    .names
                    .metrics
                    .get(&s.metric.name)
                    .is_some_and(MetricMeta::is_bucket)
            {
                bucket = Some(s.metric.name.clone());
            }
        });
        if let Some(metric) = bucket {
            self.warn(
                Code::TypeMismatch,
                a.op.span,
                format!(
                    "`quantile` across series of `{metric}`, a histogram's bucket counters: it gives a quantile of the counts, not of what they count"
                ),
                Some(format!(
                    "did you mean `histogram_quantile`? as in `histogram_quantile(0.95, sum by (le) (rate({metric}[5m])))`"
                )),
            );
        }
    }

    /// `histogram_quantile(q, buckets)` over series that are not a
    /// histogram's `_bucket` counters.
    fn histogram_quantile(&mut self, c: &Call) {
        let Some(arg) = c.args.get(1) else { return };
        let mut found: Option<(String, MetricMeta)> = None;
        arg.walk(&mut |x| {
            if let Expr::Selector(s) = x
                && found.is_none()
                && let Some(meta) = self.names.metrics.get(&s.metric.name)
                && !meta.is_bucket()
            {
                found = Some((s.metric.name.clone(), meta.clone()));
            }
        });
        let Some((metric, meta)) = found else { return };
        let bucket = format!("{}_bucket", meta.family);
        let help = if self
            .names
            .metrics
            .get(&bucket)
            .is_some_and(MetricMeta::is_bucket)
        {
            format!("did you mean its buckets, `{bucket}`?")
        } else {
            format!(
                "it needs a histogram's `_bucket` counters with their `le` label; a quantile of `{metric}` itself is `quantile(0.95, {metric}[5m])`"
            )
        };
        self.warn(
            Code::TypeMismatch,
            c.func.span,
            format!(
                "`histogram_quantile` over `{metric}`, a {}, not a histogram's `_bucket` series",
                meta.type_text()
            ),
            Some(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{MetricType, Part};

    fn names() -> StoreNames {
        let mut n = StoreNames::default();
        let meta = |kind, family: &str, part| MetricMeta::inferred(kind, family, part);
        n.metrics.insert(
            "rpc_seconds_bucket".into(),
            meta(MetricType::Histogram, "rpc_seconds", Some(Part::Bucket)),
        );
        n.metrics.insert(
            "rpc_seconds_count".into(),
            meta(MetricType::Histogram, "rpc_seconds", Some(Part::Count)),
        );
        n.metrics.insert(
            "mem_bytes".into(),
            meta(MetricType::Gauge, "mem_bytes", None),
        );
        n.all_labels = ["instance", "le", "gen_ai.tool.name"]
            .map(String::from)
            .into();
        n
    }

    #[test]
    fn histogram_quantile_wants_buckets() {
        // Matched by name: the registry entry may not exist yet, and a call
        // of an unknown function still parses into the tree.
        let d = lint_query(
            "histogram_quantile(0.9, rate(rpc_seconds_count[5m]))",
            &names(),
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::TypeMismatch);
        assert_eq!(
            d[0].help.as_deref(),
            Some("did you mean its buckets, `rpc_seconds_bucket`?")
        );
        let ok = lint_query(
            "histogram_quantile(0.9, rate(rpc_seconds_bucket[5m]))",
            &names(),
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn records_and_empty_matchers_are_not_warned_about() {
        let src = "record r = deriv(mem_bytes[5m])\nalert A {\n  when r{x=\"\"} > 1 and mem_bytes{job=\"\"} > 1\n  for 5m\n}\n";
        let d = lint_sources(&[("a.rules".into(), src.into())], &names());
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn nearest_names_reach_across_conventions() {
        let labels = ["instance", "gen_ai.tool.name", "mcp.method.name"];
        assert_eq!(
            nearest("tool", labels.iter().copied()),
            ["gen_ai.tool.name"]
        );
        assert_eq!(nearest("instanse", labels.iter().copied()), ["instance"]);
        let metrics = ["process_cpu_seconds_total", "up"];
        assert_eq!(
            nearest("process.cpu.seconds", metrics.iter().copied()),
            ["process_cpu_seconds_total"]
        );
        assert!(nearest("zzz", metrics.iter().copied()).is_empty());
        assert_eq!(
            did_you_mean(&["a", "b", "c"]).as_deref(),
            Some("did you mean `a`, `b` or `c`?")
        );
    }
}
