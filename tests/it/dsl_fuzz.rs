//! Generated and mutated inputs to the parser, the checker and the formatter:
//! none may panic; each gives a tree or diagnostics, and every diagnostic
//! points inside its input (line >= 1, col >= 1, within the line); whatever
//! parses formats to text that parses to the same tree, and formatting that
//! text again changes nothing. Deterministic (xorshift), fast in debug.

use crate::common;

use common::XorShift;
use mcpops::dsl;
use std::path::Path;

const INPUTS: usize = 100_000;

/// Snippets of every construct, valid and not.
const TABLE: &[&str] = &[
    "let a = 1",
    "let slo = 800ms\nlet b = 99.9%\nlet c = 2GiB\nlet d = -1e-3\nlet e = \"s \\\" \\\\\"",
    "evaluate every 30s",
    "record r = sum by (a) (rate(x{a=\"b\", c=~\"d.*\"}[5m] offset 1h)) / on (a) count(y) > bool 2",
    "record r = a ^ -b ^ c * d % e - f or g and h unless i",
    "record r = topk(3, x) + bottomk by (a) (2, y) + quantile(0.5, z)",
    "record r = p95(x[5m]) by (a) + quantile(0.9, y[1h]) without (b)",
    "record r = predict(x[1h], 4h) + time_to(x[6h], 0) + anomaly(x[2d]) + trend(x[1h])",
    "alert A {\n  when p95(x[5m]) > 1\n  for 5m\n  keep_firing 1m\n  severity critical\n  labels { t = \"{{server}}\" }\n  summary \"{{value | duration}}\"\n  runbook \"r\"\n}",
    "alert B { when absent(x{job=\"a\"}[5m]) summary \"{{job}}\" }",
    "remediate R {\n  on A, B\n  where severity == \"critical\" and (a =~ \"x\" or b != \"y\")\n  do exec \"restart {{server}}\"\n  timeout 30s\n  cooldown 1h\n  max 3 per 24h\n  verify within 15m\n  escalate notify \"oncall\"\n}",
    "maintenance M {\n  when time_to(disk.free_bytes[6h], 0) < 48h\n  window \"Sat 02:00-04:00 UTC\"\n  do webhook \"http://x/{{server}}\"\n}",
    "test \"t\" {\n  interval 1m\n  series x{a=\"b\"} = \"1+2x3 _x2 stale\"\n  expect A at 5m == firing { a=\"b\" }\n  expect value(x) at 1m == -1.5\n  expect B at 1m == none\n}",
    "alert X {\n  when x > 1\n  for   soon\n}",
    "alert X { when rate(x) }",
    "record r = x[5m]",
    "remediate R { on Nope do notify \"x\" max 0 per 1h }",
    "alert A { when sum by (a) (x) > 1 summary \"{{b}}\" }",
    "alert A { when x{a=~\"(\"} > 1 }",
    "maintenance M { when x > 1 window \"Sun 25:00\" do exec \"x\" }",
    "# comment only\n# another",
    "alert A { # c\n when x # d\n > 1 # e\n} # f",
    "alert H {\n  when cpu > 90%\n  resolve when cpu < 80%\n  for 5m\n}",
    "alert H { when cpu > 0.9 resolve when cpu < bool 0.8 }",
    "remediate S {\n  on A\n  do exec \"restart {{server}}\"\n  concurrency 2\n  concurrency 1 per server\n  breaker 5 per 1h\n  guard count(up == 1) / count(up) >= 0.8\n  approve within 15m by \"oncall\"\n  mode dry-run\n  escalate notify \"oncall\"\n}",
    "remediate S { on A do notify \"x\" concurrency 0 concurrency 1 breaker 0 per 0s approve within 0s by \"\" }",
    "maintenance M { when x > 1 window \"daily 01:00-02:00\" do exec \"x\" guard up == 1 mode auto }",
    "suppress A while B on (server, region)",
    "suppress A while A\nsuppress B while C\nsuppress C while B",
    "test \"t\" {\n  expect A at 5m == resolved { a=\"b\" }\n  expect R at 1m == run\n  expect R at 2m == escalated\n  expect R at 3m == suppressed\n  expect R at 4m == awaiting_approval\n}",
];

fn shipped() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut out = vec![std::fs::read_to_string(root.join("mcp.rules")).unwrap()];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    out
}

