//! Replaying a rule set over a grid of steps: records first (each one visible
//! to the rules after it), then alerts through their state machine, then the
//! remediation and maintenance blocks as a dry run of what their actions
//! would have done, within their policies' limits. Rule tests and backtests
//! both run on this.

use super::EngineError;
use super::alerts::Episode;
use super::source::{MemorySource, Source};
use super::state::{RuleState, evaluate};
use super::value::{Grid, Labels, Series, signature};
use crate::dsl::ast::{Action, Expr, Maintenance, MaxRate, Remediate, RuleFile, Where};
use crate::dsl::constants::Constants;
use crate::model::Matcher;
use crate::remediate::decide::Approvals;
use crate::remediate::{Decision, Limits, Policy};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

pub use super::state::as_samples;
pub use crate::remediate::decide::{ActionEvent, EventKind};

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
    let episodes = state.episodes();
    for f in files {
        for r in f.remediations() {
            actions.extend(remediate(r, &episodes, grid));
        }
    }
    for (name, cond) in &ev.maintenance {
        if let Some(m) = files
            .iter()
            .flat_map(|f| f.maintenances())
            .find(|m| &m.name.name == name)
        {
            actions.extend(maintain(m, cond.series.as_deref().unwrap_or(&[]), grid));
        }
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

fn limits(cooldown: Option<i64>, max: &Option<MaxRate>, verify: Option<i64>) -> Limits {
    Limits {
        cooldown_ms: cooldown,
        max: max.as_ref().map(|m| (m.count, m.per.ms)),
        verify_ms: verify,
    }
}

/// Renders an action for a label set as the dry run shows it:
/// `exec "mcp-admin restart …"` (see [`crate::remediate::action`]).
pub fn render_action(action: &Action, labels: &Labels, trigger: &str, value: f64) -> String {
    let lookup = |name: &str| match name {
        "value" => Some(value.to_string()),
        "alert" => Some(trigger.to_string()),
        _ => labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
    };
    crate::remediate::action::describe(action, &lookup)
}

fn where_holds(w: &Where, labels: &Labels) -> bool {
    match w {
        Where::Cond { label, op, value } => {
            let have = labels
                .iter()
                .find(|(k, _)| *k == label.name)
                .map(|(_, v)| v.as_str());
            Matcher::new(label.name.clone(), op.match_op(), value.value.clone())
                .map(|m| m.matches(have))
                .unwrap_or(false)
        }
        Where::And(a, b) => where_holds(a, labels) && where_holds(b, labels),
        Where::Or(a, b) => where_holds(a, labels) || where_holds(b, labels),
        Where::Paren(a) => where_holds(a, labels),
    }
}

/// The dry run of one `remediate` block over the alert episodes.
fn remediate(r: &Remediate, episodes: &[Episode], grid: Grid) -> Vec<ActionEvent> {
    let triggers: HashSet<&str> = r.on.iter().map(|a| a.name.as_str()).collect();
    let mut policy = Policy::new(limits(
        r.cooldown.as_ref().map(|d| d.ms),
        &r.max,
        r.verify.as_ref().map(|d| d.ms),
    ));
    // Attempts in time order across episodes, so that cooldowns and limits
    // see runs in the order they would have happened.
    let mut queue: BinaryHeap<Reverse<(i64, usize)>> = episodes
        .iter()
        .enumerate()
        .filter(|(_, e)| triggers.contains(e.alert.as_str()))
        .filter(|(_, e)| r.filter.as_ref().is_none_or(|w| where_holds(w, &e.labels)))
        .filter_map(|(i, e)| e.fired_at.map(|t| Reverse((t, i))))
        .collect();
    let mut escalated: HashSet<usize> = HashSet::new();
    let mut events = Vec::new();
    let end = grid.end();
    while let Some(Reverse((t, i))) = queue.pop() {
        let e = &episodes[i];
        if t > end || !e.firing_at(t) {
            continue;
        }
        let key = signature(&e.labels, None);
        let event = |time: i64, kind: EventKind, action: &Action| ActionEvent {
            time,
            policy: r.name.name.clone(),
            kind,
            trigger: e.alert.clone(),
            labels: e.labels.clone(),
            action: render_action(action, &e.labels, &e.alert, e.last_value),
            episode: Some(i),
            value: e.last_value,
        };
        match policy.decide(&key, t) {
            Decision::Run => {
                policy.record(&key, t);
                events.push(event(t, EventKind::Run, &r.action));
                if let Some(v) = &r.verify {
                    let deadline = t + v.ms;
                    if deadline <= end && e.firing_at(deadline) {
                        events.push(event(deadline, EventKind::VerifyFailed, &r.action));
                        if let Some(esc) = &r.escalate {
                            events.push(event(deadline, EventKind::Escalated, esc));
                        }
                        let retry = deadline.max(t + r.cooldown.as_ref().map_or(0, |d| d.ms));
                        queue.push(Reverse((retry, i)));
                    }
                }
            }
            Decision::Cooldown { until } => {
                events.push(event(t, EventKind::Cooldown, &r.action));
                queue.push(Reverse((until, i)));
            }
            Decision::MaxReached { .. } => {
                events.push(event(t, EventKind::MaxReached, &r.action));
                if escalated.insert(i)
                    && let Some(esc) = &r.escalate
                {
                    events.push(event(t, EventKind::Escalated, esc));
                }
            }
        }
    }
    events
}

/// The dry run of one `maintenance` block: when its condition holds for a
/// series, the action is scheduled into the window's next slot and runs
/// there, within the block's cooldown and `max`.
fn maintain(m: &Maintenance, condition: &[Series], grid: Grid) -> Vec<ActionEvent> {
    let Some(window) = &m.window.window else {
        return Vec::new();
    };
    let mut policy = Policy::new(limits(m.cooldown.as_ref().map(|d| d.ms), &m.max, None));
    let mut events = Vec::new();
    for s in condition {
        let key = signature(&s.labels, None);
        let event = |time: i64, kind: EventKind, value: f64| ActionEvent {
            time,
            policy: m.name.name.clone(),
            kind,
            trigger: m.name.name.clone(),
            labels: s.labels.clone(),
            action: render_action(&m.action, &s.labels, &m.name.name, value),
            episode: None,
            value,
        };
        let mut scheduled: Option<(i64, f64)> = None;
        let mut blocked_until = i64::MIN;
        for k in s.start..grid.n {
            let t = grid.time(k);
            if let Some((at, value)) = scheduled
                && t >= at
            {
                match policy.decide(&key, at) {
                    Decision::Run => {
                        policy.record(&key, at);
                        events.push(event(at, EventKind::Run, value));
                    }
                    Decision::Cooldown { until } => {
                        events.push(event(at, EventKind::Cooldown, value));
                        blocked_until = until;
                    }
                    Decision::MaxReached { until } => {
                        events.push(event(at, EventKind::MaxReached, value));
                        blocked_until = until;
                    }
                }
                scheduled = None;
            }
            if k >= s.end() && scheduled.is_none() {
                break;
            }
            if let (None, Some(v)) = (scheduled, s.at(k)) {
                let earliest = t.max(blocked_until);
                let (slot_start, _) = window.slot_at_or_after(earliest);
                let at = slot_start.max(earliest);
                // After a run, the condition usually still holds until the
                // next sample shows the effect; wait out the cooldown.
                if policy.decide(&key, at) == Decision::Run {
                    events.push(event(t, EventKind::Scheduled, v));
                    scheduled = Some((at, v));
                } else if let Decision::Cooldown { until } | Decision::MaxReached { until } =
                    policy.decide(&key, at)
                {
                    blocked_until = until;
                }
            }
        }
    }
    events
}
