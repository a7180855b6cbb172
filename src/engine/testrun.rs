//! `mcpops test`: runs the `test` blocks of rule files. Each block's series
//! (promtool's notation) become an in-memory source starting at time 0; every
//! rule of the given files is replayed over it at the file's step; each
//! `expect` is then checked against the replay.

use super::EngineError;
use super::eval::Evaluator;
use super::replay::{Replay, replay};
use super::source::{MemorySource, Overlay};
use super::value::{Grid, Labels, Value, format_labels, stale_nan};
use crate::dsl::ast::{
    AlertState, Expect, ExpectResult, ExpectTarget, RuleFile, Selector, TestBlock,
};
use crate::dsl::constants::Constants;
use crate::dsl::series::{Point, Run, expand};
use crate::model::SeriesKey;
use crate::remediate::decide::Approvals;
use crate::store::SeriesData;
use crate::time::format_duration_ms;
use serde::Serialize;

/// Relative tolerance of `expect value(..) == V`.
pub const TOLERANCE: f64 = 1e-6;

/// One expectation that did not hold.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub line: u32,
    pub col: u32,
    /// The expectation as written (reconstructed).
    pub expect: String,
    pub expected: String,
    pub actual: String,
}

/// The outcome of one test block.
#[derive(Clone, Debug, Serialize)]
pub struct TestOutcome {
    pub file: String,
    pub name: String,
    pub line: u32,
    pub expects: usize,
    pub failures: Vec<Failure>,
    /// Set when the block could not be evaluated at all.
    pub error: Option<String>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.error.is_none()
    }
}

/// Runs every test block of `files`, against the rules of all of them.
pub fn run_tests(files: &[RuleFile]) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    for f in files {
        for t in f.tests() {
            let mut outcome = TestOutcome {
                file: f.name.clone(),
                name: t.name.value.clone(),
                line: t.span.line,
                expects: t.expects.len(),
                failures: Vec::new(),
                error: None,
            };
            match run_block(files, f, t) {
                Ok(failures) => outcome.failures = failures,
                Err(e) => outcome.error = Some(e.to_string()),
            }
            out.push(outcome);
        }
    }
    out
}

/// A series written in the test notation, its first point at time 0: the
/// selector's matchers are its labels; `stale` becomes a staleness marker.
pub fn series_from_notation(selector: &Selector, runs: &[Run], interval_ms: i64) -> SeriesData {
    let labels = selector
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (i, p) in expand(runs).into_iter().enumerate() {
        let value = match p {
            Point::Value(v) => v,
            Point::Stale => stale_nan(),
            Point::Missing => continue,
        };
        timestamps.push(i as i64 * interval_ms);
        values.push(value);
    }
    SeriesData {
        key: SeriesKey::new(selector.metric.name.clone(), labels),
        timestamps,
        values,
    }
}

fn test_series(t: &TestBlock) -> Vec<SeriesData> {
    let interval = t.interval.as_ref().map_or(60_000, |d| d.ms);
    t.series
        .iter()
        .map(|s| series_from_notation(&s.selector, s.points.as_deref().unwrap_or(&[]), interval))
        .collect()
}

fn run_block(
    files: &[RuleFile],
    file: &RuleFile,
    t: &TestBlock,
) -> Result<Vec<Failure>, EngineError> {
    let source = MemorySource::new(test_series(t));
    let step = file.step_ms();
    let last = t.expects.iter().map(|e| e.at.ms).max().unwrap_or(0);
    let grid = Grid::checked_range(0, last, step)?;
    // A test has no journal: nothing was approved.
    let rp = replay(
        files,
        &source,
        grid,
        super::budget::DEFAULT_MAX_SAMPLES,
        &Approvals::new(),
    )?;
    let records = rp.record_source();
    let overlay = Overlay {
        base: &source,
        extra: records,
    };
    let consts = Constants::resolve(file);
    let mut failures = Vec::new();
    for e in &t.expects {
        if let Some(f) = check(&consts, e, &rp, &overlay, step)? {
            failures.push(f);
        }
    }
    Ok(failures)
}

