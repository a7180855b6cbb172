//! Each kind of error and warning the checker reports: its message, line and
//! column; all errors of a file reported; the human and JSON renderings.

use crate::common;
use mcpops::dsl::{self, Diagnostic, Severity};

fn check(src: &str) -> Vec<Diagnostic> {
    dsl::check_str(src, "rules/x.rules")
}

/// (severity, line, col, message) of every diagnostic.
fn found(src: &str) -> Vec<(Severity, u32, u32, String)> {
    check(src)
        .into_iter()
        .map(|d| (d.severity, d.line, d.col, d.message))
        .collect()
}

/// The source has exactly one diagnostic, an error at (line, col) whose
/// message contains `msg`.
#[track_caller]
fn error_at(src: &str, line: u32, col: u32, msg: &str) {
    let f = found(src);
    assert_eq!(f.len(), 1, "{src:?}: {f:#?}");
    let (sev, l, c, m) = &f[0];
    assert_eq!(*sev, Severity::Error, "{src:?}: {m}");
    assert_eq!((*l, *c), (line, col), "{src:?}: {m}");
    assert!(m.contains(msg), "{src:?}: {m:?} does not contain {msg:?}");
}

#[track_caller]
fn warning_at(src: &str, line: u32, col: u32, msg: &str) {
    let f = found(src);
    assert_eq!(f.len(), 1, "{src:?}: {f:#?}");
    let (sev, l, c, m) = &f[0];
    assert_eq!(*sev, Severity::Warning, "{src:?}: {m}");
    assert_eq!((*l, *c), (line, col), "{src:?}: {m}");
    assert!(m.contains(msg), "{src:?}: {m:?} does not contain {msg:?}");
}

