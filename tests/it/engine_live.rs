//! The guarantee behind `watch` and `backtest`: rules stepped live, one
//! instant at a time ([`LiveRules`]), give exactly the alert episodes,
//! record samples and decisions of a replay over the same steps; and a
//! restart (a new `LiveRules::start` with the journal's past decisions)
//! brings a firing alert back firing and makes no decision twice.

use mcpops::dsl::parse_str;
use mcpops::engine::alerts::Episode;
use mcpops::engine::budget::DEFAULT_MAX_SAMPLES;
use mcpops::engine::live::{LiveRules, warmup_ms};
use mcpops::engine::plan::Plan;
use mcpops::engine::replay::rule_expressions;
use mcpops::engine::replay::{ActionEvent, EventKind, replay};
use mcpops::engine::{Grid, MemorySource, Source, StoreSource};
use mcpops::model::{SampleSink, SeriesKey};
use mcpops::remediate::decide::{Approval, Approvals};
use mcpops::store::SeriesData;
use mcpops::store::Store;
use std::collections::BTreeMap;

const MIN: i64 = 60_000;

const RULES: &str = r#"
evaluate every 1m

record server:load:avg3m = avg(load[3m]) by (server)

alert LoadHigh {
  when         server:load:avg3m > 0.9
  resolve when server:load:avg3m < 0.8
  for          2m
  keep_firing  1m
  severity     warning
  summary      "{{server}} at {{value}}"
}

# Reads a record over a range: a live run must keep the records' samples.
alert LoadSustained {
  when     avg(server:load:avg3m[15m]) by (server) > 0.7
  severity info
}

alert Down {
  when     up == 0
  severity critical
}

alert ToolErrors {
  when     errors > 0
  for      1m
  severity warning
}

suppress ToolErrors while Down

remediate Shed {
  on          LoadHigh
  do          exec "shed {{server}}"
  timeout     2m
  cooldown    10m
  max         3 per 2h
  verify      within 3m
  escalate    notify "oncall"
  concurrency 1
}

remediate Fix {
  on       ToolErrors, Down
  do       exec "fix {{server}}"
  cooldown 5m
  breaker  4 per 1h
  guard    count(up == 1) / count(up) >= 0.8
  escalate notify "oncall"
}

remediate Ask {
  on      Down
  do      exec "reboot {{server}}"
  approve within 10m by "oncall"
}
"#;

/// Five servers over `minutes`, one sample a minute: load spikes that
/// cross 90% then linger between 80% and 90% (hysteresis), a server that
/// goes down now and then, and tool errors that overlap the downs.
fn fleet(minutes: i64) -> Vec<SeriesData> {
    let mut out = Vec::new();
    for i in 0..5i64 {
        let server = format!("s{i}");
        let series = |metric: &str, f: &dyn Fn(i64) -> f64| SeriesData {
            key: SeriesKey::new(metric, vec![("server".to_string(), server.clone())]),
            timestamps: (0..minutes).map(|m| m * MIN).collect(),
            values: (0..minutes).map(f).collect(),
        };
        out.push(series("load", &|m| match (m + 17 * i) % 47 {
            0..6 => 0.97,
            6..10 => 0.85,
            _ => 0.5,
        }));
        let down = |m: i64| (i == 1 || i == 3) && (30..37).contains(&((m + 20 * i) % 90));
        out.push(series("up", &|m| if down(m) { 0.0 } else { 1.0 }));
        // Tool errors of their own, and while the server is down.
        out.push(series("errors", &|m| {
            if down(m) || (28..40).contains(&((m + 5 * i) % 60)) {
                3.0
            } else {
                0.0
            }
        }));
    }
    out
}

/// A decision as both runs must agree on it (the episode's name differs:
/// an index into a replay's episodes, a key in a live run).
fn comparable(mut a: ActionEvent) -> ActionEvent {
    a.episode = None;
    a
}

