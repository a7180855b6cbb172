//! The engine against its contracts: the shipped rule tests pass, the SRE
//! workbook's burn-rate timing holds, and a backtest of the shipped policy
//! over the shipped fleet finds each injected incident and stays silent on
//! the quiet servers (ground truth: data/fleet/incidents.json).

use mcpops::dsl::{RuleFile, load_rules, parse_str};
use mcpops::engine::replay::{replay, rule_expressions};
use mcpops::engine::source::MemorySource;
use mcpops::engine::testrun::run_tests;
use mcpops::engine::{Grid, backtest};
use mcpops::generate::{IncidentKind, load_incidents};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::model::SeriesKey;
use mcpops::store::{ScanRequest, SeriesData, Store};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MIN: i64 = 60_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped_rule_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("rules/mcp.rules")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("rules/examples"))
        .expect("rules/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    examples.sort();
    files.extend(examples);
    files
}

#[test]
fn shipped_rule_tests_pass() {
    let mut expectations = 0;
    for path in shipped_rule_files() {
        let set = load_rules(std::slice::from_ref(&path)).expect("readable");
        assert!(
            !set.has_errors(),
            "{}: {:?}",
            path.display(),
            set.diagnostics
        );
        let outcomes = run_tests(&set.files);
        assert!(
            outcomes.iter().all(|o| o.passed()),
            "{}:\n{outcomes:#?}",
            path.display()
        );
        expectations += outcomes.iter().map(|o| o.expects).sum::<usize>();
    }
    // The shipped files hold 8 test blocks with 23 expectations (14 in
    // rules/mcp.rules): a run that checked nothing must not pass.
    assert!(expectations >= 23, "only {expectations} expectations ran");
}

/// A rule test that cannot pass must fail, and say what it saw.
#[test]
fn a_wrong_expectation_fails_with_expected_and_actual() {
    let src = r#"
alert High {
  when g > 1
  for 2m
}
test "wrong" {
  series g{server="a"} = "0x5 5x10"
  expect High at 8m == none
  expect High at 6m == firing { server="a" }
  expect value(g) at 7m == 4
}
"#;
    let file = parse_str(src, "wrong.rules").expect("parses");
    let outcomes = run_tests(&[file]);
    assert_eq!(outcomes.len(), 1);
    let f = &outcomes[0].failures;
    assert_eq!(f.len(), 3, "{f:?}");
    assert!(f[0].actual.contains("firing {server=\"a\""), "{:?}", f[0]);
    assert!(f[1].actual.contains("pending"), "{:?}", f[1]);
    assert_eq!(f[2].actual, "5 {server=\"a\"}");
}

fn calls(session: &str, error: Option<&str>, minutes: impl Iterator<Item = i64>) -> SeriesData {
    let mut labels = vec![
        ("server".to_string(), "a".to_string()),
        ("mcp.session.id".to_string(), session.to_string()),
    ];
    if let Some(e) = error {
        labels.push(("error.type".to_string(), e.to_string()));
    }
    let timestamps: Vec<i64> = minutes.map(|m| m * MIN).collect();
    SeriesData {
        key: SeriesKey::new("mcp.server.operation.duration", labels),
        values: vec![0.2; timestamps.len()],
        timestamps,
    }
}

