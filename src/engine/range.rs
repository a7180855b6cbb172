//! Functions over time, computed for every step of a grid at once.
//!
//! A window at step time `t` holds the samples with `t - offset - range < ts
//! <= t - offset` (open on the left, as in Prometheus 3). Windows move
//! forward monotonically with the steps, so each kernel walks two indices
//! over the samples instead of re-reading every window: prefix sums for
//! counts, sums and counter resets, monotone deques for min and max, and a
//! bitmap over value ranks with a moving cursor for exact quantiles over long
//! windows (`p95(x[1d])` at a 1m step would otherwise sort a day of calls
//! 1440 times a day). Results equal Prometheus's `*_over_time`, `rate`, `increase`,
//! `delta`, `deriv` and `changes` on the same samples.

use super::value::{Grid, StepSet, StepValue};
pub use crate::dsl::functions::TimeFunc;
use crate::stats::{fit, holt, quantile, robust};
use sliding_quantile::{Ranking, sliding_quantile};
use std::sync::OnceLock;

mod sliding_quantile;

/// Where the windows sit relative to the grid.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub grid: Grid,
    pub range_ms: i64,
    pub offset_ms: i64,
}

impl Span {
    /// The steps whose window can hold a sample between `first` and `last`.
    pub fn steps_touching(&self, first: i64, last: i64) -> std::ops::Range<usize> {
        let lo = self
            .grid
            .first_at_or_after(first.saturating_add(self.offset_ms));
        // Steps strictly before this time: `0..hi`.
        let hi = self.grid.first_at_or_after(
            last.saturating_add(self.offset_ms)
                .saturating_add(self.range_ms),
        );
        lo..hi.max(lo)
    }

    /// The offset and the range in grid steps, when both are whole steps.
    fn in_whole_steps(&self) -> Option<(i64, i64)> {
        let step = self.grid.step;
        if step <= 0 || self.range_ms % step != 0 || self.offset_ms % step != 0 {
            return None;
        }
        Some((self.offset_ms / step, self.range_ms / step))
    }

    /// For each step of `steps`, the index range of `ts` inside its window.
    fn windows(&self, ts: &[i64], steps: std::ops::Range<usize>) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(steps.len());
        let (mut lo, mut hi) = (0usize, 0usize);
        for k in steps {
            let end = self.grid.time(k).saturating_sub(self.offset_ms);
            let start = end.saturating_sub(self.range_ms);
            while hi < ts.len() && ts[hi] <= end {
                hi += 1;
            }
            while lo < hi && ts[lo] <= start {
                lo += 1;
            }
            out.push((lo, hi));
        }
        out
    }
}

/// A function's value at each step whose window holds samples: the first
/// step and the values from there ([`StepValue::NONE`] where a window is
/// empty or the function has no result). `threshold` gives `time_to` its threshold at a step.
pub fn over_time(
    func: TimeFunc,
    ts: &[i64],
    vs: &[f64],
    span: &Span,
    threshold: &dyn Fn(usize) -> Option<f64>,
) -> (usize, Vec<StepValue>) {
    over_time_shared(func, ts, vs, None, None, span, threshold)
}

/// What the functions over one series (a pooled group that several rules
/// read over different ranges) can share, computed on first use: the sample
/// counts at each grid step and the ranks of the values.
#[derive(Default)]
pub struct WindowCache {
    counts: OnceLock<Option<StepCounts>>,
    ranking: OnceLock<Ranking>,
}

