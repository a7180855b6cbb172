//! Influx line protocol:
//! `measurement,tag=v,tag2=v2 field=1.5,other=2i,flag=t,s="str" 1700000000000000000`.
//!
//! Each numeric field becomes the metric `measurement.field` with the tags as
//! labels: floats, integers (`2i`), unsigned integers (`2u`) and booleans
//! (`t`, `true`, `True`, `TRUE` → 1; `f`, `false`, `False`, `FALSE` → 0).
//! String fields are skipped. `\,`, `\ ` and `\=` escape those characters in
//! the measurement, tag keys and values, and field keys; `\"` and `\\` in
//! string fields. The timestamp is in nanoseconds (stored as milliseconds,
//! rounded down); a line without one takes `--at`. Lines starting with `#` are
//! comments.

use super::{
    Fail, IngestError, RawMap, Run, bad, check_label_name, for_each_line, parse_f64, parse_i64,
    repeated_label, show, show_str, stored_ts,
};
use std::io::BufRead;

pub(crate) fn ingest(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let mut parser = Parser {
        cache: RawMap::default(),
        key: Vec::new(),
        fields: Vec::new(),
    };
    for_each_line(reader, run, |line, _, run| parser.parse_line(line, run))
}

struct Parser {
    /// Length-prefixed series text plus raw field key, to series id.
    cache: RawMap<u32>,
    key: Vec<u8>,
    /// The line's numeric fields: (key start, key end, value).
    fields: Vec<(usize, usize, f64)>,
}

/// Index of the first unescaped byte in `stops` at or after `i`, or the end.
#[inline]
fn scan(line: &[u8], mut i: usize, stops: &[u8]) -> usize {
    while i < line.len() {
        let b = line[i];
        if b == b'\\' {
            i += 2;
        } else if stops.contains(&b) {
            return i;
        } else {
            i += 1;
        }
    }
    line.len()
}

/// Resolves `\,`, `\ ` and `\=`; other backslashes stay as written.
fn unescape(raw: &[u8], col: usize, what: &str) -> Result<String, Fail> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b',' | b' ' | b'=')) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).or_else(|_| bad(col, format!("{what} is not valid UTF-8")))
}

/// A field's numeric value; `None` if it is not one.
fn field_value(tok: &[u8]) -> Option<f64> {
    match tok {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => return Some(1.0),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => return Some(0.0),
        _ => {}
    }
    match tok.split_last() {
        Some((b'i', int)) => parse_i64(int).map(|v| v as f64),
        Some((b'u', uint)) if uint.first().is_some_and(u8::is_ascii_digit) => {
            std::str::from_utf8(uint)
                .ok()?
                .parse::<u64>()
                .ok()
                .map(|v| v as f64)
        }
        _ => parse_f64(tok),
    }
}

/// Measurement and tags of the series text `line[start..end]`.
fn parse_series(
    line: &[u8],
    start: usize,
    end: usize,
) -> Result<(String, Vec<(String, String)>), Fail> {
    let m_end = scan(&line[..end], start, b",");
    if m_end == start {
        return bad(start + 1, "missing measurement name");
    }
    let measurement = unescape(&line[start..m_end], start + 1, "the measurement")?;
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut i = m_end;
    while i < end {
        let k = i + 1; // after the comma
        let eq = scan(&line[..end], k, b",=");
        if eq == k {
            return bad(k + 1, "empty tag key");
        }
        let key = unescape(&line[k..eq], k + 1, "a tag key")?;
        if eq == end || line[eq] != b'=' {
            return bad(k + 1, format!("tag `{}` has no `=value`", show_str(&key)));
        }
        let v = eq + 1;
        let v_end = scan(&line[..end], v, b",");
        if v_end == v {
            return bad(
                k + 1,
                format!("tag `{}` has an empty value", show_str(&key)),
            );
        }
        let value = unescape(&line[v..v_end], v + 1, "a tag value")?;
        if let Err(m) = check_label_name(&key) {
            return bad(k + 1, m);
        }
        if let Some(message) = repeated_label(&tags, &key) {
            return bad(k + 1, message);
        }
        tags.push((key, value));
        i = v_end;
    }
    Ok((measurement, tags))
}