fn has_labels(labels: &Labels, want: &[(String, String)]) -> bool {
    want.iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= TOLERANCE * a.abs().max(b.abs())
}

fn check(
    consts: &Constants,
    e: &Expect,
    rp: &Replay,
    source: &Overlay,
    step: i64,
) -> Result<Option<Failure>, EngineError> {
    let at = e.at.ms;
    let want: Vec<(String, String)> = e
        .labels
        .iter()
        .map(|(k, v)| (k.name.clone(), v.value.clone()))
        .collect();
    let want_text = if want.is_empty() {
        String::new()
    } else {
        format!(" {}", format_labels(&want))
    };
    let (target, expected, actual, ok) = match &e.target {
        ExpectTarget::Value(expr) => {
            let value =
                Evaluator::new(source, Grid::instant(at)).eval(&expr.with_constants(consts))?;
            let results: Vec<(Labels, f64)> = match value {
                Value::Scalar(x) => vec![(Labels::new(), x)],
                Value::Vector(v) => v
                    .into_iter()
                    .filter_map(|s| s.at(0).map(|x| (s.labels, x)))
                    .collect(),
            };
            let actual = if results.is_empty() {
                "none".to_string()
            } else {
                results
                    .iter()
                    .map(|(l, x)| format!("{x} {}", format_labels(l)))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let picked: Vec<&(Labels, f64)> = results
                .iter()
                .filter(|(l, _)| has_labels(l, &want))
                .collect();
            let (expected, ok) = match &e.result {
                ExpectResult::None => ("none".to_string(), picked.is_empty()),
                ExpectResult::Value(n) => (
                    format!("{}{want_text}", n.text),
                    picked.len() == 1 && close(picked[0].1, n.value),
                ),
                ExpectResult::State(_) | ExpectResult::Action(_) => ("a value".to_string(), false),
            };
            (
                format!("value({})", crate::dsl::format::render(expr)),
                expected,
                actual,
                ok,
            )
        }
        ExpectTarget::Alert(name) if matches!(e.result, ExpectResult::Action(_)) => {
            let ExpectResult::Action(state) = e.result else {
                unreachable!("matched above")
            };
            let name = name.name.as_str();
            let events: Vec<_> = rp
                .actions
                .iter()
                .filter(|a| a.policy == name && a.time == at)
                .collect();
            let actual = if events.is_empty() {
                "none".to_string()
            } else {
                events
                    .iter()
                    .map(|a| format!("{} {}", a.kind.name(), format_labels(&a.labels)))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let ok = events
                .iter()
                .any(|a| a.kind.action_state() == Some(state) && has_labels(&a.labels, &want));
            (
                name.to_string(),
                format!("{}{want_text}", state.word()),
                actual,
                ok,
            )
        }
        ExpectTarget::Alert(name) => {
            let name = name.name.as_str();
            let episodes: Vec<_> = rp.episodes.iter().filter(|x| x.alert == name).collect();
            let firing: Vec<&Labels> = episodes
                .iter()
                .filter(|x| x.firing_at(at))
                .map(|x| &x.labels)
                .collect();
            let pending: Vec<&Labels> = episodes
                .iter()
                .filter(|x| x.pending_at(at))
                .map(|x| &x.labels)
                .collect();
            // Fired before `at` and ended by then.
            let resolved: Vec<&Labels> = episodes
                .iter()
                .filter(|x| {
                    x.fired_at.is_some_and(|f| f < at) && x.ended_at.is_some_and(|end| end <= at)
                })
                .map(|x| &x.labels)
                .collect();
            let acting: Vec<&Labels> = rp
                .policy_active(name, at, step)
                .into_iter()
                .map(|a| &a.labels)
                .collect();
            let describe = |state: &str, l: &[&Labels]| -> Vec<String> {
                l.iter()
                    .map(|l| format!("{state} {}", format_labels(l)))
                    .collect()
            };
            let mut states = describe("firing", &firing);
            states.extend(describe("pending", &pending));
            states.extend(describe("acting", &acting));
            if matches!(e.result, ExpectResult::State(AlertState::Resolved)) {
                states.extend(describe("resolved", &resolved));
            }
            let actual = if states.is_empty() {
                "none".to_string()
            } else {
                states.join("; ")
            };
            let firing_match = firing.iter().chain(&acting).any(|l| has_labels(l, &want));
            let (expected, ok) = match &e.result {
                ExpectResult::None => ("none".to_string(), !firing_match),
                ExpectResult::State(AlertState::Firing) => {
                    (format!("firing{want_text}"), firing_match)
                }
                ExpectResult::State(AlertState::Pending) => (
                    format!("pending{want_text}"),
                    pending.iter().any(|l| has_labels(l, &want)),
                ),
                ExpectResult::State(AlertState::Resolved) => (
                    format!("resolved{want_text}"),
                    !firing_match && resolved.iter().any(|l| has_labels(l, &want)),
                ),
                ExpectResult::Action(_) => unreachable!("matched by the arm above"),
                ExpectResult::Value(_) => ("a state".to_string(), false),
            };
            (name.to_string(), expected, actual, ok)
        }
    };
    Ok((!ok).then(|| Failure {
        line: e.span.line,
        col: e.span.col,
        expect: format!("expect {target} at {}", format_duration_ms(at)),
        expected,
        actual,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(src: &str) -> Vec<String> {
        let f = crate::dsl::parse_str(src, "t.rules").expect("parses");
        let out = run_tests(std::slice::from_ref(&f));
        assert!(out.iter().all(|o| o.error.is_none()), "{out:?}");
        out.iter()
            .flat_map(|o| &o.failures)
            .map(|f| format!("{} == {} (got {})", f.expect, f.expected, f.actual))
            .collect()
    }

    const RULES: &str = r#"
alert CpuHigh {
  when         cpu > 0.9
  resolve when cpu < 0.8
}
remediate Cool {
  on       CpuHigh
  do       exec "throttle {{server}}"
  cooldown 10m
}
"#;

    #[test]
    fn resolved_needs_a_firing_before_and_none_at() {
        let src = format!(
            "{RULES}test \"t\" {{\n  series cpu{{server=\"a\"}} = \"0.5 0.95 0.85 0.7\"\n  \
             expect CpuHigh at 2m == resolved\n  expect CpuHigh at 3m == resolved {{ server=\"b\" }}\n  \
             expect CpuHigh at 0m == resolved\n  expect CpuHigh at 3m == resolved {{ server=\"a\" }}\n}}\n"
        );
        let got = failures(&src);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("expect CpuHigh at 2m == resolved (got firing"));
        assert!(got[1].contains("resolved {server=\"b\"}"), "{got:#?}");
        assert!(got[2].ends_with("== resolved (got none)"), "{got:#?}");
    }

    #[test]
    fn action_states_are_events_of_the_block_at_the_step() {
        let src = format!(
            "{RULES}test \"t\" {{\n  series cpu{{server=\"a\"}} = \"0.5 0.95 0.7 0.95\"\n  \
             expect Cool at 1m == run {{ server=\"a\" }}\n  expect Cool at 2m == run\n  \
             expect Cool at 1m == escalated\n  expect Cool at 3m == suppressed {{ server=\"a\" }}\n  \
             expect Cool at 3m == run\n}}\n"
        );
        let got = failures(&src);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0], "expect Cool at 2m == run (got none)");
        assert_eq!(
            got[1],
            "expect Cool at 1m == escalated (got run {server=\"a\", severity=\"warning\"})"
        );
        assert!(
            got[2].starts_with("expect Cool at 3m == run (got suppressed"),
            "{got:#?}"
        );
    }
}
