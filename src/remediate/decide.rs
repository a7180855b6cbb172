//! The decisions of remediation and maintenance blocks, step by step: whether
//! an action is due for an alert instance (or a maintenance condition) at a
//! step, and what holds it back (cooldown, `max N per D`, concurrency, the
//! circuit breaker, a guard, inhibition, a pending approval), verification
//! and escalation. `backtest` replays these decisions over history as a dry
//! run and `watch` makes the same decisions live and carries them out, so a
//! backtest over a window that `watch` ran in shows what `watch` did.
//!
//! The [`Decider`] is advanced one grid step at a time with what is known at
//! that step (a [`StepView`]); it never looks ahead, so a backtest (which
//! evaluates the conditions over the whole grid first) and `watch` (which
//! evaluates each step as it comes) feed it the same views and get the same
//! decisions.

use super::exec::{DEFAULT_GRACE, DEFAULT_TIMEOUT};
use super::policy::{Decision, Limits, Policy};
use crate::dsl::ast::{
    Action, ActionState, Dur, Maintenance, MaxRate, Mode, Remediate, RuleFile, Where,
};
use crate::engine::value::{Labels, signature};
use crate::model::Matcher;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What happened to an action at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The action ran (or would have, in a dry run).
    Run,
    /// A maintenance condition held; the action waits for the window's next slot.
    Scheduled,
    /// Suppressed: the same series ran it within the cooldown.
    Cooldown,
    /// Suppressed: `max N per D` was spent.
    MaxReached,
    /// Suppressed: `concurrency N [per LABEL]` had no free slot.
    Concurrency,
    /// Suppressed: the block's circuit breaker (`breaker N per D`) is open.
    Breaker,
    /// Suppressed: the block's `guard` had no result.
    Guard,
    /// Suppressed: the alert is inhibited by a `suppress ... while ...`.
    Inhibited,
    /// The action waits for `mcpops approve ID` (ID is this event's [`ActionEvent::id`]).
    AwaitingApproval,
    /// `approve within D` ran out without an approval.
    ApprovalExpired,
    /// The alert was still firing when `verify within` ran out.
    VerifyFailed,
    /// The escalation action ran (or would have).
    Escalated,
}

impl EventKind {
    /// The name tables and the audit show.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Run => "run",
            EventKind::Scheduled => "scheduled",
            EventKind::Cooldown => "suppressed (cooldown)",
            EventKind::MaxReached => "suppressed (max)",
            EventKind::Concurrency => "suppressed (concurrency)",
            EventKind::Breaker => "suppressed (breaker)",
            EventKind::Guard => "suppressed (guard)",
            EventKind::Inhibited => "suppressed (inhibited)",
            EventKind::AwaitingApproval => "awaiting approval",
            EventKind::ApprovalExpired => "approval expired",
            EventKind::VerifyFailed => "verify failed",
            EventKind::Escalated => "escalated",
        }
    }

    /// Every kind, in the order of the enum.
    pub const ALL: [EventKind; 12] = [
        EventKind::Run,
        EventKind::Scheduled,
        EventKind::Cooldown,
        EventKind::MaxReached,
        EventKind::Concurrency,
        EventKind::Breaker,
        EventKind::Guard,
        EventKind::Inhibited,
        EventKind::AwaitingApproval,
        EventKind::ApprovalExpired,
        EventKind::VerifyFailed,
        EventKind::Escalated,
    ];

    /// The kind whose [`EventKind::name`] is `name`.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the action was due and held back.
    pub fn is_suppression(self) -> bool {
        matches!(
            self,
            EventKind::Cooldown
                | EventKind::MaxReached
                | EventKind::Concurrency
                | EventKind::Breaker
                | EventKind::Guard
                | EventKind::Inhibited
        )
    }

    /// What a test's `expect BLOCK at T == STATE` calls this kind, if anything.
    pub fn action_state(self) -> Option<ActionState> {
        match self {
            EventKind::Run => Some(ActionState::Run),
            EventKind::Escalated => Some(ActionState::Escalated),
            EventKind::AwaitingApproval => Some(ActionState::AwaitingApproval),
            k if k.is_suppression() => Some(ActionState::Suppressed),
            _ => None,
        }
    }
}

/// One decision of a remediation or maintenance block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// The step it was made at (ms).
    pub time: i64,
    /// The `remediate` or `maintenance` block.
    pub policy: String,
    pub kind: EventKind,
    /// The alert that triggered it, or the maintenance block's name.
    pub trigger: String,
    pub labels: Labels,
    /// The action as it would run (`exec "systemctl restart mcp@mcp-06"`);
    /// for `escalated`, the escalation action.
    pub action: String,
    /// The alert episode for remediations: the [`AlertAt::episode`] the
    /// caller gave (in a replay, an index into its episodes).
    pub episode: Option<usize>,
    /// The condition's value that the action's template sees as `{{value}}`.
    pub value: f64,
    /// The block's `mode` (`auto` when it sets none); `watch`'s global
    /// switch applies on top.
    #[serde(default = "auto", with = "mode_name")]
    pub mode: Mode,
    /// Who approved it, for a `run` that waited for `mcpops approve`.
    #[serde(default)]
    pub approved_by: Option<String>,
}

fn auto() -> Mode {
    Mode::Auto
}

/// [`Mode`] as its name (`dry-run`, `auto`).
mod mode_name {
    use crate::dsl::ast::Mode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "dry-run" => Ok(Mode::DryRun),
            "auto" => Ok(Mode::Auto),
            other => Err(serde::de::Error::custom(format!(
                "unknown mode {other:?} (dry-run or auto)"
            ))),
        }
    }
}

/// An approval given with `mcpops approve ID`, read back from the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved (`--by`, else the user running `mcpops approve`).
    pub by: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// Approvals by the id of the decision that asked for them
/// ([`ActionEvent::id`]).
pub type Approvals = HashMap<String, Approval>;

