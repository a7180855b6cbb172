//! `mcpops report` as cron runs it: on a small generated fleet it writes
//! report.json, report.md and report.html; the HTML, read by a real HTML
//! parser, has every section, needs nothing from the network, and agrees
//! with `analyze` and `backtest` run on the same store; exit codes follow
//! `--fail-on`.

use crate::common;

use common::{generate_and_ingest, mcpops, text};
use scraper::{Html, Selector};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).expect("selector"))
        .collect()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn report_writes_three_views_that_agree_with_analyze_and_backtest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 5, 2, 9);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let rules = rules.to_str().unwrap();
    let out = dir.path().join("report");

    let o = mcpops(
        &store,
        &["report", "--rules", rules, "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(printed.contains("report.html"), "{printed}");
    // Where the report is, then the four-line summary: verdict, what
    // happened (with full dates), how fresh the data is, what to do first.
    assert_eq!(printed.lines().count(), 5, "{printed}");
    assert!(printed.contains(" UTC to 20"), "{printed}");
    assert!(printed.contains("newest sample 20"), "{printed}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schema"], "mcpops.report/1");
    let analysis = json(&mcpops(
        &store,
        &["analyze", "--format", "json", "--rules", rules],
    ));
    let backtest = json(&mcpops(
        &store,
        &["backtest", "--rules", rules, "--format", "json"],
    ));
    assert_eq!(report["analysis"]["bottlenecks"], analysis["bottlenecks"]);
    assert_eq!(report["analysis"]["incidents"], analysis["incidents"]);
    assert_eq!(report["analysis"]["forecasts"], analysis["forecasts"]);

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let doc = Html::parse_document(&html);
    for id in [
        "verdict",
        "health",
        "slo",
        "alerts",
        "bottlenecks",
        "incidents",
        "anomalies",
        "forecasts",
        "maintenance",
        "remediation",
        "recommendations",
    ] {
        assert_eq!(select(&doc, &format!("#{id}")).len(), 1, "section #{id}");
    }
    // Fleet health: one row per server, one cell per signal.
    assert_eq!(select(&doc, "#health tr[data-server]").len(), 5);
    assert_eq!(select(&doc, "#health td[data-signal]").len(), 5 * 7);
    // The same bottlenecks in the same order as `analyze`.
    let rows = select(&doc, "#bottlenecks tr.bottleneck");
    let want = analysis["bottlenecks"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for (row, b) in rows.iter().zip(want) {
        let cells: Vec<String> = row.text().map(str::to_string).collect();
        assert_eq!(cells[1], b["server"].as_str().unwrap());
        assert_eq!(cells[2], b["tool"].as_str().unwrap());
    }
    // The same incidents, and the same fired alerts as `backtest`.
    assert_eq!(
        select(&doc, "#incidents tr.incident").len(),
        analysis["incidents"].as_array().unwrap().len()
    );
    assert!(!analysis["incidents"].as_array().unwrap().is_empty());
    assert_eq!(
        select(&doc, "#alerts tr.episode").len(),
        backtest["alerts"].as_array().unwrap().len()
    );
    assert_eq!(
        select(&doc, "#remediation tr.action").len(),
        backtest["actions"].as_array().unwrap().len()
    );
    // Charts are inline SVG with labelled axes; nothing is fetched.
    let svgs = select(&doc, "svg");
    assert!(svgs.len() >= 3, "{} charts", svgs.len());
    assert!(html.contains("time (UTC)"));
    assert!(select(&doc, "script[src], link, img[src^=http], iframe").is_empty());
    let fetched: Vec<&str> = select(&doc, "[src], [href]")
        .iter()
        .filter_map(|e| e.value().attr("src").or(e.value().attr("href")))
        .collect();
    assert!(fetched.is_empty(), "external resources: {fetched:?}");

    // The Markdown starts with the verdict.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let level = report["verdict"]["level"].as_str().unwrap().to_uppercase();
    assert!(md.lines().next().unwrap().contains(&level), "{md}");
    for heading in [
        "## Incidents",
        "## Bottlenecks",
        "## Forecasts",
        "## Maintenance",
        "## Remediation",
        "## Recommendations",
    ] {
        assert!(md.contains(heading), "{heading}");
    }

    // --fail-on critical exits 4 exactly when the verdict is critical, and
    // a critical alert firing at the end makes it critical.
    let critical_at_end = report["alerts"]["firing_at_end"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| {
            report["alerts"]["episodes"][i.as_u64().unwrap() as usize]["severity"] == "critical"
        });
    let critical_verdict = report["verdict"]["level"] == "critical";
    assert!(critical_verdict || !critical_at_end);
    assert_eq!(
        report["verdict"]["headline"]
            .as_str()
            .unwrap()
            .starts_with("CRITICAL"),
        critical_verdict
    );
    let o = mcpops(
        &store,
        &[
            "report",
            "--rules",
            rules,
            "--out",
            out.to_str().unwrap(),
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(if critical_verdict { 4 } else { 0 }),
        "{}",
        text(&o)
    );
    let o = mcpops(
        &store,
        &[
            "report",
            "--rules",
            rules,
            "--out",
            out.to_str().unwrap(),
            "--fail-on",
            "bogus",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A report that cannot be written is a failure: exit 1.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, "x").unwrap();
    let o = mcpops(
        &store,
        &[
            "report",
            "--rules",
            rules,
            "--out",
            blocked.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn fail_on_critical_pages_when_a_critical_alert_is_firing_at_the_end() {
    // One server whose disk is nearly full at the end: DiskFillingUp-style
    // rule at critical severity fires and is still firing.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = dir.path().join("disk.om");
    let mut om = String::from("# TYPE disk.free_bytes gauge\n");
    for m in 0..120 {
        om.push_str(&format!(
            "disk.free_bytes{{server=\"a\"}} {} {}\n",
            1_000_000 - m * 8000,
            1_763_251_200 + m * 60
        ));
    }
    om.push_str("# EOF\n");
    std::fs::write(&data, om).unwrap();
    assert!(
        mcpops(&store, &["ingest", data.to_str().unwrap()])
            .status
            .success()
    );
    let rules = dir.path().join("disk.rules");
    std::fs::write(
        &rules,
        "alert DiskLow {\n  when disk.free_bytes < 500000\n  for 5m\n  severity critical\n}\n",
    )
    .unwrap();
    let out = dir.path().join("r");
    let args = [
        "report",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = mcpops(&store, &args);
    assert!(o.status.success(), "{}", text(&o));
    let mut paging = args.to_vec();
    paging.extend(["--fail-on", "critical"]);
    let o = mcpops(&store, &paging);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("DiskLow"), "{}", text(&o));
}

/// `report --out D` with `D/report.md` a symlink to a file elsewhere: the
/// symlink is replaced by the report, the file it pointed at is untouched
/// (each report file is written to a temporary file and renamed).
#[cfg(unix)]
#[test]
fn report_replaces_a_symlink_in_its_directory_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 1, 3);
    let victim = dir.path().join("precious.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = dir.path().join("www");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("report.md")).unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let o = mcpops(
        &store,
        &[
            "report",
            "--rules",
            rules.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let md = out.join("report.md");
    assert!(!std::fs::symlink_metadata(&md).unwrap().is_symlink());
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .starts_with("# mcpops report")
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "report.json", "report.md"]);
}

/// The cron job: `--since 24h` counts back from now. On a store whose data
/// ended days ago the report is still written, its verdict and page say
/// STALE with the newest sample's date, and it exits 7; counting back from
/// the last sample instead reports on the data (exit 0). `--archive` keeps
/// a dated copy beside the current report.
#[test]
fn since_counts_from_now_and_a_stale_store_exits_7() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 2, 1, 3);
    let out = dir.path().join("www");
    let out_s = out.to_str().unwrap();
    let o = mcpops(&store, &["report", "--since", "24h", "--out", out_s]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(text(&o).contains("stale"), "{}", text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"]["stale"], true);
    assert_eq!(report["freshness"]["fresh"], false);
    assert_eq!(report["freshness"]["newest"], "2026-11-17T00:00:00Z");
    // The period ends now, not at the data's end.
    let now = mcpops::time::now_ms();
    let to = report["to_ms"].as_i64().unwrap();
    assert!((now - to).abs() < 60_000, "to {to}, now {now}");
    assert_eq!(report["from_ms"].as_i64().unwrap(), to - 86_400_000);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# mcpops report: STALE"), "{md}");
    assert!(md.contains("2026-11-17 00:00 UTC"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let doc = Html::parse_document(&html);
    let header = select(&doc, "header#verdict");
    assert_eq!(header[0].value().attr("class"), Some("stale"));
    assert!(header[0].text().collect::<String>().starts_with("STALE"));

    let o = mcpops(
        &store,
        &[
            "report",
            "--since",
            "24h",
            "--since-last-sample",
            "--archive",
            "--out",
            out_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"]["stale"], false);
    assert_eq!(report["to"], "2026-11-17T00:00:00Z");
    let printed = String::from_utf8_lossy(&o.stdout);
    let archived = printed
        .lines()
        .find_map(|l| l.strip_prefix("archived in "))
        .expect("the archive's directory is printed");
    let name = Path::new(archived).file_name().unwrap().to_str().unwrap();
    // DIR/archive/YYYY-MM-DDTHHMMZ, from when the report was made.
    assert_eq!(
        Path::new(archived).parent().unwrap(),
        out.join("archive").as_path()
    );
    let generated = report["generated_at"].as_str().unwrap();
    assert_eq!(name, format!("{}{}Z", &generated[..13], &generated[14..16]));
    for f in ["report.json", "report.md", "report.html"] {
        assert_eq!(
            std::fs::read(Path::new(archived).join(f)).unwrap(),
            std::fs::read(out.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// What `watch` carried out (the store's action journal) shows in the
/// report beside the dry run, with its outcome and who approved it.
#[test]
fn report_shows_the_actions_watch_carried_out() {
    use mcpops::remediate::decide::{ActionEvent, EventKind};
    use mcpops::remediate::journal::{ActionResult, Intent, Journal, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate_and_ingest(&store, &dir.path().join("fleet"), 5, 2, 9);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let rules = rules.to_str().unwrap();
    let out = dir.path().join("report");
    let run = |store: &Path| {
        let o = mcpops(
            store,
            &["report", "--rules", rules, "--out", out.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", text(&o));
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        report
    };
    let before = run(&store);
    assert_eq!(before["alerts"]["carried_out"], serde_json::json!([]));
    let dry = &before["alerts"]["actions"][0];
    let time = match &dry["time"] {
        Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
            .expect("an RFC 3339 time")
            .timestamp_millis(),
        t => t.as_i64().unwrap_or_else(|| panic!("a time: {dry:#}")),
    };
    let labels: Vec<(String, String)> = dry["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let event = ActionEvent {
        time,
        policy: dry["policy"].as_str().unwrap().to_string(),
        kind: EventKind::Run,
        trigger: dry["trigger"].as_str().unwrap().to_string(),
        labels,
        action: "exec \"systemctl restart mcp@a\"".into(),
        episode: None,
        value: 1.0,
        mode: mcpops::dsl::ast::Mode::Auto,
        approved_by: Some("oncall".into()),
    };
    let journal = Journal::open(&store).unwrap();
    let id = event.id();
    journal
        .intent(&Intent {
            id: id.clone(),
            event,
            wall_ms: time,
        })
        .unwrap();
    journal
        .result(
            &id,
            &ActionResult {
                outcome: Outcome::Failed,
                exit_code: Some(3),
                status: None,
                duration_ms: 1500,
                stdout: String::new(),
                stderr: "permission denied".into(),
                detail: "exit code 3".into(),
            },
        )
        .unwrap();
    drop(journal);
    let after = run(&store);
    let live = &after["alerts"]["carried_out"];
    assert_eq!(live.as_array().map(Vec::len), Some(1), "{live:#}");
    assert_eq!(live[0]["id"], id);
    assert_eq!(live[0]["outcome"], "failed");
    assert_eq!(live[0]["exit_code"], 3);
    assert_eq!(live[0]["approved_by"], "oncall");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Actions carried out by watch"), "{md}");
    assert!(md.contains("| failed | oncall |"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Carried out by watch"));
}
