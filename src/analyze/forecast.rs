//! Forecasting kernels shared by the rule engine and the analyzer.
//!
//! The engine's `deriv`, `predict`, `time_to` and `trend` call
//! [`linear_fit`], [`predict`], [`time_to`] and [`theil_sen`] once per series
//! per evaluation step, so those are O(n), allocation-free (Theil-Sen aside)
//! and never panic: empty or one-sample ranges give `None`, NaN samples,
//! infinities, equal or unordered timestamps and huge values give a defined
//! (possibly NaN) answer.
//!
//! The analyzer calls [`Forecaster`] ([`forecast_exhaustion`],
//! [`forecast_path`]) once per series and can afford to fit smoothing
//! constants and a seasonal model.
//!
//! # The model behind `predict` and `time_to`
//!
//! - Fewer than [`LINEAR_BELOW`] (12) samples: ordinary least squares,
//!   exactly Prometheus 2.42's `predict_linear` (Kahan-Neumaier sums, the
//!   constant-series special case), intercept at the evaluation time.
//! - Otherwise Holt's linear trend (double exponential smoothing) with fixed
//!   constants [`HOLT_ALPHA`] = 0.3 (level) and [`HOLT_BETA`] = 0.1 (trend),
//!   per *reference step*, the range's mean sample spacing. A sample `dt`
//!   after the previous one is weighted as `dt / step` reference steps
//!   would be: α' = 1 − (1 − α)^(dt/step), likewise β', so a gap lets the
//!   newest sample count for more and a burst of close samples for less. The
//!   trend is kept per second. The seed is a least-squares line through the
//!   first quarter of the range (3 to 30 samples). Non-finite samples carry
//!   no information about a trend and are skipped.
//!
//! # `time_to`
//!
//! With `v` the newest finite sample, `v0` the oldest, `level` and `slope`
//! the model's value at the evaluation time and its trend per second:
//!
//! 1. `v == threshold`: 0.
//! 2. The trend heads towards the threshold (up from below, down from
//!    above): `(threshold − level) / slope`, 0 if that is not positive (the
//!    smoothed level is already there), +∞ past 30 days.
//! 3. The trend heads further beyond it: 0 if the range crossed the
//!    threshold in that direction (`v0` was on the other side: memory that
//!    rose through its limit), else +∞ (free bytes above 0 and rising).
//! 4. A flat trend: +∞.
//!
//! A series that has been beyond the threshold for the whole range and keeps
//! moving away is therefore +∞: nothing in the samples tells "memory above its
//! limit" from "free bytes above zero".

use crate::stats::{resample, robust};

/// Ranges with fewer samples than this use least squares (`predict_linear`).
pub const LINEAR_BELOW: usize = 12;

/// Holt's level smoothing constant per reference step, for `predict`/`time_to`.
pub const HOLT_ALPHA: f64 = 0.3;

/// Holt's trend smoothing constant per reference step, for `predict`/`time_to`.
pub const HOLT_BETA: f64 = 0.1;

/// Forecasts further out than this count as never (+∞).
pub const MAX_HORIZON_S: f64 = 30.0 * 86_400.0;

/// z of the two-sided 80% prediction interval behind [`Exhaustion`] bounds.
pub const INTERVAL_Z: f64 = 1.2816;

/// Seconds from `earlier` to `later`, without overflowing on any i64 pair.
#[inline]
fn secs_between(later: i64, earlier: i64) -> f64 {
    match later.checked_sub(earlier) {
        Some(d) => d as f64 / 1e3,
        // i128 to f64 is a slow library call: only for the absurd cases.
        None => (i128::from(later) - i128::from(earlier)) as f64 / 1e3,
    }
}

/// Go's `kahanSumInc` from Prometheus: Neumaier's variant of Kahan summation.
#[inline]
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares line through the samples, exactly as Prometheus 2.42's
/// `linearRegression` (behind `deriv` and `predict_linear`): returns (slope
/// per second, value at `intercept_at_ms`). `deriv` is the slope with the
/// intercept at the first sample; `predict_linear(r, h)` is
/// `intercept + slope * h` with the intercept at the evaluation time.
///
/// As in Prometheus: sums use Kahan-Neumaier compensation; when every value
/// equals the first the answer is (0, value), or (NaN, NaN) for an infinite
/// value; NaN samples and equal timestamps give NaN or infinite results.
/// `None` for fewer than two samples.
pub fn linear_fit(ts_ms: &[i64], values: &[f64], intercept_at_ms: i64) -> Option<(f64, f64)> {
    let len = ts_ms.len().min(values.len());
    if len < 2 {
        return None;
    }
    let (ts, vs) = (&ts_ms[..len], &values[..len]);
    let init_y = vs[0];
    let mut const_y = true;
    let mut n = 0.0f64;
    let (mut sum_x, mut c_x) = (0.0f64, 0.0f64);
    let (mut sum_y, mut c_y) = (0.0f64, 0.0f64);
    let (mut sum_xy, mut c_xy) = (0.0f64, 0.0f64);
    let (mut sum_x2, mut c_x2) = (0.0f64, 0.0f64);
    for (i, (&t, &v)) in ts.iter().zip(vs).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        // Go's int64 subtraction wraps; so does this, for identical results.
        let x = t.wrapping_sub(intercept_at_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return Some((f64::NAN, f64::NAN));
        }
        return Some((0.0, init_y));
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;

    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    Some((slope, intercept))
}

/// Holt's state after the last sample it used.
#[derive(Debug, Clone, Copy)]
struct HoltState {
    level: f64,
    /// Per second.
    slope: f64,
    /// Time of the last sample that advanced the state.
    t_ms: i64,
}

/// Samples that seed Holt: the first quarter of the range, 3 to 30 of them.
fn seed_len(n_finite: usize) -> usize {
    (n_finite / 4).clamp(3, 30).min(n_finite)
}

