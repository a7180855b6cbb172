//! Irregular samples onto a regular grid, for the seasonal fits that need
//! one: STL behind [`super::robust::anomaly_score`] and Holt-Winters in the
//! analyzer's forecasts.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resample_fills_and_averages() {
        let ts = [0, 1000, 1100, 5000];
        let vs = [1.0, 2.0, 4.0, 10.0];
        let g = resample_to_end(&ts, &vs, 5000, 1000.0, 6).unwrap();
        assert_eq!(g, vec![1.0, 3.0, 4.75, 6.5, 8.25, 10.0]);
        assert_eq!(resample_to_end(&ts, &[f64::NAN; 4], 5000, 1000.0, 6), None);
    }
}
