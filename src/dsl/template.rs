//! Templates: `"p95 of {{gen_ai.tool.name}} is {{value | duration}}"`.
//!
//! `{{name}}` is a label of the alert's series, or one of `value`, `alert`,
//! `severity`; `| duration`, `| percent` and `| bytes` format a number.
//! Spaces inside the braces are free. Anything else is text.
//!
//! Action templates are filled so that a label value can never change what
//! runs: an `exec` template is split into arguments first, like a shell
//! splits words but on the template's own text only ([`split_exec`]), and
//! then each placeholder is filled in, so a value is always part of exactly
//! one argument and never passes through a shell ([`exec_argv`]); a value
//! that would begin an argument with `-` is refused unless a `--` argument
//! comes before it. In a `webhook` URL every value is percent-encoded
//! ([`webhook_url`]), so it stays one path segment or query value.

use super::ast::{Filter, Template, TemplatePart};
use super::diag::LineIndex;

/// Names every template may use, whatever the expression.
pub const ALWAYS: [&str; 3] = ["value", "alert", "severity"];

/// Parses a string literal (`lit` is its source text with the quotes,
/// starting at byte `at` of the file) into a template. On error, returns the
/// byte offset of the problem and a message.
pub fn parse(lit: &str, at: usize, idx: &LineIndex) -> Result<Template, (usize, String)> {
    let inner = &lit[1..lit.len().saturating_sub(1).max(1)];
    let base = at + 1;
    let mut raw = String::new();
    let mut parts = Vec::new();
    let mut text = String::new();
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < inner.len() {
        if bytes[i] == b'\\' && i + 1 < inner.len() {
            let c = bytes[i + 1] as char;
            raw.push(c);
            text.push(c);
            i += 2;
            continue;
        }
        if inner[i..].starts_with("{{") {
            let open = i;
            let Some(rel) = inner[i + 2..].find("}}") else {
                return Err((
                    base + open,
                    "`{{` in a template is not closed by `}}`".to_string(),
                ));
            };
            let body_src = &inner[i + 2..i + 2 + rel];
            let close = i + 2 + rel + 2;
            // The body may hold escapes only in theory; templates use names.
            let body = body_src.replace("\\\"", "\"").replace("\\\\", "\\");
            let (name_part, filter_part) = match body.split_once('|') {
                Some((n, f)) => (n.trim(), Some(f.trim())),
                None => (body.trim(), None),
            };
            if !is_name(name_part) {
                return Err((
                    base + open,
                    format!(
                        "`{{{{{}}}}}` is not a template placeholder: expected a label name such as `{{{{server}}}}`",
                        body.trim()
                    ),
                ));
            }
            let filter = match filter_part {
                None => None,
                Some("duration") => Some(Filter::Duration),
                Some("percent") => Some(Filter::Percent),
                Some("bytes") => Some(Filter::Bytes),
                Some(other) => {
                    return Err((
                        base + open,
                        format!(
                            "unknown template filter `{other}`: expected `duration`, `percent` or `bytes`"
                        ),
                    ));
                }
            };
            if !text.is_empty() {
                parts.push(TemplatePart::Text(std::mem::take(&mut text)));
            }
            raw.push_str(&inner[i..close].replace("\\\"", "\"").replace("\\\\", "\\"));
            parts.push(TemplatePart::Var {
                name: name_part.to_string(),
                filter,
                span: idx.span(base + open, base + close),
            });
            i = close;
            continue;
        }
        let c = inner[i..].chars().next().unwrap_or(' ');
        raw.push(c);
        text.push(c);
        i += c.len_utf8();
    }
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
    Ok(Template {
        raw,
        parts,
        span: idx.span(at, at + lit.len()),
    })
}

/// Whether `s` is a name: `[A-Za-z_][A-Za-z0-9_.:]*`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
}

/// Renders a template with the given lookup for names; unknown names render
/// as the empty string. Filters format numbers: `duration` as `1.2s`/`3m20s`,
/// `percent` as `12.5%`, `bytes` as `1.5GiB`.
pub fn render(t: &Template, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => out.push_str(s),
            TemplatePart::Var { name, filter, .. } => out.push_str(&fill(name, *filter, lookup)),
        }
    }
    out
}

/// A placeholder's text: the value of `name` (empty when unknown), through
/// `filter` when it is a number.
fn fill(name: &str, filter: Option<Filter>, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let v = lookup(name).unwrap_or_default();
    match (filter, v.parse::<f64>()) {
        (Some(f), Ok(x)) => apply_filter(f, x),
        _ => v,
    }
}

/// One argument of an `exec` template: its literal text (quotes and
/// backslashes already taken away) and placeholders, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecWord {
    pub parts: Vec<TemplatePart>,
    /// A `--` argument comes before this one: what follows is not an option.
    pub after_options_end: bool,
}