/// [`over_time`] with what other calls over the same samples and grid
/// already computed in `cache`. With `needed`, the steps outside it may be
/// left empty: an enclosing `and` drops them anyway. Only the functions that
/// spend real work per step (quantiles, the general per-window path) use it.
pub fn over_time_shared(
    func: TimeFunc,
    ts: &[i64],
    vs: &[f64],
    cache: Option<&WindowCache>,
    needed: Option<&StepSet>,
    span: &Span,
    threshold: &dyn Fn(usize) -> Option<f64>,
) -> (usize, Vec<StepValue>) {
    let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
        return (0, Vec::new());
    };
    let steps = span.steps_touching(first, last);
    let start = steps.start;
    let counted = cache
        .and_then(|c| {
            c.counts
                .get_or_init(|| StepCounts::new(ts, span.grid))
                .as_ref()
        })
        .and_then(|counts| counts.windows(span, steps.clone()));
    let windows = counted.unwrap_or_else(|| span.windows(ts, steps.clone()));
    // Each window's value from its own samples: the functions without a
    // kernel over all windows, and those whose kernel the values defeat.
    // Every non-empty window a caller needs, as (lo, hi, step, its time).
    let each_window = |value: &dyn Fn(usize, usize, usize, i64) -> Option<f64>| -> Vec<StepValue> {
        windows
            .iter()
            .zip(steps.clone())
            .map(|(&(lo, hi), k)| {
                if hi <= lo || needed.is_some_and(|n| !n.contains(k)) {
                    return StepValue::NONE;
                }
                value(lo, hi, k, span.grid.time(k)).into()
            })
            .collect()
    };
    let per_window = || {
        each_window(&|lo, hi, k, t| {
            window_value(func, &ts[lo..hi], &vs[lo..hi], t, span, || threshold(k))
        })
    };
    let values: Vec<StepValue> = match func {
        TimeFunc::Count => windows
            .iter()
            .map(|&(lo, hi)| StepValue::when(hi > lo, || (hi - lo) as f64))
            .collect(),
        // An instant selector's newest sample: no call per step.
        TimeFunc::Last => windows
            .iter()
            .map(|&(lo, hi)| StepValue::when(hi > lo, || at_time_of(ts, vs, hi - 1, lo..hi)))
            .collect(),
        TimeFunc::First => windows
            .iter()
            .map(|&(lo, hi)| StepValue::when(hi > lo, || at_time_of(ts, vs, lo, lo..hi)))
            .collect(),
        TimeFunc::Sum | TimeFunc::Avg => match PrefixSums::new(vs) {
            Some(prefix) => windows
                .iter()
                .map(|&(lo, hi)| {
                    StepValue::when(hi > lo, || {
                        let s = prefix.between(lo, hi);
                        if func == TimeFunc::Avg {
                            s / (hi - lo) as f64
                        } else {
                            s
                        }
                    })
                })
                .collect(),
            None => per_window(),
        },
        TimeFunc::Min | TimeFunc::Max if !vs.iter().any(|v| v.is_nan()) => {
            sliding_extreme(vs, &windows, func == TimeFunc::Max)
        }
        // Windows that overlap a lot share the work of one ranking; windows
        // that hardly overlap (step >= range) are cheaper selected one by one.
        TimeFunc::Quantile(q)
            if vs.len() > 512
                && windows
                    .iter()
                    .map(|(lo, hi)| hi.saturating_sub(*lo))
                    .sum::<usize>()
                    > 4 * vs.len() =>
        {
            let own;
            let ranking = match cache {
                Some(c) => c.ranking.get_or_init(|| Ranking::new(vs)),
                None => {
                    own = Ranking::new(vs);
                    &own
                }
            };
            sliding_quantile(ranking, &windows, q, |i| {
                needed.is_none_or(|n| n.contains(start + i))
            })
        }
        // A counter's resets are found once for the whole series, not once
        // per window: over a window of days at a minute's step the per-window
        // walk is most of a burn-rate rule's time.
        TimeFunc::Rate | TimeFunc::Increase => {
            let drops: Vec<usize> = (1..vs.len()).filter(|&j| vs[j] < vs[j - 1]).collect();
            each_window(&|lo, hi, _, t| {
                // The pairs inside the window: (lo, lo+1) .. (hi-2, hi-1).
                let from = drops.partition_point(|&j| j <= lo);
                let resets = drops[from..]
                    .iter()
                    .take_while(|&&j| j < hi)
                    .map(|&j| vs[j - 1]);
                extrapolated_rate_after(&ts[lo..hi], &vs[lo..hi], t, span, func, resets)
            })
        }
        TimeFunc::Changes => {
            let mut prefix = Vec::with_capacity(vs.len() + 1);
            prefix.push(0u32);
            let mut n = 0u32;
            for i in 0..vs.len() {
                if i > 0 && changed(vs[i - 1], vs[i]) {
                    n += 1;
                }
                prefix.push(n);
            }
            // Changes count pairs inside the window: (lo, lo+1) .. (hi-2, hi-1).
            windows
                .iter()
                .map(|&(lo, hi)| StepValue::when(hi > lo, || (prefix[hi] - prefix[lo + 1]) as f64))
                .collect()
        }
        TimeFunc::TimeTo | TimeFunc::Predict(_) => {
            let models = holt::models_over_windows(ts, vs, &windows, |i| span.grid.time(start + i));
            models
                .into_iter()
                .zip(&windows)
                .zip(steps.clone())
                .map(|((model, &(lo, hi)), k)| -> Option<f64> {
                    let (level, slope) = model?;
                    match func {
                        TimeFunc::Predict(horizon) => Some(slope * horizon + level),
                        _ => Some(holt::time_to_from_model(
                            &vs[lo..hi],
                            level,
                            slope,
                            threshold(k)?,
                        )),
                    }
                })
                .map(StepValue::from)
                .collect()
        }
        TimeFunc::PresentRatio => {
            let interval = typical_interval(ts);
            windows
                .iter()
                .map(|&(lo, hi)| {
                    StepValue::when(hi > lo, || {
                        let expected = (span.range_ms as f64 / interval).max(1.0);
                        ((hi - lo) as f64 / expected).min(1.0)
                    })
                })
                .collect()
        }
        _ => per_window(),
    };
    (start, values)
}

/// The value at the time of sample `i`: a pooled group can hold several
/// samples of one millisecond (calls of two sessions), and then the largest
/// of them within `window` (in f64::total_cmp order, NaN only when all are)
/// stands for it. The order in which the group's members were merged,
/// which depends on how the store laid them out, then does not decide
/// `first` or `last`.
fn at_time_of(ts: &[i64], vs: &[f64], i: usize, window: std::ops::Range<usize>) -> f64 {
    let t = ts[i];
    let mut from = i;
    while from > window.start && ts[from - 1] == t {
        from -= 1;
    }
    let mut to = i + 1;
    while to < window.end && ts[to] == t {
        to += 1;
    }
    vs[from..to]
        .iter()
        .copied()
        .max_by(|a, b| (!a.is_nan()).cmp(&!b.is_nan()).then(a.total_cmp(b)))
        .unwrap_or(vs[i])
}

/// `count` at every step of a pooled group whose members are `runs`, each in
/// time order, without merging them: how many samples a window holds does
/// not depend on their order. `None` when the range or offset is not a
/// whole number of steps, or the runs are empty or defeat [`StepCounts`]:
/// the caller merges and walks.
pub fn count_of_runs(
    runs: &[&[i64]],
    cache: &WindowCache,
    span: &Span,
) -> Option<(usize, Vec<StepValue>)> {
    let counts = cache
        .counts
        .get_or_init(|| StepCounts::of_runs(runs, span.grid))
        .as_ref()?;
    let steps = span.steps_touching(counts.first_time, counts.last_time);
    Some((steps.start, counts.counts(span, steps)?))
}

