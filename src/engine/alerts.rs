//! Alert states over time, as Prometheus keeps them: a series for which the
//! condition holds becomes pending, fires once it has held for `for`, stays
//! firing for `keep_firing` after the condition clears, then resolves.
//! A pending alert whose condition clears goes back to inactive.
//! With `resolve when`, a firing alert whose condition cleared stays firing
//! while the resolve expression gives 0 for its series (hysteresis).
//!
//! The state is stepped ([`AlertRun::step`]): a backtest feeds it the steps
//! of conditions evaluated over a whole grid ([`BatchInput`]), `watch` one
//! step at a time, so both walk the same states.

use super::value::{Grid, Labels, Series, signature};
use crate::dsl::ast::Alert;
use crate::dsl::template;
use serde::Serialize;
use std::collections::HashMap;

/// Two firing episodes of the same alert and labels less than this apart count as a flap.
pub const FLAP_WINDOW_MS: i64 = 60 * 60_000;

/// One stretch of an alert being active for one label set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Episode {
    pub alert: String,
    pub severity: &'static str,
    /// The series' labels, the alert's own labels and `severity`.
    pub labels: Labels,
    /// When the condition started to hold (pending from here).
    pub active_at: i64,
    /// When it started firing, if it did.
    pub fired_at: Option<i64>,
    /// When it resolved (or, never having fired, went inactive); `None` when
    /// still active at the end of the evaluation.
    pub ended_at: Option<i64>,
    /// The largest value of the condition while active.
    pub peak: f64,
    /// The condition's value when it last held.
    pub last_value: f64,
    /// Earlier episodes of the same alert and labels that ended less than
    /// [`FLAP_WINDOW_MS`] before this one started, counted in a chain.
    pub flaps: u32,
    /// The rendered summary, from the values when it fired.
    pub summary: String,
    /// The stretches during which a `suppress ... while ...` held it back:
    /// from (inclusive) to (exclusive; `None` while it still does).
    pub suppressed: Vec<(i64, Option<i64>)>,
}

impl Episode {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Firing at time `t`.
    pub fn firing_at(&self, t: i64) -> bool {
        self.fired_at.is_some_and(|f| f <= t) && self.ended_at.is_none_or(|e| t < e)
    }

    /// Held back by a `suppress ... while ...` at time `t`.
    pub fn suppressed_at(&self, t: i64) -> bool {
        self.suppressed
            .iter()
            .any(|&(from, to)| from <= t && to.is_none_or(|to| t < to))
    }

    /// Pending (active, not yet firing) at time `t`.
    pub fn pending_at(&self, t: i64) -> bool {
        self.active_at <= t
            && self.fired_at.is_none_or(|f| t < f)
            && self.ended_at.is_none_or(|e| t < e)
    }
}

/// The labels an alert's instance carries: the series' labels, then the
/// alert's `labels` (templated), then `severity`.
pub fn instance_labels(alert: &Alert, series: &Labels, value: f64) -> Labels {
    let mut labels = series.clone();
    let lookup = lookup_for(alert, series, value);
    for pair in &alert.labels {
        let v = template::render(&pair.value, &lookup);
        set_label(&mut labels, &pair.name.name, v);
    }
    set_label(&mut labels, "severity", alert.severity().name().to_string());
    labels
}

fn set_label(labels: &mut Labels, name: &str, value: String) {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value,
        Err(i) => labels.insert(i, (name.to_string(), value)),
    }
}

/// The values an alert's templates see: `{{value}}`, `{{alert}}`,
/// `{{severity}}` and the labels.
pub(crate) fn lookup_for<'a>(
    alert: &'a Alert,
    labels: &'a Labels,
    value: f64,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| match name {
        "value" => Some(value.to_string()),
        "alert" => Some(alert.name.name.clone()),
        "severity" => Some(alert.severity().name().to_string()),
        _ => labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
    }
}

