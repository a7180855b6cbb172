//! Robust statistics for the rule engine and the analyzer: median, MAD and
//! robust z-scores (the language's `anomaly`), Prometheus-style quantiles
//! over sorted samples, and change points for level shifts (a latency
//! regression after a deploy).
//!
//! Everything here is a pure function over slices that never panics: NaN
//! samples are ignored where a statistic of "the values" is asked for, empty
//! input gives `None` (or NaN where Prometheus gives NaN), and infinities are
//! ordered like any other number.
//!
//! Rules chosen here (and what the README's language section quotes):
//!
//! - [`robust_z`] when the MAD is 0: 0 if the sample equals the median,
//!   otherwise ±∞ (no spread at all, so any deviation is infinitely unusual).
//! - [`anomaly_score`] avoids that ∞ where it can: when more than half the
//!   range holds one value (MAD 0) it scales by the mean absolute deviation
//!   times 1.2533 instead (Iglewicz and Hoaglin's fallback, which estimates σ
//!   for normal data as 1.4826·MAD does). Only when every sample in the range
//!   is identical is the scale 0, and then the newest sample equals the
//!   median and scores 0.
//! - [`change_points`] is PELT with a squared-error (mean shift) cost, run
//!   after a Hampel filter (3σ̂ about a running median) so that spikes cannot
//!   open a segment. The default penalty is 3·ln(n)·σ̂² (the leading term of
//!   MBIC, the default of R's `changepoint`; plain BIC's 2·ln(n) finds too
//!   many changes in noise), with σ̂ estimated from the MAD of first
//!   differences (which the level shifts it looks for do not inflate).

/// Scales a MAD to the standard deviation of normally distributed data.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Scales a mean absolute deviation to the standard deviation of normally
/// distributed data (sqrt(pi/2)); the fallback scale when the MAD is 0.
pub const MEAN_AD_TO_SIGMA: f64 = 1.2533;

/// A range counts as seasonal for [`anomaly_score`] when it covers this much.
pub const SEASONAL_MIN_SPAN_MS: i64 = 2 * DAY_MS;

const DAY_MS: i64 = 86_400_000;

/// At most this many grid points per day go into the daily decomposition:
/// ten-minute resolution is plenty for a daily profile and keeps STL cheap.
const MAX_DAILY_BINS: usize = 144;

/// Fewer grid points per day than this cannot describe a daily shape.
const MIN_DAILY_BINS: usize = 4;

/// Robustness iterations of STL (stlrs defaults to 15); the weights settle
/// within a few, and the call runs per series per evaluation step.
const STL_ROBUST_LOOPS: usize = 5;

/// The seasonal fit uses at most the newest fourteen days of a long range.
const MAX_SEASONAL_GRID: usize = MAX_DAILY_BINS * 14;

/// STL's input, in robust standard deviations from the series' median, is
/// clipped to ±this. stlrs works in f32 and panics (it sorts residuals with
/// `partial_cmp().unwrap()`) once a NaN appears, which an infinite input or
/// a sum past f32::MAX (3.4e38) produces. Its running sums also carry a
/// spike's rounding error (2^-24 of its size) to every point after it; at
/// 1e9 that is below one unit of spread. A point this far out is an
/// outlier whatever its exact size and robust STL gives it no weight; its
/// own score is computed in f64 from the unclipped value.
const STL_CLIP: f64 = 1e9;

/// Robust STL (stlrs) of `scaled`, or `None` where it cannot run: a series of
/// fewer than two periods, a period under 2, a value that is not finite or
/// is beyond ±[`STL_CLIP`] (the callers clip), or a result that is not
/// finite. These are all the inputs on which stlrs can panic or index out of
/// bounds (an empty series with period 0 underflows its index arithmetic).
fn robust_stl(scaled: &[f32], period: usize) -> Option<stlrs::StlResult> {
    if period < 2 || scaled.len() < period.saturating_mul(2) {
        return None;
    }
    if scaled
        .iter()
        .any(|v| !v.is_finite() || f64::from(v.abs()) > STL_CLIP)
    {
        return None;
    }
    let fit = stlrs::params()
        .robust(true)
        .outer_loops(STL_ROBUST_LOOPS)
        .fit(scaled, period)
        .ok()?;
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    (fit.seasonal().len() == scaled.len() && finite(fit.seasonal()) && finite(fit.trend()))
        .then_some(fit)
}

/// `values` as STL's input: centred, scaled, clipped to ±[`STL_CLIP`] and
/// in f32. NaN stays NaN (and keeps STL from running).
fn stl_input(values: &[f64], centre: f64, scale: f64) -> Vec<f32> {
    values
        .iter()
        .map(|v| (((v - centre) / scale).clamp(-STL_CLIP, STL_CLIP)) as f32)
        .collect()
}

/// Median of `buf`, reordering it. `buf` must be non-empty and hold no NaN.
fn median_in_place(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    let mid = n / 2;
    let (left, m, _) = buf.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        upper
    } else {
        // The lower middle is the largest element left of the partition point.
        let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        midpoint(lower, upper)
    }
}

/// (a + b) / 2 without overflowing for huge values of the same sign.
fn midpoint(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s.is_finite() {
        s / 2.0
    } else {
        a / 2.0 + b / 2.0
    }
}

fn non_nan(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// The median of the values, NaNs ignored; `None` when nothing is left.
/// Between the two middle values of an even count it takes their mean.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut buf = non_nan(values);
    if buf.is_empty() {
        return None;
    }
    Some(median_in_place(&mut buf))
}

/// The raw median absolute deviation from the median, NaNs ignored.
pub fn mad(values: &[f64]) -> Option<f64> {
    let mut buf = non_nan(values);
    if buf.is_empty() {
        return None;
    }
    let med = median_in_place(&mut buf);
    Some(mad_about(&mut buf, med))
}

/// The MAD scaled by [`MAD_TO_SIGMA`]: an estimate of the standard deviation
/// that a few outliers cannot move.
pub fn mad_scaled(values: &[f64]) -> Option<f64> {
    mad(values).map(|m| m * MAD_TO_SIGMA)
}

