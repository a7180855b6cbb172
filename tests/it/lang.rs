//! The golden corpus of the rule language: every `tests/lang/*.rules` file
//! is an ordinary rule file (rules and `test` blocks) whose expected values
//! were worked out by hand from the language's semantics (PromQL's, where
//! the names are shared), or, for `promql_parity.rules`, taken from promtool
//! 2.42 by `scripts/promql-parity.py`. Each file runs on its own, through
//! the library path of `mcpops test FILE` (`dsl::load_rules`, then
//! `engine::testrun::run_tests`), so a file's tests see only its own rules.
//!
//! A file fails when `mcpops check` would report anything about it (an
//! error, or a warning: the corpus is written clean), when it has no test
//! block, or when any expectation does not hold. Every file runs; the
//! failures of all of them are reported together, in `mcpops test`'s own
//! rendering (file, line, the expectation, expected | actual).
//!
//! The corpus must also hold a file per family (`FAMILIES`), and use every
//! function of `dsl::functions` (both tables) inside some `expect value(...)`.
//!
//! To run one file by hand: `mcpops test tests/lang/windows.rules`.

use mcpops::dsl::load_rules;
use mcpops::engine::testrun::run_tests;
use std::path::{Path, PathBuf};

/// The files the corpus must hold: one per family of the language, and
/// the promtool parity cases.
const FAMILIES: &[&str] = &[
    "windows",
    "quantiles",
    "counters",
    "operators",
    "sets",
    "aggregations",
    "staleness",
    "absent",
    "forecasts",
    "histograms",
    "records",
    "alert_states",
    "remediation",
    "maintenance",
    "promql_parity",
];

/// The corpus files, sorted, as paths relative to the crate root (the
/// current directory of `cargo test`), so that messages name them as
/// `mcpops test tests/lang/x.rules` would.
pub(crate) fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/lang"))
        .expect("tests/lang")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .map(|p| {
            p.strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.clone())
        })
        .collect();
    files.sort();
    files
}

/// The path to give `load_rules`: relative when the current directory is
/// the crate root (as under `cargo test`), so that the files are named as
/// `mcpops test tests/lang/x.rules` names them.
pub(crate) fn located(rel: &Path) -> PathBuf {
    if rel.is_file() {
        rel.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// What one file gave: its problems (empty when it passed) and how many
/// blocks and expectations ran.
fn run_file(rel: &Path) -> (Vec<String>, usize, usize) {
    let path = located(rel);
    let name = rel.display().to_string();
    let set = match load_rules(std::slice::from_ref(&path)) {
        Ok(set) => set,
        Err(e) => return (vec![format!("{name}: cannot read: {e}")], 0, 0),
    };
    if !set.diagnostics.is_empty() {
        let text: Vec<String> = set.diagnostics.iter().map(|d| d.to_string()).collect();
        return (
            vec![format!(
                "{name}: `mcpops check` is not clean:\n{}",
                text.join("")
            )],
            0,
            0,
        );
    }
    let outcomes = run_tests(&set.files);
    if outcomes.is_empty() {
        return (vec![format!("{name}: no test block")], 0, 0);
    }
    let expects = outcomes.iter().map(|o| o.expects).sum();
    let mut problems = Vec::new();
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).cloned().collect();
    if !failed.is_empty() {
        // The failures as `mcpops test` renders them.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"))
            .arg("test")
            .arg(&path)
            .output()
            .expect("run mcpops test");
        let text = String::from_utf8_lossy(&out.stdout);
        // The rendering ends with a `test result:` line for the failed
        // blocks alone; the summary below counts the whole corpus instead.
        let body = text.split("\ntest result:").next().unwrap_or(&text);
        problems.push(format!(
            "{name}: {} of {} test blocks failed:\n{body}",
            failed.len(),
            outcomes.len()
        ));
    }
    for o in &outcomes {
        if o.expects == 0 {
            problems.push(format!(
                "{name}:{} test \"{}\" has no `expect`",
                o.line, o.name
            ));
        }
    }
    (problems, outcomes.len(), expects)
}

#[test]
fn every_corpus_file_passes_its_tests() {
    let files = corpus();
    for family in FAMILIES {
        let want = PathBuf::from(format!("tests/lang/{family}.rules"));
        assert!(files.contains(&want), "{} is missing", want.display());
    }
    let mut problems = Vec::new();
    let (mut blocks, mut expects) = (0, 0);
    for f in &files {
        let (p, b, e) = run_file(f);
        println!("{}: {b} test blocks, {e} expectations", f.display());
        problems.extend(p);
        blocks += b;
        expects += e;
    }
    println!(
        "{} files, {blocks} test blocks, {expects} expectations",
        files.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) in tests/lang ({} files, {blocks} blocks, {expects} expectations ran):\n\n{}",
        problems.len(),
        files.len(),
        problems.join("\n\n")
    );
}
