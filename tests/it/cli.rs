//! The binary as a user runs it: exit codes, messages, and a store left
//! exactly as it was when input is bad.

use crate::common;

use common::{generate_and_ingest, mcpops, text};
use std::fs;
use std::path::Path;

const GOOD: &str = "# TYPE disk.free_bytes gauge\n\
disk.free_bytes{server=\"a\"} 100 1763251200\n\
disk.free_bytes{server=\"a\"} 90 1763251260\n\
disk.free_bytes{server=\"b\"} NaN 1763251260\n\
# EOF\n";

#[test]
fn ingest_info_export_compact_retain() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("scrape.om");
    fs::write(&file, GOOD).unwrap();

    let o = mcpops(&store, &["ingest", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ingested 3 samples"), "{}", text(&o));

    let o = mcpops(&store, &["info", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["samples"], 3);
    assert_eq!(info["series"], 2);
    assert_eq!(info["first"], 1_763_251_200_000i64);

    let o = mcpops(
        &store,
        &["export", "--format", "csv", "--match", "server=a"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "metric,server,timestamp,value");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with("disk.free_bytes,a,2025-11-16"),
        "{csv}"
    );
    assert!(lines[2].ends_with(",90.0"), "{csv}");

    let out = dir.path().join("x.parquet");
    let o = mcpops(
        &store,
        &[
            "export",
            "--format",
            "parquet",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(fs::read(&out).unwrap().starts_with(b"PAR1"));

    // The same file again: reads see each sample once, compaction removes the copies.
    assert!(
        mcpops(&store, &["ingest", file.to_str().unwrap()])
            .status
            .success()
    );
    let o = mcpops(&store, &["compact"]);
    assert!(text(&o).contains("removed 3 duplicate"), "{}", text(&o));

    let o = mcpops(&store, &["retain", "--before", "2025-11-17"]);
    assert!(text(&o).contains("dropped 1 segment"), "{}", text(&o));
    let o = mcpops(&store, &["info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["samples"], 0);
}

#[test]
fn bad_input_names_file_line_and_column_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = dir.path().join("good.om");
    fs::write(&good, GOOD).unwrap();
    assert!(
        mcpops(&store, &["ingest", good.to_str().unwrap()])
            .status
            .success()
    );
    let manifest = fs::read(store.join("manifest.json")).unwrap();

    // A good file and a bad one in one run: nothing of either is stored.
    let bad = dir.path().join("bad.om");
    fs::write(
        &bad,
        "# TYPE m gauge\nm{server=\"a\"} 1 1763251200\nm{server=\"a\" 2 1763251260\n# EOF\n",
    )
    .unwrap();
    let o = mcpops(
        &store,
        &["ingest", good.to_str().unwrap(), bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("bad.om:3:"), "{msg}");
    assert_eq!(fs::read(store.join("manifest.json")).unwrap(), manifest);

    // --skip-invalid stores the rest and says what it skipped.
    let o = mcpops(&store, &["ingest", "--skip-invalid", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("skipped 1 invalid line"), "{}", text(&o));
    assert!(text(&o).contains("bad.om:3:"), "{}", text(&o));

    // Usage errors: exit 2.
    let o = mcpops(&store, &["retain", "--before", "someday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a time"), "{}", text(&o));
    let o = mcpops(
        &store,
        &["ingest", dir.path().join("missing.om").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = mcpops(&store, &["export", "--match", "server=~\"(\""]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_shipped_fleet_ingests() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fleet");
    let o = mcpops(&store, &["ingest", fleet.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpops(&store, &["info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(info["samples"].as_u64().unwrap() > 600_000, "{info}");
    assert_eq!(info["metrics"], 9);
}

#[test]
fn check_and_fmt_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let o = mcpops(&store, &["check", shipped.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = mcpops(&store, &["fmt", "--check", shipped.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let bad = dir.path().join("bad.rules");
    fs::write(&bad, "alert A {\n  when up > 1\n  for soon\n}\n").unwrap();
    let o = mcpops(&store, &["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("bad.rules:3:"), "{}", text(&o));
    let o = mcpops(
        &store,
        &["check", "--format", "json", bad.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnostics"][0]["line"], 3);

    let messy = dir.path().join("messy.rules");
    fs::write(&messy, "alert   A {\nwhen up > 1\n   for 5m\n}\n").unwrap();
    let o = mcpops(&store, &["fmt", "--check", messy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        mcpops(&store, &["fmt", messy.to_str().unwrap()])
            .status
            .success()
    );
    let o = mcpops(&store, &["fmt", "--check", messy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = mcpops(
        &store,
        &["check", dir.path().join("none.rules").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn generate_writes_a_fleet_that_ingests_and_refuses_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("fleet");
    let o = mcpops(
        &store,
        &[
            "generate",
            "--servers",
            "2",
            "--days",
            "1",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("incidents.json").exists());
    let o = mcpops(&store, &["ingest", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpops(
        &store,
        &[
            "generate",
            "--servers",
            "0",
            "--out",
            dir.path().join("x").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn query_test_and_backtest_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = dir.path().join("good.om");
    fs::write(&data, GOOD).unwrap();
    assert!(
        mcpops(&store, &["ingest", data.to_str().unwrap()])
            .status
            .success()
    );

    // An instant query at the last sample, as JSON in Prometheus's shape.
    let o = mcpops(
        &store,
        &["query", "disk.free_bytes{server=\"a\"}", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "90");
    // Range queries over the first three minutes, at a 1m step.
    let over_range = |expr: &str, format: &str| {
        let range = ["--from", "1763251200", "--to", "1763251320", "--step", "1m"];
        let args = [&["query", expr][..], &range, &["--format", format]].concat();
        mcpops(&store, &args)
    };
    // As CSV: one row per step with a value.
    let o = over_range("min(disk.free_bytes[2m])", "csv");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        1 + 3 + 2,
        "{}",
        text(&o)
    );
    // A plain number is a query too, as in PromQL: a scalar at an instant,
    // a series without labels over a range.
    let o = mcpops(&store, &["query", "2 * 5m / 1s", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["resultType"], "scalar", "{v}");
    assert_eq!(v["data"]["result"][1], "600", "{v}");
    let o = over_range("1 + 1", "json");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    assert_eq!(
        v["data"]["result"][0]["metric"],
        serde_json::json!({}),
        "{v}"
    );
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(v["data"]["result"][0]["values"][2][1], "2", "{v}");
    // A string is not, in parentheses or not.
    for q in ["\"tools/call\"", "((\"tools/call\"))"] {
        let o = mcpops(&store, &["query", q]);
        assert_eq!(o.status.code(), Some(3), "{q}: {}", text(&o));
        assert!(text(&o).contains("must select series"), "{q}: {}", text(&o));
    }
    // A bad expression is a rule error with its position.
    let o = mcpops(&store, &["query", "rate(disk.free_bytes)"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("query:1:"), "{}", text(&o));

    // Rule tests: the shipped ones pass, a failing one exits 3 and shows both sides.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let o = mcpops(&store, &["test", shipped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let failing = dir.path().join("failing.rules");
    fs::write(
        &failing,
        "alert Low {\n  when g < 1\n}\ntest \"t\" {\n  series g{server=\"a\"} = \"0x10\"\n  expect Low at 5m == none\n}\n",
    )
    .unwrap();
    let o = mcpops(&store, &["test", failing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("expected | actual"), "{}", text(&o));
    assert!(
        text(&o).contains("none     | firing {server=\"a\""),
        "{}",
        text(&o)
    );

    // A backtest of that rule over the store, with Parquet output DuckDB could read.
    let rules = dir.path().join("low.rules");
    fs::write(
        &rules,
        "alert Low {\n  when disk.free_bytes < 95\n  severity critical\n}\n",
    )
    .unwrap();
    let out = dir.path().join("bt");
    let o = mcpops(
        &store,
        &[
            "backtest",
            "--rules",
            rules.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["alerts"][0]["alert"], "Low", "{v}");
    assert!(out.join("alerts.parquet").exists() && out.join("actions.parquet").exists());
}

#[test]
fn analyze_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // An empty store is a usage error that says what to do.
    let o = mcpops(&store, &["analyze"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ingest"), "{}", text(&o));

    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 1, 5);

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let o = mcpops(
        &store,
        &[
            "analyze",
            "--format",
            "json",
            "--rules",
            rules.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["servers"], 2);
    for section in [
        "bottlenecks",
        "red_tools",
        "red_servers",
        "use",
        "knees",
        "correlations",
        "queueing",
        "incidents",
        "change_points",
        "anomalies",
        "forecasts",
        "maintenance",
        "recommendations",
    ] {
        assert!(v[section].is_array(), "no {section} in {v}");
    }
    assert_eq!(v["red_servers"].as_array().unwrap().len(), 2);

    let o = mcpops(&store, &["analyze"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("bottlenecks"), "{}", text(&o));
    let o = mcpops(&store, &["analyze", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_reader_that_stops_reading_is_not_an_error() {
    // `mcpops ... | head`: the pipe closes before the command has written
    // its output. Like `ls | head`, that ends the command quietly, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 1, 5);
    let csv = dir.path().join("series.csv");
    let mut rows = String::from("timestamp,value\n");
    for i in 0..20_000 {
        rows.push_str(&format!(
            "2014-04-01 {:02}:{:02}:00,{}\n",
            (i / 60) % 24,
            i % 60,
            i % 97
        ));
    }
    std::fs::write(&csv, rows).unwrap();
    let runs: [&[&str]; 4] = [
        &["analyze", "--format", "json"],
        &["export", "--format", "csv"],
        &["detect", csv.to_str().unwrap()],
        &["backtest", "--rules", "rules/mcp.rules"],
    ];
    for args in runs {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--store")
            .arg(&store)
            .arg("--quiet")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", text(&o));
    }
}

/// `mcpops --store STORE --quiet ARGS...`, killed (and the test failed) if it
/// has not exited within `limit`: for inputs that could block forever.
fn mcpops_within(store: &Path, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(store)
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mcpops");
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait for mcpops").is_some() {
            return child.wait_with_output().expect("mcpops output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mcpops {args:?} had not exited after {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Ingests `file` into `store` (which must be left as it was): exit 2, and
/// the message.
fn refused(store: &Path, file: &Path) -> String {
    let before = fs::read(store.join("manifest.json")).ok();
    let o = mcpops(store, &["ingest", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(fs::read(store.join("manifest.json")).ok(), before);
    text(&o)
}

#[test]
fn bad_fields_exit_2_with_a_position_and_skip_invalid_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let late = dir.path().join("late.prom");
    fs::write(
        &late,
        "m{server=\"a\"} 1 1763251200000\nm{server=\"a\"} 2 253402300800000\n",
    )
    .unwrap();
    let msg = refused(&store, &late);
    assert!(
        msg.contains("late.prom:2:17: timestamp `253402300800000` is outside the years 0 to 9999"),
        "{msg}"
    );
    let o = mcpops(
        &store,
        &["ingest", "--skip-invalid", late.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ingested 1 samples"), "{}", text(&o));
    assert!(text(&o).contains("skipped 1 invalid line"), "{}", text(&o));

    // A label the store's columns would shadow, in any case.
    let day = dir.path().join("day.prom");
    fs::write(&day, "m{DAY=\"x\"} 1 1763251200000\n").unwrap();
    let msg = refused(&store, &day);
    assert!(
        msg.contains("day.prom:1:3: label name `DAY` is reserved"),
        "{msg}"
    );

    // A spelling that differs only in case from the store's `server`.
    let upper = dir.path().join("upper.jsonl");
    fs::write(
        &upper,
        "{\"ts\":1763251200000,\"metric\":\"m\",\"value\":1,\"labels\":{\"Server\":\"b\"}}\n",
    )
    .unwrap();
    let msg = refused(&store, &upper);
    assert!(msg.contains("upper.jsonl:1:"), "{msg}");
    assert!(
        msg.contains("`Server` differs only in case from the label `server`"),
        "{msg}"
    );

    // `foo{__name__="bar"}`, which Prometheus refuses too.
    let named = dir.path().join("named.prom");
    fs::write(&named, "foo{__name__=\"bar\"} 1 1763251200000\n").unwrap();
    let msg = refused(&store, &named);
    assert!(
        msg.contains("named.prom:1:5: `__name__` is the metric name"),
        "{msg}"
    );

    // A 4 MB line is quoted by its first characters only.
    let huge = dir.path().join("huge.prom");
    fs::write(&huge, format!("m {} 1\n", "9x".repeat(2 << 20))).unwrap();
    let msg = refused(&store, &huge);
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(msg.contains("…(4194184 more bytes)"), "{msg}");
}

#[test]
fn unreadable_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // A truncated gzip: the file and how far into it decompression failed.
    let gz = dir.path().join("cut.om.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let lines: String = (0..5000)
        .map(|i| format!("m{{i=\"{i}\"}} {i} 1763251200\n"))
        .collect();
    std::io::Write::write_all(&mut enc, lines.as_bytes()).unwrap();
    let bytes = enc.finish().unwrap();
    fs::write(&gz, &bytes[..bytes.len() - 20]).unwrap();
    let msg = refused(&store, &gz);
    let cut = bytes.len() - 20;
    assert!(
        msg.contains(&format!(
            "cut.om.gz: the gzip data is truncated or corrupt at byte {cut} of {cut}"
        )),
        "{msg}"
    );

    // An empty OpenMetrics file lacks its `# EOF`.
    let empty = dir.path().join("empty.om");
    fs::write(&empty, "").unwrap();
    let msg = refused(&store, &empty);
    assert!(
        msg.contains("empty.om:1:1: OpenMetrics text ends with a `# EOF` line"),
        "{msg}"
    );

    // OpenMetrics (seconds) read as Prometheus text (milliseconds).
    let om = dir.path().join("scrape.om");
    fs::write(&om, GOOD).unwrap();
    let o = mcpops(
        &store,
        &["ingest", "--format", "prometheus", om.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("scrape.om:2:"), "{}", text(&o));
    assert!(
        text(&o).contains("use --format openmetrics"),
        "{}",
        text(&o)
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_before_the_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let inputs = dir.path().join("inputs");
    fs::create_dir_all(&inputs).unwrap();
    let fifo = inputs.join("scrape.prom");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let limit = std::time::Duration::from_secs(20);
    // Named directly, and found in a directory.
    for path in [&fifo, &inputs] {
        let o = mcpops_within(&store, &["ingest", path.to_str().unwrap()], limit);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("scrape.prom: is a FIFO (named pipe), not a regular file"),
            "{}",
            text(&o)
        );
        // Refused before the lock: no store was even created.
        assert!(!store.exists());
    }
}

/// A store holding `GOOD`, for the tests of query and backtest limits.
fn good_store(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    let data = dir.join("good.om");
    fs::write(&data, GOOD).unwrap();
    let o = mcpops(&store, &["ingest", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    store
}

#[test]
fn steps_are_checked_the_same_by_query_backtest_check_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let store = good_store(dir.path());
    let rules = dir.path().join("low.rules");
    fs::write(&rules, "alert Low {\n  when disk.free_bytes < 95\n}\n").unwrap();
    let rules = rules.to_str().unwrap();
    let range = ["--from", "1763251200", "--to", "1763251320"];

    // A zero step is a usage error that names the flag, in both commands.
    for cmd in [
        &["query", "disk.free_bytes"][..],
        &["backtest", "--rules", rules],
    ] {
        let o = mcpops(&store, &[cmd, &range, &["--step", "0s"]].concat());
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", text(&o));
        assert!(
            text(&o).contains("--step: the step must be longer than 0"),
            "{cmd:?}: {}",
            text(&o)
        );
    }
    // Too many steps: the one cap of both.
    for cmd in [
        &["query", "disk.free_bytes"][..],
        &["backtest", "--rules", rules],
    ] {
        let args = [
            cmd,
            &["--from", "2000-01-01", "--to", "2026-01-01", "--step", "1s"],
        ]
        .concat();
        let o = mcpops(&store, &args);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", text(&o));
        assert!(
            text(&o).contains("steps is more than the 1000000 allowed"),
            "{cmd:?}: {}",
            text(&o)
        );
    }
    // A range whose length overflows an i64 is refused, not answered empty.
    let o = mcpops(
        &store,
        &[
            "query",
            "disk.free_bytes",
            "--from=-9223372036854775000",
            "--to",
            "1763251320",
            "--step",
            "1m",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--from: the time is outside the years 0000-9999"),
        "{}",
        text(&o)
    );

    // `evaluate every 1ms`: an error in check, test and backtest alike.
    let fine = dir.path().join("fine.rules");
    fs::write(
        &fine,
        "evaluate every 1ms\nalert Low {\n  when disk.free_bytes < 95\n}\n",
    )
    .unwrap();
    let fine = fine.to_str().unwrap();
    for cmd in [
        &["check", fine][..],
        &["test", fine],
        &["backtest", "--rules", fine],
    ] {
        let o = mcpops(&store, cmd);
        assert_eq!(o.status.code(), Some(3), "{cmd:?}: {}", text(&o));
        assert!(
            text(&o).contains(
                "error[E304]: `evaluate every 1ms` is too fine: the evaluation step must be at least 1s"
            ) && text(&o).contains(&format!("--> {fine}:1:16")),
            "{cmd:?}: {}",
            text(&o)
        );
    }
}

#[test]
fn an_expression_that_would_hold_too_many_samples_fails_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = good_store(dir.path());
    // `max(x[1d])` over a day at 1m: 1441 steps for each of the 2 series.
    let run = |limit: Option<&str>, env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"));
        cmd.arg("--store").arg(&store).arg("--quiet");
        cmd.args([
            "query",
            "max(disk.free_bytes[1d])",
            "--from",
            "1763251200",
            "--to",
            "1763337600",
            "--step",
            "1m",
            "--format",
            "csv",
        ]);
        if let Some(l) = limit {
            cmd.args(["--max-samples", l]);
        }
        cmd.env_remove("MCPOPS_MAX_SAMPLES");
        if let Some(v) = env {
            cmd.env("MCPOPS_MAX_SAMPLES", v);
        }
        cmd.output().unwrap()
    };
    let o = run(None, None);
    assert!(o.status.success(), "{}", text(&o));
    for (flag, env) in [(Some("1000"), None), (None, Some("1000"))] {
        let o = run(flag, env);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("would hold more than 1000 samples")
                && text(&o).contains("--max-samples N or MCPOPS_MAX_SAMPLES"),
            "{}",
            text(&o)
        );
    }
    assert!(run(Some("5000"), None).status.success());
    let o = run(Some("0"), None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn query_tables_escape_label_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = dir.path().join("odd.prom");
    fs::write(
        &data,
        "odd{v=\"two\\nlines \\\"quoted\\\" back\\\\slash\"} 1 1763251200000\n",
    )
    .unwrap();
    let o = mcpops(&store, &["ingest", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpops(&store, &["query", "odd"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains(r#"odd{v="two\nlines \"quoted\" back\\slash"}"#),
        "{out}"
    );
    // JSON keeps the value itself.
    let o = mcpops(&store, &["query", "odd", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["data"]["result"][0]["metric"]["v"],
        "two\nlines \"quoted\" back\\slash"
    );
}

/// Samples `# TYPE`d as gauges, as an OpenMetrics file in `dir` (the
/// samples of one metric given together: a family appears once).
fn gauge_file(dir: &Path, name: &str, samples: &[(&str, &str, &str, i64)]) -> String {
    let mut om = String::new();
    let mut typed = None;
    for (metric, server, value, t_s) in samples {
        if typed != Some(metric) {
            om.push_str(&format!("# TYPE {metric} gauge\n"));
            typed = Some(metric);
        }
        om.push_str(&format!("{metric}{{server=\"{server}\"}} {value} {t_s}\n"));
    }
    om.push_str("# EOF\n");
    let path = dir.join(name);
    fs::write(&path, om).unwrap();
    path.to_str().unwrap().to_string()
}

/// One bad scrape (a gauge at 1e100, another at 1e300) made `analyze` and
/// `report` panic inside stlrs (exit 101) until the day was dropped: now
/// both succeed, the 1e100 shows as an anomaly and the 1e300, beyond what
/// the analysis can compute with, is left out and named in its notes.
#[test]
fn one_bad_scrape_does_not_break_analyze_or_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 2, 5);
    // 2026-11-17T12:00:00Z, inside the generated two days.
    let at = 1_794_916_800;
    let bad = gauge_file(
        dir.path(),
        "bad.om",
        &[
            ("process.memory.usage", "mcp-01", "1e100", at),
            ("disk.free_bytes", "mcp-02", "1e300", at),
        ],
    );
    let o = mcpops(&store, &["ingest", &bad]);
    assert!(o.status.success(), "{}", text(&o));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let rules = rules.to_str().unwrap();

    let o = mcpops(&store, &["analyze", "--rules", rules, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = v["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("mcp-02: 1 value(s) of disk.free_bytes"),
        "{notes:?}"
    );
    let spike = v["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["series"] == "process.memory.usage" && a["server"] == "mcp-01");
    assert!(spike, "{}", v["anomalies"]);
    let o = mcpops(&store, &["analyze", "--rules", rules]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("\nnotes\n"), "{}", text(&o));

    let out = dir.path().join("report");
    let o = mcpops(
        &store,
        &["report", "--rules", rules, "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Notes"), "{md}");
}

/// One sample at 9999-12-31 made `backtest` and `report` try to allocate
/// 33.8 GB, one at 1970-01-01 made `analyze` take a minute and 1.2 GB: the
/// default period is where the data is dense, the outliers are named on
/// stderr (also with --quiet: a cron mail shows them), and a period that
/// would need too many steps fails with a usage error instead.
#[test]
fn outlying_samples_are_left_out_of_the_default_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 1, 5);
    let far = gauge_file(
        dir.path(),
        "far.om",
        &[
            ("process.memory.usage", "mcp-01", "1", 0),
            ("process.memory.usage", "mcp-01", "1", 253_402_300_799),
        ],
    );
    assert!(mcpops(&store, &["ingest", &far]).status.success());
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let rules = rules.to_str().unwrap();
    let note = "left out 2 sample(s) far from the rest of the data (1 on 1970-01-01, 1 on 9999-12-31); give --from/--to to include them";

    let o = mcpops(&store, &["backtest", "--rules", rules, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.trim(), format!("mcpops: {note}"));
    let o = mcpops(&store, &["analyze", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(note), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["from"].as_str().unwrap().starts_with("2026-11-16"),
        "{}",
        v["from"]
    );
    assert!(
        v["to"].as_str().unwrap().starts_with("2026-11-1"),
        "{}",
        v["to"]
    );
    let out = dir.path().join("report");
    let o = mcpops(
        &store,
        &["report", "--rules", rules, "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(note), "{}", text(&o));
    // A bound that is given is not second-guessed: only the other side's
    // outlier is named.
    let o = mcpops(&store, &["analyze", "--from", "2026-11-16"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("(1 on 9999-12-31)"), "{}", text(&o));

    // Asked for explicitly, the outliers make periods too long to run.
    let o = mcpops(
        &store,
        &[
            "backtest",
            "--rules",
            rules,
            "--from",
            "1970-01-01",
            "--to",
            "9999-12-31",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("steps is more than the 1000000 allowed"),
        "{}",
        text(&o)
    );
    let o = mcpops(&store, &["analyze", "--from", "1970-01-01"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the analyzer takes at most 366 days"),
        "{}",
        text(&o)
    );
    let o = mcpops(
        &store,
        &[
            "report",
            "--rules",
            rules,
            "--to",
            "9999-12-31",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `backtest --out` and `export --out` replace a symlink at the file's name
/// instead of writing through it: the file it pointed at is untouched.
#[cfg(unix)]
#[test]
fn outputs_replace_symlinks_instead_of_writing_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = dir.path().join("good.om");
    fs::write(&data, GOOD).unwrap();
    assert!(
        mcpops(&store, &["ingest", data.to_str().unwrap()])
            .status
            .success()
    );
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let victim = outside.join("precious");
    fs::write(&victim, "precious").unwrap();

    let bt = dir.path().join("bt");
    fs::create_dir(&bt).unwrap();
    std::os::unix::fs::symlink(&victim, bt.join("alerts.parquet")).unwrap();
    let rules = dir.path().join("low.rules");
    fs::write(&rules, "alert Low {\n  when disk.free_bytes < 95\n}\n").unwrap();
    let o = mcpops(
        &store,
        &[
            "backtest",
            "--rules",
            rules.to_str().unwrap(),
            "--out",
            bt.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let alerts = bt.join("alerts.parquet");
    assert!(!fs::symlink_metadata(&alerts).unwrap().is_symlink());
    assert!(fs::read(&alerts).unwrap().starts_with(b"PAR1"));

    let link = dir.path().join("export.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let o = mcpops(&store, &["export", "--out", link.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(fs::read_to_string(&link).unwrap().starts_with("metric,"));
    // Nothing is left behind but the outputs.
    let names: Vec<_> = fs::read_dir(&bt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
