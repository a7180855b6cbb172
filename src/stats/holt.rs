//! Holt's linear trend behind the language's `predict` and `time_to`, which
//! call [`predict`], [`time_to`] and [`models_over_windows`] once per series
//! per evaluation step: O(n), allocation-free, and never panicking: empty or
//! one-sample ranges give `None`; NaN samples, infinities, equal or
//! unordered timestamps and huge values give a defined (possibly NaN)
//! answer. The analyzer's fitted forecasts (`analyze::forecast`) run the
//! same recursion with constants of their own.
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

use super::fit::{linear_fit, secs_between};

/// Ranges with fewer samples than this use least squares (`predict_linear`).
pub const LINEAR_BELOW: usize = 12;

/// Holt's level smoothing constant per reference step, for `predict`/`time_to`.
pub const HOLT_ALPHA: f64 = 0.3;

/// Holt's trend smoothing constant per reference step, for `predict`/`time_to`.
pub const HOLT_BETA: f64 = 0.1;

/// Forecasts further out than this count as never (+∞).
pub const MAX_HORIZON_S: f64 = 30.0 * 86_400.0;

/// Holt's state after the last sample it used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoltState {
    pub(crate) level: f64,
    /// Per second.
    pub(crate) slope: f64,
    /// Time of the last sample that advanced the state.
    pub(crate) t_ms: i64,
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
pub(crate) fn holt_run(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fit::theil_sen;
    use crate::stats::testutil::{HOSTILE, close, garbage_times, garbage_value};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

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
    fn garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(1234);
        for _ in 0..3000 {
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
        }
        // Long, regular series of garbage.
        for _ in 0..3 {
            let n = 12_000;
            let ts: Vec<i64> = (0..n).map(|i| i * 30_000).collect();
            let vs: Vec<f64> = (0..n).map(|_| garbage_value(&mut rng)).collect();
            let _ = predict(&ts, &vs, ts[n as usize - 1], 60.0);
            let _ = theil_sen(&ts, &vs);
        }
    }

    /// Rough timings: `cargo test --release --lib stats::holt::tests::timing -- --ignored --nocapture`.
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

    /// Least squares, Holt and Theil-Sen on a rising series with each hostile
    /// value once in the middle and once as the newest sample: no panic,
    /// times to a threshold are NaN or non-negative, and the robust slope
    /// does not move.
    #[test]
    fn forecasts_survive_hostile_values() {
        // 1 a minute for two days: 2880 samples.
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
                }
            }
            let all = vec![h; 100];
            let _ = theil_sen(&ts[..100], &all);
            let _ = predict(&ts[..100], &all, ts[99], 60.0);
        }
    }
}
