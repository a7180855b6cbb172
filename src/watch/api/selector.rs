//! The series selectors of `match[]` (`/api/v1/series`, `/labels`,
//! `/label/<name>/values`) as Prometheus and Grafana write them:
//! `metric`, `metric{label="v",...}`, `{__name__="metric",label!=""}`, and
//! Prometheus 3's quoted names for names beyond `[a-zA-Z_:][a-zA-Z0-9_:]*`:
//! `{"mcp.server.operation.duration", "mcp.method.name"="tools/call"}`.
//! Names with dots may also be written bare, as the rule language does.
//! The rule language has no selector without a metric name, which these
//! need, hence this small parser; matching is [`crate::model::Matcher`]'s.

use crate::model::{MatchOp, Matcher};

/// Parses one selector into matchers, the metric name as a `__name__`
/// matcher. Like Prometheus, refuses a selector all of whose matchers
/// match the empty string (it would select every series).
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, String> {
    let mut p = Parser {
        text,
        chars: text.char_indices().peekable(),
    };
    let mut matchers = Vec::new();
    p.blanks();
    if p.peek().is_some_and(is_name_start) {
        let name = p.name();
        matchers.push(matcher("__name__", MatchOp::Equal, name)?);
    }
    p.blanks();
    if p.peek() == Some('{') {
        p.next();
        loop {
            p.blanks();
            match p.peek() {
                Some('}') => {
                    p.next();
                    break;
                }
                None => return Err(p.error("a `}` is missing")),
                _ => {}
            }
            let label = match p.peek() {
                Some(q @ ('"' | '\'' | '`')) => p.string(q)?,
                Some(c) if is_name_start(c) => p.name(),
                _ => return Err(p.error("expected a label name")),
            };
            p.blanks();
            let op = match (p.peek(), p.peek2()) {
                (Some('='), Some('~')) => Some((MatchOp::Regex, 2)),
                (Some('!'), Some('=')) => Some((MatchOp::NotEqual, 2)),
                (Some('!'), Some('~')) => Some((MatchOp::NotRegex, 2)),
                (Some('='), _) => Some((MatchOp::Equal, 1)),
                _ => None,
            };
            match op {
                Some((op, len)) => {
                    for _ in 0..len {
                        p.next();
                    }
                    p.blanks();
                    let value = match p.peek() {
                        Some(q @ ('"' | '\'' | '`')) => p.string(q)?,
                        _ => return Err(p.error("expected a quoted label value")),
                    };
                    matchers.push(matcher(&label, op, value)?);
                }
                // A quoted string alone is the metric name (Prometheus 3).
                None => {
                    if matchers.iter().any(|m| m.name == "__name__") {
                        return Err(p.error("the metric name is given twice"));
                    }
                    matchers.push(matcher("__name__", MatchOp::Equal, label)?);
                }
            }
            p.blanks();
            match p.peek() {
                Some(',') => {
                    p.next();
                }
                Some('}') => {}
                None => return Err(p.error("a `}` is missing")),
                _ => return Err(p.error("expected `,` or `}`")),
            }
        }
    }
    p.blanks();
    if p.peek().is_some() {
        return Err(p.error("unexpected text after the selector"));
    }
    if matchers.is_empty() || matchers.iter().all(|m| m.matches_missing()) {
        return Err(format!(
            "{text}: vector selector must contain at least one non-empty matcher"
        ));
    }
    Ok(matchers)
}

fn matcher(name: &str, op: MatchOp, value: impl Into<String>) -> Result<Matcher, String> {
    Matcher::new(name, op, value).map_err(|e| format!("bad regex for {name}: {e}"))
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'
}

