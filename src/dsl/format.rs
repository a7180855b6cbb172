//! The formatter: one canonical layout, comments kept.
//!
//! Layout: items start in column 1; a blank line separates blocks (`alert`,
//! `remediate`, `maintenance`, `test`) from whatever is next to them, and
//! other blank lines are kept (collapsed to one). Inside a block, settings
//! are indented by 2 and keep their order; each key is padded to 8
//! characters so values line up in column 11 (`keep_firing` and longer keys
//! take a single space), as docs/language.md shows. Test lines are single-spaced.
//! Expressions are printed with single spaces around binary operators and
//! none inside brackets (`p95(x{a="b"}[5m]) by (server)`); an aggregation
//! puts its grouping first (`max by (server) (x)`), a function over time
//! after the call. An expression longer than the line (100 columns) is
//! broken before the operators of its loosest chain when two or more of that
//! chain's operands are long, continuation lines aligned with the start of
//! the expression and a broken inner chain indented by two more; a single
//! long operand is broken inside while the short ones stay on its lines;
//! an aggregation breaks inside its parentheses; a long `record` breaks after
//! `=`. Selectors, calls and literals are never broken. Literals keep their text (`1h30m` stays `1h30m`, `99.9%` stays `99.9%`);
//! strings are re-escaped.
//!
//! Comments: a comment on its own line stays before the setting or item that
//! follows it; a comment after code stays at the end of that code's line (two
//! spaces before `#`). A comment inside a multi-line setting moves to just
//! before that setting.

use super::ast::*;
use super::diag::LineIndex;

/// Lines are broken past this width.
pub const WIDTH: usize = 100;

struct Comment {
    start: usize,
    text: String,
}

struct Anchor {
    start: usize,
    end: usize,
    indent: usize,
    /// Rendered lines, relative to `indent`.
    lines: Vec<String>,
    /// For the first anchor of a top-level item: whether the item is a block.
    item: Option<bool>,
    open: bool,
    close: bool,
}

