//! Hostile inputs for the kernels' never-panic tests: values and timestamps
//! that a broken exporter or a fuzzer could hand them.

use crate::time::DAY_MS;
use rand::Rng;
use rand::rngs::StdRng;

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

/// The values one bad scrape can store: huge, the largest finite values of
/// either sign, NaN and the infinities. Every kernel family has a test that
/// mixes each of them into ordinary data.
pub const HOSTILE: [f64; 7] = [
    1e100,
    1e300,
    f64::MAX,
    -f64::MAX,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

/// Three days of a noisy daily cycle in 5-minute points (864 of them),
/// around 100 with an amplitude of 20.
pub fn daily_cycle(seed: u64) -> Vec<f64> {
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(seed);
    (0..864)
        .map(|i| {
            let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
            100.0 + 20.0 * phase.sin() + rng.random_range(-1.0..1.0)
        })
        .collect()
}

/// Whether `a` and `b` agree to within `rel` of the larger of them.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}