/// SRE workbook, chapter 5: with a 99.9% SLO, 15% errors for 10 minutes make
/// the 1h/5m burn-rate page fire after about 5 minutes and clear about 5
/// minutes after the errors stop.
#[test]
fn fast_burn_page_fires_after_five_minutes_and_clears_five_after() {
    let rules = load_rules(&[root().join("rules/mcp.rules")]).expect("rules");
    // 20 sessions call once a minute; from minute 120 to 129, 3 of them fail.
    let mut series = Vec::new();
    for s in 0..20 {
        let id = format!("s{s}");
        if s < 3 {
            series.push(calls(
                &id,
                None,
                (0..240).filter(|m| !(120..130).contains(m)),
            ));
            series.push(calls(&id, Some("-32603"), 120..130));
        } else {
            series.push(calls(&id, None, 0..240));
        }
    }
    let source = MemorySource::new(series);
    let rp = replay(
        &rules.files,
        &source,
        Grid::range(0, 240 * MIN, MIN),
        mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
        &Default::default(),
    )
    .expect("replay");
    let pages: Vec<_> = rp
        .episodes
        .iter()
        .filter(|e| e.alert == "ErrorBudgetBurnFast" && e.fired_at.is_some())
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
    let fired = (pages[0].fired_at.expect("fired") - 120 * MIN) / MIN;
    let cleared = (pages[0].ended_at.expect("cleared") - 130 * MIN) / MIN;
    assert!(
        (4..=7).contains(&fired),
        "fired {fired}m after the errors began"
    );
    assert!(
        (3..=6).contains(&cleared),
        "cleared {cleared}m after the errors stopped"
    );
    // The fast page runs its notify once, and verification passes (it cleared within 1h).
    let runs: Vec<_> = rp
        .actions
        .iter()
        .filter(|a| a.policy == "PageOnBudgetBurn" && a.trigger == "ErrorBudgetBurnFast")
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].action, "notify \"oncall\"");
}

fn ingest_fleet(dir: &Path) -> Store {
    let store = Store::open(dir);
    let mut writer = store.writer().expect("writer");
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    ingest_path(&root().join("data/fleet"), &opts, &mut writer).expect("ingest");
    writer.commit().expect("commit");
    store
}

/// Which alerts are meant to catch each kind of incident.
fn catching_alerts(kind: IncidentKind) -> &'static [&'static str] {
    match kind {
        IncidentKind::MemoryLeak => &["MemoryExhaustion"],
        IncidentKind::LatencyRegression => &["ToolLatencyRegression"],
        IncidentKind::ErrorBurst => &["ToolErrorBurst", "ErrorBudgetBurnFast"],
        IncidentKind::DiskFill => &["DiskFillingUp"],
        IncidentKind::SaturationKnee => &["ServerSaturated"],
    }
}

#[test]
fn backtest_of_the_shipped_fleet_matches_its_ground_truth() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = ingest_fleet(&tmp.path().join("store"));
    let incidents = load_incidents(&root().join("data/fleet/incidents.json")).expect("incidents");
    let rules = load_rules(&[root().join("rules/mcp.rules")]).expect("rules");
    let files: Vec<RuleFile> = rules.files;
    let snap = store.snapshot().expect("snapshot");
    let (first, last) = snap.manifest().extent().expect("data");
    let bt = backtest::backtest(
        &store,
        &files,
        &backtest::BacktestOptions {
            from_ms: first,
            to_ms: last,
            step_ms: None,
            record: false,
            align_start: false,
            max_samples: mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
        },
    )
    .expect("backtest");
    let fired: Vec<_> = bt
        .replay
        .episodes
        .iter()
        .filter(|e| e.fired_at.is_some())
        .collect();
    let describe = || {
        fired
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} {}",
                    e.alert,
                    e.label("server"),
                    mcpops::time::format_ms(e.fired_at.unwrap_or(0))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for inc in &incidents {
        let wanted = catching_alerts(inc.kind);
        let hit = fired.iter().any(|e| {
            wanted.contains(&e.alert.as_str())
                && e.label("server") == Some(inc.server.as_str())
                && e.fired_at
                    .is_some_and(|t| t >= inc.start_ms && t <= inc.end_ms + 60 * MIN)
        });
        assert!(
            hit,
            "{:?} on {} ({} .. {}) not caught; fired:\n{}",
            inc.kind,
            inc.server,
            inc.start,
            inc.end,
            describe()
        );
    }
    let touched: BTreeSet<&str> = incidents.iter().map(|i| i.server.as_str()).collect();
    let noisy: Vec<_> = fired
        .iter()
        .filter(|e| e.label("server").is_some_and(|s| !touched.contains(s)))
        .collect();
    assert!(noisy.is_empty(), "alerts on quiet servers: {noisy:#?}");
    // Every metric the rules read is scanned once, however many rules
    // evaluated in parallel ask for it at the same moment.
    let metrics = mcpops::engine::plan::needed_labels(&rule_expressions(&files));
    let stored: usize = metrics
        .keys()
        .map(|m| {
            let req = ScanRequest {
                metric: Some(m.clone()),
                ..ScanRequest::all()
            };
            let series = snap.scan(&req).expect("scan");
            series.iter().map(|s| s.timestamps.len()).sum::<usize>()
        })
        .sum();
    assert!(stored > 400_000, "{stored} samples stored");
    // Within a few samples: a per-series scan keeps one of two calls of a
    // session in the same millisecond, the backtest's pooled scan both. A
    // second scan of even the smallest metric would add thousands.
    let read = bt.samples_read as usize;
    assert!(
        read >= stored && read <= stored + stored / 1000,
        "read {read} samples, {stored} stored"
    );
}

