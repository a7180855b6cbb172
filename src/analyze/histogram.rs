//! Calls from cumulative counters: what a histogram (or a request counter)
//! says happened between two scrapes, as the calls the analyzer works on.
//!
//! A histogram's buckets count the calls of each duration range since the
//! process started. Between two scrapes, the reset-aware increase of each
//! bucket is how many calls ended in that range; [`calls_from_histogram`]
//! turns each of them into one [`Call`], its duration spread evenly inside
//! its bucket (the assumption `histogram_quantile` makes, so quantiles of
//! these calls are the bucket interpolation Prometheus would give) and its
//! time spread over the interval. A call in the `+Inf` bucket gets the
//! highest finite bound, as `histogram_quantile` gives. Without buckets
//! (a `_count` with a `_sum`) every call gets the interval's mean; a plain
//! request counter's calls have no duration (NaN).
//!
//! Counters restart from zero when the process does; any decrease is a
//! reset (Prometheus's rule), and the new value is the increase since.

use super::fleet::Call;

/// Reset-aware increases of a counter between consecutive samples:
/// `(t0, t1, increase)` for each pair. When the series starts after
/// `origin_ms` (it was created during the data, as a client library creates
/// a series at its first observation), its first value is an increase too,
/// over the usual interval before it.
pub fn increases(ts: &[i64], vs: &[f64], origin_ms: i64) -> Vec<(i64, i64, f64)> {
    let mut out = Vec::with_capacity(ts.len());
    let usual = usual_interval(ts);
    if let (Some(&t), Some(&v)) = (ts.first(), vs.first())
        && usual > 0
        && t > origin_ms.saturating_add(usual / 2)
        && v.is_finite()
        && v > 0.0
    {
        out.push((t.saturating_sub(usual), t, v));
    }
    let mut last: Option<(i64, f64)> = None;
    for (&t, &v) in ts.iter().zip(vs) {
        if !v.is_finite() {
            continue;
        }
        if let Some((t0, v0)) = last {
            let inc = if v >= v0 { v - v0 } else { v };
            out.push((t0, t, inc));
        }
        last = Some((t, v));
    }
    out
}

/// The times at which a counter reset (its value fell).
pub fn resets(ts: &[i64], vs: &[f64]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut last: Option<f64> = None;
    for (&t, &v) in ts.iter().zip(vs) {
        if !v.is_finite() {
            continue;
        }
        if last.is_some_and(|l| v < l) {
            out.push(t);
        }
        last = Some(v);
    }
    out
}

/// The median gap between samples (0 for fewer than two).
pub fn usual_interval(ts: &[i64]) -> i64 {
    let mut gaps: Vec<i64> = ts.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    if gaps.is_empty() {
        return 0;
    }
    let mid = gaps.len() / 2;
    *gaps.select_nth_unstable(mid).1
}

/// A fraction in [0, 1) for the m-th of n calls in an interval: a
/// low-discrepancy sequence, so calls of every duration range are spread
/// over the whole interval instead of the fast ones first.
fn spread(m: usize) -> f64 {
    ((m as f64 + 0.5) * 0.618_033_988_749_894_9).fract()
}

/// The time of the m-th call in (t0, t1].
fn at(t0: i64, t1: i64, m: usize) -> i64 {
    let span = t1.saturating_sub(t0);
    t0.saturating_add((span as f64 * spread(m)) as i64 + 1)
        .min(t1)
}

/// The outcome shared by every call of one series.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub failed: bool,
    pub server_error: bool,
}

/// One histogram's bucket series, each `(upper bound, timestamps, values)`.
pub struct Buckets<'a> {
    pub bounds: Vec<(f64, &'a [i64], &'a [f64])>,
}

