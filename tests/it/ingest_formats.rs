//! Ingest through files on disk: every format by extension, `.gz`, a
//! directory tree with files to skip, `--format` overriding the extension,
//! and the errors a run stops with.

use flate2::Compression;
use flate2::write::GzEncoder;
use mcpops::ingest::{Format, IngestError, IngestOptions, ingest_path};
use mcpops::model::{MemorySink, SeriesKey};
use std::io::Write;
use std::path::Path;

const T: i64 = 1_794_787_200_000; // 2026-11-16T00:00:00Z

fn opts() -> IngestOptions {
    IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    }
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn write_gz(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Two gzip members, as `cat a.gz b.gz` gives: MultiGzDecoder reads both.
    let mut bytes = Vec::new();
    let (a, b) = text.split_at(text.len() / 2);
    for part in [a, b] {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(part.as_bytes()).unwrap();
        bytes.extend(enc.finish().unwrap());
    }
    std::fs::write(path, bytes).unwrap();
}

fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(
        metric,
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Samples of one series, in arrival order.
fn series(sink: &MemorySink, k: &SeriesKey) -> Vec<(i64, f64)> {
    sink.resolved()
        .into_iter()
        .filter(|(s, _, _)| *s == k)
        .map(|(_, t, v)| (t, v))
        .collect()
}

const OM: &str = "# TYPE process_memory_usage gauge\n\
# UNIT process_memory_usage bytes\n\
process_memory_usage{server=\"mcp-01\"} 1000 1794787200\n\
process_memory_usage{server=\"mcp-01\"} 1100 1794787260.5\n\
process_memory_usage{server=\"mcp-02\"} NaN 1794787200\n\
# EOF\n";

const PROM: &str =
    "# TYPE up gauge\nup{server=\"mcp-01\"} 1 1794787200000\nup{server=\"mcp-02\"} 0\n";

const CSV: &str = "timestamp,value\n2026-11-16 00:00:00,10.5\n2026-11-16 00:05:00,11\n";

const JSONL: &str = "{\"ts\":\"2026-11-16T00:00:00.250Z\",\"server\":\"mcp-01\",\"method\":\"tools/call\",\"tool\":\"search\",\"duration_ms\":250,\"error\":-32603,\"session\":\"s-1\",\"transport\":\"stdio\"}\n\
{\"ts\":1794787200,\"metric\":\"disk.free_bytes\",\"labels\":{\"server\":\"mcp-01\"},\"value\":\"+Inf\"}\n";

const LP: &str = "cpu,server=mcp-01 usage=0.5,cores=4i,name=\"x\" 1794787200000000000\n";

#[test]
fn a_directory_ingests_every_known_file_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_gz(&root.join("metrics/mcp-01.om.gz"), OM);
    write(&root.join("metrics/scrape.prom"), PROM);
    write(&root.join("nab/machine_temperature.csv"), CSV);
    write_gz(&root.join("calls/mcp-01.jsonl.gz"), JSONL);
    write(&root.join("influx/cpu.lp"), LP);
    write(&root.join("incidents.json"), "[{\"kind\": \"leak\"}]");
    write(&root.join("README.md"), "# not metrics\n");
    write(&root.join("LICENSE.txt"), "Copyright 2014-2024\n");
    write(&root.join("notes"), "nothing");

    let mut o = opts();
    o.at_ms = Some(T + 1);
    o.metric = Some("machine_temperature".into());
    o.labels = vec![("fleet".into(), "test".into())];
    let mut sink = MemorySink::default();
    let report = ingest_path(root, &o, &mut sink).unwrap();

    assert_eq!(report.files, 5);
    assert_eq!(report.samples, 3 + 2 + 2 + 2 + 2);
    assert_eq!(report.samples as usize, sink.samples.len());
    assert_eq!(report.series as usize, sink.series.len());
    assert_eq!(report.skipped, 0);
    assert_eq!(report.lines, 6 + 3 + 3 + 2 + 1);
    assert!(sink.series.iter().all(|k| k.label("fleet") == Some("test")));

    let fleet = ("fleet", "test");
    let mem = key("process_memory_usage", &[("server", "mcp-01"), fleet]);
    assert_eq!(series(&sink, &mem), vec![(T, 1000.0), (T + 60_500, 1100.0)]);
    let nan = series(
        &sink,
        &key("process_memory_usage", &[("server", "mcp-02"), fleet]),
    );
    assert!(nan.len() == 1 && nan[0].1.is_nan());
    assert_eq!(
        series(&sink, &key("up", &[("server", "mcp-02"), fleet])),
        vec![(T + 1, 0.0)]
    );
    assert_eq!(
        series(&sink, &key("up", &[("server", "mcp-01"), fleet])),
        vec![(T, 1.0)]
    );
    assert_eq!(
        series(&sink, &key("machine_temperature", &[fleet])),
        vec![(T, 10.5), (T + 300_000, 11.0)]
    );
    let call = key(
        "mcp.server.operation.duration",
        &[
            ("server", "mcp-01"),
            ("mcp.method.name", "tools/call"),
            ("gen_ai.tool.name", "search"),
            ("error.type", "-32603"),
            ("mcp.session.id", "s-1"),
            ("network.transport", "stdio"),
            fleet,
        ],
    );
    assert_eq!(series(&sink, &call), vec![(T + 250, 0.25)]);
    assert_eq!(
        series(
            &sink,
            &key("disk.free_bytes", &[("server", "mcp-01"), fleet])
        ),
        vec![(T, f64::INFINITY)]
    );
    assert_eq!(
        series(&sink, &key("cpu.usage", &[("server", "mcp-01"), fleet])),
        vec![(T, 0.5)]
    );
    assert_eq!(
        series(&sink, &key("cpu.cores", &[("server", "mcp-01"), fleet])),
        vec![(T, 4.0)]
    );

    // Files are read in sorted path order: calls/, influx/, metrics/, nab/.
    let order: Vec<&str> = sink.series.iter().map(|k| k.metric.as_str()).collect();
    assert_eq!(order[0], "mcp.server.operation.duration");
    assert_eq!(order[2], "cpu.usage");
}

