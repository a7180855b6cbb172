//! The Prometheus shape of the generated fleet (`--shape prometheus`), read
//! back through mcpops's own OpenMetrics ingest and checked against the
//! events shape of the same options: every simulated call is in the
//! histograms once, buckets and counts agree, counters reset exactly at the
//! restart, and an independent parser (Python's `prometheus_client`) accepts
//! the files scrape by scrape.
//!
//! To regenerate the shipped data after a deliberate change to the generator:
//! `cargo test --release --test it -- --ignored generate_prom::regenerate_shipped_prom_fleet`.

use mcpops::generate::{GenerateOptions, IncidentKind, Shape, generate, load_incidents};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::model::MemorySink;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{files_under, read_text};

const SHIPPED_COMMAND: &str =
    "mcpops generate --servers 5 --days 2 --seed 7 --out data/fleet-prom --shape prometheus";
const HISTOGRAM: &str = "mcp_server_operation_duration_seconds";

fn shipped_options(out: PathBuf) -> GenerateOptions {
    GenerateOptions {
        servers: 5,
        days: 2,
        seed: 7,
        out,
        shape: Shape::Prometheus,
        ..GenerateOptions::default()
    }
}

/// One call of the events shape, as the Prometheus shape must count it.
struct Call {
    ts: i64,
    /// When it ended, in tenths of a millisecond (the simulation's precision).
    end: i64,
    key: (String, String, String),
}

/// The events shape's calls of one server, keyed as the histogram labels them.
fn event_calls(dir: &Path, server: &str) -> Vec<Call> {
    let text = read_text(&dir.join(format!("calls/{server}.jsonl")));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = mcpops::time::parse_timestamp(v["ts"].as_str().unwrap()).unwrap();
            let tenths = (v["duration_ms"].as_f64().unwrap() * 10.0).round() as i64;
            let method = v["method"].as_str().unwrap().to_string();
            let tool = v["tool"].as_str().unwrap_or("").to_string();
            let error = match &v["error"] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if n.as_i64() == Some(-32603) && !tool.is_empty() => {
                    "tool_error".to_string()
                }
                serde_json::Value::Number(n) => n.to_string(),
                other => panic!("error {other}"),
            };
            Call {
                ts,
                end: ts * 10 + tenths,
                key: (method, tool, error),
            }
        })
        .collect()
}

type Labels = Vec<(String, String)>;
type Points = Vec<(i64, f64)>;
/// Samples of one metric by label set (as `name=value` pairs), time ordered.
type ByLabels = BTreeMap<Labels, Points>;

fn ingest_dir(dir: &Path) -> BTreeMap<String, ByLabels> {
    let mut sink = MemorySink::default();
    ingest_path(dir, &IngestOptions::default(), &mut sink).expect("the prometheus shape ingests");
    let mut out: BTreeMap<String, ByLabels> = BTreeMap::new();
    for (key, t, v) in sink.resolved() {
        out.entry(key.metric.clone())
            .or_default()
            .entry(key.labels.clone())
            .or_default()
            .push((t, v));
    }
    for series in out.values_mut() {
        for points in series.values_mut() {
            points.sort_by_key(|p| p.0);
        }
    }
    out
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The series of `metric` whose `instance` is `instance`.
fn of<'a>(
    store: &'a BTreeMap<String, ByLabels>,
    metric: &str,
    instance: &str,
) -> Vec<(&'a Labels, &'a Points)> {
    store
        .get(metric)
        .unwrap_or_else(|| panic!("no {metric}"))
        .iter()
        .filter(|(l, _)| label(l, "instance") == instance)
        .collect()
}

fn only<'a>(
    store: &'a BTreeMap<String, ByLabels>,
    metric: &str,
    instance: &str,
) -> &'a Vec<(i64, f64)> {
    let series = of(store, metric, instance);
    assert_eq!(series.len(), 1, "one {metric} series for {instance}");
    series[0].1
}

