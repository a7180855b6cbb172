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
use super::alerts::{Episode, FLAP_WINDOW_MS};
use super::eval::LOOKBACK_MS;
use super::plan::Plan;
use super::source::Source;
use super::state::{Evaluated, RecordHistory, RuleResult, RuleState, as_samples, evaluate};
use super::value::{Grid, Labels};
use crate::dsl::ast::{Alert, RuleFile};
use crate::dsl::template;
use crate::remediate::decide::{ActionEvent, Approvals};
use crate::store::SeriesData;
use serde::Serialize;

/// The longest warm-up [`LiveRules::start`] replays to find where an alert
/// that was already active began.
pub const MAX_WARMUP_MS: i64 = 7 * 24 * 60 * 60_000;

/// How long a resolved alert is still listed (and resent to Alertmanager).
pub const RESOLVED_KEPT_MS: i64 = 15 * 60_000;

/// What one step produced.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// The step's time (ms).
    pub t: i64,
    /// The `record` rules' samples at `t`, for the live store.
    pub records: Vec<SeriesData>,
    /// The decisions made at `t`, in order: the journal records them all;
    /// `Run` and `Escalated` ones are carried out. A remediation's
    /// `episode` names its alert episode for as long as these rules run
    /// (until the next [`LiveRules::start`]), not an index.
    pub decisions: Vec<ActionEvent>,
}

/// One alert instance as `watch` serves and sends it.
#[derive(Clone, Debug, Serialize)]
pub struct AlertView {
    pub episode: Episode,
    /// `summary`, `runbook` (templated), as Prometheus's annotations.
    pub annotations: Labels,
    /// Held back by a `suppress ... while ...`.
    pub suppressed: bool,
}

impl AlertView {
    /// `pending`, `firing` or `resolved`, at the last step.
    pub fn state(&self) -> &'static str {
        match (self.episode.ended_at, self.episode.fired_at) {
            (Some(_), _) => "resolved",
            (None, Some(_)) => "firing",
            (None, None) => "pending",
        }
    }
}

/// Whether a rule is an alert or a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Alert,
    Record,
}

/// One rule as `/api/v1/rules` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    /// The rule file's name.
    pub file: String,
    pub name: String,
    pub kind: RuleKind,
    /// The expression as written (formatted).
    pub query: String,
    /// `for` (alerts; 0 otherwise).
    pub for_ms: i64,
    pub keep_firing_ms: i64,
    /// The alert's own labels (templates as written) and `severity`.
    pub labels: Labels,
    /// `summary` and `runbook` as written.
    pub annotations: Labels,
    /// Why its last evaluation failed; `None` when it did not (health ok).
    pub last_error: Option<String>,
    /// The step last evaluated (ms); `None` before the first.
    pub last_evaluation: Option<i64>,
    /// How long its last evaluation took (seconds).
    pub evaluation_s: f64,
}

impl RuleView {
    pub fn health(&self) -> &'static str {
        if self.last_error.is_some() {
            "err"
        } else {
            "ok"
        }
    }
}

/// The last evaluation of each rule, by rule name.
#[derive(Clone, Debug, Default)]
struct Health {
    t: Option<i64>,
    /// Per rule name: the last error, and the time taken.
    rules: std::collections::HashMap<String, (Option<String>, f64)>,
}

impl Health {
    fn note(&mut self, t: i64, ev: &Evaluated, files: &[RuleFile]) {
        self.t = Some(t);
        self.rules.clear();
        let mut put = |name: &str, r: &RuleResult| {
            let e = self.rules.entry(name.to_string()).or_insert((None, 0.0));
            if let Err(msg) = &r.series {
                e.0.get_or_insert_with(|| msg.clone());
            }
            e.1 += r.took.as_secs_f64();
        };
        for (name, r) in &ev.records {
            put(name, r);
        }
        let alerts = files.iter().flat_map(|f| f.alerts());
        for ((a, c), r) in alerts.zip(&ev.conditions).zip(&ev.resolves) {
            put(&a.name.name, c);
            if let Some(r) = r {
                put(&a.name.name, r);
            }
        }
    }
}

