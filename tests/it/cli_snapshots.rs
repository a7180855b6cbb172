//! Snapshots of every subcommand as a user sees it: the command line, the
//! exit code, stdout and stderr, once for a success and at least once for a
//! failure (a flag value the command does not take, a missing file, a bad
//! expression, a damaged store...). They live in tests/snapshots/cli/, one
//! `.snap` file per case.
//!
//! Each command runs as `mcpops --store [TMP]/store --quiet ARGS` from the
//! crate's root (so `rules/mcp.rules` is the shipped policy); the store
//! commands get a tiny fleet (`generate --servers 2 --days 1 --seed 3`,
//! ingested) made per test. Temporary paths show as `[TMP]`, ingest's
//! timing as `[SECS]` and `[RATE]`.
//!
//! After an intended change of output, re-bless and review:
//!
//! ```text
//! INSTA_UPDATE=always cargo test --test it cli_snapshots::
//! git diff tests/snapshots/cli
//! ```
//!
//! (or `cargo insta review`, with cargo-insta installed). A snapshot that is
//! missing or differs fails the test; under CI nothing is written.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory with a store in it, empty or holding the fleet.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn empty() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Two servers for a day, with their incidents, ingested.
    fn with_fleet() -> Sandbox {
        let sandbox = Sandbox::empty();
        common::generate_and_ingest(&sandbox.store(), &sandbox.path("fleet"), 2, 1, 3);
        sandbox
    }

    fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// `name` inside the sandbox.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` inside the sandbox and returns its path.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8 path").to_string()
    }

    /// Runs `mcpops --store STORE --quiet ARGS` and renders what a user sees.
    fn run(&self, args: &[&str]) -> String {
        self.run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
    }

    /// [`Sandbox::run`] from the directory `cwd`.
    fn run_in(&self, cwd: &Path, args: &[&str]) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_mcpops"))
            .current_dir(cwd)
            .env_remove("MCPOPS_STORE")
            .env_remove("MCPOPS_MAX_SAMPLES")
            .arg("--store")
            .arg(self.store())
            .arg("--quiet")
            .args(args)
            .output()
            .expect("run mcpops");
        let code = o
            .status
            .code()
            .map_or_else(|| "killed by a signal".to_string(), |c| c.to_string());
        let line: Vec<String> = std::iter::once("mcpops")
            .chain(args.iter().copied())
            .map(shell_quoted)
            .collect();
        format!(
            "$ {}\nexit: {code}\n--- stdout\n{}--- stderr\n{}",
            line.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    /// Asserts the snapshot `name` of `mcpops ARGS`, its paths filtered.
    #[track_caller]
    fn snap(&self, name: &str, args: &[&str]) {
        let shown = self.run(args);
        self.snap_text(name, &shown);
    }

    /// Asserts the snapshot `name` of `text`, its temporary paths, timings
    /// and the clock (a report says how long before now its data ends)
    /// filtered.
    #[track_caller]
    fn snap_text(&self, name: &str, shown: &str) {
        let mut settings = insta::Settings::clone_current();
        settings
            .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cli"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        let tmp = self.dir.path().to_str().expect("utf-8 path");
        settings.add_filter(&regex::escape(tmp), "[TMP]");
        settings.add_filter(
            r"in \d+\.\d+s \(\d+ samples/s\)",
            "in [SECS]s ([RATE] samples/s)",
        );
        settings.add_filter(r#""seconds": [0-9.e-]+"#, r#""seconds": [SECS]"#);
        settings.add_filter(
            r"[0-9][0-9dhms. ]* (before|after) now \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)",
            "[AGE] $1 now ([NOW])",
        );
        settings.bind(|| insta::assert_snapshot!(name, shown));
    }
}

/// `arg` as a shell would need it typed.
fn shell_quoted(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// A sandbox whose store path is a regular file: every store command fails
/// on it with an I/O error, which is no usage error (exit 1).
fn blocked_store() -> Sandbox {
    let s = Sandbox::empty();
    s.write("store", "not a store\n");
    s
}

#[test]
fn top_level() {
    let s = Sandbox::empty();
    s.snap("help", &["--help"]);
    s.snap("no_subcommand", &[]);
    s.snap("unknown_subcommand", &["frobnicate"]);
    s.snap("help_query", &["help", "query"]);
}

/// The subcommands `mcpops --help` lists, read from its grouped listing.
fn listed_subcommands(s: &Sandbox) -> Vec<String> {
    let help = s.run(&["--help"]);
    let mut names = Vec::new();
    let mut in_group = false;
    for line in help.lines() {
        if line.ends_with(" commands:") {
            in_group = true;
        } else if line.is_empty() {
            in_group = false;
        } else if in_group && let Some(name) = line.split_whitespace().next() {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn completions_and_man_page() {
    let s = Sandbox::empty();
    let names = listed_subcommands(&s);
    for expected in [
        "ingest",
        "query",
        "backtest",
        "report",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let bash = s.run(&["completions", "bash"]);
    assert!(bash.contains("exit: 0\n"), "{bash}");
    for name in &names {
        // bash's script names each subcommand as a case of the word typed.
        assert!(
            bash.contains(&format!("mcpops,{name})")),
            "bash completion lacks {name}"
        );
    }
    assert!(
        bash.contains("--max-samples"),
        "flags of subcommands are completed"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = s.run(&["completions", shell]);
        assert!(script.starts_with(&format!("$ mcpops completions {shell}\nexit: 0\n")));
        assert!(
            script.contains("backtest"),
            "{shell} completion lacks backtest"
        );
    }
    s.snap("completions_bogus_shell", &["completions", "tcsh"]);

    let page = s.run(&["man"]);
    assert!(
        page.contains("exit: 0\n") && page.contains(".TH mcpops 1"),
        "{page}"
    );
    assert!(
        page.contains("RFC 3339"),
        "the man page states the time formats"
    );
    let dir = s.path("man");
    let shown = s.run(&["man", "--out", dir.to_str().unwrap()]);
    assert!(shown.contains("exit: 0\n"), "{shown}");
    for name in names.iter().filter(|n| *n != "help") {
        let file = dir.join(format!("mcpops-{name}.1"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.contains(".TH"), "{} is no man page", file.display());
    }
    let ingest = std::fs::read_to_string(dir.join("mcpops-ingest.1")).unwrap();
    assert!(ingest.contains("skip\\-invalid"), "{ingest}");
}

#[test]
fn generate() {
    let s = Sandbox::empty();
    let out = s.path("fleet");
    let out = out.to_str().unwrap();
    s.snap(
        "generate",
        &[
            "generate",
            "--servers",
            "2",
            "--days",
            "1",
            "--seed",
            "3",
            "--out",
            out,
        ],
    );
    s.snap(
        "generate_no_servers",
        &["generate", "--servers", "0", "--out", out],
    );
}

#[test]
fn ingest() {
    let s = Sandbox::empty();
    let good = s.write(
        "scrape.om",
        "# TYPE disk.free_bytes gauge\n\
         disk.free_bytes{server=\"a\"} 100 1763251200\n\
         disk.free_bytes{server=\"a\"} 90 1763251260\n\
         # EOF\n",
    );
    let bad = s.write(
        "bad.prom",
        "disk.free_bytes{server=\"a\"} 100 1763251200000\nnot a sample\n",
    );
    s.snap("ingest", &["ingest", &good]);
    s.snap("ingest_bad_line", &["ingest", &bad]);
    s.snap("ingest_skip_invalid", &["ingest", "--skip-invalid", &bad]);
    s.snap(
        "ingest_missing_file",
        &["ingest", &s.path("nope.prom").to_string_lossy()],
    );
    s.snap("ingest_format_xml", &["ingest", "--format", "xml", &good]);
    let j = Sandbox::empty();
    let good = j.write("scrape.om", &std::fs::read_to_string(&good).unwrap());
    j.snap("ingest_json", &["ingest", "--output", "json", &good]);
}

/// `--store` on a directory that is not a store is refused before anything
/// is written into it; `info` on a path that does not exist is an error; a
/// failed ingest into a new store leaves no directory behind.
#[test]
fn stores_that_are_not_there_or_not_stores() {
    let s = Sandbox::empty();
    let data = s.write("store/notes.txt", "my notes\n");
    s.write("store/src/main.rs", "fn main() {}\n");
    s.snap("ingest_refused_directory", &["ingest", &data]);
    s.snap("info_refused_directory", &["info"]);
    let listed: Vec<String> = std::fs::read_dir(s.store())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed.len(),
        2,
        "the refused directory was written to: {listed:?}"
    );

    let m = Sandbox::empty();
    m.snap("info_missing_store", &["info"]);
    let bad = m.write(
        "bad.csv",
        "timestamp,metric,value\n2026-11-16T00:00:00Z,m,high\n",
    );
    m.snap("ingest_failed_into_new_store", &["ingest", &bad]);
    assert!(
        !m.store().exists(),
        "a failed ingest left the new store's directory"
    );
}

/// Export, ingest the export into a second store, export again: the same
/// bytes, in each text format and through Parquet.
#[test]
fn export_round_trip() {
    let s = Sandbox::with_fleet();
    let selection = [
        "--from",
        "2026-11-16T06:00:00Z",
        "--to",
        "2026-11-16T06:10:00Z",
    ];
    for (format, ext) in [("csv", "csv"), ("jsonl", "jsonl"), ("parquet", "parquet")] {
        let b = Sandbox::empty();
        let file = b.path(&format!("a.{ext}"));
        let file = file.to_str().unwrap();
        let o = common::mcpops(
            &s.store(),
            &[
                &["export", "--format", format, "--out", file][..],
                &selection,
            ]
            .concat(),
        );
        assert!(o.status.success(), "{}", common::text(&o));
        b.snap(
            &format!("export_round_trip_ingest_{ext}"),
            &["ingest", file],
        );
        let again = common::mcpops(&b.store(), &["export", "--format", "csv"]);
        let first = common::mcpops(
            &s.store(),
            &[&["export", "--format", "csv"][..], &selection].concat(),
        );
        assert!(first.stdout.len() > 1000, "{}", common::text(&first));
        assert!(
            again.stdout == first.stdout,
            "{ext}: the export of the re-ingested export differs"
        );
    }
}

/// A scrape in Prometheus's own shape: a histogram, a counter with a
/// restart and one without, and a process start time.
const PROMETHEUS_SHAPE: &str = "\
# HELP rpc_duration_seconds Time to serve a call.
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{instance=\"a:9090\",job=\"mcp\",le=\"0.1\"} 3 1763251200000
rpc_duration_seconds_bucket{instance=\"a:9090\",job=\"mcp\",le=\"1\"} 5 1763251200000
rpc_duration_seconds_bucket{instance=\"a:9090\",job=\"mcp\",le=\"+Inf\"} 6 1763251200000
rpc_duration_seconds_sum{instance=\"a:9090\",job=\"mcp\"} 2.5 1763251200000
rpc_duration_seconds_count{instance=\"a:9090\",job=\"mcp\"} 6 1763251200000
rpc_duration_seconds_bucket{instance=\"b:9090\",job=\"mcp\",le=\"0.1\"} 4 1763251200000
rpc_duration_seconds_bucket{instance=\"b:9090\",job=\"mcp\",le=\"1\"} 2 1763251200000
rpc_duration_seconds_sum{instance=\"b:9090\",job=\"mcp\"} 1 1763251200000
rpc_duration_seconds_count{instance=\"b:9090\",job=\"mcp\"} 4 1763251200000
# TYPE process_start_time_seconds gauge
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
process_start_time_seconds{instance=\"a:9090\",job=\"mcp\"} 1763250000 1763251200000
process_start_time_seconds{instance=\"a:9090\",job=\"mcp\"} 1763251250 1763251260000
process_start_time_seconds{instance=\"b:9090\",job=\"mcp\"} 1763250000 1763251200000
process_start_time_seconds{instance=\"b:9090\",job=\"mcp\"} 1763250000 1763251260000
process_cpu_seconds_total{instance=\"a:9090\",job=\"mcp\"} 40 1763251200000
process_cpu_seconds_total{instance=\"a:9090\",job=\"mcp\"} 1 1763251260000
process_cpu_seconds_total{instance=\"b:9090\",job=\"mcp\"} 40 1763251200000
process_cpu_seconds_total{instance=\"b:9090\",job=\"mcp\"} 2 1763251260000
process_resident_memory_bytes{instance=\"a:9090\",job=\"mcp\"} 1.5e8 1763251200000
";

#[test]
fn metrics_and_labels() {
    let s = Sandbox::with_fleet();
    s.snap("metrics", &["metrics"]);
    s.snap(
        "metrics_match_json",
        &["metrics", "^process.cpu", "--format", "json"],
    );
    s.snap("metrics_bad_match", &["metrics", "("]);
    s.snap("labels", &["labels"]);
    s.snap(
        "labels_of_metric",
        &["labels", "process.memory.usage", "--top", "2"],
    );
    s.snap(
        "labels_json",
        &[
            "labels",
            "mcp.server.operation.duration",
            "--top",
            "1",
            "--format",
            "json",
        ],
    );
    s.snap("labels_unknown_metric", &["labels", "no.such.metric"]);
    let empty = Sandbox::empty();
    empty.snap("metrics_empty_store", &["metrics"]);
    // Prometheus's shape: a histogram as one row, types inferred where no
    // `# TYPE` says, and the bad input of it named on ingest.
    let p = Sandbox::empty();
    let scrape = p.write("scrape.prom", PROMETHEUS_SHAPE);
    p.snap("ingest_warnings", &["ingest", &scrape]);
    p.snap("metrics_prometheus_shape", &["metrics"]);
}

#[test]
fn info() {
    let s = Sandbox::with_fleet();
    s.snap("info", &["info"]);
    s.snap("info_json", &["info", "--format", "json"]);
    s.snap("info_format_xml", &["info", "--format", "xml"]);
}

#[test]
fn compact_and_retain() {
    let s = Sandbox::with_fleet();
    // The gauges once more: each day then has two segments, with duplicates.
    let metrics = s.path("fleet/metrics");
    let o = common::mcpops(&s.store(), &["ingest", metrics.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    s.snap("info_duplicates", &["info"]);
    s.snap("compact", &["compact"]);
    let o = common::mcpops(&s.store(), &["ingest", metrics.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    s.snap("compact_json", &["compact", "--format", "json"]);
    s.snap("retain", &["retain", "--before", "2026-11-17"]);
    s.snap(
        "retain_json",
        &["retain", "--before", "2026-11-18", "--format", "json"],
    );
    s.snap("retain_bad_time", &["retain", "--before", "yesterdayish"]);
    blocked_store().snap("compact_store_is_a_file", &["compact"]);
}

/// A segment with one byte flipped: verify finds it (exit 5), repair moves
/// it aside, and verify passes again.
#[test]
fn verify_and_repair() {
    let s = Sandbox::with_fleet();
    s.snap("verify", &["verify"]);
    s.snap("verify_format_xml", &["verify", "--format", "xml"]);
    let mut segments: Vec<PathBuf> = walk(&s.store().join("segments"));
    segments.sort();
    let victim = segments.first().expect("a segment");
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(victim, bytes).unwrap();
    s.snap("verify_damaged", &["verify"]);
    s.snap("repair", &["repair"]);
    s.snap("repair_nothing_to_do", &["repair"]);
    blocked_store().snap("repair_store_is_a_file", &["repair"]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn export() {
    let s = Sandbox::with_fleet();
    let selection = [
        "--metric",
        "disk.free_bytes",
        "--match",
        "server=mcp-01",
        "--from",
        "2026-11-16T00:00:00Z",
        "--to",
        "2026-11-16T00:05:00Z",
    ];
    s.snap("export_csv", &[&["export"][..], &selection].concat());
    s.snap(
        "export_jsonl",
        &[&["export", "--format", "jsonl"][..], &selection].concat(),
    );
    let out = s.path("out.parquet");
    s.snap(
        "export_parquet_to_file",
        &[
            &[
                "export",
                "--format",
                "parquet",
                "--out",
                out.to_str().unwrap(),
            ][..],
            &selection,
        ]
        .concat(),
    );
    s.snap("export_bad_matcher", &["export", "--match", "server=~("]);
    s.snap("export_format_xml", &["export", "--format", "xml"]);
}

#[test]
fn check_fmt_and_test() {
    let s = Sandbox::empty();
    s.snap("check", &["check", "rules/mcp.rules"]);
    let broken = s.write("broken.rules", "alert A {\n  when x >\n}\n");
    s.snap("check_syntax_error", &["check", &broken]);
    s.snap(
        "check_json_syntax_error",
        &["check", "--format", "json", &broken],
    );
    s.snap(
        "check_format_xml",
        &["check", "--format", "xml", "rules/mcp.rules"],
    );
    s.snap(
        "check_missing_file",
        &["check", &s.path("nope.rules").to_string_lossy()],
    );

    s.snap("fmt_check", &["fmt", "--check", "rules/mcp.rules"]);
    let messy = s.write("messy.rules", "let   a=1\n");
    s.snap("fmt_check_unformatted", &["fmt", "--check", &messy]);
    s.snap("fmt", &["fmt", &messy]);
    s.snap("fmt_syntax_error", &["fmt", &broken]);

    s.snap("test", &["test", "rules/mcp.rules"]);
    let failing = s.write(
        "failing.rules",
        "alert HighCpu {\n  when process.cpu.utilization > 0.9\n  for 5m\n}\n\n\
         test \"busy for a minute is not enough\" {\n  interval 1m\n  \
         series process.cpu.utilization{server=\"a\"} = \"0.95x30\"\n  \
         expect HighCpu at 3m == firing { server=\"a\" }\n}\n",
    );
    s.snap("test_failing", &["test", &failing]);
    s.snap(
        "test_format_yaml",
        &["test", "--format", "yaml", "rules/mcp.rules"],
    );
}

#[test]
fn query() {
    let s = Sandbox::with_fleet();
    let expr = "max(process.memory.usage[1h]) by (server)";
    s.snap("query", &["query", expr]);
    s.snap(
        "query_range_csv",
        &[
            "query",
            expr,
            "--from",
            "2026-11-16T00:00:00Z",
            "--to",
            "2026-11-16T03:00:00Z",
            "--step",
            "1h",
            "--format",
            "csv",
        ],
    );
    s.snap(
        "query_json",
        &[
            "query",
            expr,
            "--at",
            "2026-11-16T12:00:00Z",
            "--format",
            "json",
        ],
    );
    s.snap("query_syntax_error", &["query", "process.memory.usage >"]);
    // Parsed as an expression: an unclosed parenthesis or a stray token is
    // the expression's error, not "expected a block".
    s.snap(
        "query_unclosed_paren",
        &["query", "max by (server) (rate(process.memory.usage[5m])"],
    );
    s.snap("query_stray_token", &["query", "process.memory.usage )"]);
    // sort as the outermost function orders the table by value, not by
    // labels (mcp-02 has the smaller maximum).
    s.snap(
        "query_sort",
        &["query", "sort(max(process.memory.usage[1h]) by (server))"],
    );
    s.snap(
        "query_promql_name",
        &["query", "quantile_over_time(0.9, process.memory.usage[5m])"],
    );
    s.snap(
        "query_json_error",
        &["query", "process.memory.usage >", "--format", "json"],
    );
    s.snap(
        "query_instant_csv",
        &[
            "query",
            "max(mcp.server.operation.duration[1h]) by (server, gen_ai.tool.name)",
            "--at",
            "2026-11-16T12:00:00Z",
            "--format",
            "csv",
        ],
    );
    s.snap(
        "query_explain",
        &[
            "query",
            "--explain",
            "count(mcp.server.operation.duration{error.type!=\"\"}[1h]) by (server) / count(mcp.server.operation.duration[1h]) by (server) > 0.01 and count(mcp.server.operation.duration[1h]) by (server) >= 100",
        ],
    );
    s.snap("query_format_xml", &["query", expr, "--format", "xml"]);
    s.snap(
        "query_too_many_samples",
        &[
            "query",
            "max(process.memory.usage[1d]) by (server)",
            "--max-samples",
            "10",
        ],
    );
}

#[test]
fn backtest() {
    let s = Sandbox::with_fleet();
    s.snap("backtest", &["backtest", "--rules", "rules/mcp.rules"]);
    s.snap(
        "backtest_csv",
        &[
            "backtest",
            "--rules",
            "rules/mcp.rules",
            "--from",
            "2026-11-16T14:00:00Z",
            "--to",
            "2026-11-16T16:00:00Z",
            "--format",
            "csv",
        ],
    );
    // JSON: labels as an object, times in RFC 3339 with `Z`.
    s.snap(
        "backtest_json",
        &[
            "backtest",
            "--rules",
            "rules/mcp.rules",
            "--from",
            "2026-11-16T14:00:00Z",
            "--to",
            "2026-11-16T16:00:00Z",
            "--format",
            "json",
        ],
    );
    s.snap(
        "backtest_reversed_range",
        &[
            "backtest",
            "--rules",
            "rules/mcp.rules",
            "--from",
            "2026-11-17",
            "--to",
            "2026-11-16",
        ],
    );
    s.snap(
        "backtest_format_xml",
        &["backtest", "--rules", "rules/mcp.rules", "--format", "xml"],
    );
    // alerts.parquet carries each alert's labels as a MAP, not text.
    let out = s.path("bt");
    let o = common::mcpops(
        &s.store(),
        &[
            "backtest",
            "--rules",
            "rules/mcp.rules",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    for file in ["alerts.parquet", "actions.parquet"] {
        let f = std::fs::File::open(out.join(file)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let mut servers = 0;
        for batch in reader {
            let batch = batch.unwrap();
            let labels = batch.column_by_name("labels").unwrap();
            use arrow::array::{Array, AsArray};
            let map = labels
                .as_map_opt()
                .unwrap_or_else(|| panic!("{file}: labels is {}, not a MAP", labels.data_type()));
            let keys = map.keys().as_string::<i32>();
            let values = map.values().as_string::<i32>();
            for i in 0..keys.len() {
                if keys.value(i) == "server" {
                    assert!(values.value(i).starts_with("mcp-0"), "{file}");
                    servers += 1;
                }
            }
        }
        if file == "alerts.parquet" {
            assert!(servers > 0, "{file}: no alert with a server label");
        }
    }
}

#[test]
fn analyze() {
    let s = Sandbox::with_fleet();
    s.snap("analyze", &["analyze", "--rules", "rules/mcp.rules"]);
    s.snap("analyze_format_xml", &["analyze", "--format", "xml"]);
    let empty = Sandbox::empty();
    empty.snap("analyze_empty_store", &["analyze"]);
}

#[test]
fn report() {
    let s = Sandbox::with_fleet();
    let out = s.path("report");
    let out = out.to_str().unwrap();
    s.snap(
        "report",
        &[
            "report",
            "--rules",
            "rules/mcp.rules",
            "--out",
            out,
            "--fail-on",
            "critical",
        ],
    );
    s.snap(
        "report_fail_on_bogus",
        &["report", "--out", out, "--fail-on", "bogus"],
    );
    // A reversed period, a period before the data, and one after it: exit
    // 2, 6, and 7 with the report written and marked stale.
    s.snap(
        "report_reversed",
        &[
            "report",
            "--out",
            out,
            "--from",
            "2026-11-18",
            "--to",
            "2026-11-17",
        ],
    );
    s.snap(
        "report_before_the_data",
        &[
            "report",
            "--out",
            out,
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
        ],
    );
    s.snap(
        "report_stale",
        &[
            "report",
            "--out",
            out,
            "--from",
            "2026-11-16T12:00:00Z",
            "--to",
            "2026-11-18T00:00:00Z",
        ],
    );
    let md = std::fs::read_to_string(s.path("report").join("report.md")).expect("report.md");
    assert!(md.starts_with("# mcpops report: STALE"), "{md}");
    // The sample fleet's verdict with --fail-on warning: the headline and
    // the exit code say the same.
    s.snap(
        "report_fail_on_warning",
        &["report", "--out", out, "--fail-on", "warning"],
    );
    let empty = Sandbox::empty();
    let out = empty.path("report");
    empty.snap(
        "report_empty_store",
        &[
            "report",
            "--rules",
            "rules/mcp.rules",
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

/// A day of half-hourly rows with one spike, labelled as a NAB corpus.
fn nab_corpus(s: &Sandbox) -> (String, String, String) {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..48 {
        let (h, m) = (i / 2, (i % 2) * 30);
        let v = 10.0 + (i % 5) as f64 * 0.5 + if i == 40 { 40.0 } else { 0.0 };
        csv.push_str(&format!("2014-04-01 {h:02}:{m:02}:00,{v}\n"));
    }
    let file = s.write("nab/data/demo/spike.csv", &csv);
    let labels = s.write(
        "nab/labels/windows.json",
        "{\"demo/spike.csv\": [[\"2014-04-01 19:00:00.000000\", \"2014-04-01 21:00:00.000000\"]]}\n",
    );
    let data = s.path("nab/data").to_str().unwrap().to_string();
    (file, labels, data)
}

#[test]
fn detect_and_nab() {
    let s = Sandbox::empty();
    let (file, labels, data) = nab_corpus(&s);
    s.snap("detect", &["detect", &file]);
    s.snap(
        "detect_missing_file",
        &["detect", &s.path("nope.csv").to_string_lossy()],
    );
    let not_csv = s.write("not.csv", "when,what\nyesterday,lots\n");
    s.snap("detect_bad_csv", &["detect", &not_csv]);
    s.snap(
        "nab_score",
        &["nab", "score", "--labels", &labels, "--data", &data],
    );
    s.snap(
        "nab_score_json",
        &[
            "nab", "score", "--labels", &labels, "--data", &data, "--format", "json",
        ],
    );
    s.snap(
        "nab_score_format_xml",
        &[
            "nab", "score", "--labels", &labels, "--data", &data, "--format", "xml",
        ],
    );
    s.snap(
        "nab_score_missing_labels",
        &[
            "nab",
            "score",
            "--labels",
            &s.path("nope.json").to_string_lossy(),
            "--data",
            &data,
        ],
    );
    // One category cannot be cross-validated: nothing is left to tune on.
    s.snap(
        "nab_cv_one_category",
        &["nab", "cv", "--labels", &labels, "--data", &data],
    );
    // A second category (a file with no windows): each fold tunes on the
    // other one.
    let mut quiet = String::from("timestamp,value\n");
    for i in 0..48 {
        let (h, m) = (i / 2, (i % 2) * 30);
        quiet.push_str(&format!("2014-04-01 {h:02}:{m:02}:00,{}\n", 10 + i % 3));
    }
    s.write("nab/data/quiet/flat.csv", &quiet);
    let labels = s.write(
        "nab/labels/windows.json",
        "{\"demo/spike.csv\": [[\"2014-04-01 19:00:00.000000\", \"2014-04-01 21:00:00.000000\"]],\n \"quiet/flat.csv\": []}\n",
    );
    s.snap(
        "nab_cv",
        &["nab", "cv", "--labels", &labels, "--data", &data],
    );
    s.snap("nab_without_subcommand", &["nab"]);
}

/// A sandbox whose store holds one server of a shipped sample fleet
/// (`data/fleet` or `data/fleet-prom`): the names and types of the whole
/// fleet, ingested in a moment.
fn with_shipped(files: &[&str]) -> Sandbox {
    let s = Sandbox::empty();
    let mut args = vec!["ingest"];
    args.extend_from_slice(files);
    let shown = s.run(&args);
    assert!(shown.contains("exit: 0"), "{shown}");
    s
}

/// `check --store`, `query`, `export` and `backtest` on rules and names that
/// the store does not hold, and functions that do not suit a metric's type.
#[test]
fn rule_mistakes_against_the_store() {
    let s = with_shipped(&[
        "data/fleet/calls/mcp-01.jsonl.gz",
        "data/fleet/metrics/mcp-01.om.gz",
    ]);
    let misspelt = s.write(
        "misspelt.rules",
        "alert ErrorBurst {\n  when count(mcp.server.operation.durations{error.type!=\"\"}[5m]) by (server) > 5\n  for 5m\n}\n",
    );
    s.snap("check_store_misspelt_metric", &["check", &misspelt]);
    s.snap(
        "backtest_unmatched_selector",
        &["backtest", "--rules", &misspelt],
    );
    let constant = s.write(
        "constant.rules",
        "let error_budget = 0.1%\n\nalert Burn {\n  when count(mcp.server.operation.duration{error.type!=\"\"}[1h]) by (server)\n         / count(mcp.server.operation.duration[1h]) by (server) > error_budgt\n  for 5m\n}\n",
    );
    s.snap("check_misspelt_constant", &["check", &constant]);
    let label = s.write(
        "label.rules",
        "alert SlowTool {\n  when p95(mcp.server.operation.duration[30m]) by (server, tool) > 2\n  for 15m\n}\n",
    );
    s.snap("check_store_unknown_label", &["check", &label]);
    s.snap(
        "query_unknown_metric",
        &["query", "max(process.memory.usag[1h]) by (server)"],
    );
    s.snap(
        "export_unknown_metric",
        &["export", "--metric", "process.memory.usag"],
    );

    let p = with_shipped(&["data/fleet-prom/metrics/mcp-01.om.gz"]);
    let types = p.write(
        "types.rules",
        "alert MemoryGrowing {\n  when rate(process_resident_memory_bytes[1h]) > 1e4\n  for 30m\n}\n\n\
         alert SlowCalls {\n  when p95(mcp_server_operation_duration_seconds_bucket[5m]) by (instance) > 1\n  for 10m\n}\n",
    );
    p.snap("check_store_types", &["check", &types]);
}

/// A critical alert still firing at the end: the headline says CRITICAL
/// and `--fail-on critical` exits 4 with the same reason; the same store
/// over its first 40 minutes, while the disk was steady, says OK and
/// `--fail-on warning` exits 0.
#[test]
fn report_headline_and_exit_code_agree() {
    let s = Sandbox::empty();
    let mut om = String::from("# TYPE disk.free_bytes gauge\n");
    for m in 0..120 {
        om.push_str(&format!(
            "disk.free_bytes{{server=\"a\"}} {} {}\n",
            // Flat for an hour, then filling fast.
            1_000_000 - (m - 60).max(0) * 16_000,
            1_763_251_200 + m * 60
        ));
    }
    om.push_str("# EOF\n");
    let data = s.write("disk.om", &om);
    let ingested = s.run(&["ingest", &data]);
    assert!(ingested.contains("exit: 0"), "{ingested}");
    let rules = s.write(
        "disk.rules",
        "alert DiskLow {\n  when disk.free_bytes < 500000\n  for 5m\n  severity critical\n}\n",
    );
    let out = s.path("report");
    let out = out.to_str().unwrap();
    s.snap(
        "report_headline_critical_exit_4",
        &[
            "report",
            "--rules",
            &rules,
            "--out",
            out,
            "--fail-on",
            "critical",
        ],
    );
    s.snap(
        "report_headline_ok_exit_0",
        &[
            "report",
            "--rules",
            &rules,
            "--out",
            out,
            "--fail-on",
            "warning",
            "--from",
            "2025-11-16T00:00:00Z",
            "--to",
            "2025-11-16T00:40:00Z",
        ],
    );
    // The same verdict and exit code as one JSON object for scripts.
    s.snap(
        "report_json_exit_4",
        &[
            "report",
            "--rules",
            &rules,
            "--out",
            out,
            "--fail-on",
            "critical",
            "--format",
            "json",
        ],
    );
    let shown = s.run(&[
        "report", "--rules", &rules, "--out", out, "--format", "json",
    ]);
    let json = shown
        .split("--- stdout\n")
        .nth(1)
        .and_then(|t| t.split("--- stderr").next())
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["verdict"]["level"], "critical", "{shown}");
    assert_eq!(v["exit"]["code"], 0, "no --fail-on: {shown}");
    assert_eq!(v["written"].as_array().unwrap().len(), 3);
}

/// No rule file given and none in the working directory: the summary says
/// so instead of "0 alerts fired", and so do report.md and report.html.
#[test]
fn report_without_rules_says_so() {
    let s = Sandbox::with_fleet();
    let out = s.path("report");
    let shown = s.run_in(s.dir.path(), &["report", "--out", out.to_str().unwrap()]);
    s.snap_text("report_no_rules_loaded", &shown);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("No rules loaded: no alert was checked"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(html.contains("No rules loaded: no alert was checked"));
}

/// A tool named by a client with markup in its name: report.md shows it
/// as text (entities and backslash escapes), its table rows keep their
/// cells, and report.html shows it as text too.
#[test]
fn report_markdown_escapes_names_from_the_data() {
    let s = Sandbox::empty();
    let hostile = "<img src=x onerror=alert(1)> | *bold* `tick`";
    let mut jsonl = String::new();
    for i in 0..2400u64 {
        let tool = if i % 3 == 0 { hostile } else { "plain_tool" };
        jsonl.push_str(&format!(
            "{{\"ts\":{},\"server\":\"s1\",\"method\":\"tools/call\",\"tool\":{},\"duration_ms\":{},\"error\":null}}\n",
            1_795_305_600_000u64 + i * 3_000,
            serde_json::to_string(tool).unwrap(),
            100 + (i * 37) % 200
        ));
    }
    let data = s.write("calls.jsonl", &jsonl);
    let ingested = s.run(&["ingest", &data]);
    assert!(ingested.contains("exit: 0"), "{ingested}");
    let out = s.path("report");
    let shown = s.run(&["report", "--out", out.to_str().unwrap()]);
    assert!(shown.contains("exit: 0"), "{shown}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    let rows: Vec<&str> = md.lines().filter(|l| l.contains("img")).collect();
    assert!(!rows.is_empty(), "{md}");
    assert!(!md.contains("<img"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(!html.contains("<img") && html.contains("&lt;img src=x"));
    s.snap_text("report_markdown_escaped", &rows.join("\n"));
}