/// One series' alert state, advanced one step at a time: pending while the
/// condition holds, firing once it has held for `for`, then (once the
/// condition is clear, and `resolve when` does not hold it) firing on for
/// `keep_firing` before it resolves. Batch and live evaluation both step it.
#[derive(Clone, Debug)]
struct Tracker {
    /// The condition series' labels.
    labels: Labels,
    current: Option<Episode>,
    /// The serial number of the current episode (see [`AlertRun::keyed_episodes`]).
    serial: usize,
    /// While firing after the condition cleared: since when it is clear.
    clear_since: Option<i64>,
    /// When the last episode that fired ended.
    last_end: Option<i64>,
    flaps: u32,
}

/// The state of one alert rule over all its series, stepped: the trackers
/// of its series (by their labels), and the episodes that ended so far.
#[derive(Clone, Debug)]
pub struct AlertRun {
    pub alert: Alert,
    hold_ms: i64,
    keep_ms: i64,
    /// Tracker by the signature of its series' labels.
    index: HashMap<String, usize>,
    trackers: Vec<Tracker>,
    /// Trackers with a current episode, in the order they became active.
    active: Vec<usize>,
    /// The step each tracker last had a value (to step the others as clear).
    seen_at: Vec<i64>,
    /// Episodes that ended, in order of ending, with their serial numbers.
    done: Vec<(usize, Episode)>,
    /// Episodes started so far.
    started: usize,
}

impl AlertRun {
    pub fn new(alert: &Alert) -> AlertRun {
        AlertRun {
            alert: alert.clone(),
            hold_ms: alert.for_.as_ref().map_or(0, |d| d.ms),
            keep_ms: alert.keep_firing.as_ref().map_or(0, |d| d.ms),
            index: HashMap::new(),
            trackers: Vec::new(),
            active: Vec::new(),
            seen_at: Vec::new(),
            done: Vec::new(),
            started: 0,
        }
    }

    /// The tracker of the series with `labels` (the condition's, or those of
    /// the `resolve when` result that matches it), made on first sight.
    pub fn intern(&mut self, labels: &Labels) -> usize {
        let key = signature(labels, None);
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.trackers.len();
        self.index.insert(key, i);
        self.trackers.push(Tracker {
            labels: labels.clone(),
            current: None,
            serial: 0,
            clear_since: None,
            last_end: None,
            flaps: 0,
        });
        self.seen_at.push(i64::MIN);
        i
    }

    /// Advances every series to step `t`. `holds` are the trackers whose
    /// condition has a value at `t` (each once); `resolve` gives, for a
    /// tracker, the `resolve when` result at `t`: `Some(0)` keeps a firing
    /// alert firing, `Some(1)` or `None` lets it resolve (ignored for an
    /// alert without `resolve when`).
    pub fn step(&mut self, t: i64, holds: &[(usize, f64)], resolve: &dyn Fn(usize) -> Option<f64>) {
        let severity = self.alert.severity().name();
        for &(i, v) in holds {
            self.seen_at[i] = t;
            let tr = &mut self.trackers[i];
            tr.clear_since = None;
            if tr.current.is_none() {
                if tr.last_end.is_some_and(|e| t - e < FLAP_WINDOW_MS) {
                    tr.flaps += 1;
                } else {
                    tr.flaps = 0;
                }
                tr.current = Some(Episode {
                    alert: self.alert.name.name.clone(),
                    severity,
                    labels: instance_labels(&self.alert, &tr.labels, v),
                    active_at: t,
                    fired_at: None,
                    ended_at: None,
                    peak: v,
                    last_value: v,
                    flaps: 0,
                    summary: String::new(),
                    suppressed: Vec::new(),
                });
                tr.serial = self.started;
                self.started += 1;
                self.active.push(i);
            }
            let Some(ep) = tr.current.as_mut() else {
                continue;
            };
            if v > ep.peak || ep.peak.is_nan() {
                ep.peak = v;
            }
            ep.last_value = v;
            if ep.fired_at.is_none() && t - ep.active_at >= self.hold_ms {
                ep.fired_at = Some(t);
                ep.flaps = tr.flaps;
                if let Some(tpl) = &self.alert.summary {
                    ep.summary = template::render(tpl, &lookup_for(&self.alert, &tr.labels, v));
                }
            }
        }
        let has_resolve = self.alert.resolve_when.is_some();
        let mut still = Vec::with_capacity(self.active.len());
        for &i in &self.active {
            if self.seen_at[i] == t {
                still.push(i);
                continue;
            }
            let tr = &mut self.trackers[i];
            let Some(ep) = tr.current.as_mut() else {
                continue;
            };
            if ep.fired_at.is_some() {
                // `resolve when` gives 0: not resolved yet, as if the
                // condition still held (keep_firing counts from the step
                // both let go).
                if has_resolve && resolve(i) == Some(0.0) {
                    tr.clear_since = None;
                    still.push(i);
                    continue;
                }
                let since = *tr.clear_since.get_or_insert(t);
                if t - since < self.keep_ms {
                    still.push(i);
                    continue;
                }
            }
            ep.ended_at = Some(t);
            if let Some(last) = ep.suppressed.last_mut()
                && last.1.is_none()
            {
                last.1 = Some(t);
            }
            if ep.fired_at.is_some() {
                tr.last_end = Some(t);
            }
            tr.clear_since = None;
            self.done.extend(tr.current.take().map(|e| (tr.serial, e)));
        }
        self.active = still;
    }