impl ActionEvent {
    /// A name for this decision that the same data always gives it, in
    /// `watch` and in `backtest` alike: 16 hex digits of a SHA-256 of the
    /// block, the kind, the step and the labels. `mcpops approve ID` names a
    /// decision so, and the journal keys intents and results by it.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.policy.as_bytes());
        h.update([0]);
        h.update(self.kind.name().as_bytes());
        h.update([0]);
        h.update(self.time.to_be_bytes());
        for (k, v) in &self.labels {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One alert instance as the decisions see it at a step: pending or firing.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertAt {
    pub alert: String,
    /// The instance's labels (the series', the alert's own, `severity`).
    pub labels: Labels,
    /// When this episode started firing; `None` while pending.
    pub fired_at: Option<i64>,
    /// The condition's value at the step (or when it last held, while
    /// `keep_firing` holds the alert): the template's `{{value}}`.
    pub value: f64,
    /// Inhibited at the step by a `suppress ... while ...`.
    pub suppressed: bool,
    /// The caller's name for the episode, copied into [`ActionEvent::episode`].
    pub episode: usize,
}

/// What is known at one step: everything [`Decider::step`] decides from.
#[derive(Clone, Debug, Default)]
pub struct StepView<'a> {
    /// The step (ms).
    pub t: i64,
    /// The active alert instances at `t` (pending or firing), any order.
    pub alerts: Vec<AlertAt>,
    /// Each guarded block's guard at `t`, by block name: whether the guard
    /// expression has a result. A guarded block missing here counts as false.
    pub guards: HashMap<String, bool>,
    /// Each maintenance block's condition at `t`, by block name: the series
    /// for which it holds, with their values.
    pub conditions: HashMap<String, Vec<(Labels, f64)>>,
    /// Approvals given so far (one given after `t` does not count yet).
    pub approvals: Option<&'a Approvals>,
}

/// How long a run holds a concurrency slot: the block's `timeout` plus the
/// kill grace, whether it ends sooner or not, so that a backtest (which
/// cannot know how long a run took) and `watch` decide alike.
fn slot_ms(timeout: Option<&Dur>) -> i64 {
    let timeout = timeout.map_or(DEFAULT_TIMEOUT.as_millis() as i64, |d| d.ms);
    timeout + DEFAULT_GRACE.as_millis() as i64
}

fn limits(cooldown: Option<&Dur>, max: Option<&MaxRate>, verify: Option<&Dur>) -> Limits {
    Limits {
        cooldown_ms: cooldown.map(|d| d.ms),
        max: max.map(|m| (m.count, m.per.ms)),
        verify_ms: verify.map(|d| d.ms),
    }
}

/// Renders an action for a label set as the dry run shows it:
/// `exec "mcp-admin restart …"` (see [`crate::remediate::action`]).
pub fn render_action(action: &Action, labels: &Labels, trigger: &str, value: f64) -> String {
    super::action::describe(action, &super::action::lookup(labels, trigger, value))
}

/// Whether a `where` clause holds for an alert instance's labels.
pub fn where_holds(w: &Where, labels: &Labels) -> bool {
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

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// An alert instance of a block: the triggering alert and its series key.
type Instance = (String, String);

/// A run of a remediation, as the limits remember it.
#[derive(Clone, Debug)]
struct RunRec {
    t: i64,
    trigger: String,
    key: String,
    labels: Labels,
}

/// What a firing episode waits for.
#[derive(Clone, Debug)]
struct EpisodeState {
    fired_at: i64,
    /// When the next attempt is due; `None`: no more attempts this episode
    /// (it ran and verification, if any, has not failed; or `max` is spent).
    due: Option<i64>,
    /// The reason it was last held back, so a wait is reported once.
    hold: Option<EventKind>,
}

#[derive(Clone, Debug)]
struct PendingVerify {
    run: i64,
    deadline: i64,
    inst: Instance,
}

#[derive(Clone, Debug)]
struct PendingApproval {
    id: String,
    asked_at: i64,
}

/// One `remediate` block's state.
#[derive(Clone, Debug)]
struct RemedState {
    block: Remediate,
    mode: Mode,
    triggers: HashSet<String>,
    policy: Policy,
    slot_ms: i64,
    runs: Vec<RunRec>,
    episodes: HashMap<Instance, EpisodeState>,
    verifies: Vec<PendingVerify>,
    approvals: HashMap<Instance, PendingApproval>,
    /// The last `suppressed (max)` per instance: the escalation goes out
    /// once per episode.
    max_hit: HashMap<Instance, i64>,
    seeds: Seeds,
    /// The breaker is open and has paged for this opening.
    breaker_paged: bool,
}

/// One maintenance series' state.
#[derive(Clone, Debug)]
struct MaintSeries {
    labels: Labels,
    /// The slot time it is scheduled for, and the condition's value then.
    scheduled: Option<(i64, f64)>,
    /// The limits allow no run before this.
    blocked_until: i64,
    hold: Option<EventKind>,
}

impl MaintSeries {
    fn new(labels: &Labels) -> MaintSeries {
        MaintSeries {
            labels: labels.clone(),
            scheduled: None,
            blocked_until: i64::MIN,
            hold: None,
        }
    }
}

/// One `maintenance` block's state.
#[derive(Clone, Debug)]
struct MaintState {
    block: Maintenance,
    mode: Mode,
    policy: Policy,
    series: BTreeMap<String, MaintSeries>,
    seeds: Seeds,
}

/// The decisions of every `remediate` and `maintenance` block of a rule set,
/// advanced one step at a time.
#[derive(Clone, Debug)]
pub struct Decider {
    remediations: Vec<RemedState>,
    maintenances: Vec<MaintState>,
}

impl Decider {
    /// The decisions of every `remediate` and `maintenance` block of `files`.
    pub fn new(files: &[RuleFile]) -> Decider {
        let remediations = files
            .iter()
            .flat_map(|f| f.remediations())
            .map(|r| RemedState {
                mode: r.mode.map_or(Mode::Auto, |(m, _)| m),
                triggers: r.on.iter().map(|a| a.name.clone()).collect(),
                policy: Policy::new(limits(
                    r.cooldown.as_ref(),
                    r.max.as_ref(),
                    r.verify.as_ref(),
                )),
                slot_ms: slot_ms(r.timeout.as_ref()),
                runs: Vec::new(),
                episodes: HashMap::new(),
                verifies: Vec::new(),
                approvals: HashMap::new(),
                max_hit: HashMap::new(),
                seeds: Seeds::default(),
                breaker_paged: false,
                block: r.clone(),
            })
            .collect();
        let maintenances = files
            .iter()
            .flat_map(|f| f.maintenances())
            .map(|m| MaintState {
                mode: m.mode.map_or(Mode::Auto, |(m, _)| m),
                policy: Policy::new(limits(m.cooldown.as_ref(), m.max.as_ref(), None)),
                series: BTreeMap::new(),
                seeds: Seeds::default(),
                block: m.clone(),
            })
            .collect();
        Decider {
            remediations,
            maintenances,
        }
    }

    /// Takes in decisions made before (the journal's, after a restart), in
    /// any order: their runs count against cooldown, `max`, the breaker and
    /// the concurrency slots; their verifications and approval requests
    /// stay pending; and a decision with the same [`ActionEvent::id`] is
    /// not made again.
    pub fn seed(&mut self, past: &[ActionEvent]) {
        for ev in past {
            if let Some(r) = self
                .remediations
                .iter_mut()
                .find(|r| r.block.name.name == ev.policy)
            {
                r.seeds.push(ev.clone());
            } else if let Some(m) = self
                .maintenances
                .iter_mut()
                .find(|m| m.block.name.name == ev.policy)
            {
                m.seeds.push(ev.clone());
            }
        }
        for r in &mut self.remediations {
            r.seeds.ready();
        }
        for m in &mut self.maintenances {
            m.seeds.ready();
        }
    }

    /// The decisions at step `view.t` (ms; steps in increasing order), from
    /// what `view` says is known then, in the order they are made:
    /// remediation blocks first, in file order, then maintenance blocks.
    pub fn step(&mut self, view: &StepView) -> Vec<ActionEvent> {
        let t = view.t;
        let mut out = Vec::new();
        let empty = Approvals::new();
        let approvals = view.approvals.unwrap_or(&empty);
        // Only firing instances are acted on, in one order whatever order
        // the view lists them in, so that backtest and watch agree.
        let mut firing: Vec<&AlertAt> = view
            .alerts
            .iter()
            .filter(|a| a.fired_at.is_some())
            .collect();
        firing.sort_by(|a, b| a.alert.cmp(&b.alert).then_with(|| a.labels.cmp(&b.labels)));
        for r in &mut self.remediations {
            let guard = r.block.guard.is_none()
                || view
                    .guards
                    .get(&r.block.name.name)
                    .copied()
                    .unwrap_or(false);
            r.catch_up(t, false);
            r.step(t, &firing, guard, approvals, &mut out);
            r.catch_up(t, true);
        }
        for m in &mut self.maintenances {
            let guard = m.block.guard.is_none()
                || view
                    .guards
                    .get(&m.block.name.name)
                    .copied()
                    .unwrap_or(false);
            let cond = view
                .conditions
                .get(&m.block.name.name)
                .map_or(&[][..], Vec::as_slice);
            m.catch_up(t, false);
            m.step(t, cond, guard, &mut out);
            m.catch_up(t, true);
        }
        out
    }

    /// How many runs of remediation `block` hold a concurrency slot at `t`.
    pub fn slots_held(&self, block: &str, t: i64) -> usize {
        self.remediations
            .iter()
            .filter(|r| r.block.name.name == block)
            .map(|r| r.held(t).count())
            .sum()
    }
}

/// Decisions made before (the journal's), each taking effect at its step:
/// consumed when the same decision is made again (it is not recorded
/// twice), else applied once its step has passed. Applying them at their
/// step, not at once, lets a Decider replay history from before them.
#[derive(Clone, Debug, Default)]
struct Seeds {
    /// In time order.
    events: Vec<ActionEvent>,
    ids: HashMap<String, usize>,
    consumed: Vec<bool>,
    /// Events before this index are consumed or applied.
    next: usize,
}

impl Seeds {
    fn push(&mut self, ev: ActionEvent) {
        self.events.push(ev);
    }

    /// Orders what [`Seeds::push`] took.
    fn ready(&mut self) {
        self.events.sort_by_key(|e| e.time);
        self.ids = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id(), i))
            .collect();
        self.consumed = vec![false; self.events.len()];
        self.next = 0;
    }

