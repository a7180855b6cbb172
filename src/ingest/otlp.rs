//! OTLP, the OpenTelemetry protocol: traces and metrics, as protobuf or as
//! OTLP/JSON, into any [`SampleSink`]. `mcpops watch` decodes the bodies of
//! `/v1/traces` and `/v1/metrics` with it; `mcpops ingest` reads files the
//! OpenTelemetry Collector's file exporter writes (`.otlp.jsonl`,
//! `.otlp.json`: one request per line; `.otlp.pb`: requests each preceded
//! by its length, 4 bytes big-endian).
//!
//! - **Spans** of MCP servers (kind `SERVER` with an `mcp.method.name`
//!   attribute) become one sample of `mcp.server.operation.duration` each,
//!   exactly as a JSON-lines MCP call does: the duration in seconds at the
//!   span's start, labelled with the OpenTelemetry attribute names
//!   `mcp.method.name`, `gen_ai.tool.name`, `error.type`, `mcp.session.id`,
//!   `network.transport`, and `server` (the resource's `service.name`).
//!   Spans of MCP clients (kind `CLIENT`) become
//!   `mcp.client.operation.duration` samples alike. A span that failed
//!   without an `error.type` (status `ERROR`) gets `error.type="_OTHER"`, as
//!   the conventions say. Other spans are counted and not stored.
//! - **Metrics** as Prometheus's own OTLP receiver translates them with its
//!   default `UnderscoreEscapingWithSuffixes`: names and attribute names
//!   escaped to `[a-zA-Z0-9_:]`, the unit and `_total` added; histograms to
//!   cumulative `_bucket{le}` (with `+Inf`), `_sum`, `_count`; monotonic
//!   cumulative sums to counters; other sums and gauges to gauges; summaries
//!   to `{quantile}`, `_sum`, `_count`; exponential histograms and delta
//!   temporality are rejected points, as Prometheus rejects them without
//!   feature flags. A point flagged `NoRecordedValue` becomes a staleness
//!   marker.
//! - **Resources** as Prometheus maps them: `service.namespace/service.name`
//!   to `job`, `service.instance.id` to `instance`, and the other resource
//!   attributes onto one `target_info` series per resource.
//!
//! A point or span that cannot be stored (no timestamp, a time outside the
//! years 0 to 9999, an attribute named like a store column, a label value
//! over [`MAX_LABEL_VALUE`] bytes) is rejected and counted in [`Outcome`],
//! with the first reasons; the rest of the request is stored.

use super::{Fail, IngestError, Run, check_label_name, for_each_line};
use crate::metadata::{MetricMeta, MetricType, Part, TypeSource};
use crate::model::{SampleSink, SeriesKey, SinkError, prom_float};
use crate::names::{
    CALL_METRIC, ERROR_LABEL, METHOD_LABEL, SERVER_LABEL, SESSION_LABEL, TOOL_LABEL,
    TRANSPORT_LABEL,
};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, NumberDataPoint, SummaryDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;

use crate::names::CLIENT_CALL_METRIC;

// A point flagged `NoRecordedValue` is stored as the staleness marker.
pub use crate::model::STALE_NAN_BITS;

/// The longest label value stored, in bytes: a span or point with a longer
/// attribute that would become a label is rejected rather than stored as a
/// column value of megabytes.
pub const MAX_LABEL_VALUE: usize = 16 * 1024;

/// How many rejection reasons an [`Outcome`] keeps.
pub const MAX_REASONS_KEPT: usize = 5;

/// The error type of a span that failed and says no more (status `ERROR`
/// without `error.type`), as OpenTelemetry's conventions write it.
pub const OTHER_ERROR: &str = "_OTHER";

/// How a request's body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: OTLP/JSON (camelCase fields, hex ids, 64-bit
    /// integers as strings or numbers, enums as integers).
    Json,
}

/// A body that is not the request it should be.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("not an OTLP {what} request in protobuf: {source}")]
    Protobuf {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("not an OTLP {what} request in JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// What decoding one or more requests did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Spans received.
    pub spans: u64,
    /// Spans stored as MCP calls (server or client).
    pub calls: u64,
    /// Spans that are not MCP calls, or repeat a span of the same request:
    /// accepted, not stored.
    pub skipped_spans: u64,
    /// Spans that are MCP calls but could not be stored.
    pub rejected_spans: u64,
    /// Metric data points received.
    pub points: u64,
    /// Data points that could not be stored.
    pub rejected_points: u64,
    /// Samples handed to the sink.
    pub samples: u64,
    /// The first [`MAX_REASONS_KEPT`] reasons for rejections.
    pub reasons: Vec<String>,
}

impl Outcome {
    fn reject_span(&mut self, reason: impl FnOnce() -> String) {
        self.rejected_spans += 1;
        self.reason(reason);
    }

    fn reject_points(&mut self, n: u64, reason: impl FnOnce() -> String) {
        self.rejected_points += n;
        self.reason(reason);
    }

    fn reason(&mut self, reason: impl FnOnce() -> String) {
        if self.reasons.len() < MAX_REASONS_KEPT {
            self.reasons.push(reason());
        }
    }

    /// The reasons as one message (`partial_success.error_message`).
    pub fn message(&self) -> String {
        let mut text = self.reasons.join("; ");
        let shown = self.reasons.len() as u64;
        let total = self.rejected_spans + self.rejected_points;
        if total > shown && shown > 0 {
            let _ = write!(text, " (and {} more)", total - shown);
        }
        text
    }

    /// Adds another outcome's counts (a file of many requests).
    pub fn add(&mut self, other: &Outcome) {
        self.spans += other.spans;
        self.calls += other.calls;
        self.skipped_spans += other.skipped_spans;
        self.rejected_spans += other.rejected_spans;
        self.points += other.points;
        self.rejected_points += other.rejected_points;
        self.samples += other.samples;
        for r in &other.reasons {
            if self.reasons.len() < MAX_REASONS_KEPT {
                self.reasons.push(r.clone());
            }
        }
    }
}

/// Decodes an `ExportTraceServiceRequest`.
pub fn decode_traces(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    const WHAT: &str = "trace";
    match encoding {
        Encoding::Protobuf => prost::Message::decode(body)
            .map_err(|source| OtlpError::Protobuf { what: WHAT, source }),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|source| OtlpError::Json { what: WHAT, source })
        }
    }
}