    /// The episodes active (pending or firing) after the last step, with the
    /// tracker each belongs to.
    pub fn current(&self) -> impl Iterator<Item = (usize, &Episode)> {
        self.active
            .iter()
            .filter_map(|&i| self.trackers[i].current.as_ref().map(|e| (i, e)))
    }

    /// The serial number of tracker `i`'s current episode: episodes are
    /// numbered as they start, so a number names one episode of this alert.
    pub fn serial(&self, i: usize) -> usize {
        self.trackers[i].serial
    }

    /// Marks the current episode of tracker `i` as suppressed (or not) from `t`.
    pub fn set_suppressed(&mut self, i: usize, t: i64, suppressed: bool) {
        let Some(ep) = self.trackers[i].current.as_mut() else {
            return;
        };
        let open = ep.suppressed.last().is_some_and(|s| s.1.is_none());
        match (suppressed, open) {
            (true, false) => ep.suppressed.push((t, None)),
            (false, true) => {
                if let Some(last) = ep.suppressed.last_mut() {
                    last.1 = Some(t);
                }
            }
            _ => {}
        }
    }

    /// The episodes that ended (and are still kept), in order of ending.
    pub fn ended(&self) -> impl Iterator<Item = &Episode> {
        self.done.iter().map(|(_, e)| e)
    }

    /// Every episode kept, ended or not, with its serial number, in order
    /// of start (then labels).
    pub fn keyed_episodes(&self) -> Vec<(usize, Episode)> {
        let mut out: Vec<(usize, Episode)> = self.done.clone();
        out.extend(
            self.current()
                .map(|(i, e)| (self.trackers[i].serial, e.clone())),
        );
        out.sort_by(|(_, a), (_, b)| {
            a.active_at
                .cmp(&b.active_at)
                .then_with(|| a.labels.cmp(&b.labels))
        });
        out
    }

    /// Every episode kept, ended or not, in order of start (then labels).
    pub fn episodes(&self) -> Vec<Episode> {
        self.keyed_episodes().into_iter().map(|(_, e)| e).collect()
    }

    /// Forgets the series that can no longer change anything: no episode
    /// now, and none that ended within the flap window before `t` (a new
    /// episode of theirs starts exactly as it would have). A live run's
    /// series come and go (sessions, restarts); this keeps its state to the
    /// series that matter.
    pub fn forget_idle(&mut self, t: i64) {
        let idle = |tr: &Tracker| {
            tr.current.is_none() && tr.last_end.is_none_or(|e| t - e >= FLAP_WINDOW_MS)
        };
        if !self.trackers.iter().any(idle) {
            return;
        }
        let mut remap = vec![usize::MAX; self.trackers.len()];
        let mut kept = Vec::new();
        let mut seen_at = Vec::new();
        for (i, tr) in std::mem::take(&mut self.trackers).into_iter().enumerate() {
            if !idle(&tr) {
                remap[i] = kept.len();
                seen_at.push(self.seen_at[i]);
                kept.push(tr);
            }
        }
        self.trackers = kept;
        self.seen_at = seen_at;
        self.index.retain(|_, i| {
            *i = remap[*i];
            *i != usize::MAX
        });
        for i in &mut self.active {
            *i = remap[*i];
        }
    }