#[test]
fn a_single_file_goes_by_extension_or_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.data");
    write(&path, OM);
    let mut sink = MemorySink::default();
    match ingest_path(&path, &opts(), &mut sink) {
        Err(e @ IngestError::UnknownFormat { .. }) => {
            assert!(e.to_string().contains("dump.data"), "{e}");
            assert!(e.to_string().contains("--format"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let mut o = opts();
    o.format = Some(Format::OpenMetrics);
    let report = ingest_path(&path, &o, &mut sink).unwrap();
    assert_eq!((report.files, report.samples), (1, 3));

    // `.txt` is Prometheus text: OpenMetrics' `# EOF` is just a comment there,
    // but its decimal timestamps are not milliseconds.
    let txt = dir.path().join("scrape.txt");
    write(&txt, OM);
    let e = ingest_path(&txt, &opts(), &mut MemorySink::default()).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with(&format!("{}:4:", txt.display())), "{text}");
    assert!(text.contains("--format openmetrics"), "{text}");
}

#[test]
fn parse_errors_name_file_line_and_column_and_skip_invalid_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv.gz");
    write_gz(
        &path,
        "timestamp,cpu\n1794787200,1\n1794787260,oops\n1794787320,3\n",
    );
    let err = ingest_path(&path, &opts(), &mut MemorySink::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:12: column `cpu`: `oops` is not a number",
            path.display()
        )
    );
    let mut o = opts();
    o.skip_invalid = true;
    let mut sink = MemorySink::default();
    let report = ingest_path(&path, &o, &mut sink).unwrap();
    assert_eq!((report.samples, report.skipped), (2, 1));
    assert_eq!(report.first_skipped[0].line, 3);
    assert_eq!(report.first_skipped[0].col, 12);
}

#[test]
fn missing_timestamps_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scrape.prom");
    write(&path, "up 1\n");
    let e = ingest_path(&path, &opts(), &mut MemorySink::default()).unwrap_err();
    assert!(matches!(e, IngestError::MissingTimestamp { .. }));
    assert_eq!(
        e.to_string(),
        format!("{}: no timestamps: give --at TIME", path.display())
    );

    let gone = dir.path().join("gone.prom");
    match ingest_path(&gone, &opts(), &mut MemorySink::default()) {
        Err(IngestError::Io { path, source }) => {
            assert_eq!(path, gone.display().to_string());
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }

    let corrupt = dir.path().join("corrupt.om.gz");
    std::fs::write(&corrupt, b"\x1f\x8b\x08\x00garbage").unwrap();
    assert!(matches!(
        ingest_path(&corrupt, &opts(), &mut MemorySink::default()),
        Err(IngestError::Gzip { size: 11, .. })
    ));
}