#[test]
fn every_call_is_counted_once_and_counters_reset_exactly_at_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = |shape, out: &str| GenerateOptions {
        servers: 5,
        days: 1,
        seed: 3,
        out: tmp.path().join(out),
        gzip: false,
        shape,
        ..GenerateOptions::default()
    };
    let (events, prom) = (
        opts(Shape::Events, "events"),
        opts(Shape::Prometheus, "prom"),
    );
    let se = generate(&events).unwrap();
    let sp = generate(&prom).unwrap();
    assert_eq!(se.calls, sp.calls, "the same simulation");
    assert!(!prom.out.join("calls").exists(), "no per-call files");

    // The same incidents, named in this shape's metrics.
    let (ie, ip) = (load_incidents(&events.out).unwrap(), sp.incidents.clone());
    assert_eq!(ip, load_incidents(&prom.out).unwrap());
    assert_eq!(ie.len(), 5);
    for (e, p) in ie.iter().zip(&ip) {
        // The server by its `instance`, as Prometheus names it.
        assert_eq!(
            (
                e.kind,
                format!("{}:9464", e.server),
                e.start_ms,
                e.end_ms,
                &e.tool
            ),
            (p.kind, p.server.clone(), p.start_ms, p.end_ms, &p.tool)
        );
        let want = match p.kind {
            IncidentKind::MemoryLeak => "process_resident_memory_bytes",
            IncidentKind::DiskFill => "node_filesystem_avail_bytes",
            _ => HISTOGRAM,
        };
        assert_eq!(p.metric, want, "{p:?}");
    }
    let readme = read_text(&prom.out.join("README.md"));
    assert!(readme.contains("--shape prometheus"), "{readme}");

    let store = ingest_dir(&prom.out);
    let end = prom.start_ms + 86_400_000;
    for i in 1..=5 {
        let server = format!("mcp-0{i}");
        let (mcp, node) = (format!("{server}:9464"), format!("{server}:9100"));
        let leak = ip
            .iter()
            .find(|inc| inc.server == mcp && inc.kind == IncidentKind::MemoryLeak);

        // Scrapes: every interval from a phase, `up` at each; 0 only while
        // the leaking process is down.
        let up = only(&store, "up", &mcp);
        let scrapes: Vec<i64> = up.iter().map(|p| p.0).collect();
        assert!(scrapes[0] >= prom.start_ms && scrapes[0] < prom.start_ms + 60_000);
        assert!(scrapes.windows(2).all(|w| w[1] - w[0] == 60_000));
        assert!(*scrapes.last().unwrap() < end && *scrapes.last().unwrap() >= end - 60_000);
        assert_eq!(
            only(&store, "up", &node)
                .iter()
                .map(|p| (p.0, p.1))
                .collect::<Vec<_>>(),
            scrapes.iter().map(|&t| (t, 1.0)).collect::<Vec<_>>()
        );
        let down: Vec<i64> = up.iter().filter(|p| p.1 == 0.0).map(|p| p.0).collect();
        let starts = only(&store, "process_start_time_seconds", &mcp);
        let distinct: BTreeSet<i64> = starts
            .iter()
            .map(|p| (p.1 * 1000.0).round() as i64)
            .collect();
        let (restart, born) = match leak {
            None => {
                assert!(down.is_empty(), "{server}: no failed scrape");
                assert_eq!(distinct.len(), 1, "{server}: one process");
                (None, None)
            }
            Some(inc) => {
                assert_eq!(distinct.len(), 2, "{server}: a new process after the leak");
                let born = *distinct.last().unwrap();
                // Down from the death to the new start: those scrapes fail, no others.
                let want: Vec<i64> = scrapes
                    .iter()
                    .copied()
                    .filter(|&t| t >= inc.end_ms && t < born)
                    .collect();
                assert!(!want.is_empty());
                assert_eq!(down, want, "{server}: the scrapes the process is down for");
                // The start time changes at the first scrape after the gap.
                let changed = starts.windows(2).find(|w| w[0].1 != w[1].1).unwrap()[1].0;
                assert_eq!(
                    changed,
                    scrapes[scrapes.iter().position(|&t| t >= born).unwrap()]
                );
                (Some(inc.end_ms), Some(born))
            }
        };
        // Every series of the MCP process is scraped exactly when it is up.
        let up_at: Vec<i64> = up.iter().filter(|p| p.1 == 1.0).map(|p| p.0).collect();
        for metric in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "mcp_server_requests_in_flight",
        ] {
            let ts: Vec<i64> = only(&store, metric, &mcp).iter().map(|p| p.0).collect();
            assert_eq!(ts, up_at, "{server} {metric}");
        }
        for metric in ["node_filesystem_avail_bytes", "node_filesystem_size_bytes"] {
            let series = of(&store, metric, &node);
            assert_eq!(series.len(), 1);
            let (labels, points) = series[0];
            assert_eq!(label(labels, "mountpoint"), "/data");
            assert_eq!(label(labels, "job"), "node");
            assert_eq!(points.iter().map(|p| p.0).collect::<Vec<_>>(), scrapes);
        }

        // CPU seconds: cumulative, dropping only where the process restarted.
        let cpu = only(&store, "process_cpu_seconds_total", &mcp);
        for w in cpu.windows(2) {
            let across = restart.is_some_and(|r| w[0].0 < r && w[1].0 > r);
            assert_eq!(w[1].1 < w[0].1, across, "{server} cpu {w:?}");
            if across {
                let up_s = (w[1].0 - born.unwrap()) as f64 / 1000.0;
                assert!(w[1].1 <= up_s, "{server}: CPU counted since the new start");
            }
        }

        // The histogram: per point, buckets rise to +Inf, which is _count.
        let counts = of(&store, &format!("{HISTOGRAM}_count"), &mcp);
        let buckets = of(&store, &format!("{HISTOGRAM}_bucket"), &mcp);
        let sums = of(&store, &format!("{HISTOGRAM}_sum"), &mcp);
        assert_eq!(counts.len(), sums.len());
        let key_of = |l: &[(String, String)]| {
            (
                label(l, "mcp_method_name").to_string(),
                label(l, "gen_ai_tool_name").to_string(),
                label(l, "error_type").to_string(),
            )
        };
        let mut by_point: BTreeMap<(_, i64), Vec<(f64, f64)>> = BTreeMap::new();
        for (l, points) in &buckets {
            let le: f64 = label(l, "le").parse().unwrap();
            for &(t, v) in points.iter() {
                by_point.entry((key_of(l), t)).or_default().push((le, v));
            }
        }
        let mut count_at: BTreeMap<_, f64> = BTreeMap::new();
        for (l, points) in &counts {
            for &(t, v) in points.iter() {
                count_at.insert((key_of(l), t), v);
            }
        }
        assert_eq!(
            by_point.len(),
            count_at.len(),
            "{server}: every point has buckets"
        );
        for (point, mut bs) in by_point {
            bs.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(bs.len(), 15, "{point:?}");
            assert!(bs.windows(2).all(|w| w[0].1 <= w[1].1), "{point:?}: {bs:?}");
            assert_eq!(bs[14], (f64::INFINITY, count_at[&point]), "{point:?}");
        }

        // The increases of every series' _count, counted as a reader that
        // knows the restart would (a new process starts from zero), equal
        // the calls each series had recorded and exported between the
        // first scrape and the last.
        let mut got: BTreeMap<_, i64> = BTreeMap::new();
        for (l, points) in &counts {
            let mut prev: Option<(i64, f64)> = None;
            for &(t, v) in points.iter() {
                let life_changed = restart.is_some_and(|r| prev.is_some_and(|p| p.0 < r && t > r));
                let add = match prev {
                    None if t == scrapes[0] => 0.0, // the baseline
                    Some((_, pv)) if !life_changed => {
                        assert!(
                            v >= pv,
                            "{server} {l:?}: _count never falls within a process"
                        );
                        v - pv
                    }
                    _ => v, // a new series, or the first scrape of the new process
                };
                *got.entry(key_of(l)).or_default() += add as i64;
                prev = Some((t, v));
            }
        }
        let last_before = |r: i64| *scrapes.iter().filter(|&&t| t < r).max().unwrap();
        let mut want: BTreeMap<_, i64> = BTreeMap::new();
        let mut lost = 0;
        for c in event_calls(&events.out, &server) {
            let last = match restart {
                Some(r) if c.ts < r => {
                    if c.end > r * 10 {
                        lost += 1; // still being served when the process died
                        continue;
                    }
                    last_before(r)
                }
                _ => *scrapes.last().unwrap(),
            };
            if c.end > scrapes[0] * 10 && c.end <= last * 10 {
                *want.entry(c.key).or_default() += 1;
            }
        }
        // A series whose calls all came before the first scrape is in the
        // file with nothing to add; no call is missing or counted twice.
        let keys: BTreeSet<_> = got.keys().chain(want.keys()).collect();
        for key in keys {
            let (g, n) = (got.get(key).copied(), want.get(key).copied().unwrap_or(0));
            let g = g.unwrap_or_else(|| panic!("{server}: no series {key:?} ({n} calls)"));
            // Warm-up calls still running at the first scrape are counted by
            // the histogram but are not in the events file.
            assert!((0..=2).contains(&(g - n)), "{server} {key:?}: {g} vs {n}");
        }
        let total: i64 = want.values().sum();
        assert!(total > 10_000, "{server}: {total} calls");
        if leak.is_some() {
            assert!(lost < 5, "{server}: {lost} calls lost with the process");
        }
    }
}