    /// Forgets ended episodes that ended before `t` (a live run keeps what
    /// its alerts list needs, not all of history).
    pub fn forget_ended_before(&mut self, t: i64) {
        self.done
            .retain(|(_, e)| e.ended_at.is_none_or(|end| end >= t));
    }
}

/// Runs the state machine of one alert over the steps of `grid`, given the
/// series its condition produced (and those of its `resolve when`, as 0/1
/// per series, if it has one), and returns every episode in order of start.
pub fn run_alert(alert: &Alert, grid: Grid, condition: &[Series]) -> Vec<Episode> {
    run_alert_resolving(alert, grid, condition, &[])
}

/// [`run_alert`] with the `resolve when` results.
pub fn run_alert_resolving(
    alert: &Alert,
    grid: Grid,
    condition: &[Series],
    resolve: &[Series],
) -> Vec<Episode> {
    let mut run = AlertRun::new(alert);
    let batch = BatchInput::new(&mut run, condition, resolve);
    let mut holds = Vec::new();
    for k in 0..grid.n {
        batch.step(&mut run, grid.time(k), k, &mut holds);
    }
    run.episodes()
}

/// An alert's condition and `resolve when` series over a grid, as the input
/// of [`AlertRun::step`] one step at a time.
pub struct BatchInput<'a> {
    condition: &'a [Series],
    /// The tracker of each condition series.
    cond_tracker: Vec<usize>,
    /// The `resolve when` series of each tracker, if any.
    resolve_of: Vec<Option<&'a Series>>,
}

impl<'a> BatchInput<'a> {
    pub fn new(run: &mut AlertRun, condition: &'a [Series], resolve: &'a [Series]) -> Self {
        let cond_tracker: Vec<usize> = condition.iter().map(|s| run.intern(&s.labels)).collect();
        let mut resolve_of: Vec<Option<&Series>> = Vec::new();
        for s in resolve {
            let i = run.intern(&s.labels);
            if resolve_of.len() <= i {
                resolve_of.resize(i + 1, None);
            }
            resolve_of[i] = Some(s);
        }
        BatchInput {
            condition,
            cond_tracker,
            resolve_of,
        }
    }

