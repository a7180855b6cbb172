//! From text to the syntax tree: pest parses one top-level item at a time;
//! the pairs become typed nodes; syntax errors become diagnostics in words.
//!
//! Recovery: when an item does not parse, its error is reported and parsing
//! resumes at the next line that starts (in column 1) with a top-level
//! keyword, so every broken block of a file is reported, not just the first.

use super::ast::*;
use super::diag::{Code, Diagnostic, LineIndex};
use super::functions;
use super::{series, template, window};
use crate::model::MatchOp;
use crate::time::parse_duration_ms;
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use std::collections::HashSet;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/rules.pest"]
pub(crate) struct RulesParser;

/// Brackets may nest this deep; deeper input is rejected before parsing so
/// that no recursive pass can exhaust the stack.
pub const MAX_NESTING: usize = 64;
/// Expression trees may be this deep (a chain of 300 `+` is 300 deep).
pub const MAX_DEPTH: u32 = 256;

/// Keywords that start a top-level item.
pub(crate) const TOP_KEYWORDS: [&str; 8] = [
    "let",
    "evaluate",
    "alert",
    "record",
    "remediate",
    "maintenance",
    "suppress",
    "test",
];

/// What parsing one file gave: the items that parsed, the errors of those
/// that did not, and the (keyword, name) of each item that did not, so that
/// the checker does not call references to them unknown.
pub(crate) struct Parsed {
    pub file: RuleFile,
    pub diags: Vec<Diagnostic>,
    pub failed: Vec<(String, String)>,
}

pub(crate) fn parse_source(src: &str, name: &str) -> Parsed {
    let idx = LineIndex::new(src);
    let mut parsed = Parsed {
        file: RuleFile {
            name: name.to_string(),
            items: Vec::new(),
        },
        diags: Vec::new(),
        failed: Vec::new(),
    };
    if let Some(pos) = too_deep(src) {
        parsed.diags.push(idx.at(
            name,
            Code::TooDeep,
            pos,
            format!("brackets nest more than {MAX_NESTING} levels deep here"),
        ));
        return parsed;
    }
    let mut p = 0;
    loop {
        p = skip_blank(src, p);
        if p >= src.len() {
            break;
        }
        match RulesParser::parse(Rule::item, &src[p..]) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = p + pair.as_span().end();
                let mut b = Builder {
                    idx: &idx,
                    file: name,
                    off: p,
                    errs: Vec::new(),
                };
                match b.item(pair) {
                    Some(item) if b.errs.is_empty() => parsed.file.items.push(item),
                    _ => {
                        if let Some(n) = item_name(&src[p..]) {
                            parsed.failed.push(n);
                        }
                        parsed.diags.append(&mut b.errs);
                    }
                }
                p = end.max(p + 1);
            }
            Err(e) => {
                let (pos, message) = syntax_message(src, p, &e);
                parsed.diags.push(idx.at(name, Code::Syntax, pos, message));
                if let Some(n) = item_name(&src[p..]) {
                    parsed.failed.push(n);
                }
                p = resume_at(src, &idx, p, pos);
            }
        }
    }
    resolve_constants(&mut parsed.file);
    parsed
}

/// Checks the syntax of a query (`mcpops query`) as one expression that
/// must end where the text ends: the error names what the expression
/// expected (`)`, an operator, the end of the query), at its line and
/// column in the text. Building and checking the tree is the caller's.
pub(crate) fn query_syntax(src: &str, name: &str) -> Result<(), Vec<Diagnostic>> {
    let idx = LineIndex::new(src);
    if let Some(pos) = too_deep(src) {
        return Err(vec![idx.at(
            name,
            Code::TooDeep,
            pos,
            format!("brackets nest more than {MAX_NESTING} levels deep here"),
        )]);
    }
    match RulesParser::parse(Rule::query, src) {
        Ok(_) => Ok(()),
        Err(e) => {
            let (pos, mut message) = syntax_message(src, 0, &e);
            // A complete expression followed by more: name what is extra
            // rather than every way the expression could have gone on.
            if matches!(&e.variant, ErrorVariant::ParsingError { positives, .. } if positives.contains(&Rule::EOI))
            {
                message = format!(
                    "unexpected `{}` after a complete expression: expected an operator or the end of the query",
                    token_at(src, pos)
                );
            }
            Err(vec![idx.at(name, Code::Syntax, pos, message)])
        }
    }
}

/// Skips whitespace and comments.
fn skip_blank(src: &str, mut p: usize) -> usize {
    let b = src.as_bytes();
    while p < b.len() {
        match b[p] {
            b' ' | b'\t' | b'\r' | b'\n' => p += 1,
            b'#' => {
                while p < b.len() && b[p] != b'\n' {
                    p += 1;
                }
            }
            _ => break,
        }
    }
    p
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b':'
}

/// Whether a top-level keyword starts at byte `p` (followed by a non-name byte).
fn keyword_at(src: &str, p: usize) -> bool {
    let rest = &src.as_bytes()[p..];
    TOP_KEYWORDS.iter().any(|k| {
        rest.starts_with(k.as_bytes()) && rest.get(k.len()).is_none_or(|c| !is_name_byte(*c))
    })
}

/// Where to continue after a syntax error at `err` in the item starting at
/// `start`: the first line at or after the error's line that starts with a
/// top-level keyword in column 1, past the item's start.
fn resume_at(src: &str, idx: &LineIndex, start: usize, err: usize) -> usize {
    let (mut line, _) = idx.line_col(err);
    loop {
        let ls = idx.line_start(line);
        if ls >= src.len() {
            return src.len();
        }
        if ls > start && keyword_at(src, ls) {
            return ls;
        }
        line += 1;
    }
}

/// The keyword and name of an item, read loosely from its first tokens.
fn item_name(chunk: &str) -> Option<(String, String)> {
    let kw = TOP_KEYWORDS.iter().find(|k| {
        chunk.starts_with(*k)
            && chunk
                .as_bytes()
                .get(k.len())
                .is_none_or(|c| !is_name_byte(*c))
    })?;
    let rest = chunk[kw.len()..].trim_start();
    let name: String = if let Some(r) = rest.strip_prefix('"') {
        r.chars().take_while(|c| *c != '"' && *c != '\n').collect()
    } else {
        rest.bytes()
            .take_while(|c| is_name_byte(*c))
            .map(|c| c as char)
            .collect()
    };
    (!name.is_empty()).then(|| (kw.to_string(), name))
}

/// The first position where brackets nest deeper than [`MAX_NESTING`].
fn too_deep(src: &str) -> Option<usize> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

// ------------------------------------------------------------------ syntax errors in words