/// Decodes an `ExportMetricsServiceRequest`.
pub fn decode_metrics(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    const WHAT: &str = "metrics";
    let json = |source| OtlpError::Json { what: WHAT, source };
    match encoding {
        Encoding::Protobuf => prost::Message::decode(body)
            .map_err(|source| OtlpError::Protobuf { what: WHAT, source }),
        Encoding::Json => {
            let mut tree: serde_json::Value = serde_json::from_slice(body).map_err(json)?;
            let fixes = take_special_floats(&mut tree);
            let mut request: ExportMetricsServiceRequest =
                serde_json::from_value(tree).map_err(json)?;
            put_special_floats(&mut request, &fixes);
            Ok(request)
        }
    }
}

/// Where a float written as a string sits in a metrics request: the
/// resource, scope, metric and point, and which field (`None`: the value
/// or `sum`; `Some(i)`: bound `i`; the field name for `min`/`max`).
type FloatFix = ([usize; 4], &'static str, Option<usize>, f64);

/// OTLP/JSON writes NaN and the infinities (and may write any double) as
/// strings, which the `opentelemetry-proto` crate reads only in summary
/// quantiles: elsewhere a string `asDouble` silently becomes a point
/// without a value and a string `sum` fails the whole request. Such strings
/// are taken out of the tree here (replaced by 0) and put back into the
/// decoded request by [`put_special_floats`], by position.
fn take_special_floats(tree: &mut serde_json::Value) -> Vec<FloatFix> {
    use serde_json::Value;
    fn parse(v: &Value) -> Option<f64> {
        match v.as_str()? {
            "NaN" => Some(f64::NAN),
            "Infinity" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.trim().parse().ok(),
        }
    }
    fn arr<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
        v.get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
    }
    let mut fixes = Vec::new();
    for (i, rm) in arr(tree, "resourceMetrics").enumerate() {
        for (j, sm) in arr(rm, "scopeMetrics").enumerate() {
            for (k, m) in arr(sm, "metrics").enumerate() {
                let Some(obj) = m.as_object_mut() else {
                    continue;
                };
                for (kind, data) in obj.iter_mut() {
                    let fields: &[&'static str] = match kind.as_str() {
                        "gauge" | "sum" => &["asDouble"],
                        "histogram" | "exponentialHistogram" => {
                            &["sum", "min", "max", "zeroThreshold"]
                        }
                        "summary" => &["sum"],
                        _ => continue,
                    };
                    for (l, point) in arr(data, "dataPoints").enumerate() {
                        for &field in fields {
                            if let Some(v) = point.get_mut(field)
                                && let Some(f) = parse(v)
                            {
                                *v = Value::from(0.0);
                                fixes.push(([i, j, k, l], field, None, f));
                            }
                        }
                        for (b, bound) in arr(point, "explicitBounds").enumerate() {
                            if let Some(f) = parse(bound) {
                                *bound = Value::from(0.0);
                                fixes.push(([i, j, k, l], "explicitBounds", Some(b), f));
                            }
                        }
                    }
                }
            }
        }
    }
    fixes
}

/// Puts the floats [`take_special_floats`] took back where they were.
fn put_special_floats(request: &mut ExportMetricsServiceRequest, fixes: &[FloatFix]) {
    use metric::Data;
    for &([i, j, k, l], field, index, f) in fixes {
        let Some(m) = request
            .resource_metrics
            .get_mut(i)
            .and_then(|rm| rm.scope_metrics.get_mut(j))
            .and_then(|sm| sm.metrics.get_mut(k))
        else {
            continue;
        };
        match (&mut m.data, field) {
            (Some(Data::Gauge(g)), _) => {
                if let Some(p) = g.data_points.get_mut(l) {
                    p.value = Some(number_data_point::Value::AsDouble(f));
                }
            }
            (Some(Data::Sum(s)), _) => {
                if let Some(p) = s.data_points.get_mut(l) {
                    p.value = Some(number_data_point::Value::AsDouble(f));
                }
            }
            (Some(Data::Histogram(h)), _) => {
                if let Some(p) = h.data_points.get_mut(l) {
                    match (field, index) {
                        ("explicitBounds", Some(b)) => {
                            if let Some(x) = p.explicit_bounds.get_mut(b) {
                                *x = f;
                            }
                        }
                        ("sum", _) => p.sum = Some(f),
                        ("min", _) => p.min = Some(f),
                        ("max", _) => p.max = Some(f),
                        _ => {}
                    }
                }
            }
            (Some(Data::Summary(s)), "sum") => {
                if let Some(p) = s.data_points.get_mut(l) {
                    p.sum = f;
                }
            }
            // Exponential histograms are rejected whatever their values.
            _ => {}
        }
    }
}

/// What JSON lines and OTLP declare of a call metric: one sample per call.
fn call_metadata(metric: &str, help: &str, at: &str) -> MetricMeta {
    MetricMeta {
        kind: MetricType::Event,
        source: TypeSource::Declared,
        family: metric.to_string(),
        part: None,
        unit: Some("seconds".to_string()),
        help: Some(help.to_string()),
        declared_at: Some(at.to_string()),
    }
}

