//! Numeric kernels: pure functions over slices of samples (timestamps in
//! ms, f64 values) that know nothing of series, labels, stores or reports.
//! The rule engine and the analyzer both call them, so a rule and the
//! analyzer agree on the same samples, and neither room imports the other.
//!
//! - [`quantile`]: Prometheus's quantiles (`quantile_over_time`, the
//!   `quantile` aggregation, the analyzer's percentiles).
//! - [`robust`]: median, MAD and robust z-scores: the language's `anomaly`
//!   and the analyzer's per-point anomaly scores, seasonal by robust STL.
//! - [`fit`]: least squares as Prometheus's `deriv` and `predict_linear`
//!   compute it, and the Theil-Sen slope (`trend`).
//! - [`holt`]: Holt's linear trend behind `predict` and `time_to`, also per
//!   sliding window of a range evaluation.
//! - [`changepoint`]: level shifts by PELT after a Hampel filter.
//! - [`resample`]: irregular samples onto a regular grid for seasonal fits.
//!
//! Every kernel takes any input, NaN, infinities, unordered or repeated
//! timestamps included, and answers without panicking.

pub mod changepoint;
pub mod fit;
pub mod holt;
pub mod quantile;
pub mod resample;
pub mod robust;
#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::changepoint::change_points;
    use super::quantile::quantile_sorted;
    use super::resample::resample_to_end;
    use super::robust::{anomaly_score, mad, median, median_gap_ms};
    use super::testutil::{garbage_times, garbage_value};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

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
}
