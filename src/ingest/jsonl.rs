//! JSON lines, one object per line, in two forms that may be mixed:
//!
//! - An MCP call: `{"ts":..., "server":..., "method":..., "tool":...,
//!   "duration_ms":..., "error":..., "session":..., "transport":...}` becomes
//!   one sample of `mcp.server.operation.duration` in seconds, labelled
//!   `server`, `mcp.method.name`, `gen_ai.tool.name`, `error.type` (a JSON-RPC
//!   code as its decimal text, or a type string), `mcp.session.id` and
//!   `network.transport`. Absent or null fields give no label.
//! - A generic sample: `{"ts":..., "metric":"...", "labels":{...},
//!   "value": number | "NaN" | "+Inf" | "-Inf"}`.
//! - A sample as `mcpops export --format jsonl` writes it (the flat form,
//!   one field per label as DuckDB and polars read a table):
//!   `{"metric":"...", <label>:"...", ..., "timestamp":..., "value":...}`,
//!   told apart by a `timestamp` field and no `ts`; every field but
//!   `metric`, `timestamp` and `value` is a label (null: none).
//!
//! `ts` is an RFC 3339 string (or any form [`crate::time::parse_timestamp`]
//! takes) or an epoch number, seconds or milliseconds told apart by size.
//! Other fields are ignored. Lines are deserialized without building a JSON
//! tree: strings are borrowed from the line where they have no escapes.

use super::{
    EPOCH_MS_THRESHOLD, Fail, IngestError, RawMap, Run, bad, check_label_name, for_each_line,
    parse_time_text, repeated_label, show, show_message, show_str,
};
use crate::metadata::{MetricMeta, MetricType, TypeSource};
use crate::names::{
    CALL_METRIC, ERROR_LABEL, METHOD_LABEL, SERVER_LABEL, SESSION_LABEL, TOOL_LABEL,
    TRANSPORT_LABEL,
};
use crate::time::is_stored;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::marker::PhantomData;

pub(crate) fn ingest(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let mut parser = Parser {
        cache: RawMap::default(),
        key: Vec::new(),
        code: String::new(),
        described: false,
    };
    for_each_line(reader, run, |line, _, run| parser.parse_line(line, run))
}