#[test]
fn syntax_errors_say_what_was_expected_in_words() {
    // The example of the issue, exactly.
    let d = check("alert Slow {\n  when x > 1\n  for   soon\n}\n");
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].to_string(),
        "error: expected a duration such as `5m` after `for`\n --> rules/x.rules:3:9\n  |\n3 |   for   soon\n  |         ^\n"
    );
    let cases: &[(&str, u32, u32, &str)] = &[
        (
            "alert A {\n  when x >\n}\n",
            3,
            1,
            "expected an expression after `>`",
        ),
        (
            "let a = 1 +\nlet b = 2\n",
            2,
            1,
            "expected an expression after `+`",
        ),
        ("alert A when x > 1\n", 1, 9, "expected `{` after `A`"),
        (
            "alert A {\n  when x > 1\n  wehn y\n}\n",
            3,
            3,
            "expected `}` or an alert setting (`when`, `for`, `keep_firing`, `severity`, `labels`, `summary` or `runbook`) after `1`",
        ),
        (
            "alrt A {}\n",
            1,
            1,
            "expected a block: `alert`, `record`, `remediate`, `maintenance`, `test`, `let` or `evaluate every`, found `alrt`",
        ),
        (
            "alert A {\n  when x > 1\n  severity high\n}\n",
            3,
            12,
            "expected a severity: `critical`, `warning` or `info` after `severity`",
        ),
        (
            "alert A {\n  when x{a=\"b} > 1\n}\n",
            2,
            12,
            "this string is not closed",
        ),
        (
            "alert A {\n  when x > 1\n  summary \"a\\d\"\n}\n",
            3,
            13,
            "unknown escape `\\d` in a string",
        ),
        (
            "alert A {\n  when x > 1\n  labels { a = \"b\" c = \"d\" }\n}\n",
            3,
            20,
            "expected `}` or `,` after `\"b\"`",
        ),
        (
            "alert A {\n  when rate(x[5m) > 1\n}\n",
            2,
            17,
            "expected `]` after `5m`",
        ),
        (
            "alert A {\n  when rate(x[5min]) > 1\n}\n",
            2,
            15,
            "expected a duration such as `5m` after `[`",
        ),
        (
            "alert A {\n  when sum(x > 1\n}\n",
            3,
            1,
            "expected `)` or `,` after `1`",
        ),
        (
            "alert A {\n  when sum by x (y)\n}\n",
            2,
            15,
            "expected labels in parentheses such as `(server)` after `by`",
        ),
        (
            "alert A {\n  when x{a=b} > 1\n}\n",
            2,
            12,
            "expected a string in double quotes after `=`",
        ),
        (
            "remediate R {\n  on A\n  max three per 1h\n}\n",
            3,
            7,
            "expected a whole number after `max`",
        ),
        (
            "remediate R {\n  on A\n  verify 15m\n}\n",
            3,
            10,
            "expected `within` after `verify`",
        ),
        (
            "remediate R {\n  on A\n  do run \"x\"\n}\n",
            3,
            6,
            "expected an action: `exec`, `notify` or `webhook` followed by a string after `do`",
        ),
        ("evaluate 30s\n", 1, 10, "expected `every` after `evaluate`"),
        (
            "test \"t\" {\n  expect A at 5m = firing\n}\n",
            2,
            18,
            "expected `==` after `5m`",
        ),
        (
            "test \"t\" {\n  expect A at 5m == burning\n}\n",
            2,
            21,
            "expected `none`, `firing`, `pending` or a number after `==`",
        ),
        (
            "test \"t\" {\n  interval 1m\n  serie x = \"1\"\n}\n",
            3,
            3,
            "expected `}` or a test line (`interval`, `series` or `expect`)",
        ),
        (
            "alert A {\n  when x > 1\n",
            3,
            1,
            "expected `}` or an alert setting",
        ),
        (
            "record r = x and\n",
            2,
            1,
            "expected an expression after `and`",
        ),
    ];
    for (src, line, col, msg) in cases {
        error_at(src, *line, *col, msg);
    }
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
fn every_broken_block_of_a_file_is_reported() {
    let src = "alert A {\n  when x >\n}\nalert B {\n  for 5\n}\nalert C {\n  when y > 1\n  severity high\n}\n\
               remediate R {\n  on Nope\n  do notify \"x\"\n  cooldown 1h\n}\nrecord r = rate(x)\n";
    let got: Vec<(u32, u32)> = check(src).iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(got, vec![(3, 1), (5, 7), (9, 12), (12, 6), (16, 17)]);
    // A reference to a block that did not parse is not called unknown.
    let d = found(
        "alert A {\n  when x >\n}\nremediate R {\n  on A\n  do notify \"x\"\n  cooldown 1h\n}\n",
    );
    assert_eq!(d.len(), 1, "{d:?}");
}

#[test]
fn blocks_missing_required_settings_or_setting_twice() {
    error_at("alert A {\n  for 5m\n}\n", 1, 7, "alert A has no `when`");
    error_at(
        "remediate R {\n  do notify \"x\"\n  cooldown 1h\n}\n",
        1,
        11,
        "remediation R has no `on`",
    );
    error_at(
        "alert A { when x > 1 }\nremediate R {\n  on A\n  cooldown 1h\n}\n",
        2,
        11,
        "remediation R has no `do`",
    );
    let d = found("maintenance M {\n  do exec \"x\"\n}\n");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].3.contains("maintenance M has no `when`"));
    assert!(d[1].3.contains("maintenance M has no `window`"));
    error_at(
        "alert A {\n  when x > 1\n  for 5m\n  for 10m\n}\n",
        4,
        3,
        "`for` is set twice in alert A",
    );
    error_at(
        "alert A {\n  when x > 1\n  labels { a = \"1\", a = \"2\" }\n}\n",
        3,
        21,
        "label `a` is set twice",
    );
    error_at(
        "test \"t\" {\n  interval 1m\n  interval 2m\n}\n",
        3,
        3,
        "`interval` is set twice",
    );
    error_at(
        "evaluate every 1m\nevaluate every 2m\n",
        2,
        1,
        "`evaluate every` is given twice",
    );
}

