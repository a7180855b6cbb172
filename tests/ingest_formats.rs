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
        Err(IngestError::Io { .. })
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
