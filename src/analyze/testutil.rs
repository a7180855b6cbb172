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

/// A server with three days of calls (one tool, one every 30 s, about 0.1 s
/// each, a few failing) and every gauge the analyzer knows (a daily cycle
/// each, limits flat), with `h` as one call's duration and once in every
/// gauge: what the kernels get when nothing filters the data first.
pub fn server_with(h: f64) -> crate::analyze::fleet::ServerData {
    use crate::analyze::fleet::{
        CPU, Call, DISK_FREE, DISK_TOTAL, Gauge, IN_FLIGHT, MEMORY, MEMORY_LIMIT, SESSIONS,
        SESSIONS_LIMIT, ServerData, ToolCalls,
    };
    let start = 1_795_305_600_000i64; // 2026-11-21
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(17);
    let calls: Vec<Call> = (0..8640i64)
        .map(|i| {
            let failed = i % 97 == 0;
            Call {
                t: start + i * 30_000,
                seconds: if i == 4000 {
                    h
                } else {
                    0.1 + rng.random_range(0.0..0.05)
                },
                server_error: failed,
                failed,
            }
        })
        .collect();
    let cycle = daily_cycle(9);
    let gauge = |scale: f64, offset: f64, hostile_at: usize| {
        let ts = (0..cycle.len() as i64)
            .map(|i| start + i * 300_000)
            .collect();
        let vs = cycle
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == hostile_at {
                    h
                } else {
                    offset + v * scale
                }
            })
            .collect();
        Gauge { ts, vs }
    };
    let flat = |v: f64| gauge(0.0, v, usize::MAX);
    let gauges = [
        (CPU, gauge(0.004, 0.0, 100)),
        (MEMORY, gauge(1e6, 1e8, 200)),
        (MEMORY_LIMIT, flat(1e9)),
        (SESSIONS, gauge(0.5, 0.0, 300)),
        (SESSIONS_LIMIT, flat(500.0)),
        (IN_FLIGHT, gauge(0.01, 0.0, 400)),
        (DISK_FREE, gauge(-1e7, 5e10, 500)),
        (DISK_TOTAL, flat(1e11)),
    ]
    .into_iter()
    .map(|(name, g)| (name.to_string(), g))
    .collect();
    let tools = vec![ToolCalls {
        tool: "search".to_string(),
        calls,
    }];
    ServerData::new(
        "mcp-01".to_string(),
        tools,
        gauges,
        (i64::MIN, i64::MAX),
        Vec::new(),
    )
}