/// The rules' live state.
pub struct LiveRules {
    files: Vec<RuleFile>,
    step_ms: i64,
    next_step: i64,
    max_samples: u64,
    warmup_ms: i64,
    state: RuleState,
    history: RecordHistory,
    health: Health,
    plan: Plan,
}

impl LiveRules {
    /// Replays `files` over `[first_step - warmup_ms(files), first_step)`
    /// from `source` and readies the state for `first_step`. `past` are the
    /// decisions the journal holds (runs, `unknown` ones included, count
    /// against limits; a decision already there is not made again). The
    /// decisions of the warm-up are history: they change the state (a
    /// cooldown that started then still runs) and are not returned. An
    /// alert active since before the warm-up comes back with the warm-up's
    /// start as its own unless `source` reaches further back (see
    /// [`LiveRules::start_reaching_back`]).
    pub fn start(
        files: Vec<RuleFile>,
        source: &dyn Source,
        first_step: i64,
        step_ms: i64,
        past: &[ActionEvent],
        approvals: &Approvals,
        max_samples: u64,
    ) -> Result<LiveRules, EngineError> {
        Self::start_reaching_back(
            files,
            &|_, _| Ok(Box::new(source)),
            first_step,
            step_ms,
            past,
            approvals,
            max_samples,
        )
    }

