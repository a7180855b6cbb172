//! Alert states over time, as Prometheus keeps them: a series for which the
//! condition holds becomes pending, fires once it has held for `for`, stays
//! firing for `keep_firing` after the condition clears, then resolves.
//! A pending alert whose condition clears goes back to inactive.

use super::value::{Grid, Labels, Series};
use crate::dsl::ast::Alert;
use crate::dsl::template;
use serde::Serialize;

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

fn lookup_for<'a>(
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

/// Runs the state machine of one alert over the steps of `grid`, given the
/// series its condition produced, and returns every episode in order of start.
pub fn run_alert(alert: &Alert, grid: Grid, condition: &[Series]) -> Vec<Episode> {
    let hold_ms = alert.for_.as_ref().map_or(0, |d| d.ms);
    let keep_ms = alert.keep_firing.as_ref().map_or(0, |d| d.ms);
    let severity = alert.severity().name();
    let mut episodes: Vec<Episode> = Vec::new();
    for s in condition {
        let mut current: Option<Episode> = None;
        // While firing after the condition cleared: since when it is clear.
        let mut clear_since: Option<i64> = None;
        let mut last_end: Option<i64> = None;
        let mut flaps = 0u32;
        // Past the series' last value, step on until an episode still firing
        // has been clear for `keep_firing` and resolves.
        let last_needed = grid.first_at_or_after(grid.time(s.end()) + keep_ms);
        for k in s.start..(last_needed + 1).min(grid.n) {
            let t = grid.time(k);
            match s.at(k) {
                Some(v) => {
                    clear_since = None;
                    let ep = current.get_or_insert_with(|| {
                        let labels = instance_labels(alert, &s.labels, v);
                        if last_end.is_some_and(|e| t - e < FLAP_WINDOW_MS) {
                            flaps += 1;
                        } else {
                            flaps = 0;
                        }
                        Episode {
                            alert: alert.name.name.clone(),
                            severity,
                            labels,
                            active_at: t,
                            fired_at: None,
                            ended_at: None,
                            peak: v,
                            last_value: v,
                            flaps: 0,
                            summary: String::new(),
                        }
                    });
                    if v > ep.peak || ep.peak.is_nan() {
                        ep.peak = v;
                    }
                    ep.last_value = v;
                    if ep.fired_at.is_none() && t - ep.active_at >= hold_ms {
                        ep.fired_at = Some(t);
                        ep.flaps = flaps;
                        if let Some(tpl) = &alert.summary {
                            ep.summary = template::render(tpl, &lookup_for(alert, &s.labels, v));
                        }
                    }
                }
                None => {
                    let Some(ep) = current.as_mut() else { continue };
                    if ep.fired_at.is_some() {
                        let since = *clear_since.get_or_insert(t);
                        if t - since < keep_ms {
                            continue;
                        }
                    }
                    ep.ended_at = Some(t);
                    if ep.fired_at.is_some() {
                        last_end = Some(t);
                    }
                    episodes.extend(current.take());
                    clear_since = None;
                }
            }
        }
        episodes.extend(current);
    }
    episodes.sort_by(|a, b| {
        a.active_at
            .cmp(&b.active_at)
            .then_with(|| a.labels.cmp(&b.labels))
    });
    episodes
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
