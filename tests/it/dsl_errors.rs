//! What the checker reports that the golden files of tests/diagnostics (run
//! by tests/it/diagnostics.rs) cannot hold, each of those being one file
//! checked on its own and compared with what `mcpops check` prints:
//! - that no message names a grammar rule, over dozens of truncated inputs
//!   (a property of many texts, not one rendering);
//! - names and references across several files checked together;
//! - the command's counts, its JSON rendering, and an unreadable file;
//! - the gutter of a line number of three digits (a file of 120 lines);
//! - long chains of constants (9,000 generated `let`s) on a small stack.

use crate::common;
use mcpops::dsl::{self, Diagnostic};

fn check(src: &str) -> Vec<Diagnostic> {
    dsl::check_str(src, "rules/x.rules")
}

#[test]
fn never_names_a_grammar_rule() {
    let rule_names = [
        "operand",
        "binop",
        "kw_",
        "_setting",
        "label_map",
        "agg_prefix",
        "func_name",
        "metric_name",
        "block_name",
        "EOI",
        "signed",
        "state_word",
    ];
    let broken = [
        "alert",
        "alert A",
        "alert A {",
        "alert A { when",
        "alert A { when x",
        "alert A { when x >",
        "record",
        "record r",
        "record r =",
        "let",
        "let a =",
        "evaluate every",
        "remediate R { on",
        "remediate R { where",
        "remediate R { where a",
        "remediate R { where a ==",
        "maintenance M { window",
        "test",
        "test \"t\"",
        "test \"t\" { series",
        "test \"t\" { series x",
        "test \"t\" { series x =",
        "test \"t\" { expect",
        "test \"t\" { expect value(",
        "test \"t\" { expect A at",
        "test \"t\" { expect A at 1m ==",
        "alert A { when x{",
        "alert A { when x{a",
        "alert A { when x{a=",
        "alert A { when x[",
        "alert A { when f(",
        "alert A { when x offset",
        "alert A { when x / on",
        "alert A { when x / on (",
        "alert A { labels {",
        "alert A { labels { a",
        "alert A { labels { a =",
        "alert A { for 5m for",
        "}",
        ")",
        "\"",
        "#",
    ];
    for src in broken {
        for d in check(src) {
            for r in rule_names {
                assert!(!d.message.contains(r), "{src:?}: {:?} names {r}", d.message);
            }
        }
    }
}

#[test]
fn duplicate_names_across_files() {
    // Across files checked together.
    let d = dsl::check_sources(&[
        ("a.rules".into(), "alert A { when x > 1 }\n".into()),
        ("b.rules".into(), "\nalert A { when y > 1 }\n".into()),
    ]);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].file.as_str(), d[0].line, d[0].col), ("b.rules", 2, 7));
    assert_eq!(d[0].code, dsl::Code::DuplicateName);
    assert_eq!(d[0].message, "duplicate name `A`");
    assert_eq!(d[0].notes, ["alert `A` is already defined at a.rules:1"]);
}

#[test]
fn references_resolve_across_files_checked_together() {
    let alerts = (
        "alerts.rules".to_string(),
        "alert A { when x > 1 }\n".to_string(),
    );
    let actions = (
        "actions.rules".to_string(),
        "remediate R {\n  on A\n  do exec \"restart {{server}}\"\n  cooldown 1h\n}\ntest \"t\" {\n  expect A at 1m == none\n}\n"
            .to_string(),
    );
    assert!(dsl::check_sources(&[alerts.clone(), actions.clone()]).is_empty());
    let alone = dsl::check_sources(&[actions]);
    assert_eq!(alone.len(), 2, "{alone:?}");
}

#[test]
fn check_command_prints_human_and_json_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = dir.join("store");
    let check = |files: &[&std::path::Path], json: bool| {
        let mut args = vec!["check"];
        if json {
            args.extend(["--format", "json"]);
        }
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        common::mcpops(&store, &args)
    };
    let good = dir.join("good.rules");
    let bad = dir.join("bad.rules");
    std::fs::write(&good, "alert A {\n  when x > 1\n  for 5m\n}\n").unwrap();
    std::fs::write(
        &bad,
        "alert B {\n  when p95(x[5m]) > 1\n}\nrecord r = rate(x)\n",
    )
    .unwrap();

    let o = check(&[&good], false);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "checked 1 file: 0 errors, 0 warnings\n"
    );

    // Errors exit 3; warnings alone would not.
    let o = check(&[&good, &bad], false);
    assert_eq!(o.status.code(), Some(3), "{}", common::text(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains(&format!("--> {}:4:17", bad.display())),
        "{text}"
    );
    assert!(
        text.ends_with("checked 2 files: 1 error, 1 warning\n"),
        "{text}"
    );

    let o = check(&[&bad], true);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"], 1);
    assert_eq!(v["warnings"], 1);
    let d = &v["diagnostics"][1];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], bad.display().to_string());
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(4), Some(17)));
    assert_eq!(d["source_line"], "record r = rate(x)");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("`rate` needs a range")
    );
    assert_eq!(v["diagnostics"][0]["severity"], "warning");

    // A missing file is an I/O error (a usage error), not a diagnostic.
    let e = dsl::load_rules(&[dir.join("missing.rules")]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    let o = check(&[&dir.join("missing.rules")], false);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(common::text(&o).contains("missing.rules"));
    let d = dsl::check_file(&dir.join("missing.rules"));
    assert_eq!((d.len(), d[0].line, d[0].col), (1, 1, 1));
}

#[test]
fn diagnostics_render_wide_line_numbers() {
    let d = check(&format!("{}alert A {{\n  for x\n}}\n", "\n".repeat(120)));
    assert!(
        d[0].to_string()
            .contains("   --> rules/x.rules:122:7\n    |\n122 |   for x\n    |       ^\n"),
        "{}",
        d[0]
    );
}

/// `let c1 = c0 + 1`, ... up to `c{n-1}`, and an alert on the last.
fn chained_lets(n: usize, op: &str) -> String {
    let mut src = String::from("let c0 = 1\n");
    for i in 1..n {
        src.push_str(&format!("let c{i} = c{} {op}\n", i - 1));
    }
    src.push_str(&format!("alert A {{\n  when x > c{}\n}}\n", n - 1));
    src
}

#[test]
fn long_chains_of_constants_check_in_a_small_stack() {
    // 9,000 constants, each defined by the one before: checked without
    // recursion (this runs on the test's default 2 MB thread).
    let d = check(&chained_lets(9_000, "+ 1"));
    assert!(d.iter().all(|d| !d.is_error()), "{d:?}");
    // A cycle at the end of a long chain is still found, where it closes.
    let mut src = chained_lets(5_000, "+ 1");
    src.push_str("let c5000 = c4999\nlet z = y\nlet y = z * 2\n");
    let errors: Vec<_> = check(&src).into_iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].message,
        "constant `z` is defined in terms of itself"
    );
}