/// MAD of `buf` about `med`, overwriting `buf` with the absolute deviations.
fn mad_about(buf: &mut [f64], med: f64) -> f64 {
    for v in buf.iter_mut() {
        *v = (*v - med).abs();
    }
    median_in_place(buf)
}

/// Robust z-score of `x`: (x − median) / (1.4826 · mad), `mad` being the raw
/// MAD. When `mad` is 0 the values had no spread: `x` equal to the median
/// scores 0, anything else ±∞ in the direction of the deviation. NaN in, NaN
/// out; a negative MAD is meaningless and gives NaN.
pub fn robust_z(x: f64, median: f64, mad: f64) -> f64 {
    if x.is_nan() || median.is_nan() || mad.is_nan() || mad < 0.0 {
        return f64::NAN;
    }
    let d = x - median;
    if mad == 0.0 {
        return if d == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(d)
        };
    }
    d / (MAD_TO_SIGMA * mad)
}

/// Score of `x` against the values in `buf` (consumed as scratch): robust z
/// with the mean-absolute-deviation fallback described in the module docs.
fn score_against(buf: &mut [f64], x: f64) -> f64 {
    let med = median_in_place(buf);
    let raw_mad = mad_about(buf, med);
    if raw_mad > 0.0 {
        return robust_z(x, med, raw_mad);
    }
    // More than half the range sits on one value. The deviations of the rest
    // still say how unusual a departure is; `buf` now holds |v - med|.
    let mean_ad = buf.iter().sum::<f64>() / buf.len() as f64;
    if mean_ad > 0.0 && mean_ad.is_finite() {
        (x - med) / (MEAN_AD_TO_SIGMA * mean_ad)
    } else {
        robust_z(x, med, 0.0)
    }
}

/// The robust z-score of the newest sample (the last one) against all
/// samples of the range, itself included: the language's `anomaly(range)`.
///
/// When the range covers at least two days ([`SEASONAL_MIN_SPAN_MS`]; the
/// samples' span plus one median sampling interval), a daily seasonal
/// component is estimated first and removed from every sample, so the
/// evening peak of a daily cycle is not an anomaly but a spike at the quiet
/// time of day is. The estimate is robust STL (stlrs, period one day) over
/// the range without its newest sample, resampled to a regular grid of at
/// most 144 points a day and 14 days; the newest sample is compared with the
/// seasonal value at the same time one day earlier. That costs about a
/// millisecond; a range that is not seasonal costs microseconds. If the
/// sampling is too coarse for a daily profile (fewer than four points a
/// day), or STL cannot run, it scores without the seasonal step.
///
/// `None` when the newest sample is not finite or there are no samples.
/// Timestamps are expected in ascending order (the newest last).
pub fn anomaly_score(ts_ms: &[i64], values: &[f64]) -> Option<f64> {
    let n = ts_ms.len().min(values.len());
    if n == 0 {
        return None;
    }
    let (ts, vs) = (&ts_ms[..n], &values[..n]);
    let x = vs[n - 1];
    if !x.is_finite() {
        return None;
    }
    let t_last = ts[n - 1];
    let t_first = ts
        .iter()
        .zip(vs)
        .find(|(_, v)| v.is_finite())
        .map_or(t_last, |(t, _)| *t);
    // Each sample stands for one sampling interval: 2880 one-minute samples
    // of a [2d] range cover two days though the first and last are 1m apart
    // less. (The span alone first: under a day is never seasonal.)
    let span = (i128::from(t_last) - i128::from(t_first)) as f64;
    if span >= (SEASONAL_MIN_SPAN_MS / 2) as f64
        && let Some(gap) = median_gap_ms(ts, vs)
        && span + gap >= SEASONAL_MIN_SPAN_MS as f64
        && let Some(z) = seasonal_score(ts, vs, t_last, x, gap)
    {
        return Some(z);
    }
    let mut buf: Vec<f64> = vs.iter().copied().filter(|v| v.is_finite()).collect();
    Some(score_against(&mut buf, x))
}

fn seasonal_score(ts: &[i64], vs: &[f64], t_last: i64, x: f64, gap: f64) -> Option<f64> {
    let per_day = (DAY_MS as f64 / gap).round();
    if per_day.is_nan() || per_day < MIN_DAILY_BINS as f64 {
        return None;
    }
    let m = (per_day as usize).min(MAX_DAILY_BINS);
    let step = DAY_MS as f64 / m as f64;
    let t_first = ts
        .iter()
        .zip(vs)
        .find(|(_, v)| v.is_finite())
        .map(|(t, _)| *t)?;
    let span = (i128::from(t_last) - i128::from(t_first)) as f64;
    let len = ((span / step).floor() as usize)
        .saturating_add(1)
        .min(MAX_SEASONAL_GRID);
    if len < 2 * m {
        return None;
    }
    // The newest sample is the one being judged: left out of the fit, it
    // cannot bend the seasonal estimate towards itself (STL's end effects
    // let one spike at the edge move the last cycle a long way).
    let k = ts.len() - 1;
    let grid = resample_to_end(&ts[..k], &vs[..k], t_last, step, len)?;

    let (centre, scale) = centre_and_scale(&grid);
    let fit = robust_stl(&stl_input(&grid, centre, scale), m)?;
    let seasonal: Vec<f64> = fit
        .seasonal()
        .iter()
        .map(|s| f64::from(*s) * scale)
        .collect();
    if seasonal.len() != len {
        return None;
    }

    let season_at = |t: i64| -> f64 {
        // Grid point k sits at t_last - (len - 1 - k) * step.
        let back = (i128::from(t_last) - i128::from(t)) as f64 / step;
        let pos = (len - 1) as f64 - back;
        let pos = if pos < 0.0 {
            // Older than the fitted grid (only for ranges past fourteen days):
            // the seasonal shape repeats daily, so use the same phase in the
            // oldest fitted day.
            pos.rem_euclid(m as f64)
        } else {
            pos
        };
        let lo = pos.floor();
        let i = (lo as usize).min(len - 1);
        let j = (i + 1).min(len - 1);
        let frac = pos - lo;
        seasonal[i] + (seasonal[j] - seasonal[i]) * frac
    };

    let mut resid: Vec<f64> = ts
        .iter()
        .zip(vs)
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| v - season_at(*t))
        .collect();
    // The same time of day one day earlier: fitted from real samples on
    // both sides, where the grid's last point is only a copy of its
    // neighbour.
    let x_adj = x - season_at(t_last - DAY_MS);
    if resid.is_empty() || !x_adj.is_finite() {
        return None;
    }
    Some(score_against(&mut resid, x_adj))
}

