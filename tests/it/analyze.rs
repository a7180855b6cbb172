//! The analyzer against ground truth: on the shipped fleet and on fleets
//! generated with other seeds, `analyze` finds every injected incident
//! (kind, server, start within 15 minutes), ranks the injected latency
//! regression as the fleet's first bottleneck, raises nothing on the quiet
//! servers, and forecasts the disk running out when the generator says it
//! will. Hostile values (huge, the largest finite ones, NaN, infinities)
//! mixed into a store never make it panic.

use mcpops::analyze::analysis::{Analysis, AnalyzeError, AnalyzeOptions, analyze};
use mcpops::analyze::incidents::{IncidentKind as Found, Severity};
use mcpops::dsl::load_rules;
use mcpops::generate::{GenerateOptions, Incident, IncidentKind, Shape, generate, load_incidents};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::store::Store;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common;
use common::XorShift;

const MIN: i64 = 60_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn analyze_dir(data: &Path, store_dir: &Path) -> Analysis {
    let store = Store::open(store_dir);
    let mut writer = store.writer().expect("writer");
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    ingest_path(data, &opts, &mut writer).expect("ingest");
    writer.commit().expect("commit");
    let rules = load_rules(&[root().join("rules/mcp.rules")]).expect("rules");
    analyze(
        &store.snapshot().expect("snapshot"),
        &rules.files,
        &AnalyzeOptions::default(),
    )
    .expect("analyze")
}

fn kind_of(k: IncidentKind) -> Found {
    match k {
        IncidentKind::MemoryLeak => Found::MemoryLeak,
        IncidentKind::LatencyRegression => Found::LatencyRegression,
        IncidentKind::ErrorBurst => Found::ErrorBurst,
        IncidentKind::DiskFill => Found::DiskFill,
        IncidentKind::SaturationKnee => Found::SaturationKnee,
    }
}

/// Every check of the ground truth; the failures, one line each.
fn mismatches(a: &Analysis, truth: &[Incident]) -> Vec<String> {
    let mut bad = Vec::new();
    for t in truth {
        let kind = kind_of(t.kind);
        let hit = a.incidents.iter().find(|f| {
            f.kind == kind && f.server == t.server && (f.start_ms - t.start_ms).abs() <= 15 * MIN
        });
        if hit.is_none() {
            let near: Vec<String> = a
                .incidents
                .iter()
                .filter(|f| f.server == t.server)
                .map(|f| format!("{} at {}", f.kind.as_str(), f.start))
                .collect();
            bad.push(format!(
                "missed {:?} on {} at {} (found on that server: {near:?})",
                t.kind, t.server, t.start
            ));
        }
        if let (Some(tool), Some(f)) = (&t.tool, hit)
            && f.tool.as_deref() != Some(tool.as_str())
        {
            bad.push(format!(
                "{:?} on {}: tool {:?}, want {tool}",
                t.kind, t.server, f.tool
            ));
        }
    }
    // The regression is the fleet's bottleneck by design of the generator.
    if let Some(reg) = truth
        .iter()
        .find(|t| t.kind == IncidentKind::LatencyRegression)
    {
        let top = &a.bottlenecks[0];
        if top.server != reg.server || Some(&top.tool) != reg.tool.as_ref() {
            bad.push(format!(
                "first bottleneck is {} {}, want {} {:?}",
                top.server, top.tool, reg.server, reg.tool
            ));
        }
    }
    let touched: BTreeSet<&str> = truth.iter().map(|t| t.server.as_str()).collect();
    for f in &a.incidents {
        if !touched.contains(f.server.as_str()) && f.severity > Severity::Info {
            bad.push(format!("false alarm on quiet {}: {}", f.server, f.summary));
        }
    }
    bad
}

/// The disk's forecast exhaustion within `tolerance` (a share) of the truth.
fn check_disk_forecast(a: &Analysis, truth: &[Incident], tolerance: f64) {
    let Some(disk) = truth.iter().find(|t| t.kind == IncidentKind::DiskFill) else {
        return;
    };
    let f = a
        .forecasts
        .iter()
        .find(|f| f.server == disk.server && f.resource == "disk")
        .expect("a disk forecast for the filling server");
    let want_s = (disk.end_ms - a.to_ms) as f64 / 1000.0;
    let got_s = f.seconds.expect("the disk runs out within 30 days");
    assert!(
        (got_s - want_s).abs() <= tolerance * want_s,
        "disk on {} runs out in {got_s:.0} s, truth {want_s:.0} s",
        disk.server
    );
    let lower = f.lower_s.expect("a lower bound");
    assert!(
        lower <= got_s,
        "lower bound {lower} after the point forecast {got_s}"
    );
    assert!(
        a.maintenance
            .iter()
            .any(|m| m.server == disk.server && m.resource == "disk" && m.rule.is_some()),
        "the disk goes on the maintenance list with the DiskCleanup window: {:?}",
        a.maintenance
    );
}