/// The calls a histogram's buckets counted, appended to `out`; returns how
/// many. `origin_ms` is where the data of the histogram's server starts
/// (see [`increases`]). Bounds that are not numbers must have been left out
/// by the caller.
pub fn calls_from_histogram(
    buckets: Buckets<'_>,
    outcome: Outcome,
    origin_ms: i64,
    out: &mut Vec<Call>,
) -> usize {
    let mut bounds = buckets.bounds;
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Duplicate bounds ("1" and "1.0") are one bucket: keep the first.
    bounds.dedup_by(|b, a| a.0 == b.0);
    if bounds.is_empty() {
        return 0;
    }
    // Every bucket's increases on the union of their timestamps: series of
    // one histogram are scraped together, but a missing one must not
    // shift the others.
    let mut times: Vec<i64> = bounds.iter().flat_map(|b| b.1.iter().copied()).collect();
    times.sort_unstable();
    times.dedup();
    let per_bucket: Vec<Vec<f64>> = bounds
        .iter()
        .map(|(_, ts, vs)| on_grid(&times, &increases(ts, vs, origin_ms)))
        .collect();
    let highest_finite = bounds
        .iter()
        .rev()
        .map(|b| b.0)
        .find(|b| b.is_finite())
        .unwrap_or(0.0);
    let before = out.len();
    let mut cumulative = vec![0.0f64; bounds.len()];
    for (k, &t1) in times.iter().enumerate() {
        // The interval ending at t1: each bucket's increase there, made
        // monotonic in the bound as Prometheus fixes buckets scraped
        // out of step.
        let mut top = 0.0f64;
        let mut any = false;
        for (i, b) in per_bucket.iter().enumerate() {
            let inc = b[k];
            any |= inc > 0.0;
            top = top.max(if inc.is_finite() { inc } else { 0.0 });
            cumulative[i] = top.round();
        }
        if !any {
            continue;
        }
        let t0 = interval_start(&bounds, &times, k, origin_ms);
        let mut m = 0usize;
        let mut below = 0.0f64;
        let mut lower = 0.0f64;
        for (i, &(upper, _, _)) in bounds.iter().enumerate() {
            let count = (cumulative[i] - below).max(0.0) as usize;
            below = cumulative[i];
            let (lo, hi) = if upper.is_finite() {
                (lower.min(upper), upper)
            } else {
                (highest_finite, highest_finite)
            };
            for j in 0..count {
                let seconds = lo + (j as f64 + 0.5) / count as f64 * (hi - lo);
                out.push(Call {
                    t: at(t0, t1, m),
                    seconds,
                    server_error: outcome.server_error,
                    failed: outcome.failed,
                });
                m += 1;
            }
            if upper.is_finite() {
                lower = upper;
            }
        }
    }
    out.len() - before
}

/// Where the interval ending at `times[k]` starts: the sample before it, or
/// for the first one, the usual interval before it.
fn interval_start(bounds: &[(f64, &[i64], &[f64])], times: &[i64], k: usize, origin: i64) -> i64 {
    if k > 0 {
        return times[k - 1];
    }
    let usual = bounds
        .iter()
        .map(|b| usual_interval(b.1))
        .max()
        .unwrap_or(0);
    times[0].saturating_sub(usual).max(origin.min(times[0]))
}

/// Increases placed on the grid of interval ends (0 where a series has none).
fn on_grid(times: &[i64], incs: &[(i64, i64, f64)]) -> Vec<f64> {
    let mut out = vec![0.0; times.len()];
    let mut k = 0;
    for &(_, t1, inc) in incs {
        while k < times.len() && times[k] < t1 {
            k += 1;
        }
        if k < times.len() && times[k] == t1 {
            out[k] += inc;
        }
    }
    out
}

