//! The formatter: canonical layout, comments kept, idempotent, and the
//! formatted text parses to the same tree. Also `mcpops fmt`.

use crate::common;
use mcpops::dsl;
use std::path::Path;

/// `mcpops fmt [--check] FILES...`.
fn fmt(files: &[&Path], check: bool) -> std::process::Output {
    let mut args = vec!["fmt"];
    if check {
        args.push("--check");
    }
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let store = std::env::temp_dir().join("mcpops-fmt-test-unused-store");
    common::mcpops(&store, &args)
}

/// Comment texts in order (strings skipped).
fn comments(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let mut in_str = false;
        let mut esc = false;
        for (i, c) in line.char_indices() {
            if in_str {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if c == '"' {
                in_str = true;
            } else if c == '#' {
                out.push(line[i..].trim_end().to_string());
                break;
            }
        }
    }
    out
}

/// Formats `src` and checks the formatter's promises on it; returns the output.
#[track_caller]
fn roundtrip(src: &str) -> String {
    let tree = dsl::parse_str(src, "t.rules").expect("parses").sexpr();
    let once = dsl::format_str(src, "t.rules").expect("formats");
    let again = dsl::format_str(&once, "t.rules").expect("formatted text parses");
    assert_eq!(once, again, "formatting twice changes the text:\n{once}");
    assert_eq!(
        dsl::parse_str(&once, "t.rules").unwrap().sexpr(),
        tree,
        "formatted text has another tree:\n{once}"
    );
    let mut a = comments(src);
    let mut b = comments(&once);
    a.sort();
    b.sort();
    assert_eq!(a, b, "comments lost or changed:\n{once}");
    once
}

#[test]
fn canonical_layout() {
    let messy = r#"# head comment
let   slo_p95=800ms
let budget = 0.1%   # trailing
evaluate   every 30s
alert HighToolLatency{when p95(mcp.server.operation.duration{mcp.method.name="tools/call"}[5m])by(server,gen_ai.tool.name)>slo_p95
for 10m
keep_firing 5m
  severity   warning labels{team="platform",}
summary "p95 is {{value|duration}}"
}
record r=sum(x)by(a)
remediate R{on A,B where severity=="critical"and(server=~"a.*"or server!="b")
do exec "x \"y\" \\ z" max 3 per 24h cooldown 1h}
test "t"{interval 1m
series x{a="b"}="1+1x3"
expect value(-x^2) at 5m==-1.5{a="b"}
expect A at 1m==firing{ }}
"#;
    let want = r#"# head comment
let slo_p95 = 800ms
let budget = 0.1%  # trailing
evaluate every 30s

alert HighToolLatency {
  when     p95(mcp.server.operation.duration{mcp.method.name="tools/call"}[5m]) by (server, gen_ai.tool.name) > slo_p95
  for      10m
  keep_firing 5m
  severity warning
  labels   { team = "platform" }
  summary  "p95 is {{value|duration}}"
}

record r = sum by (a) (x)

remediate R {
  on       A, B
  where    severity == "critical" and (server =~ "a.*" or server != "b")
  do       exec "x \"y\" \\ z"
  max      3 per 24h
  cooldown 1h
}

test "t" {
  interval 1m
  series x{a="b"} = "1+1x3"
  expect value(-x ^ 2) at 5m == -1.5 { a="b" }
  expect A at 1m == firing
}
"#;
    assert_eq!(roundtrip(messy), want);
}

#[test]
fn comments_stay_where_they_were() {
    let src = "# file header\n\n# about A\nalert A {  # opens\n  # before when\n  when x > 1  # after when\n  # before the brace\n}  # closes\n# between\nlet a = 1\n\n\n\n# at the end\n";
    let want = "# file header\n\n# about A\nalert A {  # opens\n  # before when\n  when     x > 1  # after when\n  # before the brace\n}  # closes\n\n# between\nlet a = 1\n\n# at the end\n";
    assert_eq!(roundtrip(src), want);
    // A comment inside a multi-line setting moves to just before it.
    let src = "alert A {\n  when x # odd place\n    > 1\n}\n";
    assert_eq!(
        roundtrip(src),
        "alert A {\n  # odd place\n  when     x > 1\n}\n"
    );
    // A `#` in a string is not a comment.
    let src = "alert A {\n  when x > 1\n  summary \"issue #12\" # real\n}\n";
    assert_eq!(
        roundtrip(src),
        "alert A {\n  when     x > 1\n  summary  \"issue #12\"  # real\n}\n"
    );
}