/// The median and the scaled MAD (1 when that is 0) of `values`. STL works
/// in f32: series are centred and scaled by these first, so that large
/// values (bytes) keep their precision.
fn centre_and_scale(values: &[f64]) -> (f64, f64) {
    let mut tmp = values.to_vec();
    let centre = median_in_place(&mut tmp);
    let spread = mad_about(&mut tmp, centre) * MAD_TO_SIGMA;
    let scale = if spread > 0.0 && spread.is_finite() {
        spread
    } else {
        1.0
    };
    (centre, scale)
}

/// Median of the positive gaps between consecutive finite samples, in ms.
pub(crate) fn median_gap_ms(ts: &[i64], vs: &[f64]) -> Option<f64> {
    let mut gaps = Vec::with_capacity(ts.len());
    let mut prev: Option<i64> = None;
    for (t, v) in ts.iter().zip(vs) {
        if !v.is_finite() {
            continue;
        }
        if let Some(p) = prev {
            let g = (i128::from(*t) - i128::from(p)) as f64;
            if g > 0.0 {
                gaps.push(g);
            }
        }
        prev = Some(*t);
    }
    if gaps.is_empty() {
        return None;
    }
    Some(median_in_place(&mut gaps))
}

/// Resamples irregular samples onto `len` regular points `step_ms` apart, the
/// last at `t_end`: each point is the mean of the finite samples nearest to it
/// (within half a step); points with no sample are interpolated linearly
/// between their neighbours, and copied from the nearest at either end.
/// Samples outside the grid are ignored; order does not matter. `None` when
/// no sample falls on the grid.
pub(crate) fn resample_to_end(
    ts: &[i64],
    vs: &[f64],
    t_end: i64,
    step_ms: f64,
    len: usize,
) -> Option<Vec<f64>> {
    if len == 0 || step_ms.is_nan() || step_ms <= 0.0 || !step_ms.is_finite() {
        return None;
    }
    let mut sum = vec![0.0f64; len];
    let mut cnt = vec![0u32; len];
    let last = (len - 1) as f64;
    for (t, v) in ts.iter().zip(vs) {
        if !v.is_finite() {
            continue;
        }
        let back = ((i128::from(t_end) - i128::from(*t)) as f64 / step_ms).round();
        if !(0.0..=last).contains(&back) {
            continue;
        }
        let k = len - 1 - back as usize;
        sum[k] += v;
        cnt[k] += 1;
    }
    let mut out = vec![f64::NAN; len];
    let mut prev: Option<usize> = None;
    for k in 0..len {
        if cnt[k] == 0 {
            continue;
        }
        let mean = sum[k] / f64::from(cnt[k]);
        // Huge values can overflow the sum; fall back to the last sample's
        // scale rather than poisoning the grid with infinities.
        out[k] = if mean.is_finite() { mean } else { f64::NAN };
        if out[k].is_nan() {
            cnt[k] = 0;
            continue;
        }
        match prev {
            None => {
                let first = out[k];
                out[..k].fill(first);
            }
            Some(p) if k > p + 1 => {
                let (a, b) = (out[p], out[k]);
                let span = (k - p) as f64;
                for (i, o) in out[p + 1..k].iter_mut().enumerate() {
                    *o = a + (b - a) * ((i + 1) as f64 / span);
                }
            }
            Some(_) => {}
        }
        prev = Some(k);
    }
    let p = prev?;
    let tail = out[p];
    out[p + 1..].fill(tail);
    Some(out)
}

/// The order in which Prometheus's quantiles rank values: every NaN before
/// all numbers, numbers by value (by [`f64::total_cmp`], which only adds
/// -0 before +0).
pub fn quantile_order(a: &f64, b: &f64) -> std::cmp::Ordering {
    b.is_nan().cmp(&a.is_nan()).then_with(|| a.total_cmp(b))
}

/// [`quantile_sorted`] of values in any order, by selection rather than a
/// sort: O(n). Reorders `values`.
pub fn quantile_select(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 || q.is_nan() || !(0.0..=1.0).contains(&q) {
        return quantile_sorted(&values[..n.min(1)], q);
    }
    let rank = q * (n - 1) as f64;
    let lower = rank.floor().max(0.0) as usize;
    let (_, &mut a, above) = values.select_nth_unstable_by(lower, quantile_order);
    // The next value up is the smallest of those above. Interpolating even
    // when the weight is 0 is Prometheus's arithmetic: an infinite
    // neighbour then gives NaN (∞·0).
    let b = above.iter().copied().min_by(quantile_order).unwrap_or(a);
    let w = rank - rank.floor();
    a * (1.0 - w) + b * w
}

/// Prometheus's `quantile_over_time` on values sorted by [`quantile_order`]: rank
/// q·(n−1) with linear interpolation between the neighbouring values.
/// Empty input gives NaN; q < 0 gives −∞, q > 1 gives +∞, NaN q gives NaN.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let n = sorted.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    sorted[lower as usize] * (1.0 - weight) + sorted[upper as usize] * weight
}

/// A level shift found by [`change_points`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// Index (into the input slice) of the first sample of the new level.
    pub index: usize,
    /// Median of the samples of the segment before.
    pub before: f64,
    /// Median of the samples of the segment after.
    pub after: f64,
    /// How much splitting here reduces the squared-error cost of the two
    /// segments, in units of the noise variance σ̂² (comparable with the
    /// penalty; the default penalty is 3·ln n).
    pub cost_gain: f64,
}

