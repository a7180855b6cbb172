//! Rules in `watch`: the loop that evaluates the rule files live, one
//! aligned step at a time, and carries out what the remediation decisions
//! say.
//!
//! Steps are multiples of the first file's `evaluate every` since the epoch,
//! as `backtest` aligns them, and a step `t` is evaluated once the clock
//! passes `t + offset` (late samples are in by then). Each step goes through
//! [`LiveRules::step`] over a [`StoreSource`] of the live store's snapshot:
//! the records' samples are appended to the live store, every decision is
//! journaled, and `run`/`escalated` ones are carried out in tasks of their
//! own, an intent synced to the journal before each starts and its result
//! after it ends. A journal that cannot be written stops every action (fail
//! closed) and raises the synthetic alert `MCPOpsAuditUnwritable`.
//!
//! Rule files are re-read on SIGHUP and checked for changes every step; a
//! file with errors is refused and the rules running keep running.

use super::config::{RulesMode, WatchConfig};
use super::health::Health;
use super::{Shared, WatchError};
use crate::dsl::Diagnostic;
use crate::dsl::ast::{Action, Item, Mode, RuleFile};
use crate::engine::EngineError;
use crate::engine::Labels;
use crate::engine::live::{AlertView, LiveRules, RuleView};
use crate::engine::plan::Plan;
use crate::engine::source::{Source, StoreSource};
use crate::remediate::action::{self, Prepared};
use crate::remediate::alertmanager::{self, PostableAlert, WebhookAlert, WebhookMessage};
use crate::remediate::decide::{ActionEvent, Approvals, EventKind, render_action};
use crate::remediate::journal::{ActionResult, Intent, Journal, Outcome};
use crate::remediate::{exec, webhook};
use crate::store::SeriesData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// At most this many steps are evaluated in one go after a pause (a
/// suspended machine, a stalled store); older ones are skipped, and the
/// rules restart from history as on a restart.
pub const MAX_CATCH_UP: i64 = 10;

/// The most bytes of an action's stdout and of its stderr kept in the audit.
pub const OUTPUT_LIMIT: usize = 16 * 1024;

/// The rule files as read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub files: Vec<RuleFile>,
    /// Each file's path and text, to see when one changes.
    pub sources: Vec<(PathBuf, String)>,
    /// The warnings of the check (errors refuse the files).
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    /// The step of the rules: the first file's `evaluate every`.
    pub fn step_ms(&self) -> i64 {
        self.files
            .first()
            .map(RuleFile::step_ms)
            .unwrap_or(crate::dsl::DEFAULT_STEP_MS)
            .max(1)
    }
}

/// Reads, parses and checks `paths` as one rule set, as `mcpops check`
/// does; errors refuse the set ([`WatchError::Rules`]).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, WatchError> {
    let mut sources = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|source| WatchError::Io {
            what: p.display().to_string(),
            source,
        })?;
        sources.push((p.clone(), text));
    }
    let set = crate::dsl::load_rules(paths).map_err(|source| WatchError::Io {
        what: "reading the rule files".into(),
        source,
    })?;
    if set.has_errors() {
        return Err(WatchError::Rules(set.diagnostics));
    }
    Ok(Loaded {
        files: set.files,
        sources,
        warnings: set.diagnostics,
    })
}

/// One rule file: Prometheus's rule group.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub rules: Vec<RuleView>,
}

/// The rule groups (one per file, in the order loaded) with each rule's
/// last evaluation, from the running rules.
fn groups(loaded: &Loaded, live: Option<&LiveRules>) -> Vec<GroupInfo> {
    let views = live.map(LiveRules::rules).unwrap_or_default();
    loaded
        .sources
        .iter()
        .map(|(path, _)| {
            let file = path.display().to_string();
            GroupInfo {
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                interval_ms: loaded.step_ms(),
                rules: views.iter().filter(|v| v.file == file).cloned().collect(),
                file,
            }
        })
        .collect()
}

/// An alert instance's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Pending,
    Firing,
    /// Resolved within the last 15 minutes (still sent to Alertmanager).
    Resolved,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert instance as the API serves it and Alertmanager gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveAlert {
    pub name: String,
    /// `alertname` first, then the instance's labels.
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub value: f64,
    /// Held back by a `suppress ... while ...`: served, not sent.
    pub suppressed: bool,
}

impl LiveAlert {
    fn from_view(v: &AlertView) -> LiveAlert {
        let e = &v.episode;
        let state = match (e.fired_at, e.ended_at) {
            (_, Some(_)) => AlertState::Resolved,
            (Some(_), None) => AlertState::Firing,
            (None, None) => AlertState::Pending,
        };
        LiveAlert {
            name: e.alert.clone(),
            labels: alertmanager::with_alertname(&e.alert, &e.labels),
            annotations: v.annotations.clone(),
            state,
            active_at: e.active_at,
            fired_at: e.fired_at,
            resolved_at: e.ended_at,
            value: e.last_value,
            suppressed: v.suppressed,
        }
    }