/// What each rule means to a reader, and whether it is worth naming when
/// something more specific is also expected (`false`: only optional
/// continuations such as an operator or `offset`).
fn describe(rule: Rule) -> (&'static str, bool) {
    use Rule as R;
    match rule {
        R::item => (
            "a block: `alert`, `record`, `remediate`, `maintenance`, `suppress`, `test`, `let` or `evaluate every`",
            true,
        ),
        R::duration => ("a duration such as `5m`", true),
        R::number => ("a number", true),
        R::percent => ("a percentage such as `99.9%`", true),
        R::size => ("a size such as `512MiB`", true),
        R::integer => ("a whole number", true),
        R::string => ("a string in double quotes", true),
        R::expr | R::operand => ("an expression", true),
        R::lbrace => ("`{`", true),
        R::rbrace => ("`}`", true),
        R::rparen => ("`)`", true),
        R::rbracket => ("`]`", true),
        R::assign => ("`=`", true),
        R::eq_eq => ("`==`", true),
        R::comma => ("`,`", true),
        R::block_name => ("a name such as `HighLatency`", true),
        R::ref_name | R::selector => ("a metric name", true),
        R::label_name => ("a label name", true),
        R::match_op => ("a matcher operator (`=`, `!=`, `=~` or `!~`)", true),
        R::matcher => ("a label matcher such as `server=\"a\"`", true),
        R::label_pair => ("a label such as `team = \"platform\"`", true),
        R::label_list => ("labels in parentheses such as `(server)`", true),
        R::label_map => ("labels in braces such as `{ team = \"platform\" }`", true),
        R::alert_setting => (
            "an alert setting (`when`, `resolve when`, `for`, `keep_firing`, `severity`, `labels`, `summary` or `runbook`)",
            true,
        ),
        R::remediate_setting => (
            "a remediation setting (`on`, `where`, `do`, `timeout`, `cooldown`, `max`, `verify`, `escalate`, `concurrency`, `breaker`, `guard`, `approve` or `mode`)",
            true,
        ),
        R::maintenance_setting => (
            "a maintenance setting (`when`, `window`, `do`, `timeout`, `cooldown`, `max`, `guard` or `mode`)",
            true,
        ),
        R::test_line => ("a test line (`interval`, `series` or `expect`)", true),
        R::severity_level => ("a severity: `critical`, `warning` or `info`", true),
        R::action | R::action_kind => (
            "an action: `exec`, `notify` or `webhook` followed by a string",
            true,
        ),
        R::alert_ref => ("an alert name", true),
        R::value_target => ("`value(...)`", true),
        R::where_or | R::where_and | R::where_atom | R::where_cond => {
            ("a condition such as `severity == \"critical\"`", true)
        }
        R::where_op => ("`==`, `!=`, `=~` or `!~`", true),
        R::expect_result | R::state_word | R::action_word | R::signed => (
            "`none`, `firing`, `pending`, `resolved`, `run`, `escalated`, `suppressed`, `awaiting_approval` or a number",
            true,
        ),
        R::mode_value => ("a mode: `dry-run` or `auto`", true),
        R::args => ("an argument", true),
        R::let_item | R::kw_let => ("`let`", true),
        R::evaluate_item | R::kw_evaluate => ("`evaluate`", true),
        R::alert_block | R::kw_alert => ("`alert`", true),
        R::record_item | R::kw_record => ("`record`", true),
        R::remediate_block | R::kw_remediate => ("`remediate`", true),
        R::maintenance_block | R::kw_maintenance => ("`maintenance`", true),
        R::test_block | R::kw_test => ("`test`", true),
        R::suppress_item | R::kw_suppress => ("`suppress`", true),
        R::kw_while => ("`while`", true),
        R::kw_resolve => ("`resolve`", true),
        R::kw_concurrency => ("`concurrency`", true),
        R::kw_breaker => ("`breaker`", true),
        R::kw_guard => ("`guard`", true),
        R::kw_approve => ("`approve`", true),
        R::approve_by => ("`by \"who\"`", true),
        R::kw_mode => ("`mode`", true),
        R::kw_every => ("`every`", true),
        R::kw_per => ("`per`", true),
        R::kw_within => ("`within`", true),
        R::kw_at => ("`at`", true),
        R::kw_when => ("`when`", true),
        R::kw_for => ("`for`", true),
        R::kw_keep_firing => ("`keep_firing`", true),
        R::kw_severity => ("`severity`", true),
        R::kw_labels => ("`labels`", true),
        R::kw_summary => ("`summary`", true),
        R::kw_runbook => ("`runbook`", true),
        R::kw_on | R::on_clause => ("`on (...)`", false),
        R::kw_where => ("`where`", true),
        R::kw_do => ("`do`", true),
        R::kw_timeout => ("`timeout`", true),
        R::kw_cooldown => ("`cooldown`", true),
        R::kw_max => ("`max`", true),
        R::kw_verify => ("`verify`", true),
        R::kw_escalate => ("`escalate`", true),
        R::kw_window => ("`window`", true),
        R::kw_interval => ("`interval`", true),
        R::kw_series => ("`series`", true),
        R::kw_expect => ("`expect`", true),
        R::kw_by | R::kw_without | R::grouping => ("`by (...)` or `without (...)`", false),
        R::kw_offset | R::offset => ("`offset`", false),
        R::kw_bool => ("`bool`", false),
        R::kw_and | R::kw_or | R::kw_unless | R::binop | R::binop_sym => ("an operator", false),
        R::range => ("a range such as `[5m]`", false),
        R::matchers => ("label matchers in braces", false),
        R::neg | R::sign => ("`-`", false),
        R::paren => ("`(`", false),
        R::call_tail | R::agg_tail => ("a function call", false),
        R::named | R::sel_tail => ("a selector", false),
        R::EOI => ("the end of the query", false),
        _ => ("something else", false),
    }
}

/// Joins phrases as "a, b or c".
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The position and the message of a pest error, in words.
fn syntax_message(src: &str, start: usize, e: &pest::error::Error<Rule>) -> (usize, String) {
    let rel = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((p, _)) => p,
    };
    let pos = (start + rel).min(src.len());
    let positives = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => {
            return (pos, "this input nests too deeply to parse".to_string());
        }
    };
    // A string that does not close, or holds an unknown escape.
    if src.as_bytes().get(pos) == Some(&b'"')
        && let Some(m) = string_problem(src, pos)
    {
        return m;
    }
    let mut strong: Vec<&str> = Vec::new();
    let mut weak: Vec<&str> = Vec::new();
    for r in &positives {
        let (phrase, is_strong) = describe(*r);
        let list = if is_strong { &mut strong } else { &mut weak };
        if !list.contains(&phrase) {
            list.push(phrase);
        }
    }
    let expected = if strong.is_empty() { weak } else { strong };
    let what = if expected.is_empty() {
        "valid syntax".to_string()
    } else {
        join_or(&expected)
    };
    if pos == start && positives.contains(&Rule::item) {
        let found = token_at(src, pos);
        return (pos, format!("expected {what}, found `{found}`"));
    }
    match previous_token(src, start, pos) {
        Some(prev) => (pos, format!("expected {what} after `{prev}`")),
        None => (pos, format!("expected {what}")),
    }
}