#[test]
fn txt_files_in_a_tree_need_format_but_are_taken_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let scrape = dir.path().join("scrape.txt");
    write(&scrape, PROM);
    let mut o = opts();
    o.at_ms = Some(T);
    let report = ingest_path(dir.path(), &o, &mut MemorySink::default()).unwrap();
    assert_eq!(report.files, 0);
    let report = ingest_path(&scrape, &o, &mut MemorySink::default()).unwrap();
    assert_eq!((report.files, report.samples), (1, 2));
    o.format = Some(Format::Prometheus);
    let report = ingest_path(dir.path(), &o, &mut MemorySink::default()).unwrap();
    assert_eq!((report.files, report.samples), (1, 2));
}

#[test]
fn an_empty_directory_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("README"), "hello");
    let report = ingest_path(dir.path(), &opts(), &mut MemorySink::default()).unwrap();
    assert_eq!((report.files, report.samples), (0, 0));
}

/// The parse error ingesting `path` gives (panics on any other outcome).
fn parse_error_of(path: &Path, o: &IngestOptions) -> mcpops::ingest::ParseError {
    match ingest_path(path, o, &mut MemorySink::default()) {
        Err(IngestError::Parse(e)) => e,
        other => panic!("{}: expected a parse error, got {other:?}", path.display()),
    }
}

/// Ingests `text` as the file `name` in `dir`: the error it stops with, and
/// what `--skip-invalid` keeps (samples, lines skipped).
fn error_and_skip(dir: &Path, name: &str, text: &str) -> (mcpops::ingest::ParseError, (u64, u64)) {
    let path = dir.join(name);
    write(&path, text);
    let e = parse_error_of(&path, &opts());
    assert_eq!(e.file, path.display().to_string());
    let mut o = opts();
    o.skip_invalid = true;
    let report = ingest_path(&path, &o, &mut MemorySink::default())
        .unwrap_or_else(|e| panic!("{name} with --skip-invalid: {e}"));
    (e, (report.samples, report.skipped))
}

#[test]
fn timestamps_outside_years_0_to_9999_are_bad_fields_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    // (file, text, line, column) of the first timestamp the store cannot keep.
    let cases = [
        ("late.prom", "m 1 1\nm 2 253402300800000\n", 2, 5),
        ("early.prom", "m 1 1\nm 2 -62167219200001\n", 2, 5),
        ("late.om", "m 1 1\nm 2 253402300800\n# EOF\n", 2, 5),
        (
            "late.csv",
            "timestamp,metric,value\n1,m,1\n99999999999999999,m,2\n",
            3,
            1,
        ),
        ("wide.csv", "timestamp,m\n1,1\n-62167219201,2\n", 3, 1),
        (
            "late.jsonl",
            "{\"ts\":1,\"metric\":\"m\",\"value\":1}\n{\"ts\":253402300800000,\"metric\":\"m\",\"value\":2}\n",
            2,
            2,
        ),
    ];
    for (name, text, line, col) in cases {
        let (e, kept) = error_and_skip(dir.path(), name, text);
        assert_eq!((e.line, e.col), (line, col), "{name}: {e}");
        assert!(
            e.message.contains("outside the years 0 to 9999"),
            "{name}: {e}"
        );
        assert_eq!(kept, (1, 1), "{name}: --skip-invalid keeps the good line");
    }
    // OpenMetrics seconds that are Prometheus milliseconds: the message says so.
    let (e, _) = error_and_skip(dir.path(), "ms.om", "m 1 1794787200000\nm 1 1\n# EOF\n");
    assert!(e.message.contains("--format prometheus"), "{e}");
    // Influx's nanoseconds cannot leave the range: i64 spans 1677 to 2262.
    let lp = dir.path().join("edge.lp");
    write(
        &lp,
        "m v=1 9223372036854775807\nm v=2 -9223372036854775808\n",
    );
    let mut sink = MemorySink::default();
    ingest_path(&lp, &opts(), &mut sink).unwrap();
    assert_eq!(sink.samples.len(), 2);
    // `--at` is checked as an option.
    let mut o = opts();
    o.at_ms = Some(253_402_300_800_000);
    let e = parse_error_of(&lp, &o);
    assert_eq!(e.file, "--at");
    assert!(e.message.contains("outside the years 0 to 9999"), "{e}");
}