#[test]
fn the_same_options_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = |out: &str| GenerateOptions {
        servers: 2,
        days: 1,
        seed: 11,
        out: tmp.path().join(out),
        shape: Shape::Prometheus,
        scrape_interval_ms: 30_000,
        ..GenerateOptions::default()
    };
    let (a, b) = (opts("a"), opts("b"));
    generate(&a).unwrap();
    generate(&b).unwrap();
    assert_eq!(files_under(&a.out), files_under(&b.out));
    for rel in files_under(&a.out) {
        let (x, y) = (
            fs::read(a.out.join(&rel)).unwrap(),
            fs::read(b.out.join(&rel)).unwrap(),
        );
        if rel.ends_with("README.md") {
            let x = String::from_utf8(x).unwrap().replace("/a ", "/b ");
            assert_eq!(x, String::from_utf8(y).unwrap());
            assert!(x.contains("--scrape-interval 30s") && x.contains("every 30s"));
        } else {
            assert!(x == y, "{} differs between two runs", rel.display());
        }
    }
    // A 30s grid: twice the scrapes of a minute's.
    let text = read_text(&a.out.join("metrics/mcp-01.om.gz"));
    let ups = text.lines().filter(|l| l.starts_with("up{")).count();
    assert_eq!(ups, 2 * 2880, "one `up` per target and scrape");
}

