//! The data model every room shares: a series is a metric name plus a sorted
//! label set; a sample is (series, timestamp in ms UTC, f64 value). Label
//! matchers live here too, because the store prunes with the same matchers
//! the rule language writes.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Column names a segment uses for itself; a label may not take them.
pub const RESERVED_COLUMNS: [&str; 4] = ["metric", "timestamp", "value", "day"];

/// A float as Prometheus writes it in its HTTP API's sample values, in `le`
/// and `quantile` labels and in its own exposition: Go's shortest `'f'`
/// form, which Rust's `{}` of an `f64` matches (no exponent: `0.00000015`,
/// `1000000000000000000000`), and `NaN`, `+Inf`, `-Inf`. Not the export's
/// form, which must parse back to the same bits (`store::frame::value_text`).
pub fn prom_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Whether a label named `name` would take one of [`RESERVED_COLUMNS`].
/// Compared without regard to ASCII case, as DuckDB matches column names
/// and the hive `day=` partition: a `Value` or `DAY` label breaks its reads
/// of the whole store just as `value` would.
pub fn is_reserved_column(name: &str) -> bool {
    RESERVED_COLUMNS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// One series: metric name and labels sorted by name. Empty label values are
/// dropped, since a missing label and an empty one mean the same (as in Prometheus).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(metric: impl Into<String>, mut labels: Vec<(String, String)>) -> Self {
        labels.retain(|(_, v)| !v.is_empty());
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.dedup_by(|later, earlier| later.0 == earlier.0);
        SeriesKey {
            metric: metric.into(),
            labels,
        }
    }

    /// The value of a label, `None` when the series lacks it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].1.as_str())
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(
                    f,
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\").replace('"', "\\\"")
                )?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// How a matcher compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// A label matcher such as `server=~"edge-.*"`. Regexes are anchored, as in
/// Prometheus. A missing label matches as the empty string.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher; fails only when a regex does not compile.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Regex::new(&format!("^(?:{value})$"))?),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Parses `name=value`, `name!=value`, `name=~re` or `name!~re` (the value
    /// optionally in double quotes), as given on the command line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (pos, op, len) = ["!=", "=~", "!~", "="]
            .iter()
            .filter_map(|sym| text.find(sym).map(|p| (p, *sym)))
            .min_by_key(|(p, sym)| (*p, std::cmp::Reverse(sym.len())))
            .map(|(p, sym)| {
                let op = match sym {
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => MatchOp::Equal,
                };
                (p, op, sym.len())
            })
            .ok_or_else(|| format!("`{text}` is not a label matcher such as server=\"a\""))?;
        let name = text[..pos].trim();
        if name.is_empty() {
            return Err(format!(
                "`{text}` has no label name before `{}`",
                op.symbol()
            ));
        }
        let raw = text[pos + len..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        Matcher::new(name, op, value).map_err(|e| format!("bad regex in `{text}`: {e}"))
    }

    /// Whether a label value (None when the series lacks the label) matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether this matcher accepts a series that lacks the label.
    pub fn matches_missing(&self) -> bool {
        self.matches(None)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.symbol(), self.value)
    }
}