#[test]
fn unknown_alerts_in_on_and_expect() {
    error_at(
        "alert MemoryExhaustion { when x > 1 }\nremediate R {\n  on MemoryExhaustoin\n  do notify \"x\"\n  cooldown 1h\n}\n",
        3,
        6,
        "unknown alert `MemoryExhaustoin` in `on`: did you mean `MemoryExhaustion`?",
    );
    error_at(
        "remediate A {\n  on A\n  do notify \"x\"\n  cooldown 1h\n}\n",
        2,
        6,
        "`A` is a remediation, not an alert",
    );
    error_at(
        "test \"t\" {\n  expect Nope at 5m == none\n}\n",
        2,
        10,
        "unknown alert `Nope` in `expect`",
    );
    // A remediation or maintenance may be expected too.
    assert!(found("remediate R {\n  on R2\n  do notify \"x\"\n  cooldown 1h\n}\nalert R2 { when x > 1 }\ntest \"t\" {\n  expect R at 5m == none\n}\n").is_empty());
}

#[test]
fn duplicate_names() {
    error_at(
        "alert A { when x > 1 }\n\nalert A { when y > 1 }\n",
        3,
        7,
        "duplicate name `A`: alert `A` is already defined at line 1",
    );
    error_at(
        "alert A { when x > 1 }\nmaintenance A {\n  when x > 1\n  window \"02:00-03:00\"\n  do notify \"x\"\n}\n",
        2,
        13,
        "duplicate name `A`: alert `A`",
    );
    error_at(
        "record r = x\nrecord r = y\n",
        2,
        8,
        "duplicate name `r`: record `r` is already defined at line 1",
    );
    error_at(
        "let a = 1\nlet a = 2\n",
        2,
        5,
        "duplicate name `a`: constant `a` is already defined at line 1",
    );
    error_at(
        "test \"t\" { }\ntest \"t\" { }\n",
        2,
        6,
        "duplicate name \"t\"",
    );
    // Across files checked together.
    let d = dsl::check_sources(&[
        ("a.rules".into(), "alert A { when x > 1 }\n".into()),
        ("b.rules".into(), "\nalert A { when y > 1 }\n".into()),
    ]);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].file.as_str(), d[0].line, d[0].col), ("b.rules", 2, 7));
    assert!(
        d[0].message.contains("already defined at a.rules:1"),
        "{}",
        d[0].message
    );
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
fn ranges_and_instants_in_the_wrong_place() {
    error_at(
        "alert A {\n  when x[5m] > 1\n}\n",
        2,
        8,
        "`x[5m]` is a range, but `>` needs an instant value: apply a function over time such as `avg(x[5m])`",
    );
    error_at(
        "record r = x[5m]\n",
        1,
        12,
        "`x[5m]` is a range, but record r needs an instant value",
    );
    error_at(
        "alert A {\n  when rate(x) > 1\n}\n",
        2,
        13,
        "`rate` needs a range such as `x[5m]`, not an instant value",
    );
    error_at(
        "alert A {\n  when rate(5) > 1\n}\n",
        2,
        13,
        "`rate` needs a range such as `x[5m]`, not a number",
    );
    error_at(
        "record r = sum by (a) (x[5m])\n",
        1,
        24,
        "`sum by (...) (...)` aggregates across series and needs an instant value, but `x[5m]` is a range: for sum over time write `sum(x[5m]) by (...)`",
    );
    error_at(
        "record r = topk(3, x[5m])\n",
        1,
        20,
        "`topk` needs an instant value, but `x[5m]` is a range",
    );
    error_at("record r = -x[5m]\n", 1, 13, "needs an instant value");
    error_at(
        "test \"t\" {\n  expect value(x[5m]) at 1m == 1\n}\n",
        2,
        16,
        "`value(...)` needs an instant value",
    );
    error_at(
        "record r = quantile(x, y[5m])\n",
        1,
        21,
        "the first argument of `quantile` must be a number, not series",
    );
    error_at(
        "record r = predict(x[1h], y)\n",
        1,
        27,
        "the second argument of `predict` must be a number, not series",
    );
    error_at(
        "alert A {\n  when 1 > bool 2\n}\n",
        2,
        8,
        "the condition of alert A is a plain number; it must select series",
    );
    error_at(
        "let a = x\n",
        1,
        9,
        "constant `a` must be a number, duration, percent, size or string, not series",
    );
    error_at(
        "record r = x + \"s\"\n",
        1,
        16,
        "a string cannot be used in `+`",
    );
}