/// An unterminated string or a bad escape in the string starting at `pos`.
fn string_problem(src: &str, pos: usize) -> Option<(usize, String)> {
    let b = src.as_bytes();
    let mut i = pos + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return None,
            b'\n' => break,
            b'\\' => {
                if matches!(b.get(i + 1), Some(b'"') | Some(b'\\')) {
                    i += 2;
                    continue;
                }
                let shown: String = src[i..].chars().take(2).collect();
                return Some((
                    i,
                    format!(
                        "unknown escape `{shown}` in a string: only `\\\"` and `\\\\` are escapes (write `\\\\` for a backslash)"
                    ),
                ));
            }
            _ => {}
        }
        i += 1;
    }
    Some((
        pos,
        "this string is not closed: it must end with `\"` on the same line".to_string(),
    ))
}

/// The token that starts at `pos`, for "found ..." (shortened).
fn token_at(src: &str, pos: usize) -> String {
    let rest = &src[pos..];
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(24)
        .collect();
    if word.is_empty() {
        "end of file".to_string()
    } else {
        word
    }
}

/// The last token that ends at or before `pos`, lexing from `start`.
fn previous_token(src: &str, start: usize, pos: usize) -> Option<String> {
    let b = src.as_bytes();
    let mut i = start;
    let mut last: Option<(usize, usize)> = None;
    while i < pos && i < b.len() {
        let c = b[i];
        let tok_start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else if is_name_byte(c) || c == b'%' {
            while i < b.len() && (is_name_byte(b[i]) || b[i] == b'%') {
                i += 1;
            }
        } else if i + 1 < b.len()
            && matches!(&b[i..i + 2], b"==" | b"!=" | b"=~" | b"!~" | b">=" | b"<=")
        {
            i += 2;
        } else {
            i += src[i..].chars().next().map_or(1, char::len_utf8);
        }
        if i <= pos {
            last = Some((tok_start, i));
        }
    }
    let (s, e) = last?;
    let text = &src[s..e.min(src.len())];
    if text.chars().count() > 32 {
        let short: String = text.chars().take(30).collect();
        Some(format!("{short}…"))
    } else {
        Some(text.to_string())
    }
}

// ------------------------------------------------------------------ pairs to tree

struct Builder<'s> {
    idx: &'s LineIndex<'s>,
    file: &'s str,
    /// Where the parsed chunk starts in the file.
    off: usize,
    errs: Vec<Diagnostic>,
}

/// Rules that carry no meaning once parsed (punctuation, keywords).
fn is_noise(r: Rule) -> bool {
    use Rule as R;
    matches!(
        r,
        R::lbrace
            | R::rbrace
            | R::rparen
            | R::rbracket
            | R::assign
            | R::eq_eq
            | R::comma
            | R::kw_let
            | R::kw_evaluate
            | R::kw_every
            | R::kw_alert
            | R::kw_record
            | R::kw_remediate
            | R::kw_maintenance
            | R::kw_test
            | R::kw_when
            | R::kw_for
            | R::kw_keep_firing
            | R::kw_severity
            | R::kw_labels
            | R::kw_summary
            | R::kw_runbook
            | R::kw_on
            | R::kw_where
            | R::kw_do
            | R::kw_timeout
            | R::kw_cooldown
            | R::kw_max
            | R::kw_per
            | R::kw_verify
            | R::kw_within
            | R::kw_escalate
            | R::kw_window
            | R::kw_interval
            | R::kw_series
            | R::kw_expect
            | R::kw_at
            | R::kw_offset
            | R::kw_and
            | R::kw_or
            | R::kw_resolve
            | R::kw_concurrency
            | R::kw_breaker
            | R::kw_guard
            | R::kw_approve
            | R::kw_mode
            | R::kw_suppress
            | R::kw_while
            | R::approve_by
    )
}