/// An attribute's value as label text: strings as they are, numbers and
/// booleans as Prometheus's receiver writes them, arrays and maps as JSON.
fn value_text(value: &AnyValue, out: &mut String) {
    use any_value::Value;
    match &value.value {
        // A string-table index only means something in profiles.
        None | Some(Value::StringValueStrindex(_)) => {}
        Some(Value::StringValue(s)) => out.push_str(s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => out.push_str(&prom_float(*d)),
        Some(Value::BytesValue(b)) => {
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(v, out);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, pair) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", serde_json::Value::from(pair.key.as_str()));
                match &pair.value {
                    Some(v) => json_value(v, out),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
    }
}

/// An attribute value inside an array or map, as JSON.
fn json_value(value: &AnyValue, out: &mut String) {
    use any_value::Value;
    match &value.value {
        Some(Value::StringValue(s)) => {
            let _ = write!(out, "{}", serde_json::Value::from(s.as_str()));
        }
        Some(Value::BytesValue(_)) => {
            let mut hex = String::new();
            value_text(value, &mut hex);
            let _ = write!(out, "{}", serde_json::Value::from(hex));
        }
        Some(Value::DoubleValue(d)) if !d.is_finite() => {
            let _ = write!(out, "\"{}\"", prom_float(*d));
        }
        None => out.push_str("null"),
        _ => value_text(value, out),
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn attr_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attr(attrs, key)?;
    let mut s = String::new();
    value_text(v, &mut s);
    (!s.is_empty()).then_some(s)
}

/// What a resource says of where its telemetry comes from.
struct Origin {
    /// `job` and `instance`, as Prometheus's receiver sets them.
    ids: Vec<(String, String)>,
    /// `service.name`: the `server` label of call samples.
    service: Option<String>,
}

impl Origin {
    fn of(resource: Option<&Resource>) -> Origin {
        let attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let service = attr_text(attrs, "service.name");
        let mut ids = Vec::new();
        if let Some(name) = &service {
            let job = match attr_text(attrs, "service.namespace") {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            };
            ids.push(("job".to_string(), job));
        }
        if let Some(instance) = attr_text(attrs, "service.instance.id") {
            ids.push(("instance".to_string(), instance));
        }
        Origin { ids, service }
    }
}

/// A span's start or a point's time: nanoseconds to the millisecond the
/// store keeps, else why not.
fn stored_ms(ns: u64, what: &str) -> Result<i64, String> {
    if ns == 0 {
        return Err(format!("{what} has no time (0)"));
    }
    let ms = (ns / 1_000_000) as i64;
    crate::time::check_stored_range(ms).map_err(|m| format!("{what}: {m}"))
}

/// Writes the MCP calls among a request's spans into `sink`. `at` is what
/// the call metric's declaration names as its source (a file and line, or
/// the receiver's path).
pub fn traces_into(
    request: &ExportTraceServiceRequest,
    sink: &mut dyn SampleSink,
    at: &str,
    outcome: &mut Outcome,
) -> Result<(), SinkError> {
    // A retried export repeats spans; within one request they are dropped
    // here, across requests the store keeps one sample per series and time.
    let mut seen: HashSet<(&[u8], &[u8])> = HashSet::new();
    let mut described = [false, false];
    let mut ids: HashMap<SeriesKey, u32> = HashMap::new();
    // The store keeps one sample per series and millisecond; two calls of
    // one series that start in the same millisecond (a fast tool called in
    // a loop) would count as one. Within a request, a later one moves to the
    // next free millisecond, the same way on a retry, so each is counted.
    let mut taken: HashSet<(u32, i64)> = HashSet::new();
    for rs in &request.resource_spans {
        let origin = Origin::of(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                outcome.spans += 1;
                let (metric, side) = match SpanKind::try_from(span.kind) {
                    Ok(SpanKind::Server) => (CALL_METRIC, 0),
                    Ok(SpanKind::Client) => (CLIENT_CALL_METRIC, 1),
                    _ => {
                        outcome.skipped_spans += 1;
                        continue;
                    }
                };
                let Some(method) = attr_text(&span.attributes, METHOD_LABEL) else {
                    outcome.skipped_spans += 1;
                    continue;
                };
                if !span.span_id.is_empty()
                    && !seen.insert((span.trace_id.as_slice(), span.span_id.as_slice()))
                {
                    outcome.skipped_spans += 1;
                    continue;
                }
                let name = || {
                    format!(
                        "span {} ({})",
                        hex(&span.span_id),
                        super::show_str(&span.name)
                    )
                };
                let ts = match stored_ms(span.start_time_unix_nano, "its start") {
                    Ok(ts) => ts,
                    Err(m) => {
                        outcome.reject_span(|| format!("{}: {m}", name()));
                        continue;
                    }
                };
                if span.end_time_unix_nano < span.start_time_unix_nano {
                    outcome.reject_span(|| format!("{}: ends before it starts", name()));
                    continue;
                }
                let seconds = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9;
                let failed = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == StatusCode::Error as i32);
                let error = attr_text(&span.attributes, ERROR_LABEL)
                    .or_else(|| failed.then(|| OTHER_ERROR.to_string()));
                let mut labels: Vec<(String, String)> = Vec::with_capacity(8);
                labels.push((METHOD_LABEL.to_string(), method));
                for key in [TOOL_LABEL, SESSION_LABEL, TRANSPORT_LABEL] {
                    if let Some(v) = attr_text(&span.attributes, key) {
                        labels.push((key.to_string(), v));
                    }
                }
                if let Some(e) = error {
                    labels.push((ERROR_LABEL.to_string(), e));
                }
                if let Some(s) = &origin.service {
                    labels.push((SERVER_LABEL.to_string(), s.clone()));
                }
                labels.extend(origin.ids.iter().cloned());
                if let Some((k, v)) = labels.iter().find(|(_, v)| v.len() > MAX_LABEL_VALUE) {
                    outcome.reject_span(|| {
                        format!(
                            "{}: `{k}` is {} bytes, over the {MAX_LABEL_VALUE} a label value may hold",
                            name(),
                            v.len()
                        )
                    });
                    continue;
                }
                if !described[side] {
                    described[side] = true;
                    let help = if side == 0 {
                        "One sample per MCP call: its duration."
                    } else {
                        "One sample per MCP call a client made: its duration."
                    };
                    sink.describe(metric, call_metadata(metric, help, at));
                }
                let key = SeriesKey::new(metric, labels);
                let id = match ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        let id = sink.intern(key.clone());
                        ids.insert(key, id);
                        id
                    }
                };
                let mut ts = ts;
                while !taken.insert((id, ts)) && ts < crate::time::MAX_STORED_MS {
                    ts += 1;
                }
                sink.push(id, ts, seconds)?;
                outcome.calls += 1;
                outcome.samples += 1;
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------------
// Metrics: Prometheus's translation (`UnderscoreEscapingWithSuffixes`).

/// What a metric is to the name translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

/// OTLP units to Prometheus's (UCUM's `c/s` symbols).
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The "per" unit of `x/s`: `second`.
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// The unit's main and per parts, before clean-up; a part in braces
/// (`{request}`) is an annotation and says nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        unit_word(main).to_string()
    };
    let per = match parts.next().map(str::trim) {
        Some(p) if !p.is_empty() && !p.contains(['{', '}']) => {
            format!("per_{}", per_unit_word(p))
        }
        _ => String::new(),
    };
    (main, per)
}

/// A unit part with characters Prometheus's names cannot hold replaced by
/// `_`, runs of `_` collapsed and a leading one dropped.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_start_matches('_').to_string()
}

