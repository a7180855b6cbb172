//! The analyzer against ground truth: on the shipped fleet and on fleets
//! generated with other seeds, `analyze` finds every injected incident
//! (kind, server, start within 15 minutes), ranks the injected latency
//! regression as the fleet's first bottleneck, raises nothing on the quiet
//! servers, and forecasts the disk running out when the generator says it
//! will.

use mcpops::analyze::analysis::{Analysis, AnalyzeOptions, analyze};
use mcpops::analyze::incidents::{IncidentKind as Found, Severity};
use mcpops::dsl::load_rules;
use mcpops::generate::{GenerateOptions, Incident, IncidentKind, generate, load_incidents};
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::store::Store;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

fn check_disk_forecast(a: &Analysis, truth: &[Incident]) {
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
        (got_s - want_s).abs() <= 0.2 * want_s,
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
    check_disk_forecast(&a, &truth);
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
        check_disk_forecast(&a, &truth);
    }
}

#[test]
fn an_empty_store_analyses_to_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(tmp.path());
    let a = analyze(
        &store.snapshot().expect("snapshot"),
        &[],
        &AnalyzeOptions::default(),
    )
    .expect("analyze");
    assert_eq!(a.servers, 0);
    assert!(a.incidents.is_empty() && a.bottlenecks.is_empty());
}