/// The calls a counter (a histogram's `_count`, or a request counter)
/// counted, each with `seconds` from `mean` over its interval (NaN: no
/// duration known), appended to `out`; returns how many.
pub fn calls_from_counter(
    ts: &[i64],
    vs: &[f64],
    mean: impl Fn(i64, i64) -> f64,
    outcome: Outcome,
    origin_ms: i64,
    out: &mut Vec<Call>,
) -> usize {
    let before = out.len();
    for (t0, t1, inc) in increases(ts, vs, origin_ms) {
        let n = inc.round().max(0.0) as usize;
        let seconds = mean(t0, t1);
        for m in 0..n {
            out.push(Call {
                t: at(t0, t1, m),
                seconds,
                server_error: outcome.server_error,
                failed: outcome.failed,
            });
        }
    }
    out.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failed: false,
        server_error: false,
    };

    #[test]
    fn increases_are_reset_aware_and_count_a_new_series_from_zero() {
        let ts = [60_000, 120_000, 180_000, 240_000];
        let vs = [5.0, 8.0, 2.0, 4.0];
        // Present from the start: its first value is history, not an increase.
        assert_eq!(
            increases(&ts, &vs, 60_000),
            vec![
                (60_000, 120_000, 3.0),
                (120_000, 180_000, 2.0),
                (180_000, 240_000, 2.0)
            ]
        );
        // Created during the data: the first value counts too.
        assert_eq!(increases(&ts, &vs, 0)[0], (0, 60_000, 5.0));
        assert_eq!(resets(&ts, &vs), vec![180_000]);
    }

    #[test]
    fn bucket_increases_become_calls_inside_their_buckets() {
        let ts = [0, 60_000, 120_000];
        // le=0.1: 0 -> 10 -> 10; le=1: 0 -> 30 -> 40; +Inf: 0 -> 31 -> 42.
        let (b1, b2, inf) = ([0.0, 10.0, 10.0], [0.0, 30.0, 40.0], [0.0, 31.0, 42.0]);
        let mut calls = Vec::new();
        let n = calls_from_histogram(
            Buckets {
                bounds: vec![(f64::INFINITY, &ts, &inf), (0.1, &ts, &b1), (1.0, &ts, &b2)],
            },
            OK,
            0,
            &mut calls,
        );
        assert_eq!(n, 42);
        let first: Vec<&Call> = calls.iter().filter(|c| c.t <= 60_000).collect();
        assert_eq!(first.len(), 31);
        assert_eq!(first.iter().filter(|c| c.seconds <= 0.1).count(), 10);
        assert_eq!(
            first
                .iter()
                .filter(|c| c.seconds > 0.1 && c.seconds < 1.0)
                .count(),
            20
        );
        // The +Inf bucket's call gets the highest finite bound.
        assert_eq!(first.iter().filter(|c| c.seconds == 1.0).count(), 1);
        assert!(calls.iter().all(|c| c.t > 0 && c.t <= 120_000));
        // The second interval: 0 fast, 10 medium, 1 slow.
        let second: Vec<&Call> = calls.iter().filter(|c| c.t > 60_000).collect();
        assert_eq!(second.len(), 11);
        assert_eq!(second.iter().filter(|c| c.seconds <= 0.1).count(), 0);
    }

    #[test]
    fn buckets_out_of_step_are_made_monotonic() {
        let ts = [0, 60_000];
        // The lower bucket says 12, the higher 10: the lower one is capped
        // by nothing, the higher is raised to 12 (Prometheus's fix).
        let (b1, inf) = ([0.0, 12.0], [0.0, 10.0]);
        let mut calls = Vec::new();
        let n = calls_from_histogram(
            Buckets {
                bounds: vec![(0.5, &ts, &b1), (f64::INFINITY, &ts, &inf)],
            },
            OK,
            0,
            &mut calls,
        );
        assert_eq!(n, 12);
        assert!(calls.iter().all(|c| c.seconds <= 0.5));
    }

    #[test]
    fn counter_calls_carry_the_mean_or_no_duration() {
        let ts = [0, 60_000, 120_000];
        let vs = [0.0, 4.0, 1.0];
        let mut calls = Vec::new();
        assert_eq!(
            calls_from_counter(&ts, &vs, |_, _| f64::NAN, OK, 0, &mut calls),
            5
        );
        assert!(calls.iter().all(|c| c.seconds.is_nan()));
    }
}