    /// The instance's labels without `alertname`, as decisions carry them.
    fn instance_labels(&self) -> impl Iterator<Item = &(String, String)> {
        self.labels.iter().filter(|(k, _)| k != "alertname")
    }
}

/// The name of the alert raised while the journal cannot be written.
pub const AUDIT_ALERT: &str = "MCPOpsAuditUnwritable";

/// What the rules show now: read by the API and the Alertmanager sender.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub groups: Vec<GroupInfo>,
    /// Pending, firing and recently resolved instances, and the audit alert.
    pub alerts: Vec<LiveAlert>,
    /// The wall-clock time of the last evaluation (ms).
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took.
    pub evaluation_time: Duration,
    /// The last evaluation's error, if it failed.
    pub last_error: Option<String>,
    pub step_ms: i64,
}

/// The rules' state that the API and the sender read, and the signal that
/// an alert started firing or resolved.
#[derive(Debug, Default)]
pub struct RulesState {
    published: RwLock<Arc<Published>>,
    /// Woken when an alert starts firing or resolves, so that Alertmanager
    /// hears at once rather than at the next resend.
    pub changed: tokio::sync::Notify,
}

impl RulesState {
    /// What was last published: shared, not copied (every API request,
    /// every send and every webhook reads it).
    pub fn published(&self) -> Arc<Published> {
        self.published.read().map(|p| p.clone()).unwrap_or_default()
    }

    fn publish(&self, p: Published) {
        if let Ok(mut slot) = self.published.write() {
            *slot = Arc::new(p);
        }
    }
}

/// How the rule loop runs.
#[derive(Clone, Debug)]
pub struct RulesOptions {
    pub offset: Duration,
    pub mode: RulesMode,
    pub max_samples: u64,
    pub store_root: PathBuf,
    /// Alertmanagers' base URLs: `notify` actions go to them.
    pub alertmanagers: Vec<String>,
    /// Where `notify` goes when there is no Alertmanager.
    pub notify_webhook: Option<String>,
    /// How long alerts sent to Alertmanager last without a resend.
    pub resend: Duration,
    /// Where the API is, for alerts' `generatorURL`.
    pub external_url: String,
}

/// The loop's logger (stderr), as `run` talks.
#[derive(Clone, Copy)]
pub struct Log {
    pub quiet: bool,
    pub terminal: bool,
}

impl Log {
    pub fn info(&self, line: &str) {
        if !self.quiet && self.terminal {
            eprintln!("mcpops: {line}");
        }
    }

    pub fn error(&self, line: &str) {
        eprintln!("mcpops: {line}");
    }
}

/// What the loop, the action tasks and the handlers share.
struct Ctx {
    shared: Shared,
    config: WatchConfig,
    options: RulesOptions,
    state: Arc<RulesState>,
    journal: Journal,
    /// Turns false at the first journal write that fails; never back.
    audit_ok: AtomicBool,
    /// When the audit failed, and why: the synthetic alert.
    audit_failure: Mutex<Option<(i64, String)>>,
    client: reqwest::Client,
    log: Log,
}

/// The evaluation's mutable half, on the blocking pool.
struct Core {
    loaded: Loaded,
    live: Option<LiveRules>,
    /// The texts of the last refused set, not to log the same refusal every step.
    refused: Option<Vec<(PathBuf, String)>>,
    /// Whether the published alerts were firing, by labels, to notice changes.
    firing: Vec<Labels>,
}

/// Opens the journal and starts the rules at the next aligned step. Errors
/// here refuse to start watch.
pub struct RuleLoop {
    ctx: Arc<Ctx>,
    core: Arc<Mutex<Core>>,
}