/// A backtest whose start defaults to the store's first sample steps on
/// round times: from the first whole step at or after it, and an episode's
/// start is a whole minute. Given a start, it steps from that one.
#[test]
fn a_default_start_is_aligned_to_the_step() {
    use mcpops::model::SampleSink;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path().join("store"));
    let first = 1_763_251_200_296; // 2025-11-16T00:00:00.296Z
    let mut w = store.writer().expect("writer");
    let id = w.intern(SeriesKey::new("g", vec![("server".into(), "a".into())]));
    for m in 0..30 {
        w.push(id, first + m * MIN, if m >= 10 { 0.5 } else { 2.0 })
            .expect("push");
    }
    w.commit().expect("commit");
    let rules = [parse_str("alert Low {\n  when g < 1\n}\n", "low.rules").expect("rules")];
    let run = |align_start| {
        let opts = backtest::BacktestOptions {
            from_ms: first,
            to_ms: first + 29 * MIN,
            step_ms: None,
            record: false,
            align_start,
            max_samples: mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
        };
        backtest::backtest(&store, &rules, &opts).expect("backtest")
    };
    let aligned = run(true);
    assert_eq!(aligned.grid.start, first - 296 + MIN);
    let fired = aligned.replay.episodes[0].fired_at.expect("fired");
    assert_eq!(fired.rem_euclid(MIN), 0, "{fired}");
    // The first low sample, at 00:10:00.296, is the newest at 00:11:00.
    assert_eq!(fired, first - 296 + 11 * MIN);
    assert_eq!(run(false).grid.start, first);
}

/// A file whose alert compares `x` with the last of `n` chained constants
/// (`c{i} = op` with `PREV` standing for `c{i-1}`), and a test that expects
/// it firing at 1m when `x` is `value`.
fn chained_constants_file(n: usize, op: &str, value: &str) -> RuleFile {
    let mut src = String::from("let c0 = 1\n");
    for i in 1..n {
        let prev = format!("c{}", i - 1);
        src.push_str(&format!("let c{i} = {}\n", op.replace("PREV", &prev)));
    }
    src.push_str(&format!(
        "alert A {{\n  when x > c{}\n}}\ntest \"t\" {{\n  series x{{server=\"a\"}} = \"{value}x3\"\n  expect A at 1m == firing {{ server=\"a\" }}\n}}\n",
        n - 1
    ));
    let errors: Vec<_> = mcpops::dsl::check_str(&src, "chain.rules")
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{:?}", errors.first());
    parse_str(&src, "chain.rules").expect("parses")
}

#[test]
fn chained_constants_evaluate_as_they_check() {
    // Deeper than the 32 levels constants were once inlined to: they
    // checked, then failed in the engine with "unknown constant".
    let outcomes = run_tests(&[chained_constants_file(40, "PREV + 1", "41")]);
    assert!(outcomes[0].passed(), "{:?}", outcomes[0]);
    // 9,000 of them run on this test's default 2 MB thread.
    let outcomes = run_tests(&[chained_constants_file(9_000, "PREV + 1", "9001")]);
    assert!(outcomes[0].passed(), "{:?}", outcomes[0]);
    // Each constant used twice by the next: 2^62 copies of the first when
    // constants were copied in (23 of them took 4 GB); one number now.
    let outcomes = run_tests(&[chained_constants_file(63, "PREV + PREV", "4.7e18")]);
    assert!(outcomes[0].passed(), "{:?}", outcomes[0]);
}