/// The unit as Prometheus's metadata shows it (`seconds`, `bytes_per_second`).
fn unit_name(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_unit(&main), clean_unit(&per));
    let u = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    u.trim_matches('_').to_string()
}

/// A metric's stored name, as Prometheus's receiver builds it; `None` when
/// nothing of the name is left.
fn metric_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut tokens: Vec<&str> = name
        .split(|c: char| !metric_char(c))
        .filter(|t| !t.is_empty())
        .collect();
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_unit(&main), clean_unit(&per));
    let mut main = if tokens.contains(&main.as_str()) {
        String::new()
    } else {
        main
    };
    let per = if per == "per_" {
        String::new()
    } else {
        let p = per.trim_end_matches('_').to_string();
        if tokens.contains(&p.as_str()) {
            String::new()
        } else {
            p
        }
    };
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_string();
    }
    if !main.is_empty() {
        tokens.push(&main);
    }
    if !per.is_empty() {
        tokens.push(&per);
    }
    if kind == Kind::Counter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    (!out.is_empty() && out.chars().any(|c| c != '_')).then_some(out)
}

/// An attribute name as a Prometheus label name: characters other than
/// `[a-zA-Z0-9]` to `_` (runs collapsed), `key_` before a leading digit;
/// `__x__` keeps its underscores. `None` when nothing but `_` is left.
fn label_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let (inner, reserved) = match name.strip_prefix("__").and_then(|n| n.strip_suffix("__")) {
        Some(inner) if name.len() >= 4 => (inner, true),
        _ => (name, false),
    };
    let mut out = String::with_capacity(name.len() + 4);
    if reserved {
        out.push_str("__");
    }
    let mut last_underscore = false;
    for c in inner.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    if reserved {
        out.push_str("__");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    (out.chars().any(|c| c != '_')).then_some(out)
}

/// Attributes as labels: names translated, values as text; two attributes
/// whose names translate alike are joined with `;` in the order of their
/// original names, as Prometheus's receiver does.
fn attribute_labels(attrs: &[KeyValue]) -> Result<Vec<(String, String)>, String> {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let name = label_name(&kv.key).ok_or_else(|| {
            format!(
                "attribute `{}` has no usable label name",
                super::show_str(&kv.key)
            )
        })?;
        let mut text = String::new();
        if let Some(v) = &kv.value {
            value_text(v, &mut text);
        }
        match out.get_mut(&name) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&text);
            }
            None => {
                out.insert(name, text);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// One metric's points, with what they share.
struct Family<'a> {
    name: String,
    labels: &'a [(String, String)],
}

/// Writes the metrics of a request into `sink`, as Prometheus's receiver
/// translates them. `at` is what declarations name as their source.
pub fn metrics_into(
    request: &ExportMetricsServiceRequest,
    sink: &mut dyn SampleSink,
    at: &str,
    outcome: &mut Outcome,
) -> Result<(), SinkError> {
    let mut w = Writer {
        sink,
        outcome,
        ids: HashMap::new(),
        described: HashSet::new(),
        at,
    };
    for rm in &request.resource_metrics {
        let origin = Origin::of(rm.resource.as_ref());
        let mut times: Vec<i64> = Vec::new();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                w.metric(m, &origin, &mut times)?;
            }
        }
        w.target_info(rm.resource.as_ref(), &origin, &times)?;
    }
    Ok(())
}

struct Writer<'s, 'o, 'a> {
    sink: &'s mut dyn SampleSink,
    outcome: &'o mut Outcome,
    ids: HashMap<SeriesKey, u32>,
    described: HashSet<String>,
    at: &'a str,
}