fn sorted(mut v: Vec<ActionEvent>) -> Vec<ActionEvent> {
    v.sort_by(|a, b| {
        (a.time, &a.policy, &a.labels, a.kind.name()).cmp(&(
            b.time,
            &b.policy,
            &b.labels,
            b.kind.name(),
        ))
    });
    v
}

type EpisodeKey = (String, Vec<(String, String)>, i64);

/// A record's sample: step, metric, labels, value.
type RecordSample = (i64, String, Vec<(String, String)>, f64);

fn key(e: &Episode) -> EpisodeKey {
    (e.alert.clone(), e.labels.clone(), e.active_at)
}

#[test]
fn live_steps_over_memory_equal_the_replay_and_a_restart_repeats_nothing() {
    let source = MemorySource::new(fleet(MINUTES));
    compare(&source, &|_, _| Box::new(&source));
}

#[test]
fn live_steps_over_a_store_equal_the_replay_as_watch_reads_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(tmp.path().join("store"));
    let mut w = store.writer().expect("writer");
    for s in fleet(MINUTES) {
        let id = w.intern(s.key.clone());
        for (&t, &v) in s.timestamps.iter().zip(&s.values) {
            w.push(id, t, v).expect("push");
        }
    }
    w.commit().expect("commit");
    let files = vec![parse_str(RULES, "live.rules").expect("parses")];
    let plan = Plan::new(&rule_expressions(&files));
    // As backtest reads: the whole period, once.
    let whole = StoreSource::new(
        store.snapshot().expect("snapshot"),
        -plan.lookback_ms(),
        MINUTES * MIN,
    )
    .with_plan(&plan);
    // As watch reads: a fresh snapshot for each step, over what the step needs.
    compare(&whole, &|from, to| {
        Box::new(
            StoreSource::new(
                store.snapshot().expect("snapshot"),
                from - plan.lookback_ms(),
                to,
            )
            .with_plan(&plan),
        )
    });
}

const MINUTES: i64 = 6 * 60;