#[test]
fn shipped_prometheus_fleet_matches_a_fresh_generation_of_its_recorded_command() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fleet-prom");
    let readme = read_text(&shipped.join("README.md"));
    assert!(
        readme.contains(&format!("`{SHIPPED_COMMAND}`")),
        "data/fleet-prom/README.md records its command"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fleet");
    let summary = generate(&shipped_options(out.clone())).unwrap();
    assert_eq!(files_under(&shipped), files_under(&out), "the same files");
    assert_eq!(summary.files.len(), files_under(&out).len());
    let kinds: BTreeSet<String> = summary
        .incidents
        .iter()
        .map(|i| format!("{:?}", i.kind))
        .collect();
    assert_eq!(kinds.len(), 5, "every kind of incident: {kinds:?}");
    for rel in files_under(&out) {
        let fresh =
            read_text(&out.join(&rel)).replace(&out.display().to_string(), "data/fleet-prom");
        // Text, not gzip bytes: the deflate backend may change; the data must not.
        assert!(
            read_text(&shipped.join(&rel)) == fresh,
            "data/fleet-prom/{} differs from a fresh generation: regenerate it with \
             `cargo test --release --test it -- --ignored generate_prom::regenerate_shipped_prom_fleet`",
            rel.display()
        );
    }
    let bytes: u64 = files_under(&shipped)
        .iter()
        .map(|r| fs::metadata(shipped.join(r)).unwrap().len())
        .sum();
    assert!(bytes < 14_000_000, "data/fleet-prom is {bytes} bytes");
}