/// Whether every matcher accepts the series. A matcher named `metric` or
/// `__name__` tests the metric name.
pub fn series_matches(key: &SeriesKey, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| {
        if m.name == "__name__" || m.name == "metric" {
            m.matches(Some(&key.metric))
        } else {
            m.matches(key.label(&m.name))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_key_sorts_and_drops_empty_labels() {
        let k = SeriesKey::new(
            "m",
            vec![
                ("b".into(), "2".into()),
                ("a".into(), "1".into()),
                ("c".into(), "".into()),
            ],
        );
        assert_eq!(
            k.labels,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(k.label("b"), Some("2"));
        assert_eq!(k.label("c"), None);
        assert_eq!(k.to_string(), "m{a=\"1\", b=\"2\"}");
    }

    #[test]
    fn reserved_columns_ignore_case() {
        for name in ["metric", "Value", "DAY", "TimeStamp", "mEtRiC"] {
            assert!(is_reserved_column(name), "{name}");
        }
        for name in ["values", "days", "server", "", "metric_name", "__name__"] {
            assert!(!is_reserved_column(name), "{name}");
        }
    }

    #[test]
    fn matchers_follow_prometheus() {
        let k = SeriesKey::new("m", vec![("server".into(), "edge-1".into())]);
        let m = |s| Matcher::parse(s).unwrap();
        assert!(series_matches(&k, &[m("server=~\"edge-.*\"")]));
        assert!(!series_matches(&k, &[m("server=~\"edge\"")]), "anchored");
        assert!(series_matches(&k, &[m("tool=\"\"")]), "missing is empty");
        assert!(!series_matches(&k, &[m("tool!=\"\"")]));
        assert!(series_matches(&k, &[m("server!~db.*")]));
        assert!(series_matches(&k, &[m("metric=m")]));
        assert!(Matcher::parse("server=~\"(\"").is_err());
        assert!(Matcher::parse("noop").is_err());
        assert_eq!(m("a!=b").op, MatchOp::NotEqual);
    }
}

/// Prometheus's staleness marker: a NaN with this exact bit pattern ends a
/// series (a scrape that no longer has it, a failed scrape, an OTLP point
/// flagged `NoRecordedValue`). The store keeps it bit for bit.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Where parsed samples go. The store's writer is one; tests use [`MemorySink`].
/// A parser interns each distinct series once and then pushes samples by id,
/// so label sets are parsed and hashed once per series, not once per line.
pub trait SampleSink {
    /// The id of a series, allocating one on first sight.
    fn intern(&mut self, key: SeriesKey) -> u32;
    /// Adds one sample of an interned series.
    fn push(&mut self, series: u32, timestamp_ms: i64, value: f64) -> Result<(), SinkError>;
    /// Label names the sink already holds (a store's label columns), so that
    /// an ingest can refuse a name differing from one of them only in case.
    fn label_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Records what a metric name is (its type, unit, help), declared by the
    /// input; a sink that keeps no metadata ignores it.
    fn describe(&mut self, _metric: &str, _meta: crate::metadata::MetricMeta) {}
    /// The declared metadata the sink already holds (a store's), so that an
    /// ingest can warn when a file declares a metric otherwise.
    fn declared(&self) -> std::collections::BTreeMap<String, crate::metadata::MetricMeta> {
        std::collections::BTreeMap::new()
    }
}

/// A sink failed to take a sample (the store could not spill a segment, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Collects samples in memory: for tests and small tools.
#[derive(Default, Debug, Clone)]
pub struct MemorySink {
    pub series: Vec<SeriesKey>,
    index: foldhash::HashMap<SeriesKey, u32>,
    /// (series id, timestamp ms, value) in arrival order.
    pub samples: Vec<(u32, i64, f64)>,
    /// What the input declared of each metric name, the last declaration winning.
    pub metadata: std::collections::BTreeMap<String, crate::metadata::MetricMeta>,
}

impl MemorySink {
    /// Samples with their series keys resolved, in arrival order.
    pub fn resolved(&self) -> Vec<(&SeriesKey, i64, f64)> {
        self.samples
            .iter()
            .map(|&(s, t, v)| (&self.series[s as usize], t, v))
            .collect()
    }
}

impl SampleSink for MemorySink {
    fn intern(&mut self, key: SeriesKey) -> u32 {
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(key.clone());
        self.index.insert(key, id);
        id
    }

    fn push(&mut self, series: u32, timestamp_ms: i64, value: f64) -> Result<(), SinkError> {
        self.samples.push((series, timestamp_ms, value));
        Ok(())
    }

    fn describe(&mut self, metric: &str, meta: crate::metadata::MetricMeta) {
        self.metadata.insert(metric.to_string(), meta);
    }

    fn declared(&self) -> std::collections::BTreeMap<String, crate::metadata::MetricMeta> {
        self.metadata.clone()
    }

    fn label_names(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<&String> = self
            .series
            .iter()
            .flat_map(|k| k.labels.iter().map(|(n, _)| n))
            .collect();
        names.into_iter().cloned().collect()
    }
}