/// Replays the rules over `source`, runs them live from `step_source`
/// (asked for the range of the warm-up, then for each step), and compares.
fn compare<'s>(source: &dyn Source, step_source: &dyn Fn(i64, i64) -> Box<dyn Source + 's>) {
    let files = vec![parse_str(RULES, "live.rules").expect("parses")];
    let step = MIN;
    let minutes = MINUTES;
    let warm_steps = (warmup_ms(&files) + step - 1) / step;
    let first_live = warm_steps * step;
    let end = (minutes - 1) * MIN;
    let grid = Grid::range(0, end, step);

    // One `mcpops approve`: the first request for approval, approved 4m later.
    let unapproved =
        replay(&files, source, grid, DEFAULT_MAX_SAMPLES, &Approvals::new()).expect("replay");
    let ask = unapproved
        .actions
        .iter()
        .find(|a| a.kind == EventKind::AwaitingApproval && a.time >= first_live)
        .expect("a request for approval after the warm-up");
    let mut approvals = Approvals::new();
    approvals.insert(
        ask.id(),
        Approval {
            by: "oncall".into(),
            at_ms: ask.time + 4 * MIN,
        },
    );

    let rp = replay(&files, source, grid, DEFAULT_MAX_SAMPLES, &approvals).expect("replay");
    let mut live = LiveRules::start_reaching_back(
        files.clone(),
        &|from, to| Ok(step_source(from, to)),
        first_live,
        step,
        &[],
        &approvals,
        DEFAULT_MAX_SAMPLES,
    )
    .expect("start");
    let mut seen: BTreeMap<EpisodeKey, Episode> = BTreeMap::new();
    let note = |live: &LiveRules, seen: &mut BTreeMap<EpisodeKey, Episode>| {
        for e in live.episodes() {
            seen.insert(key(&e), e);
        }
    };
    note(&live, &mut seen);
    let mut decisions: Vec<(i64, ActionEvent)> = Vec::new();
    let mut records: Vec<RecordSample> = Vec::new();
    let mut firing_before_restart = None;
    let restart_at = first_live + 150 * MIN;
    while live.next_step() <= end {
        let t = live.next_step();
        if t == restart_at {
            firing_before_restart = Some(
                live.alerts()
                    .into_iter()
                    .filter(|a| a.state() == "firing")
                    .map(|a| (a.episode.alert, a.episode.labels, a.episode.fired_at))
                    .collect::<Vec<_>>(),
            );
        }
        let out = live
            .step(step_source(t, t).as_ref(), &approvals)
            .expect("step");
        assert_eq!(out.t, t);
        for s in out.records {
            assert_eq!(
                s.timestamps,
                [t],
                "one sample per record series, at the step"
            );
            records.push((t, s.key.metric, s.key.labels, s.values[0]));
        }
        decisions.extend(out.decisions.into_iter().map(|d| (t, d)));
        note(&live, &mut seen);
    }

    // Episodes: the same, to the step, with the same peaks and summaries.
    let live_episodes: Vec<&Episode> = seen.values().collect();
    let mut replayed: Vec<&Episode> = rp.episodes.iter().collect();
    replayed.sort_by_key(|e| key(e));
    assert_eq!(live_episodes.len(), replayed.len());
    for (a, b) in live_episodes.iter().zip(&replayed) {
        assert_eq!(a, b);
    }
    let fired = |alert: &str| {
        replayed
            .iter()
            .filter(|e| e.alert == alert && e.fired_at.is_some_and(|f| f >= first_live))
            .count()
    };
    assert!(fired("LoadHigh") >= 10, "{}", fired("LoadHigh"));
    assert!(fired("Down") >= 4 && fired("ToolErrors") >= 10);
    assert!(fired("LoadSustained") >= 5, "{}", fired("LoadSustained"));
    assert!(
        replayed.iter().any(|e| !e.suppressed.is_empty()),
        "some tool errors were held back by a down server"
    );

    // Decisions: each made at its step, the same as the replay's after the
    // warm-up (whose decisions are history and not returned).
    for (t, d) in &decisions {
        assert_eq!(d.time, *t, "a decision is made at its own step");
    }
    let live_decisions = sorted(decisions.into_iter().map(|(_, d)| comparable(d)).collect());
    let replay_decisions = sorted(
        rp.actions
            .iter()
            .filter(|a| a.time >= first_live)
            .cloned()
            .map(comparable)
            .collect(),
    );
    assert_eq!(live_decisions.len(), replay_decisions.len());
    for (a, b) in live_decisions.iter().zip(&replay_decisions) {
        assert_eq!(a, b);
    }
    let kinds: std::collections::BTreeSet<&str> =
        live_decisions.iter().map(|d| d.kind.name()).collect();
    for kind in [
        "run",
        "escalated",
        "verify failed",
        "awaiting approval",
        "suppressed (breaker)",
        "suppressed (inhibited)",
    ] {
        assert!(kinds.contains(kind), "no `{kind}` decision in {kinds:?}");
    }
    assert!(
        live_decisions
            .iter()
            .any(|d| d.approved_by.as_deref() == Some("oncall")),
        "the approved action ran"
    );

    // Records: each step's samples are the replay's at that step.
    let mut replay_records = Vec::new();
    for (name, series) in &rp.records {
        for s in series {
            for k in grid.first_at_or_after(first_live)..grid.n {
                if let Some(v) = s.at(k) {
                    replay_records.push((grid.time(k), name.clone(), s.labels.clone(), v));
                }
            }
        }
    }
    records.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    replay_records.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    assert!(!records.is_empty());
    assert_eq!(records, replay_records);

    // A restart at `restart_at`: the journal holds what was decided before.
    let past: Vec<ActionEvent> = live_decisions
        .iter()
        .filter(|d| d.time < restart_at)
        .cloned()
        .collect();
    let mut again = LiveRules::start_reaching_back(
        files.clone(),
        &|from, to| Ok(step_source(from, to)),
        restart_at,
        step,
        &past,
        &approvals,
        DEFAULT_MAX_SAMPLES,
    )
    .expect("restart");
    let firing_before = firing_before_restart.expect("the run passed the restart step");
    assert!(
        !firing_before.is_empty(),
        "pick a restart step with an alert firing"
    );
    let firing_after: Vec<_> = again
        .alerts()
        .into_iter()
        .filter(|a| a.state() == "firing")
        .map(|a| (a.episode.alert, a.episode.labels, a.episode.fired_at))
        .collect();
    assert_eq!(
        firing_after, firing_before,
        "firing comes back firing, not pending"
    );
    let mut after = Vec::new();
    while again.next_step() <= end {
        let t = again.next_step();
        after.extend(
            again
                .step(step_source(t, t).as_ref(), &approvals)
                .expect("step")
                .decisions,
        );
    }
    let after = sorted(after.into_iter().map(comparable).collect());
    let expected: Vec<ActionEvent> = live_decisions
        .iter()
        .filter(|d| d.time >= restart_at)
        .cloned()
        .collect();
    assert_eq!(
        after, expected,
        "after a restart, the same decisions, none twice"
    );
}

