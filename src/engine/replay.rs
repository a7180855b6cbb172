//! Replaying a rule set over a grid of steps: records first (each one visible
//! to the rules after it), then alerts through their state machine, then the
//! remediation and maintenance blocks as a dry run of what their actions
//! would have done, within their policies' limits. Rule tests and backtests
//! both run on this.

use super::EngineError;
use super::alerts::{Episode, run_alert};
use super::eval::Evaluator;
use super::source::{MemorySource, Overlay, Source};
use super::value::{Grid, Series, Value};
use crate::dsl::ast::{Expr, Maintenance, RuleFile};
use crate::dsl::constants::Constants;
use crate::model::SeriesKey;
use crate::remediate::decide::{Approvals, decide_over, guard_steps};
use crate::store::SeriesData;
use rayon::prelude::*;
use std::collections::HashMap;

pub use crate::remediate::decide::{ActionEvent, EventKind, render_action};

/// Everything a replay produced.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub grid: Option<Grid>,
    /// Each record rule's output series.
    pub records: Vec<(String, Vec<Series>)>,
    pub episodes: Vec<Episode>,
    pub actions: Vec<ActionEvent>,
}

impl Replay {
    /// Whether a remediation or maintenance block is acting at `t`: a
    /// remediation ran for an alert episode still firing at `t`; a
    /// maintenance ran in the step that ends at `t`.
    pub fn policy_active(&self, policy: &str, t: i64, step_ms: i64) -> Vec<&ActionEvent> {
        self.actions
            .iter()
            .filter(|a| a.policy == policy && a.kind == EventKind::Run && a.time <= t)
            .filter(|a| match a.episode {
                Some(i) => self.episodes.get(i).is_some_and(|e| e.firing_at(t)),
                None => a.time > t - step_ms,
            })
            .collect()
    }

    /// The record outputs as series a source can serve.
    pub fn record_source(&self) -> MemorySource {
        let mut src = MemorySource::default();
        if let Some(grid) = self.grid {
            for (name, series) in &self.records {
                src.add(as_samples(name, series, grid));
            }
        }
        src
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

/// Every expression a replay evaluates, constants inlined.
pub fn rule_expressions(files: &[RuleFile]) -> Vec<Expr> {
    files
        .iter()
        .flat_map(|f| {
            let consts = Constants::resolve(f);
            f.alerts()
                .map(|a| &a.when)
                .chain(f.records().map(|r| &r.expr))
                .chain(f.maintenances().map(|m| &m.when))
                .map(move |e| e.with_constants(&consts))
        })
        .collect()
}

/// Replays every rule of `files` over `grid`.
/// Each rule's evaluation may hold at most `max_samples` samples (see
/// [`super::budget`]).
pub fn replay(
    files: &[RuleFile],
    source: &dyn Source,
    grid: Grid,
    max_samples: u64,
) -> Result<Replay, EngineError> {
    let mut overlay = Overlay {
        base: source,
        extra: MemorySource::default(),
    };
    let consts: Vec<Constants> = files.iter().map(Constants::resolve).collect();
    let mut records = Vec::new();
    for (f, consts) in files.iter().zip(&consts) {
        for r in f.records() {
            let expr = r.expr.with_constants(consts);
            let ev = Evaluator::new(&overlay, grid).with_max_samples(max_samples);
            let series = vector_of(ev.eval(&expr)?, &r.name.name)?;
            overlay.extra.add(as_samples(&r.name.name, &series, grid));
            records.push((r.name.name.clone(), series));
        }
    }
    let alerts: Vec<(&crate::dsl::ast::Alert, Expr)> = files
        .iter()
        .zip(&consts)
        .flat_map(|(f, c)| f.alerts().map(move |a| (a, a.when.with_constants(c))))
        .collect();
    let maintenances: Vec<(&Maintenance, Expr)> = files
        .iter()
        .zip(&consts)
        .flat_map(|(f, c)| f.maintenances().map(move |m| (m, m.when.with_constants(c))))
        .collect();
    let ev = Evaluator::new(&overlay, grid)
        .with_max_samples(max_samples)
        .sharing(
            alerts
                .iter()
                .map(|(_, e)| e)
                .chain(maintenances.iter().map(|(_, e)| e)),
        );
    let per_alert: Vec<Vec<Episode>> = alerts
        .par_iter()
        .map(|(a, when)| {
            let cond = vector_of(ev.eval(when)?, &a.name.name)?;
            Ok(run_alert(a, grid, &cond))
        })
        .collect::<Result<_, EngineError>>()?;
    let mut episodes: Vec<Episode> = per_alert.into_iter().flatten().collect();
    episodes.sort_by(|a, b| {
        a.active_at
            .cmp(&b.active_at)
            .then_with(|| a.alert.cmp(&b.alert))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    let mut conditions = Vec::new();
    for (m, when) in &maintenances {
        conditions.push((
            m.name.name.clone(),
            vector_of(ev.eval(when)?, &m.name.name)?,
        ));
    }
    let mut guards = HashMap::new();
    for (f, c) in files.iter().zip(&consts) {
        let guarded = f
            .remediations()
            .filter_map(|r| Some((&r.name.name, r.guard.as_ref()?)))
            .chain(
                f.maintenances()
                    .filter_map(|m| Some((&m.name.name, m.guard.as_ref()?))),
            );
        for (name, guard) in guarded {
            let value = ev.eval(&guard.with_constants(c))?;
            guards.insert(name.clone(), guard_steps(&value, grid));
        }
    }
    // TODO(engine helper): the journal's past decisions and approvals.
    let mut actions = decide_over(
        files,
        grid,
        &episodes,
        &guards,
        &conditions,
        &[],
        &Approvals::new(),
    );
    actions.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.policy.cmp(&b.policy)));
    Ok(Replay {
        grid: Some(grid),
        records,
        episodes,
        actions,
    })
}

fn vector_of(v: Value, rule: &str) -> Result<Vec<Series>, EngineError> {
    match v {
        Value::Vector(v) => Ok(v),
        Value::Scalar(_) => Err(EngineError::Eval(format!(
            "`{rule}` gives a plain number: a rule needs series (compare a selector or function with it)"
        ))),
    }
}
