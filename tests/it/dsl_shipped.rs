//! The rule files that ship pass `check` with no diagnostics at all and are
//! formatted (`fmt --check`), and the default policy set has what it promises.

use mcpops::dsl::{self, Expr, Item};
use std::path::{Path, PathBuf};

fn shipped() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files = vec![root.join("mcp.rules"), root.join("prometheus.rules")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("rules/examples exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "3-4 examples ship: {examples:?}");
    files.extend(examples);
    files
}

#[test]
fn shipped_files_check_clean_alone_and_together() {
    let files = shipped();
    for f in &files {
        let d = dsl::check_file(f);
        assert!(
            d.is_empty(),
            "{}:\n{}",
            f.display(),
            d.iter().map(|d| d.to_string()).collect::<String>()
        );
    }
    let set = dsl::load_rules(&files).unwrap();
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    assert_eq!(set.files.len(), files.len());
}

#[test]
fn shipped_files_are_formatted() {
    let files = shipped();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let formatted = dsl::format_str(&src, &f.display().to_string()).unwrap();
        assert_eq!(formatted, src, "{} is not formatted", f.display());
        assert_eq!(
            dsl::parse_str(&formatted, "x").unwrap().sexpr(),
            dsl::parse_str(&src, "x").unwrap().sexpr()
        );
    }
}

/// Every sub-expression of the alerts' conditions, rendered.
fn when_of(f: &dsl::RuleFile, alert: &str) -> String {
    f.alerts()
        .find(|a| a.name.name == alert)
        .unwrap_or_else(|| panic!("alert {alert} ships"))
        .when
        .sexpr()
}

#[test]
fn the_default_policy_set_has_what_the_issue_asks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let f = dsl::parse_file(&path).unwrap();
    // Multiwindow, multi-burn-rate pairs for a 99.9% SLO.
    let budget = f.constant("error_budget").expect("error_budget constant");
    match &budget.value {
        Expr::Number(n) => assert!((n.value - 0.001).abs() < 1e-12),
        other => panic!("{other:?}"),
    }
    for (alert, long, short, factor) in [
        ("ErrorBudgetBurnFast", "[1h]", "[5m]", "14.4"),
        ("ErrorBudgetBurnMedium", "[6h]", "[30m]", "6"),
        ("ErrorBudgetBurnSlow", "[3d]", "[6h]", ""),
    ] {
        let w = when_of(&f, alert);
        assert!(w.contains(long) && w.contains(short), "{alert}: {w}");
        assert!(
            w.contains(&format!("(* {factor} (const error_budget))")) || factor.is_empty(),
            "{alert}: {w}"
        );
        assert!(
            w.starts_with("(and "),
            "{alert}: both windows must hold: {w}"
        );
    }
    assert!(when_of(&f, "ToolLatencyRegression").contains("(call p95"));
    assert!(when_of(&f, "ToolLatencyRegression").contains("(by server gen_ai.tool.name)"));
    assert!(when_of(&f, "TelemetryAbsent").contains("(call absent"));
    assert!(when_of(&f, "MemoryExhaustion").contains(
        "(< (call time_to (sel process.memory.usage [1h]) (sel process.memory.limit)) 4h)"
    ));
    assert!(
        when_of(&f, "DiskFillingUp").contains("(call time_to (sel disk.free_bytes [6h]) 0) 2d")
    );
    assert!(when_of(&f, "SessionsNearLimit").contains("mcp.server.sessions.limit"));
    assert!(when_of(&f, "ToolErrorBurst").contains("(by server gen_ai.tool.name)"));
    assert!(f.maintenances().any(|m| m.when.sexpr().contains("time_to")));
    // Every remediation has a cooldown, a limit, verification and escalation.
    let mut n = 0;
    for r in f.remediations() {
        n += 1;
        assert!(
            r.cooldown.is_some() && r.max.is_some() && r.verify.is_some() && r.escalate.is_some(),
            "{}",
            r.name.name
        );
    }
    assert!(n >= 6);
    // Every alert has a remediation.
    for a in f.alerts() {
        assert!(
            f.remediations()
                .any(|r| r.on.iter().any(|o| o.name == a.name.name)),
            "{} has no remediation",
            a.name.name
        );
    }
    assert!(f.tests().count() >= 3);
    assert!(f.items.iter().any(|i| matches!(i, Item::Evaluate(_))));
}