/// The check Python's `prometheus_client` makes: every scrape of the file,
/// cut out as the exposition that scrape returned, parses as OpenMetrics
/// (families, TYPE/UNIT/HELP, histogram buckets in order with +Inf equal to
/// _count). Scrape by scrape because its parser keeps one point per
/// histogram series and timestamp group, and drops the later ones of a
/// series written with many.
const PARSE_SCRAPES: &str = r##"
import sys
from collections import OrderedDict
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
assert text.endswith("# EOF\n")
meta, order, scrapes = OrderedDict(), [], {}
family = None
for line in text.splitlines():
    if line == "# EOF":
        break
    if line.startswith("# "):
        family = line.split(" ")[2]
        if family not in meta:
            meta[family] = []
            order.append(family)
        meta[family].append(line)
        continue
    ts = line.rsplit(" ", 1)[1]
    scrapes.setdefault(ts, OrderedDict()).setdefault(family, []).append(line)
kinds, points = {}, 0
for ts, fams in scrapes.items():
    out = []
    for f in order:
        if f in fams:
            out += meta[f] + fams[f]
    for fam in text_string_to_metric_families("\n".join(out) + "\n# EOF\n"):
        kinds[fam.name] = (fam.type, fam.unit)
        if fam.type == "histogram":
            points += sum(1 for s in fam.samples if s.name.endswith("_count"))
for name in sorted(kinds):
    print(name, *kinds[name])
print("scrapes", len(scrapes), "histogram_points", points)
"##;

#[test]
fn an_independent_openmetrics_parser_accepts_every_scrape() {
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "\n!!! SKIPPED generate_prom::an_independent_openmetrics_parser_accepts_every_scrape: \
             python3 with prometheus_client is not installed (pip install prometheus_client)\n"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        servers: 1,
        days: 1,
        seed: 5,
        out: tmp.path().join("fleet"),
        gzip: false,
        shape: Shape::Prometheus,
        scrape_interval_ms: 300_000,
        ..GenerateOptions::default()
    };
    generate(&opts).unwrap();
    let file = opts.out.join("metrics/mcp-01.om");
    let out = Command::new("python3")
        .args(["-c", PARSE_SCRAPES])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prometheus_client refused {}: {}{stdout}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let want = [
        "mcp_server_operation_duration_seconds histogram seconds",
        "mcp_server_requests_in_flight gauge ",
        "node_filesystem_avail_bytes gauge bytes",
        "node_filesystem_size_bytes gauge bytes",
        "process_cpu_seconds counter seconds",
        "process_resident_memory_bytes gauge bytes",
        "process_start_time_seconds gauge seconds",
        "up gauge ",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..want.len()], want, "{stdout}");
    // Every scrape returned, each with the histogram series of the file.
    let text = read_text(&file);
    let count_lines = text
        .lines()
        .filter(|l| l.starts_with(&format!("{HISTOGRAM}_count")))
        .count();
    assert_eq!(
        lines[want.len()],
        format!("scrapes 288 histogram_points {count_lines}")
    );
}

#[test]
#[ignore]
fn regenerate_shipped_prom_fleet() {
    assert_eq!(
        std::env::current_dir().unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
    );
    let out = PathBuf::from("data/fleet-prom");
    let _ = fs::remove_dir_all(out.join("metrics"));
    let summary = generate(&shipped_options(out)).unwrap();
    eprintln!(
        "{} calls, {} samples, {} incidents",
        summary.calls,
        summary.gauge_samples,
        summary.incidents.len()
    );
}