/// Least-squares line through the finite samples (centred, two passes: no
/// overflow of squared sums for large timestamps). Returns (level at the last
/// finite sample, slope per second, that sample's time); the slope is exactly
/// 0 for a constant series and 0 when the timestamps do not spread.
fn seed_fit(ts: &[i64], vs: &[f64]) -> Option<(f64, f64, i64)> {
    let mut t_ref = None;
    let mut first_y = f64::NAN;
    let mut constant = true;
    let mut cnt = 0usize;
    for (&t, &v) in ts.iter().zip(vs) {
        if !v.is_finite() {
            continue;
        }
        if cnt == 0 {
            first_y = v;
        } else if v != first_y {
            constant = false;
        }
        t_ref = Some(t);
        cnt += 1;
    }
    let t_ref = t_ref?;
    if constant || cnt == 1 {
        return Some((first_y, 0.0, t_ref));
    }
    let (mut mx, mut my) = (0.0, 0.0);
    for (&t, &v) in ts.iter().zip(vs) {
        if v.is_finite() {
            mx += secs_between(t, t_ref);
            my += v;
        }
    }
    let c = cnt as f64;
    mx /= c;
    my /= c;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (&t, &v) in ts.iter().zip(vs) {
        if v.is_finite() {
            let dx = secs_between(t, t_ref) - mx;
            sxx += dx * dx;
            sxy += dx * (v - my);
        }
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let slope = if slope.is_finite() { slope } else { 0.0 };
    Some((my - slope * mx, slope, t_ref))
}

/// Holt's linear trend over the finite samples, calling `on_error` with each
/// one-step-ahead error after the seed. `None` for fewer than two finite
/// samples.
fn holt_run(
    ts: &[i64],
    vs: &[f64],
    alpha: f64,
    beta: f64,
    mut on_error: impl FnMut(f64),
) -> Option<HoltState> {
    let n = ts.len().min(vs.len());
    let (ts, vs) = (&ts[..n], &vs[..n]);
    let mut n_finite = 0usize;
    let (mut first_t, mut last_t) = (0i64, 0i64);
    for (&t, &v) in ts.iter().zip(vs) {
        if v.is_finite() {
            if n_finite == 0 {
                first_t = t;
            }
            last_t = t;
            n_finite += 1;
        }
    }
    if n_finite < 2 {
        return None;
    }
    let k = seed_len(n_finite);
    let mut seen = 0;
    let mut end = n;
    for (i, v) in vs.iter().enumerate() {
        if v.is_finite() {
            seen += 1;
            if seen == k {
                end = i + 1;
                break;
            }
        }
    }
    let (level, slope, t0) = seed_fit(&ts[..end], &vs[..end])?;
    let step = secs_between(last_t, first_t) / (n_finite - 1) as f64;
    let step = if step > 0.0 && step.is_finite() {
        step
    } else {
        1.0
    };
    let one_minus_a = 1.0 - alpha;
    let one_minus_b = 1.0 - beta;

    let mut st = HoltState {
        level,
        slope,
        t_ms: t0,
    };
    for (&t, &y) in ts[end..].iter().zip(&vs[end..]) {
        if !y.is_finite() {
            continue;
        }
        let dt = secs_between(t, st.t_ms);
        if dt.is_nan() || dt <= 0.0 {
            // Same instant (or out of order): no time for the trend to act
            // on, so only the level moves.
            let e = y - st.level;
            on_error(e);
            st.level += alpha * e;
            continue;
        }
        let r = dt / step;
        let (a, b) = if r == 1.0 {
            (alpha, beta)
        } else {
            (1.0 - one_minus_a.powf(r), 1.0 - one_minus_b.powf(r))
        };
        let e;
        (st.level, st.slope, e) = holt_step(st.level, st.slope, y, dt, a, b);
        on_error(e);
        st.t_ms = t;
    }
    Some(st)
}

/// One update of Holt's linear trend, `dt` seconds after the state, with
/// smoothing constants `a` (level) and `b` (trend): the new (level, slope)
/// and the one-step-ahead error.
#[inline]
fn holt_step(level: f64, slope: f64, y: f64, dt: f64, a: f64, b: f64) -> (f64, f64, f64) {
    // Holt's trend update b' = β(ℓ' − ℓ)/dt + (1 − β)b is, with
    // ℓ' = ℓ + b·dt + αe, the same as b' = b + αβe/dt: written so, the
    // state's dependency chain is three operations long and the
    // coefficient (timestamps only) is computed ahead of it.
    let k = a * b / dt;
    let pred = level + slope * dt;
    let e = y - pred;
    // Error-correction form: a sample exactly on the forecast leaves the
    // state exactly as it was (a flat series keeps a slope of exactly 0).
    (pred + a * e, slope + k * e, e)
}

/// (level at `at_ms`, slope per second) of the model behind [`predict`].
fn model_at(ts_ms: &[i64], values: &[f64], at_ms: i64) -> Option<(f64, f64)> {
    let n = ts_ms.len().min(values.len());
    if n < 2 {
        return None;
    }
    if n < LINEAR_BELOW {
        let (slope, intercept) = linear_fit(ts_ms, values, at_ms)?;
        return Some((intercept, slope));
    }
    let st = holt_run(ts_ms, values, HOLT_ALPHA, HOLT_BETA, |_| {})?;
    Some((st.level + st.slope * secs_between(at_ms, st.t_ms), st.slope))
}

/// The forecast `horizon_s` seconds after `at_ms`: the language's
/// `predict(range, horizon)`. With fewer than [`LINEAR_BELOW`] samples it is
/// exactly Prometheus's `predict_linear(range, horizon)` evaluated at `at_ms`;
/// otherwise Holt's linear trend (see the module docs). `None` for fewer than
/// two samples (or fewer than two finite ones on the Holt path).
pub fn predict(ts_ms: &[i64], values: &[f64], at_ms: i64, horizon_s: f64) -> Option<f64> {
    let (level, slope) = model_at(ts_ms, values, at_ms)?;
    Some(slope * horizon_s + level)
}

/// Seconds from `at_ms` until the forecast of [`predict`] reaches
/// `threshold`, by the rule in the module docs: 0 when the newest value is at
/// it or already past it in the direction of travel, +∞ when the trend heads
/// away or would take more than 30 days. NaN when the model itself is NaN
/// (NaN samples in a short range, as `predict_linear` would give) or the
/// threshold is NaN; `None` for fewer than two samples.
pub fn time_to(ts_ms: &[i64], values: &[f64], at_ms: i64, threshold: f64) -> Option<f64> {
    let (level, slope) = model_at(ts_ms, values, at_ms)?;
    let n = ts_ms.len().min(values.len());
    Some(time_to_from_model(&values[..n], level, slope, threshold))
}

/// [`time_to`] given the model of the range's samples `vs`, as
/// [`models_over_windows`] gives it.
pub fn time_to_from_model(vs: &[f64], level: f64, slope: f64, threshold: f64) -> f64 {
    let first = vs.iter().copied().find(|v| v.is_finite());
    let last = vs.iter().rev().copied().find(|v| v.is_finite());
    let (Some(first), Some(last)) = (first, last) else {
        return f64::NAN;
    };
    crossing_rule(first, last, level, slope, threshold)
}

/// The model behind [`predict`] and [`time_to`], (level at `at_ms(i)`, slope
/// per second), for each window `(lo, hi)` (samples `lo..hi`) of one series,
/// the windows moving forward as a range evaluation's steps do. `None` where
/// [`model_at`] gives none.
///
/// Refitting Holt for every window costs the window's length per step (a 6h
/// range of minutely samples at a 1m step: 360 updates per step). Where a
/// window's samples are finite and evenly spaced, its smoothing constants
/// are the plain α and β, and Holt's update is the same linear map `A` at
/// every sample, `s' = A s + B y`. A run `G` of that recursion along the
/// whole stretch of even samples then gives every window at O(1): from the
/// window's seed `s0` at sample `p`, m samples on, the window's state is
/// `G[end] + A^m (s0 - G[p])`. That equals the per-window fit up to rounding
/// (both recursions contract by √(1−α) ≈ 0.84 a sample, so neither gathers
/// error); a test holds them to 1e-9. Other windows are fitted one by one.
pub fn models_over_windows(
    ts_ms: &[i64],
    values: &[f64],
    windows: &[(usize, usize)],
    at_ms: impl Fn(usize) -> i64,
) -> Vec<Option<(f64, f64)>> {
    let n = ts_ms.len().min(values.len());
    let (ts, vs) = (&ts_ms[..n], &values[..n]);
    let runs = even_runs(ts, vs);
    // changes[i]: how many samples before i differ from their predecessor.
    let mut changes = Vec::with_capacity(n);
    let mut count = 0u32;
    for i in 0..n {
        if i > 0 && vs[i].to_bits() != vs[i - 1].to_bits() {
            count += 1;
        }
        changes.push(count);
    }
    let mut recursion: Vec<(f64, f64)> = Vec::new();
    let mut power: Option<(usize, u64, [[f64; 2]; 2])> = None;
    let mut seed: Option<EvenSeed> = None;
    windows
        .iter()
        .enumerate()
        .map(|(i, &(lo, hi))| {
            let hi = hi.min(n);
            if hi <= lo {
                return None;
            }
            let len = hi - lo;
            let at = at_ms(i);
            if len < LINEAR_BELOW || runs[hi - 1] > lo {
                return model_at(&ts[lo..hi], &vs[lo..hi], at);
            }
            // Even (a positive spacing) and finite: the per-window fit takes
            // dt / step == 1 exactly only when the mean spacing rounds to the
            // spacing itself.
            let dt = secs_between(ts[lo + 1], ts[lo]);
            let step = secs_between(ts[hi - 1], ts[lo]) / (len - 1) as f64;
            if step != dt {
                return model_at(&ts[lo..hi], &vs[lo..hi], at);
            }
            if changes[hi - 1] == changes[lo] {
                // Flat: the per-window fit is exactly (value, 0); the
                // recursion would leave a rounding's worth of trend.
                return Some((vs[lo] + 0.0 * secs_between(at, ts[hi - 1]), 0.0));
            }
            if recursion.is_empty() {
                recursion = holt_recursion(ts, vs, &runs);
            }
            let k = seed_len(len);
            let p = lo + k - 1;
            if seed
                .as_ref()
                .is_none_or(|s| s.k != k || s.gap != ts[lo + 1] - ts[lo])
            {
                seed = Some(EvenSeed::new(&ts[lo..=p]));
            }
            let (level0, slope0) = seed.as_ref()?.fit(&vs[lo..=p]);
            let m = hi - 1 - p;
            let a = match power {
                Some((pm, pdt, a)) if pm == m && pdt == dt.to_bits() => a,
                _ => {
                    let a = matrix_power(holt_matrix(dt), m);
                    power = Some((m, dt.to_bits(), a));
                    a
                }
            };
            let (dl, ds) = (level0 - recursion[p].0, slope0 - recursion[p].1);
            let (end_level, end_slope) = recursion[hi - 1];
            let level = end_level + (a[0][0] * dl + a[0][1] * ds);
            let slope = end_slope + (a[1][0] * dl + a[1][1] * ds);
            Some((level + slope * secs_between(at, ts[hi - 1]), slope))
        })
        .collect()
}

/// [`seed_fit`] for k finite samples at one even spacing: the time offsets
/// from the last sample, their mean and spread are the same in every such
/// window, so only the sums over the values remain (same operations in the
/// same order: the same bits).
struct EvenSeed {
    k: usize,
    gap: i64,
    dx: Vec<f64>,
    mean_x: f64,
    sxx: f64,
}

impl EvenSeed {
    fn new(ts: &[i64]) -> EvenSeed {
        let t_ref = ts[ts.len() - 1];
        let c = ts.len() as f64;
        let mean_x = ts
            .iter()
            .map(|&t| secs_between(t, t_ref))
            .fold(0.0, |a, x| a + x)
            / c;
        let dx: Vec<f64> = ts
            .iter()
            .map(|&t| secs_between(t, t_ref) - mean_x)
            .collect();
        let sxx = dx.iter().fold(0.0, |a, d| a + d * d);
        EvenSeed {
            k: ts.len(),
            gap: ts[1] - ts[0],
            dx,
            mean_x,
            sxx,
        }
    }

    /// (level at the last sample, slope per second), as [`seed_fit`].
    fn fit(&self, vs: &[f64]) -> (f64, f64) {
        let first = vs[0];
        if vs.iter().all(|v| *v == first) {
            return (first, 0.0);
        }
        let my = vs.iter().fold(0.0, |a, v| a + v) / self.k as f64;
        let sxy = self
            .dx
            .iter()
            .zip(vs)
            .fold(0.0, |a, (d, v)| a + d * (v - my));
        let slope = if self.sxx > 0.0 { sxy / self.sxx } else { 0.0 };
        let slope = if slope.is_finite() { slope } else { 0.0 };
        (my - slope * self.mean_x, slope)
    }
}

/// Values beyond this are fitted window by window: the recursion's products
/// could overflow where a single window's fit does not.
const RECURSION_MAX_ABS: f64 = 1e100;

/// For each sample, the first sample of the stretch of finite samples at one
/// even spacing that holds it; `i + 1` for a non-finite (or huge) sample, so
/// that no window holding it counts as even.
fn even_runs(ts: &[i64], vs: &[f64]) -> Vec<usize> {
    let mut out = Vec::with_capacity(ts.len());
    let mut start = 0usize;
    for i in 0..ts.len() {
        if !vs[i].is_finite() || vs[i].abs() > RECURSION_MAX_ABS {
            start = i + 1;
        } else if i > start {
            let gap = ts[i].checked_sub(ts[i - 1]).filter(|g| *g > 0);
            let even = gap.is_some_and(|g| i - start < 2 || g == ts[start + 1] - ts[start]);
            if !even {
                start = if gap.is_some() { i - 1 } else { i };
            }
        }
        out.push(start);
    }
    out
}

/// Holt's update with the plain constants, run along each even stretch from
/// (first value, flat): the `G` of [`models_over_windows`].
fn holt_recursion(ts: &[i64], vs: &[f64], runs: &[usize]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if runs[i] >= i {
            out.push((vs[i], 0.0));
            continue;
        }
        let (level, slope) = out[i - 1];
        let dt = secs_between(ts[i], ts[i - 1]);
        let (level, slope, _) = holt_step(level, slope, vs[i], dt, HOLT_ALPHA, HOLT_BETA);
        out.push((level, slope));
    }
    out
}