impl Writer<'_, '_, '_> {
    fn metric(
        &mut self,
        m: &opentelemetry_proto::tonic::metrics::v1::Metric,
        origin: &Origin,
        times: &mut Vec<i64>,
    ) -> Result<(), SinkError> {
        use metric::Data;
        let shown = super::show_str(&m.name);
        // A sum or histogram is stored only when cumulative: its other
        // temporalities are named here to refuse them alike.
        let (kind, n, temporality) = match &m.data {
            None => return Ok(()),
            Some(Data::Gauge(g)) => (Kind::Gauge, g.data_points.len(), None),
            Some(Data::Sum(s)) => (
                if s.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::Gauge
                },
                s.data_points.len(),
                Some(("a sum", s.aggregation_temporality)),
            ),
            Some(Data::Histogram(h)) => (
                Kind::Histogram,
                h.data_points.len(),
                Some(("a histogram", h.aggregation_temporality)),
            ),
            Some(Data::ExponentialHistogram(e)) => {
                let n = e.data_points.len();
                self.outcome.points += n as u64;
                self.outcome.reject_points(n as u64, || {
                    format!(
                        "metric `{shown}`: {n} points of an exponential histogram (not stored: use explicit buckets)"
                    )
                });
                return Ok(());
            }
            Some(Data::Summary(s)) => (Kind::Summary, s.data_points.len(), None),
        };
        self.outcome.points += n as u64;
        if let Some((what, t)) = temporality
            && t != AggregationTemporality::Cumulative as i32
        {
            self.outcome.reject_points(n as u64, || {
                format!(
                    "metric `{shown}`: {n} points of {what} with {} temporality (only cumulative is stored)",
                    self::temporality(t)
                )
            });
            return Ok(());
        }
        let Some(name) = metric_name(&m.name, &m.unit, kind) else {
            self.outcome.reject_points(n as u64, || {
                format!("metric `{shown}`: no Prometheus name is left of it")
            });
            return Ok(());
        };
        self.describe(&name, kind, m);
        let fam = Family {
            name,
            labels: &origin.ids,
        };
        match &m.data {
            Some(Data::Gauge(opentelemetry_proto::tonic::metrics::v1::Gauge {
                data_points,
                ..
            }))
            | Some(Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum {
                data_points, ..
            })) => {
                for p in data_points {
                    self.number(&fam, p, times)?;
                }
            }
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    self.histogram(&fam, p, times)?;
                }
            }
            Some(Data::Summary(s)) => {
                for p in &s.data_points {
                    self.summary(&fam, p, times)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Declares the stored names of a family.
    fn describe(
        &mut self,
        name: &str,
        kind: Kind,
        m: &opentelemetry_proto::tonic::metrics::v1::Metric,
    ) {
        let unit = unit_name(&m.unit);
        let meta = |kind: MetricType, family: &str, part: Option<Part>| MetricMeta {
            kind,
            source: TypeSource::Declared,
            family: family.to_string(),
            part,
            unit: (!unit.is_empty()).then(|| unit.clone()),
            help: (!m.description.is_empty()).then(|| m.description.clone()),
            declared_at: Some(self.at.to_string()),
        };
        let names: Vec<(String, MetricMeta)> = match kind {
            Kind::Gauge => vec![(name.to_string(), meta(MetricType::Gauge, name, None))],
            Kind::Counter => {
                let family = name.strip_suffix("_total").unwrap_or(name);
                vec![(
                    name.to_string(),
                    meta(MetricType::Counter, family, Some(Part::Total)),
                )]
            }
            Kind::Histogram => [Part::Bucket, Part::Sum, Part::Count]
                .into_iter()
                .map(|p| {
                    (
                        format!("{name}{}", p.suffix()),
                        meta(MetricType::Histogram, name, Some(p)),
                    )
                })
                .collect(),
            Kind::Summary => {
                let mut v = vec![(name.to_string(), meta(MetricType::Summary, name, None))];
                for p in [Part::Sum, Part::Count] {
                    v.push((
                        format!("{name}{}", p.suffix()),
                        meta(MetricType::Summary, name, Some(p)),
                    ));
                }
                v
            }
        };
        for (stored, meta) in names {
            if self.described.insert(stored.clone()) {
                self.sink.describe(&stored, meta);
            }
        }
    }

    /// The labels and time of a point; a point that cannot be stored is
    /// counted as rejected, with why.
    fn point_labels(
        &mut self,
        fam: &Family,
        attrs: &[KeyValue],
        time_ns: u64,
    ) -> Option<(Vec<(String, String)>, i64)> {
        match point_labels(fam, attrs, time_ns) {
            Ok(found) => Some(found),
            Err(m) => {
                self.reject_point(fam, || m);
                None
            }
        }
    }

    /// Counts one point of `fam` as rejected, with why.
    fn reject_point(&mut self, fam: &Family, why: impl FnOnce() -> String) {
        self.outcome.reject_points(1, || {
            format!("metric `{}`: {}", super::show_str(&fam.name), why())
        });
    }

    fn sample(
        &mut self,
        name: &str,
        labels: Vec<(String, String)>,
        ts: i64,
        v: f64,
    ) -> Result<(), SinkError> {
        let key = SeriesKey::new(name, labels);
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.sink.intern(key.clone());
                self.ids.insert(key, id);
                id
            }
        };
        self.sink.push(id, ts, v)?;
        self.outcome.samples += 1;
        Ok(())
    }

    /// A histogram's or summary's `_sum` (when the point has one) and
    /// `_count`.
    fn sum_and_count(
        &mut self,
        fam: &Family,
        labels: &[(String, String)],
        ts: i64,
        sum: Option<f64>,
        count: f64,
    ) -> Result<(), SinkError> {
        if let Some(sum) = sum {
            self.sample(&format!("{}_sum", fam.name), labels.to_vec(), ts, sum)?;
        }
        self.sample(&format!("{}_count", fam.name), labels.to_vec(), ts, count)
    }

    fn number(
        &mut self,
        fam: &Family,
        p: &NumberDataPoint,
        times: &mut Vec<i64>,
    ) -> Result<(), SinkError> {
        let Some((labels, ts)) = self.point_labels(fam, &p.attributes, p.time_unix_nano) else {
            return Ok(());
        };
        let v = match p.value {
            _ if no_recorded_value(p.flags) => stale(),
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None => {
                self.reject_point(fam, || "a point without a value".into());
                return Ok(());
            }
        };
        times.push(ts);
        self.sample(&fam.name, labels, ts, v)
    }

    fn histogram(
        &mut self,
        fam: &Family,
        p: &HistogramDataPoint,
        times: &mut Vec<i64>,
    ) -> Result<(), SinkError> {
        let Some((labels, ts)) = self.point_labels(fam, &p.attributes, p.time_unix_nano) else {
            return Ok(());
        };
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            self.reject_point(fam, || {
                format!(
                    "{} bucket counts for {} bounds (there must be one more count than bounds)",
                    p.bucket_counts.len(),
                    p.explicit_bounds.len()
                )
            });
            return Ok(());
        }
        times.push(ts);
        let value = value_or_stale(p.flags);
        self.sum_and_count(fam, &labels, ts, p.sum.map(&value), value(p.count as f64))?;
        let bucket = format!("{}_bucket", fam.name);
        let mut cumulative: u64 = 0;
        for (i, bound) in p.explicit_bounds.iter().enumerate() {
            cumulative = cumulative.saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
            let mut l = labels.clone();
            l.push(("le".to_string(), prom_float(*bound)));
            self.sample(&bucket, l, ts, value(cumulative as f64))?;
        }
        let mut l = labels;
        l.push(("le".to_string(), "+Inf".to_string()));
        self.sample(&bucket, l, ts, value(p.count as f64))
    }

    fn summary(
        &mut self,
        fam: &Family,
        p: &SummaryDataPoint,
        times: &mut Vec<i64>,
    ) -> Result<(), SinkError> {
        let Some((labels, ts)) = self.point_labels(fam, &p.attributes, p.time_unix_nano) else {
            return Ok(());
        };
        times.push(ts);
        let value = value_or_stale(p.flags);
        self.sum_and_count(fam, &labels, ts, Some(value(p.sum)), value(p.count as f64))?;
        for q in &p.quantile_values {
            let mut l = labels.clone();
            l.push(("quantile".to_string(), prom_float(q.quantile)));
            self.sample(&fam.name, l, ts, value(q.value))?;
        }
        Ok(())
    }

    /// `target_info{job, instance, <other resource attributes>} 1`, as
    /// Prometheus's receiver writes it: only for a resource that has a job
    /// or instance and more attributes than those, at the first and last
    /// time of its points and every 2.5 minutes between (half the default
    /// lookback, so that an instant query always finds one).
    fn target_info(
        &mut self,
        resource: Option<&Resource>,
        origin: &Origin,
        times: &[i64],
    ) -> Result<(), SinkError> {
        const STEP_MS: i64 = 150_000;
        let Some(resource) = resource else {
            return Ok(());
        };
        if origin.ids.is_empty() || times.is_empty() {
            return Ok(());
        }
        let identifying = ["service.name", "service.namespace", "service.instance.id"];
        let others: Vec<KeyValue> = resource
            .attributes
            .iter()
            .filter(|kv| !identifying.contains(&kv.key.as_str()))
            .cloned()
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let Ok(mut labels) = attribute_labels(&others) else {
            return Ok(());
        };
        labels.retain(|(n, v)| {
            check_label_name(n).is_ok()
                && v.len() <= MAX_LABEL_VALUE
                && !origin.ids.iter().any(|(k, _)| k == n)
        });
        labels.extend(origin.ids.iter().cloned());
        let first = times.iter().copied().min().unwrap_or(0);
        let last = times.iter().copied().max().unwrap_or(0);
        if self.described.insert("target_info".to_string()) {
            self.sink.describe(
                "target_info",
                MetricMeta {
                    kind: MetricType::Gauge,
                    source: TypeSource::Declared,
                    family: "target_info".to_string(),
                    part: None,
                    unit: None,
                    help: Some("Target metadata".to_string()),
                    declared_at: Some(self.at.to_string()),
                },
            );
        }
        let mut t = first;
        while t < last {
            self.sample("target_info", labels.clone(), t, 1.0)?;
            t += STEP_MS;
        }
        self.sample("target_info", labels, last, 1.0)
    }
}