#[test]
fn analyze_finds_the_shipped_fleets_incidents() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = analyze_dir(&root().join("data/fleet"), &tmp.path().join("store"));
    let truth = load_incidents(&root().join("data/fleet/incidents.json")).expect("truth");
    let bad = mismatches(&a, &truth);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    check_disk_forecast(&a, &truth, 0.2);
    // RED covers every call; the tool shares add up to the whole.
    let share: f64 = a.red_tools.iter().map(|r| r.share).sum();
    assert!((share - 1.0).abs() < 1e-9, "tool shares sum to {share}");
    assert_eq!(a.calls, 394_788);
    // The saturated server has a knee; the regression server's latency
    // moves with nothing but load.
    let knee_server = truth
        .iter()
        .find(|t| t.kind == IncidentKind::SaturationKnee)
        .map(|t| t.server.as_str());
    let knee = a
        .knees
        .iter()
        .find(|k| Some(k.server.as_str()) == knee_server);
    assert!(knee.is_some_and(|k| k.knee_rate.is_some()), "{knee:?}");
    // The first recommendation is about a server with an injected incident.
    let touched: BTreeSet<&str> = truth.iter().map(|t| t.server.as_str()).collect();
    let first = a.recommendations.first().expect("recommendations");
    assert!(touched.contains(first.server.as_str()), "{first:?}");
}

#[test]
fn analyze_finds_incidents_of_fleets_with_other_seeds() {
    for seed in [3, 21] {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("fleet");
        generate(&GenerateOptions {
            servers: 6,
            days: 3,
            seed,
            out: data.clone(),
            ..GenerateOptions::default()
        })
        .expect("generate");
        let a = analyze_dir(&data, &tmp.path().join("store"));
        let truth = load_incidents(&data).expect("truth");
        let bad = mismatches(&a, &truth);
        assert!(bad.is_empty(), "seed {seed}:\n{}", bad.join("\n"));
        check_disk_forecast(&a, &truth, 0.2);
    }
}

/// The Prometheus shape (histograms, counters that reset, `instance` and
/// `job`, node_exporter's disk): the same ground truth as the per-call
/// shape, found without a `server` label. Ramps (a leak, a disk filling)
/// may start within an hour of the truth.
fn prometheus_shape_mismatches(a: &Analysis, truth: &[Incident]) -> Vec<String> {
    let mut bad = Vec::new();
    if a.server_label != "instance" {
        bad.push(format!("server label {}, want instance", a.server_label));
    }
    for t in truth {
        let slack = match t.kind {
            IncidentKind::MemoryLeak | IncidentKind::DiskFill => 60 * MIN,
            _ => 15 * MIN,
        };
        let kind = kind_of(t.kind);
        let hit = a.incidents.iter().any(|f| {
            f.kind == kind
                && f.server == t.server
                && (f.start_ms - t.start_ms).abs() <= slack
                && (t.tool.is_none() || f.tool == t.tool)
        });
        if !hit {
            bad.push(format!(
                "missed {:?} on {} at {}",
                t.kind, t.server, t.start
            ));
        }
    }
    let touched: BTreeSet<&str> = truth.iter().map(|t| t.server.as_str()).collect();
    for f in &a.incidents {
        if f.severity > Severity::Info && !touched.contains(f.server.as_str()) {
            bad.push(format!("false alarm on quiet {}: {}", f.server, f.summary));
        }
    }
    bad
}

#[test]
fn analyze_finds_the_incidents_of_prometheus_shaped_fleets() {
    // The shipped one, then three seeds with quiet servers among them.
    let tmp = tempfile::tempdir().expect("tmp");
    let shipped = root().join("data/fleet-prom");
    let a = analyze_dir(&shipped, &tmp.path().join("shipped"));
    let truth = load_incidents(&shipped.join("incidents.json")).expect("truth");
    let bad = prometheus_shape_mismatches(&a, &truth);
    assert!(bad.is_empty(), "data/fleet-prom:\n{}", bad.join("\n"));
    check_disk_forecast(&a, &truth, 0.15);
    assert_eq!(a.servers, 5);
    for seed in [3, 21, 40] {
        let data = tmp.path().join(format!("fleet-{seed}"));
        generate(&GenerateOptions {
            servers: 7,
            days: 2,
            seed,
            out: data.clone(),
            shape: Shape::Prometheus,
            ..GenerateOptions::default()
        })
        .expect("generate");
        let a = analyze_dir(&data, &tmp.path().join(format!("store-{seed}")));
        let truth = load_incidents(&data).expect("truth");
        let bad = prometheus_shape_mismatches(&a, &truth);
        assert!(bad.is_empty(), "seed {seed}:\n{}", bad.join("\n"));
        check_disk_forecast(&a, &truth, 0.15);
        assert_eq!(a.servers, 7, "seed {seed}");
    }
}

#[test]
fn an_empty_store_is_nothing_to_analyse_not_a_healthy_fleet() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(tmp.path());
    let err = analyze(
        &store.snapshot().expect("snapshot"),
        &[],
        &AnalyzeOptions::default(),
    )
    .expect_err("nothing to analyse");
    let msg = err.to_string();
    assert!(matches!(err, AnalyzeError::NothingToAnalyse(_)), "{msg}");
    assert!(msg.contains("the store holds no metrics"), "{msg}");
    assert!(
        msg.contains("mcp_server_operation_duration_seconds_bucket"),
        "{msg}"
    );
}