#[test]
fn long_expressions_break_before_operators() {
    let src = "alert Burn {\n  when count(mcp.server.operation.duration{error.type!=\"\"}[1h]) by (server) / count(mcp.server.operation.duration[1h]) by (server) > 14.4 * 0.001 and count(mcp.server.operation.duration{error.type!=\"\"}[5m]) by (server) / count(mcp.server.operation.duration[5m]) by (server) > 14.4 * 0.001\n}\nrecord server:error_ratio:5m = count(mcp.server.operation.duration{error.type!=\"\"}[5m]) by (server) / count(mcp.server.operation.duration[5m]) by (server)\n";
    let want = "alert Burn {\n  when     count(mcp.server.operation.duration{error.type!=\"\"}[1h]) by (server)\n             / count(mcp.server.operation.duration[1h]) by (server) > 14.4 * 0.001\n           and count(mcp.server.operation.duration{error.type!=\"\"}[5m]) by (server)\n             / count(mcp.server.operation.duration[5m]) by (server) > 14.4 * 0.001\n}\n\nrecord server:error_ratio:5m =\n  count(mcp.server.operation.duration{error.type!=\"\"}[5m]) by (server)\n  / count(mcp.server.operation.duration[5m]) by (server)\n";
    assert_eq!(roundtrip(src), want);
    for line in want.lines() {
        assert!(line.chars().count() <= dsl::format::WIDTH, "{line}");
    }
}

#[test]
fn every_table_input_round_trips() {
    let inputs = [
        "let a = -2\nlet b = 1e-3\nlet c = 99.9%\nlet d = 512KiB\nlet e = 1h30m\nlet f = \"a \\\"q\\\" \\\\\"\nlet g = Inf\nlet h = -Inf\nlet i = NaN\nlet j = --2\n",
        "record r = a - (b - c) + -(d) * e ^ -f ^ g % h\n",
        "record r = a > bool on (x, y) b or c and d unless e == f != g <= h >= i < j\n",
        "record r = topk by (a) (3, x) + bottomk(2, y) + quantile(0.5, z) + sum without (a) (w)\n",
        "record r = quantile(0.9, x[5m]) + predict(x[1h], 4h) + time_to(x[6h], y) + absent(x{a=\"b\"}[5m])\n",
        "record r = p95(x{a=~\"b.*\", c!~\"d\", e!=\"\"}[5m] offset 1d) without (s) + count(x[5m]) by (a,)\n",
        "record r = ((((x))))\n",
        "record r = sum(\n  x\n)\n",
        "alert A {\n  when x > 1\n  for 0s\n  keep_firing 1m\n  severity critical\n  labels {}\n  runbook \"r\"\n}\n",
        "remediate R { on A do notify \"x\" escalate webhook \"http://x\" verify within 1m timeout 5s }\n",
        "maintenance M { window \"Mon-Fri 01:00-02:00 +01:00\" when x < 1 do exec \"v {{server}}\" max 1 per 1d timeout 1m cooldown 1h }\n",
        "test \"empty\" {}\ntest \"t\" {\n  expect value(1) at 0s == 1\n  series x = \"_x3 stale\"\n  expect A at 1m == pending { a=\"b\", c=\"d\" }\n}\n",
        "# only a comment",
        "",
        "\n\n# c1\n\n\n# c2\n\n",
        "alert A { when x > 1 } alert B { when y > 1 } # two on a line\n",
        "let a = 1 let b = 2\n",
    ];
    for src in inputs {
        roundtrip(src);
    }
}