    /// [`LiveRules::start`], with a source for each warm-up it replays:
    /// `source_for(from, to)` must serve the steps `from..=to` (plus the
    /// rules' lookback, [`LiveRules::plan`]). When an alert is active from
    /// the first step of the warm-up it may have started before: the
    /// warm-up is replayed from four times as far back, and so on up to
    /// [`MAX_WARMUP_MS`], so that the alert comes back with its own start
    /// and the decisions made for it are not taken for new ones.
    pub fn start_reaching_back<'s>(
        files: Vec<RuleFile>,
        source_for: &dyn Fn(i64, i64) -> Result<Box<dyn Source + 's>, EngineError>,
        first_step: i64,
        step_ms: i64,
        past: &[ActionEvent],
        approvals: &Approvals,
        max_samples: u64,
    ) -> Result<LiveRules, EngineError> {
        let step_ms = step_ms.max(1);
        let warmup = warmup_ms(&files);
        let mut steps = (warmup + step_ms - 1) / step_ms;
        // An alert active since the first step of the warm-up may have
        // started before it: replay further back (up to a week) until no
        // episode is cut off, so that it comes back with its own start and
        // its decisions are not taken for new ones.
        let (state, mut history, health) = loop {
            let mut state = RuleState::new(&files);
            state.seed(past);
            let mut history = RecordHistory::default();
            let mut health = Health::default();
            let from = first_step - steps * step_ms;
            if steps > 0 {
                let grid = Grid::checked_range(from, first_step - step_ms, step_ms)?;
                let source = source_for(from, grid.end())?;
                let ev = evaluate(
                    &files,
                    source.as_ref(),
                    grid,
                    max_samples,
                    Some(&mut history),
                );
                state.advance(&ev, approvals);
                health.note(grid.end(), &ev, &files);
            }
            let cut_off = state
                .alerts()
                .iter()
                .any(|a| a.current().any(|(_, e)| e.active_at == from));
            if !cut_off || steps == 0 || steps * step_ms >= MAX_WARMUP_MS {
                break (state, history, health);
            }
            steps = (steps * 4).min((MAX_WARMUP_MS + step_ms - 1) / step_ms);
        };
        history.forget_before(first_step - warmup);
        Ok(LiveRules {
            step_ms,
            next_step: first_step,
            max_samples,
            warmup_ms: warmup,
            state,
            history,
            health,
            plan: Plan::new(&super::replay::rule_expressions(&files)),
            files,
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

    /// What the rules read (metrics, labels, and how far back before a
    /// step): a step's source needs `[t - plan().lookback_ms(), t]`, and
    /// [`LiveRules::start`]'s `[first_step - warmup_ms - lookback, first_step)`.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Evaluates the next step from `source` and advances. A rule whose
    /// evaluation fails gives nothing at this step (its error is in
    /// [`LiveRules::rules`]); the others go on.
    pub fn step(
        &mut self,
        source: &dyn Source,
        approvals: &Approvals,
    ) -> Result<StepOutput, EngineError> {
        let t = self.next_step;
        // One step of the same grid a backtest walks (the step matters to
        // nothing an instant reads, but keep it the same).
        let grid = Grid {
            start: t,
            step: self.step_ms,
            n: 1,
        };
        let ev = evaluate(
            &self.files,
            source,
            grid,
            self.max_samples,
            Some(&mut self.history),
        );
        let records = ev
            .records
            .iter()
            .flat_map(|(name, r)| as_samples(name, r.series.as_deref().unwrap_or(&[]), grid))
            .filter(|s| !s.timestamps.is_empty())
            .collect();
        let decisions = self.state.advance(&ev, approvals);
        self.health.note(t, &ev, &self.files);
        self.history.forget_before(t - self.warmup_ms);
        for a in self.state.alerts_mut() {
            a.forget_ended_before(t - RESOLVED_KEPT_MS);
            a.forget_idle(t);
        }
        self.next_step = t + self.step_ms;
        Ok(StepOutput {
            t,
            records,
            decisions,
        })
    }

    /// The active (pending or firing) alert instances, and those resolved
    /// within the last 15 minutes (Alertmanager gets resolved alerts resent
    /// for that long, as Prometheus does), in order of start, alert, labels.
    pub fn alerts(&self) -> Vec<AlertView> {
        let Some(t) = self.state.last_step() else {
            return Vec::new();
        };
        let mut out: Vec<AlertView> = self
            .state
            .alerts()
            .iter()
            .flat_map(|run| {
                let resolved = run.ended().filter(|e| {
                    e.fired_at.is_some() && e.ended_at.is_some_and(|end| end > t - RESOLVED_KEPT_MS)
                });
                run.current()
                    .map(|(_, e)| e)
                    .chain(resolved)
                    .map(|e| view(&run.alert, e, t))
            })
            .collect();
        out.sort_by(|a, b| {
            (a.episode.active_at, &a.episode.alert, &a.episode.labels).cmp(&(
                b.episode.active_at,
                &b.episode.alert,
                &b.episode.labels,
            ))
        });
        out
    }

    /// The episodes held: every active one, and those that ended within
    /// the last 15 minutes (before the first step: all of the warm-up's).
    pub fn episodes(&self) -> Vec<Episode> {
        self.state.episodes()
    }

    /// Every rule with its last evaluation, in file order.
    pub fn rules(&self) -> Vec<RuleView> {
        let mut out = Vec::new();
        let health = |name: &str| self.health.rules.get(name).cloned().unwrap_or((None, 0.0));
        for f in &self.files {
            for item in &f.items {
                let view = match item {
                    crate::dsl::ast::Item::Alert(a) => {
                        let (last_error, took) = health(&a.name.name);
                        let mut labels: Labels = a
                            .labels
                            .iter()
                            .map(|p| (p.name.name.clone(), p.value.raw.clone()))
                            .collect();
                        labels.push(("severity".into(), a.severity().name().into()));
                        labels.sort();
                        RuleView {
                            file: f.name.clone(),
                            name: a.name.name.clone(),
                            kind: RuleKind::Alert,
                            query: crate::dsl::format::render(&a.when),
                            for_ms: a.for_.as_ref().map_or(0, |d| d.ms),
                            keep_firing_ms: a.keep_firing.as_ref().map_or(0, |d| d.ms),
                            labels,
                            annotations: [("runbook", &a.runbook), ("summary", &a.summary)]
                                .into_iter()
                                .filter_map(|(k, v)| Some((k.to_string(), v.as_ref()?.raw.clone())))
                                .collect(),
                            last_error,
                            last_evaluation: self.health.t,
                            evaluation_s: took,
                        }
                    }
                    crate::dsl::ast::Item::Record(r) => {
                        let (last_error, took) = health(&r.name.name);
                        RuleView {
                            file: f.name.clone(),
                            name: r.name.name.clone(),
                            kind: RuleKind::Record,
                            query: crate::dsl::format::render(&r.expr),
                            for_ms: 0,
                            keep_firing_ms: 0,
                            labels: Labels::new(),
                            annotations: Labels::new(),
                            last_error,
                            last_evaluation: self.health.t,
                            evaluation_s: took,
                        }
                    }
                    _ => continue,
                };
                out.push(view);
            }
        }
        out
    }
}

/// An episode as served: annotations templated with its labels and value.
fn view(alert: &Alert, e: &Episode, t: i64) -> AlertView {
    let lookup = super::alerts::lookup_for(alert, &e.labels, e.last_value);
    let mut annotations = Labels::new();
    if let Some(r) = &alert.runbook {
        annotations.push(("runbook".into(), template::render(r, &lookup)));
    }
    if let Some(s) = &alert.summary {
        annotations.push(("summary".into(), template::render(s, &lookup)));
    }
    AlertView {
        episode: e.clone(),
        annotations,
        suppressed: e.ended_at.is_none() && e.suppressed_at(t),
    }
}

/// How much history [`LiveRules::start`] replays for `files`: the longest
/// `for` plus `keep_firing`, plus the longest range and offset any rule
/// reads, plus the lookback (5m), plus the flap window (1h).
pub fn warmup_ms(files: &[RuleFile]) -> i64 {
    let hold = files
        .iter()
        .flat_map(|f| f.alerts())
        .map(|a| a.for_.as_ref().map_or(0, |d| d.ms) + a.keep_firing.as_ref().map_or(0, |d| d.ms))
        .max()
        .unwrap_or(0);
    let exprs = super::replay::rule_expressions(files);
    let reads = super::plan::Plan::new(&exprs).lookback_ms();
    hold + reads + LOOKBACK_MS + FLAP_WINDOW_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::source::MemorySource;
    use crate::model::SeriesKey;

    const MIN: i64 = 60_000;

    fn series(metric: &str, server: &str, values: impl Fn(i64) -> f64) -> SeriesData {
        SeriesData {
            key: SeriesKey::new(metric, vec![("server".into(), server.into())]),
            timestamps: (0..200).map(|m| m * MIN).collect(),
            values: (0..200).map(values).collect(),
        }
    }

    /// [`LiveRules::start`] on a one-minute grid from `first_step`, with no
    /// past decisions or approvals.
    fn start(
        files: Vec<RuleFile>,
        source: &dyn Source,
        first_step: i64,
    ) -> Result<LiveRules, EngineError> {
        LiveRules::start(
            files,
            source,
            first_step,
            MIN,
            &[],
            &Approvals::new(),
            crate::engine::budget::DEFAULT_MAX_SAMPLES,
        )
    }

    /// The view of `alert` among `views`; panics (the test fails) if absent.
    fn shown<'v>(views: &'v [AlertView], alert: &str) -> &'v AlertView {
        views
            .iter()
            .find(|v| v.episode.alert == alert)
            .unwrap_or_else(|| panic!("{alert} not shown in {views:?}"))
    }

    const RULES: &str = r#"
record server:cpu = max(cpu) by (server)

alert Hot {
  when     server:cpu > 0.9
  for      2m
  severity warning
  labels   { team = "{{server}}-team" }
  summary  "{{server}} at {{value}}"
  runbook  "https://runbooks.example/hot?server={{server}}"
}

alert Down {
  when     up == 0
  severity critical
}

alert Broken {
  when     1
}

suppress Hot while Down
"#;

    #[test]
    fn alerts_and_rules_as_watch_serves_them() {
        let files = vec![crate::dsl::parse_str(RULES, "hot.rules").expect("parses")];
        // Hot from 100m to 129m; server a is down from 110m to 114m.
        let source = MemorySource::new(vec![
            series(
                "cpu",
                "a",
                |m| if (100..130).contains(&m) { 0.95 } else { 0.2 },
            ),
            series(
                "up",
                "a",
                |m| if (110..115).contains(&m) { 0.0 } else { 1.0 },
            ),
        ]);
        let mut live = start(files, &source, 101 * MIN).expect("start");
        assert!(warmup_ms(live.files()) >= FLAP_WINDOW_MS + 2 * MIN + LOOKBACK_MS);
        // The warm-up saw the condition at 100m: pending, not yet firing.
        let views = live.alerts();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].state(), "pending");
        assert_eq!(views[0].episode.active_at, 100 * MIN);

        let step_to = |live: &mut LiveRules, t: i64| {
            while live.next_step() <= t {
                let out = live.step(&source, &Approvals::new()).expect("step");
                assert_eq!(out.records.len(), 1, "one record series");
                assert_eq!(out.records[0].timestamps, [out.t]);
            }
        };
        step_to(&mut live, 105 * MIN);
        let hot = live.alerts();
        assert_eq!(hot.len(), 1);
        assert_eq!(hot[0].state(), "firing");
        assert_eq!(hot[0].episode.fired_at, Some(102 * MIN));
        assert!(!hot[0].suppressed);
        assert_eq!(
            hot[0].annotations,
            vec![
                (
                    "runbook".to_string(),
                    "https://runbooks.example/hot?server=a".to_string()
                ),
                ("summary".to_string(), "a at 0.95".to_string()),
            ]
        );
        assert_eq!(hot[0].episode.label("team"), Some("a-team"));

        // Down from 110m: Hot is held back while it fires.
        step_to(&mut live, 112 * MIN);
        let views = live.alerts();
        let hot = shown(&views, "Hot");
        assert!(hot.suppressed && hot.state() == "firing");
        step_to(&mut live, 116 * MIN);
        let views = live.alerts();
        let hot = shown(&views, "Hot");
        assert!(!hot.suppressed, "Down resolved at 115m");
        let down = shown(&views, "Down");
        assert_eq!(down.state(), "resolved");
        assert_eq!(down.episode.ended_at, Some(115 * MIN));

        // Resolved alerts stay listed for 15 minutes.
        step_to(&mut live, 129 * MIN + 15 * MIN);
        let views = live.alerts();
        assert!(views.iter().all(|v| v.episode.alert != "Down"), "{views:?}");
        let hot = shown(&views, "Hot");
        assert_eq!(hot.state(), "resolved");
        assert_eq!(hot.episode.ended_at, Some(130 * MIN));
        step_to(&mut live, 130 * MIN + 15 * MIN);
        assert!(live.alerts().is_empty());

        // A restart long after an alert began firing (more than a warm-up
        // ago) brings it back with its own start.
        let long = MemorySource::new(vec![
            series("cpu", "a", |m| if m >= 10 { 0.95 } else { 0.2 }),
            series("up", "a", |_| 1.0),
        ]);
        let files = live.files().to_vec();
        assert!(warmup_ms(&files) < 180 * MIN);
        let again = start(files, &long, 190 * MIN).expect("restart");
        let views = again.alerts();
        assert_eq!(views.len(), 1);
        assert_eq!(
            (
                views[0].state(),
                views[0].episode.active_at,
                views[0].episode.fired_at
            ),
            ("firing", 10 * MIN, Some(12 * MIN))
        );

        // The rules: kinds, queries, health; the broken one says why.
        step_to(&mut live, 150 * MIN);
        let rules = live.rules();
        let names: Vec<(&str, RuleKind, &str)> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.kind, r.health()))
            .collect();
        assert_eq!(
            names,
            [
                ("server:cpu", RuleKind::Record, "ok"),
                ("Hot", RuleKind::Alert, "ok"),
                ("Down", RuleKind::Alert, "ok"),
                ("Broken", RuleKind::Alert, "err"),
            ]
        );
        let hot = &rules[1];
        assert_eq!(hot.query, "server:cpu > 0.9");
        assert_eq!(hot.for_ms, 2 * MIN);
        assert_eq!(hot.file, "hot.rules");
        assert!(
            hot.labels
                .contains(&("team".into(), "{{server}}-team".into()))
        );
        assert!(hot.labels.contains(&("severity".into(), "warning".into())));
        assert_eq!(hot.last_evaluation, Some(150 * MIN));
        assert!(
            rules[3]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("plain number")),
            "{:?}",
            rules[3].last_error
        );
    }
}