/// Level shifts in `values` by PELT (pruned exact linear time optimal
/// partitioning) with a mean-shift (squared error) cost.
///
/// - Segments hold at least `min_segment` samples (at least 2).
/// - `penalty` is the price of one change point in units of the noise
///   variance σ̂²; `None` takes 3·ln(n) (MBIC's leading term). σ̂ is
///   1.4826·MAD of the first
///   differences divided by √2, which level shifts do not inflate.
/// - Robust to outliers: the cost is computed after a Hampel filter (samples
///   more than 3σ̂ from the running median of half-width min_segment/2,
///   1 to 10, are replaced by the median of their ordinary neighbours), so a
///   few spikes cannot buy a segment of their own, while step edges stay
///   exactly where they are.
///
/// Non-finite samples are skipped (indices still refer to `values`).
pub fn change_points(values: &[f64], min_segment: usize, penalty: Option<f64>) -> Vec<ChangePoint> {
    let (idx, y): (Vec<usize>, Vec<f64>) = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i, *v))
        .unzip();
    let n = y.len();
    let min_seg = min_segment.max(2);
    if n < 2 * min_seg {
        return Vec::new();
    }

    let mut diffs: Vec<f64> = y
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| d.is_finite())
        .collect();
    let mut sigma = if diffs.is_empty() {
        0.0
    } else {
        let med = median_in_place(&mut diffs);
        mad_about(&mut diffs, med) * MAD_TO_SIGMA / std::f64::consts::SQRT_2
    };
    let mut scratch = y.clone();
    let centre = median_in_place(&mut scratch);
    // Exactly piecewise-constant data has no noise; any positive floor makes a
    // split that gains nothing cost more than it saves.
    let floor = 1e-9 * centre.abs().max(1.0);
    if sigma.is_nan() || sigma < floor || !sigma.is_finite() {
        sigma = floor;
    }

    // Hampel filter: a sample further than OUTLIER_SIGMAS·σ̂ from the running
    // median of its neighbourhood is an outlier and is replaced by the median
    // of the non-outliers around it, so spikes cannot buy a segment of their
    // own. A running median follows a real step exactly (it preserves edges
    // between segments longer than half its window), so the samples of a
    // level shift are never flagged. Half-width min_segment/2: a segment of
    // min_segment samples is still the majority of the window at its centre.
    let half = (min_seg / 2).clamp(1, MAX_MEDIAN_HALF_WINDOW);
    let local = running_median(&y, half);
    let limit = OUTLIER_SIGMAS * sigma;
    let outlier: Vec<bool> = y
        .iter()
        .zip(&local)
        .map(|(v, m)| (v - m).is_nan() || (v - m).abs() > limit)
        .collect();
    let mut filtered = y.clone();
    let mut win = Vec::with_capacity(8 * half + 1);
    for i in (0..n).filter(|&i| outlier[i]) {
        // Widen the neighbourhood until it holds ordinary samples.
        let mut h = half;
        loop {
            let (a, b) = (i.saturating_sub(h), (i + h + 1).min(n));
            win.clear();
            win.extend((a..b).filter(|&j| !outlier[j]).map(|j| y[j]));
            if !win.is_empty() || (a == 0 && b == n) {
                break;
            }
            h *= 2;
        }
        filtered[i] = if win.is_empty() {
            local[i]
        } else {
            median_in_place(&mut win)
        };
    }
    let var = sigma * sigma;
    let pen_units = match penalty {
        Some(p) if p.is_finite() && p >= 0.0 => p,
        _ => DEFAULT_PENALTY_PER_LN_N * (n as f64).ln(),
    };
    let beta = pen_units * var;

    // Prefix sums of the centred, filtered signal: cost(a, b) is the squared
    // error of samples a..b about their mean.
    let mut s1 = vec![0.0f64; n + 1];
    let mut s2 = vec![0.0f64; n + 1];
    for (i, v) in filtered.iter().enumerate() {
        let c = v - centre;
        s1[i + 1] = s1[i] + c;
        s2[i + 1] = s2[i] + c * c;
    }
    // Values the Hampel filter could not take out (a run of them) whose
    // squares overflow: every cost would be ∞ − ∞, so there is nothing to
    // compare; the series is unanalysable for level shifts.
    if !s2[n].is_finite() {
        return Vec::new();
    }
    let cost = |a: usize, b: usize| -> f64 {
        let len = (b - a) as f64;
        let s = s1[b] - s1[a];
        let c = (s2[b] - s2[a]) - s * s / len;
        if c > 0.0 { c } else { 0.0 }
    };

    // PELT is linear when changes are frequent but quadratic on long quiet
    // series (nothing can be pruned). Past MAX_PELT_POINTS samples, cuts are
    // only considered at block boundaries (the cost of a span is still exact,
    // from the prefix sums) and then refined to the sample.
    let block = n.div_ceil(MAX_PELT_POINTS);
    let nb = n.div_ceil(block);
    let pos = |i: usize| (i * block).min(n);
    // With blocks, a segment spans at least two of them, so a block that
    // straddles a change cannot become a segment of its own.
    let min_blocks = if block > 1 {
        min_seg.div_ceil(block).max(2)
    } else {
        min_seg
    };

    let mut f = vec![f64::INFINITY; nb + 1];
    f[0] = -beta;
    let mut prev = vec![0usize; nb + 1];
    // A candidate proven useless at time s is useless for every end t with
    // t - s >= min_seg; before that it must stay (the proof splits at s).
    let mut drop_at = vec![usize::MAX; nb + 1];
    let mut cands: Vec<usize> = vec![0];
    for t in min_blocks..=nb {
        if t >= 2 * min_blocks {
            cands.push(t - min_blocks);
        }
        cands.retain(|&c| drop_at[c] > t);
        let mut best = f64::INFINITY;
        let mut arg = 0;
        for &c in &cands {
            let v = f[c] + cost(pos(c), pos(t)) + beta;
            if v < best {
                best = v;
                arg = c;
            }
        }
        f[t] = best;
        prev[t] = arg;
        for &c in &cands {
            if drop_at[c] == usize::MAX && f[c] + cost(pos(c), pos(t)) > best {
                drop_at[c] = t + min_blocks;
            }
        }
    }

    let mut cuts = Vec::new();
    let mut t = nb;
    while t > 0 {
        let c = prev[t];
        if c == 0 || c >= t {
            break;
        }
        cuts.push(pos(c));
        t = c;
    }
    cuts.reverse();
    if block > 1 {
        let refine = |cuts: &mut Vec<usize>| {
            for i in 0..cuts.len() {
                let a = if i == 0 { 0 } else { cuts[i - 1] };
                let b = cuts.get(i + 1).copied().unwrap_or(n);
                let lo = cuts[i].saturating_sub(block).max(a + min_seg);
                let hi = (cuts[i] + block).min(b.saturating_sub(min_seg));
                let split = |x: usize| cost(a, x) + cost(x, b);
                if let Some(best) = (lo..=hi).min_by(|&x, &z| split(x).total_cmp(&split(z))) {
                    cuts[i] = best;
                }
            }
        };
        refine(&mut cuts);
        // Cuts placed at block boundaries can be left without enough gain
        // once their neighbours move to the sample; drop those, weakest first.
        loop {
            let weakest = (0..cuts.len())
                .map(|i| {
                    let a = if i == 0 { 0 } else { cuts[i - 1] };
                    let b = cuts.get(i + 1).copied().unwrap_or(n);
                    (i, cost(a, b) - cost(a, cuts[i]) - cost(cuts[i], b))
                })
                .filter(|(_, gain)| *gain < beta)
                .min_by(|x, z| x.1.total_cmp(&z.1));
            match weakest {
                Some((i, _)) => {
                    cuts.remove(i);
                }
                None => break,
            }
        }
        refine(&mut cuts);
    }

    let mut out = Vec::with_capacity(cuts.len());
    for (i, &c) in cuts.iter().enumerate() {
        let a = if i == 0 { 0 } else { cuts[i - 1] };
        let b = cuts.get(i + 1).copied().unwrap_or(n);
        let gain = (cost(a, b) - cost(a, c) - cost(c, b)) / var;
        let mut left = y[a..c].to_vec();
        let mut right = y[c..b].to_vec();
        out.push(ChangePoint {
            index: idx[c],
            before: median_in_place(&mut left),
            after: median_in_place(&mut right),
            cost_gain: gain,
        });
    }
    out
}