/// `watch` evaluates each step alone (a grid of one step); a backtest
/// evaluates a whole period. Every `expect value(...)` expression of the
/// rule-language corpus, over its test block's series, gives at each step
/// of a range what it gives evaluated at that step alone.
#[test]
fn one_step_evaluation_equals_the_range_at_that_step() {
    use mcpops::dsl::ast::ExpectTarget;
    use mcpops::dsl::constants::Constants;
    use mcpops::engine::testrun::series_from_notation;
    use mcpops::engine::{Evaluator, Value};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang");
    let mut compared = 0usize;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/lang")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read");
        let file = parse_str(&text, &path.display().to_string()).expect("parses");
        let consts = Constants::resolve(&file);
        let step = file.step_ms();
        for t in file.tests() {
            let interval = t.interval.as_ref().map_or(MIN, |d| d.ms);
            let source = MemorySource::new(
                t.series
                    .iter()
                    .map(|s| {
                        series_from_notation(
                            &s.selector,
                            s.points.as_deref().unwrap_or(&[]),
                            interval,
                        )
                    })
                    .collect(),
            );
            let last = t.expects.iter().map(|e| e.at.ms).max().unwrap_or(0);
            let grid = Grid::range(0, last, step);
            for e in &t.expects {
                let ExpectTarget::Value(expr) = &e.target else {
                    continue;
                };
                let expr = expr.with_constants(&consts);
                let Ok(range) = Evaluator::new(&source, grid).eval(&expr) else {
                    continue;
                };
                // Every step of the range (a few per expression, to keep it quick).
                for k in (0..grid.n).step_by((grid.n / 8).max(1)) {
                    let t = grid.time(k);
                    let one = Grid {
                        start: t,
                        step,
                        n: 1,
                    };
                    let at = Evaluator::new(&source, one)
                        .eval(&expr)
                        .unwrap_or_else(|err| {
                            panic!("{}:{}: at {t}: {err}", path.display(), e.span.line)
                        });
                    let values = |v: &Value, k: usize| -> Vec<(Vec<(String, String)>, u64)> {
                        let mut out: Vec<_> = match v {
                            Value::Scalar(x) => vec![(Vec::new(), x.to_bits())],
                            Value::Vector(s) => s
                                .iter()
                                .filter_map(|s| s.at(k).map(|x| (s.labels.clone(), x.to_bits())))
                                .collect(),
                        };
                        out.sort();
                        out
                    };
                    let (want, got) = (values(&range, k), values(&at, 0));
                    let same = want.len() == got.len()
                        && want.iter().zip(&got).all(|(a, b)| {
                            let (x, y) = (f64::from_bits(a.1), f64::from_bits(b.1));
                            a.0 == b.0
                                && (x.to_bits() == y.to_bits()
                                    || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()))
                        });
                    assert!(
                        same,
                        "{}:{}: `{}` at {t}: the range gives {want:?}, the step alone {got:?}",
                        path.display(),
                        e.span.line,
                        mcpops::dsl::format::render(&expr)
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000, "{compared} comparisons");
}