struct Parser<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn peek2(&self) -> Option<char> {
        let mut ahead = self.chars.clone();
        ahead.next();
        ahead.next().map(|(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        self.chars.next().map(|(_, c)| c)
    }

    fn position(&mut self) -> usize {
        self.chars.peek().map_or(self.text.len(), |&(i, _)| i)
    }

    fn error(&mut self, what: &str) -> String {
        let at = self.position();
        let col = self.text[..at].chars().count() + 1;
        format!("{}: col {col}: {what}", self.text)
    }

    fn blanks(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.next();
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            name.push(c);
            self.next();
        }
        name
    }

    /// A string in `"`, `'` (escapes as Go's) or `` ` `` (raw).
    fn string(&mut self, quote: char) -> Result<String, String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(self.error(&format!("a {quote} is not closed"))),
                Some(c) if c == quote => return Ok(out),
                Some('\\') if quote != '`' => {
                    let c = match self.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some(c @ ('\\' | '"' | '\'')) => c,
                        Some('u') => {
                            let hex: String = (0..4).filter_map(|_| self.next()).collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error(&format!("bad escape \\u{hex}")))?
                        }
                        Some(c) => return Err(self.error(&format!("unknown escape \\{c}"))),
                        None => return Err(self.error(&format!("a {quote} is not closed"))),
                    };
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }
}

/// A label name as a URL path carries it: Prometheus 3 writes names beyond
/// the legacy characters as `U__` then `_` for `__` and `_HEX_` for any
/// other character (`U__mcp_2e_method_2e_name` is `mcp.method.name`).
pub fn unescape_label_name(name: &str) -> Result<String, String> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Ok(name.to_string());
    };
    let bad = || format!("invalid label name: {name:?}");
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return Err(bad()),
            }
        }
        if hex.is_empty() {
            out.push('_');
        } else {
            let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
            out.push(char::from_u32(code).ok_or_else(bad)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<String> {
        parse_selector(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn the_selectors_grafana_sends_parse() {
        assert_eq!(shown("up"), ["__name__=\"up\""]);
        assert_eq!(shown("{__name__!=\"\"}"), ["__name__!=\"\""]);
        assert_eq!(
            shown("{__name__=\"mcp.server.operation.duration\",server!=\"\"}"),
            ["__name__=\"mcp.server.operation.duration\"", "server!=\"\""]
        );
        assert_eq!(
            shown(" mcp.server.operation.duration { mcp.method.name =~ 'tools/.*' , } "),
            [
                "__name__=\"mcp.server.operation.duration\"",
                "mcp.method.name=~\"tools/.*\""
            ]
        );
        assert_eq!(
            shown(r#"{"mcp.server.operation.duration", "error.type"="tool\"error"}"#),
            [
                "__name__=\"mcp.server.operation.duration\"",
                "error.type=\"tool\\\"error\""
            ]
        );
        assert_eq!(shown("x{a=`\\d+`}"), ["__name__=\"x\"", "a=\"\\\\d+\""]);
    }

    #[test]
    fn bad_selectors_say_where() {
        for (text, says) in [
            ("{}", "at least one non-empty matcher"),
            ("{a=~\".*\"}", "at least one non-empty matcher"),
            ("", "at least one non-empty matcher"),
            ("up{a=\"b\"", "col 9: a `}` is missing"),
            ("up{a=b}", "expected a quoted label value"),
            ("up{a=\"b}", "is not closed"),
            ("up{a=\"b\" c=\"d\"}", "expected `,` or `}`"),
            ("up down", "unexpected text"),
            ("up{\"x\"}", "given twice"),
            ("up{a=~\"(\"}", "bad regex"),
            ("up{a=\"\\q\"}", "unknown escape"),
        ] {
            let e = parse_selector(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(
            unescape_label_name("U__mcp_2e_method_2e_name").unwrap(),
            "mcp.method.name"
        );
        assert_eq!(unescape_label_name("U__a__b").unwrap(), "a_b");
        assert_eq!(unescape_label_name("job").unwrap(), "job");
        assert!(unescape_label_name("U__a_zz_").is_err());
    }
}