impl RuleLoop {
    pub fn start(
        shared: Shared,
        config: WatchConfig,
        loaded: Loaded,
        options: RulesOptions,
        state: Arc<RulesState>,
        log: Log,
    ) -> Result<RuleLoop, WatchError> {
        let journal = Journal::open(&options.store_root)
            .map_err(|e| WatchError::Config(format!("the action journal: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| WatchError::Config(format!("the HTTP client: {e}")))?;
        describe_health(&shared.health);
        shared.health.set("mcpops_watch_audit_writable", &[], 1.0);
        shared
            .health
            .set("mcpops_watch_rules_reload_success", &[], 1.0);
        let ctx = Arc::new(Ctx {
            shared,
            config,
            options,
            state,
            journal,
            audit_ok: AtomicBool::new(true),
            audit_failure: Mutex::new(None),
            client,
            log,
        });
        let mut core = Core {
            loaded,
            live: None,
            refused: None,
            firing: Vec::new(),
        };
        let first = next_aligned(now_eval_ms(&ctx), core.loaded.step_ms());
        core.live = Some(start_live(&ctx, &core.loaded, first)?);
        publish(&ctx, &mut core, None, Duration::ZERO);
        Ok(RuleLoop {
            ctx,
            core: Arc::new(Mutex::new(core)),
        })
    }

    /// Evaluates steps as they fall due until watch stops.
    pub async fn run(self) {
        let mut stop = self.ctx.shared.shutdown.clone();
        let mut hangup = Hangup::new();
        // The actions running: on stop they get watch's grace period to
        // finish (and journal their results); past it they are dropped with
        // this loop, and their intents read back as `unknown`.
        let mut actions = tokio::task::JoinSet::new();
        loop {
            // Reap the actions that finished.
            while actions.try_join_next().is_some() {}
            let wait = {
                let core = lock(&self.core);
                let step = core.loaded.step_ms();
                let due = core.live.as_ref().map_or(0, LiveRules::next_step)
                    + self.ctx.options.offset.as_millis() as i64;
                // Wake at the next due step, and at least every step to
                // look at the rule files.
                (due - crate::time::now_ms()).clamp(0, step) as u64
            };
            let mut forced = false;
            let mut stopping = false;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = hangup.recv() => forced = true,
                _ = stop.wait_for(|s| *s) => stopping = true,
            }
            if stopping {
                while actions.join_next().await.is_some() {}
                return;
            }
            let ctx = self.ctx.clone();
            let core = self.core.clone();
            let ticked = tokio::task::spawn_blocking(move || {
                let mut core = lock(&core);
                tick(&ctx, &mut core, forced)
            })
            .await;
            match ticked {
                Ok(out) => {
                    for run in out.runs {
                        actions.spawn(carry_out(self.ctx.clone(), run));
                    }
                    if out.changed {
                        self.ctx.state.changed.notify_one();
                    }
                }
                Err(e) => self
                    .ctx
                    .log
                    .error(&format!("evaluating the rules failed: {e}")),
            }
        }
    }
}

/// The core, even after a step panicked while holding it (the panic is
/// logged; the next step goes on from the state it left).
fn lock(core: &Mutex<Core>) -> std::sync::MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SIGHUP, where there is one.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Hangup {
                signal: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}

/// The time steps are evaluated at: now less the offset.
fn now_eval_ms(ctx: &Ctx) -> i64 {
    crate::time::now_ms() - ctx.options.offset.as_millis() as i64
}

/// The first multiple of `step` at or after `t`.
fn next_aligned(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step + if t.rem_euclid(step) == 0 { 0 } else { step }
}

/// The rules started at `first`, warmed up over the history they need.
fn start_live(ctx: &Ctx, loaded: &Loaded, first: i64) -> Result<LiveRules, WatchError> {
    let plan = Plan::new(&crate::engine::replay::rule_expressions(&loaded.files));
    // One snapshot for every warm-up the start replays (it reaches further
    // back while an alert is active from the warm-up's first step).
    let snapshot = ctx.shared.store.snapshot()?;
    let source_for = |from: i64, to: i64| -> Result<Box<dyn Source>, EngineError> {
        Ok(Box::new(
            StoreSource::new(
                snapshot.clone(),
                from.saturating_sub(plan.lookback_ms()),
                to,
            )
            .with_plan(&plan),
        ))
    };
    let approvals = ctx.journal.approvals().unwrap_or_default();
    LiveRules::start_reaching_back(
        loaded.files.clone(),
        &source_for,
        first,
        loaded.step_ms(),
        &ctx.journal.past(),
        &approvals,
        ctx.options.max_samples,
    )
    .map_err(|e| WatchError::Config(format!("starting the rules: {e}")))
}

/// What one tick leaves to the async side.
#[derive(Default)]
struct TickOut {
    runs: Vec<Run>,
    /// An alert started firing or resolved.
    changed: bool,
}

/// An action to carry out: its intent is in the journal.
struct Run {
    intent: Intent,
    prepared: Prepared,
    timeout: Duration,
    /// The block's escalation, run once per episode when this one fails.
    escalate: Option<Action>,
}

/// Reloads changed rule files, then evaluates every step that is due.
fn tick(ctx: &Ctx, core: &mut Core, forced: bool) -> TickOut {
    let mut out = TickOut::default();
    reload(ctx, core, forced);
    let step = core.loaded.step_ms();
    let latest = now_eval_ms(ctx).div_euclid(step) * step;
    let Some(next) = core.live.as_ref().map(LiveRules::next_step) else {
        return out;
    };
    if latest < next {
        return out;
    }
    let due = (latest - next) / step + 1;
    if due > MAX_CATCH_UP {
        let first = latest - (MAX_CATCH_UP - 1) * step;
        ctx.log.error(&format!(
            "rules: {} step(s) from {} to {} skipped (evaluation fell behind); restarting from history at {}",
            due - MAX_CATCH_UP,
            crate::time::format_ms(next),
            crate::time::format_ms(first - step),
            crate::time::format_ms(first),
        ));
        ctx.shared.health.add(
            "mcpops_watch_rule_steps_skipped_total",
            &[],
            (due - MAX_CATCH_UP) as f64,
        );
        match start_live(ctx, &core.loaded, first) {
            Ok(live) => core.live = Some(live),
            Err(e) => {
                ctx.log.error(&format!("rules: {e}"));
                return out;
            }
        }
    }
    let approvals = match ctx.journal.approvals() {
        Ok(a) => a,
        Err(e) => {
            ctx.log
                .error(&format!("rules: reading approvals from the journal: {e}"));
            Approvals::new()
        }
    };
    // The last step's evaluation time, as Prometheus shows a group's.
    let mut took = Duration::ZERO;
    let mut error = None;
    while let Some(live) = core.live.as_mut()
        && live.next_step() <= latest
    {
        let started = Instant::now();
        let t = live.next_step();
        let stepped = ctx
            .shared
            .store
            .snapshot()
            .map_err(|e| e.to_string())
            .and_then(|snapshot| {
                let source = StoreSource::new(snapshot, t - live.plan().lookback_ms(), t)
                    .with_plan(live.plan());
                live.step(&source, &approvals).map_err(|e| e.to_string())
            });
        ctx.shared
            .health
            .add("mcpops_watch_rule_evaluations_total", &[], 1.0);
        let output = match stepped {
            Ok(o) => o,
            Err(e) => {
                ctx.shared
                    .health
                    .add("mcpops_watch_rule_evaluation_failures_total", &[], 1.0);
                ctx.log.error(&format!(
                    "rules: evaluating the step at {} failed: {e}",
                    crate::time::format_ms(t)
                ));
                error = Some(e);
                break;
            }
        };
        took = started.elapsed();
        append_records(ctx, &output.records);
        for event in output.decisions {
            if let Some(run) = decide(ctx, &core.loaded, event) {
                out.runs.push(run);
            }
        }
    }
    out.changed = publish(ctx, core, error, took);
    out
}

/// Appends a step's record samples to the live store, so that the next
/// step's range functions over records see them.
fn append_records(ctx: &Ctx, records: &[SeriesData]) {
    use crate::model::{MemorySink, SampleSink};
    if records.is_empty() {
        return;
    }
    let mut batch = MemorySink::default();
    for s in records {
        let id = batch.intern(s.key.clone());
        for (&t, &v) in s.timestamps.iter().zip(&s.values) {
            // A MemorySink never refuses a sample.
            let _ = batch.push(id, t, v);
        }
    }
    if let Err(e) = ctx.shared.store.append(&batch) {
        ctx.log
            .error(&format!("rules: storing the records' samples failed: {e}"));
    }
}

/// The mode an action runs in: watch's switch over the block's own (which
/// the decision carries).
fn mode_of(ctx: &Ctx, event: &ActionEvent) -> Mode {
    match ctx.options.mode {
        RulesMode::DryRun => Mode::DryRun,
        RulesMode::Auto => event.mode,
    }
}

/// The action a decision carries out, its timeout and the escalation to
/// run if it fails.
fn block_action(
    loaded: &Loaded,
    event: &ActionEvent,
) -> Option<(Action, Option<Duration>, Option<Action>)> {
    let dur =
        |d: &Option<crate::dsl::ast::Dur>| d.as_ref().map(|d| Duration::from_millis(d.ms as u64));
    loaded
        .files
        .iter()
        .flat_map(|f| &f.items)
        .find_map(|i| match i {
            Item::Remediate(r) if r.name.name == event.policy => match event.kind {
                EventKind::Escalated => r.escalate.clone().map(|a| (a, dur(&r.timeout), None)),
                _ => Some((r.action.clone(), dur(&r.timeout), r.escalate.clone())),
            },
            Item::Maintenance(m) if m.name.name == event.policy => {
                Some((m.action.clone(), dur(&m.timeout), None))
            }
            _ => None,
        })
}

/// The values an action's template sees for a decision.
fn prepare(action: &Action, event: &ActionEvent) -> Result<Prepared, String> {
    let lookup = action::lookup(&event.labels, &event.trigger, event.value);
    action::prepare(action, &lookup).map_err(|e| e.to_string())
}

/// Journals one decision; for `run` and `escalated`, the intent (synced)
/// and what to carry out. Nothing runs once the audit failed.
fn decide(ctx: &Ctx, loaded: &Loaded, event: ActionEvent) -> Option<Run> {
    if !matches!(event.kind, EventKind::Run | EventKind::Escalated) {
        if let Err(e) = ctx.journal.record(&event) {
            audit_failed(ctx, &e.to_string());
        }
        return None;
    }
    let intent = journal_intent(ctx, event)?;
    let found = block_action(loaded, &intent.event);
    let (action, timeout, escalate) = match found {
        Some(f) => f,
        None => {
            finish(
                ctx,
                &intent,
                &ActionResult::without_run(Outcome::Refused, "the block has no such action"),
            );
            return None;
        }
    };
    if mode_of(ctx, &intent.event) == Mode::DryRun {
        finish(
            ctx,
            &intent,
            &ActionResult::without_run(Outcome::DryRun, "dry run"),
        );
        return None;
    }
    let prepared = match prepare(&action, &intent.event) {
        Ok(p) => p,
        Err(e) => {
            finish(
                ctx,
                &intent,
                &ActionResult::without_run(Outcome::Refused, e),
            );
            return None;
        }
    };
    let runs_escalation = intent.event.kind == EventKind::Run;
    Some(Run {
        intent,
        prepared,
        timeout: timeout.unwrap_or(exec::DEFAULT_TIMEOUT),
        escalate: if runs_escalation { escalate } else { None },
    })
}

/// Journals (synced) the intent of the action `event` decides, unless the
/// journal failed before: then nothing runs (fail closed).
fn journal_intent(ctx: &Ctx, event: ActionEvent) -> Option<Intent> {
    let id = event.id();
    if !ctx.audit_ok.load(Ordering::SeqCst) {
        ctx.log.error(&format!(
            "action {id} ({} {}) not run: the journal cannot be written",
            event.policy, event.action
        ));
        return None;
    }
    let intent = Intent {
        id,
        event,
        wall_ms: crate::time::now_ms(),
    };
    if let Err(e) = ctx.journal.intent(&intent) {
        audit_failed(ctx, &e.to_string());
        return None;
    }
    Some(intent)
}

/// Journals an action's result and logs it.
fn finish(ctx: &Ctx, intent: &Intent, result: &ActionResult) {
    let e = &intent.event;
    let outcome = result.outcome.name();
    ctx.shared
        .health
        .add("mcpops_watch_actions_total", &[("outcome", outcome)], 1.0);
    let line = format!(
        "action {} ({} {} for {}{}): {outcome}{}",
        intent.id,
        e.policy,
        e.kind.name(),
        e.trigger,
        crate::engine::value::format_labels(&e.labels),
        if result.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", result.detail)
        }
    );
    if matches!(result.outcome, Outcome::Ok | Outcome::DryRun) {
        ctx.log.info(&line);
    } else {
        ctx.log.error(&line);
    }
    if let Err(err) = ctx.journal.result(&intent.id, result) {
        audit_failed(ctx, &err.to_string());
    }
}

/// Fail closed: from now on no action runs, and an alert says why.
fn audit_failed(ctx: &Ctx, error: &str) {
    let first = ctx.audit_ok.swap(false, Ordering::SeqCst);
    ctx.shared
        .health
        .set("mcpops_watch_audit_writable", &[], 0.0);
    ctx.shared
        .health
        .add("mcpops_watch_audit_write_failures_total", &[], 1.0);
    if first {
        ctx.log.error(&format!(
            "the action journal cannot be written ({error}): no action runs from now on"
        ));
        if let Ok(mut f) = ctx.audit_failure.lock() {
            *f = Some((crate::time::now_ms(), error.to_string()));
        }
        ctx.state.changed.notify_one();
    }
}

/// Carries out one action (its intent is journaled), journals its result,
/// and escalates once per episode when it failed.
async fn carry_out(ctx: Arc<Ctx>, run: Run) {
    let result = perform(&ctx, &run).await;
    let failed = result.outcome.is_failure();
    let c = ctx.clone();
    let intent = run.intent.clone();
    let journaled = tokio::task::spawn_blocking(move || finish(&c, &intent, &result)).await;
    if let Err(e) = journaled {
        ctx.log
            .error(&format!("journaling an action's result: {e}"));
    }
    if !failed {
        return;
    }
    let Some(escalate) = run.escalate else {
        return;
    };
    let Some(escalation) = escalation_for(&ctx, &run.intent.event, escalate, run.timeout) else {
        return;
    };
    // The escalation of a failure is a decision like any other: an intent
    // first, then the run (it does not escalate in turn).
    let c = ctx.clone();
    let started = tokio::task::spawn_blocking(move || {
        let intent = journal_intent(&c, escalation.0)?;
        Some(Run {
            intent,
            prepared: escalation.1,
            timeout: escalation.2,
            escalate: None,
        })
    })
    .await;
    if let Ok(Some(run)) = started {
        let result = perform(&ctx, &run).await;
        let c = ctx.clone();
        let _ = tokio::task::spawn_blocking(move || finish(&c, &run.intent, &result)).await;
    }
}

/// The escalation event of a failed run, unless its episode escalated
/// already.
fn escalation_for(
    ctx: &Ctx,
    failed: &ActionEvent,
    escalate: Action,
    timeout: Duration,
) -> Option<(ActionEvent, Prepared, Duration)> {
    // The episode: the alert instance with the decision's labels.
    let episode_start = instance_of(ctx, failed).map_or(failed.time, |a| a.active_at);
    let already = ctx
        .journal
        .escalated_since(&failed.policy, &failed.labels, episode_start);
    if already {
        return None;
    }
    let mut event = failed.clone();
    event.kind = EventKind::Escalated;
    let described = render_action(&escalate, &failed.labels, &failed.trigger, failed.value);
    event.action = described;
    let prepared = match prepare(&escalate, &event) {
        Ok(p) => p,
        Err(e) => {
            ctx.log.error(&format!(
                "escalation of {} for {}: refused: {e}",
                failed.policy, failed.trigger
            ));
            return None;
        }
    };
    // The block's timeout holds for its escalation too.
    Some((event, prepared, timeout))
}

/// Runs an action and says how it ended.
async fn perform(ctx: &Ctx, run: &Run) -> ActionResult {
    let event = &run.intent.event;
    match &run.prepared {
        Prepared::Exec(argv) => {
            let options = exec::ExecOptions {
                timeout: run.timeout,
                grace: exec::DEFAULT_GRACE,
                output_limit: OUTPUT_LIMIT,
                env: exec::alert_env(event, &fingerprint(event)),
            };
            exec::run(argv, &options).await
        }
        Prepared::Webhook(url) => webhook(ctx, run, url).await,
        Prepared::Notify(text) => notify(ctx, event, text).await,
    }
}

/// The labels of the alert instance a decision is about: `alertname`
/// first, as Alertmanager sees it.
fn alert_labels(event: &ActionEvent) -> Labels {
    alertmanager::with_alertname(&event.trigger, &event.labels)
}

fn fingerprint(event: &ActionEvent) -> String {
    alertmanager::fingerprint(&alert_labels(event))
}

/// The published alert instance a decision is about, if it is still shown.
fn instance_of(ctx: &Ctx, event: &ActionEvent) -> Option<LiveAlert> {
    ctx.state
        .published()
        .alerts
        .iter()
        .find(|a| a.name == event.trigger && a.instance_labels().eq(event.labels.iter()))
        .cloned()
}

/// `webhook`: the alert as Alertmanager's v4 webhook payload, with the
/// idempotency key of its episode.
async fn webhook(ctx: &Ctx, run: &Run, url: &str) -> ActionResult {
    let event = &run.intent.event;
    let instance = instance_of(ctx, event);
    let episode_start = instance.as_ref().map_or(event.time, |a| a.active_at);
    let now = crate::time::now_ms();
    let alert = PostableAlert::new(
        &event.trigger,
        &event.labels,
        instance.map(|a| a.annotations).unwrap_or_default(),
        episode_start,
        now + 4 * ctx.options.resend.as_millis() as i64,
        super::alerting::generator_url(&ctx.options.external_url),
    );
    let message = WebhookMessage::new(
        &event.policy,
        &["alertname"],
        vec![WebhookAlert::from_postable(&alert, now)],
        &ctx.options.external_url,
    );
    let key = webhook::idempotency_key(&fingerprint(event), episode_start);
    webhook::send(
        &ctx.client,
        url,
        &message,
        &key,
        &webhook::RetryOptions {
            attempt_timeout: run
                .timeout
                .min(webhook::RetryOptions::default().attempt_timeout),
            ..webhook::RetryOptions::default()
        },
    )
    .await
}

/// `notify`: to Alertmanager as an alert `MCPOpsNotify` with the action's
/// labels and the text as its summary when one is configured, else to the
/// `[notify] webhook`, else the log.
async fn notify(ctx: &Ctx, event: &ActionEvent, text: &str) -> ActionResult {
    let started = Instant::now();
    let mut result = ActionResult::without_run(Outcome::Ok, "");
    if !ctx.options.alertmanagers.is_empty() {
        let alert = notify_alert(ctx, event, text);
        let mut errors = Vec::new();
        for url in &ctx.options.alertmanagers {
            if let Err(e) =
                alertmanager::post_alerts(&ctx.client, url, std::slice::from_ref(&alert)).await
            {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            result.detail = format!(
                "sent to {} Alertmanager(s)",
                ctx.options.alertmanagers.len()
            );
        } else {
            result.outcome = Outcome::Failed;
            result.detail = errors.join("; ");
        }
    } else if let Some(url) = &ctx.options.notify_webhook {
        let alert = notify_alert(ctx, event, text);
        let message = WebhookMessage::new(
            &event.policy,
            &["alertname"],
            vec![WebhookAlert::from_postable(&alert, crate::time::now_ms())],
            &ctx.options.external_url,
        );
        let key = format!("notify-{}", event.id());
        return webhook::send(
            &ctx.client,
            url,
            &message,
            &key,
            &webhook::RetryOptions::default(),
        )
        .await;
    } else {
        ctx.log.error(&format!(
            "notify ({} for {}{}): {text}",
            event.policy,
            event.trigger,
            crate::engine::value::format_labels(&event.labels)
        ));
        result.detail = "logged".into();
    }
    result.duration_ms = started.elapsed().as_millis() as i64;
    result
}

/// A `notify`'s text as an alert `MCPOpsNotify` with the action's labels
/// and the text as its summary, lasting as a sent alert lasts.
fn notify_alert(ctx: &Ctx, event: &ActionEvent, text: &str) -> PostableAlert {
    let now = crate::time::now_ms();
    PostableAlert::new(
        NOTIFY_ALERT,
        &event.labels,
        vec![("summary".to_string(), text.to_string())],
        now,
        now + 4 * ctx.options.resend.as_millis() as i64,
        super::alerting::generator_url(&ctx.options.external_url),
    )
}

/// The alert a `notify` action becomes in Alertmanager.
pub const NOTIFY_ALERT: &str = "MCPOpsNotify";

/// Re-reads the rule files when they changed (or on SIGHUP): a set that
/// checks replaces the rules from the next step; one with errors is refused
/// and logged, and the rules running keep running.
fn reload(ctx: &Ctx, core: &mut Core, forced: bool) {
    let paths = match ctx.config.rule_paths() {
        Ok(p) => p,
        Err(e) => {
            // The error stands for the texts: logged once until it changes.
            let why = e.to_string();
            let texts = vec![(PathBuf::new(), why.clone())];
            if forced || core.refused.as_ref() != Some(&texts) {
                refuse(ctx, core, texts, &why);
            }
            return;
        }
    };
    let texts: Vec<(PathBuf, String)> = paths
        .iter()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap_or_default()))
        .collect();
    if texts == core.loaded.sources {
        if forced {
            ctx.log.info("SIGHUP: the rule files have not changed");
        }
        return;
    }
    if !forced && core.refused.as_ref() == Some(&texts) {
        return;
    }
    let loaded = match load(&paths) {
        Ok(l) => l,
        Err(e) => {
            refuse(ctx, core, texts, &e.to_string());
            return;
        }
    };
    let next = core
        .live
        .as_ref()
        .map_or_else(|| now_eval_ms(ctx), LiveRules::next_step);
    let first = next_aligned(next, loaded.step_ms());
    match start_live(ctx, &loaded, first) {
        Ok(live) => {
            for w in &loaded.warnings {
                ctx.log.error(&w.to_string());
            }
            ctx.log.info(&format!(
                "rules reloaded: {} file(s), from the step at {}",
                loaded.files.len(),
                crate::time::format_ms(first)
            ));
            ctx.shared
                .health
                .set("mcpops_watch_rules_reload_success", &[], 1.0);
            ctx.shared
                .health
                .add("mcpops_watch_rules_reloads_total", &[], 1.0);
            core.live = Some(live);
            core.loaded = loaded;
            core.refused = None;
        }
        Err(e) => refuse(ctx, core, texts, &e.to_string()),
    }
}

