//! Golden diagnostics: every `tests/diagnostics/*.rules` file is a rule file
//! with mistakes in it, followed by what `mcpops check` prints about it.
//!
//! A file is the rule text, then a marker line, then the expected output,
//! every line of it behind `# ` (an empty line is a lone `#`):
//!
//! ```text
//! # What this file checks, in a comment.
//! alert A {
//!   when x > 1
//!   for   soon
//! }
//!
//! # ---- mcpops check prints (MCPOPS_BLESS=1 cargo test --test it diagnostics:: rewrites this) ----
//! # error[E001]: expected a duration such as `5m` after `for`
//! #  --> tests/diagnostics/example.rules:4:9
//! #   |
//! # 4 |   for   soon
//! #   |         ^
//! #
//! # checked 1 file: 1 error, 0 warnings
//! # mcpops: 1 error(s) in the rule files
//! ```
//!
//! The expected output is exactly what `mcpops check tests/diagnostics/NAME.rules`
//! prints from the crate root, standard output then standard error (the
//! `mcpops: ...` line, when the file has errors): the harness runs the
//! command, with the path as given here. The
//! whole file is checked, marker and expected block included (they are
//! comments), so `mcpops check` on it gives the same output by hand; an error
//! at the end of the file therefore points past the expected block.
//!
//! A file `NAME.om` beside `NAME.rules` holds a store's data (OpenMetrics
//! text): the harness ingests it into a temporary store and runs `mcpops
//! --store STORE check tests/diagnostics/NAME.rules`, for the warnings of
//! `check --store`.
//!
//! Re-blessing: `MCPOPS_BLESS=1 cargo test --test it diagnostics::` rewrites
//! the expected block of every file from what the checker prints now (and
//! adds one to a file that has no marker yet: a new case is the rule text
//! alone, blessed once). A rewrite that changes the block's length moves an
//! error at the end of the file, so each file is rewritten until its
//! output no longer changes. Review the diff before committing it.

use std::path::{Path, PathBuf};

/// The line between the rule text and the expected output.
const MARKER: &str = "# ---- mcpops check prints (MCPOPS_BLESS=1 cargo test --test it diagnostics:: rewrites this) ----";