#[test]
fn unknown_functions_and_argument_counts() {
    error_at(
        "record r = rat(x[5m])\n",
        1,
        12,
        "unknown function `rat`: did you mean `rate`?",
    );
    error_at(
        "record r = frobnicate(x[5m])\n",
        1,
        12,
        "unknown function `frobnicate`",
    );
    error_at(
        "record r = quantile(x[5m])\n",
        1,
        12,
        "`quantile` takes 2 arguments, as in `quantile(q, range)`, found 1",
    );
    error_at(
        "record r = rate(x[5m], 1)\n",
        1,
        12,
        "`rate` takes 1 argument, as in `rate(range)`, found 2",
    );
    error_at(
        "record r = time_to(x[5m])\n",
        1,
        12,
        "`time_to` takes 2 arguments, as in `time_to(range, threshold)`, found 1",
    );
    error_at(
        "record r = topk(x)\n",
        1,
        12,
        "`topk` takes 2 arguments: a number and an expression, found 1",
    );
    error_at(
        "record r = sum(x, y)\n",
        1,
        12,
        "`sum` takes 1 argument: an expression, found 2",
    );
    error_at(
        "record r = rate by (a) (x[5m])\n",
        1,
        12,
        "`rate` is a function over time, not an aggregation",
    );
    error_at(
        "record r = summ by (a) (x)\n",
        1,
        12,
        "unknown aggregation `summ`: did you mean `sum`?",
    );
    error_at(
        "record r = time_to(x[1h], 0) by (a)\n",
        1,
        30,
        "`time_to` cannot pool series with `by`",
    );
    error_at(
        "record r = quantile(1.5, x[5m])\n",
        1,
        21,
        "a quantile is between 0 and 1, found `1.5`",
    );
    error_at(
        "record r = topk(0, x)\n",
        1,
        17,
        "`topk` needs a whole number of at least 1, found `0`",
    );
}

#[test]
fn operator_misuse() {
    error_at(
        "alert A {\n  when x + bool 1\n}\n",
        2,
        8,
        "`bool` only follows a comparison such as `>`, not `+`",
    );
    error_at(
        "record r = x * (1 > 2)\n",
        1,
        17,
        "comparing two numbers needs `bool`, as in `1 > bool 0`",
    );
    error_at(
        "record r = x and 1\n",
        1,
        18,
        "`and` needs series on both sides, not a number",
    );
    error_at(
        "record r = x / on (a) 2\n",
        1,
        16,
        "`on (...)` matches series on both sides; one side is a number",
    );
}