/// The labels of a point (its attributes, then the resource's job and
/// instance) and its stored time, else why it cannot be stored.
fn point_labels(
    fam: &Family,
    attrs: &[KeyValue],
    time_ns: u64,
) -> Result<(Vec<(String, String)>, i64), String> {
    let ts = stored_ms(time_ns, "a point")?;
    let mut labels = attribute_labels(attrs)?;
    // The resource's job and instance win over the point's own.
    labels.retain(|(n, _)| !fam.labels.iter().any(|(k, _)| k == n));
    labels.extend(fam.labels.iter().cloned());
    for (n, v) in &labels {
        check_label_name(n)?;
        if v.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label `{n}` is {} bytes, over the {MAX_LABEL_VALUE} a label value may hold",
                v.len()
            ));
        }
    }
    Ok((labels, ts))
}

fn temporality(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        _ => "unspecified",
    }
}

/// Whether a point's flags say it has no value: the series ended.
fn no_recorded_value(flags: u32) -> bool {
    flags & 1 == 1
}

/// What a point's values are stored as: themselves, or every one a
/// staleness marker when the point's flags say the series ended.
fn value_or_stale(flags: u32) -> impl Fn(f64) -> f64 {
    let ended = no_recorded_value(flags);
    move |v| if ended { stale() } else { v }
}

fn stale() -> f64 {
    crate::model::stale_nan()
}

// ---------------------------------------------------------------------------
// Files: the Collector's file exporter.

/// The longest protobuf message of an `.otlp.pb` file.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// One line of an `.otlp.jsonl` file: a trace or a metrics request (the
/// file exporter writes each signal's requests one per line; a file may
/// hold both).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileLine {
    #[serde(default)]
    resource_spans: Vec<opentelemetry_proto::tonic::trace::v1::ResourceSpans>,
    #[serde(default)]
    resource_metrics: Vec<opentelemetry_proto::tonic::metrics::v1::ResourceMetrics>,
    #[serde(default)]
    resource_logs: Option<serde::de::IgnoredAny>,
}

/// Reads an OTLP file: JSON lines, or length-prefixed protobuf messages
/// (told apart by the first byte: a length under 16 MiB starts with 0).
pub(crate) fn ingest(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let first = reader
        .fill_buf()
        .map_err(|source| IngestError::Io {
            path: run.name.clone(),
            source,
        })?
        .first()
        .copied();
    match first {
        None => Ok(()),
        Some(b) if b < 0x08 => protobuf_file(reader, run),
        Some(_) => for_each_line(reader, run, json_line),
    }
}