fn files() -> Vec<PathBuf> {
    let dir = Path::new("tests/diagnostics");
    assert!(
        dir.is_dir(),
        "tests/diagnostics not found: run from the crate root, as cargo test does"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/diagnostics")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    files
}

/// `data` (OpenMetrics text) ingested into a new store in `dir`.
fn store_of(dir: &Path, data: &Path) -> PathBuf {
    let store = dir.join("store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(&store)
        .args(["--quiet", "ingest"])
        .arg(data)
        .output()
        .expect("run mcpops ingest");
    assert!(out.status.success(), "ingest {}: {out:?}", data.display());
    store
}

/// What `mcpops check FILE` prints from the crate root: standard output,
/// then standard error (the `mcpops: ...` line when the file has errors).
/// A file `NAME.om` beside `NAME.rules` is a store's data: it is ingested
/// into a temporary store and the file checked against it (`mcpops --store
/// STORE check FILE`).
fn rendering(path: &Path) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MCPOPS_STORE");
    let data = path.with_extension("om");
    if data.is_file() {
        cmd.arg("--store").arg(store_of(tmp.path(), &data));
    }
    let out = cmd
        .arg("check")
        .arg(path)
        .output()
        .expect("run mcpops check");
    let mut text = String::from_utf8(out.stdout).expect("utf-8");
    text.push_str(&String::from_utf8(out.stderr).expect("utf-8"));
    text
}

/// The rule text (up to and without the marker line) and the expected
/// output (`None` without a marker).
fn split(text: &str) -> Result<(&str, Option<String>), String> {
    let Some(at) = text
        .match_indices(MARKER)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
    else {
        return Ok((text, None));
    };
    let source = &text[..at];
    let mut expected = String::new();
    for (n, line) in text[at + MARKER.len()..]
        .trim_start_matches('\n')
        .lines()
        .enumerate()
    {
        let body = if line == "#" {
            ""
        } else if let Some(rest) = line.strip_prefix("# ") {
            rest
        } else {
            return Err(format!(
                "line {} after the marker is not `# ...` or `#`: {line:?}",
                n + 1
            ));
        };
        expected.push_str(body);
        expected.push('\n');
    }
    Ok((source, Some(expected)))
}

/// The file with `output` as its expected block.
fn blessed(source: &str, output: &str) -> String {
    let mut text = source.trim_end_matches('\n').to_string();
    text.push_str("\n\n");
    text.push_str(MARKER);
    text.push('\n');
    for line in output.lines() {
        if line.is_empty() {
            text.push_str("#\n");
        } else {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn bless(path: &Path) -> Result<bool, String> {
    let mut changed = false;
    // An error at the end of the file moves with the block's length; the
    // output's own length does not depend on it, so this settles at once.
    for _ in 0..4 {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let (source, _) = split(&text)?;
        let new = blessed(source, &rendering(path));
        if new == text {
            return Ok(changed);
        }
        std::fs::write(path, new).map_err(|e| e.to_string())?;
        changed = true;
    }
    Err("the expected block does not settle".into())
}

fn check(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (source, expected) = split(&text)?;
    if !source.trim_start().starts_with('#') {
        return Err("the file should open with a comment that says what it checks".into());
    }
    let Some(expected) = expected else {
        return Err(
            "no expected block: write it with MCPOPS_BLESS=1 cargo test --test it diagnostics::"
                .into(),
        );
    };
    let actual = rendering(path);
    if actual == expected {
        return Ok(());
    }
    let (want, got): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), actual.lines().collect());
    let n = (0..want.len().max(got.len()))
        .find(|&i| want.get(i) != got.get(i))
        .unwrap_or(want.len());
    let (want, got) = (
        want.get(n).copied().unwrap_or("(end)"),
        got.get(n).copied().unwrap_or("(end)"),
    );
    let n = n + 1;
    Err(format!(
        "`mcpops check` prints something else; first at line {n} of the output:\n  \
         expected: {want}\n  actual:   {got}\n--- expected\n{expected}--- actual\n{actual}---"
    ))
}

#[test]
fn every_file_renders_as_its_expected_block() {
    let files = files();
    assert!(!files.is_empty(), "no file in tests/diagnostics");
    let blessing = std::env::var("MCPOPS_BLESS").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    for f in &files {
        let result = if blessing {
            bless(f).map(|changed| {
                if changed {
                    println!("blessed {}", f.display());
                }
            })
        } else {
            check(f)
        };
        if let Err(e) = result {
            problems.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} files in tests/diagnostics:\n\n{}\n\n(if the new output is right: \
         MCPOPS_BLESS=1 cargo test --test it diagnostics::, then review the diff)",
        problems.len(),
        files.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_expected_block_reads_back_as_written() {
    let output = "error: x\n --> a:1:1\n\nchecked 1 file: 1 error, 0 warnings\n";
    let text = blessed("# a comment\nalert A {}\n", output);
    assert!(text.contains("\n#\n# checked"), "{text}");
    let (source, expected) = split(&text).expect("splits");
    assert_eq!(source, "# a comment\nalert A {}\n\n");
    assert_eq!(expected.as_deref(), Some(output));
    assert_eq!(blessed(source, output), text);
}

/// A documented code: its ```rules example (none for a file that cannot
/// be read), the ```openmetrics data of the store it is checked against
/// (for the codes of `check --store`) and its ```text rendering.
type Section = (String, Option<String>, Option<String>, String);

/// The sections of docs/diagnostics.md.
fn documented_codes() -> Vec<Section> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diagnostics.md");
    let doc = std::fs::read_to_string(path).expect("docs/diagnostics.md");
    let mut out = Vec::new();
    for section in doc.split("\n## `").skip(1) {
        let code = section.split('`').next().unwrap_or("").to_string();
        let fence = |lang: &str| {
            let open = format!("```{lang}\n");
            let start = section.find(&open)? + open.len();
            let len = section[start..].find("```")?;
            Some(section[start..start + len].to_string())
        };
        let text = fence("text").unwrap_or_else(|| panic!("{code}: no ```text rendering"));
        out.push((code, fence("rules"), fence("openmetrics"), text));
    }
    out
}

/// Every code has a section in docs/diagnostics.md whose example, checked
/// as `example.rules`, renders exactly as the page shows; no section names
/// a code the checker does not have.
#[test]
fn the_diagnostics_page_lists_every_code_with_a_true_example() {
    use mcpops::dsl::Code;
    let sections = documented_codes();
    let documented: Vec<&str> = sections.iter().map(|(c, _, _, _)| c.as_str()).collect();
    let known: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        documented, known,
        "docs/diagnostics.md's sections, in order"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wrong = Vec::new();
    for (code, example, data, text) in &sections {
        let Some(example) = example else {
            assert_eq!(
                code,
                Code::Unreadable.as_str(),
                "{code} has no ```rules example"
            );
            let d = mcpops::dsl::check_file(&dir.path().join("missing.rules"));
            assert_eq!(d.first().map(|d| d.code), Some(Code::Unreadable));
            continue;
        };
        std::fs::write(dir.path().join("example.rules"), example).expect("write");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"));
        cmd.current_dir(dir.path()).env_remove("MCPOPS_STORE");
        if let Some(data) = data {
            let store_dir = dir.path().join(code);
            std::fs::create_dir_all(&store_dir).expect("mkdir");
            let om = store_dir.join("data.om");
            std::fs::write(&om, data).expect("write");
            cmd.arg("--store").arg(store_of(&store_dir, &om));
        }
        let out = cmd
            .args(["check", "example.rules"])
            .output()
            .expect("run mcpops check");
        let printed = String::from_utf8_lossy(&out.stdout);
        let found = printed
            .split("\n\n")
            .any(|block| block.trim_end() == text.trim_end());
        if !found {
            wrong.push(format!(
                "{code}: the page shows\n{text}\nmcpops check prints\n{printed}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
