//! CSV, read record by record with the `csv` crate (quoting, escapes, CRLF).
//!
//! - Long form, when the header has `timestamp`, `metric` and `value`
//!   columns (any order; `time` or `ts` also name the timestamp): every other
//!   column is a label, an empty cell meaning no label.
//! - Wide form otherwise: the first column is `timestamp` (or `time`, `ts`),
//!   every other column a metric named by its header, an empty cell meaning no
//!   sample. With `--metric` and one value column (NAB's `timestamp,value`),
//!   the metric takes that name; with several, it is a prefix
//!   (`METRIC.<column>`).
//!
//! A long CSV whose header is the one `mcpops export` writes (`metric`
//! first, `timestamp,value` last, in lower case) is read exactly as written:
//! its metric and label cells are not trimmed, so a label value with
//! leading or trailing spaces survives export and ingest.
//!
//! Timestamps are detected per row (RFC 3339, `YYYY-MM-DD HH:MM:SS`, a date,
//! epoch seconds or milliseconds). Values are floats; `NaN` and `Inf` are kept.
//! Cells are trimmed. An error's column is the 1-based byte offset of the cell
//! in its line, exact for unquoted cells (each quoted cell before it shifts it
//! by its two quotes); messages also name the column's header.

use super::{
    Fail, IngestError, RawMap, Run, bad, check_label_name, io_error, parse_f64, parse_time_text,
    show, show_str, stored_ts,
};
use ::csv::{ByteRecord, ErrorKind, ReaderBuilder};
use std::io::BufRead;

pub(crate) fn ingest(reader: &mut dyn BufRead, run: &mut Run) -> Result<(), IngestError> {
    let mut rdr = ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_error(e, run)),
    };
    if headers.is_empty() {
        return Ok(()); // an empty file
    }
    let header_line = headers.position().map_or(1, |p| p.line());
    let mut layout =
        Layout::new(&headers, run).map_err(|(col, msg)| run.fatal(header_line, col, msg))?;
    let mut last_ts: (Vec<u8>, i64) = (Vec::new(), 0);
    let mut record = ByteRecord::new();
    let mut scratch = Vec::new();
    let mut last_line = header_line;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(last_line + 1, |p| p.line());
                last_line = line;
                run.line = line;
                let outcome = layout.row(&record, headers.len(), &mut last_ts, &mut scratch, run);
                run.settle(line, outcome)?;
            }
            Err(e) => {
                if matches!(e.kind(), ErrorKind::Io(_)) {
                    return Err(csv_error(e, run));
                }
                let line = e.position().map_or(last_line + 1, |p| p.line());
                last_line = line;
                run.settle(line, bad(1, e.to_string()))?;
            }
        }
    }
    run.report.lines += last_line;
    Ok(())
}

fn csv_error(e: ::csv::Error, run: &Run) -> IngestError {
    let line = e.position().map_or(1, |p| p.line());
    match e.into_kind() {
        ErrorKind::Io(source) => io_error(&run.name, source),
        other => run.fatal(line, 1, format!("{other:?}")),
    }
}

enum Layout {
    Long {
        ts: usize,
        metric: usize,
        value: usize,
        /// (column index, label name)
        labels: Vec<(usize, String)>,
        /// The header is export's: metric and label cells are kept as written.
        exact: bool,
        cache: RawMap<u32>,
        key: Vec<u8>,
    },
    Wide {
        ts: usize,
        /// (column index, metric name, series id once it has a sample)
        columns: Vec<(usize, String, Option<u32>)>,
    },
}

const TS_NAMES: [&str; 3] = ["timestamp", "time", "ts"];

/// A cell, trimmed, with its 1-based column in the line.
fn cell(rec: &ByteRecord, i: usize) -> (&[u8], usize) {
    let raw = rec.get(i).unwrap_or(&[]);
    let start = rec.range(i).map_or(0, |r| r.start) + i;
    let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
    (raw.trim_ascii(), start + lead + 1)
}

