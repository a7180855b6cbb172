//! Prometheus text exposition 0.0.4 and OpenMetrics 1.0 text, in one parser
//! with a flag.
//!
//! `name{label="value",...} value [timestamp]`, with `# HELP`, `# TYPE` and
//! `# UNIT` lines checked for shape, other comments and blank lines ignored.
//! Timestamps are integer milliseconds in Prometheus text and seconds (maybe
//! decimal) in OpenMetrics; a sample without one takes `--at`. OpenMetrics
//! must end with `# EOF` (without it the file is taken as truncated, an
//! error), nothing but blank lines may follow, and samples may carry
//! exemplars (` # {...} value [ts]`), which are checked and dropped.
//! Histograms and summaries are stored as the sample series they are written
//! as (`_bucket{le=...}`, `_sum`, `_count`, ...).
//!
//! Beyond the two specs, names written the Prometheus 3 way are accepted:
//! quoted UTF-8 metric and label names (`{"mcp.server.sessions.open",
//! "server.name"="a"}`), and `.` in unquoted names (OpenTelemetry's names).

use super::{
    Fail, IngestError, RawMap, Run, bad, check_label_name, find_either, for_each_line, parse_f64,
    parse_i64, repeated_label, show, show_str, stored_ts,
};
use crate::metadata::{MetricMeta, MetricType, TypeSource};
use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;

/// Metric types a `# TYPE` line may name (Prometheus and OpenMetrics).
const TYPES: [&str; 9] = [
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "gaugehistogram",
    "stateset",
    "info",
    "unknown",
];

pub(crate) fn ingest(
    reader: &mut dyn BufRead,
    run: &mut Run,
    openmetrics: bool,
) -> Result<(), IngestError> {
    let mut parser = Parser {
        om: openmetrics,
        cache: RawMap::default(),
        entries: Vec::new(),
        prev: NONE,
        types: HashMap::new(),
        units: HashMap::new(),
        helps: HashMap::new(),
        metrics: BTreeSet::new(),
        eof: false,
        content: false,
        line: 0,
        om_marker: None,
        timestamped: 0,
        seconds_like: 0,
        first_seconds_like: None,
    };
    let result = for_each_line(reader, run, |line, number, run| {
        // Kept for `# TYPE` lines, which remember where a family was declared.
        parser.line = number;
        parser.parse_line(line, run)
    });
    result?;
    parser.describe(run);
    if openmetrics && !parser.eof {
        let missing = bad(
            1,
            if parser.content {
                "OpenMetrics text ends with a `# EOF` line, and this has none: is it truncated?"
            } else {
                "OpenMetrics text ends with a `# EOF` line, and this file has no lines at all: \
                 is it truncated?"
            },
        );
        run.settle(parser.line + 1, missing)?;
    }
    if let Some(error) = parser.misread_openmetrics(run) {
        return Err(error);
    }
    Ok(())
}

/// Integer timestamps from this up to [`SECONDS_LIKE_END`], read as
/// milliseconds, fall in 1970-01-12 .. 1973-03-03; read as seconds, in
/// 2001 .. 5138: OpenMetrics seconds given to the Prometheus parser.
const SECONDS_LIKE_START: i64 = 1_000_000_000;
const SECONDS_LIKE_END: i64 = 100_000_000_000;

/// No entry.
const NONE: u32 = u32::MAX;

/// A series seen in this file. Files repeat series in a fixed order (series
/// by series, or scrape by scrape), so the series that followed this one
/// last time is the best guess for the next line: a prefix compare then
/// replaces both the label-set scan and the hash lookup.
struct Entry {
    raw: Box<[u8]>,
    id: u32,
    next: u32,
}

struct Parser {
    om: bool,
    /// Raw series text (name and label set as written) to its entry.
    cache: RawMap<u32>,
    entries: Vec<Entry>,
    /// The entry of the previous sample line.
    prev: u32,
    /// Metric name to (type index in [`TYPES`], line of its `# TYPE`).
    types: HashMap<String, (usize, u64)>,
    /// `# UNIT` and `# HELP` of each family.
    units: HashMap<String, String>,
    helps: HashMap<String, String>,
    /// The metric names of the file's series, described at its end.
    metrics: BTreeSet<String>,
    eof: bool,
    /// Whether any line had content.
    content: bool,
    line: u64,
    /// Prometheus text only: the first line that only OpenMetrics has
    /// (`# EOF`, `# UNIT`), and what it is.
    om_marker: Option<(u64, &'static str)>,
    /// Prometheus text only: samples with a timestamp of their own, those
    /// whose timestamp looks like epoch seconds, and where the first of
    /// those is (line, column, timestamp).
    timestamped: u64,
    seconds_like: u64,
    first_seconds_like: Option<(u64, usize, i64)>,
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn skip_ws(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_ws(line[i]) {
        i += 1;
    }
    i
}

#[inline]
fn token_end(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && !is_ws(line[i]) {
        i += 1;
    }
    i
}

/// Byte classes: bit 1 metric-name byte, bit 2 label-name byte.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            t[b] = 3;
        } else if c == b':' {
            t[b] = 1;
        }
        b += 1;
    }
    t
};

/// Bytes of an unquoted metric name: Prometheus's `[a-zA-Z0-9_:]` plus `.`.
#[inline]
fn is_name_byte(b: u8) -> bool {
    CLASS[b as usize] & 1 != 0
}

/// Bytes of an unquoted label name: Prometheus's `[a-zA-Z0-9_]` plus `.`.
#[inline]
fn is_label_byte(b: u8) -> bool {
    CLASS[b as usize] & 2 != 0
}