/// Formats a parsed file; `src` is the text it was parsed from.
pub fn format_file(src: &str, file: &RuleFile) -> String {
    let idx = LineIndex::new(src);
    let comments = collect_comments(src);
    let mut anchors: Vec<Anchor> = Vec::new();
    for item in &file.items {
        item_anchors(src, item, &mut anchors);
    }
    // Assign comments to anchors.
    let mut leading: Vec<Vec<&Comment>> = anchors.iter().map(|_| Vec::new()).collect();
    let mut trailing: Vec<Option<&Comment>> = anchors.iter().map(|_| None).collect();
    let mut tail: Vec<&Comment> = Vec::new();
    for c in &comments {
        let (cline, _) = idx.line_col(c.start);
        // The last anchor that starts before the comment.
        let k = anchors.partition_point(|a| a.start <= c.start);
        if k > 0 {
            let a = &anchors[k - 1];
            let (end_line, _) = idx.line_col(a.end.saturating_sub(1).max(a.start));
            if c.start >= a.end && cline == end_line && trailing[k - 1].is_none() {
                trailing[k - 1] = Some(c);
                continue;
            }
            if c.start < a.end {
                leading[k - 1].push(c);
                continue;
            }
        }
        match anchors.get(k) {
            Some(_) => leading[k].push(c),
            None => tail.push(c),
        }
    }

    let mut out: Vec<String> = Vec::new();
    let mut prev_item_block: Option<bool> = None;
    let mut after_open = false;
    let blank_before = |pos: usize| -> bool {
        let (line, _) = idx.line_col(pos);
        let ls = idx.line_start(line);
        line > 1 && src[ls..pos].trim().is_empty() && idx.line_text(line - 1).trim().is_empty()
    };
    for (i, a) in anchors.iter().enumerate() {
        let comment_indent = if a.close { a.indent + 2 } else { a.indent };
        let mut first_unit = true;
        let mut force_blank = false;
        if let Some(is_block) = a.item {
            if let Some(prev) = prev_item_block {
                force_blank = prev || is_block;
            }
            prev_item_block = Some(is_block);
        }
        for c in &leading[i] {
            let blank = (first_unit && force_blank) || blank_before(c.start);
            if blank && !out.is_empty() && !after_open {
                out.push(String::new());
            }
            out.push(format!("{}{}", " ".repeat(comment_indent), c.text));
            first_unit = false;
            after_open = false;
        }
        let blank = (first_unit && force_blank) || blank_before(a.start);
        if blank && !out.is_empty() && !after_open && !a.close {
            out.push(String::new());
        }
        let n = a.lines.len();
        for (j, l) in a.lines.iter().enumerate() {
            let mut line = if l.is_empty() {
                String::new()
            } else {
                format!("{}{}", " ".repeat(a.indent), l)
            };
            if j + 1 == n
                && let Some(c) = trailing[i]
            {
                line.push_str("  ");
                line.push_str(&c.text);
            }
            out.push(line);
        }
        after_open = a.open;
    }
    for (j, c) in tail.iter().enumerate() {
        let blank = blank_before(c.start) || (j == 0 && prev_item_block == Some(true));
        if blank && !out.is_empty() {
            out.push(String::new());
        }
        out.push(c.text.clone());
    }
    if out.is_empty() {
        return String::new();
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Every comment in the text (strings skipped), with its text trimmed.
fn collect_comments(src: &str) -> Vec<Comment> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => {
                let start = i;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push(Comment {
                    start,
                    text: src[start..i].trim_end().to_string(),
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// The position just after the `{` that opens a block whose name ends at `from`.
fn open_brace_end(src: &str, from: usize) -> usize {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'{' => return i + 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    from
}

fn item_anchors(src: &str, item: &Item, out: &mut Vec<Anchor>) {
    let span = item.span();
    let line = |start: usize, end: usize, indent: usize, lines: Vec<String>| Anchor {
        start,
        end,
        indent,
        lines,
        item: None,
        open: false,
        close: false,
    };
    let first = out.len();
    // `suppress` is a one-line item, as `let` and `record` are.
    let is_block = matches!(
        item,
        Item::Alert(_) | Item::Remediate(_) | Item::Maintenance(_) | Item::Test(_)
    );
    match item {
        Item::Let(l) => {
            let lines = prefixed(&format!("let {} = ", l.name.name), &l.value, 0);
            out.push(line(span.start, span.end, 0, lines));
        }
        Item::Evaluate(e) => {
            out.push(line(
                span.start,
                span.end,
                0,
                vec![format!("evaluate every {}", e.every.text)],
            ));
        }
        Item::Suppress(x) => {
            let mut text = format!("suppress {} while {}", x.target.name, x.while_.name);
            if let Some(on) = &x.on {
                let names: Vec<&str> = on.iter().map(|l| l.name.as_str()).collect();
                text.push_str(&format!(" on ({})", names.join(", ")));
            }
            out.push(line(span.start, span.end, 0, vec![text]));
        }
        Item::Record(r) => {
            let head = format!("record {} = ", r.name.name);
            let flat = render(&r.expr);
            let lines = if head.len() + flat.len() <= WIDTH {
                vec![format!("{head}{flat}")]
            } else {
                let mut v = vec![head.trim_end().to_string()];
                v.extend(layout(&r.expr, 2).into_iter().map(|l| format!("  {l}")));
                v
            };
            out.push(line(span.start, span.end, 0, lines));
        }
        Item::Alert(a) => {
            let open = open_brace_end(src, a.name.span.end);
            out.push(Anchor {
                open: true,
                ..line(
                    span.start,
                    open,
                    0,
                    vec![format!("alert {} {{", a.name.name)],
                )
            });
            for (key, s) in &a.layout {
                let lines = match *key {
                    "when" => setting_expr(key, &a.when),
                    "resolve" => match &a.resolve_when {
                        Some(x) => setting_expr("resolve when", x),
                        None => continue,
                    },
                    "for" => setting(key, opt_text(&a.for_)),
                    "keep_firing" => setting(key, opt_text(&a.keep_firing)),
                    "severity" => setting(key, a.severity().name().to_string()),
                    "labels" => setting(key, label_map(&a.labels)),
                    "summary" => setting(
                        key,
                        a.summary
                            .as_ref()
                            .map(|t| quote(&t.raw))
                            .unwrap_or_default(),
                    ),
                    "runbook" => setting(
                        key,
                        a.runbook
                            .as_ref()
                            .map(|t| quote(&t.raw))
                            .unwrap_or_default(),
                    ),
                    _ => continue,
                };
                out.push(line(s.start, s.end, 2, lines));
            }
            out.push(close_anchor(span));
        }
        Item::Remediate(r) => {
            let open = open_brace_end(src, r.name.span.end);
            out.push(Anchor {
                open: true,
                ..line(
                    span.start,
                    open,
                    0,
                    vec![format!("remediate {} {{", r.name.name)],
                )
            });
            for (key, s) in &r.layout {
                let lines = match *key {
                    "guard" => match &r.guard {
                        Some(x) => setting_expr(key, x),
                        None => continue,
                    },
                    "concurrency" | "concurrency per" => {
                        let per = *key == "concurrency per";
                        match r.concurrency.iter().find(|c| c.per.is_some() == per) {
                            Some(c) => setting("concurrency", render_concurrency(c)),
                            None => continue,
                        }
                    }
                    _ => Vec::new(),
                };
                if !lines.is_empty() {
                    out.push(line(s.start, s.end, 2, lines));
                    continue;
                }
                let value = match *key {
                    "on" => {
                        r.on.iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                    "where" => r.filter.as_ref().map(render_where).unwrap_or_default(),
                    "do" => render_action(&r.action),
                    "timeout" => opt_text(&r.timeout),
                    "cooldown" => opt_text(&r.cooldown),
                    "max" => r.max.as_ref().map(render_max).unwrap_or_default(),
                    "verify" => format!("within {}", opt_text(&r.verify)),
                    "escalate" => r.escalate.as_ref().map(render_action).unwrap_or_default(),
                    "breaker" => r.breaker.as_ref().map(render_max).unwrap_or_default(),
                    "approve" => r.approve.as_ref().map(render_approve).unwrap_or_default(),
                    "mode" => r.mode.map(|m| m.0.name().to_string()).unwrap_or_default(),
                    _ => continue,
                };
                out.push(line(s.start, s.end, 2, setting(key, value)));
            }
            out.push(close_anchor(span));
        }
        Item::Maintenance(m) => {
            let open = open_brace_end(src, m.name.span.end);
            out.push(Anchor {
                open: true,
                ..line(
                    span.start,
                    open,
                    0,
                    vec![format!("maintenance {} {{", m.name.name)],
                )
            });
            for (key, s) in &m.layout {
                let lines = match *key {
                    "when" => setting_expr(key, &m.when),
                    "window" => setting(key, quote(&m.window.text.value)),
                    "do" => setting(key, render_action(&m.action)),
                    "timeout" => setting(key, opt_text(&m.timeout)),
                    "cooldown" => setting(key, opt_text(&m.cooldown)),
                    "max" => setting(key, m.max.as_ref().map(render_max).unwrap_or_default()),
                    "guard" => match &m.guard {
                        Some(x) => setting_expr(key, x),
                        None => continue,
                    },
                    "mode" => setting(
                        key,
                        m.mode.map(|m| m.0.name().to_string()).unwrap_or_default(),
                    ),
                    _ => continue,
                };
                out.push(line(s.start, s.end, 2, lines));
            }
            out.push(close_anchor(span));
        }
        Item::Test(t) => {
            let open = open_brace_end(src, t.name.span.end);
            out.push(Anchor {
                open: true,
                ..line(
                    span.start,
                    open,
                    0,
                    vec![format!("test {} {{", quote(&t.name.value))],
                )
            });
            let mut lines: Vec<(usize, usize, Vec<String>)> = Vec::new();
            if let Some(i) = &t.interval {
                let start = src[..i.span.start]
                    .rfind("interval")
                    .unwrap_or(i.span.start);
                lines.push((start, i.span.end, vec![format!("interval {}", i.text)]));
            }
            for s in &t.series {
                lines.push((
                    s.span.start,
                    s.span.end,
                    vec![format!(
                        "series {} = {}",
                        render(&Expr::Selector(s.selector.clone())),
                        quote(&s.values.value)
                    )],
                ));
            }
            for e in &t.expects {
                lines.push((e.span.start, e.span.end, render_expect(e)));
            }
            lines.sort_by_key(|l| l.0);
            for (s, e, l) in lines {
                out.push(line(s, e, 2, l));
            }
            out.push(close_anchor(span));
        }
    }
    if let Some(a) = out.get_mut(first) {
        a.item = Some(is_block);
    }
}

fn close_anchor(span: Span) -> Anchor {
    Anchor {
        start: span.end.saturating_sub(1),
        end: span.end,
        indent: 0,
        lines: vec!["}".to_string()],
        item: None,
        open: false,
        close: true,
    }
}

fn opt_text(d: &Option<Dur>) -> String {
    d.as_ref().map(|d| d.text.clone()).unwrap_or_default()
}

/// The key of a setting, padded so that values start in column 11.
fn key_prefix(key: &str) -> String {
    format!("{key:<8} ")
}

fn setting(key: &str, value: String) -> Vec<String> {
    vec![format!("{}{value}", key_prefix(key))]
}

fn setting_expr(key: &str, e: &Expr) -> Vec<String> {
    prefixed(&key_prefix(key), e, 2)
}

/// `prefix` then the expression, continuation lines aligned after the prefix.
fn prefixed(prefix: &str, e: &Expr, indent: usize) -> Vec<String> {
    let col = indent + prefix.chars().count();
    let lines = layout(e, col);
    let pad = " ".repeat(prefix.chars().count());
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{prefix}{l}")
            } else {
                format!("{pad}{l}")
            }
        })
        .collect()
}

fn label_map(labels: &[LabelPair]) -> String {
    if labels.is_empty() {
        return "{}".to_string();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{} = {}", l.name.name, quote(&l.value.raw)))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

fn render_action(a: &Action) -> String {
    format!("{} {}", a.kind.name(), quote(&a.target.raw))
}

fn render_max(m: &MaxRate) -> String {
    format!("{} per {}", m.count, m.per.text)
}

fn render_concurrency(c: &Concurrency) -> String {
    match &c.per {
        Some(l) => format!("{} per {}", c.limit, l.name),
        None => c.limit.to_string(),
    }
}

fn render_approve(a: &Approve) -> String {
    format!("within {} by {}", a.within.text, quote(&a.by.value))
}

fn render_where(w: &Where) -> String {
    match w {
        Where::Cond { label, op, value } => {
            format!("{} {} {}", label.name, op.symbol(), quote(&value.value))
        }
        Where::And(a, b) => format!("{} and {}", render_where(a), render_where(b)),
        Where::Or(a, b) => format!("{} or {}", render_where(a), render_where(b)),
        Where::Paren(a) => format!("({})", render_where(a)),
    }
}

fn render_expect(e: &Expect) -> Vec<String> {
    let target = match &e.target {
        ExpectTarget::Value(x) => format!("value({})", render(x)),
        ExpectTarget::Alert(a) => a.name.clone(),
    };
    let result = match &e.result {
        ExpectResult::None => "none".to_string(),
        ExpectResult::State(st) => st.word().to_string(),
        ExpectResult::Action(st) => st.word().to_string(),
        ExpectResult::Value(n) => n.text.clone(),
    };
    let mut s = format!("expect {target} at {} == {result}", e.at.text);
    if !e.labels.is_empty() {
        let inner: Vec<String> = e
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", k.name, quote(&v.value)))
            .collect();
        s.push_str(&format!(" {{ {} }}", inner.join(", ")));
    }
    vec![s]
}

/// A string literal for a value: `\` and `"` escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn grouping(g: &Grouping) -> String {
    let names: Vec<&str> = g.labels.iter().map(|l| l.name.as_str()).collect();
    format!(
        "{} ({})",
        if g.without { "without" } else { "by" },
        names.join(", ")
    )
}

/// The expression on one line.
pub fn render(e: &Expr) -> String {
    let mut s = String::new();
    write_expr(&mut s, e);
    s
}

fn write_expr(s: &mut String, e: &Expr) {
    match e {
        Expr::Number(n) => s.push_str(&n.text),
        Expr::Duration(d) => s.push_str(&d.text),
        Expr::Str(x) => s.push_str(&quote(&x.value)),
        Expr::Const(i) => s.push_str(&i.name),
        Expr::Selector(sel) => {
            s.push_str(&sel.metric.name);
            if !sel.matchers.is_empty() {
                s.push('{');
                for (i, m) in sel.matchers.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(&m.name);
                    s.push_str(m.op.symbol());
                    s.push_str(&quote(&m.value));
                }
                s.push('}');
            }
            if let Some(r) = &sel.range {
                s.push('[');
                s.push_str(&r.text);
                s.push(']');
            }
            if let Some(o) = &sel.offset {
                s.push_str(" offset ");
                s.push_str(&o.text);
            }
        }
        Expr::Call(c) => {
            s.push_str(&c.func.name);
            s.push('(');
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_expr(s, a);
            }
            s.push(')');
            if let Some(g) = &c.pool {
                s.push(' ');
                s.push_str(&grouping(g));
            }
        }
        Expr::Aggregate(a) => {
            s.push_str(&a.op.name);
            if let Some(g) = &a.grouping {
                s.push(' ');
                s.push_str(&grouping(g));
                s.push(' ');
            }
            s.push('(');
            if let Some(p) = &a.param {
                write_expr(s, p);
                s.push_str(", ");
            }
            write_expr(s, &a.arg);
            s.push(')');
        }
        Expr::Binary(b) => {
            write_expr(s, &b.lhs);
            s.push(' ');
            s.push_str(&op_text(b));
            s.push(' ');
            write_expr(s, &b.rhs);
        }
        Expr::Neg(x, _) => {
            s.push('-');
            write_expr(s, x);
        }
        Expr::Paren(x, _) => {
            s.push('(');
            write_expr(s, x);
            s.push(')');
        }
    }
}

fn op_text(b: &Binary) -> String {
    let mut s = b.op.symbol().to_string();
    if b.return_bool {
        s.push_str(" bool");
    }
    if let Some(on) = &b.on {
        let names: Vec<&str> = on.labels.iter().map(|l| l.name.as_str()).collect();
        s.push_str(&format!(" on ({})", names.join(", ")));
    }
    s
}

/// Operands up to this long are not worth a line of their own.
const SHORT: usize = 20;

/// The operands and operators of a chain of binary operators of one
/// precedence (`a / b * c` is [a, b, c] with [/, *]).
fn chain(b: &Binary) -> (Vec<&Expr>, Vec<&Binary>) {
    let mut operands = Vec::new();
    let mut ops = Vec::new();
    if b.op == BinOp::Pow {
        // Right-associative: a ^ (b ^ c).
        operands.push(&*b.lhs);
        ops.push(b);
        let mut rhs = &*b.rhs;
        while let Expr::Binary(r) = rhs {
            if r.op != BinOp::Pow {
                break;
            }
            operands.push(&*r.lhs);
            ops.push(r);
            rhs = &*r.rhs;
        }
        operands.push(rhs);
        return (operands, ops);
    }
    let mut rights = Vec::new();
    let mut cur = b;
    loop {
        rights.push((cur, &*cur.rhs));
        match &*cur.lhs {
            Expr::Binary(l) if l.op.precedence() == b.op.precedence() => cur = l,
            other => {
                operands.push(other);
                break;
            }
        }
    }
    for (op, rhs) in rights.into_iter().rev() {
        ops.push(op);
        operands.push(rhs);
    }
    (operands, ops)
}

/// The expression in lines of about [`WIDTH`] columns, the first line
/// starting at column `col`; continuation lines carry their indentation
/// relative to `col`. A chain of operators of one precedence is broken before
/// each operator when two or more of its operands are long, continuation
/// lines of a broken operand chain indented by two more; when only one operand is
/// long, the short ones stay on its first or last line and only that operand
/// is broken. Literals, selectors and calls are never broken.
fn layout(e: &Expr, col: usize) -> Vec<String> {
    let flat = render(e);
    if col + flat.chars().count() <= WIDTH {
        return vec![flat];
    }
    match e {
        Expr::Binary(b) => {
            let (operands, ops) = chain(b);
            let flats: Vec<String> = operands.iter().map(|o| render(o)).collect();
            let long: Vec<usize> = (0..operands.len())
                .filter(|&i| flats[i].chars().count() > SHORT)
                .collect();
            if long.len() == 1 {
                let k = long[0];
                let mut prefix = String::new();
                for i in 0..k {
                    prefix.push_str(&flats[i]);
                    prefix.push(' ');
                    prefix.push_str(&op_text(ops[i]));
                    prefix.push(' ');
                }
                let mut suffix = String::new();
                for i in k + 1..operands.len() {
                    suffix.push(' ');
                    suffix.push_str(&op_text(ops[i - 1]));
                    suffix.push(' ');
                    suffix.push_str(&flats[i]);
                }
                let inner = layout(operands[k], col + prefix.chars().count());
                let pad = " ".repeat(prefix.chars().count());
                let n = inner.len();
                return inner
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let l = if i == 0 {
                            format!("{prefix}{l}")
                        } else {
                            format!("{pad}{l}")
                        };
                        if i + 1 == n {
                            format!("{l}{suffix}")
                        } else {
                            l
                        }
                    })
                    .collect();
            }
            let mut lines = Vec::new();
            for (i, operand) in operands.iter().enumerate() {
                let head = if i == 0 {
                    String::new()
                } else {
                    format!("{} ", op_text(ops[i - 1]))
                };
                let inner = layout(operand, col + head.chars().count());
                // A broken operator chain inside is indented by two more; a
                // broken aggregation or parenthesis keeps its own shape.
                let width = if matches!(operand, Expr::Binary(_)) {
                    2
                } else {
                    head.chars().count()
                };
                let pad = " ".repeat(width);
                for (j, l) in inner.into_iter().enumerate() {
                    if j == 0 {
                        lines.push(format!("{head}{l}"));
                    } else {
                        lines.push(format!("{pad}{l}"));
                    }
                }
            }
            lines
        }
        Expr::Paren(x, _) => {
            let inner = layout(x, col + 1);
            if inner.len() == 1 {
                return vec![flat];
            }
            let n = inner.len();
            inner
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    let l = if i == 0 {
                        format!("({l}")
                    } else {
                        format!(" {l}")
                    };
                    if i + 1 == n { format!("{l})") } else { l }
                })
                .collect()
        }
        Expr::Aggregate(a) if a.param.is_none() => {
            let head = match &a.grouping {
                Some(g) => format!("{} {} (", a.op.name, grouping(g)),
                None => format!("{}(", a.op.name),
            };
            let mut lines = vec![head];
            lines.extend(
                layout(&a.arg, col + 2)
                    .into_iter()
                    .map(|l| format!("  {l}")),
            );
            lines.push(")".to_string());
            lines
        }
        _ => vec![flat],
    }
}
