//! The analyzer's forecasts: a [`Forecaster`] fitted once per series
//! ([`forecast_exhaustion`], [`forecast_path`]), which can afford to fit its
//! smoothing constants and a seasonal model (Holt-Winters) and gives 80%
//! prediction intervals. It reaches a threshold by the rule of the
//! language's `time_to` ([`crate::stats::holt`], whose per-step kernels
//! `predict`, `time_to` and `trend` it shares the Holt recursion with),
//! following the forecast path rather than its trend alone.

use crate::stats::fit::secs_between;
use crate::stats::holt::{LINEAR_BELOW, MAX_HORIZON_S, holt_run};
use crate::stats::{resample, robust};

/// z of the two-sided 80% prediction interval behind [`Exhaustion`] bounds.
pub const INTERVAL_Z: f64 = 1.2816;

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
    /// newest sample. The rule is `time_to`'s ([`crate::stats::holt`]),
    /// except that the forecast path is followed rather than its trend
    /// alone, so a seasonal peak that reaches the threshold counts.
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
    use rand::Rng;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

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
        }
    }

    /// The analyzer's least squares, Holt and Holt-Winters on a rising series
    /// with each hostile value once in the middle and once as the newest
    /// sample: no panic, times to a threshold are NaN or non-negative, and
    /// bounds are ordered.
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
        }
    }
}