impl Parser {
    fn parse_line(&mut self, line: &[u8], run: &mut Run) -> Result<(), Fail> {
        let start = skip_ws(line, 0);
        if self.eof {
            return if start == line.len() {
                Ok(())
            } else {
                bad(
                    start + 1,
                    "text after `# EOF`, which ends an OpenMetrics exposition",
                )
            };
        }
        if start == line.len() {
            return Ok(());
        }
        self.content = true;
        if line[start] == b'#' {
            return self.comment(line, start, run);
        }
        // The predicted series' text was checked when first seen, and
        // scanning this line would stop at the same place.
        let predicted = self
            .entries
            .get(self.prev as usize)
            .and_then(|e| self.entries.get(e.next as usize))
            .filter(|e| {
                line[start..].starts_with(&e.raw)
                    && line.get(start + e.raw.len()).is_some_and(|&b| is_ws(b))
            })
            .map(|e| e.raw.len());
        let end = match predicted {
            Some(len) => start + len,
            None => series_end(line, start)?,
        };

        let vs = skip_ws(line, end);
        if vs == line.len() {
            return bad(vs + 1, "expected a value after the series");
        }
        if vs == end {
            return bad(
                end + 1,
                format!(
                    "expected a space and a value after the series, found `{}`",
                    show(&line[end..end + 1])
                ),
            );
        }
        let ve = token_end(line, vs);
        let Some(value) = parse_f64(&line[vs..ve]) else {
            return bad(
                vs + 1,
                format!(
                    "`{}` is not a number (nor NaN, +Inf, -Inf)",
                    show(&line[vs..ve])
                ),
            );
        };

        let mut i = skip_ws(line, ve);
        let mut ts = None;
        let ts_col = i + 1;
        if i < line.len() && line[i] != b'#' {
            let te = token_end(line, i);
            ts = Some(self.timestamp(&line[i..te], i)?);
            i = skip_ws(line, te);
        }
        if i < line.len() {
            if line[i] != b'#' {
                return bad(
                    i + 1,
                    format!("unexpected `{}` after the timestamp", show(&line[i..])),
                );
            }
            if !self.om {
                return bad(
                    i + 1,
                    "exemplars (` # {...} value`) are only allowed in OpenMetrics (--format openmetrics)",
                );
            }
            exemplar(line, i)?;
        }
        let ts = match ts {
            Some(t) => {
                if !self.om {
                    self.note_timestamp(t, ts_col);
                }
                t
            }
            None => run.default_ts()?,
        };

        let entry = match predicted {
            Some(_) => self.entries[self.prev as usize].next,
            None => {
                let raw = &line[start..end];
                match self.cache.get(raw) {
                    Some(&entry) => entry,
                    None => {
                        let (metric, labels) = parse_series(line, start, end)?;
                        if !self.metrics.contains(&metric) {
                            self.metrics.insert(metric.clone());
                        }
                        let id = run.intern(metric, labels, start + 1)?;
                        let entry = self.entries.len() as u32;
                        self.entries.push(Entry {
                            raw: raw.into(),
                            id,
                            next: NONE,
                        });
                        self.cache.insert(raw.into(), entry);
                        entry
                    }
                }
            }
        };
        if let Some(prev) = self.entries.get_mut(self.prev as usize) {
            prev.next = entry;
        }
        self.prev = entry;
        run.push(self.entries[entry as usize].id, ts, value)?;
        Ok(())
    }

    fn timestamp(&self, tok: &[u8], at: usize) -> Result<i64, Fail> {
        if self.om {
            match parse_seconds_ms(tok) {
                Some(ms) => stored_ts(
                    ms,
                    tok,
                    at + 1,
                    " (OpenMetrics timestamps are seconds; Prometheus text, in milliseconds, \
                     is --format prometheus)",
                ),
                None => bad(
                    at + 1,
                    format!(
                        "`{}` is not a timestamp (OpenMetrics: seconds since the epoch)",
                        show(tok)
                    ),
                ),
            }
        } else {
            match parse_i64(tok) {
                Some(t) => stored_ts(
                    t,
                    tok,
                    at + 1,
                    " (Prometheus text timestamps are milliseconds)",
                ),
                None if parse_seconds_ms(tok).is_some() => bad(
                    at + 1,
                    format!(
                        "`{}` is not a timestamp: Prometheus text takes integer milliseconds \
                         (decimal seconds are OpenMetrics: --format openmetrics)",
                        show(tok)
                    ),
                ),
                None => bad(
                    at + 1,
                    format!("`{}` is not a timestamp (integer milliseconds)", show(tok)),
                ),
            }
        }
    }

    /// Prometheus text only: counts a sample's own timestamp, to tell
    /// OpenMetrics seconds read as milliseconds at the end.
    fn note_timestamp(&mut self, ts: i64, col: usize) {
        self.timestamped += 1;
        if (SECONDS_LIKE_START..SECONDS_LIKE_END).contains(&ts) {
            self.seconds_like += 1;
            self.first_seconds_like.get_or_insert((self.line, col, ts));
        }
    }

    /// Prometheus text only: the error for a file that is OpenMetrics (its
    /// timestamps in seconds) by its marker lines or, lacking those, by
    /// every timestamp lying in 1970-1973 when read as milliseconds. Fatal,
    /// whatever `skip_invalid` says: every timestamp of the file is wrong.
    fn misread_openmetrics(&self, run: &Run) -> Option<IngestError> {
        let (line, col, ts) = self.first_seconds_like?;
        let evidence = match self.om_marker {
            Some((marker_line, what)) => format!("it has `{what}` on line {marker_line}"),
            None if self.seconds_like == self.timestamped => {
                "every timestamp in it falls in 1970-1973 read as milliseconds".to_string()
            }
            None => return None,
        };
        Some(run.fatal(
            line,
            col,
            format!(
                "timestamp `{ts}` read as milliseconds (Prometheus text) is {}, but this looks \
                 like OpenMetrics, whose timestamps are seconds: {evidence}; use --format \
                 openmetrics",
                crate::time::format_ms(ts)
            ),
        ))
    }