    /// Whether `id` is a decision made before, not yet taken (and takes it).
    fn take(&mut self, id: &str) -> bool {
        match self.ids.get(id) {
            Some(&i) if !self.consumed[i] => {
                self.consumed[i] = true;
                true
            }
            _ => false,
        }
    }

    /// The decisions before `t` (or at it, with `inclusive`) that were not
    /// made again: they happened, so they count.
    fn passed(&mut self, t: i64, inclusive: bool) -> Vec<ActionEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.events.get(self.next) {
            if e.time > t || (e.time == t && !inclusive) {
                break;
            }
            if !self.consumed[self.next] {
                self.consumed[self.next] = true;
                out.push(e.clone());
            }
            self.next += 1;
        }
        out
    }
}

impl RemedState {
    /// Records a decision (unless it was made before) and, with
    /// `effects`, applies it to the limits.
    fn commit(&mut self, out: &mut Vec<ActionEvent>, ev: ActionEvent, effects: bool) {
        let made_before = self.seeds.take(&ev.id());
        if effects {
            self.apply(&ev);
        }
        if !made_before {
            out.push(ev);
        }
    }

    /// Applies the decisions made before that this step passed.
    fn catch_up(&mut self, t: i64, inclusive: bool) {
        for ev in self.seeds.passed(t, inclusive) {
            self.apply(&ev);
        }
    }

    fn event(&self, t: i64, kind: EventKind, a: &AlertAt, action: &Action) -> ActionEvent {
        ActionEvent {
            time: t,
            policy: self.block.name.name.clone(),
            kind,
            trigger: a.alert.clone(),
            labels: a.labels.clone(),
            action: render_action(action, &a.labels, &a.alert, a.value),
            episode: Some(a.episode),
            value: a.value,
            mode: self.mode,
            approved_by: None,
        }
    }

    /// The runs holding a concurrency slot at `t`.
    fn held(&self, t: i64) -> impl Iterator<Item = &RunRec> {
        self.runs
            .iter()
            .filter(move |r| r.t <= t && t < r.t + self.slot_ms)
    }

    /// The effects of a decision on the block's limits.
    fn apply(&mut self, ev: &ActionEvent) {
        let inst = (ev.trigger.clone(), signature(&ev.labels, None));
        match ev.kind {
            EventKind::Run => {
                self.policy.record(&inst.1, ev.time);
                self.runs.push(RunRec {
                    t: ev.time,
                    trigger: inst.0.clone(),
                    key: inst.1.clone(),
                    labels: ev.labels.clone(),
                });
                if let Some(v) = &self.block.verify {
                    self.verifies.push(PendingVerify {
                        run: ev.time,
                        deadline: ev.time + v.ms,
                        inst: inst.clone(),
                    });
                }
                self.approvals.remove(&inst);
            }
            EventKind::AwaitingApproval => {
                self.approvals.insert(
                    inst,
                    PendingApproval {
                        id: ev.id(),
                        asked_at: ev.time,
                    },
                );
            }
            EventKind::ApprovalExpired => {
                self.approvals.remove(&inst);
            }
            EventKind::VerifyFailed => {
                self.verifies
                    .retain(|v| !(v.inst == inst && v.run <= ev.time));
            }
            EventKind::MaxReached => {
                self.max_hit.insert(inst, ev.time);
            }
            _ => {}
        }
    }