/// Holt's update `s' = A s + B y` on (level, slope per second) as a matrix,
/// for samples `dt` seconds apart with the plain constants.
fn holt_matrix(dt: f64) -> [[f64; 2]; 2] {
    let k = HOLT_ALPHA * HOLT_BETA / dt;
    [
        [1.0 - HOLT_ALPHA, (1.0 - HOLT_ALPHA) * dt],
        [-k, 1.0 - k * dt],
    ]
}

fn matrix_power(mut a: [[f64; 2]; 2], mut m: usize) -> [[f64; 2]; 2] {
    let mul = |x: [[f64; 2]; 2], y: [[f64; 2]; 2]| {
        let mut z = [[0.0; 2]; 2];
        for (r, row) in z.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                *cell = x[r][0] * y[0][c] + x[r][1] * y[1][c];
            }
        }
        z
    };
    let mut out = [[1.0, 0.0], [0.0, 1.0]];
    while m > 0 {
        if m & 1 == 1 {
            out = mul(out, a);
        }
        a = mul(a, a);
        m >>= 1;
    }
    out
}

fn crossing_rule(first: f64, last: f64, level: f64, slope: f64, threshold: f64) -> f64 {
    if level.is_nan() || slope.is_nan() || threshold.is_nan() {
        return f64::NAN;
    }
    if last == threshold {
        return 0.0;
    }
    let side = if last > threshold { 1.0 } else { -1.0 };
    if slope == 0.0 {
        return f64::INFINITY;
    }
    if slope * side < 0.0 {
        let s = (threshold - level) / slope;
        if s.is_nan() {
            f64::NAN
        } else if s <= 0.0 {
            0.0
        } else if s > MAX_HORIZON_S {
            f64::INFINITY
        } else {
            s
        }
    } else if (first - threshold) * side < 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Theil-Sen slope per second: the median of the slopes between pairs of
/// samples (pairs at the same instant and non-finite samples skipped), the
/// language's `trend`. Up to 91 samples every pair is used; beyond that
/// [`THEIL_SEN_MAX_PAIRS`] pairs drawn by a fixed-seed generator, so the
/// answer is deterministic and the cost bounded. `None` without any usable
/// pair.
pub fn theil_sen(ts_ms: &[i64], values: &[f64]) -> Option<f64> {
    let n = ts_ms.len().min(values.len());
    let (ts, vs) = (&ts_ms[..n], &values[..n]);
    let slope = |i: usize, j: usize| -> Option<f64> {
        let (yi, yj) = (vs[i], vs[j]);
        if !yi.is_finite() || !yj.is_finite() {
            return None;
        }
        let dt = secs_between(ts[j], ts[i]);
        if dt == 0.0 {
            return None;
        }
        let s = (yj - yi) / dt;
        s.is_finite().then_some(s)
    };
    let mut slopes = Vec::with_capacity(THEIL_SEN_MAX_PAIRS.min(n * n.saturating_sub(1) / 2));
    if n.saturating_mul(n.saturating_sub(1)) / 2 <= THEIL_SEN_MAX_PAIRS {
        for i in 0..n {
            for j in i + 1..n {
                slopes.extend(slope(i, j));
            }
        }
    } else {
        // splitmix64: tiny, fast and good enough to pick pairs uniformly.
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut attempts = 0;
        while slopes.len() < THEIL_SEN_MAX_PAIRS && attempts < 4 * THEIL_SEN_MAX_PAIRS {
            attempts += 1;
            let i = (next() % n as u64) as usize;
            let j = (next() % n as u64) as usize;
            if i != j {
                slopes.extend(slope(i.min(j), i.max(j)));
            }
        }
    }
    robust::median(&slopes)
}

/// Pairs [`theil_sen`] looks at, at most.
pub const THEIL_SEN_MAX_PAIRS: usize = 4096;

// ------------------------------------------------------------------ analyzer

/// Which model a [`Forecaster`] fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Least squares: fewer than [`LINEAR_BELOW`] usable samples.
    LeastSquares,
    /// Holt's linear trend with fitted smoothing constants.
    Holt,
    /// Holt-Winters additive seasonal, on the series resampled to a grid.
    HoltWinters,
}

/// When a series reaches a threshold, with bounds from an 80% prediction
/// interval: `lower_s` is when the pessimistic edge of the interval gets
/// there, `upper_s` the optimistic edge (so `lower_s <= seconds <=
/// upper_s`). Seconds from the newest sample; +∞ for not within 30 days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhaustion {
    pub seconds: f64,
    pub lower_s: f64,
    pub upper_s: f64,
    pub method: Method,
}

/// One projected point of a forecast path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastPoint {
    pub t_ms: i64,
    pub value: f64,
    /// Lower and upper edges of the 80% prediction interval.
    pub lower: f64,
    pub upper: f64,
}

/// A forecast path for charts: the model used and the projected points.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastPath {
    pub method: Method,
    pub points: Vec<ForecastPoint>,
}

/// More samples than this are averaged into this many time bins first.
const MAX_POINTS: usize = 10_000;
/// Holt-Winters grids hold at most this many points (the newest kept).
const MAX_GRID: usize = 5_000;
/// Holt-Winters seasons hold at most this many grid points.
const MAX_SEASON: usize = 288;
/// Seasonal forecast paths are scanned in at most this many steps.
const MAX_SCAN: usize = 20_000;
/// Rungs of the geometric horizon ladder for trend-only models (2.5% apart).
const GEOMETRIC_SCAN: usize = 600;

const HOLT_ALPHAS: [f64; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const HOLT_BETAS: [f64; 5] = [0.01, 0.03, 0.1, 0.2, 0.4];
const HW_ALPHAS: [f64; 6] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7];
const HW_BETAS: [f64; 4] = [0.01, 0.05, 0.1, 0.2];
const HW_GAMMAS: [f64; 4] = [0.05, 0.1, 0.2, 0.4];

#[derive(Debug, Clone)]
enum Model {
    /// x in seconds relative to the origin (the newest sample).
    Linear {
        level: f64,
        slope: f64,
        sigma: f64,
        n: f64,
        x_mean: f64,
        sxx: f64,
    },
    Holt {
        level: f64,
        slope: f64,
        sigma: f64,
        alpha: f64,
        beta: f64,
        step_s: f64,
    },
    /// Grid anchored at the origin; `trend` per grid step.
    HoltWinters {
        level: f64,
        trend: f64,
        season: Vec<f64>,
        end_index: usize,
        step_s: f64,
        sigma: f64,
        alpha: f64,
        beta: f64,
        gamma: f64,
    },
}

