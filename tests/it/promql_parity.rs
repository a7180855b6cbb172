//! PromQL parity: the values promtool 2.42 gave for the same series and the
//! same query (tests/data/promql_parity.json, made by
//! `python3 scripts/promql-parity.py`), compared with the engine's within a
//! relative 1e-6. Series notation, eval times and labels are promtool's.

use mcpops::dsl::ast::Expr;
use mcpops::dsl::parse_query;
use mcpops::dsl::series::parse;
use mcpops::engine::testrun::series_from_notation;
use mcpops::engine::{Evaluator, Grid, MemorySource, Value};
use mcpops::store::SeriesData;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    name: String,
    interval: String,
    series: Vec<SeriesSpec>,
    promql: String,
    dsl: String,
    eval_time: String,
    expected: Vec<Expected>,
}

#[derive(Deserialize)]
struct SeriesSpec {
    selector: String,
    values: String,
}

#[derive(Deserialize)]
struct Expected {
    labels: BTreeMap<String, String>,
    value: serde_json::Value,
}

fn number(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().expect("f64"),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => panic!("value {other}"),
        },
        other => panic!("value {other}"),
    }
}

fn series(spec: &SeriesSpec, interval_ms: i64) -> SeriesData {
    let Expr::Selector(sel) = parse_query(&spec.selector).expect("selector") else {
        panic!("{} is not a selector", spec.selector)
    };
    let runs = parse(&spec.values).expect("series notation");
    series_from_notation(&sel, &runs, interval_ms)
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

#[test]
fn engine_equals_promtool_on_every_case() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/promql_parity.json");
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let interval = mcpops::time::parse_duration_ms(&case.interval).expect("interval");
        let at = mcpops::time::parse_duration_ms(&case.eval_time).expect("eval_time");
        let source = MemorySource::new(case.series.iter().map(|s| series(s, interval)).collect());
        let expr = match parse_query(&case.dsl) {
            Ok(e) => e,
            Err(d) => {
                failures.push(format!(
                    "{}: `{}` does not parse: {d:?}",
                    case.name, case.dsl
                ));
                continue;
            }
        };
        let got: Vec<(BTreeMap<String, String>, f64)> =
            match Evaluator::new(&source, Grid::instant(at)).eval(&expr) {
                Ok(Value::Scalar(x)) => vec![(BTreeMap::new(), x)],
                Ok(Value::Vector(v)) => v
                    .into_iter()
                    .filter_map(|s| s.at(0).map(|x| (s.labels.into_iter().collect(), x)))
                    .collect(),
                Err(e) => {
                    failures.push(format!("{}: {e}", case.name));
                    continue;
                }
            };
        let mut want: Vec<(BTreeMap<String, String>, f64)> = case
            .expected
            .iter()
            .map(|e| (e.labels.clone(), number(&e.value)))
            .collect();
        let mut got = got;
        want.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let ok = want.len() == got.len()
            && want
                .iter()
                .zip(&got)
                .all(|(w, g)| w.0 == g.0 && same(w.1, g.1));
        if !ok {
            failures.push(format!(
                "{}\n    promql: {}\n    dsl:    {}\n    promtool: {want:?}\n    engine:   {got:?}",
                case.name, case.promql, case.dsl
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