/// One window's value, computed directly from its samples.
fn window_value(
    func: TimeFunc,
    ts: &[i64],
    vs: &[f64],
    t: i64,
    span: &Span,
    threshold: impl Fn() -> Option<f64>,
) -> Option<f64> {
    let n = vs.len();
    match func {
        TimeFunc::Count => Some(n as f64),
        TimeFunc::Sum => Some(vs.iter().sum()),
        TimeFunc::Avg => Some(mean(vs)),
        TimeFunc::Min => Some(min_skipping_nan(vs)),
        TimeFunc::Max => Some(max_skipping_nan(vs)),
        TimeFunc::Last => (n > 0).then(|| at_time_of(ts, vs, n - 1, 0..n)),
        TimeFunc::First => (n > 0).then(|| at_time_of(ts, vs, 0, 0..n)),
        TimeFunc::Stddev => Some(population_stddev(vs)),
        TimeFunc::Quantile(q) => Some(quantile::quantile_select(&mut vs.to_vec(), q)),
        TimeFunc::Rate | TimeFunc::Increase | TimeFunc::Delta => {
            extrapolated_rate(ts, vs, t, span, func)
        }
        TimeFunc::Deriv => fit::linear_fit(ts, vs, ts[0]).map(|(slope, _)| slope),
        TimeFunc::Changes => Some(vs.windows(2).filter(|w| changed(w[0], w[1])).count() as f64),
        TimeFunc::PresentRatio => None,
        TimeFunc::Predict(horizon) => holt::predict(ts, vs, t, horizon),
        TimeFunc::TimeTo => holt::time_to(ts, vs, t, threshold()?),
        TimeFunc::Anomaly => robust::anomaly_score(ts, vs),
        TimeFunc::Trend => fit::theil_sen(ts, vs),
    }
}

fn changed(a: f64, b: f64) -> bool {
    a != b && !(a.is_nan() && b.is_nan())
}

/// Prometheus's `extrapolatedRate`: the increase between the window's first
/// and last samples (counter resets added back for `rate` and `increase`),
/// extrapolated towards the window's edges when the samples reach close to
/// them, but never below a counter's zero.
fn extrapolated_rate(ts: &[i64], vs: &[f64], t: i64, span: &Span, func: TimeFunc) -> Option<f64> {
    // A counter's resets: the value before each fall, added back in order.
    let resets = vs
        .windows(2)
        .filter(|w| func != TimeFunc::Delta && w[1] < w[0])
        .map(|w| w[0]);
    extrapolated_rate_after(ts, vs, t, span, func, resets)
}

/// [`extrapolated_rate`] with the window's resets given (the value before
/// each fall, in time order), so that a caller over many windows finds
/// them once.
fn extrapolated_rate_after(
    ts: &[i64],
    vs: &[f64],
    t: i64,
    span: &Span,
    func: TimeFunc,
    resets: impl Iterator<Item = f64>,
) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let is_counter = func != TimeFunc::Delta;
    let mut result = vs[n - 1] - vs[0];
    for before in resets {
        result += before;
    }
    let range_end = t.saturating_sub(span.offset_ms);
    let range_start = range_end.saturating_sub(span.range_ms);
    let mut to_start = (ts[0] - range_start) as f64 / 1000.0;
    let to_end = (range_end - ts[n - 1]) as f64 / 1000.0;
    let sampled = (ts[n - 1] - ts[0]) as f64 / 1000.0;
    let avg_gap = sampled / (n - 1) as f64;
    if is_counter && result > 0.0 && vs[0] >= 0.0 {
        let to_zero = sampled * (vs[0] / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_gap / 2.0
    };
    let mut factor = interval / sampled;
    if func == TimeFunc::Rate {
        factor /= span.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// The smallest value, NaN only when every value is NaN (PromQL's `min` and
/// `min_over_time`). Shared with the aggregations across series.
pub(crate) fn min_skipping_nan(vs: &[f64]) -> f64 {
    vs.iter()
        .fold(f64::NAN, |m, &v| if v < m || m.is_nan() { v } else { m })
}

/// The largest value, NaN only when every value is NaN.
pub(crate) fn max_skipping_nan(vs: &[f64]) -> f64 {
    vs.iter()
        .fold(f64::NAN, |m, &v| if v > m || m.is_nan() { v } else { m })
}

/// The population standard deviation, as PromQL's `stddev` and `stddev_over_time`.
pub(crate) fn population_stddev(vs: &[f64]) -> f64 {
    let m = mean(vs);
    (vs.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vs.len() as f64).sqrt()
}

/// The mean, computed as Prometheus's `avg_over_time` does for large values:
/// a running mean when the plain sum would overflow.
pub(crate) fn mean(vs: &[f64]) -> f64 {
    let sum: f64 = vs.iter().sum();
    if sum.is_finite() || vs.iter().any(|v| !v.is_finite()) {
        return sum / vs.len() as f64;
    }
    let mut m = 0.0;
    for (i, v) in vs.iter().enumerate() {
        m += (v - m) / (i + 1) as f64;
    }
    m
}

/// The sums of every prefix of a series' values, each kept as an unevaluated
/// pair `hi + lo` (TwoSum), so that a window's sum, the difference of two
/// of them, is off by about n·ε²·Σ|v| rather than one float's n·ε·Σ|v|:
/// with one float per prefix, the last two of `[1e16, 1, 1]` summed to 0,
/// the values before the window having rounded them away. (Values more
/// than 2^106 apart, `[1e33, 1e17, 1]`, still lose the small ones.)
struct PrefixSums {
    sums: Vec<(f64, f64)>,
}

impl PrefixSums {
    /// `None` when a prefix could overflow (or a value is not finite): a
    /// window's sum is then not the difference of two prefixes (`inf - inf`
    /// is NaN where the window holds neither of the large values).
    fn new(vs: &[f64]) -> Option<PrefixSums> {
        let mut sums = Vec::with_capacity(vs.len() + 1);
        let (mut hi, mut lo) = (0.0f64, 0.0f64);
        // No prefix's magnitude exceeds the sum of the magnitudes: finite
        // when every value is and no partial sum overflows. NaN fails too.
        let mut magnitude = 0.0f64;
        sums.push((hi, lo));
        for &v in vs {
            magnitude += v.abs();
            let (s, e) = two_sum(hi, v);
            hi = s;
            lo += e;
            sums.push((hi, lo));
        }
        // Headroom for the TwoSum of two prefixes' difference.
        (magnitude < f64::MAX / 4.0).then_some(PrefixSums { sums })
    }

    /// The sum of the values at `lo..hi`.
    fn between(&self, lo: usize, hi: usize) -> f64 {
        let ((b_hi, b_lo), (a_hi, a_lo)) = (self.sums[hi], self.sums[lo]);
        let (d, e) = two_sum(b_hi, -a_hi);
        d + (e + (b_lo - a_lo))
    }
}

/// `a + b` as the rounded sum and its exact rounding error (Knuth's TwoSum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let b_virtual = s - a;
    let a_virtual = s - b_virtual;
    (s, (a - a_virtual) + (b - b_virtual))
}

/// The median spacing of a series' samples in ms (1m when it has one sample).
fn typical_interval(ts: &[i64]) -> f64 {
    if ts.len() < 2 {
        return 60_000.0;
    }
    let mut gaps: Vec<i64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return 60_000.0;
    }
    let mid = gaps.len() / 2;
    let (_, m, _) = gaps.select_nth_unstable(mid);
    *m as f64
}

