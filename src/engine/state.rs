//! The one step-driven composition of a rule set's state, shared by
//! `backtest` and `watch`: every rule's expressions are evaluated over a grid
//! ([`evaluate`]: a backtest's whole period at once, or `watch`'s one
//! instant), then [`RuleState::advance`] walks the grid's steps in order,
//! advancing each alert's state machine, the inhibitions between alerts
//! (`suppress ... while ...`) and the remediation decisions, with only what
//! is known at each step. Batch and live evaluation differ in how many steps
//! one evaluation covers, never in how a step is decided.

use super::EngineError;
use super::alerts::{AlertRun, BatchInput, Episode};
use super::eval::Evaluator;
use super::source::{MemorySource, Overlay, Source};
use super::value::{Grid, Labels, Series, Value};
use crate::dsl::ast::{Alert, Expr, RuleFile};
use crate::dsl::constants::Constants;
use crate::model::SeriesKey;
use crate::remediate::decide::{ActionEvent, AlertAt, Approvals, Decider, StepView};
use crate::store::SeriesData;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// What one rule's evaluation gave: its series, or why it failed, and how
/// long it took.
#[derive(Clone, Debug)]
pub struct RuleResult {
    pub series: Result<Vec<Series>, String>,
    pub took: Duration,
}

impl RuleResult {
    fn series(&self) -> &[Series] {
        self.series.as_deref().unwrap_or(&[])
    }
}

/// Every expression of a rule set evaluated over one grid.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub grid: Grid,
    /// Each `record` rule's output, in file order.
    pub records: Vec<(String, RuleResult)>,
    /// Each alert's condition, in file order.
    pub conditions: Vec<RuleResult>,
    /// Each alert's `resolve when`, as 0/1 per series (`None` without one).
    pub resolves: Vec<Option<RuleResult>>,
    /// Each guarded block's guard: whether it has a result, per step.
    pub guards: HashMap<String, Vec<bool>>,
    /// Each maintenance block's condition series.
    pub maintenance: Vec<(String, RuleResult)>,
}

impl Evaluated {
    /// The first rule that failed, as a replay reports it.
    pub fn first_error(&self) -> Option<EngineError> {
        self.records
            .iter()
            .map(|(_, r)| r)
            .chain(&self.conditions)
            .chain(self.resolves.iter().flatten())
            .chain(self.maintenance.iter().map(|(_, r)| r))
            .find_map(|r| r.series.as_ref().err())
            .map(|e| EngineError::Eval(e.clone()))
    }
}

/// The samples of `record` rules a live run keeps: what its rules read back
/// (a range function over a record), as a replay keeps the records it
/// computed, so that live and batch read the same values.
#[derive(Clone, Debug, Default)]
pub struct RecordHistory {
    by_metric: BTreeMap<String, BTreeMap<SeriesKey, SeriesData>>,
}

impl RecordHistory {
    /// Adds samples (in time order after those held).
    pub fn add(&mut self, samples: Vec<SeriesData>) {
        for s in samples {
            let m = self.by_metric.entry(s.key.metric.clone()).or_default();
            match m.get_mut(&s.key) {
                Some(have) => {
                    have.timestamps.extend(s.timestamps);
                    have.values.extend(s.values);
                }
                None => {
                    m.insert(s.key.clone(), s);
                }
            }
        }
    }