    /// Steps `run` to step `k` (time `t`) of the grid.
    pub fn step(&self, run: &mut AlertRun, t: i64, k: usize, holds: &mut Vec<(usize, f64)>) {
        holds.clear();
        for (s, &i) in self.condition.iter().zip(&self.cond_tracker) {
            if let Some(v) = s.at(k) {
                holds.push((i, v));
            }
        }
        let resolve = |i: usize| {
            self.resolve_of
                .get(i)
                .copied()
                .flatten()
                .and_then(|s| s.at(k))
        };
        run.step(t, holds, &resolve);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::step_values;

    fn alert(src: &str) -> Alert {
        let f = crate::dsl::parse_str(src, "t").expect("parses");
        f.alerts().next().expect("alert").clone()
    }

    fn series(values: &[Option<f64>]) -> Series {
        Series::new(
            vec![("server".into(), "a".into())],
            0,
            step_values(values.iter().copied()),
        )
    }

    const MIN: i64 = 60_000;

    #[test]
    fn pending_then_firing_then_resolved() {
        let a = alert("alert A {\n  when x > 1\n  for 2m\n  severity critical\n}\n");
        let grid = Grid::range(0, 10 * MIN, MIN);
        let on = Some(2.0);
        let eps = run_alert(&a, grid, &[series(&[None, on, on, on, on, None, None])]);
        assert_eq!(eps.len(), 1);
        let e = &eps[0];
        assert_eq!(
            (e.active_at, e.fired_at, e.ended_at),
            (MIN, Some(3 * MIN), Some(5 * MIN))
        );
        assert!(e.pending_at(2 * MIN) && !e.firing_at(2 * MIN));
        assert!(e.firing_at(4 * MIN) && !e.firing_at(5 * MIN));
        assert_eq!(e.label("severity"), Some("critical"));
    }

    #[test]
    fn resolve_when_holds_a_firing_alert_until_it_gives_one_or_nothing() {
        let a = alert("alert A {\n  when x > 1\n  resolve when x < 0.5\n}\n");
        let mut run = AlertRun::new(&a);
        let s = run.intern(&vec![("server".into(), "a".into())]);
        let other = run.intern(&vec![("server".into(), "b".into())]);
        assert_ne!(s, other);
        assert_eq!(run.intern(&vec![("server".into(), "a".into())]), s);
        // Pending ignores resolve: with `for` 0 it fires at once, so step
        // through the states of a firing alert.
        run.step(0, &[(s, 2.0)], &|_| None);
        // Condition gone, resolve gives 0: still firing.
        run.step(MIN, &[], &|_| Some(0.0));
        run.step(2 * MIN, &[], &|_| Some(0.0));
        assert_eq!(run.current().count(), 1);
        // Resolve gives 1: resolved.
        run.step(3 * MIN, &[], &|_| Some(1.0));
        assert_eq!(run.current().count(), 0);
        // Again, and this time the data is gone (no resolve result).
        run.step(4 * MIN, &[(s, 2.0)], &|_| Some(0.0));
        run.step(5 * MIN, &[], &|_| None);
        let eps = run.keyed_episodes();
        assert_eq!(
            eps.iter()
                .map(|(k, e)| (*k, e.fired_at, e.ended_at))
                .collect::<Vec<_>>(),
            [
                (0, Some(0), Some(3 * MIN)),
                (1, Some(4 * MIN), Some(5 * MIN))
            ]
        );
        assert_eq!(eps[1].1.flaps, 1, "ended less than an hour before");
        // Series b never did anything; a ended at 5m: kept for flaps until 65m.
        run.forget_idle(6 * MIN);
        assert_eq!(run.trackers.len(), 1);
        run.forget_idle(65 * MIN);
        assert!(run.trackers.is_empty() && run.index.is_empty());
        let s = run.intern(&vec![("server".into(), "a".into())]);
        run.step(66 * MIN, &[(s, 2.0)], &|_| None);
        let (serial, e) = run.keyed_episodes().pop().expect("episode");
        assert_eq!((serial, e.flaps), (2, 0));
    }

    #[test]
    fn suppressed_stretches_open_close_and_end_with_the_episode() {
        let a = alert("alert A {\n  when x > 1\n}\n");
        let mut run = AlertRun::new(&a);
        let s = run.intern(&vec![("server".into(), "a".into())]);
        for m in 0..6 {
            run.step(m * MIN, &[(s, 2.0)], &|_| None);
            run.set_suppressed(s, m * MIN, (1..3).contains(&m) || m >= 4);
        }
        run.step(6 * MIN, &[], &|_| None);
        let e = &run.episodes()[0];
        assert_eq!(
            e.suppressed,
            [(MIN, Some(3 * MIN)), (4 * MIN, Some(6 * MIN))]
        );
        assert!(!e.suppressed_at(0) && e.suppressed_at(2 * MIN) && !e.suppressed_at(3 * MIN));
    }

    #[test]
    fn pending_that_clears_never_fires_and_keep_firing_holds() {
        let a = alert("alert A {\n  when x > 1\n  for 3m\n  keep_firing 2m\n}\n");
        let grid = Grid::range(0, 20 * MIN, MIN);
        let on = Some(2.0);
        let vals = [
            on, on, None, on, on, on, on, None, on, None, None, None, None,
        ];
        let eps = run_alert(&a, grid, &[series(&vals)]);
        assert_eq!(eps[0].fired_at, None);
        assert_eq!(eps[0].ended_at, Some(2 * MIN));
        // Fires at 6m; the gap at 7m is bridged by keep_firing; clear from 9m, resolved at 11m.
        assert_eq!(eps[1].fired_at, Some(6 * MIN));
        assert_eq!(eps[1].ended_at, Some(11 * MIN));
        assert_eq!(eps.len(), 2);
    }
}
