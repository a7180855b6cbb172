//! A server with ordinary data and one hostile value, for the analyzer's
//! never-panic tests.

use crate::stats::testutil::daily_cycle;
use rand::Rng;
use rand::rngs::StdRng;

/// A server with three days of calls (one tool, one every 30 s, about 0.1 s
/// each, a few failing) and every gauge the analyzer knows (a daily cycle
/// each, limits flat), with `h` as one call's duration and once in every
/// gauge: what the kernels get when nothing filters the data first.
pub fn server_with(h: f64) -> crate::analyze::fleet::ServerData {
    use crate::analyze::fleet::{Call, Gauge, ServerData, ToolCalls};
    use crate::names::{
        CPU, DISK_FREE, DISK_TOTAL, IN_FLIGHT, MEMORY, MEMORY_LIMIT, SESSIONS, SESSIONS_LIMIT,
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
        binned: false,
    }];
    ServerData::new(
        "mcp-01".to_string(),
        tools,
        gauges,
        (i64::MIN, i64::MAX),
        Vec::new(),
    )
}
