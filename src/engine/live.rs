//! Rules evaluated live, one aligned step at a time, with the same evaluator,
//! alert state machine and remediation decisions as a backtest: `watch`
//! calls [`LiveRules::step`] at each step (at `now - offset`), and a
//! backtest over the same steps on the same store gives the same alert
//! timeline and the same decisions.
//!
//! On start (and on a rule reload) [`LiveRules::start`] replays the rules
//! over the stored history they need (`for`, `keep_firing`, the longest
//! window), so that an alert firing before a restart comes back firing.
//! What data cannot give back (what ran, approvals) comes from the journal.

use super::EngineError;
use super::alerts::Episode;
use super::source::Source;
use crate::dsl::ast::RuleFile;
use crate::remediate::decide::{ActionEvent, Approvals};
use crate::store::SeriesData;

/// What one step produced.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// The step's time (ms).
    pub t: i64,
    /// The `record` rules' samples at `t`, for the live store.
    pub records: Vec<SeriesData>,
    /// The decisions made at `t`, in order: the journal records them all;
    /// `Run` and `Escalated` ones are carried out.
    pub decisions: Vec<ActionEvent>,
}

/// One alert instance as `watch` serves and sends it.
#[derive(Clone, Debug)]
pub struct AlertView {
    pub episode: Episode,
    /// `summary`, `runbook` (templated), as Prometheus's annotations.
    pub annotations: crate::engine::value::Labels,
    /// Held back by a `suppress ... while ...`.
    pub suppressed: bool,
}

/// The rules' live state.
pub struct LiveRules {
    files: Vec<RuleFile>,
    step_ms: i64,
    next_step: i64,
}

impl LiveRules {
    /// Replays `files` over `[first_step - warmup_ms(files), first_step)`
    /// from `source` and readies the state for `first_step`. `past` are the
    /// decisions the journal holds (runs, `unknown` ones included, count
    /// against limits; a decision already there is not made again).
    pub fn start(
        files: Vec<RuleFile>,
        _source: &dyn Source,
        first_step: i64,
        step_ms: i64,
        _past: &[ActionEvent],
        _approvals: &Approvals,
        _max_samples: u64,
    ) -> Result<LiveRules, EngineError> {
        Ok(LiveRules {
            files,
            step_ms,
            next_step: first_step,
        })
    }

    /// The time of the step [`LiveRules::step`] evaluates next.
    pub fn next_step(&self) -> i64 {
        self.next_step
    }

    pub fn step_ms(&self) -> i64 {
        self.step_ms
    }

    pub fn files(&self) -> &[RuleFile] {
        &self.files
    }

    /// Evaluates the next step from `source` and advances.
    pub fn step(
        &mut self,
        _source: &dyn Source,
        _approvals: &Approvals,
    ) -> Result<StepOutput, EngineError> {
        todo!("engine helper")
    }

    /// The active (pending or firing) alert instances, and those resolved
    /// within the last 15 minutes (Alertmanager gets resolved alerts resent
    /// for that long, as Prometheus does).
    pub fn alerts(&self) -> Vec<AlertView> {
        todo!("engine helper")
    }
}

/// How much history [`LiveRules::start`] replays for `files`: the longest
/// `for` plus `keep_firing`, plus the longest range and offset any rule
/// reads, plus the flap window.
pub fn warmup_ms(_files: &[RuleFile]) -> i64 {
    todo!("engine helper")
}
