//! Metric metadata: what kind of series a stored metric name holds (a
//! counter, a gauge, a part of a histogram...), its unit and help, and
//! whether that was declared (`# TYPE`, `# UNIT`, `# HELP` lines, or the
//! input format itself) or inferred from Prometheus's naming conventions.
//!
//! It is shared because three rooms need it: `ingest` reads declarations,
//! `store` keeps one [`MetricMeta`] per stored metric name in its manifest,
//! and `dsl` warns when a function is applied to the wrong kind of series.
//! Metadata is kept per *stored sample name*: a histogram family `x` covers
//! `x_bucket`, `x_sum`, `x_count` and `x_created`, each with `family: x`
//! and its [`Part`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a metric family, as Prometheus and OpenMetrics name them,
/// plus [`MetricType::Event`] for samples that are each one event (an MCP
/// call and its duration), which neither format has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// Prometheus's `untyped`, OpenMetrics' `unknown`, and every name the
    /// conventions say nothing about.
    Untyped,
    /// One sample per event, its value a measurement of it (the MCP call
    /// metric of JSON lines: one sample per call, its duration).
    Event,
}

impl MetricType {
    /// Every type, in the order tables list them.
    pub const ALL: [MetricType; 9] = [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
        MetricType::Summary,
        MetricType::Info,
        MetricType::StateSet,
        MetricType::Untyped,
        MetricType::Event,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Untyped => "untyped",
            MetricType::Event => "event",
        }
    }

    /// The type a `# TYPE` line names (`unknown` is OpenMetrics' `untyped`).
    pub fn parse(text: &str) -> Option<MetricType> {
        match text {
            "unknown" => Some(MetricType::Untyped),
            other => MetricType::ALL
                .into_iter()
                .find(|t| t.name() == other && *t != MetricType::Event),
        }
    }

    /// The sample names a family of this type is written as: the suffix
    /// each adds to the family name and the part it is.
    pub fn parts(self) -> &'static [(&'static str, Option<Part>)] {
        match self {
            // Prometheus text writes a counter under its own name (often
            // already ending in `_total`); OpenMetrics adds `_total`.
            MetricType::Counter => &[
                ("", None),
                ("_total", Some(Part::Total)),
                ("_created", Some(Part::Created)),
            ],
            MetricType::Histogram => &[
                ("_bucket", Some(Part::Bucket)),
                ("_sum", Some(Part::Sum)),
                ("_count", Some(Part::Count)),
                ("_created", Some(Part::Created)),
            ],
            MetricType::GaugeHistogram => &[
                ("_bucket", Some(Part::Bucket)),
                ("_gsum", Some(Part::Gsum)),
                ("_gcount", Some(Part::Gcount)),
            ],
            MetricType::Summary => &[
                ("", None),
                ("_sum", Some(Part::Sum)),
                ("_count", Some(Part::Count)),
                ("_created", Some(Part::Created)),
            ],
            MetricType::Info => &[("", None), ("_info", Some(Part::Info))],
            _ => &[("", None)],
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which sample of a family a stored name is; `None` in a [`MetricMeta`]
/// means the family's own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Total,
    Bucket,
    Sum,
    Count,
    Created,
    Gsum,
    Gcount,
    Info,
}

impl Part {
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Total => "_total",
            Part::Bucket => "_bucket",
            Part::Sum => "_sum",
            Part::Count => "_count",
            Part::Created => "_created",
            Part::Gsum => "_gsum",
            Part::Gcount => "_gcount",
            Part::Info => "_info",
        }
    }
}

/// Where a metric's type came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeSource {
    /// A `# TYPE` line, or the input format (JSON-lines MCP calls).
    Declared,
    /// The naming conventions ([`infer`]).
    Inferred,
}

impl TypeSource {
    pub fn name(self) -> &'static str {
        match self {
            TypeSource::Declared => "declared",
            TypeSource::Inferred => "inferred",
        }
    }
}