    fn step(
        &mut self,
        t: i64,
        firing: &[&AlertAt],
        guard: bool,
        approvals: &Approvals,
        out: &mut Vec<ActionEvent>,
    ) {
        let mine: Vec<(&AlertAt, Instance)> = firing
            .iter()
            .filter(|a| self.triggers.contains(&a.alert))
            .filter(|a| {
                self.block
                    .filter
                    .as_ref()
                    .is_none_or(|w| where_holds(w, &a.labels))
            })
            .map(|a| (*a, (a.alert.clone(), signature(&a.labels, None))))
            .collect();
        let now: HashMap<&Instance, &AlertAt> = mine.iter().map(|(a, i)| (i, *a)).collect();

        // Episodes: new ones get an attempt at their first firing step;
        // ended ones are forgotten, with their pending approvals.
        self.episodes
            .retain(|i, e| now.get(i).is_some_and(|a| a.fired_at == Some(e.fired_at)));
        self.approvals.retain(|i, _| now.contains_key(i));
        for (a, inst) in &mine {
            let fired_at = a.fired_at.unwrap_or(t);
            if !self.episodes.contains_key(inst) {
                // After a restart the journal may hold this episode's run.
                let ran = self
                    .runs
                    .iter()
                    .any(|r| r.trigger == inst.0 && r.key == inst.1 && r.t >= fired_at);
                self.episodes.insert(
                    inst.clone(),
                    EpisodeState {
                        fired_at,
                        due: (!ran).then_some(fired_at),
                        hold: None,
                    },
                );
            }
        }

        // Verifications that ran out: still firing in the same episode is a
        // failure, an escalation and a retry.
        let (due_now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.verifies)
            .into_iter()
            .partition(|v| v.deadline <= t);
        self.verifies = later;
        let cooldown = self.block.cooldown.as_ref().map_or(0, |d| d.ms);
        for v in due_now {
            let Some(a) = now.get(&v.inst).copied() else {
                continue;
            };
            if a.fired_at.is_none_or(|f| f > v.run) {
                continue;
            }
            let ev = self.event(t, EventKind::VerifyFailed, a, &self.block.action);
            self.commit(out, ev, false);
            if let Some(esc) = &self.block.escalate {
                let ev = self.event(t, EventKind::Escalated, a, esc);
                self.commit(out, ev, false);
            }
            if let Some(e) = self.episodes.get_mut(&v.inst) {
                e.due = Some(v.deadline.max(v.run + cooldown));
                e.hold = None;
            }
        }

        // The breaker: fleet-wide, over the block's runs.
        let breaker_open = self.block.breaker.as_ref().is_some_and(|b| {
            let n = self.runs.iter().filter(|r| r.t > t - b.per.ms).count();
            n as i64 >= b.count.max(0)
        });
        if !breaker_open {
            self.breaker_paged = false;
        }

        for (a, inst) in mine {
            let Some(e) = self.episodes.get(&inst) else {
                continue;
            };
            let (fired_at, hold) = (e.fired_at, e.hold);
            if e.due.is_none_or(|d| d > t) {
                continue;
            }
            // A request for approval that ran out.
            if let (Some(ap), Some(within)) = (self.approvals.get(&inst), &self.block.approve) {
                let approved = approvals.get(&ap.id).is_some_and(|x| x.at_ms <= t);
                if !approved && t >= ap.asked_at + within.within.ms {
                    self.approvals.remove(&inst);
                    let ev = self.event(t, EventKind::ApprovalExpired, a, &self.block.action);
                    self.commit(out, ev, false);
                    if let Some(esc) = &self.block.escalate {
                        let ev = self.event(t, EventKind::Escalated, a, esc);
                        self.commit(out, ev, false);
                    }
                    self.set(&inst, None, None);
                    continue;
                }
            }
            let held = |kind: EventKind| (hold != Some(kind)).then_some(kind);
            if a.suppressed {
                if let Some(k) = held(EventKind::Inhibited) {
                    self.hold(t, k, a, &inst, out);
                }
                continue;
            }
            match self.policy.decide(&inst.1, t) {
                Decision::Run => {}
                Decision::Cooldown { until } => {
                    let ev = self.event(t, EventKind::Cooldown, a, &self.block.action);
                    self.commit(out, ev, false);
                    self.set(&inst, Some(until), None);
                    continue;
                }
                Decision::MaxReached { .. } => {
                    let paged = self.max_hit.get(&inst).is_some_and(|&m| m >= fired_at);
                    let ev = self.event(t, EventKind::MaxReached, a, &self.block.action);
                    self.commit(out, ev, true);
                    if !paged && let Some(esc) = &self.block.escalate {
                        let ev = self.event(t, EventKind::Escalated, a, esc);
                        self.commit(out, ev, false);
                    }
                    self.set(&inst, None, None);
                    continue;
                }
            }
            if breaker_open {
                if let Some(k) = held(EventKind::Breaker) {
                    self.hold(t, k, a, &inst, out);
                    if !self.breaker_paged {
                        self.breaker_paged = true;
                        if let Some(esc) = &self.block.escalate {
                            let ev = self.event(t, EventKind::Escalated, a, esc);
                            self.commit(out, ev, false);
                        }
                    }
                }
                continue;
            }
            if !guard {
                if let Some(k) = held(EventKind::Guard) {
                    self.hold(t, k, a, &inst, out);
                }
                continue;
            }
            let full = self.block.concurrency.iter().any(|c| {
                let n = self
                    .held(t)
                    .filter(|r| {
                        c.per
                            .as_ref()
                            .is_none_or(|l| label(&r.labels, &l.name) == label(&a.labels, &l.name))
                    })
                    .count();
                n as i64 >= c.limit.max(0)
            });
            if full {
                if let Some(k) = held(EventKind::Concurrency) {
                    self.hold(t, k, a, &inst, out);
                }
                continue;
            }
            let mut approved_by = None;
            if self.block.approve.is_some() {
                match self.approvals.get(&inst) {
                    None => {
                        let ev = self.event(t, EventKind::AwaitingApproval, a, &self.block.action);
                        self.commit(out, ev, true);
                        if let Some(e) = self.episodes.get_mut(&inst) {
                            e.hold = None;
                        }
                        continue;
                    }
                    Some(ap) => match approvals.get(&ap.id) {
                        Some(x) if x.at_ms <= t => approved_by = Some(x.by.clone()),
                        _ => continue,
                    },
                }
            }
            let mut ev = self.event(t, EventKind::Run, a, &self.block.action);
            ev.approved_by = approved_by;
            self.commit(out, ev, true);
            self.approvals.remove(&inst);
            self.set(&inst, None, None);
        }
        self.forget(t);
    }

    /// Forgets what can no longer change a decision, so that a `watch` that
    /// runs for months does not grow: runs older than every window that
    /// counts them (cooldown, `max`, the breaker, a concurrency slot) and
    /// older than the oldest episode still firing (whether an episode ran is
    /// asked of the runs), and the `suppressed (max)` marks of instances no
    /// longer firing.
    fn forget(&mut self, t: i64) {
        let b = &self.block;
        let window = [
            Some(self.slot_ms),
            b.cooldown.as_ref().map(|d| d.ms),
            b.max.as_ref().map(|m| m.per.ms),
            b.breaker.as_ref().map(|m| m.per.ms),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        let oldest = self.episodes.values().map(|e| e.fired_at).min();
        let keep_from = oldest.map_or(t - window, |o| o.min(t - window));
        self.runs.retain(|r| r.t >= keep_from);
        self.policy.forget_before(keep_from);
        let episodes = &self.episodes;
        self.max_hit.retain(|i, _| episodes.contains_key(i));
    }

    fn set(&mut self, inst: &Instance, due: Option<i64>, hold: Option<EventKind>) {
        if let Some(e) = self.episodes.get_mut(inst) {
            e.due = due;
            e.hold = hold;
        }
    }

    /// Holds an attempt back for `kind`: reported once per wait, retried
    /// at the next step.
    fn hold(
        &mut self,
        t: i64,
        kind: EventKind,
        a: &AlertAt,
        inst: &Instance,
        out: &mut Vec<ActionEvent>,
    ) {
        let ev = self.event(t, kind, a, &self.block.action);
        self.commit(out, ev, false);
        if let Some(e) = self.episodes.get_mut(inst) {
            e.hold = Some(kind);
        }
    }
}

impl MaintState {
    /// As [`RemedState::commit`].
    fn commit(&mut self, out: &mut Vec<ActionEvent>, ev: ActionEvent, effects: bool) {
        let made_before = self.seeds.take(&ev.id());
        if effects {
            self.apply(&ev, false);
        }
        if !made_before {
            out.push(ev);
        }
    }

    fn catch_up(&mut self, t: i64, inclusive: bool) {
        for ev in self.seeds.passed(t, inclusive) {
            self.apply(&ev, true);
        }
    }

    fn event(&self, t: i64, kind: EventKind, labels: &Labels, value: f64) -> ActionEvent {
        let name = &self.block.name.name;
        ActionEvent {
            time: t,
            policy: name.clone(),
            kind,
            trigger: name.clone(),
            labels: labels.clone(),
            action: render_action(&self.block.action, labels, name, value),
            episode: None,
            value,
            mode: self.mode,
            approved_by: None,
        }
    }

    /// The effects of a decision on the block's limits; when `seeding`,
    /// also the schedule a `scheduled` decision made.
    fn apply(&mut self, ev: &ActionEvent, seeding: bool) {
        let key = signature(&ev.labels, None);
        match ev.kind {
            EventKind::Run => {
                self.policy.record(&key, ev.time);
                if seeding && let Some(s) = self.series.get_mut(&key) {
                    s.scheduled = None;
                }
            }
            EventKind::Scheduled if seeding => {
                let at = self.next_allowed(&key, ev.time);
                let s = self
                    .series
                    .entry(key)
                    .or_insert_with(|| MaintSeries::new(&ev.labels));
                s.scheduled = at.map(|at| (at, ev.value));
            }
            _ => {}
        }
    }