impl Parser {
    fn parse_line(&mut self, line: &[u8], run: &mut Run) -> Result<(), Fail> {
        let start = line
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(line.len());
        if start == line.len() || line[start] == b'#' {
            return Ok(());
        }
        let series_end = scan(line, start, b" ");
        let mut i = series_end;
        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        if i == line.len() {
            return bad(
                i + 1,
                "expected fields (`field=value`) after the measurement and tags",
            );
        }

        self.fields.clear();
        loop {
            let key_start = i;
            let eq = scan(line, i, b"=, ");
            if eq == key_start {
                return bad(key_start + 1, "expected a field key");
            }
            if eq == line.len() || line[eq] != b'=' {
                return bad(
                    key_start + 1,
                    format!("field `{}` has no `=value`", show(&line[key_start..eq])),
                );
            }
            i = eq + 1;
            if line.get(i) == Some(&b'"') {
                let quote = i;
                i += 1;
                loop {
                    match line.get(i) {
                        None => return bad(quote + 1, "string field has no closing `\"`"),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1; // string fields are not samples
            } else {
                let vs = i;
                while i < line.len() && line[i] != b',' && line[i] != b' ' {
                    i += 1;
                }
                let tok = &line[vs..i];
                if tok.is_empty() {
                    return bad(
                        vs + 1,
                        format!("field `{}` has no value", show(&line[key_start..eq])),
                    );
                }
                let Some(value) = field_value(tok) else {
                    return bad(
                        vs + 1,
                        format!(
                            "`{}` is not a field value (a float, 2i, 2u, true/false or \"string\")",
                            show(tok)
                        ),
                    );
                };
                self.fields.push((key_start, eq, value));
            }
            match line.get(i) {
                Some(b',') => i += 1,
                None | Some(b' ') => break,
                Some(_) => {
                    return bad(
                        i + 1,
                        format!("unexpected `{}` after a field", show(&line[i..i + 1])),
                    );
                }
            }
        }

        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        let mut ts = None;
        if i < line.len() {
            let te = line[i..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(line.len(), |p| i + p);
            let Some(ns) = parse_i64(&line[i..te]) else {
                return bad(
                    i + 1,
                    format!(
                        "`{}` is not a timestamp (integer nanoseconds)",
                        show(&line[i..te])
                    ),
                );
            };
            // Always in range today (i64 nanoseconds span 1677 to 2262),
            // checked as every format's timestamps are.
            ts = Some(stored_ts(
                ns.div_euclid(1_000_000),
                &line[i..te],
                i + 1,
                "",
            )?);
            if let Some(p) = line[te..].iter().position(|&b| b != b' ') {
                return bad(
                    te + p + 1,
                    format!("unexpected `{}` after the timestamp", show(&line[te + p..])),
                );
            }
        }
        if self.fields.is_empty() {
            return Ok(());
        }
        let ts = match ts {
            Some(t) => t,
            None => run.default_ts()?,
        };

        let series = &line[start..series_end];
        for &(ks, ke, value) in &self.fields {
            self.key.clear();
            self.key
                .extend_from_slice(&(series.len() as u32).to_le_bytes());
            self.key.extend_from_slice(series);
            self.key.extend_from_slice(&line[ks..ke]);
            let id = match self.cache.get(self.key.as_slice()) {
                Some(&id) => id,
                None => {
                    let (measurement, tags) = parse_series(line, start, series_end)?;
                    let field = unescape(&line[ks..ke], ks + 1, "a field key")?;
                    let id = run.intern(format!("{measurement}.{field}"), tags, start + 1)?;
                    self.cache.insert(self.key.as_slice().into(), id);
                    id
                }
            };
            run.push(id, ts, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Format, IngestError};

    fn lp(text: &str) -> Vec<Sample> {
        let mut o = opts();
        o.at_ms = Some(42);
        run(text, Format::Influx, &o).unwrap().1
    }

    fn s(metric: &str, l: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        (metric.to_string(), labels(l), ts, v)
    }

    #[test]
    fn fields_become_metrics_with_tags() {
        let got = lp("\
# a comment
weather,location=us-midwest,season=summer temperature=82,humidity=71i,ok=t,note=\"hot, very \\\"so\\\"\" 1465839830100400200

cpu usage=1.5e-1,idle=false -1
my\\ measurement,tag\\ key=tag\\,value\\=x field\\ key=1u,count=7i,s=\"str\"
flags a=T,b=true,c=True,d=TRUE,e=f,f=F,g=False,h=FALSE,nan=NaN
");
        let l = &[("location", "us-midwest"), ("season", "summer")];
        let ts = 1_465_839_830_100;
        assert_eq!(got[0], s("weather.temperature", l, ts, 82.0));
        assert_eq!(got[1], s("weather.humidity", l, ts, 71.0));
        assert_eq!(got[2], s("weather.ok", l, ts, 1.0));
        assert_eq!(got[3].0, "cpu.usage");
        assert_eq!(got[3].2, -1, "-1 ns rounds down to -1 ms");
        assert_eq!(got[3].3, 0.15);
        assert_eq!(got[4], s("cpu.idle", &[], -1, 0.0));
        let esc = &[("tag key", "tag,value=x")];
        assert_eq!(got[5], s("my measurement.field key", esc, 42, 1.0));
        assert_eq!(got[6], s("my measurement.count", esc, 42, 7.0));
        let flags: Vec<f64> = got[7..15].iter().map(|x| x.3).collect();
        assert_eq!(flags, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(got[15].3.is_nan());
        assert_eq!(got.len(), 16);
    }

    #[test]
    fn weather_line_with_unsigned_field_is_an_error() {
        // `-3u` is not an unsigned integer.
        let e = parse_error("m n=-3u 1\n", Format::Influx, &opts());
        assert_eq!((e.line, e.col), (1, 5));
    }

    #[test]
    fn timestamps_need_at_when_absent() {
        assert!(matches!(
            run("m f=1\n", Format::Influx, &opts()),
            Err(IngestError::MissingTimestamp { .. })
        ));
        // A line of string fields only has no samples and needs no timestamp.
        let (r, got) = run("m s=\"x\"\n", Format::Influx, &opts()).unwrap();
        assert!(got.is_empty());
        assert_eq!((r.lines, r.samples, r.series), (1, 0, 0));
    }

    #[test]
    fn series_and_fields_are_interned_once() {
        let (r, got) = run(
            "m,a=1 x=1,y=2 1000000\nm,a=1 x=3,y=4 2000000\nm,a=2 x=5 3000000\n",
            Format::Influx,
            &opts(),
        )
        .unwrap();
        assert_eq!((r.samples, r.series), (5, 3));
        assert_eq!(got[2], s("m.x", &[("a", "1")], 2, 3.0));
    }

    #[test]
    fn errors_name_line_column_and_problem() {
        let cases: &[(&str, u64, &str)] = &[
            ("m", 2, "expected fields"),
            ("m,t=1  ", 8, "expected fields"),
            ("m f", 3, "field `f` has no `=value`"),
            ("m f,g=1", 3, "field `f` has no `=value`"),
            ("m f=", 5, "field `f` has no value"),
            ("m =1", 3, "expected a field key"),
            ("m f=1,", 7, "expected a field key"),
            ("m f=abc", 5, "`abc` is not a field value"),
            ("m f=1x", 5, "`1x` is not a field value"),
            ("m f=99999999999999999999i", 5, "is not a field value"),
            ("m f=\"abc", 5, "string field has no closing"),
            ("m f=\"a\"x", 8, "unexpected `x` after a field"),
            ("m f=1 abc", 7, "`abc` is not a timestamp"),
            ("m f=1 1.5", 7, "`1.5` is not a timestamp"),
            ("m f=1 1 2", 9, "unexpected `2` after the timestamp"),
            ("m,t f=1", 3, "tag `t` has no `=value`"),
            ("m,t= f=1", 3, "tag `t` has an empty value"),
            ("m,=1 f=1", 3, "empty tag key"),
            (",t=1 f=1", 1, "missing measurement"),
            ("m,metric=x f=1", 3, "label name `metric` is reserved"),
            ("m,value=x f=1", 3, "`value` is reserved"),
            ("m,a=1,a=2 f=1", 7, "label `a` appears twice"),
        ];
        for &(text, col, msg) in cases {
            let mut o = opts();
            o.at_ms = Some(0);
            let e = parse_error(text, Format::Influx, &o);
            assert!(e.message.contains(msg), "{text:?}: {e} lacks {msg:?}");
            assert_eq!((e.line, e.col), (1, col), "{text:?}: {e}");
        }
        let e = parse_error("m f=1 1\n\nm f=x 1\n", Format::Influx, &opts());
        assert_eq!((e.line, e.col), (3, 5));
        let e = match run_bytes(b"m,t=\xff f=1 1\n", Format::Influx, &opts()) {
            Err(IngestError::Parse(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!((e.line, e.col), (1, 5));
        assert!(e.message.contains("a tag value is not valid UTF-8"), "{e}");
    }

    #[test]
    fn fuzzed_lines_never_panic_and_point_inside_the_line() {
        let seeds = [
            "weather,location=us-midwest,season=summer temperature=82,humidity=71i,ok=t,note=\"hot, \\\"very\\\"\" 1465839830100400200",
            "my\\ measurement,tag\\ key=tag\\,value\\=x field\\ key=1u,count=7i",
            "cpu,host=a usage=1.5e-1,idle=false -1",
            "# comment",
        ];
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let lines = fuzz_lines(&mut rng, &seeds, 20_000, 5);
        let mut o = opts();
        o.at_ms = Some(7);
        let (ok, samples) = fuzz(Format::Influx, &lines, &o, "");
        assert!(ok > 4000 && ok < 20_000, "{ok}");
        assert!(samples > 4000);
    }
}