#[test]
fn template_labels_must_be_carried() {
    // The issue's example: `{{tool}}` after the expression aggregated `tool` away.
    error_at(
        "alert A {\n  when sum by (server) (rate(x[5m])) > 1\n  summary \"{{tool}} on {{server}}\"\n}\n",
        3,
        12,
        "unknown template label `{{tool}}`: the expression of alert A keeps only `server`",
    );
    error_at(
        "alert A {\n  when p95(x[5m]) without (tool) > 1\n  for 5m\n  summary \"{{server}} {{tool}}\"\n}\n",
        4,
        23,
        "unknown template label `{{tool}}`: the expression of alert A removes `tool`",
    );
    error_at(
        "alert A {\n  when count(x) > 1\n  summary \"{{server}}\"\n}\n",
        3,
        12,
        "keeps no labels",
    );
    // absent() carries the labels of its `=` matchers.
    assert!(
        found("alert A {\n  when absent(x{job=\"a\"}[5m])\n  summary \"{{job}}\"\n}\n").is_empty()
    );
    error_at(
        "alert A {\n  when absent(x{job=~\"a\"}[5m])\n  summary \"{{job}}\"\n}\n",
        3,
        12,
        "keeps no labels",
    );
    // value, alert and severity are always there; alert labels may be used.
    assert!(found("alert A {\n  when sum(x) > 1\n  labels { team = \"a\" }\n  summary \"{{value | percent}} {{alert}} {{severity}} {{team}}\"\n}\n").is_empty());
    // Labels of a one-to-one match with `on` are the `on` labels.
    error_at(
        "alert A {\n  when x / on (server) y > 1\n  summary \"{{tool}}\"\n}\n",
        3,
        12,
        "keeps only `server`",
    );
    // Remediations: the labels every alert in `on` carries.
    error_at(
        "alert A { when sum by (server) (x) > 1 }\nalert B { when sum by (server, tool) (x) > 1 }\n\
         remediate R {\n  on A, B\n  do exec \"restart {{server}} {{tool}}\"\n  cooldown 1h\n}\n",
        5,
        31,
        "unknown template label `{{tool}}`: the expression of the alerts that remediation R acts on keeps only `server`",
    );
    error_at(
        "alert A { when sum by (server) (x) > 1 }\nremediate R {\n  on A\n  where tool == \"x\"\n  do notify \"x\"\n  cooldown 1h\n}\n",
        4,
        9,
        "unknown label `tool` in `where`",
    );
    error_at(
        "maintenance M {\n  when sum(x) > 1\n  window \"02:00-03:00\"\n  do exec \"vacuum {{server}}\"\n}\n",
        4,
        19,
        "the expression of maintenance M keeps no labels",
    );
    error_at(
        "alert A {\n  when x > 1\n  summary \"{{value | hours}}\"\n}\n",
        3,
        12,
        "unknown template filter `hours`",
    );
    error_at(
        "alert A {\n  when x > 1\n  summary \"{{value\"\n}\n",
        3,
        12,
        "`{{` in a template is not closed by `}}`",
    );
    error_at(
        "alert A {\n  when x > 1\n  labels { severity = \"x\" }\n}\n",
        3,
        12,
        "`severity` cannot be set in `labels`",
    );
}

#[test]
fn regexes_must_compile() {
    error_at(
        "record r = x{a=~\"(\"}\n",
        1,
        14,
        "the regex `(` does not compile: unclosed group",
    );
    error_at(
        "record r = x{a!~\"[z-a]\"}\n",
        1,
        14,
        "the regex `[z-a]` does not compile",
    );
    error_at(
        "alert A { when x > 1 }\nremediate R {\n  on A\n  where server =~ \"*\"\n  do notify \"x\"\n  cooldown 1h\n}\n",
        4,
        19,
        "the regex `*` does not compile",
    );
}

#[test]
fn for_shorter_than_the_evaluation_step() {
    error_at(
        "alert A {\n  when x > 1\n  for 30s\n}\n",
        3,
        7,
        "`for 30s` is shorter than the evaluation step (1m)",
    );
    error_at(
        "evaluate every 5m\nalert A {\n  when x > 1\n  for 2m\n}\n",
        4,
        7,
        "`for 2m` is shorter than the evaluation step (5m)",
    );
    assert!(found("evaluate every 30s\nalert A {\n  when x > 1\n  for 30s\n}\n").is_empty());
    assert!(
        found("alert A {\n  when x > 1\n  for 0s\n}\n").is_empty(),
        "0s fires at once"
    );
}

