//! The function registry, its kernels, the language reference and the
//! golden corpus name the same functions, over time, over histograms and
//! across series (as Prometheus's `TestFunctionList` keeps its parser's
//! table and its implementations in step). Adding a
//! function to the registry without documenting it in `docs/language.md`, or
//! without an expectation in `tests/lang/`, fails here; one without a kernel
//! does not build.

use mcpops::dsl::ast::Expr;
use mcpops::dsl::functions::{
    AGGREGATIONS, Param, Pool, functions, histogram_functions, instant_functions,
};
use mcpops::dsl::parse_query;
use mcpops::dsl::series::parse;
use mcpops::engine::testrun::series_from_notation;
use mcpops::engine::{Evaluator, Grid, MemorySource, Value};
use std::collections::BTreeSet;
use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The names under `### \`NAME\`` headings of one `## ` section of the
/// language reference.
fn documented(section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo("docs/language.md")).expect("read docs/language.md");
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim() == section;
        } else if inside && let Some(h) = line.strip_prefix("### ") {
            let name = h.trim().trim_matches('`');
            names.insert(name.to_string());
        }
    }
    assert!(
        !names.is_empty(),
        "docs/language.md has no `## {section}` section with `### `NAME`` entries"
    );
    names
}

fn differences(what: &str, registry: &BTreeSet<String>, other: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for n in registry.difference(other) {
        out.push(format!("`{n}` is in the registry but not in {what}"));
    }
    for n in other.difference(registry) {
        out.push(format!("`{n}` is in {what} but not in the registry"));
    }
    out
}

