//! The examples of docs/language.md are real: every ```rules fence is a
//! complete rule file that checks without errors or warnings (as the
//! shipped rule files do, see dsl_shipped.rs), is in `mcpops fmt`'s layout,
//! and passes its own `test` blocks. A failure names the fence's line.

use mcpops::dsl;
use mcpops::engine::testrun::run_tests;
use std::path::Path;

/// Each ```rules fence of the page: the line of its opening fence and its text.
fn fences() -> Vec<(usize, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md");
    let doc = std::fs::read_to_string(&path).expect("docs/language.md exists");
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        let n = i + 1;
        match open.as_mut() {
            None if line.trim_end() == "```rules" => open = Some((n, String::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(open.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a ```rules fence is not closed");
    assert!(
        out.len() >= 40,
        "the page shows its examples: {}",
        out.len()
    );
    out
}

fn name(line: usize) -> String {
    format!("docs/language.md, the ```rules fence at line {line}")
}

#[test]
fn every_rules_fence_checks_clean() {
    let mut bad = String::new();
    for (line, src) in fences() {
        let diags = dsl::check_str(&src, &name(line));
        if !diags.is_empty() {
            bad.push_str(&format!("{}:\n", name(line)));
            for d in diags {
                bad.push_str(&format!("{d}\n"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad}");
}

#[test]
fn every_rules_fence_is_formatted() {
    let mut bad = Vec::new();
    for (line, src) in fences() {
        match dsl::format_str(&src, &name(line)) {
            Ok(formatted) if formatted == src => {}
            Ok(formatted) => bad.push(format!(
                "{} is not formatted; fmt gives:\n{formatted}",
                name(line)
            )),
            Err(diags) => bad.push(format!("{} does not parse: {diags:?}", name(line))),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_tests_in_the_fences_pass() {
    let mut ran = 0;
    let mut bad = String::new();
    for (line, src) in fences() {
        let file = match dsl::parse_str(&src, &name(line)) {
            Ok(f) => f,
            Err(diags) => panic!("{} does not parse: {diags:?}", name(line)),
        };
        if file.tests().next().is_none() {
            continue;
        }
        let outcomes = run_tests(std::slice::from_ref(&file));
        ran += outcomes.len();
        for o in outcomes.iter().filter(|o| !o.passed()) {
            bad.push_str(&format!("{o:#?}\n"));
        }
    }
    assert!(ran >= 5, "the page's examples hold tests: {ran}");
    assert!(bad.is_empty(), "{bad}");
}
