//! The rule language (`docs/language.md`): pest grammar in
//! `grammar/rules.pest`, a typed syntax tree ([`ast`]), a checker with
//! readable diagnostics ([`check`]) and a formatter ([`format`]).
//!
//! Door: [`parse_str`]/[`parse_file`] give a [`RuleFile`]; [`load_rules`]
//! parses and checks several files as one rule set (references resolve
//! across them); [`format_str`] and [`replace_file`] are `mcpops fmt`'s;
//! [`lint_store`] checks rules and queries against a store's names.

pub mod ast;
pub mod check;
pub mod codes;
pub mod constants;
pub mod diag;
pub mod format;
pub mod functions;
pub mod lint_store;
pub mod parse;
pub mod series;
pub mod template;
pub mod window;

pub use ast::*;
pub use diag::{Code, Diagnostic, Severity};

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The evaluation step when a file has no `evaluate every`.
pub const DEFAULT_STEP_MS: i64 = 60_000;

/// The shortest `evaluate every` a file may give: a finer step evaluates
/// every rule that many more times (1ms over a day is 86 million steps)
/// and no scrape resolves it.
pub const MIN_STEP_MS: i64 = 1_000;

/// The most evaluation steps one run may have: a query's range, a
/// backtest's, a rule test's (its last `expect ... at` over the step). `check`,
/// `test`, `query` and `backtest` all refuse more.
pub const MAX_STEPS: u64 = 1_000_000;

/// Parses one file's text. Errors are syntax errors and the errors found
/// while building the tree (a block without `when`, a setting given twice);
/// semantic checks are [`check_str`]'s.
pub fn parse_str(src: &str, name: &str) -> Result<RuleFile, Vec<Diagnostic>> {
    let p = parse::parse_source(src, name);
    if p.diags.is_empty() {
        Ok(p.file)
    } else {
        Err(p.diags)
    }
}

/// Parses a file; a file that cannot be read gives one diagnostic at 1:1.
pub fn parse_file(path: &Path) -> Result<RuleFile, Vec<Diagnostic>> {
    match std::fs::read_to_string(path) {
        Ok(src) => parse_str(&src, &path.display().to_string()),
        Err(e) => Err(vec![io_diag(path, &e)]),
    }
}

fn io_diag(path: &Path, e: &io::Error) -> Diagnostic {
    Diagnostic {
        code: Code::Unreadable,
        severity: Severity::Error,
        file: path.display().to_string(),
        line: 1,
        col: 1,
        width: 1,
        message: format!("cannot read the file: {e}"),
        source_line: String::new(),
        notes: Vec::new(),
        help: None,
    }
}

/// Parses and checks several sources (name, text) as one rule set; returns
/// every diagnostic, errors and warnings, in file order then by position.
pub fn check_sources(sources: &[(String, String)]) -> Vec<Diagnostic> {
    check_parsed_sources(sources).1
}

fn check_parsed_sources(sources: &[(String, String)]) -> (Vec<parse::Parsed>, Vec<Diagnostic>) {
    let parsed: Vec<(parse::Parsed, &str)> = sources
        .iter()
        .map(|(name, src)| (parse::parse_source(src, name), src.as_str()))
        .collect();
    let diags = check::check_parsed(&parsed).into_iter().flatten().collect();
    (parsed.into_iter().map(|(p, _)| p).collect(), diags)
}

/// Parses and checks one text.
pub fn check_str(src: &str, name: &str) -> Vec<Diagnostic> {
    check_sources(&[(name.to_string(), src.to_string())])
}

/// Parses and checks one file (syntax and semantics, errors and warnings).
pub fn check_file(path: &Path) -> Vec<Diagnostic> {
    match std::fs::read_to_string(path) {
        Ok(src) => check_str(&src, &path.display().to_string()),
        Err(e) => vec![io_diag(path, &e)],
    }
}

/// Rule files parsed and checked together.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// The files that parsed completely, in the order given.
    pub files: Vec<RuleFile>,
    /// Every diagnostic of every file.
    pub diagnostics: Vec<Diagnostic>,
}

impl RuleSet {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }
}

/// Reads, parses and checks files as one rule set (an alert in one file may
/// be named by a remediation or a test in another). An unreadable file is an
/// I/O error (a usage error for the command line), not a diagnostic.
pub fn load_rules(paths: &[PathBuf]) -> io::Result<RuleSet> {
    let mut sources = Vec::with_capacity(paths.len());
    for p in paths {
        let src = std::fs::read_to_string(p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        sources.push((p.display().to_string(), src));
    }
    let (parsed, diagnostics) = check_parsed_sources(&sources);
    let files = parsed
        .into_iter()
        .filter(|p| p.diags.is_empty())
        .map(|p| p.file)
        .collect();
    Ok(RuleSet { files, diagnostics })
}

/// Formats a file's text in the canonical layout, comments kept. Files with
/// syntax errors are not formatted: their diagnostics are returned.
pub fn format_str(src: &str, name: &str) -> Result<String, Vec<Diagnostic>> {
    let file = parse_str(src, name)?;
    Ok(format::format_file(src, &file))
}

/// Replaces the contents of the file at `path` atomically: a temporary
/// file beside it, then a rename. A symlink is followed, so its target is
/// rewritten and the link stays a link; the target's permissions are kept.
pub fn replace_file(path: &Path, contents: &str) -> io::Result<()> {
    let target = std::fs::canonicalize(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.fmt.tmp"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.set_permissions(std::fs::metadata(&target)?.permissions())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", target.display())))
}

/// Parses and checks one expression, as `mcpops query` takes it: the errors
/// name the line and column within the expression. As in PromQL, a query
/// may select series or be a plain number (`2 * 5m / 1s`).
pub fn parse_query(text: &str) -> Result<Expr, Vec<Diagnostic>> {
    // The syntax first, as one expression to the end of the text: the
    // checks below parse it inside a rule file, where a stray token would
    // read as the start of the next block.
    parse::query_syntax(text, "query")?;
    // Checked as the body of a record rule, on the line after its head; a
    // number, which a record refuses, as the value of a constant.
    let errors = match checked_body(&format!("record query =\n{text}\n"), |f| {
        f.records().next().map(|r| &r.expr)
    }) {
        Ok(e) => return Ok(e),
        Err(errors) => errors,
    };
    match checked_body(&format!("let query =\n{text}\n"), |f| {
        f.constant("query").map(|l| &l.value)
    }) {
        Ok(e) if !matches!(e.unparen(), Expr::Str(_)) => Ok(e),
        _ => Err(errors),
    }
}

/// The expression that `body` finds in `src`, a one-item file named
/// "query", when it parses and checks without errors; the errors otherwise,
/// on the lines of the expression (one less than in `src`).
fn checked_body(
    src: &str,
    body: impl Fn(&RuleFile) -> Option<&Expr>,
) -> Result<Expr, Vec<Diagnostic>> {
    let name = "query";
    let relocate = |mut diags: Vec<Diagnostic>| {
        for d in &mut diags {
            d.line = d.line.saturating_sub(1).max(1);
        }
        diags
    };
    let file = parse_str(src, name).map_err(relocate)?;
    let errors: Vec<Diagnostic> = check_str(src, name)
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        return Err(relocate(errors));
    }
    body(&file).cloned().ok_or_else(|| {
        relocate(vec![io_diag(
            Path::new(name),
            &io::Error::other("no expression"),
        )])
    })
}