#[test]
fn limits_windows_and_series() {
    error_at(
        "alert A { when x > 1 }\nremediate R {\n  on A\n  do notify \"x\"\n  cooldown 1h\n  max 0 per 24h\n}\n",
        6,
        3,
        "`max 0 per 24h` allows no action: the count must be at least 1",
    );
    error_at(
        "alert A { when x > 1 }\nremediate R {\n  on A\n  do notify \"x\"\n  cooldown 1h\n  max -2 per 1h\n}\n",
        6,
        3,
        "the count must be at least 1",
    );
    error_at(
        "maintenance M {\n  when x > 1\n  window \"Sat 2am\"\n  do notify \"x\"\n}\n",
        3,
        10,
        "the window \"Sat 2am\" does not parse: expected a time range such as `02:00-04:00`",
    );
    error_at(
        "maintenance M {\n  when x > 1\n  window \"Sad 02:00-04:00\"\n  do notify \"x\"\n}\n",
        3,
        10,
        "`sad` is not a day",
    );
    error_at(
        "test \"t\" {\n  series x = \"1 2x\"\n}\n",
        2,
        14,
        "`2x` is not series notation",
    );
    error_at(
        "test \"t\" {\n  series x{a=~\"b\"} = \"1\"\n}\n",
        2,
        12,
        "a test series is written with `=` labels only, not `=~`",
    );
    error_at(
        "test \"t\" {\n  series x[5m] = \"1\"\n}\n",
        2,
        10,
        "a test series has no range or offset",
    );
    error_at(
        "test \"t\" {\n  expect value(x) at 1m == firing\n}\n",
        2,
        3,
        "`value(...)` is expected to be a number or `none`",
    );
    error_at(
        "alert A { when x > 1 }\ntest \"t\" {\n  expect A at 1m == 3\n}\n",
        3,
        21,
        "`A` is expected to be `firing`, `pending` or `none`, not a number",
    );
    error_at(
        "record r = rate(x[0s])\n",
        1,
        19,
        "a range must be longer than 0",
    );
    error_at(
        "let a = b\nlet b = a + 1\n",
        2,
        9,
        "constant `a` is defined in terms of itself",
    );
}

#[test]
fn warnings_are_separate_from_errors() {
    warning_at(
        "alert A {\n  when p95(x[5m]) > 1\n}\n",
        1,
        7,
        "alert A has no `for` and uses `p95`, which is noisy",
    );
    warning_at(
        "alert A {\n  when anomaly(x[1d]) > 6\n}\n",
        1,
        7,
        "uses `anomaly`",
    );
    warning_at(
        "alert A {\n  when rate(x[1m]) > 6\n}\n",
        1,
        7,
        "uses `rate`",
    );
    assert!(
        found("alert A {\n  when rate(x[10m]) > 6\n}\n").is_empty(),
        "rate over 10m is not noisy"
    );
    assert!(found("alert A {\n  when p95(x[5m]) > 1\n  for 5m\n}\n").is_empty());
    warning_at(
        "alert A { when x > 1 }\nremediate R {\n  on A\n  do notify \"x\"\n}\n",
        2,
        11,
        "remediation R has no `cooldown`",
    );
    let src = "alert A {\n  when p95(x[5m]) > 1\n}\nrecord r = rate(x)\n";
    let d = check(src);
    assert_eq!(
        d.iter().map(|d| d.severity).collect::<Vec<_>>(),
        vec![Severity::Warning, Severity::Error]
    );
    assert!(
        d[0].to_string()
            .starts_with("warning: alert A has no `for`")
    );
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
fn diagnostics_render_with_tabs_and_wide_lines() {
    let d = check("alert A {\n\twhen x > 1\n\tfor\tsoon\n}\n");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].line, d[0].col), (3, 6));
    assert!(
        d[0].to_string()
            .ends_with("3 | \tfor\tsoon\n  | \t   \t^\n"),
        "{}",
        d[0]
    );
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

#[test]
fn steps_too_fine_or_too_many_are_errors() {
    error_at(
        "evaluate every 500ms\n",
        1,
        16,
        "`evaluate every 500ms` is too fine: the evaluation step must be at least 1s",
    );
    error_at(
        "evaluate every 0s\n",
        1,
        16,
        "the evaluation step must be at least 1s",
    );
    // A test replays every step up to its last expectation.
    error_at(
        "alert A {\n  when x > 1\n}\ntest \"t\" {\n  series x = \"2\"\n  expect A at 100000h == none\n}\n",
        6,
        15,
        "`at 100000h` is 6000001 evaluation steps of 1m into the test: at most 1000000",
    );
}