    fn comment(&mut self, line: &[u8], hash: usize, run: &mut Run) -> Result<(), Fail> {
        let kw_start = skip_ws(line, hash + 1);
        let kw_end = token_end(line, kw_start);
        let kw = &line[kw_start..kw_end];
        if kw == b"EOF" && skip_ws(line, kw_end) == line.len() {
            if self.om {
                self.eof = true;
            } else {
                self.om_marker.get_or_insert((self.line, "# EOF"));
            }
            return Ok(());
        }
        if !self.om && kw == b"UNIT" && kw_start > hash + 1 {
            self.om_marker.get_or_insert((self.line, "# UNIT"));
        }
        if kw_start == hash + 1 || !matches!(kw, b"HELP" | b"TYPE" | b"UNIT") {
            return Ok(()); // a plain comment
        }
        let kw = std::str::from_utf8(kw).unwrap_or("?");
        let ns = skip_ws(line, kw_end);
        if ns == line.len() || ns == kw_end {
            return bad(ns + 1, format!("`# {kw}` needs a metric name"));
        }
        let (name, ne) = if line[ns] == b'"' {
            let (name, next) = quoted_string(line, ns)?;
            (name, next)
        } else {
            let mut e = ns;
            while e < line.len() && is_name_byte(line[e]) {
                e += 1;
            }
            if e == ns || line[ns].is_ascii_digit() {
                return bad(
                    ns + 1,
                    format!(
                        "`{}` is not a metric name",
                        show(&line[ns..token_end(line, ns)])
                    ),
                );
            }
            (String::from_utf8_lossy(&line[ns..e]).into_owned(), e)
        };
        if ne < line.len() && !is_ws(line[ne]) {
            return bad(
                ns + 1,
                format!(
                    "`{}` is not a metric name",
                    show(&line[ns..token_end(line, ns)])
                ),
            );
        }
        let ts = skip_ws(line, ne);
        let te = token_end(line, ts);
        match kw {
            "TYPE" => {
                let ty = &line[ts..te];
                if ty.is_empty() {
                    return bad(ts + 1, format!("`# TYPE {}` needs a type", show_str(&name)));
                }
                let Some(index) = TYPES.iter().position(|t| t.as_bytes() == ty) else {
                    return bad(
                        ts + 1,
                        format!(
                            "unknown metric type `{}`: expected one of {}",
                            show(ty),
                            TYPES.join(", ")
                        ),
                    );
                };
                let after = skip_ws(line, te);
                if after < line.len() {
                    return bad(
                        after + 1,
                        format!("unexpected `{}` after the type", show(&line[after..])),
                    );
                }
                match self.types.get(&name) {
                    Some(&(_, first)) if self.om => bad(
                        ts + 1,
                        format!(
                            "second `# TYPE` for `{}` (first on line {first}): an OpenMetrics \
                             family appears once",
                            show_str(&name)
                        ),
                    ),
                    Some(&(was, first)) if was != index => bad(
                        ts + 1,
                        format!(
                            "`{}` was declared {} on line {first}, now {}",
                            show_str(&name),
                            TYPES[was],
                            TYPES[index]
                        ),
                    ),
                    Some(_) => Ok(()),
                    None => {
                        if let Some(kind) = MetricType::parse(TYPES[index]) {
                            run.types.insert(name.clone(), kind);
                        }
                        self.types.insert(name, (index, self.line));
                        Ok(())
                    }
                }
            }
            "UNIT" => {
                let after = skip_ws(line, te);
                if after < line.len() {
                    return bad(
                        after + 1,
                        format!("unexpected `{}` after the unit", show(&line[after..])),
                    );
                }
                if te > ts {
                    let unit = String::from_utf8_lossy(&line[ts..te]).into_owned();
                    self.units.insert(name, unit);
                }
                Ok(())
            }
            _ => {
                // HELP: any docstring, with `\\` and `\n` escapes.
                let text = unescape_help(String::from_utf8_lossy(&line[ts..]).trim_end());
                if !text.is_empty() {
                    self.helps.insert(name, text);
                }
                Ok(())
            }
        }
    }

    /// Hands the run what the file's `# TYPE`, `# UNIT` and `# HELP` lines
    /// say of each metric name its series use. Names of no declared family
    /// are left to the store, which infers their type from the name.
    fn describe(&self, run: &mut Run) {
        for metric in &self.metrics {
            let Some((kind, part, family)) = super::checks::declared_family(metric, &run.types)
            else {
                continue;
            };
            let family = family.to_string();
            let line = self.types.get(&family).map_or(0, |&(_, line)| line);
            let meta = MetricMeta {
                kind,
                source: TypeSource::Declared,
                part,
                unit: self.units.get(&family).cloned(),
                help: self.helps.get(&family).cloned(),
                declared_at: Some(format!("{}:{line}", run.name)),
                family,
            };
            run.describe(metric, meta);
        }
    }
}

/// A `# HELP` docstring with its escapes (`\\`, `\n`) resolved.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// End of the series text that starts at `start`: after the metric name, or
/// after the `}` of its label set (quotes respected).
#[inline]
fn series_end(line: &[u8], start: usize) -> Result<usize, Fail> {
    let mut i = start;
    while i < line.len() && is_name_byte(line[i]) {
        i += 1;
    }
    if i < line.len() && line[i] == b'{' {
        return brace_end(line, i);
    }
    if i == start {
        return bad(
            start + 1,
            format!(
                "expected a metric name, found `{}`",
                show(&line[start..token_end(line, start).max(start + 1)])
            ),
        );
    }
    Ok(i)
}

/// Index after the `}` closing the `{` at `open`.
#[inline]
fn brace_end(line: &[u8], open: usize) -> Result<usize, Fail> {
    let mut i = open + 1;
    while let Some(j) = find_either(line, i, b'"', b'}') {
        if line[j] == b'}' {
            return Ok(j + 1);
        }
        i = string_end(line, j)?;
    }
    bad(open + 1, "label set has no closing `}`")
}

/// Index after the `"` closing the one at `quote`.
#[inline]
fn string_end(line: &[u8], quote: usize) -> Result<usize, Fail> {
    let mut i = quote + 1;
    while let Some(j) = find_either(line, i, b'"', b'\\') {
        if line[j] == b'"' {
            return Ok(j + 1);
        }
        i = j + 2;
    }
    bad(quote + 1, "quoted string has no closing `\"`")
}

/// A quoted string at `quote` with its escapes (`\\`, `\"`, `\n`) resolved,
/// and the index after it.
fn quoted_string(line: &[u8], quote: usize) -> Result<(String, usize), Fail> {
    let mut out = Vec::new();
    let mut i = quote + 1;
    loop {
        match line.get(i) {
            None => return bad(quote + 1, "quoted string has no closing `\"`"),
            Some(b'"') => break,
            Some(b'\\') => {
                match line.get(i + 1) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'n') => out.push(b'\n'),
                    Some(_) => {
                        return bad(
                            i + 1,
                            format!(
                                "invalid escape `{}`: only \\\\, \\\" and \\n are allowed",
                                show(&line[i..(i + 2).min(line.len())])
                            ),
                        );
                    }
                    None => return bad(quote + 1, "quoted string has no closing `\"`"),
                }
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Ok((s, i + 1)),
        Err(_) => bad(quote + 1, "quoted string is not valid UTF-8"),
    }
}