/// Min or max of each window with a monotone deque of indices.
fn sliding_extreme(vs: &[f64], windows: &[(usize, usize)], max: bool) -> Vec<StepValue> {
    let mut deque = std::collections::VecDeque::new();
    let mut next = 0usize;
    let better = |a: f64, b: f64| if max { a >= b } else { a <= b };
    windows
        .iter()
        .map(|&(lo, hi)| {
            while next < hi {
                while let Some(&back) = deque.back() {
                    if better(vs[next], vs[back]) {
                        deque.pop_back();
                    } else {
                        break;
                    }
                }
                deque.push_back(next);
                next += 1;
            }
            while let Some(&front) = deque.front() {
                if front < lo {
                    deque.pop_front();
                } else {
                    break;
                }
            }
            StepValue::when(hi > lo, || vs[deque[0]])
        })
        .collect()
}

/// How many of a series' samples lie at or before each grid time (the grid
/// extended to cover the samples). A window whose range and offset are
/// whole steps then has its bounds at two of those counts: no walk over
/// the samples per call.
struct StepCounts {
    /// The times of the first and the last sample.
    first_time: i64,
    last_time: i64,
    /// Grid step (possibly negative) of `at_or_before[0]`.
    first_step: i64,
    at_or_before: Vec<u32>,
    len: usize,
}

impl StepCounts {
    /// The counts of one series' samples: see [`StepCounts::of_runs`].
    fn new(ts: &[i64], grid: Grid) -> Option<StepCounts> {
        Self::of_runs(&[ts], grid)
    }

    /// The counts of the samples of several runs, each in time order, as if
    /// they were merged into one series: how many samples lie at or before a
    /// time does not depend on how the runs interleave. `None` when a run is
    /// out of time order (the counts would not stand for index positions;
    /// the walk over the samples decides), when the samples span far more
    /// steps than they number (a sparse series on a fine grid: walking the
    /// samples is cheaper), or when [`StepDivider`] cannot be exact (steps of
    /// weeks over years).
    fn of_runs(runs: &[&[i64]], grid: Grid) -> Option<StepCounts> {
        // Time order is checked in the counting pass below: a pass of its
        // own over the pooled members' samples cost a third as much again.
        let first = runs.iter().filter_map(|r| r.first()).min()?;
        let last = runs.iter().filter_map(|r| r.last()).max()?;
        let len: usize = runs.iter().map(|r| r.len()).sum();
        let step_of = StepOf::new(grid);
        let (first_time, last_time) = (*first, *last);
        let (lo, hi) = (
            step_of.at_or_after(first_time)?,
            step_of.at_or_after(last_time)?,
        );
        let span = usize::try_from(hi.checked_sub(lo)?).ok()?.checked_add(1)?;
        if span > 4 * (len + grid.n) || len > u32::MAX as usize {
            return None;
        }
        // Every sample lies after the time of step lo - 1 and at or before
        // that of step hi, so its step, counted from lo, is in 0..span.
        let before = step_of.time(lo.checked_sub(1)?)?;
        let divider = StepDivider::new(
            u64::try_from(step_of.step).ok()?,
            u64::try_from(last_time.checked_sub(before)?).ok()?,
        )?;
        let mut at_or_before = vec![0u32; span];
        for run in runs {
            // One multiplication and one increment per sample, no branch on
            // whether it starts a new step (a coin toss for calls a few
            // seconds apart at a 1m step). Out of order, `first` and `last`
            // need not bound the run: its times then wrap instead of
            // overflowing, and the counts are dropped.
            let mut in_order = true;
            let mut previous = i64::MIN;
            for &t in run.iter() {
                in_order &= previous <= t;
                previous = t;
                let k = divider.quotient(t.wrapping_sub(before).wrapping_sub(1) as u64);
                *at_or_before.get_mut(k)? += 1;
            }
            if !in_order {
                return None;
            }
        }
        let mut total = 0u32;
        for c in &mut at_or_before {
            total += *c;
            *c = total;
        }
        Some(StepCounts {
            first_time,
            last_time,
            first_step: lo,
            at_or_before,
            len,
        })
    }