/// What is known of one stored metric name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMeta {
    /// The family's type.
    #[serde(rename = "type")]
    pub kind: MetricType,
    pub source: TypeSource,
    /// The family the name belongs to (the name itself for a plain gauge).
    pub family: String,
    /// Which sample of the family the name is; `None` for the family's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// `FILE:LINE` of the declaration, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_at: Option<String>,
}

impl MetricMeta {
    /// Metadata inferred for `name`: no unit, help or declaration.
    pub fn inferred(kind: MetricType, family: &str, part: Option<Part>) -> MetricMeta {
        MetricMeta {
            kind,
            source: TypeSource::Inferred,
            family: family.to_string(),
            part,
            unit: None,
            help: None,
            declared_at: None,
        }
    }

    /// Whether the samples only grow between resets, so that `rate`,
    /// `increase` and `resets` apply: counters, and the buckets, sums and
    /// counts of histograms and summaries (not their `_created` times).
    pub fn is_cumulative(&self) -> bool {
        match self.kind {
            MetricType::Counter => !matches!(self.part, Some(Part::Created)),
            MetricType::Histogram | MetricType::Summary => {
                matches!(self.part, Some(Part::Bucket | Part::Sum | Part::Count))
            }
            _ => false,
        }
    }

    /// Whether the samples are a level that goes up and down: gauges, gauge
    /// histograms, and `_created` timestamps. Untyped and event series are
    /// neither this nor cumulative: nothing is said of them.
    pub fn is_gauge(&self) -> bool {
        matches!(self.kind, MetricType::Gauge | MetricType::GaugeHistogram)
            || matches!(self.part, Some(Part::Created))
    }

    /// Whether the name is a classic histogram's bucket counter (`le` labels).
    pub fn is_bucket(&self) -> bool {
        matches!(self.part, Some(Part::Bucket))
    }

    /// The type as a table shows it: `histogram (bucket)` for a part.
    pub fn type_text(&self) -> String {
        match self.part {
            None => self.kind.name().to_string(),
            Some(p) => format!("{} ({})", self.kind, &p.suffix()[1..]),
        }
    }
}

/// The family of a sample `name` under a family of type `kind` named
/// `family`: the part `name` is, when `name` is one of its samples.
pub fn part_in_family(name: &str, family: &str, kind: MetricType) -> Option<Option<Part>> {
    let suffix = name.strip_prefix(family)?;
    kind.parts()
        .iter()
        .find(|(s, _)| *s == suffix)
        .map(|&(_, part)| part)
}