/// Parses the series text `line[start..end]` (already known to be a name
/// and/or a balanced label set) into a metric name and labels.
fn parse_series(
    line: &[u8],
    start: usize,
    end: usize,
) -> Result<(String, Vec<(String, String)>), Fail> {
    let mut i = start;
    while i < end && is_name_byte(line[i]) {
        i += 1;
    }
    let mut metric = None;
    if i > start {
        if line[start].is_ascii_digit() {
            return bad(
                start + 1,
                format!(
                    "metric name `{}` starts with a digit",
                    show(&line[start..i])
                ),
            );
        }
        metric = Some(String::from_utf8_lossy(&line[start..i]).into_owned());
    }
    let mut labels = Vec::new();
    if i < end {
        let (quoted_name, parsed) = label_set(line, i, metric.is_none(), true)?;
        labels = parsed;
        if quoted_name.is_some() {
            metric = quoted_name;
        }
    }
    match metric {
        Some(m) if !m.is_empty() => Ok((m, labels)),
        _ => bad(start + 1, "the series has no metric name"),
    }
}

/// Parses the label set whose `{` is at `open`. With `name_allowed`, a lone
/// quoted string first in the set is the metric name (Prometheus 3 style).
/// With `check`, label names are checked against the store's columns.
#[allow(clippy::type_complexity)]
fn label_set(
    line: &[u8],
    open: usize,
    name_allowed: bool,
    check: bool,
) -> Result<(Option<String>, Vec<(String, String)>), Fail> {
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut metric = None;
    let mut i = open + 1;
    let mut first = true;
    loop {
        i = skip_ws(line, i);
        match line.get(i) {
            None => return bad(open + 1, "label set has no closing `}`"),
            Some(b'}') => return Ok((metric, labels)),
            _ => {}
        }
        let name_at = i;
        let (name, quoted) = if line[i] == b'"' {
            let (name, next) = quoted_string(line, i)?;
            i = next;
            (name, true)
        } else {
            while i < line.len() && is_label_byte(line[i]) {
                i += 1;
            }
            if i == name_at {
                return bad(
                    i + 1,
                    format!("expected a label name, found `{}`", show(&line[i..i + 1])),
                );
            }
            if line[name_at].is_ascii_digit() {
                return bad(
                    name_at + 1,
                    format!(
                        "label name `{}` starts with a digit",
                        show(&line[name_at..i])
                    ),
                );
            }
            (
                String::from_utf8_lossy(&line[name_at..i]).into_owned(),
                false,
            )
        };
        i = skip_ws(line, i);
        if quoted && first && name_allowed && matches!(line.get(i), Some(b',' | b'}')) {
            metric = Some(name);
        } else {
            if line.get(i) != Some(&b'=') {
                return bad(
                    i + 1,
                    format!("expected `=` after label name `{}`", show_str(&name)),
                );
            }
            i = skip_ws(line, i + 1);
            if line.get(i) != Some(&b'"') {
                return bad(
                    i + 1,
                    format!(
                        "the value of label `{}` must be in double quotes",
                        show_str(&name)
                    ),
                );
            }
            let (value, next) = quoted_string(line, i)?;
            i = next;
            if check && let Err(message) = check_label_name(&name) {
                return bad(name_at + 1, message);
            }
            if let Some(message) = repeated_label(&labels, &name) {
                return bad(name_at + 1, message);
            }
            labels.push((name, value));
        }
        first = false;
        i = skip_ws(line, i);
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok((metric, labels)),
            _ => {
                return bad(
                    i + 1,
                    format!(
                        "expected `,` or `}}` after a label, found `{}`",
                        show(&line[i.min(line.len())..(i + 1).min(line.len())])
                    ),
                );
            }
        }
    }
}

/// Checks an OpenMetrics exemplar ` # {labels} value [timestamp]` at `hash`
/// running to the end of the line.
fn exemplar(line: &[u8], hash: usize) -> Result<(), Fail> {
    let open = skip_ws(line, hash + 1);
    if line.get(open) != Some(&b'{') {
        return bad(
            open + 1,
            "an exemplar after `#` starts with a label set `{...}`",
        );
    }
    let close = brace_end(line, open)?;
    label_set(line, open, false, false)?;
    let vs = skip_ws(line, close);
    let ve = token_end(line, vs);
    if vs == ve {
        return bad(vs + 1, "the exemplar needs a value");
    }
    if parse_f64(&line[vs..ve]).is_none() {
        return bad(
            vs + 1,
            format!("exemplar value `{}` is not a number", show(&line[vs..ve])),
        );
    }
    let ts = skip_ws(line, ve);
    if ts < line.len() {
        let te = token_end(line, ts);
        if parse_seconds_ms(&line[ts..te]).is_none() {
            return bad(
                ts + 1,
                format!(
                    "exemplar timestamp `{}` is not a number",
                    show(&line[ts..te])
                ),
            );
        }
        let after = skip_ws(line, te);
        if after < line.len() {
            return bad(
                after + 1,
                format!("unexpected `{}` after the exemplar", show(&line[after..])),
            );
        }
    }
    Ok(())
}

/// Seconds since the epoch (maybe decimal, maybe with an exponent) to
/// milliseconds, rounded to the nearest.
pub(crate) fn parse_seconds_ms(tok: &[u8]) -> Option<i64> {
    if let Some(ms) = exact_seconds_ms(tok) {
        return Some(ms);
    }
    if tok
        .iter()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None; // NaN, Inf
    }
    let secs = parse_f64(tok)?;
    let ms = (secs * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.2e18).then_some(ms as i64)
}