#[test]
fn reserved_column_names_are_refused_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a.prom", "m{Value=\"x\"} 1 1\n", 1, 3),
        ("b.prom", "m{a=\"1\",DAY=\"x\"} 1 1\n", 1, 9),
        ("c.om", "{\"m\",\"Metric\"=\"x\"} 1 1\n# EOF\n", 1, 6),
        ("d.csv", "timestamp,metric,value,Day\n1,m,1,x\n", 1, 24),
        (
            "e.jsonl",
            "{\"ts\":1,\"metric\":\"m\",\"value\":1,\"labels\":{\"Day\":\"x\"}}\n",
            1,
            42,
        ),
        ("f.lp", "m,VALUE=x v=1 1\n", 1, 3),
    ];
    for (name, text, line, col) in cases {
        let path = dir.path().join(name);
        write(&path, text);
        let e = parse_error_of(&path, &opts());
        assert_eq!((e.line, e.col), (line, col), "{name}: {e}");
        assert!(e.message.contains("is reserved"), "{name}: {e}");
    }
    let mut o = opts();
    o.labels = vec![("Day".into(), "x".into())];
    let e = parse_error_of(&dir.path().join("f.lp"), &o);
    assert_eq!(e.file, "--label Day");
}

#[test]
fn label_names_that_differ_only_in_case_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // In one series, in two series of one file, and across the files of a run.
    let cases = [
        ("one.prom", "m{Server=\"a\",server=\"b\"} 1 1\n", 1, 14),
        (
            "two.prom",
            "m{server=\"a\"} 1 1\nm{Server=\"b\"} 1 2\n",
            2,
            1,
        ),
        ("tags.lp", "m,Server=a,server=b v=1 1\n", 1, 12),
        (
            "labels.jsonl",
            "{\"ts\":1,\"metric\":\"m\",\"value\":1,\"labels\":{\"Host\":\"a\",\"host\":\"b\"}}\n",
            1,
            53,
        ),
    ];
    for (name, text, line, col) in cases {
        let path = dir.path().join(name);
        write(&path, text);
        let e = parse_error_of(&path, &opts());
        assert_eq!((e.line, e.col), (line, col), "{name}: {e}");
        assert!(e.message.contains("differs only in case"), "{name}: {e}");
    }
    // A CSV header compares its columns without regard to case already.
    let csv = dir.path().join("h.csv");
    write(&csv, "timestamp,metric,value,server,Server\n1,m,1,a,b\n");
    let e = match ingest_path(&csv, &opts(), &mut MemorySink::default()) {
        Err(IngestError::Parse(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(e.message.contains("appears twice"), "{e}");

    // The sink's labels count: a second ingest into the same sink clashes
    // with the first one's spelling, whatever the format.
    let mut sink = MemorySink::default();
    let first = dir.path().join("first.prom");
    write(&first, "m{server=\"a\"} 1 1\n");
    ingest_path(&first, &opts(), &mut sink).unwrap();
    let second = dir.path().join("second.jsonl");
    write(
        &second,
        "{\"ts\":1,\"metric\":\"m\",\"value\":1,\"labels\":{\"SERVER\":\"a\"}}\n",
    );
    match ingest_path(&second, &opts(), &mut sink) {
        Err(IngestError::Parse(e)) => {
            assert!(e.message.contains("`SERVER`"), "{e}");
            assert!(e.message.contains("`server`"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // And an extra label clashes with the input's.
    let mut o = opts();
    o.labels = vec![("Server".into(), "x".into())];
    let e = parse_error_of(&first, &o);
    assert!(e.message.contains("differs only in case"), "{e}");
}

#[test]
fn a_name_label_is_refused_as_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Prometheus: `__name__` twice (its scrape rejects the series).
        ("both.prom", "foo{__name__=\"bar\"} 1 1\n", 5),
        // Prometheus: "metric name not set".
        ("alone.prom", "{__name__=\"bar\"} 1 1\n", 2),
        ("tag.lp", "m,__name__=x v=1 1\n", 3),
    ];
    for (name, text, col) in cases {
        let path = dir.path().join(name);
        write(&path, text);
        let e = parse_error_of(&path, &opts());
        assert_eq!((e.line, e.col), (1, col), "{name}: {e}");
        assert!(e.message.contains("`__name__` is the metric name"), "{e}");
    }
    // The UTF-8 way of naming a metric in the braces still works.
    let ok = dir.path().join("quoted.prom");
    write(&ok, "{\"bar\",a=\"1\"} 1 1\n");
    let mut sink = MemorySink::default();
    ingest_path(&ok, &opts(), &mut sink).unwrap();
    assert_eq!(sink.series[0], key("bar", &[("a", "1")]));
}

#[test]
fn errors_quote_at_most_a_line_s_first_characters() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "é".repeat(1_000_000); // 2 MB, two bytes a character
    let cases = [
        ("v.prom", format!("m {huge}\n")),
        ("l.prom", format!("m{{\"{huge}\"=x}} 1 1\n")),
        ("t.prom", format!("# TYPE {huge} gaugee\n")),
        ("c.csv", format!("timestamp,m\n1,{huge}\n")),
        ("h.csv", format!("{huge},m\n1,1\n")),
        (
            "j.jsonl",
            format!("{{\"ts\":1,\"metric\":\"m\",\"value\":\"{huge}\"}}\n"),
        ),
        (
            "s.jsonl",
            format!("{{\"ts\":1,\"metric\":\"m\",\"value\":1,\"labels\":\"{huge}\"}}\n"),
        ),
        ("f.lp", format!("m v={huge} 1\n")),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        write(&path, &text);
        let e = parse_error_of(&path, &opts());
        let shown = e.to_string();
        assert!(shown.len() < 1000, "{name}: {} bytes", shown.len());
        assert!(shown.contains("more bytes)"), "{name}: {shown}");
    }
}

#[test]
fn a_truncated_gzip_names_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.prom.gz");
    let text: String = (0..2000)
        .map(|i| format!("m{{i=\"{i}\"}} {i} 1\n"))
        .collect();
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    let bytes = enc.finish().unwrap();
    let cut = bytes.len() / 2;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    match ingest_path(&path, &opts(), &mut MemorySink::default()) {
        Err(e @ IngestError::Gzip { .. }) => {
            let IngestError::Gzip { offset, size, .. } = e else {
                unreachable!()
            };
            assert_eq!((offset, size), (cut as u64, cut as u64));
            let shown = e.to_string();
            assert!(shown.starts_with(&path.display().to_string()), "{shown}");
            assert!(
                shown.contains(&format!("at byte {cut} of {cut}")),
                "{shown}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn openmetrics_needs_its_eof_even_when_empty() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.om", ""), ("blank.om", "\n\n")] {
        let path = dir.path().join(name);
        write(&path, text);
        let e = parse_error_of(&path, &opts());
        assert_eq!(e.col, 1, "{e}");
        assert!(e.message.contains("`# EOF`"), "{name}: {e}");
    }
    let ok = dir.path().join("only-eof.om");
    write(&ok, "# EOF\n");
    let report = ingest_path(&ok, &opts(), &mut MemorySink::default()).unwrap();
    assert_eq!(report.samples, 0);
}

#[test]
fn openmetrics_read_as_prometheus_text_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.format = Some(Format::Prometheus);
    // Integer seconds, which Prometheus text would take for milliseconds of
    // 1970: told by `# EOF`, by `# UNIT`, or by every timestamp being so.
    let cases = [
        (
            "eof.om",
            "m 1 1\nm{a=\"1\"} 2 1794787200\n# EOF\n",
            2,
            12,
            "`# EOF` on line 3",
        ),
        (
            "unit.om",
            "# UNIT m seconds\nm 2 1794787200\n",
            2,
            5,
            "`# UNIT` on line 1",
        ),
        (
            "bare.om",
            "m 2 1794787200\nm 3 1794787260\n",
            1,
            5,
            "every timestamp",
        ),
    ];
    for (name, text, line, col, evidence) in cases {
        let path = dir.path().join(name);
        write(&path, text);
        for skip in [false, true] {
            o.skip_invalid = skip;
            let e = parse_error_of(&path, &o);
            assert_eq!((e.line, e.col), (line, col), "{name}: {e}");
            assert!(e.message.contains("--format openmetrics"), "{name}: {e}");
            assert!(e.message.contains("1970-01-21"), "{name}: {e}");
            assert!(e.message.contains(evidence), "{name}: {e}");
        }
    }
    // Prometheus text in milliseconds, even with a stray `# EOF`, is fine;
    // so is one sample of 1970 among others of now.
    o.skip_invalid = false;
    for text in [
        "m 1 1794787200000\n# EOF\n",
        "m 1 1794787200\nm 2 1794787200000\n",
    ] {
        let path = dir.path().join("fine.prom");
        write(&path, text);
        ingest_path(&path, &o, &mut MemorySink::default()).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn fifos_are_refused_before_anything_is_read() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("sub/pipe.prom");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // Named directly, or found in a directory. Opening a FIFO with no
    // writer blocks: the check runs in a thread, bounded by a timeout.
    for path in [fifo.clone(), dir.path().to_path_buf()] {
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let r = ingest_path(&p, &opts(), &mut MemorySink::default());
            let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{}: ingest blocked on the FIFO", path.display()));
        let e = result.unwrap_err();
        assert!(e.contains("pipe.prom: is a FIFO"), "{e}");
        assert!(e.contains("not a regular file"), "{e}");
    }
}

/// Export -> ingest round trips: store A is written with hostile samples,
/// exported in each format, ingested into a fresh store B, and B must hold
/// the same samples (values compared bit for bit, NaN as NaN) and export
/// byte for byte the same file. The store's own segments, ingested as
/// Parquet, must give the same samples too.
mod round_trip {
    use mcpops::ingest::{IngestOptions, ingest_path};
    use mcpops::model::{SampleSink, SeriesKey};
    use mcpops::store::{ExportFormat, ScanRequest, SeriesData, Store};
    use std::path::Path;

    /// Label values a CSV or JSON writer can get wrong.
    const HOSTILE: [&str; 9] = [
        "a,b",
        "say \"hi\"",
        "two\nlines",
        "cr\r\nlf",
        "ünïcødé ✓ 日本",
        " padded ",
        "{x=\"y\"}",
        "'single'",
        "NaN",
    ];

    /// Values a number formatter can get wrong.
    fn values() -> Vec<f64> {
        let mut v = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            0.1 + 0.2,
            1e300,
            -1.5e-300,
            123456789012345680.0,
            1.0 / 3.0,
            9007199254740993.0,
        ];
        // Finite values of arbitrary bit patterns.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while v.len() < 60 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                v.push(f);
            }
        }
        v
    }

    /// Store A: hostile labels, 30 label columns over the series, values
    /// above at millisecond times across days, and the first and last
    /// storable milliseconds.
    fn store_a(root: &Path) -> Store {
        let store = Store::open(root);
        let mut w = store.writer().unwrap();
        let vals = values();
        let t0 = super::T + 123; // 2026-11-16T00:00:00.123Z
        for (i, hostile) in HOSTILE.iter().enumerate() {
            let key = SeriesKey::new(
                format!("metric.{i}_total"),
                vec![
                    ("server".into(), format!("mcp-{i:02}")),
                    ("note".into(), hostile.to_string()),
                ],
            );
            let id = w.intern(key);
            for (j, v) in vals.iter().enumerate() {
                let t = t0 + j as i64 * 3_600_007 + i as i64;
                w.push(id, t, *v).unwrap();
            }
        }
        // Many label columns: each series has a few of 30.
        for s in 0..10 {
            let labels = (0..30)
                .filter(|l| (l + s) % 3 == 0)
                .map(|l| (format!("label_{l:02}"), format!("v{s}-{l}")))
                .collect();
            let id = w.intern(SeriesKey::new("wide", labels));
            for j in 0..5 {
                w.push(id, t0 + j * 1001, (s * 10 + j as usize) as f64 * 0.1)
                    .unwrap();
            }
        }
        let edge = w.intern(SeriesKey::new("edge", vec![]));
        w.push(edge, -62_135_596_800_000, 1.0).unwrap(); // 0001-01-01T00:00:00Z
        w.push(edge, 253_402_300_799_999, 2.0).unwrap(); // 9999-12-31T23:59:59.999Z
        w.push(edge, -1, 3.0).unwrap(); // 1969-12-31T23:59:59.999Z
        w.commit().unwrap();
        store
    }

    fn export(store: &Store, format: ExportFormat) -> Vec<u8> {
        let mut out = Vec::new();
        store
            .snapshot()
            .unwrap()
            .export(&ScanRequest::all(), format, &mut out)
            .unwrap();
        out
    }

    fn scan(store: &Store) -> Vec<SeriesData> {
        store.snapshot().unwrap().scan(&ScanRequest::all()).unwrap()
    }

    /// Same series, same times, same values bit for bit (any NaN as NaN).
    fn assert_same(a: &[SeriesData], b: &[SeriesData], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: series");
        let samples: usize = a.iter().map(|s| s.timestamps.len()).sum();
        assert!(samples > 500, "{what}: only {samples} samples");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.key, y.key, "{what}");
            assert_eq!(x.timestamps, y.timestamps, "{what}: {}", x.key);
            for (i, (p, q)) in x.values.iter().zip(&y.values).enumerate() {
                assert!(
                    p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                    "{what}: {} sample {i}: {p:e} became {q:e}",
                    x.key
                );
            }
        }
    }

    fn ingest_into(root: &Path, path: &Path) -> Store {
        let store = Store::open(root);
        let mut w = store.writer().unwrap();
        let opts = IngestOptions {
            quiet: true,
            ..IngestOptions::default()
        };
        ingest_path(path, &opts, &mut w).unwrap();
        w.commit().unwrap();
        store
    }

    #[test]
    fn every_export_format_ingests_back_to_the_same_samples() {
        let dir = tempfile::tempdir().unwrap();
        let a = store_a(&dir.path().join("a"));
        let samples_a = scan(&a);
        for (format, ext) in [
            (ExportFormat::Csv, "csv"),
            (ExportFormat::JsonLines, "jsonl"),
            (ExportFormat::Parquet, "parquet"),
        ] {
            let bytes = export(&a, format);
            let file = dir.path().join(format!("export.{ext}"));
            std::fs::write(&file, &bytes).unwrap();
            let b = ingest_into(&dir.path().join(format!("b-{ext}")), &file);
            assert_same(&samples_a, &scan(&b), ext);
            if format != ExportFormat::Parquet {
                // Text exports are deterministic: B's is A's, byte for byte.
                assert!(
                    export(&b, format) == bytes,
                    "{ext}: the second export differs from the first"
                );
            } else {
                assert_eq!(
                    export(&b, ExportFormat::Csv),
                    export(&a, ExportFormat::Csv),
                    "parquet: B exports otherwise than A"
                );
            }
        }
    }

    #[test]
    fn the_store_segments_ingest_as_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let a = store_a(&dir.path().join("a"));
        let c = ingest_into(&dir.path().join("c"), &dir.path().join("a/segments"));
        assert_same(&scan(&a), &scan(&c), "segments");
    }

    #[test]
    fn csv_and_json_exports_spell_times_with_z_and_values_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let a = store_a(&dir.path().join("a"));
        let csv = String::from_utf8(export(&a, ExportFormat::Csv)).unwrap();
        assert!(!csv.contains("+0000") && !csv.contains("+00:00"), "{csv}");
        assert!(csv.contains(",0001-01-01T00:00:00Z,1.0\n"), "{csv}");
        assert!(csv.contains(",9999-12-31T23:59:59.999Z,2.0\n"), "{csv}");
        assert!(csv.contains(",0.30000000000000004\n"), "{csv}");
        let jsonl = String::from_utf8(export(&a, ExportFormat::JsonLines)).unwrap();
        assert!(jsonl.contains(r#""value":"NaN"}"#), "{jsonl}");
        assert!(jsonl.contains(r#""value":"-Inf"}"#), "{jsonl}");
        assert!(jsonl.contains(r#""timestamp":"1969-12-31T23:59:59.999Z""#));
        assert!(!jsonl.contains("null"), "absent labels are left out");
    }
}

#[test]
fn parquet_that_is_not_a_long_table_is_refused_naming_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.parquet");
    let mut df = polars::prelude::df!("time" => [1i64, 2], "cpu" => [0.5f64, 0.6]).unwrap();
    polars::prelude::ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut sink = MemorySink::default();
    let err = ingest_path(&path, &opts(), &mut sink).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("wide.parquet:1:1:") && text.contains("`time`, `cpu`"),
        "{text}"
    );
    let junk = dir.path().join("junk.parquet");
    write(&junk, "metric,timestamp,value\n");
    let err = ingest_path(&junk, &opts(), &mut sink).unwrap_err();
    assert!(
        err.to_string().contains("not a readable Parquet file"),
        "{err}"
    );
}

#[test]
fn parquet_of_other_tools_with_epoch_and_ns_times_and_a_bad_row() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("duck.parquet");
    // Epoch seconds, integer values, a null label and a null value.
    let mut df = df!(
        "metric" => ["cpu", "cpu", "cpu"],
        "host" => [Some("a"), None, Some("a")],
        "timestamp" => [1_794_787_200i64, 1_794_787_260, 1_794_787_320],
        "value" => [Some(1i64), Some(2), None],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut sink = MemorySink::default();
    let err = ingest_path(&path, &opts(), &mut sink).unwrap_err();
    assert!(
        err.to_string()
            .contains("duck.parquet:3:4: the value is null"),
        "{err}"
    );
    let mut o = opts();
    o.skip_invalid = true;
    let mut sink = MemorySink::default();
    let report = ingest_path(&path, &o, &mut sink).unwrap();
    assert_eq!((report.samples, report.skipped), (2, 1));
    assert_eq!(series(&sink, &key("cpu", &[("host", "a")])), vec![(T, 1.0)]);
    assert_eq!(series(&sink, &key("cpu", &[])), vec![(T + 60_000, 2.0)]);
    // Nanosecond timestamps are floored to the millisecond.
    let ns = dir.path().join("ns.parquet");
    let mut df =
        df!("metric" => ["m"], "timestamp" => [T * 1_000_000 + 1_999_999], "value" => [1.0f64])
            .unwrap();
    df.apply("timestamp", |c| {
        c.cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
            .unwrap()
    })
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&ns).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut sink = MemorySink::default();
    ingest_path(&ns, &opts(), &mut sink).unwrap();
    assert_eq!(series(&sink, &key("m", &[])), vec![(T + 1, 1.0)]);
}

#[test]
fn json_lines_of_the_flat_export_form_mix_with_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    write(
        &path,
        concat!(
            r#"{"metric":"m","server":"a","labels":"x","ts":"t","timestamp":"2026-11-16T00:00:00Z","value":"+Inf"}"#,
            "\n",
            r#"{"ts":"2026-11-16T00:00:01Z","metric":"m","labels":{"server":"a"},"value":1}"#,
            "\n",
            r#"{"ts":"2026-11-16T00:00:02Z","server":"a","method":"ping","duration_ms":5}"#,
            "\n",
            r#"{"metric":"m","server":null,"timestamp":1794787203000,"value":-0.0}"#,
            "\n",
        ),
    );
    let mut sink = MemorySink::default();
    let report = ingest_path(&path, &opts(), &mut sink).unwrap();
    assert_eq!(report.samples, 4);
    // `labels` and `ts` are labels of the flat form like any other field.
    let flat = key("m", &[("server", "a"), ("labels", "x"), ("ts", "t")]);
    assert_eq!(series(&sink, &flat), vec![(T, f64::INFINITY)]);
    assert_eq!(
        series(&sink, &key("m", &[("server", "a")])),
        vec![(T + 1000, 1.0)]
    );
    let bare = series(&sink, &key("m", &[]));
    assert!(bare.len() == 1 && bare[0].1.to_bits() == (-0.0f64).to_bits());
    // A flat line's errors name its fields.
    write(&path, r#"{"metric":"m","timestamp":"soon","value":1}"#);
    let err = ingest_path(&path, &opts(), &mut MemorySink::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("`timestamp` \"soon\" is not a time"),
        "{err}"
    );
    write(
        &path,
        r#"{"metric":"m","timestamp":1794787203000,"value":1,"x":{"a":1}}"#,
    );
    let err = ingest_path(&path, &opts(), &mut MemorySink::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("label `x` must be a string, not an object"),
        "{err}"
    );
}
