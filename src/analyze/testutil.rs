//! Hostile inputs for the kernels' never-panic tests: values and timestamps
//! that a broken exporter or a fuzzer could hand them.

use rand::Rng;
use rand::rngs::StdRng;

const DAY_MS: i64 = 86_400_000;

/// NaN, infinities, extremes, zero, denormal-adjacent, or an ordinary value.
pub fn garbage_value(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..12) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => f64::MAX,
        4 => -f64::MAX,
        5 => 0.0,
        6 => 1e300,
        7 => f64::MIN_POSITIVE,
        _ => rng.random_range(-1e6..1e6),
    }
}

/// Timestamps that repeat, jump to the extremes, step backwards, skip a day,
/// or move forward normally.
pub fn garbage_times(rng: &mut StdRng, n: usize) -> Vec<i64> {
    let mut t = rng.random_range(-1_000_000i64..1_000_000);
    (0..n)
        .map(|_| {
            t = match rng.random_range(0..10) {
                0 => t,
                1 => i64::MAX,
                2 => i64::MIN,
                3 => t.saturating_sub(5000),
                4 => t.saturating_add(DAY_MS),
                _ => t.saturating_add(rng.random_range(1..600_000)),
            };
            t
        })
        .collect()
}