    /// The series of `metric` held.
    pub fn series(&self, metric: &str) -> Vec<SeriesData> {
        self.by_metric
            .get(metric)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets samples before `t`.
    pub fn forget_before(&mut self, t: i64) {
        for m in self.by_metric.values_mut() {
            for s in m.values_mut() {
                let cut = s.timestamps.partition_point(|&x| x < t);
                s.timestamps.drain(..cut);
                s.values.drain(..cut);
            }
            m.retain(|_, s| !s.timestamps.is_empty());
        }
        self.by_metric.retain(|_, m| !m.is_empty());
    }
}

/// `resolve when EXPR` as evaluated: its top-level comparison returns 0/1
/// (`bool`) per series instead of filtering, so that "does not hold" (0) is
/// told apart from "no data" (no series).
pub fn resolve_expr(e: &Expr) -> Expr {
    let mut e = e.unparen().clone();
    if let Expr::Binary(b) = &mut e
        && b.op.is_comparison()
    {
        b.return_bool = true;
    }
    e
}

/// The alerts of `files` in order, with their constants inlined into
/// `when` and `resolve when`.
fn alerts_of(files: &[RuleFile]) -> Vec<(&Alert, Expr, Option<Expr>)> {
    files
        .iter()
        .flat_map(|f| {
            let c = Constants::resolve(f);
            f.alerts()
                .map(move |a| {
                    (
                        a,
                        a.when.with_constants(&c),
                        a.resolve_when
                            .as_ref()
                            .map(|r| resolve_expr(&r.with_constants(&c))),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn timed(f: impl FnOnce() -> Result<Value, EngineError>, rule: &str) -> RuleResult {
    let start = Instant::now();
    let series = f()
        .and_then(|v| vector_of(v, rule))
        .map_err(|e| e.to_string());
    RuleResult {
        series,
        took: start.elapsed(),
    }
}

/// A rule's value as series; a plain number is refused.
pub fn vector_of(v: Value, rule: &str) -> Result<Vec<Series>, EngineError> {
    match v {
        Value::Vector(v) => Ok(v),
        Value::Scalar(_) => Err(EngineError::Eval(format!(
            "`{rule}` gives a plain number: a rule needs series (compare a selector or function with it)"
        ))),
    }
}

/// A step-aligned result as stored samples, one per step with a value.
pub fn as_samples(metric: &str, series: &[Series], grid: Grid) -> Vec<SeriesData> {
    series
        .iter()
        .map(|s| {
            let (timestamps, values) = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.get().map(|v| (grid.time(s.start + i), v)))
                .unzip();
            SeriesData {
                key: SeriesKey::new(metric, s.labels.clone()),
                timestamps,
                values,
            }
        })
        .collect()
}

/// Evaluates every rule of `files` over `grid` from `source`: the records
/// first, each visible to the rules after it (on top of `history`, the
/// records' earlier samples, which a live run keeps and this extends), then
/// the alerts, their `resolve when`, the guards and the maintenance
/// conditions, in parallel. A rule that fails is reported in its result; the
/// others are evaluated regardless.
pub fn evaluate(
    files: &[RuleFile],
    source: &dyn Source,
    grid: Grid,
    max_samples: u64,
    mut history: Option<&mut RecordHistory>,
) -> Evaluated {
    let mut overlay = Overlay {
        base: source,
        extra: MemorySource::default(),
    };
    let consts: Vec<Constants> = files.iter().map(Constants::resolve).collect();
    let mut records = Vec::new();
    for (f, c) in files.iter().zip(&consts) {
        for r in f.records() {
            let name = &r.name.name;
            let expr = r.expr.with_constants(c);
            let ev = Evaluator::new(&overlay, grid).with_max_samples(max_samples);
            let result = timed(|| ev.eval(&expr), name);
            let samples = as_samples(name, result.series(), grid);
            match history.as_deref_mut() {
                Some(h) => {
                    h.add(samples);
                    overlay.extra.add(h.series(name));
                }
                None => overlay.extra.add(samples),
            }
            records.push((name.clone(), result));
        }
    }
    let alerts = alerts_of(files);
    let maintenances: Vec<(&str, Expr)> = files
        .iter()
        .zip(&consts)
        .flat_map(|(f, c)| {
            f.maintenances()
                .map(move |m| (m.name.name.as_str(), m.when.with_constants(c)))
        })
        .collect();
    let guarded: Vec<(&str, Expr)> = files
        .iter()
        .zip(&consts)
        .flat_map(|(f, c)| {
            f.remediations()
                .filter_map(|r| Some((r.name.name.as_str(), r.guard.as_ref()?)))
                .chain(
                    f.maintenances()
                        .filter_map(|m| Some((m.name.name.as_str(), m.guard.as_ref()?))),
                )
                .map(move |(n, g)| (n, g.with_constants(c)))
        })
        .collect();
    let ev = Evaluator::new(&overlay, grid)
        .with_max_samples(max_samples)
        .sharing(
            alerts
                .iter()
                .flat_map(|(_, w, r)| std::iter::once(w).chain(r))
                .chain(maintenances.iter().map(|(_, e)| e))
                .chain(guarded.iter().map(|(_, e)| e)),
        );
    let (conditions, resolves): (Vec<RuleResult>, Vec<Option<RuleResult>>) = alerts
        .par_iter()
        .map(|(a, when, resolve)| {
            let name = &a.name.name;
            (
                timed(|| ev.eval(when), name),
                resolve.as_ref().map(|r| timed(|| ev.eval(r), name)),
            )
        })
        .unzip();
    let maintenance = maintenances
        .iter()
        .map(|(name, when)| (name.to_string(), timed(|| ev.eval(when), name)))
        .collect();
    let guards = guarded
        .iter()
        .map(|(name, g)| {
            let steps = match ev.eval(g) {
                Ok(Value::Scalar(_)) => vec![true; grid.n],
                Ok(Value::Vector(series)) => (0..grid.n)
                    .map(|k| series.iter().any(|s| s.at(k).is_some()))
                    .collect(),
                // A guard that cannot be evaluated does not allow the action.
                Err(_) => vec![false; grid.n],
            };
            (name.to_string(), steps)
        })
        .collect();
    Evaluated {
        grid,
        records,
        conditions,
        resolves,
        guards,
        maintenance,
    }
}

/// One `suppress TARGET while OTHER [on (...)]`, by alert index.
#[derive(Clone, Debug)]
struct Inhibition {
    target: usize,
    source: usize,
    on: Option<Vec<String>>,
}

/// Labels that never make two instances "the same" for inhibition.
const NOT_SHARED: [&str; 2] = ["alertname", "severity"];

fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(k, _)| k.as_str().cmp(name))
        .ok()
        .map(|i| labels[i].1.as_str())
}

/// Whether an instance with labels `a` is held back by one with labels `b`:
/// equal values of the `on` labels (missing on both counts as equal), or by
/// default of every label name both carry.
fn inhibits(a: &Labels, b: &Labels, on: Option<&[String]>) -> bool {
    match on {
        Some(on) => on.iter().all(|n| label(a, n) == label(b, n)),
        None => a
            .iter()
            .filter(|(k, _)| !NOT_SHARED.contains(&k.as_str()))
            .all(|(k, v)| label(b, k).is_none_or(|w| w == v)),
    }
}

/// The alert states, inhibitions and decisions of a rule set, advanced one
/// step at a time.
pub struct RuleState {
    alerts: Vec<AlertRun>,
    /// Per alert: whether a `remediate` block acts on it (the decisions
    /// see only those).
    acted_on: Vec<bool>,
    /// Whether any block decides anything (else no view is built).
    decides: bool,
    inhibitions: Vec<Inhibition>,
    decider: Decider,
    /// The last step advanced to.
    last_t: Option<i64>,
}

impl RuleState {
    pub fn new(files: &[RuleFile]) -> RuleState {
        let alerts: Vec<AlertRun> = files
            .iter()
            .flat_map(|f| f.alerts())
            .map(AlertRun::new)
            .collect();
        let index = |name: &str| alerts.iter().position(|a| a.alert.name.name == name);
        let inhibitions = files
            .iter()
            .flat_map(|f| f.suppressions())
            .filter_map(|s| {
                Some(Inhibition {
                    target: index(&s.target.name)?,
                    source: index(&s.while_.name)?,
                    on: s
                        .on
                        .as_ref()
                        .map(|on| on.iter().map(|l| l.name.clone()).collect()),
                })
            })
            .collect();
        let triggers: std::collections::HashSet<&str> = files
            .iter()
            .flat_map(|f| f.remediations())
            .flat_map(|r| r.on.iter().map(|a| a.name.as_str()))
            .collect();
        let acted_on = alerts
            .iter()
            .map(|a| triggers.contains(a.alert.name.name.as_str()))
            .collect();
        let decides = files
            .iter()
            .any(|f| f.remediations().next().is_some() || f.maintenances().next().is_some());
        RuleState {
            alerts,
            acted_on,
            decides,
            inhibitions,
            decider: Decider::new(files),
            last_t: None,
        }
    }

    /// Takes in the decisions made before (the journal's): they count, and
    /// are not made again.
    pub fn seed(&mut self, past: &[ActionEvent]) {
        self.decider.seed(past);
    }

    /// Advances through every step of `ev.grid` (after the last step
    /// advanced to) and returns the decisions made, in order.
    pub fn advance(&mut self, ev: &Evaluated, approvals: &Approvals) -> Vec<ActionEvent> {
        let none: Vec<Series> = Vec::new();
        let inputs: Vec<BatchInput> = self
            .alerts
            .iter_mut()
            .enumerate()
            .map(|(i, run)| {
                let cond = ev.conditions.get(i).map_or(&none[..], RuleResult::series);
                let resolve = ev
                    .resolves
                    .get(i)
                    .and_then(Option::as_ref)
                    .map_or(&none[..], RuleResult::series);
                BatchInput::new(run, cond, resolve)
            })
            .collect();
        let mut holds = Vec::new();
        let mut out = Vec::new();
        for k in 0..ev.grid.n {
            let t = ev.grid.time(k);
            if self.last_t.is_some_and(|last| t <= last) {
                continue;
            }
            self.last_t = Some(t);
            for (run, input) in self.alerts.iter_mut().zip(&inputs) {
                input.step(run, t, k, &mut holds);
            }
            self.inhibit(t);
            if self.decides {
                let view = self.view(t, k, ev, approvals);
                out.extend(self.decider.step(&view));
            }
        }
        out
    }

    /// Marks, at `t`, every active instance of an inhibited alert that a
    /// firing instance of its `while` alert holds back.
    fn inhibit(&mut self, t: i64) {
        let mut targets: Vec<usize> = self.inhibitions.iter().map(|i| i.target).collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            let held: Vec<(usize, bool)> = self.alerts[target]
                .current()
                .map(|(tracker, e)| {
                    let held = self
                        .inhibitions
                        .iter()
                        .filter(|i| i.target == target)
                        .any(|i| {
                            self.alerts[i.source].current().any(|(_, b)| {
                                b.fired_at.is_some()
                                    && inhibits(&e.labels, &b.labels, i.on.as_deref())
                            })
                        });
                    (tracker, held)
                })
                .collect();
            for (tracker, held) in held {
                self.alerts[target].set_suppressed(tracker, t, held);
            }
        }
    }

    /// What the decisions see at step `k` (time `t`) of `ev`'s grid, once
    /// the alerts have advanced to it.
    fn view<'a>(&self, t: i64, k: usize, ev: &Evaluated, approvals: &'a Approvals) -> StepView<'a> {
        let alerts = self
            .alerts
            .iter()
            .enumerate()
            .filter(|(a, _)| self.acted_on[*a])
            .flat_map(|(a, run)| {
                run.current().map(move |(i, e)| AlertAt {
                    alert: e.alert.clone(),
                    labels: e.labels.clone(),
                    fired_at: e.fired_at,
                    value: e.last_value,
                    suppressed: e.suppressed_at(t),
                    episode: episode_key(a, run.serial(i)),
                })
            })
            .collect();
        StepView {
            t,
            alerts,
            guards: ev
                .guards
                .iter()
                .map(|(name, g)| (name.clone(), g.get(k).copied().unwrap_or(false)))
                .collect(),
            conditions: ev
                .maintenance
                .iter()
                .map(|(name, r)| {
                    let holding = r
                        .series()
                        .iter()
                        .filter_map(|s| s.at(k).map(|v| (s.labels.clone(), v)))
                        .collect();
                    (name.clone(), holding)
                })
                .collect(),
            approvals: Some(approvals),
        }
    }

    /// Every episode so far with the key decisions name it by
    /// ([`ActionEvent::episode`]), ordered by start, alert and labels.
    pub fn keyed_episodes(&self) -> Vec<(usize, Episode)> {
        let mut episodes: Vec<(usize, Episode)> = self
            .alerts
            .iter()
            .enumerate()
            .flat_map(|(a, run)| {
                run.keyed_episodes()
                    .into_iter()
                    .map(move |(serial, e)| (episode_key(a, serial), e))
            })
            .collect();
        episodes.sort_by(|(_, a), (_, b)| episode_order(a, b));
        episodes
    }

    /// The last step advanced to.
    pub fn last_step(&self) -> Option<i64> {
        self.last_t
    }

    /// Each alert's state.
    pub fn alerts(&self) -> &[AlertRun] {
        &self.alerts
    }

    pub fn alerts_mut(&mut self) -> &mut [AlertRun] {
        &mut self.alerts
    }

    /// Every episode so far, ordered by start, alert and labels.
    pub fn episodes(&self) -> Vec<Episode> {
        let mut episodes: Vec<Episode> = self.alerts.iter().flat_map(|a| a.episodes()).collect();
        sort_episodes(&mut episodes);
        episodes
    }
}

/// The order of a replay's episodes: by start, alert, labels.
pub fn sort_episodes(episodes: &mut [Episode]) {
    episodes.sort_by(episode_order);
}

fn episode_order(a: &Episode, b: &Episode) -> std::cmp::Ordering {
    a.active_at
        .cmp(&b.active_at)
        .then_with(|| a.alert.cmp(&b.alert))
        .then_with(|| a.labels.cmp(&b.labels))
}

/// The name of an episode in the decisions: its alert's index and its
/// serial number within the alert.
fn episode_key(alert: usize, serial: usize) -> usize {
    (alert << 32) | (serial & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        let mut v: Labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn inhibition_compares_shared_labels_or_the_listed_ones() {
        let a = l(&[("server", "a"), ("tool", "x"), ("severity", "warning")]);
        let b = l(&[("server", "a"), ("severity", "critical")]);
        let c = l(&[("server", "b")]);
        assert!(
            inhibits(&a, &b, None),
            "severity differs but does not count"
        );
        assert!(!inhibits(&a, &c, None));
        assert!(
            inhibits(&a, &c, Some(&["zone".to_string()])),
            "missing on both"
        );
        assert!(!inhibits(&a, &c, Some(&["server".to_string()])));
    }
}