fn refuse(ctx: &Ctx, core: &mut Core, texts: Vec<(PathBuf, String)>, why: &str) {
    ctx.shared
        .health
        .set("mcpops_watch_rules_reload_success", &[], 0.0);
    ctx.shared
        .health
        .add("mcpops_watch_rules_reload_failures_total", &[], 1.0);
    ctx.log.error(&format!(
        "the changed rule files are refused; the rules running keep running: {why}"
    ));
    core.refused = Some(texts);
}

/// Publishes the alerts and rules; says whether an alert started firing
/// or resolved since the last time.
fn publish(ctx: &Ctx, core: &mut Core, error: Option<String>, took: Duration) -> bool {
    let mut alerts: Vec<LiveAlert> = core
        .live
        .as_ref()
        .map(|l| l.alerts().iter().map(LiveAlert::from_view).collect())
        .unwrap_or_default();
    if let Ok(f) = ctx.audit_failure.lock()
        && let Some((at, why)) = &*f
    {
        alerts.push(LiveAlert {
            name: AUDIT_ALERT.into(),
            labels: vec![
                ("alertname".into(), AUDIT_ALERT.into()),
                ("severity".into(), "critical".into()),
            ],
            annotations: vec![(
                "summary".into(),
                format!("mcpops watch cannot write its action journal ({why}): no action runs"),
            )],
            state: AlertState::Firing,
            active_at: *at,
            fired_at: Some(*at),
            resolved_at: None,
            value: 1.0,
            suppressed: false,
        });
    }
    let firing: Vec<Labels> = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing && !a.suppressed)
        .map(|a| a.labels.clone())
        .collect();
    let changed = firing != core.firing;
    core.firing = firing;
    for state in [AlertState::Pending, AlertState::Firing] {
        let n = alerts.iter().filter(|a| a.state == state).count();
        ctx.shared
            .health
            .set("mcpops_watch_alerts", &[("state", state.name())], n as f64);
    }
    ctx.state.publish(Published {
        groups: groups(&core.loaded, core.live.as_ref()),
        alerts,
        last_evaluation_ms: Some(crate::time::now_ms()),
        evaluation_time: took,
        last_error: error,
        step_ms: core.loaded.step_ms(),
    });
    changed
}