/// A model fitted once to a series, for the analyzer: when it reaches a
/// threshold ([`Forecaster::exhaustion`]) and where it is headed
/// ([`Forecaster::point`]).
///
/// Fitting cleans the input (finite samples, sorted, equal timestamps
/// averaged, more than 10 000 samples averaged into 10 000 time bins), then:
/// Holt-Winters additive when a seasonal period is given and the data span at
/// least two periods (resampled to a grid of at most 288 points per period,
/// constants α, β, γ by grid search on one-step-ahead squared error); else
/// Holt's linear trend when there are at least [`LINEAR_BELOW`] samples
/// (α, β by grid search likewise); else least squares. The prediction
/// interval comes from the spread of one-step-ahead errors (1.4826·MAD, or
/// their RMS when the MAD is 0) and the usual ETS variance formulas; for least
/// squares from the regression's residual variance.
#[derive(Debug, Clone)]
pub struct Forecaster {
    method: Method,
    origin_ms: i64,
    first_value: f64,
    last_value: f64,
    model: Model,
}

impl Forecaster {
    /// Fits a model; `None` with fewer than two finite samples.
    pub fn fit(ts_ms: &[i64], values: &[f64], seasonal_period_ms: Option<i64>) -> Option<Self> {
        let (t, y) = prepare(ts_ms, values);
        let n = t.len();
        if n < 2 {
            return None;
        }
        let origin_ms = t[n - 1];
        let (first_value, last_value) = (y[0], y[n - 1]);
        let hw = seasonal_period_ms.and_then(|p| fit_holt_winters(&t, &y, p));
        let (method, model) = if let Some(m) = hw {
            (Method::HoltWinters, m)
        } else if n >= LINEAR_BELOW
            && let Some(m) = fit_holt(&t, &y)
        {
            (Method::Holt, m)
        } else {
            (Method::LeastSquares, fit_linear(&t, &y))
        };
        Some(Self {
            method,
            origin_ms,
            first_value,
            last_value,
            model,
        })
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Time of the newest sample: horizons count from here.
    pub fn origin_ms(&self) -> i64 {
        self.origin_ms
    }

    /// Forecast and interval at `t_ms`.
    pub fn point(&self, t_ms: i64) -> ForecastPoint {
        let (value, se) = self.value_se(secs_between(t_ms, self.origin_ms));
        ForecastPoint {
            t_ms,
            value,
            lower: value - INTERVAL_Z * se,
            upper: value + INTERVAL_Z * se,
        }
    }

    fn slope_sign(&self) -> f64 {
        let s = match &self.model {
            Model::Linear { slope, .. } | Model::Holt { slope, .. } => *slope,
            Model::HoltWinters { trend, .. } => *trend,
        };
        if s > 0.0 {
            1.0
        } else if s < 0.0 {
            -1.0
        } else {
            0.0
        }
    }

    /// Point forecast and its standard error `h_s` seconds after the origin.
    fn value_se(&self, h_s: f64) -> (f64, f64) {
        match &self.model {
            Model::Linear {
                level,
                slope,
                sigma,
                n,
                x_mean,
                sxx,
            } => {
                let lever = if *sxx > 0.0 {
                    (h_s - x_mean).powi(2) / sxx
                } else {
                    0.0
                };
                (level + slope * h_s, sigma * (1.0 + 1.0 / n + lever).sqrt())
            }
            Model::Holt {
                level,
                slope,
                sigma,
                alpha,
                beta,
                step_s,
            } => {
                // ETS(A,A,N): var_h = σ²(1 + Σ_{j<h} (α(1 + βj))²), h in steps.
                let k = (h_s / step_s - 1.0).max(0.0);
                let s =
                    k + beta * k * (k + 1.0) + beta * beta * k * (k + 1.0) * (2.0 * k + 1.0) / 6.0;
                (
                    level + slope * h_s,
                    sigma * (1.0 + alpha * alpha * s).sqrt(),
                )
            }
            Model::HoltWinters {
                level,
                trend,
                season,
                end_index,
                step_s,
                sigma,
                alpha,
                beta,
                gamma,
            } => {
                let k = h_s / step_s;
                let m = season.len();
                let value = if k.is_finite() && m > 0 {
                    let j0 = k.floor();
                    let frac = k - j0;
                    let base = *end_index as i128 + j0 as i128;
                    let at = |off: i128| season[(base + off).rem_euclid(m as i128) as usize];
                    let s = at(0) + (at(1) - at(0)) * frac;
                    level + trend * k + s
                } else {
                    f64::NAN
                };
                // ETS(A,A,A): c_j = α + αβj + γ·[j a multiple of m].
                let kk = (k - 1.0).max(0.0);
                let lin = alpha
                    * alpha
                    * (kk
                        + beta * kk * (kk + 1.0)
                        + beta * beta * kk * (kk + 1.0) * (2.0 * kk + 1.0) / 6.0);
                let q = (kk / m.max(1) as f64).floor();
                let seas = q * gamma * gamma
                    + 2.0 * gamma * alpha * q
                    + 2.0 * gamma * alpha * beta * m as f64 * q * (q + 1.0) / 2.0;
                (value, sigma * (1.0 + lin + seas).max(0.0).sqrt())
            }
        }
    }

    /// The i-th horizon (from 1) at which the forecast is checked, up to 30
    /// days. A seasonal path is walked in grid steps, so no peak is stepped
    /// over; a straight line with a smooth interval needs only a geometric
    /// ladder (2.5% apart), a crossing then being pinned down by bisection.
    fn scan_horizon(&self, i: usize) -> Option<f64> {
        match &self.model {
            Model::HoltWinters { step_s, .. } => {
                let dh = step_s.max(MAX_HORIZON_S / MAX_SCAN as f64);
                let steps = (MAX_HORIZON_S / dh).ceil() as usize;
                (i <= steps).then(|| (i as f64 * dh).min(MAX_HORIZON_S))
            }
            Model::Linear { .. } | Model::Holt { .. } => {
                (i <= GEOMETRIC_SCAN).then(|| MAX_HORIZON_S.powf(i as f64 / GEOMETRIC_SCAN as f64))
            }
        }
    }

    /// When the forecast reaches `threshold`, with bounds; seconds from the
    /// newest sample. The rule is `time_to`'s (module docs), except that the
    /// forecast path is followed rather than its trend alone, so a seasonal
    /// peak that reaches the threshold counts.
    pub fn exhaustion(&self, threshold: f64) -> Exhaustion {
        let done = |s: f64| Exhaustion {
            seconds: s,
            lower_s: s,
            upper_s: s,
            method: self.method,
        };
        let v = self.last_value;
        if threshold.is_nan() {
            return done(f64::NAN);
        }
        if v == threshold {
            return done(0.0);
        }
        let side = if v > threshold { 1.0 } else { -1.0 };
        if self.slope_sign() * side > 0.0 && (self.first_value - threshold) * side < 0.0 {
            return done(0.0);
        }
        // g(h) > 0 while the curve (forecast, near edge, far edge of the
        // interval) is still on the newest sample's side of the threshold.
        let gaps = |h: f64| -> [f64; 3] {
            let (f, se) = self.value_se(h);
            let w = INTERVAL_Z * se;
            [
                (f - threshold) * side,
                (f - side * w - threshold) * side,
                (f + side * w - threshold) * side,
            ]
        };
        let mut found = [f64::INFINITY; 3];
        for (i, g) in gaps(0.0).iter().enumerate() {
            if g.is_nan() || *g <= 0.0 {
                found[i] = if g.is_nan() { f64::NAN } else { 0.0 };
            }
        }
        let mut h_prev = 0.0;
        let mut step = 1;
        while let Some(h) = self.scan_horizon(step) {
            if found.iter().all(|f| *f != f64::INFINITY) {
                break;
            }
            let g = gaps(h);
            for i in 0..3 {
                if found[i] == f64::INFINITY && (g[i].is_nan() || g[i] <= 0.0) {
                    found[i] = if g[i].is_nan() {
                        f64::NAN
                    } else {
                        let (mut a, mut b) = (h_prev, h);
                        for _ in 0..60 {
                            let mid = 0.5 * (a + b);
                            if gaps(mid)[i] > 0.0 {
                                a = mid;
                            } else {
                                b = mid;
                            }
                            if b - a <= 1e-9 * b + 1e-6 {
                                break;
                            }
                        }
                        b
                    };
                }
            }
            h_prev = h;
            step += 1;
        }
        let [seconds, lower, upper] = found;
        Exhaustion {
            seconds,
            lower_s: if lower > seconds { seconds } else { lower },
            upper_s: if upper < seconds { seconds } else { upper },
            method: self.method,
        }
    }
}

/// Time until the series reaches `threshold` (seconds from its newest
/// sample), with 80% bounds and the model used: see [`Forecaster`].
/// `seasonal_period_ms` turns on Holt-Winters when the data span two periods.
pub fn forecast_exhaustion(
    ts_ms: &[i64],
    values: &[f64],
    threshold: f64,
    seasonal_period_ms: Option<i64>,
) -> Option<Exhaustion> {
    Some(Forecaster::fit(ts_ms, values, seasonal_period_ms)?.exhaustion(threshold))
}

/// The projected values (with 80% interval) at each of `at_ms`, normally
/// times after the newest sample, for charts. Same model as
/// [`forecast_exhaustion`].
pub fn forecast_path(
    ts_ms: &[i64],
    values: &[f64],
    seasonal_period_ms: Option<i64>,
    at_ms: &[i64],
) -> Option<ForecastPath> {
    let f = Forecaster::fit(ts_ms, values, seasonal_period_ms)?;
    Some(ForecastPath {
        method: f.method(),
        points: at_ms.iter().map(|t| f.point(*t)).collect(),
    })
}

/// Finite samples, sorted by time, equal timestamps averaged, and at most
/// [`MAX_POINTS`] of them (time bins averaged beyond that).
fn prepare(ts_ms: &[i64], values: &[f64]) -> (Vec<i64>, Vec<f64>) {
    let mut pts: Vec<(i64, f64)> = ts_ms
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (*t, *v))
        .collect();
    if !pts.is_sorted_by_key(|p| p.0) {
        pts.sort_by_key(|p| p.0);
    }
    let mut t: Vec<i64> = Vec::with_capacity(pts.len());
    let mut y: Vec<f64> = Vec::with_capacity(pts.len());
    let mut cnt = 0.0f64;
    for (ti, vi) in pts {
        if t.last() == Some(&ti) {
            // Running mean: no overflow for huge values.
            cnt += 1.0;
            if let Some(last) = y.last_mut() {
                *last += (vi - *last) / cnt;
            }
        } else {
            t.push(ti);
            y.push(vi);
            cnt = 1.0;
        }
    }
    let n = t.len();
    if n <= MAX_POINTS {
        return (t, y);
    }
    let span = (i128::from(t[n - 1]) - i128::from(t[0])) as f64;
    let width = span / MAX_POINTS as f64;
    let (mut bt, mut by) = (
        Vec::with_capacity(MAX_POINTS),
        Vec::with_capacity(MAX_POINTS),
    );
    let mut cur: Option<usize> = None;
    let (mut st, mut sy, mut c) = (0.0f64, 0.0f64, 0.0f64);
    let flush = |bt: &mut Vec<i64>, by: &mut Vec<f64>, st: f64, sy: f64, c: f64| {
        if c > 0.0 {
            bt.push(t[0].saturating_add((st / c) as i64));
            by.push(sy / c);
        }
    };
    for (ti, yi) in t.iter().zip(&y) {
        let off = (i128::from(*ti) - i128::from(t[0])) as f64;
        let b = ((off / width) as usize).min(MAX_POINTS - 1);
        if cur != Some(b) {
            flush(&mut bt, &mut by, st, sy, c);
            (st, sy, c) = (0.0, 0.0, 0.0);
            cur = Some(b);
        }
        st += off;
        sy += yi;
        c += 1.0;
    }
    flush(&mut bt, &mut by, st, sy, c);
    // Averaging can overflow for huge values; drop such bins.
    let (bt, by): (Vec<i64>, Vec<f64>) = bt
        .into_iter()
        .zip(by)
        .filter(|(_, v)| v.is_finite())
        .unzip();
    (bt, by)
}