    /// The first time at or after `t` inside a slot of the window at which
    /// the limits allow a run.
    fn next_allowed(&self, key: &str, t: i64) -> Option<i64> {
        let window = self.block.window.window.as_ref()?;
        let mut earliest = t;
        // Each round moves past a limit's end; a few suffice.
        for _ in 0..16 {
            let at = window.slot_at_or_after(earliest).0.max(earliest);
            match self.policy.decide(key, at) {
                Decision::Run => return Some(at),
                Decision::Cooldown { until } | Decision::MaxReached { until } => {
                    earliest = until.max(earliest + 1)
                }
            }
        }
        None
    }

    fn step(&mut self, t: i64, cond: &[(Labels, f64)], guard: bool, out: &mut Vec<ActionEvent>) {
        let Some(window) = self.block.window.window.clone() else {
            return;
        };
        // Conditions that hold: schedule into the window's next slot (this
        // step, when a slot is open now).
        let mut cond: Vec<(String, &Labels, f64)> = cond
            .iter()
            .map(|(l, v)| (signature(l, None), l, *v))
            .collect();
        cond.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, labels, v) in cond {
            let s = self
                .series
                .entry(key.clone())
                .or_insert_with(|| MaintSeries::new(labels));
            if s.scheduled.is_some() {
                continue;
            }
            let earliest = t.max(s.blocked_until);
            let at = window.slot_at_or_after(earliest).0.max(earliest);
            // After a run the condition usually still holds until the next
            // sample shows the effect; wait out the cooldown.
            match self.policy.decide(&key, at) {
                Decision::Run => {
                    s.scheduled = Some((at, v));
                    s.labels = labels.clone();
                    let ev = self.event(t, EventKind::Scheduled, labels, v);
                    self.commit(out, ev, false);
                }
                Decision::Cooldown { until } | Decision::MaxReached { until } => {
                    s.blocked_until = until;
                }
            }
        }
        // Scheduled runs that are due.
        let keys: Vec<String> = self.series.keys().cloned().collect();
        for key in &keys {
            let s = &self.series[key];
            let Some((at, value)) = s.scheduled else {
                continue;
            };
            if at > t {
                continue;
            }
            let labels = s.labels.clone();
            if !guard {
                if s.hold != Some(EventKind::Guard) {
                    let ev = self.event(t, EventKind::Guard, &labels, value);
                    self.commit(out, ev, false);
                }
                let s = self.series.get_mut(key).expect("listed");
                s.hold = Some(EventKind::Guard);
                // Held past the slot: wait for the next one.
                if !window.contains(t) {
                    s.scheduled = Some((window.slot_at_or_after(t).0, value));
                }
                continue;
            }
            let decision = self.policy.decide(key, t);
            let kind = match decision {
                Decision::Run => EventKind::Run,
                Decision::Cooldown { .. } => EventKind::Cooldown,
                Decision::MaxReached { .. } => EventKind::MaxReached,
            };
            let ev = self.event(t, kind, &labels, value);
            self.commit(out, ev, true);
            let s = self.series.get_mut(key).expect("listed");
            s.scheduled = None;
            s.hold = None;
            if let Decision::Cooldown { until } | Decision::MaxReached { until } = decision {
                s.blocked_until = until;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::ast::{Approve, Concurrency, Ident, Item, Span, StrLit};

    const MIN: i64 = 60_000;

    /// [`Decider::step`] at `t` with `view`'s contents.
    trait At {
        fn at(&mut self, t: i64, view: &StepView) -> Vec<ActionEvent>;
    }

    impl At for Decider {
        fn at(&mut self, t: i64, view: &StepView) -> Vec<ActionEvent> {
            self.step(&StepView { t, ..view.clone() })
        }
    }

    fn dur(ms: i64) -> Dur {
        Dur {
            ms,
            text: String::new(),
            span: Span::default(),
        }
    }

    fn rate(count: i64, per_ms: i64) -> MaxRate {
        MaxRate {
            count,
            per: dur(per_ms),
            span: Span::default(),
        }
    }

    fn ident(name: &str) -> Ident {
        Ident {
            name: name.into(),
            span: Span::default(),
        }
    }

    /// A rule file with alert `Down`, the remediation `R` written in
    /// `body`, and a maintenance `M` every day 02:00-03:00; `edit` sets what
    /// the text does not say.
    fn rules(body: &str, edit: impl Fn(&mut Remediate)) -> Vec<RuleFile> {
        let src = format!(
            "alert Down {{\n  when up == 0\n  severity critical\n}}\n\
             remediate R {{\n  on Down\n  do exec \"restart {{{{server}}}}\"\n{body}}}\n\
             maintenance M {{\n  when disk < 10\n  window \"daily 02:00-03:00 UTC\"\n  do notify \"ops {{{{server}}}}\"\n  cooldown 1h\n}}\n"
        );
        let mut file = crate::dsl::parse_str(&src, "t").expect("parses");
        for item in &mut file.items {
            if let Item::Remediate(r) = item {
                edit(r);
            }
        }
        vec![file]
    }

    fn labels(server: &str) -> Labels {
        vec![
            ("server".to_string(), server.to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]
    }

    fn down(server: &str, fired_at: i64, episode: usize) -> AlertAt {
        AlertAt {
            alert: "Down".into(),
            labels: labels(server),
            fired_at: Some(fired_at),
            value: 0.0,
            suppressed: false,
            episode,
        }
    }

    /// Steps `d` every minute over `[from, to]`, with the view `at` gives
    /// at each step, and returns the decisions.
    fn events(
        d: &mut Decider,
        from: i64,
        to: i64,
        at: impl Fn(i64) -> StepView<'static>,
    ) -> Vec<ActionEvent> {
        (from..=to).flat_map(|m| d.at(m * MIN, &at(m))).collect()
    }

    /// [`events`] as (minute, kind, server).
    fn run(
        d: &mut Decider,
        from: i64,
        to: i64,
        at: impl Fn(i64) -> StepView<'static>,
    ) -> Vec<(i64, EventKind, String)> {
        events(d, from, to, at)
            .iter()
            .map(|e| (e.time / MIN, e.kind, label(&e.labels, "server").to_string()))
            .collect()
    }

    /// Approvals holding one: `id` approved by `by` at `at_ms` (leaked, as
    /// a [`StepView`] of a test lives for the whole test).
    fn approved(id: String, by: &str, at_ms: i64) -> &'static Approvals {
        Box::leak(Box::new(
            [(
                id,
                Approval {
                    by: by.into(),
                    at_ms,
                },
            )]
            .into(),
        ))
    }

    /// `concurrency LIMIT [per LABEL]`.
    fn concurrency(limit: i64, per: Option<&str>) -> Concurrency {
        Concurrency {
            limit,
            per: per.map(ident),
            span: Span::default(),
        }
    }

    fn alerts(alerts: Vec<AlertAt>) -> StepView<'static> {
        StepView {
            alerts,
            ..StepView::default()
        }
    }

    fn ev(m: i64, kind: EventKind, server: &str) -> (i64, EventKind, String) {
        (m, kind, server.to_string())
    }

    #[test]
    fn the_state_forgets_runs_no_limit_counts_any_more() {
        // A flapping server over two days: a new 5-minute episode every 20
        // minutes, each run once; a cooldown of 10m and max 3 per 1h.
        let files = rules("  cooldown 10m\n  max 3 per 1h\n", |_| {});
        let mut d = Decider::new(&files);
        let mut ran = 0;
        for m in 0..(2 * 24 * 60) {
            let start = m - m % 20;
            let view = if m % 20 < 5 {
                alerts(vec![down("a", start * MIN, (start / 20) as usize)])
            } else {
                alerts(vec![])
            };
            ran += d
                .at(m * MIN, &view)
                .iter()
                .filter(|e| e.kind == EventKind::Run)
                .count();
            let r = &d.remediations[0];
            // What is kept: the runs of the last hour (the longest window), at most.
            assert!(r.runs.len() <= 4, "minute {m}: {} runs kept", r.runs.len());
            assert!(r.max_hit.len() <= 1);
        }
        // Limits still hold while forgetting: at most 3 runs in any hour.
        assert_eq!(ran, 2 * 24 * 3, "three per hour for two days");
    }

    use EventKind::*;

    #[test]
    fn a_firing_episode_is_attempted_at_its_first_firing_step_not_while_pending() {
        let mut d = Decider::new(&rules("", |_| {}));
        let got = run(&mut d, 0, 5, |m| {
            let mut a = down("a", 2, 0);
            a.fired_at = (m >= 2).then_some(2 * MIN);
            alerts(vec![a])
        });
        // Without verification an episode gets one run.
        assert_eq!(got, [ev(2, Run, "a")]);
    }

    #[test]
    fn where_picks_the_instances_a_block_acts_on() {
        let mut files = rules("  where server == \"b\"\n", |_| {});
        let mut d = Decider::new(&files);
        let got = run(&mut d, 0, 1, |_| {
            alerts(vec![down("a", 0, 0), down("b", 0, 1)])
        });
        assert_eq!(got, [ev(0, Run, "b")]);
        // An alert the block is not `on` is never acted on.
        if let Item::Remediate(r) = &mut files[0].items[1] {
            r.filter = None;
        }
        let mut d = Decider::new(&files);
        let got = run(&mut d, 0, 1, |_| {
            let mut a = down("a", 0, 0);
            a.alert = "Other".into();
            alerts(vec![a])
        });
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn cooldown_then_max_with_one_escalation_per_episode() {
        let mut d = Decider::new(&rules(
            "  cooldown 10m\n  max 2 per 1h\n  escalate notify \"oncall\"\n",
            |_| {},
        ));
        // Episodes: 0..3 (fired 0), 5..9 (fired 5), 20..40 (fired 20),
        // 45..50 (fired 45).
        let episode = |m: i64| match m {
            0..=2 => Some(0),
            5..=8 => Some(5),
            20..=39 => Some(20),
            45..=50 => Some(45),
            _ => None,
        };
        let got = run(&mut d, 0, 50, |m| {
            alerts(
                episode(m)
                    .map(|f| down("a", f * MIN, f as usize))
                    .into_iter()
                    .collect(),
            )
        });
        assert_eq!(
            got,
            [
                ev(0, Run, "a"),
                // Inside the cooldown: reported, retried when it ends;
                // the episode has ended by then.
                ev(5, Cooldown, "a"),
                ev(20, Run, "a"),
                // Two runs within the hour: suppressed and paged once.
                ev(45, MaxReached, "a"),
                ev(45, Escalated, "a"),
            ]
        );
    }

    #[test]
    fn max_pages_once_per_episode_and_again_in_the_next() {
        let mut d = Decider::new(&rules(
            "  cooldown 1m\n  max 1 per 1h\n  verify within 2m\n  escalate notify \"oncall\"\n",
            |_| {},
        ));
        let got = run(&mut d, 0, 20, |m| {
            let f = if m < 10 { 0 } else { 12 };
            alerts(if m == 10 || m == 11 {
                vec![]
            } else {
                vec![down("a", f * MIN, 0)]
            })
        });
        assert_eq!(
            got,
            [
                ev(0, Run, "a"),
                ev(2, VerifyFailed, "a"),
                ev(2, Escalated, "a"),
                ev(2, MaxReached, "a"),
                ev(2, Escalated, "a"),
                ev(12, MaxReached, "a"),
                ev(12, Escalated, "a"),
            ]
        );
    }

    #[test]
    fn verify_fails_escalates_and_retries_after_the_cooldown() {
        let mut d = Decider::new(&rules(
            "  cooldown 10m\n  verify within 5m\n  escalate notify \"oncall\"\n",
            |_| {},
        ));
        let got = run(&mut d, 0, 30, |_| alerts(vec![down("a", 0, 0)]));
        assert_eq!(
            got,
            [
                ev(0, Run, "a"),
                ev(5, VerifyFailed, "a"),
                ev(5, Escalated, "a"),
                ev(10, Run, "a"),
                ev(15, VerifyFailed, "a"),
                ev(15, Escalated, "a"),
                ev(20, Run, "a"),
                ev(25, VerifyFailed, "a"),
                ev(25, Escalated, "a"),
                ev(30, Run, "a"),
            ]
        );
        // Resolved before the deadline: nothing more.
        let mut d = Decider::new(&rules("  verify within 5m\n", |_| {}));
        let got = run(&mut d, 0, 10, |m| {
            alerts(if m < 3 { vec![down("a", 0, 0)] } else { vec![] })
        });
        assert_eq!(got, [ev(0, Run, "a")]);
        // The escalation carries the escalation action, the failure the action.
        let mut d = Decider::new(&rules(
            "  verify within 90s\n  escalate notify \"oncall {{server}}\"\n",
            |_| {},
        ));
        let all = events(&mut d, 0, 2, |_| alerts(vec![down("a", 0, 0)]));
        // The deadline (1m30s) falls between steps: decided at the next one.
        assert_eq!(all[1].time, 2 * MIN);
        assert_eq!(all[1].action, r#"exec "restart a""#);
        assert_eq!(all[2].action, r#"notify "oncall a""#);
    }

    #[test]
    fn concurrency_holds_slots_for_timeout_and_grace_and_reports_once_per_wait() {
        // timeout 30s + grace 5s: a slot is held for 35s, so every step of a
        // 30s grid sees the run before it.
        let mut d = Decider::new(&rules("  timeout 30s\n", |r| {
            r.concurrency = vec![concurrency(1, None)];
        }));
        let mut got = Vec::new();
        for k in 0..6 {
            let t = k * 30_000;
            for e in d.at(
                t,
                &alerts(vec![down("a", 0, 0), down("b", 0, 1), down("c", 0, 2)]),
            ) {
                got.push((t / 1000, e.kind, label(&e.labels, "server").to_string()));
            }
        }
        let s = |t: i64, k: EventKind, srv: &str| (t, k, srv.to_string());
        assert_eq!(
            got,
            [
                s(0, Run, "a"),
                s(0, Concurrency, "b"),
                s(0, Concurrency, "c"),
                // a's slot (0..35s) is still held at 30s.
                s(60, Run, "b"),
                s(120, Run, "c"),
            ]
        );
        assert_eq!(d.slots_held("R", 120_000), 1);
        assert_eq!(d.slots_held("R", 155_000), 0);
    }

    #[test]
    fn never_more_slots_than_the_limits_five_series_at_once() {
        let mut d = Decider::new(&rules("  timeout 2m\n", |r| {
            r.on.push(ident("Down2"));
            r.concurrency = vec![concurrency(1, Some("server")), concurrency(2, None)];
        }));
        // Five servers, two instances each (the block is on two alerts),
        // fire at once.
        let mut v = Vec::new();
        for (i, s) in ["s1", "s2", "s3", "s4", "s5"].iter().enumerate() {
            v.push(down(s, 0, i));
            let mut other = down(s, 0, 10 + i);
            other.alert = "Down2".into();
            v.push(other);
        }
        let view = alerts(v);
        let slot = 2 * MIN + 5_000;
        let mut runs: Vec<(i64, String)> = Vec::new();
        for m in 0..40 {
            for e in d.at(m * MIN, &view) {
                if e.kind == Run {
                    runs.push((e.time, label(&e.labels, "server").to_string()));
                }
            }
            let t = m * MIN;
            let held: Vec<&(i64, String)> = runs
                .iter()
                .filter(|(r, _)| *r <= t && t < r + slot)
                .collect();
            assert!(held.len() <= 2, "at {m}m: {held:?}");
            assert_eq!(held.len(), d.slots_held("R", t));
            for (_, s) in &held {
                assert_eq!(
                    held.iter().filter(|(_, x)| x == s).count(),
                    1,
                    "at {m}m: {held:?}"
                );
            }
        }
        // Everyone ran, two at a time.
        assert_eq!(runs.len(), 10, "{runs:?}");
        assert_eq!(runs.iter().filter(|(t, _)| *t == 0).count(), 2);
    }

    #[test]
    fn the_breaker_stops_the_block_and_pages_once_per_opening() {
        let mut d = Decider::new(&rules("  escalate notify \"oncall\"\n", |r| {
            r.breaker = Some(rate(2, 10 * MIN));
        }));
        let got = run(&mut d, 0, 12, |m| {
            let mut v = vec![down("a", 0, 0), down("b", 0, 1)];
            if m >= 1 {
                v.push(down("c", MIN, 2));
                v.push(down("d", MIN, 3));
            }
            alerts(v)
        });
        assert_eq!(
            got,
            [
                ev(0, Run, "a"),
                ev(0, Run, "b"),
                ev(1, Breaker, "c"),
                ev(1, Escalated, "c"),
                ev(1, Breaker, "d"),
                // The runs at 0 leave the window at 10m.
                ev(10, Run, "c"),
                ev(10, Run, "d"),
            ]
        );
    }

    #[test]
    fn a_false_guard_holds_the_action_and_it_is_retried_each_step() {
        let files = rules("", |r| {
            r.guard = Some(crate::dsl::parse_query("vector(1)").unwrap())
        });
        let mut d = Decider::new(&files);
        let got = run(&mut d, 0, 6, |m| StepView {
            guards: [("R".to_string(), m >= 4)].into(),
            ..alerts(vec![down("a", 0, 0)])
        });
        assert_eq!(got, [ev(0, Guard, "a"), ev(4, Run, "a")]);
        // A guarded block without a result for its guard counts as false.
        let mut d = Decider::new(&files);
        assert_eq!(
            run(&mut d, 0, 2, |_| alerts(vec![down("a", 0, 0)])),
            [ev(0, Guard, "a")]
        );
    }

    #[test]
    fn an_inhibited_alert_waits_until_it_is_not() {
        let mut d = Decider::new(&rules("", |_| {}));
        let got = run(&mut d, 0, 5, |m| {
            let mut a = down("a", 0, 0);
            a.suppressed = m < 3;
            alerts(vec![a])
        });
        assert_eq!(got, [ev(0, Inhibited, "a"), ev(3, Run, "a")]);
    }

    fn approve(r: &mut Remediate) {
        r.approve = Some(Approve {
            within: dur(15 * MIN),
            by: StrLit {
                value: "oncall".into(),
                span: Span::default(),
            },
            span: Span::default(),
        });
    }

    #[test]
    fn an_approved_action_runs_with_who_approved_it() {
        let files = rules("", approve);
        let mut d = Decider::new(&files);
        let asked = d.at(0, &alerts(vec![down("a", 0, 0)]));
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].kind, AwaitingApproval);
        let approvals = approved(asked[0].id(), "alice", 3 * MIN + 1);
        let got = events(&mut d, 1, 7, |_| StepView {
            approvals: Some(approvals),
            ..alerts(vec![down("a", 0, 0)])
        });
        // Approved at 3m + 1ms: known at the 4m step.
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].kind, got[0].time), (Run, 4 * MIN));
        assert_eq!(got[0].approved_by.as_deref(), Some("alice"));
    }