fn json_line(line: &[u8], number: u64, run: &mut Run) -> Result<(), Fail> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let json_error = |e: serde_json::Error| {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        Fail::Bad {
            col: e.column().max(1),
            message: format!("OTLP JSON: {}", super::show_message(message)),
        }
    };
    let mut tree: serde_json::Value = serde_json::from_slice(line).map_err(json_error)?;
    let fixes = take_special_floats(&mut tree);
    let parsed: FileLine = serde_json::from_value(tree).map_err(json_error)?;
    if parsed.resource_spans.is_empty() && parsed.resource_metrics.is_empty() {
        if parsed.resource_logs.is_some() {
            // Logs hold no samples; a file of every signal is still read.
            return Ok(());
        }
        return super::bad(
            1,
            "neither `resourceSpans` nor `resourceMetrics`: not an OTLP trace or metrics request",
        );
    }
    let at = format!("{}:{number}", run.name);
    let mut sink = crate::model::MemorySink::default();
    let mut outcome = Outcome::default();
    let traces = ExportTraceServiceRequest {
        resource_spans: parsed.resource_spans,
    };
    let mut metrics = ExportMetricsServiceRequest {
        resource_metrics: parsed.resource_metrics,
    };
    put_special_floats(&mut metrics, &fixes);
    traces_into(&traces, &mut sink, &at, &mut outcome).map_err(IngestError::from)?;
    metrics_into(&metrics, &mut sink, &at, &mut outcome).map_err(IngestError::from)?;
    transfer(sink, &outcome, number, run)
}

/// Hands what one request decoded to into the run (which checks label
/// spellings and keeps the report), and warns of what was not stored.
fn transfer(
    sink: crate::model::MemorySink,
    outcome: &Outcome,
    number: u64,
    run: &mut Run,
) -> Result<(), Fail> {
    for (metric, meta) in sink.metadata {
        run.describe(&metric, meta);
    }
    let mut ids = Vec::with_capacity(sink.series.len());
    for key in sink.series {
        ids.push(run.intern(key.metric, key.labels, 1)?);
    }
    for (s, t, v) in sink.samples {
        run.push(ids[s as usize], t, v)?;
    }
    if outcome.rejected_spans + outcome.rejected_points > 0 {
        let file = run.name.clone();
        run.warn(super::IngestWarning {
            file,
            line: number,
            message: format!(
                "{} spans and {} data points not stored: {}",
                outcome.rejected_spans,
                outcome.rejected_points,
                outcome.message()
            ),
        });
    }
    Ok(())
}

/// Length-prefixed protobuf messages, each a trace or a metrics request.
/// The two share their first field's number, so a message is decoded as
/// both and taken as the one it makes sense as: spans with 16-byte trace
/// ids, or metrics with names and data.
fn protobuf_file(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let mut number = 0u64;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match read_exact_or_eof(reader, &mut len) {
            Ok(false) => break,
            Ok(true) => {}
            Err(source) => {
                return Err(IngestError::Io {
                    path: run.name.clone(),
                    source,
                });
            }
        }
        number += 1;
        run.line = number;
        let len = u32::from_be_bytes(len) as usize;
        let outcome = if len > MAX_MESSAGE {
            super::bad(
                1,
                format!("message of {len} bytes, over the {MAX_MESSAGE} an OTLP message may have"),
            )
        } else {
            buf.resize(len, 0);
            match reader.read_exact(&mut buf) {
                Ok(()) => protobuf_message(&buf, number, run),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let outcome = super::bad(
                        1,
                        format!("truncated: the message of {len} bytes ends early"),
                    );
                    run.settle(number, outcome)?;
                    break;
                }
                Err(source) => {
                    return Err(IngestError::Io {
                        path: run.name.clone(),
                        source,
                    });
                }
            }
        };
        let too_long = len > MAX_MESSAGE;
        run.settle(number, outcome)?;
        if too_long {
            // The stream cannot be followed past a length it did not read.
            break;
        }
    }
    run.report.lines += number;
    Ok(())
}