/// Splits an `exec` template into arguments as a shell splits words, on
/// the template's text only: unquoted whitespace separates arguments,
/// `'...'` and `"..."` keep whitespace in one (`''` is an empty argument),
/// a backslash takes the next character as it is. Placeholders belong to
/// the argument they are written in. Nothing else is special: `$`, `;`,
/// `|`, `>` and backquotes are plain characters, since no shell runs.
/// Errors say what is wrong with the template.
pub fn split_exec(t: &Template) -> Result<Vec<ExecWord>, String> {
    let mut words: Vec<ExecWord> = Vec::new();
    let mut word: Option<Vec<TemplatePart>> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut options_end = false;
    let push_char = |word: &mut Option<Vec<TemplatePart>>, c: char| {
        let parts = word.get_or_insert_with(Vec::new);
        match parts.last_mut() {
            Some(TemplatePart::Text(s)) => s.push(c),
            _ => parts.push(TemplatePart::Text(c.to_string())),
        }
    };
    let mut finish = |word: &mut Option<Vec<TemplatePart>>, words: &mut Vec<ExecWord>| {
        if let Some(parts) = word.take() {
            let dashes = matches!(parts.as_slice(), [TemplatePart::Text(s)] if s == "--");
            words.push(ExecWord {
                parts,
                after_options_end: options_end,
            });
            options_end |= dashes;
        }
    };
    for p in &t.parts {
        let text = match p {
            TemplatePart::Var { .. } => {
                escaped = false;
                word.get_or_insert_with(Vec::new).push(p.clone());
                continue;
            }
            TemplatePart::Text(text) => text,
        };
        for c in text.chars() {
            if escaped {
                escaped = false;
                push_char(&mut word, c);
                continue;
            }
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => escaped = true,
                (Some(_), c) => push_char(&mut word, c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_with(Vec::new);
                }
                (None, c) if c.is_whitespace() => finish(&mut word, &mut words),
                (None, c) => push_char(&mut word, c),
            }
        }
    }
    if escaped {
        return Err("the command ends in a lone `\\`".into());
    }
    if let Some(q) = quote {
        return Err(format!("the command has an unclosed `{q}`"));
    }
    finish(&mut word, &mut words);
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// Why an `exec` action cannot be run for a set of labels.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Template(String),
    /// A filled value would begin an argument with `-`, where the program
    /// would read it as an option.
    #[error(
        "`{{{{{name}}}}}` is {value:?}, which would be read as an option: write `--` before it in the command"
    )]
    OptionLike { name: String, value: String },
}

/// The arguments an `exec` template gives for the labels `lookup` knows:
/// split first ([`split_exec`]), then filled, so each value is part of one
/// argument whatever it holds (spaces, quotes, `$(...)`, `;`, newlines).
pub fn exec_argv(
    t: &Template,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExecError> {
    let words = split_exec(t).map_err(ExecError::Template)?;
    let mut argv = Vec::with_capacity(words.len());
    for w in &words {
        let mut arg = String::new();
        for p in &w.parts {
            match p {
                TemplatePart::Text(s) => arg.push_str(s),
                TemplatePart::Var { name, filter, .. } => {
                    let value = fill(name, *filter, lookup);
                    if arg.is_empty() && value.starts_with('-') && !w.after_options_end {
                        return Err(ExecError::OptionLike {
                            name: name.clone(),
                            value,
                        });
                    }
                    arg.push_str(&value);
                }
            }
        }
        argv.push(arg);
    }
    Ok(argv)
}

/// The URL a `webhook` template gives: its text as written, each filled
/// value percent-encoded (all but `A-Z a-z 0-9 - . _ ~`), so that a value
/// is one path segment or query value whatever it holds (`/`, `?`, `#`,
/// `&`, `%`, spaces, non-ASCII as UTF-8 bytes).
pub fn webhook_url(t: &Template, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => out.push_str(s),
            TemplatePart::Var { name, filter, .. } => {
                for b in fill(name, *filter, lookup).bytes() {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

/// Formats a number with a template filter.
pub fn apply_filter(f: Filter, x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    match f {
        Filter::Percent => format!("{}%", trim_float(x * 100.0, 2)),
        Filter::Duration => {
            let a = x.abs();
            if a < 1.0 {
                format!("{}ms", trim_float(x * 1000.0, 1))
            } else if a < 60.0 {
                format!("{}s", trim_float(x, 2))
            } else {
                crate::time::format_duration_ms((x * 1000.0).round() as i64)
            }
        }
        Filter::Bytes => {
            let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
            let mut v = x;
            let mut u = 0;
            while v.abs() >= 1024.0 && u + 1 < units.len() {
                v /= 1024.0;
                u += 1;
            }
            format!("{}{}", trim_float(v, 2), units[u])
        }
    }
}

fn trim_float(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(lit: &str) -> Result<Template, (usize, String)> {
        let idx = LineIndex::new(lit);
        parse(lit, 0, &idx)
    }

    #[test]
    fn parses_placeholders_and_filters() {
        let tpl = t(r#""p95 of {{ gen_ai.tool.name }} is {{value|duration}} \"x\"""#).unwrap();
        assert_eq!(
            tpl.raw,
            r#"p95 of {{ gen_ai.tool.name }} is {{value|duration}} "x""#
        );
        let vars: Vec<_> = tpl.vars().map(|(n, s)| (n.to_string(), s.col)).collect();
        assert_eq!(
            vars,
            vec![("gen_ai.tool.name".into(), 9), ("value".into(), 35)]
        );
        assert!(matches!(
            tpl.parts[3],
            TemplatePart::Var {
                filter: Some(Filter::Duration),
                ..
            }
        ));
    }

    #[test]
    fn reports_bad_placeholders() {
        assert_eq!(t(r#""a {{server""#).unwrap_err().0, 3);
        assert!(
            t(r#""{{value | hours}}""#)
                .unwrap_err()
                .1
                .contains("unknown template filter `hours`")
        );
        assert!(t(r#""{{ }}""#).is_err());
    }

    #[test]
    fn renders_with_filters() {
        let tpl =
            t(r#""{{server}}: {{value | percent}} {{value|bytes}} {{value|duration}}""#).unwrap();
        let s = render(&tpl, &|n| match n {
            "server" => Some("a".into()),
            "value" => Some("0.125".into()),
            _ => None,
        });
        assert_eq!(s, "a: 12.5% 0.12B 125ms");
        assert_eq!(apply_filter(Filter::Bytes, 1610612736.0), "1.5GiB");
        assert_eq!(apply_filter(Filter::Duration, 200.0), "3m20s");
    }
}