/// [`change_points`] considers every sample as a cut up to this many samples
/// and block boundaries (then refined) beyond, bounding its quadratic worst
/// case.
const MAX_PELT_POINTS: usize = 2048;

/// Default change point penalty, in σ̂² per ln(n).
pub const DEFAULT_PENALTY_PER_LN_N: f64 = 3.0;

/// Distance from the running median, in σ̂, past which [`change_points`]
/// treats a sample as an outlier.
const OUTLIER_SIGMAS: f64 = 3.0;

/// Half-width cap of that running median.
const MAX_MEDIAN_HALF_WINDOW: usize = 10;

/// Running median over a window of 2k+1 (shortened at the ends).
fn running_median(y: &[f64], k: usize) -> Vec<f64> {
    let n = y.len();
    let mut win = Vec::with_capacity(2 * k + 1);
    (0..n)
        .map(|i| {
            win.clear();
            win.extend_from_slice(&y[i.saturating_sub(k)..(i + k + 1).min(n)]);
            median_in_place(&mut win)
        })
        .collect()
}

/// A robust z-score for every point of a regularly sampled series: its
/// distance from a baseline in units of the residuals' scaled MAD. The
/// baseline is robust STL's trend plus seasonal component (stlrs) when the
/// series covers two periods, else a centred running median of `period / 24`
/// points (at least 5); missing points are interpolated for the fit and
/// score NaN. Offline (the whole series informs each point's baseline):
/// the analyzer's view, not the online detector's.
pub fn point_scores(values: &[f64], period: usize) -> Vec<f64> {
    let n = values.len();
    let known: Vec<usize> = (0..n).filter(|&i| values[i].is_finite()).collect();
    if known.len() < 8 {
        return vec![f64::NAN; n];
    }
    // Interpolate the gaps linearly (ends copied from the nearest point).
    let mut filled = vec![0.0; n];
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        for (i, f) in filled.iter_mut().enumerate().take(b + 1).skip(a) {
            let frac = (i - a) as f64 / (b - a) as f64;
            *f = values[a] + (values[b] - values[a]) * frac;
        }
    }
    let (first, last) = (known[0], known[known.len() - 1]);
    for f in filled.iter_mut().take(first) {
        *f = values[first];
    }
    for f in filled.iter_mut().skip(last + 1) {
        *f = values[last];
    }
    let (centre, scale) = centre_and_scale(&filled);
    let seasonal_fit = (period >= 4 && n >= 2 * period)
        .then(|| robust_stl(&stl_input(&filled, centre, scale), period))
        .flatten();
    let baseline: Vec<f64> = match seasonal_fit {
        Some(fit) => fit
            .seasonal()
            .iter()
            .zip(fit.trend())
            .map(|(s, t)| f64::from(s + t) * scale + centre)
            .collect(),
        None => {
            let half = (period / 48).max(2);
            (0..n)
                .map(|i| {
                    let mut w = filled[i.saturating_sub(half)..(i + half + 1).min(n)].to_vec();
                    median_in_place(&mut w)
                })
                .collect()
        }
    };
    let mut resid: Vec<f64> = known.iter().map(|&i| values[i] - baseline[i]).collect();
    let med = median_in_place(&mut resid);
    let mad = mad_about(&mut resid, med);
    (0..n)
        .map(|i| {
            if values[i].is_finite() {
                score_resid(values[i] - baseline[i], med, mad, scale)
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// A residual's robust z; when most residuals are equal (MAD 0), against a
/// floor of 1% of the series' own spread so exact repeats do not score ∞.
fn score_resid(r: f64, med: f64, mad: f64, series_spread: f64) -> f64 {
    let sigma = (mad * MAD_TO_SIGMA)
        .max(0.01 * series_spread)
        .max(f64::MIN_POSITIVE);
    (r - med) / sigma
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testutil::{HOSTILE, daily_cycle, garbage_times, garbage_value};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(median(&[f64::MAX, f64::MAX]), Some(f64::MAX));
        // |x - 2| = 1, 1, 0, 2, 98 -> median 1
        assert_eq!(mad(&[1.0, 3.0, 2.0, 4.0, 100.0]), Some(1.0));
        assert_eq!(mad_scaled(&[1.0, 3.0, 2.0, 4.0, 100.0]), Some(MAD_TO_SIGMA));
        assert_eq!(mad(&[5.0, 5.0, 5.0]), Some(0.0));
    }

    #[test]
    fn robust_z_rules() {
        assert_eq!(robust_z(4.0, 2.0, 1.0), 2.0 / MAD_TO_SIGMA);
        assert_eq!(robust_z(2.0, 2.0, 0.0), 0.0);
        assert_eq!(robust_z(3.0, 2.0, 0.0), f64::INFINITY);
        assert_eq!(robust_z(1.0, 2.0, 0.0), f64::NEG_INFINITY);
        assert!(robust_z(f64::NAN, 2.0, 1.0).is_nan());
        assert!(robust_z(1.0, 2.0, -1.0).is_nan());
    }

    #[test]
    fn quantile_matches_prometheus() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
        assert_eq!(quantile_sorted(&s, 0.5), 2.5);
        // rank 0.9 * 3 = 2.7: 3 * 0.3 + 4 * 0.7
        assert!((quantile_sorted(&s, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(quantile_sorted(&s, -0.1), f64::NEG_INFINITY);
        assert_eq!(quantile_sorted(&s, 1.1), f64::INFINITY);
        assert!(quantile_sorted(&s, f64::NAN).is_nan());
        assert!(quantile_sorted(&[], 0.5).is_nan());
        assert_eq!(quantile_sorted(&[7.0], 0.3), 7.0);
    }

    /// Selection agrees with sorting in Prometheus's order: NaN ranks below
    /// every number, and a whole rank next to an infinity is NaN (∞·0), as
    /// promtool gives (tests/data/promql_parity.json has both).
    #[test]
    fn quantile_select_ranks_nan_first_and_interpolates_at_whole_ranks() {
        let cases: [(&[f64], f64); 6] = [
            (&[3.0, f64::NAN, 1.0, -f64::NAN, 2.0, 5.0], 0.5),
            (&[3.0, f64::NAN, 1.0, f64::NAN, 2.0, 5.0], 0.25),
            (&[1.0, 2.0, f64::INFINITY], 0.5),
            (&[1.0, f64::INFINITY, 2.0], 1.0),
            (&[1.0, f64::NEG_INFINITY, 2.0], 0.0),
            (&[-0.0, 0.0, 4.0], 0.5),
        ];
        for (values, q) in cases {
            let mut sorted = values.to_vec();
            sorted.sort_by(quantile_order);
            let want = quantile_sorted(&sorted, q);
            let got = quantile_select(&mut values.to_vec(), q);
            assert_eq!(got.to_bits(), want.to_bits(), "{values:?} q {q}");
        }
        let mut nan_first = vec![3.0, f64::NAN, 1.0, f64::NAN, 2.0, 5.0];
        assert_eq!(quantile_select(&mut nan_first, 0.5), 1.5);
        assert!(quantile_select(&mut [1.0, 2.0, f64::INFINITY], 0.5).is_nan());
        assert!(quantile_select(&mut [1.0, f64::INFINITY], 1.0).is_nan());
        assert_eq!(
            quantile_select(&mut [1.0, f64::NEG_INFINITY, 2.0], 0.0),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn anomaly_plain_range() {
        let ts: Vec<i64> = (0..60).map(|i| i * 60_000).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut vs: Vec<f64> = (0..60).map(|_| 100.0 + noise.sample(&mut rng)).collect();
        let calm = anomaly_score(&ts, &vs).unwrap();
        assert!(calm.abs() < 3.5, "calm {calm}");
        vs[59] = 120.0;
        let spike = anomaly_score(&ts, &vs).unwrap();
        assert!(spike > 10.0, "spike {spike}");
        // A constant range with one departure: MAD 0, mean-AD fallback.
        let mut flat = vec![5.0; 60];
        assert_eq!(anomaly_score(&ts, &flat), Some(0.0));
        flat[59] = 6.0;
        let z = anomaly_score(&ts, &flat).unwrap();
        assert!(z.is_finite() && z > 10.0, "flat {z}");
        assert_eq!(anomaly_score(&[], &[]), None);
        assert_eq!(anomaly_score(&[1], &[f64::NAN]), None);
        assert_eq!(anomaly_score(&[1], &[3.0]), Some(0.0));
    }

    /// `days` of a daily sine (amplitude 10, noise σ = 1) sampled every
    /// `step` ms, ending at `end_phase` of the day.
    fn daily_sine(end_phase: f64, seed: u64, step: i64, days: i64) -> (Vec<i64>, Vec<f64>) {
        let n = (days * DAY_MS / step) as usize;
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let t_end = 10 * DAY_MS + (end_phase * DAY_MS as f64) as i64;
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| t_end - (n as i64 - 1 - i) * step)
            .collect();
        let vs = ts
            .iter()
            .map(|t| {
                let phase = (*t % DAY_MS) as f64 / DAY_MS as f64;
                50.0 + 10.0 * (2.0 * std::f64::consts::PI * phase).sin() + noise.sample(&mut rng)
            })
            .collect();
        (ts, vs)
    }

    #[test]
    fn seasonal_anomaly_scores_the_spike_not_the_peak() {
        // Three days at 5m, and exactly a [2d] range at 1m (2880 samples).
        for (step, days) in [(300_000, 3), (60_000, 2)] {
            for seed in 0..3 {
                // Ends at the daily peak (phase 0.25 of the sine): ordinary.
                let (ts, mut vs) = daily_sine(0.25, seed, step, days);
                *vs.last_mut().unwrap() = 60.0;
                let peak = anomaly_score(&ts, &vs).unwrap();
                assert!(peak.abs() < 2.0, "peak scored {peak}");

                // Ends at the trough (phase 0.75) with a spike of +12: inside
                // the range's overall spread, far outside that time of day's.
                let (ts, mut vs) = daily_sine(0.75, seed + 100, step, days);
                *vs.last_mut().unwrap() = 40.0 + 12.0;
                let spike = anomaly_score(&ts, &vs).unwrap();
                assert!(spike > 8.0, "spike scored {spike}");
                // Without the seasonal step the same spike looks unremarkable.
                let z_plain = score_against(&mut vs.clone(), 52.0);
                assert!(z_plain < 1.0, "plain {z_plain}");
            }
        }
        // Just short of two days: not seasonal, so the same spike at the
        // trough goes unnoticed.
        let (ts, mut vs) = daily_sine(0.75, 7, 60_000, 2);
        *vs.last_mut().unwrap() = 52.0;
        let z = anomaly_score(&ts[10..], &vs[10..]).unwrap();
        assert!(z < 1.0, "{z}");
    }

    #[test]
    fn resample_fills_and_averages() {
        let ts = [0, 1000, 1100, 5000];
        let vs = [1.0, 2.0, 4.0, 10.0];
        let g = resample_to_end(&ts, &vs, 5000, 1000.0, 6).unwrap();
        assert_eq!(g, vec![1.0, 3.0, 4.75, 6.5, 8.25, 10.0]);
        assert_eq!(resample_to_end(&ts, &[f64::NAN; 4], 5000, 1000.0, 6), None);
    }

    fn shifted(seed: u64, spikes: bool) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 8.0).unwrap();
        let mut v: Vec<f64> = (0..200)
            .map(|i| if i < 120 { 100.0 } else { 200.0 } + noise.sample(&mut rng))
            .collect();
        if spikes {
            for i in [30usize, 31, 75, 160, 185] {
                v[i] += 600.0;
            }
            v[100] = -500.0;
        }
        v
    }

    #[test]
    fn change_point_finds_a_doubling() {
        let spikes = [30usize, 31, 75, 100, 160, 185];
        let (mut extra, mut at_spike) = (0, 0);
        for seed in 0..200 {
            let cps = change_points(&shifted(seed, true), 5, None);
            let near: Vec<_> = cps.iter().filter(|c| c.index.abs_diff(120) <= 3).collect();
            assert_eq!(near.len(), 1, "seed {seed}: {cps:?}");
            let cp = near[0];
            assert!(
                (cp.before - 100.0).abs() < 10.0 && (cp.after - 200.0).abs() < 10.0,
                "{cp:?}"
            );
            assert!(cp.cost_gain > DEFAULT_PENALTY_PER_LN_N * 200f64.ln());
            extra += cps.len() - 1;
            at_spike += cps
                .iter()
                .filter(|c| spikes.iter().any(|s| c.index.abs_diff(*s) <= 3))
                .count();
        }
        // Measured over 1000 seeds: about 2% of series get one extra change
        // point from the noise, 0.1% one next to a spike.
        assert!(extra <= 8, "{extra} extra change points in 200 series");
        assert!(
            at_spike <= 1,
            "{at_spike} change points at spikes in 200 series"
        );
    }

    #[test]
    fn long_series_are_cut_at_blocks_then_refined() {
        let mut rng = StdRng::seed_from_u64(21);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let v: Vec<f64> = (0..20_000)
            .map(|i| if i < 13_333 { 10.0 } else { 20.0 } + noise.sample(&mut rng))
            .collect();
        let cps = change_points(&v, 10, None);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert!(cps[0].index.abs_diff(13_333) <= 2, "{cps:?}");
    }

    #[test]
    fn spikes_and_noise_alone_make_no_change_points() {
        let mut rng = StdRng::seed_from_u64(3);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut false_alarms = 0;
        for _ in 0..50 {
            let mut v: Vec<f64> = (0..300).map(|_| 10.0 + noise.sample(&mut rng)).collect();
            for _ in 0..6 {
                let i = rng.random_range(0..300);
                v[i] += 50.0;
            }
            false_alarms += change_points(&v, 5, None).len();
        }
        assert!(
            false_alarms <= 3,
            "{false_alarms} false change points in 50 series"
        );
        // Exact steps with no noise at all.
        let mut steps = vec![1.0; 20];
        steps.extend(vec![3.0; 20]);
        let cps = change_points(&steps, 3, None);
        assert_eq!(cps.len(), 1);
        assert_eq!(cps[0].index, 20);
        assert!(change_points(&[1.0; 50], 3, None).is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(99);
        for round in 0..3000 {
            let n = rng.random_range(0..40);
            let vs: Vec<f64> = (0..n).map(|_| garbage_value(&mut rng)).collect();
            let extra = rng.random_range(0..2);
            let ts = garbage_times(&mut rng, n + extra);
            let _ = median(&vs);
            let _ = mad(&vs);
            let _ = anomaly_score(&ts, &vs);
            let _ = change_points(&vs, round % 7, Some(garbage_value(&mut rng)));
            let _ = change_points(&vs, 0, None);
            let mut sorted = vs.clone();
            sorted.sort_by(f64::total_cmp);
            let _ = quantile_sorted(&sorted, garbage_value(&mut rng));
            let _ = median_gap_ms(&ts, &vs);
            let step = garbage_value(&mut rng);
            let _ = resample_to_end(&ts, &vs, ts.last().copied().unwrap_or(0), step, n);
        }
        // Long seasonal ranges of garbage take the STL path.
        for _ in 0..4 {
            let n = 2000;
            let ts: Vec<i64> = (0..n).map(|i| i * 150_000).collect();
            let vs: Vec<f64> = (0..n).map(|_| garbage_value(&mut rng)).collect();
            let _ = anomaly_score(&ts, &vs);
        }
    }

    /// STL (stlrs) panics on a NaN among its residuals, which a value past
    /// f32's range made: point_scores on a gauge with one 1e100 bucket
    /// took `analyze` down (exit 101). Each hostile value once in a daily
    /// cycle: the rest still scores as ordinary, a finite one scores as the
    /// outlier it is, a non-finite one is skipped.
    #[test]
    fn stl_kernels_survive_hostile_values() {
        for h in HOSTILE {
            let mut v = daily_cycle(3);
            v[500] = h;
            let z = point_scores(&v, 288);
            assert_eq!(z.len(), v.len());
            let ordinary = z
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 500)
                .all(|(_, z)| z.is_finite() && z.abs() < 10.0);
            assert!(ordinary, "{h}: {:?}", &z[490..510]);
            if h.is_finite() {
                assert!(z[500].abs() > 1e6, "{h} scored {}", z[500]);
            } else {
                assert!(z[500].is_nan(), "{h} scored {}", z[500]);
            }
            // The engine's `anomaly`: 1-minute samples over three days, the
            // hostile value inside the range and as the newest sample.
            let ts: Vec<i64> = (0..v.len() as i64).map(|i| i * 300_000).collect();
            let inside = anomaly_score(&ts, &v).unwrap();
            assert!(inside.is_finite() && inside.abs() < 10.0, "{h}: {inside}");
            let mut last = daily_cycle(4);
            *last.last_mut().unwrap() = h;
            let newest = anomaly_score(&ts, &last);
            match newest {
                Some(z) => assert!(h.is_finite() && z.abs() > 1e6, "{h}: {z}"),
                None => assert!(!h.is_finite(), "{h}"),
            }
            // A series of nothing but the hostile value.
            let all = vec![h; 864];
            assert!(
                point_scores(&all, 288)
                    .iter()
                    .all(|z| !z.is_finite() || z.abs() < 10.0)
            );
            let _ = anomaly_score(&ts, &all);
        }
    }

    /// Everything stlrs would panic or index out of bounds on is refused
    /// before the call.
    #[test]
    fn robust_stl_refuses_what_stlrs_cannot_take() {
        assert!(robust_stl(&[], 0).is_none());
        assert!(robust_stl(&[1.0; 10], 1).is_none());
        assert!(robust_stl(&[1.0; 10], 6).is_none());
        for bad in [f32::MAX, f32::NAN, f32::INFINITY, -f32::MAX, 1e10] {
            let mut v = vec![1.0f32; 40];
            v[7] = bad;
            assert!(robust_stl(&v, 4).is_none(), "{bad}");
        }
        let clipped = stl_input(&[1e300, -1e300, f64::MAX, 0.0, f64::NAN], 0.0, 1.0);
        assert_eq!(clipped[..4], [1e9, -1e9, 1e9, 0.0]);
        assert!(clipped[4].is_nan());
        let mut v: Vec<f32> = (0..40).map(|i| (i % 4) as f32).collect();
        v[9] = 1e9;
        assert!(robust_stl(&v, 4).is_some());
    }

    /// Median, MAD, quantiles and z-scores with each hostile value among
    /// ordinary ones: NaN is ignored, the rest ranks as the extreme it is,
    /// and none of them moves the median or MAD out of the ordinary values.
    #[test]
    fn robust_statistics_survive_hostile_values() {
        for h in HOSTILE {
            let v = [3.0, 1.0, h, 4.0, 2.0, 5.0, 6.0];
            let m = median(&v).unwrap();
            assert!((2.5..=4.0).contains(&m), "{h}: median {m}");
            let d = mad(&v).unwrap();
            assert!((1.0..=2.0).contains(&d), "{h}: mad {d}");
            assert!(mad_scaled(&v).unwrap().is_finite());
            let z = robust_z(h, m, d);
            assert!(
                z.is_nan() == h.is_nan() && (h.is_nan() || z.abs() > 1e90),
                "{h}: {z}"
            );
            let mut sorted = v.to_vec();
            sorted.sort_by(quantile_order);
            for q in [0.0, 0.5, 0.9, 1.0] {
                let a = quantile_sorted(&sorted, q);
                let b = quantile_select(&mut v.to_vec(), q);
                assert!(a == b || (a.is_nan() && b.is_nan()), "{h} q{q}: {a} {b}");
            }
            assert!((2.0..=5.0).contains(&quantile_sorted(&sorted, 0.5)) || h.is_nan());
        }
    }

    /// A level shift with each hostile value inside the first level: the
    /// Hampel filter takes it out, so PELT finds the shift and nothing else.
    #[test]
    fn change_points_survive_hostile_values() {
        // Piecewise constant: the one cut is unambiguous.
        let base: Vec<f64> = (0..80).map(|i| if i < 40 { 1.0 } else { 5.0 }).collect();
        let clean = change_points(&base, 5, None);
        assert_eq!(clean.iter().map(|c| c.index).collect::<Vec<_>>(), [40]);
        for h in HOSTILE {
            for at in [0, 10, 25, 60, 79] {
                let mut v = base.clone();
                v[at] = h;
                let cps = change_points(&v, 5, None);
                assert_eq!(cps.len(), 1, "{h} at {at}: {cps:?}");
                assert_eq!(cps[0].index, 40, "{h} at {at}: {cps:?}");
                assert!(cps[0].cost_gain.is_finite(), "{h} at {at}: {cps:?}");
            }
            // Several next to each other are no outliers to the filter:
            // within f64's reach they are a segment of their own (shifts
            // after them drown in the prefix sums' rounding), beyond it the
            // series has no level shifts to tell.
            let mut v = base.clone();
            v[20..26].fill(h);
            let cps = change_points(&v, 5, None);
            if h == 1e100 {
                let at: Vec<usize> = cps.iter().map(|c| c.index).collect();
                assert!(at.starts_with(&[20, 26]), "{h}: {cps:?}");
            } else if h.is_finite() {
                assert!(cps.is_empty(), "{h}: {cps:?}");
            }
            assert!(cps.iter().all(|c| c.cost_gain.is_finite()), "{h}: {cps:?}");
            assert!(change_points(&[h; 30], 3, None).is_empty());
        }
    }
}
