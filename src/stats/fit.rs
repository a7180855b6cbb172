//! Lines through samples: least squares exactly as Prometheus's
//! `linearRegression` (the language's `deriv`, and `predict` on short
//! ranges) and the Theil-Sen slope (the language's `trend`). Both run once
//! per series per evaluation step: O(n) (Theil-Sen on at most
//! [`THEIL_SEN_MAX_PAIRS`] pairs), and they never panic: too few samples
//! give `None`; NaN samples, infinities, equal or unordered timestamps and
//! huge values give a defined (possibly NaN) answer.

use super::robust;

/// Seconds from `earlier` to `later`, without overflowing on any i64 pair.
#[inline]
pub(crate) fn secs_between(later: i64, earlier: i64) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::holt::predict;
    use crate::stats::testutil::close;

    const MIN: i64 = 60_000;

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
}