#[test]
fn the_language_reference_documents_every_function_and_no_other() {
    let over_time: BTreeSet<String> = functions().map(|f| f.name.to_string()).collect();
    let across: BTreeSet<String> = AGGREGATIONS.iter().map(|a| a.name.to_string()).collect();
    let mut problems = differences(
        "docs/language.md's `## Functions over time`",
        &over_time,
        &documented("Functions over time"),
    );
    problems.extend(differences(
        "docs/language.md's `## Aggregations across series`",
        &across,
        &documented("Aggregations across series"),
    ));
    let histograms: BTreeSet<String> = histogram_functions().map(|f| f.name.to_string()).collect();
    problems.extend(differences(
        "docs/language.md's `## Functions over histograms`",
        &histograms,
        &documented("Functions over histograms"),
    ));
    let instant: BTreeSet<String> = instant_functions().map(|f| f.name.to_string()).collect();
    problems.extend(differences(
        "docs/language.md's `## Functions at an instant`",
        &instant,
        &documented("Functions at an instant"),
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each function is checked by value in the golden corpus (`tests/lang`),
/// over time and across series as the name is used.
#[test]
fn every_function_is_checked_by_value_somewhere() {
    use crate::lang::{corpus, located};
    use mcpops::dsl::ast::{ExpectTarget, Expr};
    use mcpops::dsl::load_rules;

    fn visit(e: &Expr, calls: &mut BTreeSet<String>, aggs: &mut BTreeSet<String>) {
        match e {
            Expr::Call(c) => {
                calls.insert(c.func.name.clone());
            }
            Expr::Aggregate(a) => {
                aggs.insert(a.op.name.clone());
            }
            _ => {}
        }
        for child in e.children() {
            visit(child, calls, aggs);
        }
    }

    let (mut calls, mut aggs) = (BTreeSet::new(), BTreeSet::new());
    for f in corpus() {
        let set = load_rules(&[located(&f)]).expect("readable");
        for file in &set.files {
            for t in file.tests() {
                for e in &t.expects {
                    if let ExpectTarget::Value(x) = &e.target {
                        visit(x, &mut calls, &mut aggs);
                    }
                }
            }
        }
    }
    let missing: Vec<String> = functions()
        .filter(|f| !calls.contains(f.name))
        .map(|f| format!("{} (over time)", f.name))
        .chain(
            histogram_functions()
                .filter(|f| !calls.contains(f.name))
                .map(|f| format!("{} (over histograms)", f.name)),
        )
        .chain(
            instant_functions()
                .filter(|f| !calls.contains(f.name))
                .map(|f| format!("{} (at an instant)", f.name)),
        )
        .chain(
            AGGREGATIONS
                .iter()
                .filter(|a| !aggs.contains(a.name))
                .map(|a| format!("{} (across series)", a.name)),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "no `expect value(...)` in tests/lang uses: {}",
        missing.join(", ")
    );
}

/// Every function over time runs through its kernel, each series' and
/// pooled where it pools, on a counter and a gauge.
#[test]
fn every_function_has_a_kernel_that_runs() {
    let series = |sel: &str, notation: &str| {
        let Expr::Selector(s) = parse_query(sel).expect("selector") else {
            panic!("{sel}")
        };
        series_from_notation(&s, &parse(notation).expect("notation"), 60_000)
    };
    let source = MemorySource::new(vec![
        series(r#"x{server="a", tool="t"}"#, "1+2x40"),
        series(r#"x{server="a", tool="u"}"#, "5 3 8 1x37"),
        series(r#"limit{server="a", tool="t"}"#, "100x40"),
    ]);
    let at = 40 * 60_000;
    for f in functions() {
        let args: Vec<String> = f
            .params
            .iter()
            .map(|p| match p {
                Param::Range => "x[10m]".to_string(),
                Param::Scalar => "0.5".to_string(),
                Param::Threshold => "1000".to_string(),
                Param::Instant | Param::Series | Param::Text | Param::OptScalar => {
                    unreachable!("a function over time takes a range and numbers")
                }
            })
            .collect();
        let mut exprs = vec![format!("{}({})", f.name, args.join(", "))];
        if f.pool != Pool::Not {
            exprs.push(format!("{}({}) by (server)", f.name, args.join(", ")));
        }
        for text in exprs {
            let expr = parse_query(&text).unwrap_or_else(|d| panic!("`{text}`: {d:?}"));
            match Evaluator::new(&source, Grid::instant(at)).eval(&expr) {
                Ok(Value::Vector(_)) => {}
                Ok(Value::Scalar(x)) => panic!("`{text}` gave the number {x}, not series"),
                Err(e) => panic!("`{text}`: {e}"),
            }
        }
    }
    // Over histograms: buckets as they are, under rate, summed by (le, ...).
    let buckets = MemorySource::new(vec![
        series(r#"h_bucket{server="a", tool="t", le="0.1"}"#, "0+1x40"),
        series(r#"h_bucket{server="a", tool="t", le="1"}"#, "0+3x40"),
        series(r#"h_bucket{server="a", tool="t", le="+Inf"}"#, "0+4x40"),
    ]);
    for f in histogram_functions() {
        let numbers: Vec<&str> = f
            .params
            .iter()
            .filter(|p| **p == Param::Scalar)
            .zip(["0.1", "0.5"])
            .map(|(_, x)| x)
            .collect();
        for arg in [
            "h_bucket",
            "rate(h_bucket[10m])",
            "sum by (le, server) (rate(h_bucket[10m]))",
        ] {
            let text = format!("{}({}, {arg})", f.name, numbers.join(", "));
            let expr = parse_query(&text).unwrap_or_else(|d| panic!("`{text}`: {d:?}"));
            match Evaluator::new(&buckets, Grid::instant(at)).eval(&expr) {
                Ok(Value::Vector(v)) => assert!(
                    v.len() == 1 && v[0].at(0).is_some_and(f64::is_finite),
                    "`{text}` gave {v:?}, not one finite value"
                ),
                Ok(Value::Scalar(x)) => panic!("`{text}` gave the number {x}, not series"),
                Err(e) => panic!("`{text}`: {e}"),
            }
        }
    }
    for a in AGGREGATIONS {
        let param = if a.param { "1, " } else { "" };
        let text = format!("{} by (server) ({param}x)", a.name);
        let expr = parse_query(&text).unwrap_or_else(|d| panic!("`{text}`: {d:?}"));
        let got = Evaluator::new(&source, Grid::instant(at))
            .eval(&expr)
            .unwrap_or_else(|e| panic!("`{text}`: {e}"));
        assert!(
            matches!(got, Value::Vector(v) if !v.is_empty()),
            "`{text}` gave no series"
        );
    }
}