/// A cell as written (untrimmed) when `exact`, else trimmed.
fn text_cell(rec: &ByteRecord, i: usize, exact: bool) -> (&[u8], usize) {
    if !exact {
        return cell(rec, i);
    }
    let raw = rec.get(i).unwrap_or(&[]);
    (raw, rec.range(i).map_or(0, |r| r.start) + i + 1)
}

fn header_name(rec: &ByteRecord, i: usize) -> Result<String, (usize, String)> {
    let (raw, col) = cell(rec, i);
    match std::str::from_utf8(raw) {
        Ok("") => Err((col, format!("column {} of the header has no name", i + 1))),
        Ok(s) => Ok(s.to_string()),
        Err(_) => Err((
            col,
            format!("column {} of the header is not valid UTF-8", i + 1),
        )),
    }
}

impl Layout {
    fn new(headers: &ByteRecord, run: &Run) -> Result<Layout, (usize, String)> {
        let names = (0..headers.len())
            .map(|i| header_name(headers, i))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, n) in names.iter().enumerate() {
            if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
                return Err((
                    cell(headers, i).1,
                    format!(
                        "column `{}` appears twice in the header (names are compared without \
                         regard to case, as DuckDB does)",
                        show_str(n)
                    ),
                ));
            }
        }
        let find = |wanted: &[&str]| {
            names
                .iter()
                .position(|n| wanted.iter().any(|w| n.eq_ignore_ascii_case(w)))
        };
        if let (Some(ts), Some(metric), Some(value)) =
            (find(&TS_NAMES), find(&["metric"]), find(&["value"]))
        {
            let mut labels = Vec::new();
            for (i, n) in names.iter().enumerate() {
                if i != ts && i != metric && i != value {
                    check_label_name(n).map_err(|m| (cell(headers, i).1, m))?;
                    labels.push((i, n.clone()));
                }
            }
            let n = names.len();
            let exact = metric == 0
                && ts + 2 == n
                && value + 1 == n
                && names[0] == "metric"
                && names[ts] == "timestamp"
                && names[value] == "value";
            return Ok(Layout::Long {
                ts,
                metric,
                value,
                labels,
                exact,
                cache: RawMap::default(),
                key: Vec::new(),
            });
        }
        if !TS_NAMES.iter().any(|w| names[0].eq_ignore_ascii_case(w)) {
            return Err((
                1,
                format!(
                    "the header starts with `{}`: a wide CSV starts with `timestamp` (or `time`, `ts`) \
                     followed by one column per metric; a long CSV has timestamp, metric and value columns",
                    show_str(&names[0])
                ),
            ));
        }
        if names.len() < 2 {
            return Err((
                1,
                "the header has a timestamp column but no value columns".into(),
            ));
        }
        let single = names.len() == 2;
        let columns = names
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, n)| {
                let metric = match &run.opts.metric {
                    Some(m) if single => m.clone(),
                    Some(m) => format!("{m}.{n}"),
                    None => n.clone(),
                };
                (i, metric, None)
            })
            .collect();
        Ok(Layout::Wide { ts: 0, columns })
    }

    fn row(
        &mut self,
        rec: &ByteRecord,
        width: usize,
        last_ts: &mut (Vec<u8>, i64),
        scratch: &mut Vec<(usize, f64)>,
        run: &mut Run,
    ) -> Result<(), Fail> {
        if rec.len() != width {
            let col = if rec.len() > width {
                cell(rec, width).1
            } else {
                rec.range(rec.len() - 1).map_or(0, |r| r.end) + rec.len()
            };
            return bad(
                col,
                format!(
                    "the row has {} fields where the header has {width}",
                    rec.len()
                ),
            );
        }
        match self {
            Layout::Wide { ts, columns } => {
                let ts = timestamp(rec, *ts, last_ts)?;
                scratch.clear();
                for (k, (i, metric, _)) in columns.iter().enumerate() {
                    let (raw, col) = cell(rec, *i);
                    if raw.is_empty() {
                        continue;
                    }
                    match parse_f64(raw) {
                        Some(v) => scratch.push((k, v)),
                        None => {
                            return bad(
                                col,
                                format!(
                                    "column `{}`: `{}` is not a number",
                                    show_str(metric),
                                    show(raw)
                                ),
                            );
                        }
                    }
                }
                for &(k, v) in scratch.iter() {
                    let (i, metric, id) = &mut columns[k];
                    let id = match *id {
                        Some(id) => id,
                        None => {
                            *id.insert(run.intern(metric.clone(), Vec::new(), cell(rec, *i).1)?)
                        }
                    };
                    run.push(id, ts, v)?;
                }
                Ok(())
            }
            Layout::Long {
                ts,
                metric,
                value,
                labels,
                exact,
                cache,
                key,
            } => {
                let ts = timestamp(rec, *ts, last_ts)?;
                let (m, m_col) = text_cell(rec, *metric, *exact);
                if m.is_empty() && run.opts.metric.is_none() {
                    return bad(m_col, "empty `metric` cell (or give --metric)");
                }
                let (v, v_col) = cell(rec, *value);
                if v.is_empty() {
                    return bad(v_col, "empty `value` cell");
                }
                let Some(v) = parse_f64(v) else {
                    return bad(
                        v_col,
                        format!("column `value`: `{}` is not a number", show(v)),
                    );
                };
                key.clear();
                let mut add = |bytes: &[u8]| {
                    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    key.extend_from_slice(bytes);
                };
                add(m);
                for &(i, _) in labels.iter() {
                    add(text_cell(rec, i, *exact).0);
                }
                let id = match cache.get(key.as_slice()) {
                    Some(&id) => id,
                    None => {
                        let name = if m.is_empty() {
                            run.opts.metric.clone().unwrap_or_default()
                        } else {
                            match std::str::from_utf8(m) {
                                Ok(s) => s.to_string(),
                                Err(_) => return bad(m_col, "the metric name is not valid UTF-8"),
                            }
                        };
                        let mut pairs = Vec::with_capacity(labels.len());
                        for (i, label) in labels.iter() {
                            let (raw, col) = text_cell(rec, *i, *exact);
                            match std::str::from_utf8(raw) {
                                Ok("") => {}
                                Ok(s) => pairs.push((label.clone(), s.to_string())),
                                Err(_) => {
                                    return bad(
                                        col,
                                        format!("label `{}` is not valid UTF-8", show_str(label)),
                                    );
                                }
                            }
                        }
                        let id = run.intern(name, pairs, m_col)?;
                        cache.insert(key.as_slice().into(), id);
                        id
                    }
                };
                run.push(id, ts, v)?;
                Ok(())
            }
        }
    }
}