/// Infers a stored name's metadata from Prometheus's naming conventions:
/// `_total` is a counter; `_bucket` with an `le` label a histogram's
/// buckets, and `_count`/`_sum` beside such a `_bucket` its count and sum;
/// `_created` a created timestamp (of the counter or histogram beside it);
/// the MCP call metric an [`MetricType::Event`]; anything else untyped.
/// `has_le`: whether the name's series carry an `le` label; `exists`:
/// whether another stored name exists (for the siblings).
pub fn infer(name: &str, has_le: bool, exists: &dyn Fn(&str) -> bool) -> MetricMeta {
    use MetricType::*;
    if name == crate::names::CALL_METRIC {
        return MetricMeta::inferred(Event, name, None);
    }
    if let Some(stem) = name.strip_suffix("_total") {
        return MetricMeta::inferred(Counter, stem, Some(Part::Total));
    }
    if let Some(stem) = name.strip_suffix("_bucket")
        && has_le
    {
        return MetricMeta::inferred(Histogram, stem, Some(Part::Bucket));
    }
    for part in [Part::Count, Part::Sum] {
        if let Some(stem) = name.strip_suffix(part.suffix())
            && exists(&format!("{stem}_bucket"))
        {
            return MetricMeta::inferred(Histogram, stem, Some(part));
        }
    }
    if let Some(stem) = name.strip_suffix("_created") {
        let kind = if exists(&format!("{stem}_bucket")) {
            Histogram
        } else if exists(&format!("{stem}_total")) {
            Counter
        } else {
            Untyped
        };
        return MetricMeta::inferred(kind, stem, Some(Part::Created));
    }
    MetricMeta::inferred(Untyped, name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_infer_by_convention() {
        let names = ["rpc_seconds_bucket", "rpc_seconds_count", "x_total"];
        let exists = |n: &str| names.contains(&n);
        let t = |name: &str, le: bool| {
            let m = infer(name, le, &exists);
            (m.kind, m.family, m.part)
        };
        use MetricType::*;
        assert_eq!(
            t("rpc_seconds_bucket", true),
            (Histogram, "rpc_seconds".into(), Some(Part::Bucket))
        );
        assert_eq!(
            t("rpc_seconds_bucket", false),
            (Untyped, "rpc_seconds_bucket".into(), None),
            "a `_bucket` without `le` is no histogram"
        );
        assert_eq!(
            t("rpc_seconds_count", false),
            (Histogram, "rpc_seconds".into(), Some(Part::Count))
        );
        assert_eq!(
            t("rpc_seconds_sum", false),
            (Histogram, "rpc_seconds".into(), Some(Part::Sum))
        );
        assert_eq!(
            t("other_count", false),
            (Untyped, "other_count".into(), None),
            "no `_bucket` beside it"
        );
        assert_eq!(
            t("x_total", false),
            (Counter, "x".into(), Some(Part::Total))
        );
        assert_eq!(
            t("x_created", false),
            (Counter, "x".into(), Some(Part::Created))
        );
        assert_eq!(
            t("y_created", false),
            (Untyped, "y".into(), Some(Part::Created))
        );
        assert_eq!(t(crate::names::CALL_METRIC, false).0, Event);
        assert_eq!(t("process_resident_memory_bytes", false).0, Untyped);
        assert_eq!(
            infer("x_total", false, &exists).source,
            TypeSource::Inferred
        );
    }

    #[test]
    fn kinds_say_what_rate_applies_to() {
        let m = |kind, part| MetricMeta::inferred(kind, "f", part);
        assert!(m(MetricType::Counter, Some(Part::Total)).is_cumulative());
        assert!(m(MetricType::Counter, None).is_cumulative());
        assert!(!m(MetricType::Counter, Some(Part::Created)).is_cumulative());
        assert!(m(MetricType::Counter, Some(Part::Created)).is_gauge());
        assert!(m(MetricType::Histogram, Some(Part::Bucket)).is_cumulative());
        assert!(m(MetricType::Histogram, Some(Part::Bucket)).is_bucket());
        assert!(!m(MetricType::GaugeHistogram, Some(Part::Bucket)).is_cumulative());
        assert!(m(MetricType::Gauge, None).is_gauge());
        let u = m(MetricType::Untyped, None);
        assert!(!u.is_gauge() && !u.is_cumulative());
        assert_eq!(
            m(MetricType::Histogram, Some(Part::Bucket)).type_text(),
            "histogram (bucket)"
        );
    }

    #[test]
    fn type_lines_parse_and_parts_match() {
        assert_eq!(MetricType::parse("unknown"), Some(MetricType::Untyped));
        assert_eq!(MetricType::parse("untyped"), Some(MetricType::Untyped));
        assert_eq!(
            MetricType::parse("gaugehistogram"),
            Some(MetricType::GaugeHistogram)
        );
        assert_eq!(
            MetricType::parse("event"),
            None,
            "not a TYPE of either format"
        );
        assert_eq!(MetricType::parse("countr"), None);
        assert_eq!(
            part_in_family("h_bucket", "h", MetricType::Histogram),
            Some(Some(Part::Bucket))
        );
        assert_eq!(part_in_family("h", "h", MetricType::Histogram), None);
        assert_eq!(
            part_in_family("c_total", "c", MetricType::Counter),
            Some(Some(Part::Total))
        );
        assert_eq!(part_in_family("c", "c", MetricType::Counter), Some(None));
        assert_eq!(
            part_in_family("s_sum", "s", MetricType::Summary),
            Some(Some(Part::Sum))
        );
        assert_eq!(part_in_family("g_sum", "g", MetricType::Gauge), None);
    }
}