/// The health series of the rule loop and the sender, with their help.
pub const HEALTH_HELP: &[(&str, &str)] = &[
    (
        "mcpops_watch_rule_evaluations_total",
        "Steps of the rules evaluated.",
    ),
    (
        "mcpops_watch_rule_evaluation_failures_total",
        "Steps of the rules whose evaluation failed.",
    ),
    (
        "mcpops_watch_rule_steps_skipped_total",
        "Steps of the rules skipped because evaluation fell behind.",
    ),
    (
        "mcpops_watch_rules_reload_success",
        "1 when the last change of the rule files was taken, 0 when it was refused.",
    ),
    (
        "mcpops_watch_rules_reloads_total",
        "Changes of the rule files taken.",
    ),
    (
        "mcpops_watch_rules_reload_failures_total",
        "Changes of the rule files refused.",
    ),
    (
        "mcpops_watch_alerts",
        "Alert instances by state (pending, firing).",
    ),
    (
        "mcpops_watch_actions_total",
        "Actions carried out (or dry-run), by outcome.",
    ),
    (
        "mcpops_watch_audit_writable",
        "1 while the action journal can be written; 0 once a write failed (no action runs).",
    ),
    (
        "mcpops_watch_audit_write_failures_total",
        "Writes to the action journal that failed.",
    ),
    (
        "mcpops_watch_alertmanager_sends_total",
        "Batches of alerts sent to an Alertmanager.",
    ),
    (
        "mcpops_watch_alertmanager_send_failures_total",
        "Batches of alerts an Alertmanager did not take.",
    ),
];