    /// How many samples lie at or before each of the `len` grid steps from
    /// `first`: zeros before the counted steps, the counts, then the total
    /// after them.
    fn at_steps(&self, first: i64, len: usize) -> Option<Vec<u32>> {
        let total = u32::try_from(self.len).ok()?;
        let mut at = Vec::with_capacity(len);
        // Steps before the first counted one, and how far into the counts the
        // rest begins.
        let before =
            usize::try_from(self.first_step.saturating_sub(first).clamp(0, len as i64)).ok()?;
        let skip = usize::try_from(first.saturating_sub(self.first_step).max(0)).ok()?;
        at.resize(before, 0);
        let counted = self.at_or_before.get(skip.min(self.at_or_before.len())..)?;
        at.extend_from_slice(&counted[..counted.len().min(len - before)]);
        at.resize(len, total);
        Some(at)
    }

    /// The counts at or before every step from the first window's start to
    /// the last window's end, laid out once, and the range in steps: the
    /// window at `steps.start + i` is then entries `i` and `i + range`.
    /// `None` unless the span's range and offset are whole grid steps.
    fn bounds(&self, span: &Span, steps: std::ops::Range<usize>) -> Option<(Vec<u32>, usize)> {
        let (back, range) = span.in_whole_steps()?;
        let range = usize::try_from(range).ok()?;
        let first = (steps.start as i64)
            .checked_sub(back)?
            .checked_sub(range as i64)?;
        let len = steps.len().checked_add(range)?;
        Some((self.at_steps(first, len)?, range))
    }

    /// The windows of `span` at `steps`, when its range and offset are whole
    /// grid steps.
    fn windows(&self, span: &Span, steps: std::ops::Range<usize>) -> Option<Vec<(usize, usize)>> {
        let (at, range) = self.bounds(span, steps)?;
        Some(
            at[range..]
                .iter()
                .zip(&at)
                .map(|(&hi, &lo)| (lo as usize, hi as usize))
                .collect(),
        )
    }

    /// How many samples each window of `span` at `steps` holds (none for an
    /// empty one), when its range and offset are whole grid steps.
    fn counts(&self, span: &Span, steps: std::ops::Range<usize>) -> Option<Vec<StepValue>> {
        let (at, range) = self.bounds(span, steps)?;
        Some(
            at[range..]
                .iter()
                .zip(&at)
                .map(|(hi, lo)| StepValue::when(hi > lo, || (hi - lo) as f64))
                .collect(),
        )
    }
}

/// `u / step` (floor) by a multiplication with a precomputed reciprocal,
/// for every `u` below a bound. With `m = ceil(2^64 / step)` the error of
/// `u * m / 2^64` against `u / step` is below `u / 2^64`, which stays under
/// the `1 / step` that the fraction of `u / step` leaves to the next whole
/// number as long as `u * step < 2^64`.
struct StepDivider {
    reciprocal: u64,
    /// A step of 1: the quotient is `u`.
    unit: bool,
}

impl StepDivider {
    /// `None` when `step` is 0 or some `u <= max` could round wrong.
    fn new(step: u64, max: u64) -> Option<StepDivider> {
        if step == 0 {
            return None;
        }
        if step == 1 {
            return Some(StepDivider {
                reciprocal: 0,
                unit: true,
            });
        }
        max.checked_add(1)?.checked_mul(step)?;
        Some(StepDivider {
            // step >= 2: at most 2^63.
            reciprocal: (u64::MAX / step).checked_add(1)?,
            unit: false,
        })
    }

    fn quotient(&self, u: u64) -> usize {
        if self.unit {
            return u as usize;
        }
        ((u128::from(u) * u128::from(self.reciprocal)) >> 64) as usize
    }
}

/// The first grid step at or after a time (possibly before the grid's first).
struct StepOf {
    start: i64,
    step: i64,
}

impl StepOf {
    fn new(grid: Grid) -> StepOf {
        StepOf {
            start: grid.start,
            step: grid.step.max(1),
        }
    }

    fn at_or_after(&self, t: i64) -> Option<i64> {
        let d = t.checked_sub(self.start)?;
        Some(d.div_euclid(self.step) + i64::from(d.rem_euclid(self.step) != 0))
    }