    #[test]
    fn an_approval_that_does_not_come_expires_and_escalates() {
        let mut d = Decider::new(&rules("  escalate notify \"oncall\"\n", approve));
        let got = run(&mut d, 0, 30, |_| alerts(vec![down("a", 0, 0)]));
        assert_eq!(
            got,
            [
                ev(0, AwaitingApproval, "a"),
                ev(15, ApprovalExpired, "a"),
                ev(15, Escalated, "a"),
            ]
        );
        // Someone else's approval (another id) does not count.
        let mut d = Decider::new(&rules("", approve));
        let other = approved("0000000000000000".to_string(), "x", 0);
        let got = run(&mut d, 0, 20, |_| StepView {
            approvals: Some(other),
            ..alerts(vec![down("a", 0, 0)])
        });
        assert_eq!(
            got,
            [ev(0, AwaitingApproval, "a"), ev(15, ApprovalExpired, "a")]
        );
    }

    #[test]
    fn events_carry_the_blocks_mode() {
        let files = rules("", |r| r.mode = Some((Mode::DryRun, Span::default())));
        let mut d = Decider::new(&files);
        let e = d.at(0, &alerts(vec![down("a", 0, 0)]));
        assert_eq!(e[0].mode, Mode::DryRun);
        let mut d = Decider::new(&rules("", |_| {}));
        assert_eq!(d.at(0, &alerts(vec![down("a", 0, 0)]))[0].mode, Mode::Auto);
    }