/// Scale of one-step errors: 1.4826·MAD, or the RMS when the MAD is 0.
fn error_sigma(errors: &[f64]) -> f64 {
    let finite: Vec<f64> = errors.iter().copied().filter(|e| e.is_finite()).collect();
    if finite.is_empty() {
        return 0.0;
    }
    let s = robust::mad_scaled(&finite).unwrap_or(0.0);
    if s > 0.0 {
        return s;
    }
    (finite.iter().map(|e| e * e).sum::<f64>() / finite.len() as f64).sqrt()
}

fn fit_linear(t: &[i64], y: &[f64]) -> Model {
    let origin = t[t.len() - 1];
    let n = t.len() as f64;
    let x_mean = t.iter().map(|ti| secs_between(*ti, origin)).sum::<f64>() / n;
    let y_mean = y.iter().sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (ti, yi) in t.iter().zip(y) {
        let dx = secs_between(*ti, origin) - x_mean;
        sxx += dx * dx;
        sxy += dx * (yi - y_mean);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let level = y_mean - slope * x_mean;
    let sigma = if t.len() > 2 {
        let sse: f64 = t
            .iter()
            .zip(y)
            .map(|(ti, yi)| (yi - (level + slope * secs_between(*ti, origin))).powi(2))
            .sum();
        (sse / (n - 2.0)).sqrt()
    } else {
        0.0
    };
    Model::Linear {
        level,
        slope,
        sigma,
        n,
        x_mean,
        sxx,
    }
}

fn fit_holt(t: &[i64], y: &[f64]) -> Option<Model> {
    let mut best: Option<(f64, f64, f64)> = None;
    for &a in &HOLT_ALPHAS {
        for &b in &HOLT_BETAS {
            let mut sse = 0.0;
            holt_run(t, y, a, b, |e| sse += e * e)?;
            if sse.is_finite() && best.is_none_or(|(s, _, _)| sse < s) {
                best = Some((sse, a, b));
            }
        }
    }
    let (_, alpha, beta) = best?;
    let mut errors = Vec::with_capacity(t.len());
    let st = holt_run(t, y, alpha, beta, |e| errors.push(e))?;
    let n = t.len();
    let step_s = secs_between(t[n - 1], t[0]) / (n - 1) as f64;
    Some(Model::Holt {
        level: st.level + st.slope * secs_between(t[n - 1], st.t_ms),
        slope: st.slope,
        sigma: error_sigma(&errors),
        alpha,
        beta,
        step_s: if step_s > 0.0 { step_s } else { 1.0 },
    })
}

fn fit_holt_winters(t: &[i64], y: &[f64], period_ms: i64) -> Option<Model> {
    let n = t.len();
    let period = period_ms as f64;
    let span = (i128::from(t[n - 1]) - i128::from(t[0])) as f64;
    if period <= 0.0 || span < 2.0 * period {
        return None;
    }
    let gap = robust::median_gap_ms(t, y)?;
    let per = (period / gap).round();
    if per.is_nan() || per < 3.0 {
        return None;
    }
    let m = (per as usize).min(MAX_SEASON);
    let step = period / m as f64;
    let len = ((span / step).floor() as usize)
        .saturating_add(1)
        .min(MAX_GRID);
    if len < 2 * m + 1 {
        return None;
    }
    let grid = resample::resample_to_end(t, y, t[n - 1], step, len)?;

    let mut season = Vec::with_capacity(m);
    let mut best: Option<(f64, f64, f64, f64)> = None;
    for &a in &HW_ALPHAS {
        for &b in &HW_BETAS {
            for &g in HW_GAMMAS.iter().filter(|g| **g <= 1.0 - a) {
                let mut sse = 0.0;
                hw_run(&grid, m, a, b, g, &mut season, |_, e| sse += e * e);
                if sse.is_finite() && best.is_none_or(|(s, ..)| sse < s) {
                    best = Some((sse, a, b, g));
                }
            }
        }
    }
    let (_, alpha, beta, gamma) = best?;
    let mut errors = Vec::with_capacity(len);
    // The first season after the seed still carries the seed's error.
    let burn = if len >= 3 * m { 2 * m } else { m };
    let (level, trend) = hw_run(&grid, m, alpha, beta, gamma, &mut season, |i, e| {
        if i >= burn {
            errors.push(e);
        }
    });
    if !level.is_finite() || !trend.is_finite() {
        return None;
    }
    Some(Model::HoltWinters {
        level,
        trend,
        season,
        end_index: len - 1,
        step_s: step / 1e3,
        sigma: error_sigma(&errors),
        alpha,
        beta,
        gamma,
    })
}

/// Additive Holt-Winters (error-correction form, ETS(A,A,A)) over a regular
/// grid with season length `m`, seeded from the first two seasons. Leaves
/// the seasonal state in `season` (indexed by grid index mod m) and returns
/// (level, trend per step) at the last grid point.
fn hw_run(
    y: &[f64],
    m: usize,
    alpha: f64,
    beta: f64,
    gamma: f64,
    season: &mut Vec<f64>,
    mut on_error: impl FnMut(usize, f64),
) -> (f64, f64) {
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let m1 = mean(&y[..m]);
    let m2 = mean(&y[m..2 * m]);
    let mut trend = (m2 - m1) / m as f64;
    let centre = (m as f64 - 1.0) / 2.0;
    season.clear();
    season.extend(
        y[..m]
            .iter()
            .enumerate()
            .map(|(i, v)| v - (m1 + trend * (i as f64 - centre))),
    );
    let s_mean = mean(season);
    season.iter_mut().for_each(|s| *s -= s_mean);
    let mut level = m1 + trend * centre;
    for (i, &yi) in y.iter().enumerate().skip(m) {
        let si = season[i % m];
        let e = yi - (level + trend + si);
        on_error(i, e);
        level += trend + alpha * e;
        trend += alpha * beta * e;
        season[i % m] = si + gamma * e;
    }
    (level, trend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testutil::{HOSTILE, garbage_times, garbage_value};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    /// Samples of (t, v) in the window (at - range, at], as the engine passes
    /// them (Prometheus 3 semantics).
    fn window(ts: &[i64], vs: &[f64], at: i64, range: i64) -> (Vec<i64>, Vec<f64>) {
        ts.iter()
            .zip(vs)
            .filter(|(t, _)| **t > at - range && **t <= at)
            .map(|(t, v)| (*t, *v))
            .unzip()
    }

    /// Sliding windows at a step, as the engine forms them: (lo, hi) of the
    /// samples in (t - range, t] for t = first + step, first + 2 step, ...
    fn sliding_windows(ts: &[i64], range: i64, step: i64) -> (Vec<(usize, usize)>, Vec<i64>) {
        let (first, last) = (ts[0], ts[ts.len() - 1]);
        let mut out = (Vec::new(), Vec::new());
        let mut t = first + step;
        while t < last + range {
            let lo = ts.partition_point(|x| *x <= t - range);
            let hi = ts.partition_point(|x| *x <= t);
            out.0.push((lo, hi));
            out.1.push(t);
            t += step;
        }
        out
    }

    /// The sliding models equal a fit of each window on its own: on even
    /// minutely series with trends, noise and large offsets, and across gaps,
    /// NaN, repeated timestamps, a change of spacing and spacings that are
    /// not whole seconds (where they fit window by window).
    #[test]
    fn sliding_models_equal_per_window_fits() {
        let mut rng = StdRng::seed_from_u64(5);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut worst = (0.0f64, 0.0f64);
        for case in 0..24 {
            let spacing = [MIN, 15_000, 1_234, 10 * MIN][case % 4];
            let n = 300 + 97 * case;
            let offset = [0.0, 1e11, -3e6, 1e9][(case / 4) % 4];
            let slope = [0.0, -2e4, 0.37, 1e3][(case / 2) % 4];
            let mut ts = Vec::with_capacity(n);
            let mut vs = Vec::with_capacity(n);
            let mut t = 1_700_000_000_000i64;
            for i in 0..n {
                let mut gap = spacing;
                if case >= 8 && rng.random_bool(0.01) {
                    gap *= rng.random_range(2..30); // the process was down
                }
                if case >= 12 && i == n / 2 {
                    gap = spacing / 2; // the scrape interval changed
                }
                if case >= 16 && rng.random_bool(0.003) {
                    gap = 0; // a repeated timestamp
                }
                t += gap;
                ts.push(t);
                let mut v = offset
                    + slope * (i as f64) * (spacing as f64 / 1e3)
                    + noise.sample(&mut rng) * (1.0 + offset.abs() * 1e-6);
                if case >= 20 && rng.random_bool(0.005) {
                    v = [f64::NAN, f64::INFINITY, 1e200][rng.random_range(0..3)];
                }
                if case % 8 == 7 && i > n / 3 {
                    v = offset; // flat from here on
                }
                vs.push(v);
            }
            for range in [HOUR, 6 * HOUR, 12 * spacing] {
                let (windows, at) = sliding_windows(&ts, range, MIN);
                let fast = models_over_windows(&ts, &vs, &windows, |i| at[i]);
                for ((&(lo, hi), &t), got) in windows.iter().zip(&at).zip(&fast) {
                    let want = (hi > lo)
                        .then(|| model_at(&ts[lo..hi], &vs[lo..hi], t))
                        .flatten();
                    match (*got, want) {
                        (Some((l, s)), Some((wl, ws))) => {
                            let scale = wl.abs().max(1.0);
                            // A slope error shows as a level error across the window.
                            let span_s = ((ts[hi - 1] - ts[lo]) as f64 / 1e3).max(1.0);
                            let (el, es) =
                                ((l - wl).abs() / scale, (s - ws).abs() * span_s / scale);
                            worst = (worst.0.max(el), worst.1.max(es));
                            assert!(
                                el <= 1e-9 && es <= 1e-9 || l.to_bits() == wl.to_bits(),
                                "case {case} range {range} window {lo}..{hi}: ({l}, {s}) vs ({wl}, {ws})"
                            );
                            if ws == 0.0 && vs[lo..hi].iter().all(|v| *v == vs[hi - 1]) {
                                assert_eq!(s, 0.0, "a flat window keeps a flat trend");
                            }
                        }
                        (got, want) => assert_eq!(
                            got.map(|(l, s)| (l.to_bits(), s.to_bits())),
                            want.map(|(l, s)| (l.to_bits(), s.to_bits())),
                            "case {case} range {range} window {lo}..{hi}"
                        ),
                    }
                }
            }
        }
        eprintln!(
            "worst relative differences: level {:e}, slope {:e}",
            worst.0, worst.1
        );
    }

    #[test]
    fn linear_fit_hand_computed() {
        // x = -3..0 s, y = 1 3 2 5: Σx=-6 Σy=11 Σxy=-11 Σx²=14, n=4
        // cov = -11 + 66/4 = 5.5, var = 14 - 9 = 5, slope 1.1,
        // intercept = 11/4 + 1.1 * 6/4 = 4.4
        let ts = [0, 1000, 2000, 3000];
        let vs = [1.0, 3.0, 2.0, 5.0];
        let (s, i) = linear_fit(&ts, &vs, 3000).unwrap();
        assert!(close(s, 1.1, 1e-15) && close(i, 4.4, 1e-15), "{s} {i}");
        // At the first sample: 4.4 - 3.3.
        let (s0, i0) = linear_fit(&ts, &vs, 0).unwrap();
        assert!(close(s0, 1.1, 1e-15) && close(i0, 1.1, 1e-14), "{s0} {i0}");
    }

    #[test]
    fn linear_fit_matches_prometheus_testdata() {
        // promql/testdata/functions.test: testcounter_reset_middle 0+10x4 0+10x5
        // at 5m steps, evaluated at 50m over [100m].
        let ts: Vec<i64> = (0..11).map(|i| i * 5 * MIN).collect();
        let vs = [
            0.0, 10.0, 20.0, 30.0, 40.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0,
        ];
        let (deriv, _) = linear_fit(&ts, &vs, ts[0]).unwrap();
        assert_eq!(deriv, 0.010606060606060607);
        let p = predict(&ts, &vs, 50 * MIN, 3600.0).unwrap();
        assert!(close(p, 76.81818181818181, 1e-14), "{p}");
        let (_, at_end) = linear_fit(&ts, &vs, 50 * MIN).unwrap();
        assert!(close(at_end, 38.63636363636364, 1e-14), "{at_end}");
    }

    #[test]
    fn linear_fit_special_cases() {
        assert_eq!(linear_fit(&[], &[], 0), None);
        assert_eq!(linear_fit(&[1], &[1.0], 0), None);
        // Constant values: exactly flat, even with awkward values.
        assert_eq!(
            linear_fit(&[0, 7, 19], &[0.1, 0.1, 0.1], 5),
            Some((0.0, 0.1))
        );
        let (s, i) = linear_fit(&[0, 1000], &[f64::INFINITY, f64::INFINITY], 0).unwrap();
        assert!(s.is_nan() && i.is_nan());
        // Equal timestamps: var_x = 0, as in Prometheus.
        let (s, _) = linear_fit(&[5, 5], &[1.0, 2.0], 5).unwrap();
        assert!(!s.is_finite());
        let (s, _) = linear_fit(&[0, 1000, 2000], &[1.0, f64::NAN, 3.0], 0).unwrap();
        assert!(s.is_nan());
        // Mismatched lengths use the common prefix.
        assert_eq!(
            linear_fit(&[0, 1000, 2000], &[1.0, 2.0], 0).map(|f| f.0),
            Some(1.0)
        );
        // Timestamps at the ends of i64 do not overflow.
        assert!(linear_fit(&[i64::MIN, i64::MAX], &[1.0, 2.0], i64::MIN).is_some());
    }

    #[test]
    fn predict_short_range_is_predict_linear() {
        let ts = [0, 60_000, 130_000, 180_000, 240_000];
        let vs = [3.0, 4.5, 4.0, 6.5, 7.0];
        for n in 2..=5 {
            let at = 300_000;
            let (slope, intercept) = linear_fit(&ts[..n], &vs[..n], at).unwrap();
            assert_eq!(
                predict(&ts[..n], &vs[..n], at, 600.0),
                Some(slope * 600.0 + intercept)
            );
        }
        assert_eq!(predict(&[1], &[1.0], 1, 1.0), None);
    }

    #[test]
    fn holt_on_a_clean_line_is_the_line() {
        // Irregular spacing: gaps of 50..70 s.
        let mut t = 1_700_000_000_000i64;
        let mut ts = Vec::new();
        for i in 0..100 {
            ts.push(t);
            t += 50_000 + (i * 7919 % 21) * 1000;
        }
        let line = |t: i64| 5.0 + 0.25 * secs_between(t, ts[0]);
        let vs: Vec<f64> = ts.iter().map(|t| line(*t)).collect();
        let at = ts[99] + 30_000;
        for n in [LINEAR_BELOW, 40, 100] {
            let p = predict(&ts[..n], &vs[..n], at, 600.0).unwrap();
            let want = line(at + 600_000);
            assert!(close(p, want, 1e-9), "n={n}: {p} vs {want}");
        }
        // And time_to agrees with the line: 5 + 0.25 s reaches 10_000 at
        // s = 39_980 after ts[0].
        let tt = time_to(&ts, &vs, ts[99], 10_000.0).unwrap();
        let want = 39_980.0 - secs_between(ts[99], ts[0]);
        assert!(close(tt, want, 1e-9), "{tt} vs {want}");
        // A flat series stays exactly flat.
        let flat = vec![0.1; 100];
        assert_eq!(predict(&ts, &flat, at, 1e6), Some(0.1));
        assert_eq!(time_to(&ts, &flat, at, 1.0), Some(f64::INFINITY));
    }

    #[test]
    fn holt_follows_a_change_of_slope_faster_than_least_squares() {
        // 50 samples flat, then 20 samples rising 1/s.
        let ts: Vec<i64> = (0..70).map(|i| i * 1000).collect();
        let vs: Vec<f64> = (0..70)
            .map(|i| if i < 50 { 0.0 } else { f64::from(i - 49) })
            .collect();
        let holt = predict(&ts, &vs, 69_000, 100.0).unwrap();
        let (s, i) = linear_fit(&ts, &vs, 69_000).unwrap();
        let ls = i + s * 100.0;
        assert!(holt > ls, "holt {holt} ls {ls}");
        assert!(holt > 80.0, "{holt}");
    }

    /// The MemoryExhaustion test of rules/mcp.rules: 200 MB flat for two
    /// hours, then +10 MB a minute, each minute; limit 1 GiB.
    fn memory() -> (Vec<i64>, Vec<f64>) {
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        for i in 0..120 {
            ts.push(i * MIN);
            vs.push(200e6);
        }
        for j in 0..=80 {
            ts.push((120 + j) * MIN);
            vs.push(210e6 + 10e6 * j as f64);
        }
        (ts, vs)
    }

    #[test]
    fn time_to_memory_leak() {
        let (ts, vs) = memory();
        let limit = 1_073_741_824.0;
        let at = |t: i64| {
            let (t_, v_) = window(&ts, &vs, t, HOUR);
            time_to(&t_, &v_, t, limit).unwrap()
        };
        assert_eq!(at(90 * MIN), f64::INFINITY);
        let late = at(170 * MIN);
        assert!(late < 4.0 * 3600.0, "2h50m: {late}");
        // The truth is (1073.7 - 700) MB at 10 MB/min: 37 minutes.
        assert!((late - 37.4 * 60.0).abs() < 10.0 * 60.0, "2h50m: {late}");
        // `for 15m` needs it below 4h from 2h35m on.
        for m in 155..=170 {
            assert!(at(m * MIN) < 4.0 * 3600.0, "at {m}m: {}", at(m * MIN));
        }
    }

    /// The DiskFillingUp test: 100 GB falling 1 GB/h in 10-minute samples for
    /// six hours, then 6 GB/h.
    fn disk() -> (Vec<i64>, Vec<f64>) {
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        for i in 0..=36 {
            ts.push(i * 10 * MIN);
            vs.push(100e9 - 166_666_667.0 * i as f64);
        }
        for j in 0..=60 {
            ts.push(370 * MIN + j * 10 * MIN);
            vs.push(94e9 - 1e9 * j as f64);
        }
        (ts, vs)
    }

    #[test]
    fn time_to_disk_filling_up() {
        let (ts, vs) = disk();
        let at = |t: i64| {
            let (t_, v_) = window(&ts, &vs, t, 6 * HOUR);
            time_to(&t_, &v_, t, 0.0).unwrap()
        };
        let early = at(3 * HOUR);
        assert!(early > 48.0 * 3600.0, "3h: {early}");
        // 97 GB at 1 GB/h.
        assert!(close(early, 97.0 * 3600.0, 1e-6), "3h: {early}");
        let late = at(16 * HOUR);
        assert!(late < 48.0 * 3600.0, "16h: {late}");
        // `for 30m` needs it from 15h30m on.
        for m in (930..=960).step_by(10) {
            assert!(at(m * MIN) < 48.0 * 3600.0, "at {m}m: {}", at(m * MIN));
        }
    }

    #[test]
    fn time_to_direction_rules() {
        let ts: Vec<i64> = (0..20).map(|i| i * MIN).collect();
        let rising: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i)).collect();
        let falling: Vec<f64> = rising.iter().rev().copied().collect();
        let at = 19 * MIN;
        // Rising towards 200: 81 more at 1/min.
        assert!(close(
            time_to(&ts, &rising, at, 200.0).unwrap(),
            81.0 * 60.0,
            1e-9
        ));
        // Rising away from 0 (free bytes growing): never.
        assert_eq!(time_to(&ts, &rising, at, 0.0), Some(f64::INFINITY));
        // Rising through 110 within the range (memory past its limit): now.
        assert_eq!(time_to(&ts, &rising, at, 110.0), Some(0.0));
        // Falling towards 0.
        assert!(close(
            time_to(&ts, &falling, at, 0.0).unwrap(),
            100.0 * 60.0,
            1e-9
        ));
        // Falling away from a limit above.
        assert_eq!(time_to(&ts, &falling, at, 500.0), Some(f64::INFINITY));
        // Falling through 110: past it.
        assert_eq!(time_to(&ts, &falling, at, 110.0), Some(0.0));
        // Exactly at the threshold.
        assert_eq!(time_to(&ts, &falling, at, 100.0), Some(0.0));
        // Too far out.
        assert_eq!(time_to(&ts, &rising, at, 1e9), Some(f64::INFINITY));
        assert!(time_to(&ts, &rising, at, f64::NAN).unwrap().is_nan());
        // Short ranges use predict_linear's line.
        assert!(close(
            time_to(&ts[..5], &rising[..5], 4 * MIN, 200.0).unwrap(),
            96.0 * 60.0,
            1e-9
        ));
    }

    #[test]
    fn theil_sen_ignores_outliers() {
        let ts: Vec<i64> = (0..50).map(|i| i * 1000).collect();
        let mut vs: Vec<f64> = (0..50).map(|i| 2.0 * f64::from(i)).collect();
        vs[10] = 1e6;
        vs[30] = -1e6;
        vs[31] = f64::NAN;
        assert_eq!(theil_sen(&ts, &vs), Some(2.0));
        // Large n: subsampled, deterministic, still right.
        let ts: Vec<i64> = (0..5000).map(|i| i * 1000).collect();
        let vs: Vec<f64> = (0..5000)
            .map(|i| -0.5 * f64::from(i) + if i % 97 == 0 { 1e9 } else { 0.0 })
            .collect();
        let a = theil_sen(&ts, &vs).unwrap();
        assert_eq!(Some(a), theil_sen(&ts, &vs));
        assert!(close(a, -0.5, 1e-12), "{a}");
        assert_eq!(theil_sen(&[1, 1], &[1.0, 2.0]), None);
        assert_eq!(theil_sen(&[], &[]), None);
    }

    #[test]
    fn exhaustion_with_holt_and_bounds() {
        let mut rng = StdRng::seed_from_u64(5);
        let noise = Normal::new(0.0, 2.0).unwrap();
        // 100 + 1/min with noise, 300 samples; threshold 1000 is 600 min
        // past the last sample (399 at t = 299 min).
        let ts: Vec<i64> = (0..300).map(|i| i * MIN).collect();
        let vs: Vec<f64> = (0..300)
            .map(|i| 100.0 + f64::from(i) + noise.sample(&mut rng))
            .collect();
        let e = forecast_exhaustion(&ts, &vs, 1000.0, None).unwrap();
        assert_eq!(e.method, Method::Holt);
        assert!((e.seconds / 60.0 - 601.0).abs() < 60.0, "{e:?}");
        assert!(e.lower_s <= e.seconds && e.seconds <= e.upper_s, "{e:?}");
        assert!(e.lower_s < e.upper_s, "{e:?}");
        // Already past, and heading away.
        let past = forecast_exhaustion(&ts, &vs, 200.0, None).unwrap();
        assert_eq!(past.seconds, 0.0);
        let away = forecast_exhaustion(&ts, &vs, 0.0, None).unwrap();
        assert_eq!(away.seconds, f64::INFINITY);
        // Short: least squares.
        let short = forecast_exhaustion(&ts[..5], &vs[..5], 1000.0, None).unwrap();
        assert_eq!(short.method, Method::LeastSquares);
        assert!(short.seconds > 0.0);
        assert!(short.lower_s <= short.seconds && short.seconds <= short.upper_s);
        // Path for charts.
        let path = forecast_path(&ts, &vs, None, &[ts[299] + HOUR, ts[299] + 2 * HOUR]).unwrap();
        assert_eq!(path.method, Method::Holt);
        assert!(path.points[0].value < path.points[1].value);
        assert!(
            path.points[1].lower < path.points[1].value
                && path.points[1].value < path.points[1].upper
        );
    }

    #[test]
    fn exhaustion_with_holt_winters() {
        // Five days of a daily cycle (amplitude 20) on a slow rise of 10 a
        // day, 10-minute samples; threshold 150: the trend alone reaches it
        // in (150 - 100)/10 = 5 days, the daily peaks sooner.
        let mut rng = StdRng::seed_from_u64(9);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let day = 24 * HOUR;
        let ts: Vec<i64> = (0..5 * 144).map(|i| i * 10 * MIN).collect();
        let f = |t: i64| {
            let d = t as f64 / day as f64;
            50.0 + 10.0 * d + 20.0 * (2.0 * std::f64::consts::PI * d).sin()
        };
        let vs: Vec<f64> = ts.iter().map(|t| f(*t) + noise.sample(&mut rng)).collect();
        let fc = Forecaster::fit(&ts, &vs, Some(day)).unwrap();
        assert_eq!(fc.method(), Method::HoltWinters);
        // The forecast follows the cycle: a day ahead at the peak phase.
        let peak_t = 5 * day + day / 4;
        let p = fc.point(peak_t);
        assert!((p.value - f(peak_t)).abs() < 5.0, "{p:?} vs {}", f(peak_t));
        let e = fc.exhaustion(120.0);
        // The peaks first exceed 120 when 50 + 10d + 20 = 120: d = 5.0.. ; at
        // the peak of day 5 (d = 5.25) the curve is 122.5.
        let reach = ts[ts.len() - 1] as f64 / 1e3 + e.seconds;
        assert!(
            (reach / 86_400.0 - 5.2).abs() < 0.3,
            "{e:?} reach {}",
            reach / 86_400.0
        );
        assert!(e.lower_s <= e.seconds && e.seconds <= e.upper_s, "{e:?}");
        // Without a period it is Holt and misses the cycle.
        assert_eq!(
            Forecaster::fit(&ts, &vs, None).unwrap().method(),
            Method::Holt
        );
        // One period of data is not enough for a seasonal model.
        assert_eq!(
            Forecaster::fit(&ts[..150], &vs[..150], Some(day))
                .unwrap()
                .method(),
            Method::Holt
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(1234);
        for round in 0..3000 {
            let n = rng.random_range(0..40);
            let vs: Vec<f64> = (0..n).map(|_| garbage_value(&mut rng)).collect();
            let extra = rng.random_range(0..2);
            let ts = garbage_times(&mut rng, n + extra);
            let at = ts.last().copied().unwrap_or(0);
            let thr = garbage_value(&mut rng);
            let _ = linear_fit(&ts, &vs, at);
            let _ = predict(&ts, &vs, at, garbage_value(&mut rng));
            if let Some(s) = time_to(&ts, &vs, at, thr) {
                assert!(s.is_nan() || s >= 0.0, "{s}");
            }
            let _ = theil_sen(&ts, &vs);
            // Sliding windows over these samples, and over the same values
            // evenly spaced (the recursion's path, huge values and all).
            let even: Vec<i64> = (0..n as i64).map(|i| i * 60_000).collect();
            for times in [&ts[..n], &even[..]] {
                let mut windows = Vec::new();
                let (mut lo, mut hi) = (0usize, 0usize);
                while hi < n {
                    hi = (hi + rng.random_range(0..4)).min(n);
                    lo = (lo + rng.random_range(0..3)).min(hi);
                    windows.push((lo, hi));
                }
                let models = models_over_windows(times, &vs, &windows, |_| at);
                for (&(lo, hi), model) in windows.iter().zip(&models) {
                    let alone = (hi > lo)
                        .then(|| model_at(&times[lo..hi], &vs[lo..hi], at))
                        .flatten();
                    assert_eq!(model.is_some(), alone.is_some(), "window {lo}..{hi}");
                }
            }
            let period = match rng.random_range(0..4) {
                0 => None,
                1 => Some(rng.random_range(-10..10)),
                2 => Some(i64::MAX),
                _ => Some(rng.random_range(1..3_000_000)),
            };
            // The analyzer's fit is the slow part in a debug build: half the
            // rounds are plenty.
            if round % 2 == 1 {
                continue;
            }
            if let Some(fc) = Forecaster::fit(&ts, &vs, period) {
                let e = fc.exhaustion(thr);
                assert!(e.seconds.is_nan() || e.seconds >= 0.0, "{e:?}");
                if !e.seconds.is_nan() && !e.lower_s.is_nan() && !e.upper_s.is_nan() {
                    assert!(e.lower_s <= e.seconds && e.seconds <= e.upper_s, "{e:?}");
                }
                for t in [at, at.saturating_add(3_600_000), i64::MAX, i64::MIN] {
                    let _ = fc.point(t);
                }
            }
        }
        // Long, regular series of garbage reach Holt-Winters and the binning.
        for _ in 0..3 {
            let n = 12_000;
            let ts: Vec<i64> = (0..n).map(|i| i * 30_000).collect();
            let vs: Vec<f64> = (0..n).map(|_| garbage_value(&mut rng)).collect();
            let _ = forecast_exhaustion(&ts, &vs, 0.0, Some(3_600_000));
            let _ = predict(&ts, &vs, ts[n as usize - 1], 60.0);
            let _ = theil_sen(&ts, &vs);
        }
    }

    /// Rough timings: `cargo test --release --lib analyze::forecast::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        for n in [60usize, 360] {
            let ts: Vec<i64> = (0..n as i64).map(|i| i * MIN).collect();
            let vs: Vec<f64> = (0..n)
                .map(|i| 100.0 + (i as f64).sin() + i as f64)
                .collect();
            let at = ts[n - 1];
            let reps = 200_000;
            let start = std::time::Instant::now();
            let mut acc = 0.0;
            for r in 0..reps {
                acc += predict(&ts, &vs, at, 3600.0 + r as f64).unwrap();
            }
            let p = start.elapsed() / reps;
            let start = std::time::Instant::now();
            for r in 0..reps {
                acc += time_to(&ts, &vs, at, 1e6 + r as f64).unwrap();
            }
            let t = start.elapsed() / reps;
            println!("n={n}: predict {p:?}, time_to {t:?} ({acc})");
        }
    }

    /// Least squares, Holt, Holt-Winters and Theil-Sen on a rising series
    /// with each hostile value once in the middle and once as the newest
    /// sample: no panic, times to a threshold are NaN or non-negative,
    /// bounds are ordered, and the robust slope does not move.
    #[test]
    fn forecasts_survive_hostile_values() {
        // 1 a minute for two days: 2880 samples, long enough for
        // Holt-Winters with a daily period.
        let ts: Vec<i64> = (0..2880).map(|i| i * MIN).collect();
        let ramp: Vec<f64> = (0..2880).map(|i| 1000.0 + i as f64).collect();
        let at = ts[ts.len() - 1];
        for h in HOSTILE {
            for pos in [1440, 2879] {
                let mut v = ramp.clone();
                v[pos] = h;
                for n in [8, 60, 2880] {
                    let (t, v) = (&ts[ts.len() - n..], &v[v.len() - n..]);
                    let _ = linear_fit(t, v, at);
                    let _ = predict(t, v, at, 3600.0);
                    if let Some(s) = time_to(t, v, at, 1e4) {
                        assert!(s.is_nan() || s >= 0.0, "{h} at {pos}, {n}: {s}");
                    }
                    let slope = theil_sen(t, v).unwrap();
                    assert!(close(slope, 1.0 / 60.0, 1e-9), "{h} at {pos}, {n}: {slope}");
                    for period in [None, Some(86_400_000)] {
                        let Some(fc) = Forecaster::fit(t, v, period) else {
                            continue;
                        };
                        for threshold in [1e4, 0.0, h] {
                            let e = fc.exhaustion(threshold);
                            assert!(e.seconds.is_nan() || e.seconds >= 0.0, "{h}: {e:?}");
                            if !(e.seconds.is_nan() || e.lower_s.is_nan() || e.upper_s.is_nan()) {
                                assert!(e.lower_s <= e.seconds && e.seconds <= e.upper_s, "{e:?}");
                            }
                        }
                        let _ = fc.point(at + 3_600_000);
                    }
                    let _ = forecast_path(t, v, Some(86_400_000), &[at, at + 60_000]);
                }
            }
            let all = vec![h; 100];
            let _ = Forecaster::fit(&ts[..100], &all, Some(86_400_000)).map(|f| f.exhaustion(0.0));
            let _ = theil_sen(&ts[..100], &all);
            let _ = predict(&ts[..100], &all, ts[99], 60.0);
        }
    }
}
