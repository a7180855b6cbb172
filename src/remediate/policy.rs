//! Whether an action may run now for a series, given what ran before.

use std::collections::HashMap;

/// The limits of one policy block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// No repeat for the same series within this (ms).
    pub cooldown_ms: Option<i64>,
    /// At most `.0` runs per series within any `.1` ms.
    pub max: Option<(i64, i64)>,
    /// The alert must resolve within this (ms) of the action, or escalation follows.
    pub verify_ms: Option<i64>,
}

/// What the policy says about running an action at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// The series' last run was too recent; it may run again at `until`.
    Cooldown {
        until: i64,
    },
    /// `max N per D` is spent; the oldest run in the period leaves it at `until`.
    MaxReached {
        until: i64,
    },
}

/// The run history of one policy, per series.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub limits: Limits,
    runs: HashMap<String, Vec<i64>>,
}

impl Policy {
    pub fn new(limits: Limits) -> Policy {
        Policy {
            limits,
            runs: HashMap::new(),
        }
    }

    /// Whether the action may run for `series` at `t` (times in ms, non-decreasing).
    pub fn decide(&self, series: &str, t: i64) -> Decision {
        let runs = self.runs.get(series).map(Vec::as_slice).unwrap_or(&[]);
        if let (Some(cd), Some(&last)) = (self.limits.cooldown_ms, runs.last())
            && t < last + cd
        {
            return Decision::Cooldown { until: last + cd };
        }
        if let Some((n, per)) = self.limits.max {
            // Runs are recorded in time order: the recent ones are a suffix.
            let recent = &runs[runs.partition_point(|&r| r <= t - per)..];
            if recent.len() as i64 >= n.max(0) {
                let until = recent.first().map_or(t, |&r| r + per);
                return Decision::MaxReached { until };
            }
        }
        Decision::Run
    }

    /// Notes that the action ran for `series` at `t`.
    pub fn record(&mut self, series: &str, t: i64) {
        self.runs.entry(series.to_string()).or_default().push(t);
    }

    /// Forgets the runs before `t` (a caller keeps every run a limit still
    /// counts: `t` at most the decision time minus the cooldown and `max`'s
    /// period).
    pub fn forget_before(&mut self, t: i64) {
        self.runs.retain(|_, runs| {
            runs.retain(|&r| r >= t);
            !runs.is_empty()
        });
    }

    /// How many times the action ran for `series`.
    pub fn runs(&self, series: &str) -> usize {
        self.runs.get(series).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn cooldown_then_max_per_period() {
        let mut p = Policy::new(Limits {
            cooldown_ms: Some(30 * MIN),
            max: Some((2, 24 * 60 * MIN)),
            verify_ms: None,
        });
        assert_eq!(p.decide("a", 0), Decision::Run);
        p.record("a", 0);
        assert_eq!(
            p.decide("a", 10 * MIN),
            Decision::Cooldown { until: 30 * MIN }
        );
        assert_eq!(
            p.decide("b", 10 * MIN),
            Decision::Run,
            "series are independent"
        );
        assert_eq!(p.decide("a", 30 * MIN), Decision::Run);
        p.record("a", 30 * MIN);
        assert_eq!(
            p.decide("a", 120 * MIN),
            Decision::MaxReached {
                until: 24 * 60 * MIN
            }
        );
        assert_eq!(p.decide("a", 24 * 60 * MIN + 1), Decision::Run);
        assert_eq!(p.runs("a"), 2);
    }
}