/// A JSON value where a scalar is expected.
#[derive(Clone, Debug)]
enum Scalar<'a> {
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// An object or array (consumed and ignored): the name of its kind.
    Compound(&'static str),
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "null",
            Scalar::Compound(kind) => kind,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::UInt(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Text of a label value: strings as they are, numbers and booleans as
    /// JSON writes them; `None` for null (no label).
    fn label_text(&self) -> Result<Option<Cow<'_, str>>, &'static str> {
        Ok(Some(match self {
            Scalar::Str(s) => Cow::Borrowed(&**s),
            Scalar::Int(i) => Cow::Owned(i.to_string()),
            Scalar::UInt(u) => Cow::Owned(u.to_string()),
            Scalar::Float(f) => Cow::Owned(f.to_string()),
            Scalar::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Scalar::Null => return Ok(None),
            Scalar::Compound(kind) => return Err(kind),
        }))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound("an array"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The `labels` object of a generic sample, in the order written.
#[derive(Debug)]
struct Labels<'a>(Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`labels` as an object of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Scalar<'a>>()? {
                    let Scalar::Str(name) = key else {
                        return Err(de::Error::custom("label names must be strings"));
                    };
                    out.push((name, map.next_value::<Scalar<'a>>()?));
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// One line. Both forms' fields; null and absent are both `None`.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    ts: Option<Scalar<'a>>,
    #[serde(borrow)]
    server: Option<Scalar<'a>>,
    #[serde(borrow)]
    method: Option<Scalar<'a>>,
    #[serde(borrow)]
    tool: Option<Scalar<'a>>,
    #[serde(borrow)]
    duration_ms: Option<Scalar<'a>>,
    #[serde(borrow)]
    error: Option<Scalar<'a>>,
    /// MCP's `isError` of a tool's result: a failed call of the tool.
    #[serde(borrow, alias = "isError")]
    is_error: Option<Scalar<'a>>,
    #[serde(borrow)]
    session: Option<Scalar<'a>>,
    #[serde(borrow)]
    transport: Option<Scalar<'a>>,
    #[serde(borrow)]
    metric: Option<Scalar<'a>>,
    #[serde(borrow)]
    labels: Option<Labels<'a>>,
    #[serde(borrow)]
    value: Option<Scalar<'a>>,
    /// The flat (export) form's time, in place of `ts`.
    #[serde(borrow)]
    timestamp: Option<Scalar<'a>>,
}

/// Every top-level field of a line, in the order written: the flat form,
/// whose labels are fields of their own.
struct Fields<'a>(Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Cow<'a, str>>()? {
                    out.push((key, map.next_value::<Scalar<'a>>()?));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// Whether the line may be the flat (export) form: it names `timestamp`.
fn mentions_timestamp(line: &[u8]) -> bool {
    line.windows(11).any(|w| w == b"\"timestamp\"")
}

/// The call fields and the labels they become, in key order.
const CALL_LABELS: [&str; 6] = [
    SERVER_LABEL,
    METHOD_LABEL,
    TOOL_LABEL,
    ERROR_LABEL,
    SESSION_LABEL,
    TRANSPORT_LABEL,
];

struct Parser {
    /// Raw label text (length-prefixed) to series id.
    cache: RawMap<u32>,
    key: Vec<u8>,
    code: String,
    /// Whether the call metric's metadata was handed to the run.
    described: bool,
}

/// The error type of a call whose result says `isError` (and no `error`).
pub const TOOL_ERROR: &str = "tool_error";

/// What JSON lines declare of the call metric: one sample per call.
fn call_metadata(file: &str, line: u64) -> MetricMeta {
    MetricMeta {
        kind: MetricType::Event,
        source: TypeSource::Declared,
        family: CALL_METRIC.to_string(),
        part: None,
        unit: Some("seconds".to_string()),
        help: Some("One sample per MCP call: its duration.".to_string()),
        declared_at: Some(format!("{file}:{line}")),
    }
}

/// The 1-based column where `"field"` first appears in the line at or
/// after byte `from`, else 1.
fn find_key(line: &[u8], from: usize, field: &str) -> usize {
    let needle = format!("\"{field}\"");
    line.get(from..)
        .and_then(|rest| {
            rest.windows(needle.len())
                .position(|w| w == needle.as_bytes())
        })
        .map_or(1, |p| from + p + 1)
}

/// The 1-based column of a top-level field's key (the first occurrence).
fn field_col(line: &[u8], field: &str) -> usize {
    find_key(line, 0, field)
}

/// The 1-based column of a label's key inside `labels`.
fn label_col(line: &[u8], name: &str) -> usize {
    let labels = field_col(line, "labels");
    find_key(line, labels, name)
}

fn push_key(key: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => key.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(t) => {
            key.extend_from_slice(&(t.len() as u32).to_le_bytes());
            key.extend_from_slice(t.as_bytes());
        }
    }
}

impl Parser {
    fn parse_line(&mut self, line: &[u8], run: &mut Run) -> Result<(), Fail> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let first = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        if line[first] != b'{' {
            return bad(
                first + 1,
                format!(
                    "expected a JSON object `{{...}}`, found `{}`",
                    show(&line[first..first + 1])
                ),
            );
        }
        let rec: Record = match serde_json::from_slice::<Record>(line) {
            Ok(r) if r.timestamp.is_some() && r.ts.is_none() => return self.flat(line, run),
            Ok(r) => r,
            // A flat line with a label named like one of the other forms'
            // fields (`labels`) does not fit `Record`.
            Err(_) if mentions_timestamp(line) => return self.flat(line, run),
            Err(e) => {
                let text = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = text.strip_suffix(&suffix).unwrap_or(&text);
                return bad(e.column(), format!("JSON: {}", show_message(message)));
            }
        };
        let ts = match &rec.ts {
            None => return bad(1, "missing `ts`"),
            Some(ts) => timestamp(ts).map_err(|m| Fail::Bad {
                col: field_col(line, "ts"),
                message: m,
            })?,
        };
        if rec.metric.is_some() {
            let labels = rec.labels.as_ref().map(|Labels(l)| l.as_slice());
            self.generic(
                line,
                rec.metric.as_ref(),
                rec.value.as_ref(),
                labels,
                ts,
                run,
            )
        } else if rec.duration_ms.is_some() || rec.method.is_some() {
            self.call(line, &rec, ts, run)
        } else {
            bad(
                1,
                "neither an MCP call (with `duration_ms`) nor a generic sample (with `metric` and `value`)",
            )
        }
    }

    fn call(&mut self, line: &[u8], rec: &Record, ts: i64, run: &mut Run) -> Result<(), Fail> {
        let duration = match &rec.duration_ms {
            None => return bad(1, "MCP call without `duration_ms`"),
            Some(d) => match d.as_f64() {
                Some(ms) => ms / 1000.0,
                None => {
                    return bad(
                        field_col(line, "duration_ms"),
                        format!("`duration_ms` must be a number, not {}", d.kind()),
                    );
                }
            },
        };
        self.code.clear();
        let error: Option<&str> = match &rec.error {
            None | Some(Scalar::Null) | Some(Scalar::Bool(false)) => None,
            Some(Scalar::Int(i)) => {
                self.code.push_str(&i.to_string());
                Some(&self.code)
            }
            Some(Scalar::UInt(u)) => {
                self.code.push_str(&u.to_string());
                Some(&self.code)
            }
            Some(Scalar::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                self.code.push_str(&(*f as i64).to_string());
                Some(&self.code)
            }
            Some(Scalar::Str(s)) => Some(&**s),
            Some(other) => {
                return bad(
                    field_col(line, "error"),
                    format!(
                        "`error` must be a JSON-RPC error code or an error type string, not {}",
                        if matches!(other, Scalar::Float(_)) {
                            "a fractional number"
                        } else {
                            other.kind()
                        }
                    ),
                );
            }
        };
        // MCP 2025-11-25: a CallToolResult with `isError` is a failed call
        // of that tool; an explicit `error` says more and wins.
        let error = match &rec.is_error {
            None | Some(Scalar::Null) | Some(Scalar::Bool(false)) => error,
            Some(Scalar::Bool(true)) => error.or(Some(TOOL_ERROR)),
            Some(other) => {
                let written = if line.windows(9).any(|w| w == b"\"isError\"") {
                    "isError"
                } else {
                    "is_error"
                };
                let col = field_col(line, written);
                return bad(
                    col,
                    format!("`{written}` must be true or false, not {}", other.kind()),
                );
            }
        };
        if !self.described {
            self.described = true;
            run.describe(CALL_METRIC, call_metadata(&run.name, run.line));
        }
        let mut texts: [Option<Cow<str>>; 6] = Default::default();
        for (k, (field, value)) in [
            ("server", &rec.server),
            ("method", &rec.method),
            ("tool", &rec.tool),
            ("error", &None),
            ("session", &rec.session),
            ("transport", &rec.transport),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = value {
                texts[k] = match v {
                    Scalar::Bool(_) => {
                        return bad(
                            field_col(line, field),
                            format!("`{field}` must be a string, not a boolean"),
                        );
                    }
                    v => v.label_text().map_err(|kind| Fail::Bad {
                        col: field_col(line, field),
                        message: format!("`{field}` must be a string, not {kind}"),
                    })?,
                };
            }
        }
        texts[3] = error.map(Cow::Borrowed);
        self.key.clear();
        self.key.push(0);
        for t in &texts {
            push_key(&mut self.key, t.as_deref());
        }
        let id = match self.cache.get(self.key.as_slice()) {
            Some(&id) => id,
            None => {
                let labels = CALL_LABELS
                    .iter()
                    .zip(&texts)
                    .filter_map(|(name, t)| t.as_ref().map(|t| (name.to_string(), t.to_string())))
                    .collect();
                let id = run.intern(CALL_METRIC.to_string(), labels, 1)?;
                self.cache.insert(self.key.as_slice().into(), id);
                id
            }
        };
        run.push(id, ts, duration)?;
        Ok(())
    }

    /// A line of the flat (export) form: `metric`, `timestamp`, `value`
    /// and every other field a label.
    fn flat(&mut self, line: &[u8], run: &mut Run) -> Result<(), Fail> {
        let Fields(fields) = match serde_json::from_slice(line) {
            Ok(f) => f,
            Err(e) => {
                let text = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = text.strip_suffix(&suffix).unwrap_or(&text);
                return bad(e.column(), format!("JSON: {}", show_message(message)));
            }
        };
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let ts = match field("timestamp") {
            None | Some(Scalar::Null) => return bad(1, "missing `timestamp`"),
            Some(ts) => timestamp(ts).map_err(|m| Fail::Bad {
                col: field_col(line, "timestamp"),
                message: m.replacen("`ts`", "`timestamp`", 1),
            })?,
        };
        if field("metric").is_none() {
            return bad(
                1,
                "a line with `timestamp` is a sample of the flat form (as `mcpops export` \
                 writes it) and needs `metric` and `value`",
            );
        }
        let labels: Vec<(Cow<str>, Scalar)> = fields
            .iter()
            .filter(|(k, _)| !matches!(&**k, "metric" | "timestamp" | "value"))
            .map(|(k, v)| (Cow::Borrowed(&**k), v.clone()))
            .collect();
        self.generic(
            line,
            field("metric"),
            field("value"),
            Some(&labels),
            ts,
            run,
        )
    }

    fn generic(
        &mut self,
        line: &[u8],
        metric: Option<&Scalar>,
        value: Option<&Scalar>,
        labels: Option<&[(Cow<str>, Scalar)]>,
        ts: i64,
        run: &mut Run,
    ) -> Result<(), Fail> {
        let metric = match metric {
            Some(Scalar::Str(m)) if !m.is_empty() => &**m,
            Some(Scalar::Str(_)) => return bad(field_col(line, "metric"), "empty `metric`"),
            other => {
                return bad(
                    field_col(line, "metric"),
                    format!(
                        "`metric` must be a string, not {}",
                        other.map_or("null", Scalar::kind)
                    ),
                );
            }
        };
        let value = match value {
            None => return bad(1, "generic sample without `value`"),
            Some(Scalar::Str(s)) => match s.parse::<f64>() {
                Ok(v) => v,
                Err(_) => {
                    return bad(
                        field_col(line, "value"),
                        format!(
                            "`value` \"{}\" is not a number (nor NaN, +Inf, -Inf)",
                            show(s.as_bytes())
                        ),
                    );
                }
            },
            // serde_json (without its float_roundtrip feature, which would
            // rebuild polars) may round a long decimal to a neighbouring
            // f64: the number's own text is parsed again, exactly.
            Some(Scalar::Float(f)) => top_level_number(line, "value")
                .and_then(super::parse_f64)
                .unwrap_or(*f),
            Some(v) => match v.as_f64() {
                Some(v) => v,
                None => {
                    return bad(
                        field_col(line, "value"),
                        format!(
                            "`value` must be a number or \"NaN\", \"+Inf\", \"-Inf\", not {}",
                            v.kind()
                        ),
                    );
                }
            },
        };
        self.key.clear();
        self.key.push(1);
        push_key(&mut self.key, Some(metric));
        let mut texts = Vec::new();
        if let Some(labels) = labels {
            for (name, v) in labels {
                let text = v.label_text().map_err(|kind| Fail::Bad {
                    col: label_col(line, name),
                    message: format!("label `{}` must be a string, not {kind}", show_str(name)),
                })?;
                push_key(&mut self.key, Some(name));
                push_key(&mut self.key, text.as_deref());
                texts.push((name, text));
            }
        }
        let id = match self.cache.get(self.key.as_slice()) {
            Some(&id) => id,
            None => {
                let mut pairs: Vec<(String, String)> = Vec::with_capacity(texts.len());
                for (name, text) in &texts {
                    if let Err(m) = check_label_name(name) {
                        return bad(label_col(line, name), m);
                    }
                    if let Some(message) = repeated_label(&pairs, name) {
                        return bad(label_col(line, name), message);
                    }
                    if let Some(t) = text {
                        pairs.push((name.to_string(), t.to_string()));
                    }
                }
                let id = run.intern(metric.to_string(), pairs, field_col(line, "metric"))?;
                self.cache.insert(self.key.as_slice().into(), id);
                id
            }
        };
        run.push(id, ts, value)?;
        Ok(())
    }
}

/// The text of the number that the top-level field `field` of a JSON object
/// holds, found by walking the line's strings and nesting (a label's value
/// may read `"value":` too); `None` when there is no such number.
fn top_level_number<'l>(line: &'l [u8], field: &str) -> Option<&'l [u8]> {
    let mut depth = 0usize;
    let mut i = 0;
    // Whether the string just read at depth 1 was a key named `field`.
    let mut key_matches = false;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < line.len() && line[i] != b'"' {
                    i += if line[i] == b'\\' { 2 } else { 1 };
                }
                key_matches = depth == 1 && &line[start..i.min(line.len())] == field.as_bytes();
            }
            b'{' | b'[' => {
                depth += 1;
                key_matches = false;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                key_matches = false;
            }
            b':' if key_matches => {
                let rest = &line[i + 1..];
                let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
                let len = rest[start..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(rest.len() - start);
                return (len > 0).then(|| &rest[start..start + len]);
            }
            b',' => key_matches = false,
            _ => {}
        }
        i += 1;
    }
    None
}

/// `ts` as milliseconds: a time string, or epoch seconds or milliseconds,
/// within the years the store keeps.
fn timestamp(ts: &Scalar) -> Result<i64, String> {
    let epoch = |f: f64| {
        let ms = if f.abs() >= EPOCH_MS_THRESHOLD {
            f
        } else {
            f * 1000.0
        };
        (ms.is_finite() && ms.abs() < 9.2e18).then(|| ms.round() as i64)
    };
    let int = |i: i64| {
        if (i.unsigned_abs() as f64) >= EPOCH_MS_THRESHOLD {
            Some(i)
        } else {
            i.checked_mul(1000)
        }
    };
    // `None` when the number is too large for a timestamp at all.
    let (ms, shown) = match ts {
        Scalar::Int(i) => (int(*i), i.to_string()),
        Scalar::UInt(u) => (i64::try_from(*u).ok().and_then(int), u.to_string()),
        Scalar::Float(f) => (epoch(*f), f.to_string()),
        Scalar::Str(s) => match parse_time_text(s) {
            Some(ms) => (Some(ms), format!("\"{}\"", show(s.as_bytes()))),
            None => {
                return Err(format!(
                    "`ts` \"{}\" is not a time: expected RFC 3339 or epoch seconds or milliseconds",
                    show(s.as_bytes())
                ));
            }
        },
        other => {
            return Err(format!(
                "`ts` must be a time string or an epoch number, not {}",
                other.kind()
            ));
        }
    };
    ms.filter(|&ms| is_stored(ms)).ok_or_else(|| {
        format!(
            "`ts` {} is outside the years 0 to 9999 that the store keeps",
            show(shown.as_bytes())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Format, IngestError};
    use super::*;

    fn jl(text: &str) -> Vec<Sample> {
        run(text, Format::JsonLines, &opts()).unwrap().1
    }

    const T: i64 = 1_794_787_201_234; // 2026-11-16T00:00:01.234Z

    #[test]
    fn long_decimals_read_exactly() {
        // serde_json alone reads this one 1 ulp off.
        let text = r#"{"ts":1,"metric":"m","labels":{"v":"\"value\":1"},"value":-1.5e-300}
{"metric":"m","note":"\"value\":2","timestamp":1,"value":0.30000000000000004}"#;
        let got = jl(text);
        assert_eq!(got[0].3.to_bits(), (-1.5e-300f64).to_bits());
        assert_eq!(got[1].3.to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(
            top_level_number(br#"{"a":{"value":1},"b":"value","value": 2.5e3}"#, "value"),
            Some(&b"2.5e3"[..])
        );
        assert_eq!(top_level_number(br#"{"value":"NaN"}"#, "value"), None);
    }

    #[test]
    fn is_error_marks_a_failed_tool_call() {
        let text = r#"{"ts":1,"server":"a","method":"tools/call","tool":"t","duration_ms":1,"isError":true}
{"ts":2,"server":"a","method":"tools/call","tool":"t","duration_ms":1,"is_error":true,"error":-32603}
{"ts":3,"server":"a","method":"tools/call","tool":"t","duration_ms":1,"is_error":false}
"#;
        let got = jl(text);
        assert_eq!(
            got[0]
                .1
                .iter()
                .find(|(k, _)| k == "error.type")
                .map(|(_, v)| v.as_str()),
            Some(TOOL_ERROR)
        );
        assert_eq!(
            got[1]
                .1
                .iter()
                .find(|(k, _)| k == "error.type")
                .map(|(_, v)| v.as_str()),
            Some("-32603"),
            "an explicit error wins"
        );
        assert!(got[2].1.iter().all(|(k, _)| k != "error.type"));
        let e = parse_error(
            r#"{"ts":1,"method":"x","duration_ms":1,"isError":"yes"}"#,
            Format::JsonLines,
            &opts(),
        );
        assert_eq!(e.col, 38, "{e}");
        assert!(
            e.message
                .contains("`isError` must be true or false, not a string"),
            "{e}"
        );
    }

    #[test]
    fn the_call_metric_is_declared_an_event() {
        let mut sink = crate::model::MemorySink::default();
        let text = "\n{\"ts\":1,\"method\":\"ping\",\"duration_ms\":1}\n";
        super::super::ingest_reader(
            text.as_bytes(),
            "c.jsonl",
            Format::JsonLines,
            &opts(),
            &mut sink,
        )
        .unwrap();
        let m = &sink.metadata[CALL_METRIC];
        assert_eq!(
            (m.kind, m.source),
            (MetricType::Event, TypeSource::Declared)
        );
        assert_eq!(m.declared_at.as_deref(), Some("c.jsonl:2"));
        assert_eq!(m.unit.as_deref(), Some("seconds"));
    }

    #[test]
    fn mcp_calls_become_duration_samples() {
        let text = r#"{"ts":"2026-11-16T00:00:01.234Z","server":"mcp-01","method":"tools/call","tool":"search","duration_ms":125.5,"error":null,"session":"s-01","transport":"stdio"}
{"ts":1794787201234,"server":"mcp-01","method":"tools/call","tool":"search","duration_ms":2000,"error":-32603,"session":"s-01","transport":"stdio","extra":{"a":[1,2]}}

{"ts":1794787201.234,"server":"mcp-02","method":"initialize","duration_ms":3,"error":"timeout"}
{"ts":1794787201,"method":"ping","duration_ms":0.5,"tool":null,"error":-32602.0,"session":7}
"#;
        let got = jl(text);
        let call =
            |l: &[(&str, &str)], ts: i64, v: f64| (CALL_METRIC.to_string(), labels(l), ts, v);
        let full = [
            ("server", "mcp-01"),
            ("mcp.method.name", "tools/call"),
            ("gen_ai.tool.name", "search"),
            ("mcp.session.id", "s-01"),
            ("network.transport", "stdio"),
        ];
        let mut with_error = full.to_vec();
        with_error.push(("error.type", "-32603"));
        assert_eq!(
            got,
            vec![
                call(&full, T, 0.1255),
                call(&with_error, T, 2.0),
                call(
                    &[
                        ("server", "mcp-02"),
                        ("mcp.method.name", "initialize"),
                        ("error.type", "timeout")
                    ],
                    T,
                    0.003
                ),
                call(
                    &[
                        ("mcp.method.name", "ping"),
                        ("error.type", "-32602"),
                        ("mcp.session.id", "7")
                    ],
                    T - 234,
                    0.0005
                ),
            ]
        );
        let (r, _) = run(text, Format::JsonLines, &opts()).unwrap();
        assert_eq!((r.lines, r.samples, r.series), (5, 4, 4));
    }

    #[test]
    fn generic_samples_and_mixed_forms() {
        let text = r#"{"ts":"2026-11-16T00:00:01.234Z","metric":"process.memory.usage","labels":{"server":"mcp-01","empty":"","n":3,"z":null},"value":1e9}
{"metric":"m","value":"NaN","ts":1794787201234}
{"metric":"m","value":"+Inf","ts":"2026-11-16 00:00:01"}
{"metric":"m","value":"-Inf","ts":1794787201234,"labels":{}}
{"ts":1794787201234,"method":"ping","duration_ms":1}
{"metric":"esc\"aped\u00e9","value":-2,"ts":1794787201234}
"#;
        let got = jl(text);
        assert_eq!(
            got[0],
            (
                "process.memory.usage".to_string(),
                labels(&[("n", "3"), ("server", "mcp-01")]),
                T,
                1e9
            )
        );
        assert_eq!((got[1].0.as_str(), got[1].2), ("m", T));
        assert!(got[1].3.is_nan());
        assert_eq!(got[2], ("m".to_string(), vec![], T - 234, f64::INFINITY));
        assert_eq!(got[3], ("m".to_string(), vec![], T, f64::NEG_INFINITY));
        assert_eq!(got[4].0, CALL_METRIC);
        assert_eq!(got[5].0, "esc\"aped\u{e9}");
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn errors_name_the_field_and_column() {
        let cases: &[(&str, u64, &str)] = &[
            (
                r#"{"ts":1,"duration_ms":"12","method":"x"}"#,
                9,
                "`duration_ms` must be a number, not a string",
            ),
            (r#"{"method":"x","duration_ms":1}"#, 1, "missing `ts`"),
            (
                r#"{"ts":"soon","duration_ms":1}"#,
                2,
                "`ts` \"soon\" is not a time",
            ),
            (
                r#"{"ts":true,"duration_ms":1}"#,
                2,
                "`ts` must be a time string or an epoch number, not a boolean",
            ),
            (
                r#"{"ts":1,"method":"x"}"#,
                1,
                "MCP call without `duration_ms`",
            ),
            (
                r#"{"ts":1,"duration_ms":1,"error":{"code":1}}"#,
                25,
                "`error` must be a JSON-RPC error code",
            ),
            (
                r#"{"ts":1,"duration_ms":1,"error":1.5}"#,
                25,
                "not a fractional number",
            ),
            (
                r#"{"ts":1,"duration_ms":1,"server":["a"]}"#,
                25,
                "`server` must be a string, not an array",
            ),
            (
                r#"{"ts":1,"duration_ms":1,"tool":true}"#,
                25,
                "`tool` must be a string, not a boolean",
            ),
            (
                r#"{"ts":1,"metric":"m"}"#,
                1,
                "generic sample without `value`",
            ),
            (
                r#"{"ts":1,"metric":"m","value":"lots"}"#,
                22,
                "`value` \"lots\" is not a number",
            ),
            (r#"{"ts":1,"metric":"m","value":[1]}"#, 22, "not an array"),
            (
                r#"{"ts":1,"metric":3,"value":1}"#,
                9,
                "`metric` must be a string, not a number",
            ),
            (r#"{"ts":1,"metric":"","value":1}"#, 9, "empty `metric`"),
            (
                r#"{"ts":1,"metric":"m","value":1,"labels":{"metric":"x"}}"#,
                42,
                "label name `metric` is reserved",
            ),
            (
                r#"{"ts":1,"metric":"m","value":1,"labels":{"a":"1","a":"2"}}"#,
                42,
                "label `a` appears twice",
            ),
            (
                r#"{"ts":1,"metric":"m","value":1,"labels":{"a":{}}}"#,
                42,
                "label `a` must be a string, not an object",
            ),
            (
                r#"{"ts":1,"metric":"m","value":1,"labels":[1]}"#,
                40,
                "invalid type: sequence, expected `labels` as an object",
            ),
            (
                r#"{"ts":1,"ts":2,"metric":"m","value":1}"#,
                12,
                "duplicate field `ts`",
            ),
            (r#"{"ts":1,"value":1}"#, 1, "neither an MCP call"),
            (r#"{"ts":1,"metric":"m","value":1"#, 30, "EOF while parsing"),
            (r#" [1,2]"#, 2, "expected a JSON object `{...}`, found `[`"),
            (r#"{"ts":1} x"#, 10, "trailing characters"),
        ];
        for &(text, col, msg) in cases {
            let e = parse_error(text, Format::JsonLines, &opts());
            assert!(e.message.contains(msg), "{text}: {e} lacks {msg:?}");
            assert_eq!((e.line, e.col), (1, col), "{text}: {e}");
            assert!(!e.message.contains(" at line "), "{e}");
        }
        let e = parse_error(
            "\n{\"ts\":1,\"metric\":\"m\"}\n",
            Format::JsonLines,
            &opts(),
        );
        assert_eq!(e.line, 2);
        assert!(matches!(
            run(
                "{\"ts\":1, \"duration_ms\":1}\nnot json\n",
                Format::JsonLines,
                &opts()
            ),
            Err(IngestError::Parse(ParseError {
                line: 2,
                col: 1,
                ..
            }))
        ));
    }

    use super::super::ParseError;

    #[test]
    fn epoch_numbers_are_seconds_or_milliseconds() {
        assert_eq!(
            timestamp(&Scalar::Int(1_794_787_201)),
            Ok(1_794_787_201_000)
        );
        assert_eq!(timestamp(&Scalar::Int(1_794_787_201_234)), Ok(T));
        assert_eq!(timestamp(&Scalar::UInt(1_794_787_201_234)), Ok(T));
        assert_eq!(timestamp(&Scalar::UInt(1_794_787_201)), Ok(T - 234));
        assert_eq!(timestamp(&Scalar::Float(1_794_787_201.234_5)), Ok(T + 1));
        assert!(timestamp(&Scalar::Float(f64::MAX)).is_err());
        // The years 0 to 9999, and nothing the writer would refuse later.
        assert_eq!(
            timestamp(&Scalar::Int(253_402_300_799_999)),
            Ok(253_402_300_799_999)
        );
        for out in [
            Scalar::Int(253_402_300_800_000),
            Scalar::Int(i64::MAX / 10),
            Scalar::Int(-62_167_219_201),
            Scalar::UInt(u64::MAX),
            Scalar::Str(Cow::Borrowed("99999999999999999")),
        ] {
            let e = timestamp(&out).unwrap_err();
            assert!(e.contains("outside the years 0 to 9999"), "{e}");
        }
    }

    #[test]
    fn fuzzed_lines_never_panic_and_point_inside_the_line() {
        let seeds = [
            r#"{"ts":"2026-11-16T00:00:01.234Z","server":"mcp-01","method":"tools/call","tool":"search","duration_ms":125.5,"error":null,"session":"s-01","transport":"stdio"}"#,
            r#"{"ts":1794787201234,"server":"a","method":"ping","duration_ms":2,"error":-32603}"#,
            r#"{"ts":"2026-11-16 00:00:01","metric":"m","labels":{"a":"b\"c","n":1},"value":"NaN"}"#,
            r#"{"ts":1794787201.5,"metric":"m","value":-1e300}"#,
        ];
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let lines = fuzz_lines(&mut rng, &seeds, 20_000, 5);
        let (ok, samples) = fuzz(Format::JsonLines, &lines, &opts(), "");
        assert!(ok > 4000 && ok < 20_000, "{ok}");
        assert!(samples >= 4000);
    }
}