    #[test]
    fn seeded_decisions_count_and_are_not_made_again() {
        let files = rules(
            "  cooldown 10m\n  max 2 per 1h\n  verify within 5m\n  escalate notify \"oncall\"\n",
            |_| {},
        );
        // The whole run, in one process.
        let mut whole = Decider::new(&files);
        let all = events(&mut whole, 0, 30, |_| alerts(vec![down("a", 0, 0)]));
        // Stopped after 12m, restarted: seeded with what was decided, it
        // replays from the start and makes only the decisions after 12m,
        // the same as the whole run.
        let before: Vec<ActionEvent> = all.iter().filter(|e| e.time <= 12 * MIN).cloned().collect();
        let mut again = Decider::new(&files);
        again.seed(&before);
        let after = events(&mut again, 0, 30, |_| alerts(vec![down("a", 0, 0)]));
        let expected: Vec<ActionEvent> =
            all.iter().filter(|e| e.time > 12 * MIN).cloned().collect();
        assert_eq!(after, expected);
        assert!(!expected.is_empty());

        // Restarted without the history to replay (it starts at 12m): the
        // runs still count (the cooldown from 10m, then max 2 per 1h), and
        // the verification pending from the 10m run still fails at 15m.
        let mut cold = Decider::new(&files);
        cold.seed(&before);
        let got = run(&mut cold, 12, 30, |_| alerts(vec![down("a", 0, 0)]));
        assert_eq!(
            got,
            [
                ev(15, VerifyFailed, "a"),
                ev(15, Escalated, "a"),
                ev(20, MaxReached, "a"),
                ev(20, Escalated, "a"),
            ]
        );
    }

    #[test]
    fn a_pending_approval_survives_a_restart() {
        let files = rules("", approve);
        let mut d = Decider::new(&files);
        let asked = d.at(0, &alerts(vec![down("a", 0, 0)]));
        let approvals = approved(asked[0].id(), "bob", 5 * MIN);
        let mut cold = Decider::new(&files);
        cold.seed(&asked);
        let got = events(&mut cold, 3, 7, |_| StepView {
            approvals: Some(approvals),
            ..alerts(vec![down("a", 0, 0)])
        });
        assert_eq!(got.len(), 1, "asked once, before the restart: {got:?}");
        assert_eq!((got[0].kind, got[0].time), (Run, 5 * MIN));
        assert_eq!(got[0].approved_by.as_deref(), Some("bob"));
    }