/// The row's timestamp; consecutive rows often repeat it, so the last is cached.
fn timestamp(rec: &ByteRecord, i: usize, last: &mut (Vec<u8>, i64)) -> Result<i64, Fail> {
    let (raw, col) = cell(rec, i);
    if raw == last.0.as_slice() && !raw.is_empty() {
        return Ok(last.1);
    }
    if raw.is_empty() {
        return bad(col, "empty timestamp");
    }
    let parsed = std::str::from_utf8(raw).ok().and_then(parse_time_text);
    match parsed {
        Some(ms) => {
            let ms = stored_ts(ms, raw, col, "")?;
            last.0.clear();
            last.0.extend_from_slice(raw);
            last.1 = ms;
            Ok(ms)
        }
        None => bad(
            col,
            format!(
                "`{}` is not a timestamp: expected RFC 3339, `YYYY-MM-DD HH:MM:SS`, a date, \
                 or epoch seconds or milliseconds",
                show(raw)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Format, IngestOptions};

    fn csv(text: &str, o: &IngestOptions) -> Vec<Sample> {
        run(text, Format::Csv, o).unwrap().1
    }

    fn s(metric: &str, l: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        (metric.to_string(), labels(l), ts, v)
    }

    const T: i64 = 1_763_647_200_000; // 2025-11-20T14:00:00Z

    #[test]
    fn long_form_with_labels_and_time_forms() {
        let text = "\
metric,timestamp,value,server,tool
cpu,2025-11-20T14:00:00Z,0.5,a,
cpu,2025-11-20 14:00:01,NaN,a,x
\"mem, rss\",1763647202,+Inf,\"b \"\"q\"\"\",y
cpu, 1763647203000 , -2 ,a,
cpu,2025-11-20,1e3,,
";
        let got = csv(text, &opts());
        assert_eq!(got[0], s("cpu", &[("server", "a")], T, 0.5));
        assert_eq!(&got[1].0, "cpu");
        assert_eq!(got[1].1, labels(&[("server", "a"), ("tool", "x")]));
        assert_eq!(got[1].2, T + 1000);
        assert!(got[1].3.is_nan());
        assert_eq!(
            got[2],
            s(
                "mem, rss",
                &[("server", "b \"q\""), ("tool", "y")],
                T + 2000,
                f64::INFINITY
            )
        );
        assert_eq!(got[3], s("cpu", &[("server", "a")], T + 3000, -2.0));
        assert_eq!(got[4], s("cpu", &[], T - 14 * 3_600_000, 1000.0));
        let (r, _) = run(text, Format::Csv, &opts()).unwrap();
        assert_eq!((r.lines, r.samples, r.series), (6, 5, 4));
    }

    #[test]
    fn wide_form_columns_are_metrics() {
        let text = "time,cpu,mem\r\n1763647200,0.5,10\r\n1763647260,,Inf\r\n";
        let mut o = opts();
        o.labels = vec![("host".into(), "h1".into())];
        assert_eq!(
            csv(text, &o),
            vec![
                s("cpu", &[("host", "h1")], T, 0.5),
                s("mem", &[("host", "h1")], T, 10.0),
                s("mem", &[("host", "h1")], T + 60_000, f64::INFINITY),
            ]
        );
        o.metric = Some("node".into());
        assert_eq!(csv(text, &o)[0].0, "node.cpu");
    }

    #[test]
    fn nab_single_column_takes_metric_option() {
        let text = "timestamp,value\n2014-04-10 00:02:00,14.012\n2014-04-10 00:07:00,13.9\n";
        let mut o = opts();
        assert_eq!(csv(text, &o)[0].0, "value");
        o.metric = Some("machine_temperature".into());
        o.labels = vec![("host".into(), "a".into())];
        let got = csv(text, &o);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            s(
                "machine_temperature",
                &[("host", "a")],
                1_397_088_420_000,
                13.9
            )
        );
    }

    #[test]
    fn empty_file_and_header_only_give_nothing() {
        assert!(csv("", &opts()).is_empty());
        let (r, got) = run("timestamp,value\n", Format::Csv, &opts()).unwrap();
        assert!(got.is_empty());
        assert_eq!(r.lines, 1);
    }

    #[test]
    fn errors_name_line_column_and_header() {
        let cases: &[(&str, u64, u64, &str)] = &[
            (
                "timestamp,cpu\n1763647200,abc\n",
                2,
                12,
                "column `cpu`: `abc` is not a number",
            ),
            (
                "timestamp,cpu\n1763647200, abc\n",
                2,
                13,
                "`abc` is not a number",
            ),
            (
                "timestamp,cpu\nyesterday,1\n",
                2,
                1,
                "`yesterday` is not a timestamp",
            ),
            ("timestamp,cpu\n,1\n", 2, 1, "empty timestamp"),
            (
                "timestamp,cpu\n1,2\n1,2,3\n",
                3,
                5,
                "the row has 3 fields where the header has 2",
            ),
            (
                "timestamp,a,b\n1,2,3\n1,2\n",
                3,
                4,
                "the row has 2 fields where the header has 3",
            ),
            ("host,cpu\n1,2\n", 1, 1, "the header starts with `host`"),
            ("timestamp\n1\n", 1, 1, "no value columns"),
            (
                "timestamp,a,,b\n",
                1,
                13,
                "column 3 of the header has no name",
            ),
            ("timestamp,a,A\n", 1, 13, "column `A` appears twice"),
            (
                "timestamp,metric,value,day\n",
                1,
                24,
                "label name `day` is reserved",
            ),
            (
                "timestamp,metric,value\n1,,2\n",
                2,
                3,
                "empty `metric` cell",
            ),
            ("timestamp,metric,value\n1,m,\n", 2, 5, "empty `value` cell"),
            (
                "timestamp,metric,value\n1,m,x\n",
                2,
                5,
                "column `value`: `x` is not a number",
            ),
        ];
        for &(text, line, col, msg) in cases {
            let e = parse_error(text, Format::Csv, &opts());
            assert!(e.message.contains(msg), "{text:?}: {e} lacks {msg:?}");
            assert_eq!((e.line, e.col), (line, col), "{text:?}: {e}");
        }
        let e = match run_bytes(
            b"timestamp,metric,value,k\n1,m,2,\xff\n",
            Format::Csv,
            &opts(),
        ) {
            Err(crate::ingest::IngestError::Parse(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!((e.line, e.col), (2, 7));
        assert!(e.message.contains("label `k` is not valid UTF-8"), "{e}");
        // Header errors stop the run even with skip_invalid; row errors skip.
        let mut o = opts();
        o.skip_invalid = true;
        assert!(run("host,cpu\n1,2\n", Format::Csv, &o).is_err());
        let (r, got) = run("timestamp,cpu\n1,x\n2,3\n", Format::Csv, &o).unwrap();
        assert_eq!((r.skipped, got.len()), (1, 1));
        assert_eq!(r.first_skipped[0].line, 2);
    }

    #[test]
    fn long_form_metric_option_fills_empty_cells() {
        let mut o = opts();
        o.metric = Some("fallback".into());
        let got = csv("ts,metric,value\n1763647200,,1\n1763647200,m,2\n", &o);
        assert_eq!(got[0].0, "fallback");
        assert_eq!(got[1].0, "m");
    }

    #[test]
    fn fuzzed_rows_never_panic() {
        let headers = [
            "timestamp,metric,value,server",
            "timestamp,cpu,mem",
            "time,value",
        ];
        let rows = [
            "2025-11-20T14:00:00Z,cpu,0.5,a",
            "1763647200,\"m,x\",NaN,\"b\"\"c\"",
            "2025-11-20 14:00:01,1,2",
            "1763647200000,,Inf",
            "2025-11-20,3",
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut total = 0;
        for header in headers {
            let mut lines = vec![header.as_bytes().to_vec()];
            lines.extend(fuzz_lines(&mut rng, &rows, 7000, 4));
            let mut all = Vec::new();
            for l in &lines {
                all.extend_from_slice(l);
                all.push(b'\n');
            }
            let mut o = opts();
            o.skip_invalid = true;
            // Mutations may unbalance quotes and swallow the rest of the file:
            // whatever happens, no panic, and errors carry a line.
            match run_bytes(&all, Format::Csv, &o) {
                Ok((r, got)) => {
                    total += got.len();
                    for e in &r.first_skipped {
                        assert!(e.line >= 2 && e.col >= 1, "{e}");
                    }
                }
                Err(e) => panic!("{header}: {e}"),
            }
            for l in lines.iter().skip(1).take(2000) {
                let mut one = header.as_bytes().to_vec();
                one.push(b'\n');
                one.extend_from_slice(l);
                if let Err(crate::ingest::IngestError::Parse(e)) =
                    run_bytes(&one, Format::Csv, &opts())
                {
                    assert!(
                        e.line == 2 && e.col >= 1 && e.col as usize <= l.len() + 1,
                        "{e}"
                    );
                }
            }
        }
        assert!(total > 1000, "{total}");
    }
}