/// Fills `buf`, or says the stream ended cleanly before its first byte.
fn read_exact_or_eof(reader: &mut dyn BufRead, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file ends inside a message's length",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn protobuf_message(buf: &[u8], number: u64, run: &mut Run) -> Result<(), Fail> {
    let traces = decode_traces(buf, Encoding::Protobuf).ok().filter(|t| {
        let spans = t
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans);
        spans.clone().next().is_some() && spans.clone().all(|s| s.trace_id.len() == 16)
    });
    let metrics = decode_metrics(buf, Encoding::Protobuf).ok().filter(|m| {
        let all = m
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics);
        all.clone().next().is_some() && all.clone().all(|m| !m.name.is_empty() && m.data.is_some())
    });
    let at = format!("{}:{number}", run.name);
    let mut sink = crate::model::MemorySink::default();
    let mut outcome = Outcome::default();
    match (traces, metrics) {
        (Some(t), _) => traces_into(&t, &mut sink, &at, &mut outcome),
        (None, Some(m)) => metrics_into(&m, &mut sink, &at, &mut outcome),
        (None, None) => {
            return super::bad(
                1,
                "not an OTLP trace or metrics request in protobuf (or one without spans or metrics)",
            );
        }
    }
    .map_err(IngestError::from)?;
    transfer(sink, &outcome, number, run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemorySink;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn calls_starting_in_one_millisecond_are_each_counted() {
        let attr = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let start = 1_700_000_000_000_000_000u64;
        let spans = (0..3u8)
            .map(|i| Span {
                trace_id: vec![7; 16],
                span_id: vec![i + 1; 8],
                kind: SpanKind::Server as i32,
                // All three start within the same millisecond.
                start_time_unix_nano: start + u64::from(i) * 1_000,
                end_time_unix_nano: start + 2_000_000,
                attributes: vec![attr(METHOD_LABEL, "tools/call"), attr(TOOL_LABEL, "fast")],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut sink = MemorySink::default();
        let mut outcome = Outcome::default();
        traces_into(&request, &mut sink, "test", &mut outcome).unwrap();
        let times: Vec<i64> = sink.samples.iter().map(|s| s.1).collect();
        let ms = (start / 1_000_000) as i64;
        assert_eq!(times, vec![ms, ms + 1, ms + 2]);
        assert_eq!(outcome.calls, 3);
    }

    #[test]
    fn names_translate_as_prometheus_does() {
        let cases: &[(&str, &str, Kind, &str)] = &[
            (
                "mcp.server.operation.duration",
                "s",
                Kind::Histogram,
                "mcp_server_operation_duration_seconds",
            ),
            (
                "http.server.request.duration",
                "s",
                Kind::Histogram,
                "http_server_request_duration_seconds",
            ),
            ("requests.count", "1", Kind::Counter, "requests_count_total"),
            ("memory.usage", "By", Kind::Gauge, "memory_usage_bytes"),
            ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
            ("calls_total", "{call}", Kind::Counter, "calls_total"),
            ("net.io", "By/s", Kind::Gauge, "net_io_bytes_per_second"),
            ("latency_seconds", "s", Kind::Histogram, "latency_seconds"),
            ("2xx.responses", "", Kind::Counter, "_2xx_responses_total"),
            ("a..b__c", "", Kind::Gauge, "a_b_c"),
            (
                "throughput",
                "{req}/s",
                Kind::Gauge,
                "throughput_per_second",
            ),
        ];
        for &(name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, kind).as_deref(),
                Some(want),
                "{name} {unit}"
            );
        }
        assert_eq!(metric_name("...", "", Kind::Gauge), None);
        assert_eq!(unit_name("By/s"), "bytes_per_second");
        assert_eq!(unit_name("{call}"), "");
        assert_eq!(unit_name("s"), "seconds");
    }

    #[test]
    fn label_names_translate_as_prometheus_does() {
        assert_eq!(label_name("http.method").as_deref(), Some("http_method"));
        assert_eq!(label_name("123invalid").as_deref(), Some("key_123invalid"));
        assert_eq!(label_name("__reserved__").as_deref(), Some("__reserved__"));
        assert_eq!(label_name("a..b").as_deref(), Some("a_b"));
        assert_eq!(label_name("...").as_deref(), None);
        assert_eq!(label_name(""), None);
        let kv = |k: &str, v: &str| KeyValue {
            key: k.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.to_string())),
            }),
            ..Default::default()
        };
        assert_eq!(
            attribute_labels(&[kv("a_b", "2"), kv("a.b", "1")]).unwrap(),
            vec![("a_b".to_string(), "1;2".to_string())]
        );
    }

    /// Whole metrics refused (a delta sum or histogram) and single points
    /// refused (an over-long label value, no time, no value, a
    /// bucket count short) are counted and
    /// named; the good point beside them is stored.
    #[test]
    fn refused_metrics_and_points_are_counted_with_why() {
        let t = 1_794_787_201_234_000_000u64;
        let point = |name: &str, time: u64, extra: &str| {
            format!(
                r#"{{"name":"{name}","gauge":{{"dataPoints":[{{"timeUnixNano":"{time}","asInt":"1"{extra}}}]}}}}"#
            )
        };
        let long = "x".repeat(MAX_LABEL_VALUE + 1);
        let metrics = [
            format!(
                r#"{{"name":"d","sum":{{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{t}","asInt":"1"}},{{"timeUnixNano":"{t}","asInt":"2"}}]}}}}"#
            ),
            format!(
                r#"{{"name":"h","histogram":{{"aggregationTemporality":1,"dataPoints":[{{"timeUnixNano":"{t}","count":"1"}}]}}}}"#
            ),
            point("ok", t, ""),
            format!(r#"{{"name":"nv","gauge":{{"dataPoints":[{{"timeUnixNano":"{t}"}}]}}}}"#),
            format!(
                r#"{{"name":"hb","histogram":{{"aggregationTemporality":2,"dataPoints":[{{"timeUnixNano":"{t}","count":"1","bucketCounts":["1"],"explicitBounds":[1.0]}}]}}}}"#
            ),
            point("t0", 0, ""),
            point(
                "too_long",
                t,
                &format!(r#","attributes":[{{"key":"k","value":{{"stringValue":"{long}"}}}}]"#),
            ),
        ];
        // At most MAX_REASONS_KEPT reasons are kept: two requests.
        let (first, second) = metrics.split_at(4);
        let mut message = String::new();
        let mut total = Outcome::default();
        for part in [first, second] {
            let body = format!(
                r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{}]}}]}}]}}"#,
                part.join(",")
            );
            let request = decode_metrics(body.as_bytes(), Encoding::Json).expect("decodes");
            let mut sink = crate::model::MemorySink::default();
            let mut outcome = Outcome::default();
            metrics_into(&request, &mut sink, "test", &mut outcome).expect("sink");
            assert_eq!(outcome.samples as usize, sink.samples.len());
            total.points += outcome.points;
            total.rejected_points += outcome.rejected_points;
            total.samples += outcome.samples;
            message.push_str(&outcome.message());
        }
        assert_eq!((total.points, total.rejected_points), (8, 7));
        assert_eq!(total.samples, 1, "{message}");
        for want in [
            "metric `d`: 2 points of a sum with delta temporality (only cumulative is stored)",
            "metric `h`: 1 points of a histogram with delta temporality",
            "metric `t0`: a point has no time (0)",
            "metric `nv`: a point without a value",
            "metric `hb`: 1 bucket counts for 1 bounds (there must be one more count than bounds)",
            &format!(
                "metric `too_long`: label `k` is {} bytes, over the",
                MAX_LABEL_VALUE + 1
            ),
        ] {
            assert!(message.contains(want), "{want:?} in {message}");
        }
    }
}
