//! Every construct of the rule language (docs/language.md) parses to the tree
//! it means. Trees are compared through their S-expression rendering
//! (`Expr::sexpr`, `Item::sexpr`), which leaves out spans and source text.

use mcpops::dsl::{self, Expr, Item, RuleFile};

fn file(src: &str) -> RuleFile {
    match dsl::parse_str(src, "t.rules") {
        Ok(f) => f,
        Err(d) => panic!("{src:?} does not parse:\n{}", render(&d)),
    }
}

fn render(d: &[dsl::Diagnostic]) -> String {
    d.iter().map(|d| d.to_string()).collect()
}

/// The tree of an expression, parsed as the body of a record rule (with
/// `let k = 2` and `let s = "x"` defined, for constants).
fn expr(src: &str) -> String {
    let f = file(&format!("let k = 2\nlet s = \"x\"\nrecord r = {src}\n"));
    match &f.items[2] {
        Item::Record(r) => r.expr.sexpr(),
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn literals() {
    let cases = [
        ("3", "3"),
        ("0.25", "0.25"),
        ("1e-3", "0.001"),
        ("2.5E+2", "250"),
        ("-2", "-2"),
        ("Inf", "+Inf"),
        ("-Inf", "-Inf"),
        ("NaN", "NaN"),
        ("250ms", "250ms"),
        ("15s", "15s"),
        ("5m", "5m"),
        ("1h30m", "1h30m"),
        ("90m", "1h30m"),
        ("2d", "2d"),
        ("1w", "7d"),
        ("-5m", "-5m"),
        ("99.9%", "0.999"),
        ("0.1%", "0.001"),
        ("50%", "0.5"),
        ("512KiB", "524288"),
        ("2GiB", "2147483648"),
        ("10MB", "10000000"),
        ("1.5KB", "1500"),
        ("64B", "64"),
        (r#""tools/call""#, r#""tools/call""#),
        (r#""say \"hi\" \\ bye""#, r#""say \"hi\" \\ bye""#),
        ("k", "(const k)"),
        ("s", "(const s)"),
    ];
    for (src, want) in cases {
        assert_eq!(expr(src), want, "{src}");
    }
}

#[test]
fn literal_kinds_and_texts_are_kept() {
    let f = file("let a = 99.9%\nlet b = 2GiB\nlet d = 1h30m\nlet e = -2\n");
    let kinds: Vec<(dsl::NumberKind, String)> = f
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Let(l) => match &l.value {
                Expr::Number(n) => Some((n.kind, n.text.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (dsl::NumberKind::Percent, "99.9%".to_string()),
            (dsl::NumberKind::Size, "2GiB".to_string()),
            (dsl::NumberKind::Plain, "-2".to_string()),
        ]
    );
    match &f.items[2] {
        Item::Let(l) => match &l.value {
            Expr::Duration(d) => {
                assert_eq!((d.ms, d.text.as_str()), (5_400_000, "1h30m"));
                assert_eq!(d.seconds(), 5400.0);
            }
            other => panic!("{other:?}"),
        },
        _ => unreachable!(),
    }
}

#[test]
fn selectors() {
    let cases = [
        ("up", "(sel up)"),
        (
            r#"mcp.server.operation.duration{mcp.method.name="tools/call", server=~"edge-.*", error.type!=""}"#,
            r#"(sel mcp.server.operation.duration (= mcp.method.name "tools/call") (=~ server "edge-.*") (!= error.type ""))"#,
        ),
        (r#"x{a!~"b|c",}"#, r#"(sel x (!~ a "b|c"))"#),
        ("x{}", "(sel x)"),
        (
            "process.memory.usage[30m]",
            "(sel process.memory.usage [30m])",
        ),
        ("x offset 1d", "(sel x (offset 1d))"),
        (
            r#"x{a="b"}[5m] offset 1w"#,
            r#"(sel x (= a "b") [5m] (offset 7d))"#,
        ),
        ("server:error_ratio:5m", "(sel server:error_ratio:5m)"),
        ("_private.metric_1", "(sel _private.metric_1)"),
        // A reserved word followed by more name characters is a name.
        ("offset_bytes", "(sel offset_bytes)"),
        ("window.size", "(sel window.size)"),
        ("Info", "(sel Info)"),
        ("value", "(sel value)"),
    ];
    for (src, want) in cases {
        assert_eq!(expr(src), want, "{src}");
    }
}

#[test]
fn functions_over_time() {
    let one_arg = [
        "avg",
        "min",
        "max",
        "sum",
        "count",
        "last",
        "first",
        "stddev",
        "median",
        "p50",
        "p90",
        "p95",
        "p99",
        "rate",
        "increase",
        "delta",
        "deriv",
        "changes",
        "absent",
        "present_ratio",
        "anomaly",
        "trend",
    ];
    for f in one_arg {
        assert_eq!(
            expr(&format!("{f}(x[5m])")),
            format!("(call {f} (sel x [5m]))"),
            "{f}"
        );
    }
    let cases = [
        ("quantile(0.9, x[5m])", "(call quantile 0.9 (sel x [5m]))"),
        ("predict(x[1h], 4h)", "(call predict (sel x [1h]) 4h)"),
        (
            "time_to(disk.free_bytes[6h], 0)",
            "(call time_to (sel disk.free_bytes [6h]) 0)",
        ),
        (
            "time_to(process.memory.usage[1h], process.memory.limit)",
            "(call time_to (sel process.memory.usage [1h]) (sel process.memory.limit))",
        ),
        (
            "p95(latency[5m]) by (server)",
            "(call p95 (sel latency [5m]) (by server))",
        ),
        (
            "count(x[5m]) without (mcp.session.id, error.type)",
            "(call count (sel x [5m]) (without mcp.session.id error.type))",
        ),
        ("sum((x[5m]))", "(call sum (paren (sel x [5m])))"),
        (
            "rate(x[5m] offset 1h)",
            "(call rate (sel x [5m] (offset 1h)))",
        ),
        // Unknown names parse as calls; the checker reports them.
        ("frobnicate(x[5m])", "(call frobnicate (sel x [5m]))"),
        ("rate(x)", "(call rate (sel x))"),
    ];
    for (src, want) in cases {
        assert_eq!(expr(src), want, "{src}");
    }
}

#[test]
fn aggregations_across_series() {
    let cases = [
        ("sum(x)", "(agg sum (sel x))"),
        ("sum by (server) (x)", "(agg sum (by server) (sel x))"),
        ("sum(x) by (server)", "(agg sum (by server) (sel x))"),
        ("avg without (a, b) (x)", "(agg avg (without a b) (sel x))"),
        ("min(x)", "(agg min (sel x))"),
        (
            "max by (server) (p95(latency[5m]))",
            "(agg max (by server) (call p95 (sel latency [5m])))",
        ),
        ("count(x) without (a)", "(agg count (without a) (sel x))"),
        ("stddev(x)", "(agg stddev (sel x))"),
        ("quantile(0.9, x)", "(agg quantile 0.9 (sel x))"),
        ("topk(3, x)", "(agg topk 3 (sel x))"),
        ("bottomk by (a) (2, x)", "(agg bottomk (by a) 2 (sel x))"),
        ("topk(3, x[5m])", "(agg topk 3 (sel x [5m]))"),
        ("sum by (a,) (x)", "(agg sum (by a) (sel x))"),
        ("sum(rate(x[5m]))", "(agg sum (call rate (sel x [5m])))"),
        // The same name over a range means over time.
        ("sum(x[5m])", "(call sum (sel x [5m]))"),
        ("sum by (a) (x[5m])", "(agg sum (by a) (sel x [5m]))"),
    ];
    for (src, want) in cases {
        assert_eq!(expr(src), want, "{src}");
    }
}

#[test]
fn operators_and_precedence() {
    let cases = [
        ("a + b", "(+ (sel a) (sel b))"),
        ("a - b - c", "(- (- (sel a) (sel b)) (sel c))"),
        (
            "a * b / c % d",
            "(% (/ (* (sel a) (sel b)) (sel c)) (sel d))",
        ),
        ("a + b * c", "(+ (sel a) (* (sel b) (sel c)))"),
        ("a ^ b ^ c", "(^ (sel a) (^ (sel b) (sel c)))"),
        ("a * b ^ c", "(* (sel a) (^ (sel b) (sel c)))"),
        ("-a ^ b", "(neg (^ (sel a) (sel b)))"),
        ("-a * b", "(* (neg (sel a)) (sel b))"),
        ("a ^ -b", "(^ (sel a) (neg (sel b)))"),
        ("-2 ^ 2", "(neg (^ 2 2))"),
        ("--a", "(neg (neg (sel a)))"),
        ("a - -2", "(- (sel a) -2)"),
        ("a > b", "(> (sel a) (sel b))"),
        ("a < b", "(< (sel a) (sel b))"),
        ("a >= b", "(>= (sel a) (sel b))"),
        ("a <= b", "(<= (sel a) (sel b))"),
        ("a == b", "(== (sel a) (sel b))"),
        ("a != b", "(!= (sel a) (sel b))"),
        ("a > bool 1", "(> bool (sel a) 1)"),
        ("a + b > c * 2", "(> (+ (sel a) (sel b)) (* (sel c) 2))"),
        (
            "a > 1 and b < 2 or c unless d",
            "(or (and (> (sel a) 1) (< (sel b) 2)) (unless (sel c) (sel d)))",
        ),
        ("a or b and c", "(or (sel a) (and (sel b) (sel c)))"),
        ("a and b unless c", "(unless (and (sel a) (sel b)) (sel c))"),
        ("a / on (server) b", "(/ (on server) (sel a) (sel b))"),
        (
            "a > bool on (server, tool) b",
            "(> bool (on server tool) (sel a) (sel b))",
        ),
        ("(a + b) * c", "(* (paren (+ (sel a) (sel b))) (sel c))"),
        ("a % 2", "(% (sel a) 2)"),
        ("x > 5% and y", "(and (> (sel x) 0.05) (sel y))"),
        ("k * 2", "(* (const k) 2)"),
        ("x\n  +\n  y # comment\n  * 2", "(+ (sel x) (* (sel y) 2))"),
    ];
    for (src, want) in cases {
        assert_eq!(expr(src), want, "{src}");
    }
}

#[test]
fn top_level_items() {
    let src = r#"
let slo_p95 = 800ms   # a constant
let budget  = 0.1%
evaluate every 30s
record server:error_ratio:5m =
  count(mcp.server.operation.duration{error.type!=""}[5m]) by (server)
  / count(mcp.server.operation.duration[5m]) by (server)
"#;
    let f = file(src);
    assert_eq!(
        f.sexpr(),
        "(let slo_p95 800ms)\n(let budget 0.001)\n(evaluate 30s)\n\
         (record server:error_ratio:5m (/ (call count (sel mcp.server.operation.duration (!= error.type \"\") [5m]) (by server)) \
         (call count (sel mcp.server.operation.duration [5m]) (by server))))\n"
    );
    assert_eq!(f.step_ms(), 30_000);
    assert_eq!(file("let a = 1").step_ms(), dsl::DEFAULT_STEP_MS);
}

#[test]
fn alert_block() {
    let src = r#"
let slo_p95 = 800ms
alert HighToolLatency {
  when     p95(mcp.server.operation.duration{mcp.method.name="tools/call"}[5m]) by (server, gen_ai.tool.name) > slo_p95
  for      10m                  # pending this long before firing (default 0)
  keep_firing 5m                # stays firing this long after the condition clears
  severity warning              # critical | warning | info
  labels   { team = "platform", tier = "{{server}}" }
  summary  "p95 of {{gen_ai.tool.name}} on {{server}} is {{value | duration}}"
  runbook  "https://runbooks.example/latency"
}
alert Minimal { when up == 0 }
"#;
    let f = file(src);
    assert_eq!(
        f.items[1].sexpr(),
        "(alert HighToolLatency (when (> (call p95 (sel mcp.server.operation.duration (= mcp.method.name \"tools/call\") [5m]) (by server gen_ai.tool.name)) (const slo_p95))) \
         (for 10m) (keep_firing 5m) (severity warning) (labels (team \"platform\") (tier \"{{server}}\")) \
         (summary \"p95 of {{gen_ai.tool.name}} on {{server}} is {{value | duration}}\") (runbook \"https://runbooks.example/latency\"))"
    );
    assert_eq!(f.items[2].sexpr(), "(alert Minimal (when (== (sel up) 0)))");
    let Item::Alert(a) = &f.items[1] else {
        unreachable!()
    };
    let vars: Vec<&str> = a.summary.as_ref().unwrap().vars().map(|(n, _)| n).collect();
    assert_eq!(vars, ["gen_ai.tool.name", "server", "value"]);
    assert_eq!(
        a.layout.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [
            "when",
            "for",
            "keep_firing",
            "severity",
            "labels",
            "summary",
            "runbook"
        ]
    );
    let Item::Alert(m) = &f.items[2] else {
        unreachable!()
    };
    assert_eq!(
        m.severity(),
        dsl::AlertSeverity::Warning,
        "severity defaults to warning"
    );
    for (word, sev) in [("critical", "critical"), ("info", "info")] {
        let f = file(&format!("alert A {{ when x > 1 severity {word} }}"));
        let Item::Alert(a) = &f.items[0] else {
            unreachable!()
        };
        assert_eq!(a.severity().name(), sev);
    }
}

#[test]
fn remediate_block() {
    let src = r#"
remediate RestartLeakingServer {
  on       MemoryExhaustion            # an alert name; several with `on A, B`
  where    severity == "critical"      # optional filter on the alert's labels
  do       exec "systemctl restart mcp@{{server}}"
  timeout  30s                         # the action's own limit
  cooldown 1h                          # no repeat for the same series within this
  max      3 per 24h                   # then stop acting and escalate
  verify   within 15m                  # the alert must resolve within this...
  escalate notify "oncall"             # ...or this runs
}
remediate Other {
  on A, B,C
  where (server =~ "edge-.*" or server != "x") and tool !~ "a|b"
  do webhook "http://hooks.example/x"
  max 0 per 1h
}
"#;
    let f = file(src);
    assert_eq!(
        f.items[0].sexpr(),
        "(remediate RestartLeakingServer (on MemoryExhaustion) (where (== severity \"critical\")) \
         (do exec \"systemctl restart mcp@{{server}}\") (timeout 30s) (cooldown 1h) (max 3 1d) \
         (verify 15m) (escalate notify \"oncall\"))"
    );
    assert_eq!(
        f.items[1].sexpr(),
        "(remediate Other (on A B C) (where (and (paren (or (=~ server \"edge-.*\") (!= server \"x\"))) (!~ tool \"a|b\"))) \
         (do webhook \"http://hooks.example/x\") (max 0 1h))"
    );
    // `and` binds tighter than `or`.
    let f =
        file("remediate R { on A where a == \"1\" or b == \"2\" and c == \"3\" do notify \"x\" }");
    assert_eq!(
        f.items[0].sexpr(),
        "(remediate R (on A) (where (or (== a \"1\") (and (== b \"2\") (== c \"3\")))) (do notify \"x\"))"
    );
}

#[test]
fn maintenance_block() {
    let src = r#"
maintenance DiskCleanup {
  when     time_to(disk.free_bytes[6h], 0) < 48h
  window   "Sat 02:00-04:00 UTC"       # next slot in which it may run
  do       exec "mcp-admin vacuum {{server}}"
  timeout  10m
  cooldown 12h
  max      1 per 1d
}
"#;
    let f = file(src);
    assert_eq!(
        f.items[0].sexpr(),
        "(maintenance DiskCleanup (when (< (call time_to (sel disk.free_bytes [6h]) 0) 2d)) \
         (window \"Sat 02:00-04:00 UTC\") (do exec \"mcp-admin vacuum {{server}}\") (timeout 10m) (cooldown 12h) (max 1 1d))"
    );
    let Item::Maintenance(m) = &f.items[0] else {
        unreachable!()
    };
    let w = m.window.window.as_ref().expect("window parses");
    assert_eq!(
        (w.days, w.start_min, w.end_min, w.offset_min),
        (1 << 5, 120, 240, 0)
    );
}

#[test]
fn test_block() {
    let src = r#"
test "latency alert waits ten minutes" {
  interval 1m
  series mcp.server.operation.duration{server="a", mcp.method.name="tools/call"} = "0.2x9 1.5x30"
  expect HighToolLatency at 12m == none
  expect HighToolLatency at 25m == firing { server="a", severity="warning" }
  expect HighToolLatency at 11m == pending
  expect RestartLeakingServer at 25m == none
  expect value(p95(mcp.server.operation.duration[5m])) at 20m == 1.5
  expect value(x) at 1m == -2 { server="a" }
  expect value(x) at 1m == 5m
  expect value(x) at 1m == 50%
  expect value(x) at 1m == +Inf
  expect value(x) at 2m == none
}
"#;
    let f = file(src);
    assert_eq!(
        f.items[0].sexpr(),
        "(test \"latency alert waits ten minutes\" (interval 1m) \
         (series (sel mcp.server.operation.duration (= server \"a\") (= mcp.method.name \"tools/call\")) \"0.2x9 1.5x30\") \
         (expect HighToolLatency 12m none) (expect HighToolLatency 25m firing (server \"a\") (severity \"warning\")) \
         (expect HighToolLatency 11m pending) (expect RestartLeakingServer 25m none) \
         (expect (value (call p95 (sel mcp.server.operation.duration [5m]))) 20m 1.5) \
         (expect (value (sel x)) 1m -2 (server \"a\")) (expect (value (sel x)) 1m 300) (expect (value (sel x)) 1m 0.5) \
         (expect (value (sel x)) 1m +Inf) (expect (value (sel x)) 2m none))"
    );
    let Item::Test(t) = &f.items[0] else {
        unreachable!()
    };
    let points = dsl::series::expand(t.series[0].points.as_ref().unwrap());
    assert_eq!(points.len(), 41, "0.2x9 is 10 values, 1.5x30 is 31");
}

#[test]
fn items_in_any_order_with_comments_everywhere() {
    let src = "# head\ntest \"t\" { } # trailing\n\n# between\nlet a = 1 # after\nalert A { # open\n # inside\n when x > a # after when\n} # close\n# tail";
    let f = file(src);
    assert_eq!(
        f.sexpr(),
        "(test \"t\")\n(let a 1)\n(alert A (when (> (sel x) (const a))))\n"
    );
}

#[test]
fn spans_point_at_the_source() {
    let f = file("let a = 1\n\nalert  Big {\n  when rate(x[5m])\n    > 2\n}\n");
    let Item::Alert(a) = &f.items[1] else {
        unreachable!()
    };
    assert_eq!((a.span.line, a.span.col), (3, 1));
    assert_eq!((a.name.span.line, a.name.span.col), (3, 8));
    let w = a.when.span();
    assert_eq!((w.line, w.col), (4, 8));
    assert_eq!(
        &"let a = 1\n\nalert  Big {\n  when rate(x[5m])\n    > 2\n}\n"[w.start..w.end],
        "rate(x[5m])\n    > 2"
    );
    // Spans do not take in trailing comments or blank lines.
    let src = "let a = 1 + 2   # c\n\n";
    let f = file(src);
    let s = f.items[0].span();
    assert_eq!(&src[s.start..s.end], "let a = 1 + 2");
}

#[test]
fn constants_inline_for_the_engine() {
    let f = file("let a = 2\nlet b = a * 3\nrecord r = x > b\n");
    let Item::Record(r) = &f.items[2] else {
        unreachable!()
    };
    assert_eq!(r.expr.sexpr(), "(> (sel x) (const b))");
    // Folded to the number they stand for, once.
    let consts = mcpops::dsl::constants::Constants::resolve(&f);
    assert_eq!(r.expr.with_constants(&consts).sexpr(), "(> (sel x) 6)");
}

#[test]
fn alert_resolve_when() {
    let src = r#"
let low = 80%
alert HighCpu {
  when         cpu.utilization > 90%
  resolve when cpu.utilization < low   # hysteresis
  for          5m
}
"#;
    let f = file(src);
    assert_eq!(
        f.items[1].sexpr(),
        "(alert HighCpu (when (> (sel cpu.utilization) 0.9)) (resolve_when (< (sel cpu.utilization) (const low))) (for 5m))"
    );
    let Item::Alert(a) = &f.items[1] else {
        unreachable!()
    };
    assert_eq!(
        a.layout.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["when", "resolve", "for"]
    );
}

#[test]
fn remediation_safety_settings() {
    let src = r#"
let healthy = 0.8
remediate RestartServer {
  on          ToolErrors
  do          exec "restart {{server}}"
  concurrency 2
  concurrency 1 per server
  breaker     5 per 1h
  guard       count(up == 1) / count(up) >= healthy
  approve     within 15m by "oncall"
  mode        dry-run
  escalate    notify "oncall"
}
maintenance Vacuum {
  when   disk.free_bytes < 1GiB
  window "Sat 02:00-04:00 UTC"
  do     exec "vacuum {{server}}"
  guard  up == 1
  mode   auto
}
"#;
    let f = file(src);
    assert_eq!(
        f.items[1].sexpr(),
        "(remediate RestartServer (on ToolErrors) (do exec \"restart {{server}}\") (escalate notify \"oncall\") \
         (concurrency 2) (concurrency 1 (per server)) (breaker 5 1h) \
         (guard (>= (/ (agg count (== (sel up) 1)) (agg count (sel up))) (const healthy))) \
         (approve 15m \"oncall\") (mode dry-run))"
    );
    assert_eq!(
        f.items[2].sexpr(),
        "(maintenance Vacuum (when (< (sel disk.free_bytes) 1073741824)) (window \"Sat 02:00-04:00 UTC\") \
         (do exec \"vacuum {{server}}\") (guard (== (sel up) 1)) (mode auto))"
    );
    let Item::Remediate(r) = &f.items[1] else {
        unreachable!()
    };
    assert_eq!(
        r.layout.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [
            "on",
            "do",
            "concurrency",
            "concurrency per",
            "breaker",
            "guard",
            "approve",
            "mode",
            "escalate"
        ]
    );
    assert_eq!(r.mode.map(|m| m.0), Some(dsl::Mode::DryRun));
    assert_eq!(r.approve.as_ref().unwrap().within.ms, 15 * 60_000);
    assert_eq!(r.approve.as_ref().unwrap().by.value, "oncall");
}

#[test]
fn suppress_items() {
    let f = file(
        "suppress ToolErrors while ServerDown\nsuppress HighLatency while ServerDown on (server, region,)\n",
    );
    assert_eq!(
        f.sexpr(),
        "(suppress ToolErrors ServerDown)\n(suppress HighLatency ServerDown (on server region))\n"
    );
    assert_eq!(f.suppressions().count(), 2);
}

#[test]
fn resolved_and_action_expectations() {
    let src = r#"
test "t" {
  expect HighCpu at 10m == resolved { server="a" }
  expect RestartServer at 5m == run
  expect RestartServer at 6m == escalated
  expect RestartServer at 7m == suppressed
  expect RestartServer at 8m == awaiting_approval
}
"#;
    assert_eq!(
        file(src).items[0].sexpr(),
        "(test \"t\" (expect HighCpu 10m resolved (server \"a\")) (expect RestartServer 5m run) \
         (expect RestartServer 6m escalated) (expect RestartServer 7m suppressed) \
         (expect RestartServer 8m awaiting_approval))"
    );
}

#[test]
fn new_keywords_are_label_names_but_not_metric_names() {
    // As with `window` and `interval`: a label may be called `mode`.
    assert_eq!(
        expr(r#"node_cpu_seconds_total{mode="idle", guard="x"}"#),
        r#"(sel node_cpu_seconds_total (= mode "idle") (= guard "x"))"#
    );
    assert_eq!(expr("sum by (mode) (x)"), "(agg sum (by mode) (sel x))");
    assert_eq!(
        expr("mode_total + resolve.count"),
        "(+ (sel mode_total) (sel resolve.count))"
    );
    for word in [
        "resolve",
        "concurrency",
        "breaker",
        "guard",
        "approve",
        "mode",
        "suppress",
        "while",
    ] {
        assert!(
            dsl::parse_str(&format!("record r = {word}\n"), "t.rules").is_err(),
            "`{word}` is reserved"
        );
    }
}