/// Splits a file into its top-level items (at lines starting with a keyword).
fn items(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in src.split_inclusive('\n') {
        let starts = [
            "let ",
            "evaluate ",
            "alert ",
            "record ",
            "remediate ",
            "maintenance ",
            "suppress ",
            "test ",
        ]
        .iter()
        .any(|k| line.starts_with(k));
        if starts && !cur.trim().is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

const ALPHABET: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "#",
    "\n",
    " ",
    "=",
    "==",
    "=~",
    "!~",
    "!=",
    ">",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    ",",
    "|",
    "\\",
    ".",
    ":",
    "_",
    "0",
    "9",
    "5m",
    "1h30m",
    "99.9%",
    "2GiB",
    "x",
    "by",
    "without",
    "on",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "when",
    "for",
    "alert",
    "record",
    "let",
    "test",
    "remediate",
    "maintenance",
    "evaluate every",
    "resolve when",
    "concurrency",
    "breaker",
    "guard",
    "approve within",
    "mode dry-run",
    "suppress",
    "while",
    "per",
    "{{",
    "}}",
    "{{server}}",
    "sum",
    "rate",
    "p95",
    "é",
    "名",
    "🙂",
    "\u{200b}",
    "\t",
    "\r\n",
    "\u{0}",
    "Inf",
];

fn char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of the whitespace-separated tokens of `s`.
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(st)) => {
                out.push((st, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

fn mutate(rng: &mut XorShift, s: &str, corpus: &[String]) -> String {
    let mut s = s.to_string();
    for _ in 0..1 + rng.below(3) {
        match rng.below(8) {
            0 if !s.is_empty() => {
                // Replace one character.
                let i = char_boundary(&s, rng.below(s.len()));
                let end = i + s[i..].chars().next().map_or(0, char::len_utf8);
                let with = ALPHABET[rng.below(ALPHABET.len())];
                s.replace_range(i..end, with);
            }
            1 => {
                let i = char_boundary(&s, rng.below(s.len() + 1));
                s.truncate(i);
            }
            2 => {
                let t = tokens(&s);
                if !t.is_empty() {
                    let (a, b) = t[rng.below(t.len())];
                    s.replace_range(a..b, "");
                }
            }
            3 => {
                let t = tokens(&s);
                if !t.is_empty() {
                    let (a, b) = t[rng.below(t.len())];
                    let tok = s[a..b].to_string();
                    s.insert_str(b, &format!(" {tok}"));
                }
            }
            4 => {
                let i = char_boundary(&s, rng.below(s.len() + 1));
                s.insert_str(i, ALPHABET[rng.below(ALPHABET.len())]);
            }
            5 => {
                // Splice in a piece of another input.
                let other = &corpus[rng.below(corpus.len())];
                let a = char_boundary(other, rng.below(other.len() + 1));
                let b = char_boundary(other, a + rng.below(80));
                let i = char_boundary(&s, rng.below(s.len() + 1));
                s.insert_str(i, &other[a..b.max(a)]);
            }
            6 => {
                let t = tokens(&s);
                if t.len() >= 2 {
                    let (x, y) = (rng.below(t.len()), rng.below(t.len()));
                    let (p, q) = (t[x.min(y)], t[x.max(y)]);
                    if p != q {
                        let (pa, qa) = (s[p.0..p.1].to_string(), s[q.0..q.1].to_string());
                        s.replace_range(q.0..q.1, &pa);
                        s.replace_range(p.0..p.1, &qa);
                    }
                }
            }
            _ => {
                // Random unicode.
                let n = 1 + rng.below(4);
                let i = char_boundary(&s, rng.below(s.len() + 1));
                let junk: String = (0..n)
                    .map(|_| char::from_u32(rng.below(0x2FFFF) as u32).unwrap_or('?'))
                    .collect();
                s.insert_str(i, &junk);
            }
        }
    }
    s
}

/// Nested and long inputs that must not exhaust the stack or take long.
fn adversarial() -> Vec<String> {
    let mut v = vec![
        format!("record r = {}x{}", "(".repeat(5000), ")".repeat(5000)),
        format!("record r = {}x", "-".repeat(2000)),
        format!("record r = x{}", " + x".repeat(1000)),
        format!("record r = x{}", " ^ x".repeat(1000)),
        format!("record r = {}", "sum(".repeat(3000)),
        format!(
            "remediate R {{ on A where {} do notify \"x\" }}",
            vec!["a == \"b\""; 1000].join(" and ")
        ),
        format!("record r = x{{{}}}", vec!["a=\"b\""; 1000].join(", ")),
        format!("alert A {{ when x > 1 summary \"{}\" }}", "{{".repeat(3000)),
        "\"".repeat(10_000),
        "#".repeat(10_000),
        "alert ".repeat(5000),
        "\u{0}\u{1}\u{7f}".repeat(100),
        format!(
            "test \"t\" {{ series x = \"{}\" }}",
            "1x999999999 ".repeat(10)
        ),
    ];
    v.push(format!("record r = x{}", " + x".repeat(200)));
    v
}

#[track_caller]
fn check_positions(input: &str, diags: &[dsl::Diagnostic]) {
    let lines: Vec<&str> = input.split('\n').collect();
    for d in diags {
        assert!(d.line >= 1 && d.col >= 1, "{input:?}: {d:?}");
        let line = lines
            .get(d.line as usize - 1)
            .unwrap_or_else(|| panic!("{input:?}: line out of range: {d:?}"));
        assert!(
            d.col as usize <= line.chars().count() + 1,
            "{input:?}: col out of range: {d:?}"
        );
        assert_eq!(d.source_line, line.trim_end_matches('\r'), "{input:?}");
        assert!(!d.message.is_empty());
    }
}

/// Parses and checks an input, and on every `deep`-th input also parses it
/// alone and formats it. Returns whether it was formatted.
fn exercise(input: &str, deep: bool) -> bool {
    let diags = dsl::check_str(input, "fuzz.rules");
    check_positions(input, &diags);
    if !deep {
        return false;
    }
    match dsl::parse_str(input, "fuzz.rules") {
        Ok(tree) => {
            let once = dsl::format_str(input, "fuzz.rules")
                .unwrap_or_else(|d| panic!("{input:?} parses but does not format: {d:?}"));
            let reparsed = dsl::parse_str(&once, "fuzz.rules").unwrap_or_else(|d| {
                panic!("{input:?} formats to {once:?}, which does not parse: {d:?}")
            });
            assert_eq!(
                reparsed.sexpr(),
                tree.sexpr(),
                "{input:?} formats to another tree: {once:?}"
            );
            let twice = dsl::format_str(&once, "fuzz.rules").unwrap();
            assert_eq!(once, twice, "{input:?}: formatting is not idempotent");
            true
        }
        Err(d) => {
            assert!(
                d.iter().any(|d| d.is_error()),
                "{input:?}: an error without a diagnostic"
            );
            assert!(
                diags.iter().any(|d| d.is_error()),
                "{input:?}: parse fails but check finds no error"
            );
            check_positions(input, &d);
            false
        }
    }
}

/// One worker's share of the inputs, from its own seed.
fn run(
    seed: u64,
    n: usize,
    files: &[String],
    corpus: &[String],
    small: &[String],
) -> (usize, usize) {
    let mut rng = XorShift(seed);
    let mut formats = 0;
    for i in 0..n {
        let input = match rng.below(1000) {
            0 => {
                let k = rng.below(files.len());
                mutate(&mut rng, &files[k], corpus)
            }
            1..=49 => {
                let k = rng.below(corpus.len());
                mutate(&mut rng, &corpus[k], corpus)
            }
            _ => {
                let k = rng.below(small.len());
                mutate(&mut rng, &small[k], small)
            }
        };
        if exercise(&input, i % 16 == 0) {
            formats += 1;
        }
    }
    (n, formats)
}

#[test]
fn fuzzed_inputs_never_panic_and_point_inside_the_input() {
    let files = shipped();
    let mut corpus: Vec<String> = TABLE.iter().map(|s| s.to_string()).collect();
    for f in &files {
        corpus.extend(items(f));
    }
    // Small units: single lines and settings of the corpus, and short snippets.
    let mut small: Vec<String> = corpus
        .iter()
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty() && l.len() <= 160)
        .collect();
    small.extend(
        TABLE
            .iter()
            .filter(|t| t.len() <= 160)
            .map(|s| s.to_string()),
    );
    for wrap in [
        "alert A { @ }",
        "record r = @",
        "remediate R { @ }",
        "test \"t\" { @ }",
    ] {
        let lines: Vec<String> = small
            .iter()
            .take(60)
            .map(|l| wrap.replace('@', l.trim()))
            .collect();
        small.extend(lines);
    }

    let mut count = 0;
    let mut formats = 0;
    for input in adversarial()
        .iter()
        .chain(&files)
        .chain(&corpus)
        .chain(&small)
    {
        formats += usize::from(exercise(input, true));
        count += 1;
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let share = (INPUTS - count.min(INPUTS)).div_ceil(threads);
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (files, corpus, small) = (&files, &corpus, &small);
                s.spawn(move || {
                    run(
                        0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x2545_F491_4F6C_DD1D),
                        share,
                        files,
                        corpus,
                        small,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no worker panics"))
            .collect()
    });
    for (n, f) in results {
        count += n;
        formats += f;
    }
    assert!(count >= INPUTS, "{count}");
    // Mutations keep enough inputs valid that the formatter is exercised too.
    assert!(formats > INPUTS / 200, "only {formats} inputs formatted");
}