/// `end` moved back over trailing whitespace and comments, not before `start`.
/// Constant time unless the span ends at the end of a line (a comment runs
/// to the end of its line), so long lines cost nothing extra per node.
fn trim_end(src: &str, start: usize, end: usize) -> usize {
    let b = src.as_bytes();
    let mut e = end.min(b.len());
    loop {
        let before = e;
        while e > start && b[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
        let at_line_end = before == b.len() || b[e..before].contains(&b'\n');
        if !at_line_end {
            return e;
        }
        let line_start = src[..e].rfind('\n').map_or(0, |i| i + 1);
        let mut i = line_start;
        let mut hash = None;
        while i < e {
            match b[i] {
                b'"' => {
                    i += 1;
                    while i < e && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'#' => {
                    hash = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        match hash {
            Some(h) if h >= start && h < e => e = h,
            _ => return e,
        }
    }
}

fn kids(p: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    p.into_inner().filter(|c| !is_noise(c.as_rule())).collect()
}

/// An operand before precedence is applied: its minus signs and its value.
struct Unit {
    negs: Vec<usize>,
    expr: Expr,
    depth: u32,
}

struct OpInfo {
    op: BinOp,
    return_bool: bool,
    on: Option<Grouping>,
}

impl<'s> Builder<'s> {
    fn abs(&self, rel: usize) -> usize {
        self.off + rel
    }

    /// The span of a pair without the whitespace and comments that pest's
    /// implicit whitespace leaves at the end of rules ending in `?` or `*`.
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        let start = self.abs(s.start());
        let end = trim_end(self.idx.source(), start, self.abs(s.end()));
        self.idx.span(start, end)
    }

    fn err(&mut self, code: Code, pos: usize, msg: String) {
        self.errs.push(self.idx.at(self.file, code, pos, msg));
    }

    fn ident(&self, p: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(p),
        }
    }

    fn dur(&mut self, p: &Pair<'_, Rule>) -> Option<Dur> {
        let span = self.span(p);
        match parse_duration_ms(p.as_str()) {
            Ok(ms) => Some(Dur {
                ms,
                text: p.as_str().to_string(),
                span,
            }),
            Err(_) => {
                self.err(
                    Code::TooLarge,
                    span.start,
                    format!("the duration `{}` is too large", p.as_str()),
                );
                None
            }
        }
    }

    fn string(&self, p: &Pair<'_, Rule>) -> StrLit {
        StrLit {
            value: unescape(p.as_str()),
            span: self.span(p),
        }
    }

    fn template(&mut self, p: &Pair<'_, Rule>) -> Option<Template> {
        let at = self.abs(p.as_span().start());
        match template::parse(p.as_str(), at, self.idx) {
            Ok(t) => Some(t),
            Err((pos, msg)) => {
                self.err(Code::BadAction, pos, msg);
                None
            }
        }
    }

    fn number(&mut self, p: &Pair<'_, Rule>) -> Option<Number> {
        let text = p.as_str();
        let span = self.span(p);
        let (value, kind) = match p.as_rule() {
            Rule::percent => {
                let digits = &text[..text.len() - 1];
                let v = if digits.contains(['e', 'E']) {
                    digits.parse::<f64>().map(|v| v / 100.0)
                } else {
                    format!("{digits}e-2").parse::<f64>()
                };
                (v.ok(), NumberKind::Percent)
            }
            Rule::size => {
                let units: [(&str, f64); 11] = [
                    ("KiB", 1024.0),
                    ("MiB", 1024f64.powi(2)),
                    ("GiB", 1024f64.powi(3)),
                    ("TiB", 1024f64.powi(4)),
                    ("PiB", 1024f64.powi(5)),
                    ("KB", 1e3),
                    ("MB", 1e6),
                    ("GB", 1e9),
                    ("TB", 1e12),
                    ("PB", 1e15),
                    ("B", 1.0),
                ];
                let v = units.iter().find_map(|(u, m)| {
                    text.strip_suffix(u)
                        .and_then(|d| d.parse::<f64>().ok())
                        .map(|d| d * m)
                });
                (v, NumberKind::Size)
            }
            Rule::duration => (
                parse_duration_ms(text).ok().map(|ms| ms as f64 / 1000.0),
                NumberKind::Duration,
            ),
            _ => {
                let v = match text {
                    "Inf" => Some(f64::INFINITY),
                    "NaN" => Some(f64::NAN),
                    t => t.parse::<f64>().ok(),
                };
                (v, NumberKind::Plain)
            }
        };
        match value {
            Some(value) => Some(Number {
                value,
                kind,
                text: text.to_string(),
                span,
            }),
            None => {
                self.err(
                    Code::TooLarge,
                    span.start,
                    format!("`{text}` is not a number this tool can hold"),
                );
                None
            }
        }
    }

    // -------------------------------------------------------------- expressions

    fn expr(&mut self, p: Pair<'_, Rule>) -> Option<(Expr, u32)> {
        let mut units: Vec<Unit> = Vec::new();
        let mut ops: Vec<OpInfo> = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::operand => units.push(self.operand(c)?),
                Rule::binop => ops.push(self.binop(c)?),
                _ => {}
            }
        }
        // `^` first: right-associative runs, with the minus signs of each
        // operand applied over the run that starts at it.
        let mut folded: Vec<(Expr, u32)> = Vec::new();
        let mut rest_ops: Vec<OpInfo> = Vec::new();
        let mut units = units.into_iter().map(Some).collect::<Vec<_>>();
        let mut ops_iter = ops.into_iter().map(Some).collect::<Vec<_>>();
        let mut i = 0;
        while i < units.len() {
            let mut j = i;
            while j < ops_iter.len() && ops_iter[j].as_ref().is_some_and(|o| o.op == BinOp::Pow) {
                j += 1;
            }
            // units i..=j joined by `^`
            let last = units[j].take()?;
            let mut acc = self.apply_negs(last.negs, last.expr, last.depth)?;
            for k in (i..j).rev() {
                let u = units[k].take()?;
                let op = ops_iter[k].take()?;
                let node = self.binary(op, (u.expr, u.depth), acc)?;
                acc = self.apply_negs(u.negs, node.0, node.1)?;
            }
            folded.push(acc);
            if j < ops_iter.len() {
                rest_ops.push(ops_iter[j].take()?);
            }
            i = j + 1;
        }
        // The other operators: left-associative, by precedence.
        let mut out: Vec<(Expr, u32)> = Vec::new();
        let mut stack: Vec<OpInfo> = Vec::new();
        let mut folded = folded.into_iter();
        out.push(folded.next()?);
        for (op, operand) in rest_ops.into_iter().zip(folded) {
            while stack
                .last()
                .is_some_and(|top| top.op.precedence() >= op.op.precedence())
            {
                let top = stack.pop()?;
                let r = out.pop()?;
                let l = out.pop()?;
                out.push(self.binary(top, l, r)?);
            }
            stack.push(op);
            out.push(operand);
        }
        while let Some(top) = stack.pop() {
            let r = out.pop()?;
            let l = out.pop()?;
            out.push(self.binary(top, l, r)?);
        }
        out.pop()
    }

    fn binary(&mut self, op: OpInfo, l: (Expr, u32), r: (Expr, u32)) -> Option<(Expr, u32)> {
        let depth = 1 + l.1.max(r.1);
        let span = self.idx.span(l.0.span().start, r.0.span().end);
        if depth > MAX_DEPTH {
            self.err(
                Code::TooDeep,
                span.start,
                format!("this expression is more than {MAX_DEPTH} operations deep"),
            );
            return None;
        }
        Some((
            Expr::Binary(Binary {
                op: op.op,
                return_bool: op.return_bool,
                on: op.on,
                lhs: Box::new(l.0),
                rhs: Box::new(r.0),
                span,
            }),
            depth,
        ))
    }

    /// Applies minus signs (outermost first in `negs`), folding a minus into
    /// a number or duration literal right after it (`-2` is the number -2).
    fn apply_negs(&mut self, negs: Vec<usize>, mut e: Expr, mut depth: u32) -> Option<(Expr, u32)> {
        for &start in negs.iter().rev() {
            let span = self.idx.span(start, e.span().end);
            e = match e {
                Expr::Number(n) if !n.text.starts_with('-') => Expr::Number(Number {
                    value: -n.value,
                    text: format!("-{}", n.text),
                    span,
                    ..n
                }),
                Expr::Duration(d) if !d.text.starts_with('-') => Expr::Duration(Dur {
                    ms: -d.ms,
                    text: format!("-{}", d.text),
                    span,
                }),
                other => {
                    depth += 1;
                    Expr::Neg(Box::new(other), span)
                }
            };
            if depth > MAX_DEPTH {
                self.err(
                    Code::TooDeep,
                    start,
                    format!("this expression is more than {MAX_DEPTH} operations deep"),
                );
                return None;
            }
        }
        Some((e, depth))
    }

    fn binop(&mut self, p: Pair<'_, Rule>) -> Option<OpInfo> {
        let mut info = OpInfo {
            op: BinOp::Add,
            return_bool: false,
            on: None,
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::binop_sym => info.op = BinOp::from_symbol(c.as_str())?,
                Rule::kw_bool => info.return_bool = true,
                Rule::on_clause => {
                    let span = self.span(&c);
                    let list = c.into_inner().find(|x| x.as_rule() == Rule::label_list)?;
                    info.on = Some(Grouping {
                        without: false,
                        labels: self.label_list(list),
                        span,
                    });
                }
                _ => {}
            }
        }
        Some(info)
    }

    fn operand(&mut self, p: Pair<'_, Rule>) -> Option<Unit> {
        let mut negs = Vec::new();
        let mut result = None;
        for c in p.into_inner() {
            if c.as_rule() == Rule::neg {
                negs.push(self.abs(c.as_span().start()));
            } else {
                result = Some(self.primary(c)?);
            }
        }
        let (expr, depth) = result?;
        Some(Unit { negs, expr, depth })
    }

    fn primary(&mut self, p: Pair<'_, Rule>) -> Option<(Expr, u32)> {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::paren => {
                let inner = p.into_inner().find(|c| c.as_rule() == Rule::expr)?;
                let (e, d) = self.expr(inner)?;
                Some((Expr::Paren(Box::new(e), span), d + 1))
            }
            Rule::duration => Some((Expr::Duration(self.dur(&p)?), 1)),
            Rule::number | Rule::percent | Rule::size => Some((Expr::Number(self.number(&p)?), 1)),
            Rule::string => Some((Expr::Str(self.string(&p)), 1)),
            Rule::named => {
                let mut it = p.into_inner();
                let name = self.ident(&it.next()?);
                let tail = it.next()?;
                match tail.as_rule() {
                    Rule::agg_tail => self.agg_prefix(name, tail, span),
                    Rule::call_tail => self.call(name, tail, span),
                    _ => Some((Expr::Selector(self.selector(name, tail, span)?), 1)),
                }
            }
            _ => None,
        }
    }

    fn label_list(&mut self, p: Pair<'_, Rule>) -> Vec<Ident> {
        p.into_inner()
            .filter(|c| c.as_rule() == Rule::label_name)
            .map(|c| self.ident(&c))
            .collect()
    }

    fn grouping(&mut self, p: Pair<'_, Rule>) -> Option<Grouping> {
        let span = self.span(&p);
        let mut without = false;
        let mut labels = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::kw_without => without = true,
                Rule::label_list => labels = self.label_list(c),
                _ => {}
            }
        }
        Some(Grouping {
            without,
            labels,
            span,
        })
    }

    fn args(&mut self, p: Pair<'_, Rule>) -> Option<(Vec<Expr>, u32)> {
        let mut out = Vec::new();
        let mut depth = 0;
        for c in p.into_inner().filter(|c| c.as_rule() == Rule::expr) {
            let (e, d) = self.expr(c)?;
            depth = depth.max(d);
            out.push(e);
        }
        Some((out, depth))
    }

    /// `sum by (server) (x)`: always an aggregation across series.
    fn agg_prefix(&mut self, op: Ident, tail: Pair<'_, Rule>, span: Span) -> Option<(Expr, u32)> {
        let mut grouping = None;
        let mut args = (Vec::new(), 0);
        for c in tail.into_inner() {
            match c.as_rule() {
                Rule::grouping => grouping = self.grouping(c),
                Rule::args => args = self.args(c)?,
                _ => {}
            }
        }
        if functions::aggregation(&op.name).is_none() {
            let d = if functions::function(&op.name).is_some() {
                self.idx
                    .diag(
                        self.file,
                        Code::UnknownFunction,
                        op.span.start,
                        op.span.end,
                        format!("`{}` is a function over time, not an aggregation", op.name),
                    )
                    .help(format!(
                        "write `{0}(x[5m]) by (...)`, with the grouping after the call",
                        op.name
                    ))
            } else {
                unknown_name(self.idx, self.file, "aggregation", &op)
            };
            self.errs.push(d);
            return None;
        }
        self.aggregate(op, args.0, grouping, span, args.1)
    }

    fn aggregate(
        &mut self,
        op: Ident,
        mut args: Vec<Expr>,
        grouping: Option<Grouping>,
        span: Span,
        depth: u32,
    ) -> Option<(Expr, u32)> {
        let info = functions::aggregation(&op.name)?;
        let want = 1 + usize::from(info.param);
        if args.len() != want {
            let shape = if info.param {
                "2 arguments: a number and an expression"
            } else {
                "1 argument: an expression"
            };
            self.err(
                Code::ArgumentCount,
                op.span.start,
                format!("`{}` takes {shape}, found {}", op.name, args.len()),
            );
            return None;
        }
        let arg = Box::new(args.pop()?);
        let param = args.pop().map(Box::new);
        Some((
            Expr::Aggregate(Aggregate {
                op,
                def: info,
                param,
                arg,
                grouping,
                span,
            }),
            depth + 1,
        ))
    }

    /// `name(args) [by|without (...)]`: a function over time when its range
    /// argument is a range, else an aggregation (for the names that are both).
    fn call(&mut self, func: Ident, tail: Pair<'_, Rule>, span: Span) -> Option<(Expr, u32)> {
        let mut grouping = None;
        let mut args = (Vec::new(), 0);
        for c in tail.into_inner() {
            match c.as_rule() {
                Rule::grouping => grouping = self.grouping(c),
                Rule::args => args = self.args(c)?,
                _ => {}
            }
        }
        let agg = functions::aggregation(&func.name);
        let time = functions::function(&func.name);
        let is_agg = match (agg, time) {
            (Some(_), None) => true,
            (Some(_), Some(_)) => !args.0.last().is_some_and(is_range),
            _ => false,
        };
        if is_agg {
            return self.aggregate(func, args.0, grouping, span, args.1);
        }
        Some((
            Expr::Call(Call {
                func,
                def: time,
                args: args.0,
                pool: grouping,
                span,
            }),
            args.1 + 1,
        ))
    }

    /// A selector from its name and the rest (`sel_tail`: matchers, range, offset).
    fn selector(&mut self, metric: Ident, tail: Pair<'_, Rule>, span: Span) -> Option<Selector> {
        let mut sel = Selector {
            metric,
            matchers: Vec::new(),
            range: None,
            offset: None,
            span,
        };
        for c in tail.into_inner() {
            match c.as_rule() {
                Rule::matchers => {
                    for m in c.into_inner().filter(|m| m.as_rule() == Rule::matcher) {
                        let mspan = self.span(&m);
                        let mut name = String::new();
                        let mut op = MatchOp::Equal;
                        let mut value = String::new();
                        for x in m.into_inner() {
                            match x.as_rule() {
                                Rule::label_name => name = x.as_str().to_string(),
                                Rule::match_op => {
                                    op = match x.as_str() {
                                        "!=" => MatchOp::NotEqual,
                                        "=~" => MatchOp::Regex,
                                        "!~" => MatchOp::NotRegex,
                                        _ => MatchOp::Equal,
                                    }
                                }
                                Rule::string => value = unescape(x.as_str()),
                                _ => {}
                            }
                        }
                        sel.matchers.push(LabelMatcher {
                            name,
                            op,
                            value,
                            span: mspan,
                        });
                    }
                }
                Rule::range => {
                    let d = c.into_inner().find(|x| x.as_rule() == Rule::duration)?;
                    sel.range = Some(self.dur(&d)?);
                }
                Rule::offset => {
                    let d = c.into_inner().find(|x| x.as_rule() == Rule::duration)?;
                    sel.offset = Some(self.dur(&d)?);
                }
                _ => {}
            }
        }
        Some(sel)
    }

    fn top_expr(&mut self, p: Pair<'_, Rule>) -> Option<Expr> {
        self.expr(p).map(|(e, _)| e)
    }

    // -------------------------------------------------------------- items

    fn item(&mut self, p: Pair<'_, Rule>) -> Option<Item> {
        let inner = p.into_inner().next()?;
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::let_item => {
                let k = kids(inner);
                let name = self.ident(k.first()?);
                let value = self.top_expr(k.get(1)?.clone())?;
                Some(Item::Let(Let { name, value, span }))
            }
            Rule::evaluate_item => {
                let k = kids(inner);
                let every = self.dur(k.first()?)?;
                Some(Item::Evaluate(Evaluate { every, span }))
            }
            Rule::record_item => {
                let k = kids(inner);
                let name = self.ident(k.first()?);
                let expr = self.top_expr(k.get(1)?.clone())?;
                Some(Item::Record(Record { name, expr, span }))
            }
            Rule::alert_block => self.alert(inner, span).map(Item::Alert),
            Rule::remediate_block => self.remediate(inner, span).map(Item::Remediate),
            Rule::maintenance_block => self.maintenance(inner, span).map(Item::Maintenance),
            Rule::test_block => self.test(inner, span).map(Item::Test),
            Rule::suppress_item => {
                let k = kids(inner);
                let target = self.ident(k.first()?);
                let while_ = self.ident(k.get(1)?);
                let on = k
                    .iter()
                    .find(|c| c.as_rule() == Rule::label_list)
                    .map(|l| self.label_list(l.clone()));
                Some(Item::Suppress(Suppress {
                    target,
                    while_,
                    on,
                    span,
                }))
            }
            _ => None,
        }
    }

    /// The settings of a block: (key, the setting's pair), and the layout;
    /// reports a key given twice.
    fn settings<'p>(
        &mut self,
        block: &str,
        name: &str,
        pairs: Vec<Pair<'p, Rule>>,
        layout: &mut Layout,
    ) -> Vec<(&'static str, Pair<'p, Rule>)> {
        let mut out: Vec<(&'static str, Pair<'p, Rule>)> = Vec::new();
        for wrapper in pairs {
            let Some(s) = wrapper.into_inner().next() else {
                continue;
            };
            let key = setting_key(&s);
            let span = self.span(&s);
            if out.iter().any(|(k, _)| *k == key) {
                let msg = match key {
                    "concurrency" | "concurrency per" => format!(
                        "`{}` is set twice in {block} {name}: a block has at most one `concurrency N` and one `concurrency N per LABEL`",
                        if key == "concurrency" {
                            "concurrency N"
                        } else {
                            "concurrency N per LABEL"
                        }
                    ),
                    "resolve" => format!("`resolve when` is set twice in {block} {name}"),
                    _ => format!("`{key}` is set twice in {block} {name}"),
                };
                self.err(Code::SetTwice, span.start, msg);
                continue;
            }
            layout.push((key, span));
            out.push((key, s));
        }
        out
    }

    fn action(&mut self, p: Pair<'_, Rule>) -> Option<Action> {
        let span = self.span(&p);
        let mut kind = ActionKind::Notify;
        let mut target = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::action_kind => {
                    kind = match c.as_str() {
                        "exec" => ActionKind::Exec,
                        "webhook" => ActionKind::Webhook,
                        _ => ActionKind::Notify,
                    }
                }
                Rule::string => target = self.template(&c),
                _ => {}
            }
        }
        Some(Action {
            kind,
            target: target?,
            span,
        })
    }

    fn max_rate(&mut self, k: &[Pair<'_, Rule>], span: Span) -> Option<MaxRate> {
        let n = k.first()?;
        let count = match n.as_str().parse::<i64>() {
            Ok(c) => c,
            Err(_) => {
                self.err(
                    Code::TooLarge,
                    self.span(n).start,
                    format!("`{}` is too large a count", n.as_str()),
                );
                return None;
            }
        };
        let per = self.dur(k.get(1)?)?;
        Some(MaxRate { count, per, span })
    }

    /// `concurrency N [per LABEL]`: the count as written (the checker
    /// requires at least 1) and the label.
    fn concurrency(&mut self, k: &[Pair<'_, Rule>], span: Span) -> Option<Concurrency> {
        let n = k.first()?;
        let Ok(limit) = n.as_str().parse::<i64>() else {
            self.err(
                Code::TooLarge,
                self.span(n).start,
                format!("`{}` is too large a count", n.as_str()),
            );
            return None;
        };
        let per = k
            .iter()
            .find(|c| c.as_rule() == Rule::label_name)
            .map(|l| self.ident(l));
        Some(Concurrency { limit, per, span })
    }

    /// `approve within D by "who"`.
    fn approve(&mut self, k: &[Pair<'_, Rule>], span: Span) -> Option<Approve> {
        let d = k.iter().find(|c| c.as_rule() == Rule::duration)?;
        let who = k.iter().find(|c| c.as_rule() == Rule::string)?;
        let within = self.dur(d)?;
        Some(Approve {
            within,
            by: self.string(who),
            span,
        })
    }

    fn missing(&mut self, block: &str, name: &Ident, key: &str, example: &str) {
        let d = self
            .idx
            .diag(
                self.file,
                Code::MissingSetting,
                name.span.start,
                name.span.end,
                format!("{block} {} has no `{key}`", name.name),
            )
            .help(format!("add a line such as `{example}`"));
        self.errs.push(d);
    }

    fn alert(&mut self, p: Pair<'_, Rule>, span: Span) -> Option<Alert> {
        let k = kids(p);
        let name = self.ident(k.first()?);
        let mut layout = Vec::new();
        let settings = self.settings("alert", &name.name, k[1..].to_vec(), &mut layout);
        let mut when = None;
        let mut a = Alert {
            name: name.clone(),
            when: Expr::Number(Number {
                value: 0.0,
                kind: NumberKind::Plain,
                text: String::new(),
                span,
            }),
            for_: None,
            keep_firing: None,
            severity: None,
            labels: Vec::new(),
            summary: None,
            runbook: None,
            resolve_when: None,
            layout: Vec::new(),
            span,
        };
        let mut ok = true;
        for (key, s) in settings {
            let v = kids(s);
            let Some(first) = v.first() else { continue };
            match key {
                "when" => when = self.top_expr(first.clone()),
                "resolve" => {
                    a.resolve_when = self.top_expr(first.clone());
                    ok &= a.resolve_when.is_some();
                }
                "for" => a.for_ = self.dur(first),
                "keep_firing" => a.keep_firing = self.dur(first),
                "severity" => {
                    let sev = match first.as_str() {
                        "critical" => AlertSeverity::Critical,
                        "info" => AlertSeverity::Info,
                        _ => AlertSeverity::Warning,
                    };
                    a.severity = Some((sev, self.span(first)));
                }
                "labels" => {
                    for pair in first
                        .clone()
                        .into_inner()
                        .filter(|x| x.as_rule() == Rule::label_pair)
                    {
                        let pk = kids(pair);
                        let (Some(n), Some(v)) = (pk.first(), pk.get(1)) else {
                            continue;
                        };
                        let lname = self.ident(n);
                        if a.labels.iter().any(|l| l.name.name == lname.name) {
                            self.err(
                                Code::SetTwice,
                                lname.span.start,
                                format!("label `{}` is set twice", lname.name),
                            );
                            ok = false;
                        }
                        match self.template(v) {
                            Some(value) => a.labels.push(LabelPair { name: lname, value }),
                            None => ok = false,
                        }
                    }
                }
                "summary" => a.summary = self.template(first),
                "runbook" => a.runbook = self.template(first),
                _ => {}
            }
        }
        a.layout = layout;
        match when {
            Some(w) => a.when = w,
            None => {
                if !a.layout.iter().any(|(k, _)| *k == "when") {
                    self.missing("alert", &name, "when", "when x > 1");
                }
                return None;
            }
        }
        ok.then_some(a)
    }

    fn remediate(&mut self, p: Pair<'_, Rule>, span: Span) -> Option<Remediate> {
        let k = kids(p);
        let name = self.ident(k.first()?);
        let mut layout = Vec::new();
        let settings = self.settings("remediation", &name.name, k[1..].to_vec(), &mut layout);
        let mut on = Vec::new();
        let mut filter = None;
        let mut action = None;
        let mut r = (None, None, None, None, None);
        let mut concurrency = Vec::new();
        let mut breaker = None;
        let mut guard = None;
        let mut approve = None;
        let mut mode = None;
        let mut ok = true;
        for (key, s) in settings {
            let sspan = self.span(&s);
            let v = kids(s);
            let Some(first) = v.first() else { continue };
            match key {
                "concurrency" | "concurrency per" => match self.concurrency(&v, sspan) {
                    Some(c) => concurrency.push(c),
                    None => ok = false,
                },
                "breaker" => {
                    breaker = self.max_rate(&v, sspan);
                    ok &= breaker.is_some();
                }
                "guard" => {
                    guard = self.top_expr(first.clone());
                    ok &= guard.is_some();
                }
                "approve" => {
                    approve = self.approve(&v, sspan);
                    ok &= approve.is_some();
                }
                "mode" => mode = Some(mode_of(first, self.span(first))),
                "on" => on = v.iter().map(|x| self.ident(x)).collect(),
                "where" => filter = self.where_or(first.clone(), &mut 0),
                "do" => action = self.action(first.clone()),
                "timeout" => r.0 = self.dur(first),
                "cooldown" => r.1 = self.dur(first),
                "max" => r.2 = self.max_rate(&v, sspan),
                "verify" => r.3 = self.dur(first),
                "escalate" => r.4 = self.action(first.clone()),
                _ => {}
            }
        }
        if on.is_empty() {
            self.missing("remediation", &name, "on", "on HighLatency");
        }
        if action.is_none() && !layout.iter().any(|(k, _)| *k == "do") {
            self.missing("remediation", &name, "do", "do notify \"oncall\"");
        }
        Some(Remediate {
            name,
            on,
            filter,
            action: action?,
            timeout: r.0,
            cooldown: r.1,
            max: r.2,
            verify: r.3,
            escalate: r.4,
            concurrency,
            breaker,
            guard,
            approve,
            mode,
            layout,
            span,
        })
        .filter(|_| ok)
    }

    fn where_or(&mut self, p: Pair<'_, Rule>, depth: &mut u32) -> Option<Where> {
        let mut acc: Option<Where> = None;
        for c in p.into_inner().filter(|c| c.as_rule() == Rule::where_and) {
            let mut and_acc: Option<Where> = None;
            for a in c.into_inner().filter(|c| c.as_rule() == Rule::where_atom) {
                let atom = self.where_atom(a, depth)?;
                and_acc = Some(match and_acc {
                    None => atom,
                    Some(l) => self.where_join(l, atom, false, depth)?,
                });
            }
            let and_acc = and_acc?;
            acc = Some(match acc {
                None => and_acc,
                Some(l) => self.where_join(l, and_acc, true, depth)?,
            });
        }
        acc
    }

    fn where_join(&mut self, l: Where, r: Where, or: bool, depth: &mut u32) -> Option<Where> {
        *depth += 1;
        if *depth > MAX_DEPTH {
            let pos = r.conds().first().map_or(0, |c| c.0.span.start);
            self.err(
                Code::TooDeep,
                pos,
                format!("this condition has more than {MAX_DEPTH} parts"),
            );
            return None;
        }
        Some(if or {
            Where::Or(Box::new(l), Box::new(r))
        } else {
            Where::And(Box::new(l), Box::new(r))
        })
    }

    fn where_atom(&mut self, p: Pair<'_, Rule>, depth: &mut u32) -> Option<Where> {
        let c = p.into_inner().find(|c| !is_noise(c.as_rule()))?;
        match c.as_rule() {
            Rule::where_or => Some(Where::Paren(Box::new(self.where_or(c, depth)?))),
            Rule::where_cond => {
                let k = kids(c);
                let label = self.ident(k.first()?);
                let op = match k.get(1)?.as_str() {
                    "!=" => WhereOp::Ne,
                    "=~" => WhereOp::Regex,
                    "!~" => WhereOp::NotRegex,
                    _ => WhereOp::Eq,
                };
                let value = self.string(k.get(2)?);
                Some(Where::Cond { label, op, value })
            }
            _ => None,
        }
    }

    fn maintenance(&mut self, p: Pair<'_, Rule>, span: Span) -> Option<Maintenance> {
        let k = kids(p);
        let name = self.ident(k.first()?);
        let mut layout = Vec::new();
        let settings = self.settings("maintenance", &name.name, k[1..].to_vec(), &mut layout);
        let mut when = None;
        let mut win = None;
        let mut action = None;
        let mut r = (None, None, None);
        let mut guard = None;
        let mut mode = None;
        let mut ok = true;
        for (key, s) in settings {
            let sspan = self.span(&s);
            let v = kids(s);
            let Some(first) = v.first() else { continue };
            match key {
                "guard" => {
                    guard = self.top_expr(first.clone());
                    ok &= guard.is_some();
                }
                "mode" => mode = Some(mode_of(first, self.span(first))),
                "when" => when = self.top_expr(first.clone()),
                "window" => {
                    let text = self.string(first);
                    let window = window::Window::parse(&text.value).ok();
                    win = Some(WindowSpec { text, window });
                }
                "do" => action = self.action(first.clone()),
                "timeout" => r.0 = self.dur(first),
                "cooldown" => r.1 = self.dur(first),
                "max" => r.2 = self.max_rate(&v, sspan),
                _ => {}
            }
        }
        for (key, example) in [
            ("when", "when time_to(disk.free_bytes[6h], 0) < 48h"),
            ("window", "window \"Sat 02:00-04:00 UTC\""),
            ("do", "do exec \"...\""),
        ] {
            if !layout.iter().any(|(k, _)| *k == key) {
                self.missing("maintenance", &name, key, example);
            }
        }
        Some(Maintenance {
            name,
            when: when?,
            window: win?,
            action: action?,
            timeout: r.0,
            cooldown: r.1,
            max: r.2,
            guard,
            mode,
            layout,
            span,
        })
        .filter(|_| ok)
    }

    fn test(&mut self, p: Pair<'_, Rule>, span: Span) -> Option<TestBlock> {
        let k = kids(p);
        let name = self.string(k.first()?);
        let mut t = TestBlock {
            name,
            interval: None,
            series: Vec::new(),
            expects: Vec::new(),
            span,
        };
        let mut ok = true;
        for wrapper in &k[1..] {
            let Some(line) = wrapper.clone().into_inner().next() else {
                continue;
            };
            let lspan = self.span(&line);
            let rule = line.as_rule();
            let v = kids(line);
            match rule {
                Rule::interval_line => {
                    if t.interval.is_some() {
                        self.err(
                            Code::SetTwice,
                            lspan.start,
                            format!("`interval` is set twice in test {:?}", t.name.value),
                        );
                        ok = false;
                    }
                    t.interval = v.first().and_then(|d| self.dur(d));
                    ok &= t.interval.is_some();
                }
                Rule::series_line => {
                    let (Some(sel), Some(vals)) = (v.first(), v.get(1)) else {
                        continue;
                    };
                    let sspan = self.span(sel);
                    let mut parts = sel.clone().into_inner();
                    let (Some(name), Some(tail)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let name = self.ident(&name);
                    let Some(selector) = self.selector(name, tail, sspan) else {
                        ok = false;
                        continue;
                    };
                    let values = self.string(vals);
                    let points = series::parse(&values.value).ok();
                    t.series.push(TestSeries {
                        selector,
                        values,
                        points,
                        span: lspan,
                    });
                }
                Rule::expect_line => match self.expect(v, lspan) {
                    Some(e) => t.expects.push(e),
                    None => ok = false,
                },
                _ => {}
            }
        }
        ok.then_some(t)
    }

    fn expect(&mut self, v: Vec<Pair<'_, Rule>>, span: Span) -> Option<Expect> {
        let mut it = v.into_iter();
        let target_pair = it.next()?;
        let target = match target_pair.as_rule() {
            Rule::value_target => {
                let e = target_pair
                    .into_inner()
                    .find(|c| c.as_rule() == Rule::expr)?;
                ExpectTarget::Value(self.top_expr(e)?)
            }
            _ => ExpectTarget::Alert(self.ident(&target_pair)),
        };
        let at = self.dur(&it.next()?)?;
        let res_pair = it.next()?.into_inner().next()?;
        let result = match res_pair.as_rule() {
            Rule::state_word => match res_pair.as_str() {
                "firing" => ExpectResult::State(AlertState::Firing),
                "pending" => ExpectResult::State(AlertState::Pending),
                "resolved" => ExpectResult::State(AlertState::Resolved),
                _ => ExpectResult::None,
            },
            Rule::action_word => ExpectResult::Action(match res_pair.as_str() {
                "escalated" => ActionState::Escalated,
                "suppressed" => ActionState::Suppressed,
                "awaiting_approval" => ActionState::AwaitingApproval,
                _ => ActionState::Run,
            }),
            _ => {
                let rspan = self.span(&res_pair);
                let mut negative = false;
                let mut num = None;
                for c in res_pair.into_inner() {
                    match c.as_rule() {
                        Rule::sign => negative = c.as_str() == "-",
                        _ => num = self.number(&c),
                    }
                }
                let mut n = num?;
                if negative {
                    n.value = -n.value;
                    n.text = format!("-{}", n.text);
                }
                n.span = rspan;
                ExpectResult::Value(n)
            }
        };
        let mut labels = Vec::new();
        if let Some(map) = it.next() {
            for pair in map.into_inner().filter(|x| x.as_rule() == Rule::label_pair) {
                let pk = kids(pair);
                let (Some(n), Some(v)) = (pk.first(), pk.get(1)) else {
                    continue;
                };
                labels.push((self.ident(n), self.string(v)));
            }
        }
        Some(Expect {
            target,
            at,
            result,
            labels,
            span,
        })
    }
}

/// `dry-run` or `auto` (the grammar allows nothing else).
fn mode_of(p: &Pair<'_, Rule>, span: Span) -> (Mode, Span) {
    let mode = if p.as_str() == "dry-run" {
        Mode::DryRun
    } else {
        Mode::Auto
    };
    (mode, span)
}

fn setting_key(p: &Pair<'_, Rule>) -> &'static str {
    use Rule as R;
    match p.as_rule() {
        R::when_setting => "when",
        R::for_setting => "for",
        R::keep_firing_setting => "keep_firing",
        R::severity_setting => "severity",
        R::labels_setting => "labels",
        R::summary_setting => "summary",
        R::runbook_setting => "runbook",
        R::on_setting => "on",
        R::where_setting => "where",
        R::do_setting => "do",
        R::timeout_setting => "timeout",
        R::cooldown_setting => "cooldown",
        R::max_setting => "max",
        R::verify_setting => "verify",
        R::escalate_setting => "escalate",
        R::window_setting => "window",
        R::resolve_setting => "resolve",
        // A block may have one `concurrency N` and one `concurrency N per LABEL`.
        R::concurrency_setting if p.clone().into_inner().any(|c| c.as_rule() == R::kw_per) => {
            "concurrency per"
        }
        R::concurrency_setting => "concurrency",
        R::breaker_setting => "breaker",
        R::guard_setting => "guard",
        R::approve_setting => "approve",
        R::mode_setting => "mode",
        _ => "?",
    }
}

/// Whether an argument is written as a range (`x[5m]`, possibly in parentheses).
fn is_range(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::Selector(s) if s.range.is_some())
}

/// "unknown function `p96`", with the closest known name as help (or this
/// language's way to write a PromQL function: `functions::help_for`).
pub(crate) fn unknown_name(idx: &LineIndex, file: &str, what: &str, name: &Ident) -> Diagnostic {
    let d = idx.diag(
        file,
        Code::UnknownFunction,
        name.span.start,
        name.span.end,
        format!("unknown {what} `{}`", name.name),
    );
    match functions::help_for(&name.name) {
        Some(h) => d.help(h),
        None => d,
    }
}

/// The value of a string literal (with its quotes): `\"` and `\\` unescaped.
fn unescape(lit: &str) -> String {
    let inner = lit
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(lit);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Bare names that a `let` defines become constants.
fn resolve_constants(file: &mut RuleFile) {
    let names: HashSet<String> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Let(l) => Some(l.name.name.clone()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return;
    }
    for item in &mut file.items {
        match item {
            Item::Let(l) => resolve_in(&mut l.value, &names),
            Item::Alert(a) => {
                resolve_in(&mut a.when, &names);
                if let Some(x) = &mut a.resolve_when {
                    resolve_in(x, &names);
                }
            }
            Item::Record(r) => resolve_in(&mut r.expr, &names),
            Item::Remediate(r) => {
                if let Some(x) = &mut r.guard {
                    resolve_in(x, &names);
                }
            }
            Item::Maintenance(m) => {
                resolve_in(&mut m.when, &names);
                if let Some(x) = &mut m.guard {
                    resolve_in(x, &names);
                }
            }
            Item::Test(t) => {
                for e in &mut t.expects {
                    if let ExpectTarget::Value(x) = &mut e.target {
                        resolve_in(x, &names);
                    }
                }
            }
            Item::Evaluate(_) | Item::Suppress(_) => {}
        }
    }
}

fn resolve_in(e: &mut Expr, names: &HashSet<String>) {
    match e {
        Expr::Selector(s)
            if s.matchers.is_empty()
                && s.range.is_none()
                && s.offset.is_none()
                && s.span == s.metric.span
                && names.contains(&s.metric.name) =>
        {
            *e = Expr::Const(s.metric.clone());
        }
        Expr::Call(c) => c.args.iter_mut().for_each(|a| resolve_in(a, names)),
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                resolve_in(p, names);
            }
            resolve_in(&mut a.arg, names);
        }
        Expr::Binary(b) => {
            resolve_in(&mut b.lhs, names);
            resolve_in(&mut b.rhs, names);
        }
        Expr::Neg(x, _) | Expr::Paren(x, _) => resolve_in(x, names),
        _ => {}
    }
}