#[test]
fn files_with_syntax_errors_are_not_formatted() {
    let e = dsl::format_str("alert A {\n  for soon\n}\n", "t.rules").unwrap_err();
    assert_eq!((e[0].line, e[0].col), (2, 7));
    // Semantic errors do not stop the formatter.
    assert_eq!(
        dsl::format_str("record r = rate(x)", "t").unwrap(),
        "record r = rate(x)\n"
    );
}

#[test]
fn fmt_command_rewrites_or_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clean = dir.join("clean.rules");
    let messy = dir.join("messy.rules");
    let broken = dir.join("broken.rules");
    std::fs::write(&clean, "let a = 1\n").unwrap();
    std::fs::write(&messy, "let   a=1\n").unwrap();
    std::fs::write(&broken, "let a =\n").unwrap();

    // --check lists what would change, and exits 1 for it.
    let o = fmt(&[&clean, &messy], true);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("{}\n", messy.display())
    );
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "let   a=1\n",
        "--check leaves files alone"
    );

    // A file that does not parse is left alone (exit 3); the others are formatted.
    let o = fmt(&[&clean, &messy, &broken], false);
    assert_eq!(o.status.code(), Some(3), "{}", common::text(&o));
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .contains(&format!("{}\n", messy.display()))
    );
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), "let a = 1\n");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "let a =\n");
    let o = fmt(&[&messy], true);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    assert!(o.stdout.is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "no temporary files left: {leftovers:?}");

    let o = fmt(&[&dir.join("missing.rules")], true);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
}

#[cfg(unix)]
#[test]
fn fmt_writes_through_a_symlink_to_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("shared");
    std::fs::create_dir_all(&real_dir).unwrap();
    let target = real_dir.join("policy.rules");
    std::fs::write(&target, "let   a=1\n").unwrap();
    let link = dir.path().join("link.rules");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let o = fmt(&[&link], false);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("{}\n", link.display())
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "let a = 1\n");
    // No temporary file is left beside the link or the target.
    for d in [dir.path(), real_dir.as_path()] {
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}

#[test]
fn live_rule_settings_print_canonically() {
    let messy = r#"alert HighCpu{when cpu > 90%
resolve   when cpu<80%   # hysteresis
for 5m}
remediate R{on HighCpu do exec "restart {{server}}" concurrency 1 per server
concurrency   2 breaker 5 per 1h guard count(up==1)/count(up)>=0.8
approve within 15m by "on\"call" mode dry-run escalate notify "oncall"}
maintenance M{when x<1 window "Sat 02:00-04:00 UTC" do exec "v" guard up==1 mode auto}
suppress   HighCpu   while ServerDown on(server,region,)
suppress A while B
test "t"{expect HighCpu at 10m==resolved{server="a"}
expect R at 5m==run
expect R at 6m==escalated
expect R at 7m==suppressed
expect R at 8m==awaiting_approval}
"#;
    let want = r#"alert HighCpu {
  when     cpu > 90%
  resolve when cpu < 80%  # hysteresis
  for      5m
}

remediate R {
  on       HighCpu
  do       exec "restart {{server}}"
  concurrency 1 per server
  concurrency 2
  breaker  5 per 1h
  guard    count(up == 1) / count(up) >= 0.8
  approve  within 15m by "on\"call"
  mode     dry-run
  escalate notify "oncall"
}

maintenance M {
  when     x < 1
  window   "Sat 02:00-04:00 UTC"
  do       exec "v"
  guard    up == 1
  mode     auto
}

suppress HighCpu while ServerDown on (server, region)
suppress A while B

test "t" {
  expect HighCpu at 10m == resolved { server="a" }
  expect R at 5m == run
  expect R at 6m == escalated
  expect R at 7m == suppressed
  expect R at 8m == awaiting_approval
}
"#;
    assert_eq!(roundtrip(messy), want);
    // A long guard breaks as a long `when` does.
    let long = "remediate R {\n  on A\n  do notify \"x\"\n  guard count(mcp.server.operation.duration{error.type!=\"\"}[1h]) by (server) / count(mcp.server.operation.duration[1h]) by (server) < 0.5 and count(up == 1) / count(up) >= 0.8\n}\n";
    for line in roundtrip(long).lines() {
        assert!(line.chars().count() <= dsl::format::WIDTH, "{line}");
    }
}