/// `[+-]digits[.digits]` with at most 15 integer digits, exactly (rounded
/// to the nearest millisecond); else `None`.
#[inline]
fn exact_seconds_ms(tok: &[u8]) -> Option<i64> {
    let (neg, body) = match tok.first()? {
        b'-' => (true, &tok[1..]),
        b'+' => (false, &tok[1..]),
        _ => (false, tok),
    };
    let mut i = 0;
    let mut secs: i64 = 0;
    while i < body.len() && body[i].is_ascii_digit() {
        if i == 15 {
            return None;
        }
        secs = secs * 10 + i64::from(body[i] - b'0');
        i += 1;
    }
    let int_digits = i;
    let mut sub: i64 = 0;
    let mut frac_digits = 0;
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            if frac_digits < 3 {
                sub = sub * 10 + i64::from(body[i] - b'0');
            } else if frac_digits == 3 && body[i] >= b'5' {
                sub += 1;
            }
            frac_digits += 1;
            i += 1;
        }
    }
    if i != body.len() || int_digits + frac_digits == 0 {
        return None;
    }
    if frac_digits < 3 {
        sub *= [1000, 100, 10][frac_digits];
    }
    let ms = secs * 1000 + sub;
    Some(if neg { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Format, IngestError};
    use super::*;
    use crate::metadata::Part;

    fn at(ms: i64) -> crate::ingest::IngestOptions {
        let mut o = opts();
        o.at_ms = Some(ms);
        o
    }

    fn prom(text: &str) -> Vec<Sample> {
        run(text, Format::Prometheus, &at(42)).unwrap().1
    }

    fn om(text: &str) -> Vec<Sample> {
        run(text, Format::OpenMetrics, &at(42)).unwrap().1
    }

    fn sample(metric: &str, l: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        (metric.to_string(), labels(l), ts, v)
    }

    #[test]
    fn prometheus_exposition_parses_every_construct() {
        let text = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9
# Minimalistic line:
metric_without_timestamp_and_labels 12.47
# A weird metric from before the epoch:
something_weird{problem=\"division by zero\"} +Inf -3982045
# A histogram
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.99\"} 76656
trailing{a=\"1\",} -Inf 7
\ttabbed\t\t5\t8
nan_value NaN 9
inf_value Inf 10
empty_label{a=\"\",b=\"x\"} 1 11
";
        let s = prom(text);
        let want = vec![
            sample(
                "http_requests_total",
                &[("code", "200"), ("method", "post")],
                1395066363000,
                1027.0,
            ),
            sample(
                "http_requests_total",
                &[("code", "400"), ("method", "post")],
                1395066363000,
                3.0,
            ),
            sample(
                "msdos_file_access_time_seconds",
                &[
                    ("error", "Cannot find file:\n\"FILE.TXT\""),
                    ("path", "C:\\DIR\\FILE.TXT"),
                ],
                42,
                1.458255915e9,
            ),
            sample("metric_without_timestamp_and_labels", &[], 42, 12.47),
            sample(
                "something_weird",
                &[("problem", "division by zero")],
                -3982045,
                f64::INFINITY,
            ),
            sample(
                "http_request_duration_seconds_bucket",
                &[("le", "0.05")],
                42,
                24054.0,
            ),
            sample(
                "http_request_duration_seconds_bucket",
                &[("le", "+Inf")],
                42,
                144320.0,
            ),
            sample("http_request_duration_seconds_sum", &[], 42, 53423.0),
            sample("http_request_duration_seconds_count", &[], 42, 144320.0),
            sample("rpc_duration_seconds", &[("quantile", "0.99")], 42, 76656.0),
            sample("trailing", &[("a", "1")], 7, f64::NEG_INFINITY),
            sample("tabbed", &[], 8, 5.0),
        ];
        assert_eq!(&s[..want.len()], &want[..]);
        assert_eq!(s.len(), want.len() + 3);
        assert_eq!(s[12].0, "nan_value");
        assert!(s[12].3.is_nan());
        assert_eq!(s[12].2, 9);
        assert_eq!(s[13], sample("inf_value", &[], 10, f64::INFINITY));
        assert_eq!(s[14], sample("empty_label", &[("b", "x")], 11, 1.0));
    }

    #[test]
    fn openmetrics_parses_seconds_exemplars_and_eof() {
        let text = "\
# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32 1520879607.789
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0 1520879607
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0
# TYPE foo histogram
foo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.067 1520879606.5
foo_bucket{le=\"+Inf\"} 17 1520879607.0004 # {} 1
foo_total 1.5e3 -1.5
# EOF

";
        let s = om(text);
        let l = &[("method", "GET"), ("path", "/api/v1")];
        assert_eq!(
            s,
            vec![
                sample(
                    "acme_http_router_request_seconds_sum",
                    l,
                    1520879607789,
                    9036.32
                ),
                sample(
                    "acme_http_router_request_seconds_count",
                    l,
                    1520879607000,
                    807283.0
                ),
                sample(
                    "acme_http_router_request_seconds_created",
                    l,
                    42,
                    1605281325.0
                ),
                sample("foo_bucket", &[("le", "0.1")], 42, 8.0),
                sample("foo_bucket", &[("le", "+Inf")], 1520879607000, 17.0),
                sample("foo_total", &[], -1500, 1500.0),
            ]
        );
    }

    #[test]
    fn openmetrics_without_eof_is_truncated() {
        let e = parse_error("m 1 1\n\n", Format::OpenMetrics, &opts());
        assert_eq!((e.line, e.col), (3, 1));
        assert!(e.message.contains("`# EOF`"), "{e}");
        // An empty file needs one too (OpenMetrics has at least `# EOF`).
        for text in ["", "\n"] {
            let e = parse_error(text, Format::OpenMetrics, &opts());
            assert_eq!((e.line, e.col), (text.len() as u64 + 1, 1));
            assert!(e.message.contains("no lines at all"), "{e}");
        }
        assert!(om("# EOF\n").is_empty());
        // With skip_invalid the samples are kept.
        let mut o = at(0);
        o.skip_invalid = true;
        let (r, s) = run("m 1 1\n", Format::OpenMetrics, &o).unwrap();
        assert_eq!((r.skipped, s.len()), (1, 1));
    }

    #[test]
    fn utf8_and_dotted_names_are_accepted() {
        let s = om("{\"mcp.server.sessions.open\",server=\"a\"} 3 1\n\
                    process.cpu.utilization{\"server.name\"=\"b\", \"x y\" = \"z\"} 0.5 2\n\
                    # TYPE \"a.b\" gauge\n\
                    {\"a.b\"} 1 3\n# EOF\n");
        assert_eq!(
            s,
            vec![
                sample("mcp.server.sessions.open", &[("server", "a")], 1000, 3.0),
                sample(
                    "process.cpu.utilization",
                    &[("server.name", "b"), ("x y", "z")],
                    2000,
                    0.5
                ),
                sample("a.b", &[], 3000, 1.0),
            ]
        );
    }

    #[test]
    fn series_are_interned_once_and_counted() {
        let (r, s) = run(
            "a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\na{ x = \"1\" } 3 3\nb 4 4\n",
            Format::Prometheus,
            &opts(),
        )
        .unwrap();
        assert_eq!(r.series, 2, "the same series written two ways is one");
        assert_eq!(r.samples, 4);
        assert_eq!(r.lines, 4);
        assert_eq!(s[2], sample("a", &[("x", "1")], 3, 3.0));
    }

    #[test]
    fn missing_timestamp_needs_at() {
        match run("a 1 5\nb 2\n", Format::Prometheus, &opts()) {
            Err(IngestError::MissingTimestamp { path }) => assert_eq!(path, "in"),
            other => panic!("{other:?}"),
        }
        let mut skipping = opts();
        skipping.skip_invalid = true;
        assert!(matches!(
            run("b 2\n", Format::OpenMetrics, &skipping),
            Err(IngestError::MissingTimestamp { .. })
        ));
        assert_eq!(prom("b 2\n"), vec![sample("b", &[], 42, 2.0)]);
    }

    fn err(text: &str, format: Format) -> (u64, u64, String) {
        let e = parse_error(text, format, &at(0));
        (e.line, e.col, e.message)
    }

    #[test]
    fn errors_name_line_column_and_problem() {
        let p = Format::Prometheus;
        let o = Format::OpenMetrics;
        let cases: &[(&str, Format, u64, u64, &str)] = &[
            ("ok 1\nm{a=\"1\"} abc\n", p, 2, 10, "`abc` is not a number"),
            ("m{a=\"1\"}\n", p, 1, 9, "expected a value"),
            ("m{a=\"1\"}2\n", p, 1, 9, "expected a space"),
            ("m{a=\"1\" 2\n", p, 1, 2, "no closing `}`"),
            ("m{a=\"1} 2\n", p, 1, 5, "no closing `\"`"),
            ("m{a=1} 2\n", p, 1, 5, "must be in double quotes"),
            ("m{a} 2\n", p, 1, 4, "expected `=` after label name `a`"),
            ("m{a=\"1\" b=\"2\"} 2\n", p, 1, 9, "expected `,` or `}`"),
            ("m{,} 2\n", p, 1, 3, "expected a label name"),
            ("m{1a=\"x\"} 2\n", p, 1, 3, "starts with a digit"),
            ("1m 2\n", p, 1, 1, "starts with a digit"),
            ("=x 2\n", p, 1, 1, "expected a metric name"),
            ("m{a=\"\\t\"} 2\n", p, 1, 6, "invalid escape `\\t`"),
            ("m{a=\"1\",a=\"2\"} 2\n", p, 1, 9, "label `a` appears twice"),
            (
                "m{metric=\"x\"} 2\n",
                p,
                1,
                3,
                "label name `metric` is reserved",
            ),
            ("m{day=\"x\"} 2\n", p, 1, 3, "`day` is reserved"),
            ("m{timestamp=\"x\"} 2\n", o, 1, 3, "`timestamp` is reserved"),
            ("m 1 1.5\n", p, 1, 5, "decimal seconds are OpenMetrics"),
            ("m 1 soon\n", p, 1, 5, "`soon` is not a timestamp"),
            ("m 1 NaN\n", o, 1, 5, "`NaN` is not a timestamp"),
            ("m 1 2 3\n", p, 1, 7, "unexpected `3` after the timestamp"),
            (
                "m 1 # {a=\"b\"} 1\n",
                p,
                1,
                5,
                "only allowed in OpenMetrics",
            ),
            ("m 1 # x\n", o, 1, 7, "starts with a label set"),
            ("m 1 # {a=\"b\"}\n", o, 1, 14, "needs a value"),
            ("m 1 # {a=\"b\"} x\n", o, 1, 15, "exemplar value `x`"),
            ("m 1 # {a=\"b\"} 1 2 3\n", o, 1, 19, "after the exemplar"),
            ("m 1\n# EOF\nm 2\n", o, 3, 1, "text after `# EOF`"),
            ("# TYPE\n", p, 1, 7, "`# TYPE` needs a metric name"),
            ("# TYPE m\n", p, 1, 9, "`# TYPE m` needs a type"),
            (
                "# TYPE m countr\n",
                p,
                1,
                10,
                "unknown metric type `countr`",
            ),
            ("# TYPE m gauge extra\n", p, 1, 16, "after the type"),
            ("# TYPE 9m gauge\n", p, 1, 8, "`9m` is not a metric name"),
            ("# TYPE m{} gauge\n", p, 1, 8, "`m{}` is not a metric name"),
            ("# HELP\n", o, 1, 7, "`# HELP` needs a metric name"),
            ("# UNIT m s x\n", o, 1, 12, "after the unit"),
            (
                "# TYPE m gauge\n# TYPE m gauge\n",
                o,
                2,
                10,
                "second `# TYPE` for `m` (first on line 1)",
            ),
            (
                "# TYPE m gauge\n# TYPE m counter\n",
                p,
                2,
                10,
                "declared gauge on line 1, now counter",
            ),
        ];
        for &(text, format, line, col, msg) in cases {
            let (l, c, m) = err(text, format);
            assert!(m.contains(msg), "{text:?}: {m:?} lacks {msg:?}");
            assert_eq!((l, c), (line, col), "{text:?}: {m}");
        }
        let e = match run_bytes(b"m{a=\"\xff\"} 2\n", p, &at(0)) {
            Err(IngestError::Parse(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!((e.line, e.col), (1, 5));
        assert!(e.message.contains("not valid UTF-8"), "{e}");
        // Repeating an identical TYPE is fine in Prometheus text (concatenated scrapes).
        assert_eq!(
            prom("# TYPE m gauge\nm 1 1\n# TYPE m gauge\nm 2 2\n").len(),
            2
        );
        // Comments that merely look like keywords are comments.
        assert_eq!(
            prom("#TYPE m nonsense\n# HELPFUL words\n# EOF\nm 1 1\n").len(),
            1
        );
    }

    #[test]
    fn predicted_series_match_parsing_each_line_alone() {
        let pool = [
            "m 1 1",
            "m_total 2 2",
            "m{a=\"1\"} 3 3",
            "m{a=\"1\",b=\"2\"} 4 4",
            "m{a=\"1\"}\t5 5",
            "m{a=\"1 } 2\"} 6 6",
            "m{a=\"1\"} 7",
            "  m 8 8",
            "mm 9 9",
        ];
        let mut rng = Rng(99);
        let mut text = String::new();
        let mut want = Vec::new();
        for _ in 0..3000 {
            // Runs of one series, then a jump: both paths get exercised.
            let line = rng.pick(&pool);
            for _ in 0..1 + rng.below(3) {
                text.push_str(line);
                text.push('\n');
                want.extend(prom(line));
            }
        }
        assert_eq!(prom(&text), want);
    }

    /// The report and the metadata the sink was handed.
    fn described(
        text: &str,
        format: Format,
    ) -> (
        crate::ingest::IngestReport,
        std::collections::BTreeMap<String, MetricMeta>,
    ) {
        let mut sink = crate::model::MemorySink::default();
        let report =
            crate::ingest::ingest_reader(text.as_bytes(), "f.prom", format, &at(0), &mut sink)
                .unwrap();
        (report, sink.metadata)
    }

    #[test]
    fn type_unit_and_help_attach_to_the_sample_names() {
        let text = "\
# TYPE rpc_seconds histogram
# UNIT rpc_seconds seconds
# HELP rpc_seconds Time of a call\\nin seconds.
rpc_seconds_bucket{le=\"1\"} 1 1
rpc_seconds_bucket{le=\"+Inf\"} 2 1
rpc_seconds_sum 3 1
rpc_seconds_count 2 1
# TYPE calls counter
calls_total 5 1
calls_created 1 1
# TYPE temp gauge
temp 20 1
# HELP untyped_thing has help but no type
untyped_thing 1 1
# EOF
";
        let (report, meta) = described(text, Format::OpenMetrics);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let m = &meta["rpc_seconds_bucket"];
        assert_eq!(
            (m.kind, m.part, m.family.as_str()),
            (MetricType::Histogram, Some(Part::Bucket), "rpc_seconds")
        );
        assert_eq!(m.unit.as_deref(), Some("seconds"));
        assert_eq!(m.help.as_deref(), Some("Time of a call\nin seconds."));
        assert_eq!(m.declared_at.as_deref(), Some("f.prom:1"));
        assert_eq!(m.source, TypeSource::Declared);
        assert_eq!(meta["rpc_seconds_count"].part, Some(Part::Count));
        assert_eq!(meta["rpc_seconds_sum"].part, Some(Part::Sum));
        assert_eq!(meta["calls_total"].kind, MetricType::Counter);
        assert_eq!(meta["calls_created"].part, Some(Part::Created));
        assert_eq!(meta["temp"].kind, MetricType::Gauge);
        assert_eq!(meta["temp"].declared_at.as_deref(), Some("f.prom:11"));
        assert!(
            !meta.contains_key("untyped_thing"),
            "no TYPE: left to inference"
        );
        // Prometheus text names a counter's samples as its TYPE line does.
        let (_, meta) = described(
            "# TYPE http_requests_total counter\nhttp_requests_total 1 1\n",
            Format::Prometheus,
        );
        let m = &meta["http_requests_total"];
        assert_eq!((m.kind, m.part), (MetricType::Counter, None));
    }

    #[test]
    fn a_type_that_changes_across_files_warns_and_the_newest_wins() {
        let mut sink = crate::model::MemorySink::default();
        let o = at(0);
        let first = "# TYPE m gauge\nm 1 1\n";
        crate::ingest::ingest_reader(
            first.as_bytes(),
            "a.prom",
            Format::Prometheus,
            &o,
            &mut sink,
        )
        .unwrap();
        let second = "\n# TYPE m counter\nm 2 2\n";
        let r = crate::ingest::ingest_reader(
            second.as_bytes(),
            "b.prom",
            Format::Prometheus,
            &o,
            &mut sink,
        )
        .unwrap();
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        let w = r.warnings[0].to_string();
        assert!(
            w.starts_with("b.prom:2: warning: `m` is declared counter"),
            "{w}"
        );
        assert!(w.contains("gauge in the store (from a.prom:1)"), "{w}");
        assert_eq!(sink.metadata["m"].kind, MetricType::Counter);
    }

    /// The warnings of ingesting `text` as OpenMetrics, as printed.
    fn warnings(text: &str) -> (Vec<String>, Vec<Sample>) {
        let mut sink = crate::model::MemorySink::default();
        let r = crate::ingest::ingest_reader(
            text.as_bytes(),
            "h.om",
            Format::OpenMetrics,
            &at(0),
            &mut sink,
        )
        .unwrap();
        let samples = sink
            .resolved()
            .into_iter()
            .map(|(k, t, v)| (k.metric.clone(), k.labels.clone(), t, v))
            .collect();
        (r.warnings.iter().map(|w| w.to_string()).collect(), samples)
    }

    #[test]
    fn a_histogram_without_its_inf_bucket_warns_and_is_kept() {
        let text = "\
# TYPE h histogram
h_bucket{job=\"a\",le=\"1\"} 1 1
h_bucket{job=\"a\",le=\"2\"} 2 1
h_bucket{job=\"a\",le=\"1\"} 1 2
h_bucket{job=\"a\",le=\"2\"} 3 2
h_bucket{job=\"a\",le=\"+Inf\"} 3 2
# EOF
";
        let (w, samples) = warnings(text);
        assert_eq!(samples.len(), 5, "nothing dropped");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "h.om:2: warning: histogram `h_bucket{job=\"a\"}` has no le=\"+Inf\" bucket at 1970-01-01T00:00:01Z:"
            ),
            "{w:?}"
        );
        assert!(w[0].contains("NaN"), "{w:?}");
    }

    #[test]
    fn buckets_that_go_down_as_le_rises_warn_in_either_file_order() {
        let scrape_order = "\
h_bucket{le=\"0.5\"} 4 1
h_bucket{le=\"1\"} 3 1
h_bucket{le=\"+Inf\"} 5 1
h_bucket{le=\"0.5\"} 4 2
h_bucket{le=\"1\"} 3 2
h_bucket{le=\"+Inf\"} 5 2
# EOF
";
        let (w, _) = warnings(scrape_order);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("h.om:2: warning: histogram `h_bucket` at "),
            "{w:?}"
        );
        assert!(
            w[0].contains("le=\"0.5\" counts 4, le=\"1\" counts 3")
                && w[0].contains("(and at 1 more times)"),
            "{w:?}"
        );
        // Series by series (each bucket's samples together), and with a
        // good histogram beside it that must not warn.
        let mut by_series = String::new();
        for (le, v) in [("0.5", 4), ("1", 3), ("+Inf", 5)] {
            for t in 1..=3 {
                by_series.push_str(&format!("h_bucket{{le=\"{le}\"}} {v} {t}\n"));
                by_series.push_str(&format!("ok_bucket{{le=\"{le}\"}} {t} {t}\n"));
            }
        }
        by_series.push_str("# EOF\n");
        let (w, samples) = warnings(&by_series);
        assert_eq!(samples.len(), 18);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("(and at 2 more times)"), "{w:?}");
        assert!(w[0].contains("`h_bucket`"), "{w:?}");
    }

    #[test]
    fn an_le_that_is_not_a_number_warns_naming_the_series() {
        let (w, samples) =
            warnings("h_bucket{le=\"fast\"} 1 1\nh_bucket{le=\"+Inf\"} 1 1\n# EOF\n");
        assert_eq!(samples.len(), 2);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("h.om:1: warning: histogram bucket `h_bucket{le=\"fast\"}`: le=\"fast\" is not a number"),
            "{w:?}"
        );
    }

    #[test]
    fn a_counter_going_down_warns_unless_its_process_restarted() {
        // instance a restarts (its start time changes) when its counter
        // drops; instance b's counter drops twice with no restart; c's
        // `_created` changes with its drop.
        let text = "\
# TYPE process_start_time_seconds gauge
process_start_time_seconds{instance=\"a\"} 100 1
process_start_time_seconds{instance=\"a\"} 100 2
process_start_time_seconds{instance=\"a\"} 250 3
process_start_time_seconds{instance=\"b\"} 100 1
process_start_time_seconds{instance=\"b\"} 100 3
# TYPE calls counter
calls_total{instance=\"a\"} 10 1
calls_total{instance=\"a\"} 12 2
calls_total{instance=\"a\"} 1 3
calls_total{instance=\"b\"} 10 1
calls_total{instance=\"b\"} 4 2
calls_total{instance=\"b\"} 2 3
calls_total{instance=\"c\"} 10 1
calls_total{instance=\"c\"} 3 2
calls_created{instance=\"c\"} 0 1
calls_created{instance=\"c\"} 2 2
# EOF
";
        let (w, samples) = warnings(text);
        assert_eq!(samples.len(), 15, "nothing dropped");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "h.om:12: warning: counter `calls_total{instance=\"b\"}` went down from 10 to 4 at 1970-01-01T00:00:02Z with no restart"
            ),
            "{w:?}"
        );
        assert!(w[0].contains("(and 1 more times)"), "{w:?}");
        // An undeclared `_total` is a counter by its name.
        let (w, _) = warnings("x_total 5 1\nx_total 4 2\n# EOF\n");
        assert_eq!(w.len(), 1, "{w:?}");
        // A gauge may go down.
        let (w, _) = warnings("# TYPE g gauge\ng 5 1\ng 4 2\n# EOF\n");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn seconds_convert_exactly() {
        assert_eq!(parse_seconds_ms(b"1520879607.789"), Some(1520879607789));
        assert_eq!(parse_seconds_ms(b"1520879607.7895"), Some(1520879607790));
        assert_eq!(parse_seconds_ms(b"-1.5"), Some(-1500));
        assert_eq!(parse_seconds_ms(b".5"), Some(500));
        assert_eq!(parse_seconds_ms(b"5."), Some(5000));
        assert_eq!(parse_seconds_ms(b"1.5e3"), Some(1_500_000));
        assert_eq!(parse_seconds_ms(b"."), None);
        assert_eq!(parse_seconds_ms(b""), None);
        assert_eq!(parse_seconds_ms(b"Inf"), None);
        assert_eq!(parse_seconds_ms(b"1e300"), None);
    }

    #[test]
    fn fuzzed_lines_never_panic_and_point_inside_the_line() {
        let seeds = [
            "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000",
            "m{path=\"C:\\\\DIR\",err=\"a\\nb \\\"q\\\"\"} 1.5e9",
            "something_weird{problem=\"division by zero\"} +Inf -3982045",
            "x_bucket{le=\"+Inf\",} NaN",
            "# TYPE x_bucket histogram",
            "# HELP x help \\n text",
            "# UNIT x seconds",
            "{\"a.b\",\"c d\"=\"e\"} 1 2",
            "foo_bucket{le=\"0.1\"} 8 1520879606.5 # {trace_id=\"KOO5S4vxi0o\"} 0.067 1520879606.5",
            "# EOF",
            "plain 1",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for (format, trailer) in [(Format::Prometheus, ""), (Format::OpenMetrics, "# EOF")] {
            // `# EOF` and `# UNIT` mark a file as OpenMetrics: in Prometheus
            // text, with a mutated timestamp that looks like seconds, the
            // whole file is refused (tested on its own).
            let seeds: Vec<&str> = seeds
                .iter()
                .copied()
                .filter(|s| {
                    format == Format::OpenMetrics
                        || !s.starts_with("# EOF") && !s.starts_with("# UNIT")
                })
                .collect();
            let lines = fuzz_lines(&mut rng, &seeds, 10_000, 5);
            let (ok, samples) = fuzz(format, &lines, &at(1), trailer);
            assert!(
                ok > 2000 && ok < 10_000,
                "{format}: {ok} of 10000 lines parsed"
            );
            assert!(samples > 0);
        }
    }
}