/// Copies a store directory (the fuzz rounds each start from one ingest).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn ingest_into(store: &Store, path: &Path) {
    let mut writer = store.writer().expect("writer");
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    ingest_path(path, &opts, &mut writer).expect("ingest");
    writer.commit().expect("commit");
}

/// Seeded rounds over a small generated fleet, each with up to a dozen
/// hostile samples in random gauges and call durations at random times:
/// the analyzer and the report (charts included) never panic; values past
/// ±1e150 are left out and named in the notes, one line per series.
#[test]
fn hostile_values_mixed_into_a_store_never_break_the_analysis() {
    const HOSTILE: [&str; 7] = [
        "1e100",
        "1e300",
        "1.7976931348623157e308",
        "-1.7976931348623157e308",
        "NaN",
        "+Inf",
        "-Inf",
    ];
    const GAUGES: [&str; 7] = [
        "process.memory.usage",
        "process.memory.limit",
        "process.cpu.utilization",
        "mcp.server.sessions.open",
        "mcp.server.requests.in_flight",
        "disk.free_bytes",
        "disk.total_bytes",
    ];
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("fleet");
    generate(&GenerateOptions {
        servers: 2,
        days: 2,
        seed: 5,
        out: data.clone(),
        ..GenerateOptions::default()
    })
    .expect("generate");
    let base = tmp.path().join("base");
    ingest_into(&Store::open(&base), &data);
    let (first, last) = Store::open(&base)
        .snapshot()
        .expect("snapshot")
        .manifest()
        .extent()
        .expect("extent");
    let rules = load_rules(&[root().join("rules/mcp.rules")]).expect("rules");
    let mut rng = XorShift(0x005e_ed31);
    for round in 0..6 {
        let dir = tmp.path().join(format!("round{round}"));
        copy_dir(&base, &dir.join("store"));
        let store = Store::open(dir.join("store"));
        // Lines per metric: an OpenMetrics family appears once.
        let mut om: std::collections::BTreeMap<&str, String> = Default::default();
        let mut calls = String::new();
        let mut overflowing = BTreeSet::new();
        for _ in 0..1 + rng.below(12) {
            let server = format!("mcp-0{}", 1 + rng.below(2));
            let t = first + rng.below((last - first) as usize) as i64;
            let value = rng.pick(&HOSTILE);
            let huge = value
                .parse::<f64>()
                .is_ok_and(|v| v.is_finite() && v.abs() > 1e150);
            let as_duration = value
                .parse::<f64>()
                .is_ok_and(|v| v.is_finite() && v >= 0.0);
            if as_duration && rng.below(3) == 0 {
                // A call that took that many milliseconds.
                calls.push_str(&format!(
                    "{{\"ts\":{t},\"server\":\"{server}\",\"method\":\"tools/call\",\"tool\":\"search\",\"duration_ms\":{value},\"error\":null,\"session\":\"s-x\",\"transport\":\"stdio\"}}\n"
                ));
                if huge {
                    overflowing.insert((server, "duration of search calls".to_string()));
                }
            } else {
                let metric = rng.pick(&GAUGES);
                om.entry(metric).or_default().push_str(&format!(
                    "{metric}{{server=\"{server}\"}} {value} {}.{:03}\n",
                    t / 1000,
                    t % 1000
                ));
                if huge {
                    overflowing.insert((server, metric.to_string()));
                }
            }
        }
        if !om.is_empty() {
            let path = dir.join("hostile.om");
            let text: String = om
                .iter()
                .map(|(metric, lines)| format!("# TYPE {metric} gauge\n{lines}"))
                .collect();
            std::fs::write(&path, text + "# EOF\n").expect("write");
            ingest_into(&store, &path);
        }
        if !calls.is_empty() {
            let path = dir.join("hostile.jsonl");
            std::fs::write(&path, calls).expect("write");
            ingest_into(&store, &path);
        }
        let a = analyze(
            &store.snapshot().expect("snapshot"),
            &rules.files,
            &AnalyzeOptions::default(),
        )
        .expect("analyze");
        assert_eq!(a.servers, 2, "round {round}");
        assert_eq!(
            a.notes.len(),
            overflowing.len(),
            "round {round}: {:?}",
            a.notes
        );
        for (server, series) in &overflowing {
            assert!(
                a.notes.iter().any(|n| n.starts_with(&format!("{server}: "))
                    && n.contains(&format!(" of {series} "))),
                "round {round}: no note on {series} of {server} in {:?}",
                a.notes
            );
        }
        serde_json::to_string(&a).expect("json");
        let report = mcpops::report::build(
            &store,
            &rules.files,
            &["rules/mcp.rules".to_string()],
            &mcpops::report::ReportOptions::default(),
            &NoProgress,
        )
        .expect("report");
        mcpops::report::write(&report, &dir.join("out")).expect("write report");
    }
}

struct NoProgress;

impl mcpops::report::Progress for NoProgress {
    fn step(&self, _: &str) {}
}
