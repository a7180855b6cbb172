//! Replaying a rule set over a grid of steps: every rule evaluated over the
//! whole grid at once (records first, each one visible to the rules after
//! it), then the rules' state ([`super::state::RuleState`]: alerts through
//! their state machine, inhibitions, and the remediation and maintenance
//! decisions as a dry run) advanced step by step, as `watch` advances it
//! live ([`super::live`]). Rule tests and backtests both run on this.

use super::EngineError;
use super::alerts::Episode;
use super::source::{MemorySource, Source};
use super::state::{RuleState, evaluate};
use super::value::{Grid, Series};
use crate::dsl::ast::{Expr, RuleFile};
use crate::dsl::constants::Constants;
use crate::remediate::decide::Approvals;

pub use super::state::as_samples;
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

/// Every expression a replay evaluates, constants inlined.
pub fn rule_expressions(files: &[RuleFile]) -> Vec<Expr> {
    files
        .iter()
        .flat_map(|f| {
            let consts = Constants::resolve(f);
            f.alerts()
                .flat_map(|a| std::iter::once(&a.when).chain(&a.resolve_when))
                .chain(f.records().map(|r| &r.expr))
                .chain(f.maintenances().map(|m| &m.when))
                .chain(f.remediations().filter_map(|r| r.guard.as_ref()))
                .chain(f.maintenances().filter_map(|m| m.guard.as_ref()))
                .map(move |e| e.with_constants(&consts))
        })
        .collect()
}

/// Replays every rule of `files` over `grid`: every expression evaluated
/// over the whole grid at once, then the rules' state ([`RuleState`])
/// advanced step by step, as `watch` advances it live. `approvals` are those
/// given with `mcpops approve` (the store's journal), which count from the
/// time they were given. Each rule's evaluation may hold at most
/// `max_samples` samples (see [`super::budget`]).
pub fn replay(
    files: &[RuleFile],
    source: &dyn Source,
    grid: Grid,
    max_samples: u64,
    approvals: &Approvals,
) -> Result<Replay, EngineError> {
    let ev = evaluate(files, source, grid, max_samples, None);
    if let Some(e) = ev.first_error() {
        return Err(e);
    }
    let mut state = RuleState::new(files);
    let mut actions = state.advance(&ev, approvals);
    // Decisions name their episode by the state's key; a replay's readers
    // index its sorted episodes.
    let (keys, episodes): (Vec<usize>, Vec<Episode>) = state.keyed_episodes().into_iter().unzip();
    let index: std::collections::HashMap<usize, usize> =
        keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    for a in &mut actions {
        a.episode = a.episode.and_then(|k| index.get(&k).copied());
    }
    actions.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.policy.cmp(&b.policy)));
    let records = ev
        .records
        .into_iter()
        .map(|(name, r)| (name, r.series.unwrap_or_default()))
        .collect();
    Ok(Replay {
        grid: Some(grid),
        records,
        episodes,
        actions,
    })
}