    #[test]
    fn a_restart_that_replays_from_before_the_seeded_decisions_decides_the_same() {
        let files = rules(
            "  cooldown 10m\n  max 2 per 1h\n  verify within 5m\n  escalate notify \"oncall\"\n",
            approve,
        );
        // The alert fires from 3m on; approvals come 2m after each request.
        let view = |m: i64| {
            alerts(if m >= 3 {
                vec![down("a", 3 * MIN, 0)]
            } else {
                vec![]
            })
        };
        let mut approvals = Approvals::new();
        let mut whole = Decider::new(&files);
        let mut all = Vec::new();
        for m in 0..=40 {
            let a: &'static Approvals = Box::leak(Box::new(approvals.clone()));
            let got = whole.at(
                m * MIN,
                &StepView {
                    approvals: Some(a),
                    ..view(m)
                },
            );
            for e in &got {
                if e.kind == AwaitingApproval {
                    approvals.insert(
                        e.id(),
                        Approval {
                            by: "o".into(),
                            at_ms: e.time + 2 * MIN,
                        },
                    );
                }
            }
            all.extend(got);
        }
        let kinds: Vec<(i64, EventKind)> = all.iter().map(|e| (e.time / MIN, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (3, AwaitingApproval),
                (5, Run),
                (10, VerifyFailed),
                (10, Escalated),
                (15, AwaitingApproval),
                (17, Run),
                (22, VerifyFailed),
                (22, Escalated),
                (27, MaxReached),
                (27, Escalated),
            ]
        );
        let approvals: &'static Approvals = Box::leak(Box::new(approvals));
        // Restarted at 16m, seeded with what was decided (an approval
        // pending), replaying from 0: the same decisions after 16m, the
        // request not repeated, the runs not counted twice.
        for cut in [4, 12, 16, 20] {
            let before: Vec<ActionEvent> = all
                .iter()
                .filter(|e| e.time <= cut * MIN)
                .cloned()
                .collect();
            let mut again = Decider::new(&files);
            again.seed(&before);
            let after = events(&mut again, 0, 40, |m| StepView {
                approvals: Some(approvals),
                ..view(m)
            });
            let expected: Vec<ActionEvent> =
                all.iter().filter(|e| e.time > cut * MIN).cloned().collect();
            assert_eq!(after, expected, "restarted after {cut}m");
        }
    }

    fn cond(server: &str) -> StepView<'static> {
        StepView {
            conditions: [("M".to_string(), vec![(labels(server), 5.0)])].into(),
            ..StepView::default()
        }
    }

    #[test]
    fn maintenance_runs_in_the_windows_next_slot_and_a_guard_holds_it() {
        let mut d = Decider::new(&rules("", |_| {}));
        // 10m steps from 01:00: scheduled at 01:00, runs at 02:00; the
        // cooldown (1h) keeps it from running again in the slot, so with the
        // condition still holding it is scheduled into the next day's.
        let mut got = Vec::new();
        for k in 0..12 {
            let t = 60 * MIN + k * 10 * MIN;
            got.extend(
                d.at(t, &cond("a"))
                    .into_iter()
                    .map(|e| (e.time / MIN, e.kind)),
            );
        }
        assert_eq!(got, [(60, Scheduled), (120, Run), (140, Scheduled)]);

        let files = {
            let mut f = rules("", |_| {});
            if let Item::Maintenance(m) = &mut f[0].items[2] {
                m.guard = Some(crate::dsl::parse_query("vector(1)").unwrap());
            }
            f
        };
        let mut d = Decider::new(&files);
        let mut got = Vec::new();
        for k in 0..30 * 6 {
            let t = 60 * MIN + k * 10 * MIN;
            // The guard holds from 02:30 on the second day.
            let guard = t >= (24 + 2) * 60 * MIN + 30 * MIN;
            got.extend(
                d.at(
                    t,
                    &StepView {
                        guards: [("M".to_string(), guard)].into(),
                        ..cond("a")
                    },
                )
                .into_iter()
                .map(|e| (e.time / MIN, e.kind)),
            );
        }
        assert_eq!(
            got,
            [
                (60, Scheduled),
                (120, Guard),
                (26 * 60 + 30, Run),
                (26 * 60 + 50, Scheduled)
            ],
            "held through the first slot, moved to the next, run when the guard holds"
        );
    }

    #[test]
    fn event_names_and_serde_names_read_back() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), k);
        }
        assert_eq!(
            serde_json::to_string(&EventKind::Concurrency).unwrap(),
            "\"concurrency\""
        );
        assert_eq!(Concurrency.action_state(), Some(ActionState::Suppressed));
        assert_eq!(Scheduled.action_state(), None);
        let mut d = Decider::new(&rules("", |r| {
            r.mode = Some((Mode::DryRun, Span::default()))
        }));
        let e = d.at(0, &alerts(vec![down("a", 0, 0)])).remove(0);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"mode\":\"dry-run\""), "{json}");
        let back: ActionEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.id(), e.id());
        // A record written before `mode` existed reads as auto.
        let old = json
            .replace(",\"mode\":\"dry-run\"", "")
            .replace(",\"approved_by\":null", "");
        assert_eq!(
            serde_json::from_str::<ActionEvent>(&old).unwrap().mode,
            Mode::Auto
        );
    }
}

/// The decisions through a whole replay of parsed rules: guards evaluated
/// over the grid, instances of several servers, the events in time order.
#[cfg(test)]
mod replay_tests {
    use super::*;
    use crate::engine::replay::replay;
    use crate::engine::source::MemorySource;
    use crate::model::SeriesKey;
    use crate::store::SeriesData;

    const MIN: i64 = 60_000;

    fn series(metric: &str, server: &str, values: &[f64]) -> SeriesData {
        SeriesData {
            key: SeriesKey::new(metric, vec![("server".to_string(), server.to_string())]),
            timestamps: (0..values.len() as i64).map(|k| k * MIN).collect(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn a_replay_decides_with_guards_and_concurrency_from_the_rule_text() {
        let src = r#"
alert Down {
  when     up == 0
  severity critical
}

remediate Restart {
  on          Down
  do          exec "restart {{server}}"
  timeout     55s
  concurrency 1
  guard       sum(healthy) >= 2
  escalate    notify "oncall"
}
"#;
        let file = crate::dsl::parse_str(src, "t.rules").expect("parses");
        // a and b go down at 0; the guard (two healthy) holds from 2m on.
        let source = MemorySource::new(vec![
            series("up", "a", &[0.0; 8]),
            series("up", "b", &[0.0; 8]),
            series("healthy", "x", &[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            series("healthy", "y", &[1.0; 8]),
        ]);
        let grid = crate::engine::Grid::range(0, 7 * MIN, MIN);
        let r = replay(&[file], &source, grid, u64::MAX, &Approvals::new()).expect("replays");
        let got: Vec<(i64, &str, &str)> = r
            .actions
            .iter()
            .map(|e| (e.time / MIN, e.kind.name(), label(&e.labels, "server")))
            .collect();
        assert_eq!(
            got,
            [
                (0, "suppressed (guard)", "a"),
                (0, "suppressed (guard)", "b"),
                (2, "run", "a"),
                // a's slot (55s + 5s grace) ends at 3m.
                (2, "suppressed (concurrency)", "b"),
                (3, "run", "b"),
            ]
        );
        assert!(r.actions.iter().all(|e| e.mode == Mode::Auto));
    }
}