    /// The time of step `k`.
    fn time(&self, k: i64) -> Option<i64> {
        k.checked_mul(self.step)?.checked_add(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(range_ms: i64) -> Span {
        Span {
            grid: Grid::range(0, 3_600_000, 60_000),
            range_ms,
            offset_ms: 0,
        }
    }

    /// Every fast path equals the direct computation on the same windows.
    #[test]
    fn fast_paths_match_direct_windows() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        let mut t = 0i64;
        for _ in 0..2000 {
            t += (next() * 4000.0) as i64;
            ts.push(t);
            vs.push((next() * 100.0).round());
        }
        let sp = span(300_000);
        let cache = WindowCache::default();
        for func in [
            TimeFunc::Count,
            TimeFunc::Sum,
            TimeFunc::Avg,
            TimeFunc::Min,
            TimeFunc::Max,
            TimeFunc::Quantile(0.95),
            TimeFunc::Quantile(0.5),
            TimeFunc::Changes,
            TimeFunc::Last,
            TimeFunc::First,
        ] {
            let (start, fast) = over_time(func, &ts, &vs, &sp, &|_| None);
            // One cache across the functions, as a pooled group shares it.
            let shared = over_time_shared(func, &ts, &vs, Some(&cache), None, &sp, &|_| None);
            let bits = |v: &[StepValue]| {
                v.iter()
                    .map(|x| x.get().map(f64::to_bits))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                (shared.0, bits(&shared.1)),
                (start, bits(&fast)),
                "{func:?} shared"
            );
            let windows = sp.windows(&ts, start..start + fast.len());
            for (i, &(lo, hi)) in windows.iter().enumerate() {
                let direct = (hi > lo)
                    .then(|| {
                        window_value(
                            func,
                            &ts[lo..hi],
                            &vs[lo..hi],
                            sp.grid.time(start + i),
                            &sp,
                            || None,
                        )
                    })
                    .flatten();
                match (fast[i].get(), direct) {
                    (Some(a), Some(b)) => assert!(
                        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                        "{func:?} step {i}: {a} vs {b}"
                    ),
                    (a, b) => assert_eq!(a, b, "{func:?} step {i}"),
                }
            }
        }
    }

    /// A value's bits, or `None` for any NaN: Rust leaves the sign and
    /// payload of a NaN that arithmetic produces unspecified, and an
    /// optimised build may give another one than a debug build.
    fn bits_or_nan(v: f64) -> Option<u64> {
        (!v.is_nan()).then(|| v.to_bits())
    }

    /// The ranked path's quantiles equal, bit for bit (NaN for NaN), sorting
    /// each window (Prometheus's order) and interpolating between neighbours.
    fn assert_ranked_quantiles(vs: &[f64], windows: &[(usize, usize)], qs: &[f64]) {
        for &q in qs {
            let fast = sliding_quantile(&Ranking::new(vs), windows, q, |_| true);
            for (&(lo, hi), got) in windows.iter().zip(&fast) {
                let mut w = vs[lo..hi].to_vec();
                w.sort_by(quantile::quantile_order);
                let want = w.len().checked_sub(1).map(|last| {
                    let r = q * last as f64;
                    let lower = r.floor() as usize;
                    let f = r - r.floor();
                    w[lower] * (1.0 - f) + w[(lower + 1).min(last)] * f
                });
                assert_eq!(
                    got.get().map(bits_or_nan),
                    want.map(bits_or_nan),
                    "q {q} window {lo}..{hi}"
                );
            }
            // Asked for some windows only (single ones and long stretches
            // skipped), it gives the same values there and nothing elsewhere.
            let needed = |i: usize| (i / 7) % 3 != 1 && i % 5 != 2;
            let some = sliding_quantile(&Ranking::new(vs), windows, q, needed);
            for (i, (got, all)) in some.iter().zip(&fast).enumerate() {
                let want = if needed(i) { all.get() } else { None };
                assert_eq!(
                    got.get().map(bits_or_nan),
                    want.map(bits_or_nan),
                    "q {q} window {i}"
                );
            }
        }
    }

    /// A pooled group's first and last at a millisecond that several of its
    /// samples share do not depend on the order its members were merged in.
    #[test]
    fn first_and_last_at_a_shared_millisecond_ignore_the_merge_order() {
        let ts = [0, 60_000, 60_000, 120_000, 120_000, 120_000];
        let sp = Span {
            grid: Grid::range(120_000, 180_000, 60_000),
            range_ms: 90_000,
            offset_ms: 0,
        };
        let mut got = Vec::new();
        for vs in [
            [1.0, 2.0, 5.0, 7.0, 9.0, 8.0],
            [1.0, 5.0, 2.0, 9.0, 8.0, 7.0],
            [1.0, 2.0, 5.0, 8.0, 7.0, 9.0],
        ] {
            let value = |func| {
                let (_, v) = over_time(func, &ts, &vs, &sp, &|_| None);
                v.iter().map(|x| x.get()).collect::<Vec<_>>()
            };
            got.push((value(TimeFunc::First), value(TimeFunc::Last)));
        }
        // At 2m the window (30s, 2m] starts at 1m's pair; at 3m, (1m30s, 3m]
        // holds only 2m's three.
        let want = (vec![Some(5.0), Some(9.0)], vec![Some(9.0), Some(9.0)]);
        assert!(got.iter().all(|g| *g == want), "{got:?}");
    }

    /// A window's sum and mean are its own samples' for values up to 2^53
    /// apart from those before it: large values before the window neither
    /// round its samples away nor, near f64::MAX, turn it into `inf - inf`.
    #[test]
    fn sums_over_windows_survive_large_values_before_them() {
        let ts: Vec<i64> = (0..5).map(|i| i * 60_000).collect();
        let cases: [(&[f64], [f64; 3]); 4] = [
            // The window [1m] at 2m, 3m and 4m holds one sample each.
            (&[1e16, 1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
            (&[1e308, 1e308, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
            (&[-1e308, f64::MAX, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
            (&[1e300, -1e300, 0.25, 0.5, 0.125], [0.25, 0.5, 0.125]),
        ];
        let sp = Span {
            grid: Grid::range(120_000, 240_000, 60_000),
            range_ms: 60_000,
            offset_ms: 0,
        };
        for (vs, want) in cases {
            for func in [TimeFunc::Sum, TimeFunc::Avg] {
                let (start, got) = over_time(func, &ts, vs, &sp, &|_| None);
                let got: Vec<Option<f64>> = got.iter().map(|v| v.get()).collect();
                assert_eq!(start, 0, "{func:?} over {vs:?}");
                assert_eq!(got, want.map(Some), "{func:?} over {vs:?}");
            }
        }
        // Two samples at a time after 1e16: their own sums, exactly.
        let sp = Span {
            range_ms: 120_000,
            ..sp
        };
        let (_, got) = over_time(
            TimeFunc::Sum,
            &ts,
            &[1e16, 1.0, 1.0, 2.0, 3.0],
            &sp,
            &|_| None,
        );
        let got: Vec<Option<f64>> = got.iter().map(|v| v.get()).collect();
        assert_eq!(got, vec![Some(2.0), Some(3.0), Some(5.0)]);
    }

    /// The divider's quotient is the floor of the division at the edges of
    /// every step and at random points, for steps from 1 ms to weeks, up to
    /// the bound it accepts; beyond that it declines.
    #[test]
    fn step_divider_is_exact_up_to_its_bound() {
        let mut next = draws(5);
        for step in [
            1u64,
            2,
            3,
            7,
            1000,
            60_000,
            86_400_000,
            604_800_000,
            7_000_000_007,
        ] {
            let max = (u64::MAX / step).saturating_sub(1).min(1 << 50);
            let d = StepDivider::new(step, max).expect("within the bound");
            let mut us: Vec<u64> = (0..2000)
                .map(|_| (next(1 << 31) << 31 | next(1 << 31)) % (max + 1))
                .collect();
            for k in [0u64, 1, 2, 1000, max / step] {
                for delta in [-1i64, 0, 1] {
                    us.push((k * step).saturating_add_signed(delta).min(max));
                }
            }
            us.push(max);
            for u in us {
                assert_eq!(d.quotient(u), (u / step) as usize, "{u} / {step}");
            }
            if step > 1 {
                assert!(StepDivider::new(step, u64::MAX / step).is_none());
            }
        }
        assert!(StepDivider::new(0, 10).is_none());
    }

    /// A seeded LCG: each call draws a number below its argument.
    fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |m| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        }
    }

    /// Windows read off the step counts are the windows the two-pointer walk
    /// finds, for ranges and offsets in whole steps, samples before, inside
    /// and after the grid, and bursts of samples in one step.
    #[test]
    fn step_counts_give_the_walked_windows() {
        let mut next = draws(7);
        let grid = Grid::range(3_600_000, 3 * 3_600_000, 60_000);
        let mut t = 0i64;
        let ts: Vec<i64> = (0..5000)
            .map(|_| {
                t += [0, 1, 59_999, 60_000, 60_001][next(5) as usize] * next(3) as i64;
                t
            })
            .collect();
        let counts = StepCounts::new(&ts, grid).expect("dense enough");
        for (range_ms, offset_ms) in [
            (60_000, 0),
            (300_000, 0),
            (3_600_000, 1_800_000),
            (86_400_000, 60_000),
        ] {
            let span = Span {
                grid,
                range_ms,
                offset_ms,
            };
            let steps = span.steps_touching(ts[0], ts[ts.len() - 1]);
            assert_eq!(
                counts.windows(&span, steps.clone()),
                Some(span.windows(&ts, steps)),
                "range {range_ms} offset {offset_ms}"
            );
        }
        // The counts laid out over any stretch of steps, inside, across or
        // past either end of the counted ones.
        let (lo, hi) = (
            counts.first_step,
            counts.first_step + counts.at_or_before.len() as i64,
        );
        for (first, len) in [
            (lo - 10, 5),
            (lo - 10, 10),
            (lo - 3, 200),
            (lo, 0),
            (lo + 7, 30),
            (lo - 5, (hi - lo) as usize + 20),
            (hi - 4, 9),
            (hi + 2, 3),
        ] {
            // Samples at or before each step, one step at a time.
            let walked: Vec<u32> = (0..len as i64)
                .map(|i| match (first + i).checked_sub(counts.first_step) {
                    Some(k) if k >= 0 => counts
                        .at_or_before
                        .get(k as usize)
                        .map_or(counts.len as u32, |c| *c),
                    _ => 0,
                })
                .collect();
            assert_eq!(
                counts.at_steps(first, len),
                Some(walked),
                "{len} steps from {first}"
            );
        }
        let mut shuffled = ts.clone();
        shuffled.swap(0, 4000);
        assert!(
            StepCounts::new(&shuffled, grid).is_none(),
            "out of order: walk"
        );
        let mut neighbours = ts.clone();
        neighbours.swap(2000, 2100);
        assert!(
            StepCounts::new(&neighbours, grid).is_none(),
            "out of order within the span: walk"
        );
        for extreme in [i64::MIN, i64::MAX] {
            let mut far = ts.clone();
            far[3000] = extreme;
            assert!(
                StepCounts::new(&far, grid).is_none(),
                "a time at {extreme} amid the run: walk"
            );
        }
        let odd = Span {
            grid,
            range_ms: 90_000,
            offset_ms: 0,
        };
        assert_eq!(
            counts.windows(&odd, 0..grid.n),
            None,
            "a range of 1.5 steps walks"
        );
    }

    /// Values that share the upper half of their order key (they differ
    /// in the last mantissa bits only), copies of them and specials, in
    /// scrambled order: the ranking's values are the values sorted in
    /// Prometheus's order, and each sample's rank points at its own value.
    #[test]
    fn ranking_orders_values_that_differ_only_in_their_low_bits() {
        let mut next = draws(11);
        let bases = [1.0f64, -3.5, 1e-300, -0.0, 0.0, 7.25e12];
        let mut vs: Vec<f64> = (0..5000)
            .map(|_| {
                let base = bases[next(bases.len() as u64) as usize];
                // The low 20 bits of the mantissa only: the upper 32 bits stay.
                f64::from_bits(base.to_bits() ^ next(1 << 20))
            })
            .collect();
        vs.extend([
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            1.0,
        ]);
        let ranking = Ranking::new(&vs);
        let mut want = vs.clone();
        want.sort_by(quantile::quantile_order);
        let bits = |v: &[f64]| v.iter().map(|&x| bits_or_nan(x)).collect::<Vec<_>>();
        assert_eq!(bits(&ranking.sorted), bits(&want));
        for (i, &r) in ranking.rank.iter().enumerate() {
            assert_eq!(bits_or_nan(ranking.sorted[r as usize]), bits_or_nan(vs[i]));
        }
        let mut ranks = ranking.rank.clone();
        ranks.sort_unstable();
        assert!(ranks.iter().enumerate().all(|(i, &r)| r as usize == i));
        let windows: Vec<(usize, usize)> = (0..vs.len()).step_by(37).map(|i| (i / 2, i)).collect();
        assert_ranked_quantiles(&vs, &windows, &[0.0, 0.3, 0.95, 1.0]);
    }

    /// The ranked quantile path orders NaN (first, either sign), signed
    /// zeros and infinities as Prometheus does: bit for bit what sorting
    /// each window and interpolating as it does gives.
    #[test]
    fn sliding_quantiles_rank_special_values_in_prometheus_order() {
        let specials = [
            f64::NAN,
            -0.0,
            0.0,
            1.0,
            f64::NEG_INFINITY,
            f64::INFINITY,
            2.5,
            -f64::NAN,
        ];
        let vs: Vec<f64> = (0..3000usize)
            .map(|i| specials[(i * 7 + i / 5) % specials.len()])
            .collect();
        let windows: Vec<(usize, usize)> = (0..2900).step_by(7).map(|lo| (lo, lo + 97)).collect();
        assert_ranked_quantiles(&vs, &windows, &[0.0, 0.1, 0.5, 0.95, 1.0]);
    }

    /// The rank cursor follows windows that creep, jump far ahead, empty
    /// out and refill, over values with many ties and a spread of scales.
    #[test]
    fn sliding_quantile_follows_windows_that_jump_and_empty() {
        let mut next = draws(99);
        let n = 20_000usize;
        let vs: Vec<f64> = (0..n)
            .map(|i| match next(4) {
                0 => next(5) as f64,
                1 => (next(1_000_000) as f64).powi(2) * if i % 2 == 0 { 1.0 } else { -1.0 },
                _ => next(1000) as f64 / 7.0 + (i / 4000) as f64 * 1e3,
            })
            .collect();
        let mut windows = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        while hi < n {
            match next(10) {
                0 => hi = (hi + next(3000) as usize).min(n), // a jump ahead
                1 => lo = hi,                                // emptied
                _ => hi = (hi + next(4) as usize).min(n),
            }
            lo = (lo + next(4) as usize).min(hi);
            if next(20) == 0 {
                lo = hi.saturating_sub(next(50) as usize).max(lo);
            }
            windows.push((lo, hi));
        }
        assert_ranked_quantiles(&vs, &windows, &[0.0, 0.01, 0.5, 0.95, 0.999, 1.0]);
        // φ outside [0, 1]: Prometheus's constant for every window with samples.
        let ranking = Ranking::new(&vs);
        for (q, want) in [
            (f64::NAN, f64::NAN),
            (-0.5, f64::NEG_INFINITY),
            (1.5, f64::INFINITY),
        ] {
            let got = sliding_quantile(&ranking, &windows, q, |_| true);
            for (&(lo, hi), got) in windows.iter().zip(&got) {
                let want = (hi > lo).then_some(bits_or_nan(want));
                assert_eq!(got.get().map(bits_or_nan), want, "q {q} window {lo}..{hi}");
            }
        }
    }

    #[test]
    fn windows_are_open_on_the_left() {
        let ts = [0, 60_000, 120_000, 180_000];
        let vs = [1.0, 2.0, 3.0, 4.0];
        let sp = Span {
            grid: Grid::instant(180_000),
            range_ms: 120_000,
            offset_ms: 0,
        };
        let (_, v) = over_time(TimeFunc::Count, &ts, &vs, &sp, &|_| None);
        assert_eq!(v, vec![Some(2.0)]);
    }

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // 0, 10, ..., 100 every minute; rate over 5m at 10m30s: samples 6m..10m.
        let ts: Vec<i64> = (0..=10).map(|i| i * 60_000).collect();
        let vs: Vec<f64> = (0..=10).map(|i| i as f64 * 10.0).collect();
        let sp = Span {
            grid: Grid::instant(630_000),
            range_ms: 300_000,
            offset_ms: 0,
        };
        let (_, v) = over_time(TimeFunc::Increase, &ts, &vs, &sp, &|_| None);
        // 40 over 4 minutes sampled, extended by 30s at each end (half a gap
        // at the start is 30s, 30s to the end < 1.1 gaps): 40 * 300/240.
        assert!((v[0].get().unwrap() - 50.0).abs() < 1e-9, "{v:?}");
    }
}
