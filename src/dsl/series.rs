//! The series notation of `test` blocks, as promtool's:
//! `a` one value; `a+bxN` / `a-bxN` is `a` then N more values each `b`
//! larger (smaller): N+1 values; `axN` is `a` N+1 times; `_` one missing
//! sample, `_xN` N missing; `stale` ends the series. Values are numbers,
//! `Inf`, `-Inf`, `NaN`. Tokens are separated by spaces.

/// At most this many points per series (a typo such as `1x10000000000`
/// should not allocate the machine away).
pub const MAX_POINTS: u64 = 1_000_000;

/// One token of the notation.
#[derive(Clone, Debug, PartialEq)]
pub enum Run {
    /// `start`, then `count` more values each `step` larger (`count+1` values).
    Values { start: f64, step: f64, count: u64 },
    /// `count` missing samples.
    Missing(u64),
    /// The series ends (a staleness marker).
    Stale,
}

/// One point of an expanded series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    Value(f64),
    Missing,
    Stale,
}

/// Parses the notation; the error names the bad token.
pub fn parse(text: &str) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let mut total: u64 = 0;
    for tok in text.split_whitespace() {
        let run = parse_token(tok).ok_or_else(|| {
            format!("`{tok}` is not series notation: expected a value such as `1.5`, `a+bxN`, `axN`, `_`, `_xN` or `stale`")
        })?;
        total = total.saturating_add(match &run {
            Run::Values { count, .. } => count.saturating_add(1),
            Run::Missing(n) => *n,
            Run::Stale => 1,
        });
        if total > MAX_POINTS {
            return Err(format!("the series has more than {MAX_POINTS} points"));
        }
        runs.push(run);
    }
    Ok(runs)
}

/// The points of a parsed series, one per interval.
pub fn expand(runs: &[Run]) -> Vec<Point> {
    let mut out = Vec::new();
    for r in runs {
        match *r {
            Run::Values { start, step, count } => {
                for i in 0..=count {
                    out.push(Point::Value(start + step * i as f64));
                }
            }
            Run::Missing(n) => out.extend((0..n).map(|_| Point::Missing)),
            Run::Stale => out.push(Point::Stale),
        }
    }
    out
}

fn parse_token(tok: &str) -> Option<Run> {
    if tok == "stale" {
        return Some(Run::Stale);
    }
    if tok == "_" {
        return Some(Run::Missing(1));
    }
    if let Some(n) = tok.strip_prefix("_x") {
        return Some(Run::Missing(parse_count(n)?));
    }
    let (start, rest) = take_value(tok)?;
    if rest.is_empty() {
        return Some(Run::Values {
            start,
            step: 0.0,
            count: 0,
        });
    }
    let (step, rest) = match rest.as_bytes()[0] {
        b'+' | b'-' => {
            let (s, r) = take_value(rest)?;
            (s, r)
        }
        _ => (0.0, rest),
    };
    let count = parse_count(rest.strip_prefix('x')?)?;
    Some(Run::Values { start, step, count })
}

fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A signed value at the start of `s` and the rest.
fn take_value(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    for word in ["Inf", "NaN"] {
        if s[i..].starts_with(word) {
            let v: f64 = if word == "NaN" {
                f64::NAN
            } else {
                f64::INFINITY
            };
            let v = if b.first() == Some(&b'-') { -v } else { v };
            return Some((v, &s[i + 3..]));
        }
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_start {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_digits = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_digits {
            i = j;
        }
    }
    let v: f64 = s[..i].parse().ok()?;
    Some((v, &s[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_promtool() {
        let p = |s| expand(&parse(s).unwrap());
        assert_eq!(
            p("1+2x2"),
            vec![Point::Value(1.0), Point::Value(3.0), Point::Value(5.0)]
        );
        assert_eq!(p("5-1x1 _x2 stale").len(), 5);
        assert_eq!(p("0.2x9").len(), 10);
        assert_eq!(
            p("1e3 -Inf"),
            vec![Point::Value(1000.0), Point::Value(f64::NEG_INFINITY)]
        );
        assert_eq!(p("-2-0.5x1"), vec![Point::Value(-2.0), Point::Value(-2.5)]);
        assert_eq!(p(""), vec![]);
    }

    #[test]
    fn rejects_bad_tokens() {
        for bad in ["1x", "x3", "1+x3", "1+2", "abc", "_x", "1x99999999999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