fn describe_health(h: &Health) {
    for (name, help) in HEALTH_HELP {
        h.describe(name, help);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_align_on_multiples_of_the_step_since_the_epoch() {
        assert_eq!(next_aligned(60_000, 60_000), 60_000);
        assert_eq!(next_aligned(60_001, 60_000), 120_000);
        assert_eq!(next_aligned(-1, 15_000), 0);
        assert_eq!(next_aligned(-15_001, 15_000), -15_000);
    }

    #[test]
    fn loading_refuses_errors_and_keeps_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.rules");
        std::fs::write(&good, "evaluate every 10s\nrecord two = vector(2)\n").unwrap();
        let loaded = load(std::slice::from_ref(&good)).unwrap();
        assert_eq!(loaded.step_ms(), 10_000);
        assert_eq!(loaded.sources[0].0, good);
        let bad = dir.path().join("bad.rules");
        std::fs::write(&bad, "alert A {\n  when nosuchfn(up) > 1\n}\n").unwrap();
        match load(&[good, bad]) {
            Err(WatchError::Rules(d)) => {
                let text = WatchError::Rules(d).to_string();
                assert!(text.contains("bad.rules:2:"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let e = load(&[dir.path().join("missing.rules")]).unwrap_err();
        assert!(e.to_string().contains("missing.rules"), "{e}");
    }

    /// A journal write that fails stops every action from then on and
    /// raises the audit alert; evaluation goes on.
    #[test]
    fn a_failed_journal_write_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let rules = dir.path().join("r.rules");
        std::fs::write(
            &rules,
            "evaluate every 1s\nalert Down {\n  when vector(1) > 0\n}\nremediate Restart {\n  on Down\n  do exec \"true\"\n}\n",
        )
        .unwrap();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Shared {
            store: Arc::new(
                crate::store::LiveStore::open(&store, crate::store::LiveOptions::default())
                    .unwrap(),
            ),
            health: Arc::new(Health::new()),
            targets: Arc::new(super::super::targets::Targets::new()),
            shutdown: stopped,
        };
        let loaded = load(std::slice::from_ref(&rules)).unwrap();
        let options = RulesOptions {
            offset: Duration::ZERO,
            mode: RulesMode::Auto,
            max_samples: 1_000_000,
            store_root: store.clone(),
            alertmanagers: Vec::new(),
            notify_webhook: None,
            resend: Duration::from_secs(60),
            external_url: "http://127.0.0.1:9464".into(),
        };
        let state = Arc::new(RulesState::default());
        let log = Log {
            quiet: true,
            terminal: false,
        };
        let rule_loop = RuleLoop::start(
            shared.clone(),
            WatchConfig::default(),
            loaded.clone(),
            options,
            state.clone(),
            log,
        )
        .unwrap();
        let ctx = &rule_loop.ctx;
        let event = ActionEvent {
            time: 60_000,
            policy: "Restart".into(),
            kind: EventKind::Run,
            trigger: "Down".into(),
            labels: vec![("severity".into(), "warning".into())],
            action: "exec \"true\"".into(),
            episode: Some(0),
            value: 1.0,
            mode: Mode::Auto,
            approved_by: None,
        };
        // Writable: the intent is journaled and the action is to run.
        assert!(decide(ctx, &loaded, event.clone()).is_some());
        // A real write failure: the journal's writes go to /dev/full (ENOSPC).
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let journal_file = ctx.journal.swap_file(full);
        let mut later = event.clone();
        later.time = 120_000;
        assert!(decide(ctx, &loaded, later).is_none(), "nothing runs");
        // Fail closed: with the journal writable again, still nothing runs.
        ctx.journal.swap_file(journal_file);
        let mut after = event.clone();
        after.time = 180_000;
        assert!(decide(ctx, &loaded, after).is_none(), "nothing runs after");
        let journal = crate::remediate::journal::read(&store).unwrap();
        assert_eq!(journal.entries.len(), 1, "no intent after the failure");
        assert_eq!(
            shared.health.get("mcpops_watch_audit_writable", &[]),
            Some(0.0)
        );
        let mut core = lock(&rule_loop.core);
        assert!(
            publish(ctx, &mut core, None, Duration::ZERO),
            "the alert is news"
        );
        let alerts = state.published().alerts.clone();
        let audit = alerts.iter().find(|a| a.name == AUDIT_ALERT).unwrap();
        assert_eq!(audit.state, AlertState::Firing);
        assert!(
            audit.annotations[0].1.contains("No space left on device"),
            "{audit:?}"
        );
    }
}
