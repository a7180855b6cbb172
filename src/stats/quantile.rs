//! Quantiles as Prometheus computes them (`quantile_over_time` and the
//! `quantile` aggregation): values ranked with every NaN first, rank
//! q·(n−1), linear interpolation between the neighbouring values. Empty input
//! gives NaN, as in Prometheus; nothing here panics.

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

#[cfg(test)]
mod tests {
    use super::*;

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
    /// promtool gives (tests/lang/promql_parity.rules has both).
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
}
