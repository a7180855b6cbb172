//! The fleet plan: each server's profile (traffic, tools, resources) and the
//! incidents, placed by the seed, one per server, none in the first hours.

use super::rng::Pcg64;
use super::{GenerateOptions, Incident, IncidentKind};
use crate::names;
use crate::time::{format_duration_ms, format_ms};

pub(crate) use crate::time::{
    DAY_MS as DAY, HOUR_MS as HOUR, MINUTE_MS as MINUTE, SECOND_MS as SECOND,
};
const MIB: f64 = 1_048_576.0;
const GIB: f64 = 1_073_741_824.0;

/// No incident starts before this much history: baselines need it.
pub(crate) const QUIET_PREFIX: i64 = 6 * HOUR;
/// The share of capacity at which latency doubles (the knee of `load_multiplier`).
pub(crate) const KNEE: f64 = 0.75;
/// The daily peak load of a server without a surge, as a share of its capacity.
const NORMAL_PEAK_LOAD: f64 = 0.22;
/// How long a crashed server stays down before clients reconnect.
pub(crate) const RESTART_DOWNTIME: i64 = 2 * MINUTE;

/// Random-stream numbers: one per purpose (and per server where it applies).
pub(crate) const STREAM_PLACEMENT: u64 = 1;
const STREAM_PROFILE: u64 = 0x1_0000;
pub(crate) const STREAM_TRAFFIC: u64 = 0x2_0000;
pub(crate) const STREAM_GAUGES: u64 = 0x3_0000;
/// The Prometheus shape's own draws (scrape phase, process start times): a
/// stream of its own, so the simulation draws the same whatever the shape.
pub(crate) const STREAM_SCRAPE: u64 = 0x4_0000;

/// Tools a server may offer: name, median latency (ms) and log-normal shape.
const TOOL_POOL: [(&str, f64, f64); 14] = [
    ("read_file", 14.0, 0.6),
    ("list_files", 9.0, 0.5),
    ("write_file", 28.0, 0.6),
    ("git_log", 55.0, 0.6),
    ("get_customer", 80.0, 0.5),
    ("search_docs", 170.0, 0.6),
    ("list_issues", 210.0, 0.55),
    ("send_message", 260.0, 0.5),
    ("query_metrics", 320.0, 0.7),
    ("create_ticket", 380.0, 0.5),
    ("run_query", 450.0, 0.8),
    ("fetch_url", 650.0, 0.9),
    ("browse_page", 1400.0, 0.8),
    ("summarize_doc", 2300.0, 0.7),
];

/// Incident kinds in the order they are handed out to servers.
pub(crate) const KIND_ORDER: [IncidentKind; 5] = [
    IncidentKind::MemoryLeak,
    IncidentKind::LatencyRegression,
    IncidentKind::ErrorBurst,
    IncidentKind::DiskFill,
    IncidentKind::SaturationKnee,
];

#[derive(Clone, Debug)]
pub(crate) struct ToolSpec {
    pub name: &'static str,
    /// Share of `tools/call` requests.
    pub weight: f64,
    pub median_ms: f64,
    pub sigma: f64,
}

impl ToolSpec {
    /// Mean latency of the log-normal.
    fn mean_ms(&self) -> f64 {
        self.median_ms * (self.sigma * self.sigma / 2.0).exp()
    }
}

/// What is injected on a server, in absolute milliseconds.
#[derive(Clone, Debug)]
pub(crate) enum Injected {
    /// Memory grows from `start` until the process dies at `restart`.
    Leak { start: i64, restart: i64 },
    /// From `at` on, `tool` is `factor` times slower.
    Regression { at: i64, tool: usize, factor: f64 },
    /// In [start, end) a share `ratio` of `tool`'s calls fail.
    Burst {
        start: i64,
        end: i64,
        tool: usize,
        ratio: f64,
    },
    /// From `start` free disk falls linearly to zero at `exhaust`.
    DiskFill { start: i64, exhaust: i64 },
    /// In [start, end) the call rate is `factor` times its usual level
    /// (ramping over `RAMP` at each end).
    Surge { start: i64, end: i64, factor: f64 },
}

/// The ramp at each end of a load surge.
pub(crate) const RAMP: i64 = 10 * MINUTE;

/// One server's profile.
#[derive(Clone, Debug)]
pub(crate) struct ServerPlan {
    pub index: usize,
    pub name: String,
    /// Mean call rate (calls/s) before the daily cycle and noise.
    pub rate: f64,
    /// Relative amplitude of the daily cycle and the UTC hour of its peak.
    pub amplitude: f64,
    pub peak_hour: f64,
    pub tools: Vec<ToolSpec>,
    /// Cumulative tool weights, for picking.
    pub cumulative: Vec<f64>,
    /// Base probability that a call fails with a JSON-RPC error.
    pub error_rate: f64,
    /// Mean calls a session makes (sets the session arrival rate).
    pub calls_per_session: f64,
    pub session_median_s: f64,
    /// Share of sessions over streamable HTTP (the rest stdio).
    pub http_share: f64,
    /// Calls per second at which the server would be fully busy.
    pub capacity: f64,
    pub mem_limit: f64,
    pub mem_base: f64,
    pub mem_per_session: f64,
    pub gc_period_ms: i64,
    pub sessions_limit: u32,
    pub disk_total: f64,
    pub disk_free0: f64,
    /// Log bytes written per hour (rotated away at UTC midnight).
    pub disk_logs_per_hour: f64,
    /// Data bytes kept per hour (never freed).
    pub disk_growth_per_hour: f64,
    pub incident: Option<Injected>,
}

impl ServerPlan {
    /// Daily load factor at `t`: a sinusoid peaking at `peak_hour` UTC.
    pub(crate) fn daily(&self, t: i64) -> f64 {
        let hour = t.rem_euclid(DAY) as f64 / HOUR as f64;
        1.0 + self.amplitude * (std::f64::consts::TAU * (hour - self.peak_hour) / 24.0).cos()
    }

    /// Multiplier of the call rate from a surge at `t` (1 outside it).
    pub(crate) fn surge(&self, t: i64) -> f64 {
        match self.incident {
            Some(Injected::Surge { start, end, factor }) if t >= start && t < end => {
                let ramp = ((t - start).min(end - t) as f64 / RAMP as f64).min(1.0);
                1.0 + (factor - 1.0) * ramp
            }
            _ => 1.0,
        }
    }

    /// Whether the process is down at `t` (after the leak's crash).
    pub(crate) fn down(&self, t: i64) -> bool {
        matches!(self.incident, Some(Injected::Leak { restart, .. })
            if t >= restart && t < restart + RESTART_DOWNTIME)
    }

    /// Expected call time of a tool per `tools/call` request (ms).
    fn tool_call_time(&self, tool: usize) -> f64 {
        self.tools[tool].weight * self.tools[tool].mean_ms()
    }

    /// The tool with the largest expected share of call time.
    fn heaviest_tool(&self) -> usize {
        (0..self.tools.len())
            .max_by(|&a, &b| self.tool_call_time(a).total_cmp(&self.tool_call_time(b)))
            .unwrap_or(0)
    }

    /// The most called tool.
    fn busiest_tool(&self) -> usize {
        (0..self.tools.len())
            .max_by(|&a, &b| self.tools[a].weight.total_cmp(&self.tools[b].weight))
            .unwrap_or(0)
    }
}

/// How much slower every call is at a load `rho` (share of capacity): flat
/// at low load, doubling at the knee and climbing steeply past it.
pub(crate) fn load_multiplier(rho: f64) -> f64 {
    1.0 + (rho.clamp(0.0, 0.95) / KNEE).powi(8)
}

/// The time span of a fleet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    pub minutes: usize,
}

pub(crate) struct FleetPlan {
    pub window: Window,
    pub servers: Vec<ServerPlan>,
    pub incidents: Vec<Incident>,
}

/// The server name for index `i` of `n`: `mcp-01`, zero-padded to at least two digits.
pub(crate) fn server_name(i: usize, n: usize) -> String {
    let width = n.to_string().len().max(2);
    format!("mcp-{:0width$}", i + 1)
}

/// Plans the fleet: profiles first (each from its own stream), then the
/// incidents from the placement stream.
pub(crate) fn plan_fleet(opts: &GenerateOptions) -> FleetPlan {
    let minutes = opts.days as usize * 1440;
    let window = Window {
        start: opts.start_ms,
        end: opts.start_ms + minutes as i64 * MINUTE,
        minutes,
    };
    let mut servers: Vec<ServerPlan> = (0..opts.servers)
        .map(|i| profile(i, opts.servers, opts))
        .collect();

    let mut rng = Pcg64::new(opts.seed, STREAM_PLACEMENT);
    let mut order: Vec<usize> = (0..servers.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    // The regression goes to the server whose heaviest tool takes the most
    // call time in the fleet, so that once it slows down it is the fleet's
    // bottleneck by any measure, not only its own server's.
    if order.len() >= 2 {
        let call_time = |p: &ServerPlan| p.rate * p.tool_call_time(p.heaviest_tool());
        let heavy = (0..servers.len())
            .max_by(|&a, &b| call_time(&servers[a]).total_cmp(&call_time(&servers[b])))
            .unwrap_or(0);
        let pos = order.iter().position(|&s| s == heavy).unwrap_or(1);
        order.swap(1, pos);
    }
    let mut incidents = Vec::new();
    for (kind, &server) in KIND_ORDER.iter().zip(order.iter()) {
        let plan = &mut servers[server];
        let injected = place(*kind, plan, window, &mut rng);
        plan.incident = Some(injected);
        if let Some(Injected::Surge { start, end, factor }) = plan.incident {
            // An under-provisioned server: the surge plateau lands past the knee.
            let mid = start + (end - start) / 2;
            let plateau = plan.rate * plan.daily(mid) * factor;
            plan.capacity = plateau / rng.range(0.87, 0.92);
        }
        incidents.push(describe(plan, window));
    }
    incidents.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.server.cmp(&b.server)));
    FleetPlan {
        window,
        servers,
        incidents,
    }
}

/// One server's profile, from its own stream so that it does not depend on
/// the number of servers or on where the incidents go.
fn profile(index: usize, n: usize, opts: &GenerateOptions) -> ServerPlan {
    let mut rng = Pcg64::new(opts.seed, STREAM_PROFILE + index as u64);
    let rate = opts.calls_per_second * rng.range(0.92, 1.08);
    let amplitude = rng.range(0.30, 0.38);
    let peak_hour = rng.range(13.0, 15.5);

    let n_tools = rng.between(5, 8) as usize;
    let mut pool: Vec<usize> = (0..TOOL_POOL.len()).collect();
    let mut tools = Vec::with_capacity(n_tools);
    for i in 0..n_tools {
        let j = i + rng.below((pool.len() - i) as u64) as usize;
        pool.swap(i, j);
        let (name, median, sigma) = TOOL_POOL[pool[i]];
        tools.push(ToolSpec {
            name,
            weight: rng.range(0.8, 1.2) / ((i + 1) as f64).powf(0.9),
            median_ms: median * rng.range(0.8, 1.25),
            sigma,
        });
    }
    let total: f64 = tools.iter().map(|t| t.weight).sum();
    let mut acc = 0.0;
    let cumulative = tools
        .iter_mut()
        .map(|t| {
            t.weight /= total;
            acc += t.weight;
            acc
        })
        .collect();

    let mem_limit = [1.0, 2.0, 4.0][rng.below(3) as usize] * GIB;
    let disk_total = [50.0, 100.0, 200.0][rng.below(3) as usize] * GIB;
    let mut plan = ServerPlan {
        index,
        name: server_name(index, n),
        rate,
        amplitude,
        peak_hour,
        tools,
        cumulative,
        // A healthy server meets a 99.9% availability SLO: 70% of these
        // failures are its own (-32603), 0.02-0.05% of calls, well inside a
        // 0.1% error budget even over a 6h window; the rest are client mistakes.
        error_rate: rng.range(0.0003, 0.0007),
        calls_per_session: rng.range(18.0, 24.0),
        session_median_s: rng.range(1800.0, 3000.0),
        http_share: rng.range(0.7, 0.95),
        capacity: 0.0,
        mem_base: mem_limit * rng.range(0.16, 0.26),
        mem_limit,
        mem_per_session: rng.range(1.0, 2.5) * MIB,
        gc_period_ms: rng.between(8, 15) * MINUTE,
        sessions_limit: [256, 512][rng.below(2) as usize],
        disk_free0: disk_total * rng.range(0.4, 0.7),
        disk_total,
        disk_logs_per_hour: rng.range(5.0, 15.0) * MIB,
        disk_growth_per_hour: rng.range(1.0, 3.0) * MIB,
        incident: None,
    };
    plan.capacity = plan.rate * (1.0 + plan.amplitude) / NORMAL_PEAK_LOAD;
    plan
}

/// A uniformly chosen time in [lo, hi], whole seconds.
fn pick(rng: &mut Pcg64, lo: i64, hi: i64) -> i64 {
    let lo_s = (lo + SECOND - 1).div_euclid(SECOND);
    let hi_s = hi.div_euclid(SECOND).max(lo_s);
    rng.between(lo_s, hi_s) * SECOND
}

/// A start time for something lasting `len`, within [from_h, to_h] UTC hours
/// of some day of the window and after the quiet prefix; any allowed time
/// when no day has room.
fn pick_daytime(rng: &mut Pcg64, w: Window, len: i64, from_h: i64, to_h: i64) -> i64 {
    let earliest = w.start + QUIET_PREFIX;
    let latest = (w.end - len - HOUR).max(earliest);
    let mut slots = Vec::new();
    let mut day = w.start.div_euclid(DAY) * DAY;
    while day < w.end {
        let lo = (day + from_h * HOUR).max(earliest);
        let hi = (day + to_h * HOUR).min(latest);
        if lo <= hi {
            slots.push((lo, hi));
        }
        day += DAY;
    }
    let (lo, hi) = if slots.is_empty() {
        (earliest, latest)
    } else {
        slots[rng.below(slots.len() as u64) as usize]
    };
    pick(rng, lo, hi)
}

fn place(kind: IncidentKind, plan: &ServerPlan, w: Window, rng: &mut Pcg64) -> Injected {
    let earliest = w.start + QUIET_PREFIX;
    let after = w.end - earliest;
    match kind {
        IncidentKind::MemoryLeak => {
            let len = rng.between(4 * 60, 8 * 60) * MINUTE;
            let start = pick(
                rng,
                earliest,
                (w.end - len - HOUR - 2 * MINUTE).max(earliest),
            );
            // Between scrapes (never on one), so exactly one scrape is lost.
            let end = start + len;
            let grid = end - (end - w.start).rem_euclid(MINUTE);
            let restart = grid + MINUTE + rng.between(1, 59) * SECOND;
            Injected::Leak { start, restart }
        }
        IncidentKind::LatencyRegression => Injected::Regression {
            at: pick(rng, earliest, earliest + after / 2),
            tool: plan.heaviest_tool(),
            factor: rng.range(2.5, 3.0),
        },
        IncidentKind::ErrorBurst => {
            let len = rng.between(15, 45) * MINUTE;
            let start = pick_daytime(rng, w, len, 9, 17);
            Injected::Burst {
                start,
                end: start + len,
                tool: plan.busiest_tool(),
                ratio: rng.range(0.22, 0.38),
            }
        }
        IncidentKind::DiskFill => {
            let start = pick(rng, earliest, earliest + after * 3 / 10);
            let exhaust = w.end + rng.between(30 * 60, 40 * 60) * MINUTE;
            Injected::DiskFill { start, exhaust }
        }
        IncidentKind::SaturationKnee => {
            let len = rng.between(90, 150) * MINUTE;
            let start = pick_daytime(rng, w, len, 10, 13);
            Injected::Surge {
                start,
                end: start + len,
                factor: rng.range(3.2, 4.0),
            }
        }
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / MIB)
}

/// The ground-truth record of a server's incident.
fn describe(plan: &ServerPlan, w: Window) -> Incident {
    let tool_name = |i: usize| plan.tools[i].name.to_string();
    let (kind, start_ms, end_ms, tool, metric, detail) = match plan.incident {
        Some(Injected::Leak { start, restart }) => (
            IncidentKind::MemoryLeak,
            start,
            restart,
            None,
            names::MEMORY,
            format!(
                "memory grows linearly from about {} to 98.5% of its {} limit over {}, \
                 then the process dies and restarts: open sessions drop to 0, one scrape is \
                 missing and calls stop for {}",
                mib(plan.mem_base),
                mib(plan.mem_limit),
                format_duration_ms(restart - start),
                format_duration_ms(RESTART_DOWNTIME),
            ),
        ),
        Some(Injected::Regression { at, tool, factor }) => {
            let t = &plan.tools[tool];
            (
                IncidentKind::LatencyRegression,
                at,
                w.end,
                Some(tool_name(tool)),
                names::CALL_METRIC,
                format!(
                    "a deploy makes {} {:.2}x slower and it stays so (median {:.0} ms -> {:.0} ms); \
                     it is the server's largest share of call time",
                    t.name,
                    factor,
                    t.median_ms,
                    t.median_ms * factor
                ),
            )
        }
        Some(Injected::Burst {
            start,
            end,
            tool,
            ratio,
        }) => (
            IncidentKind::ErrorBurst,
            start,
            end,
            Some(tool_name(tool)),
            names::CALL_METRIC,
            format!(
                "{} fails with JSON-RPC error -32603 on {:.0}% of its calls for {} \
                 (it is the server's most called tool)",
                plan.tools[tool].name,
                ratio * 100.0,
                format_duration_ms(end - start)
            ),
        ),
        Some(Injected::DiskFill { start, exhaust }) => (
            IncidentKind::DiskFill,
            start,
            exhaust,
            None,
            names::DISK_FREE,
            format!(
                "free disk falls steadily by about {}/h from about {} free of {}; \
                 it reaches zero {} after the data ends (end = the projected exhaustion)",
                mib(plan.disk_free0 / ((exhaust - start) as f64 / HOUR as f64)),
                mib(plan.disk_free0),
                mib(plan.disk_total),
                format_duration_ms(exhaust - w.end)
            ),
        ),
        Some(Injected::Surge { start, end, factor }) => {
            let mid = start + (end - start) / 2;
            let rho = plan.rate * plan.daily(mid) * factor / plan.capacity;
            (
                IncidentKind::SaturationKnee,
                start,
                end,
                None,
                names::IN_FLIGHT,
                format!(
                    "the call rate rises {:.1}x for {} (10-minute ramps), to about {:.0}% of \
                     capacity; past the knee at {:.0}% latency doubles and keeps climbing \
                     (about {:.1}x at the plateau's mean load), in-flight requests climb with it",
                    factor,
                    format_duration_ms(end - start),
                    rho * 100.0,
                    KNEE * 100.0,
                    load_multiplier(rho),
                ),
            )
        }
        None => unreachable!("describe is called for servers with an incident"),
    };
    Incident {
        kind,
        server: plan.name.clone(),
        start: format_ms(start_ms),
        end: format_ms(end_ms),
        start_ms,
        end_ms,
        tool,
        metric: metric.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn opts(servers: usize, days: u32, seed: u64) -> GenerateOptions {
        GenerateOptions {
            servers,
            days,
            seed,
            out: PathBuf::from("unused"),
            ..GenerateOptions::default()
        }
    }

    #[test]
    fn incidents_are_placed_within_the_data_on_distinct_servers() {
        for seed in 0..300 {
            for (servers, days) in [(8, 3), (6, 1), (3, 2), (20, 7)] {
                let plan = plan_fleet(&opts(servers, days, seed));
                let w = plan.window;
                assert_eq!(plan.incidents.len(), servers.min(5));
                let mut names: Vec<&str> =
                    plan.incidents.iter().map(|i| i.server.as_str()).collect();
                names.sort();
                names.dedup();
                assert_eq!(names.len(), plan.incidents.len(), "one incident per server");
                for inc in &plan.incidents {
                    assert!(inc.start_ms >= w.start + QUIET_PREFIX, "{seed}: {inc:?}");
                    assert!(inc.start_ms < inc.end_ms);
                    match inc.kind {
                        IncidentKind::DiskFill => {
                            let h = (inc.end_ms - w.end) as f64 / HOUR as f64;
                            assert!((30.0..=40.0).contains(&h), "{seed}: {h}");
                        }
                        IncidentKind::LatencyRegression => assert_eq!(inc.end_ms, w.end),
                        _ => assert!(inc.end_ms <= w.end - HOUR, "{seed}: {inc:?}"),
                    }
                    let len = inc.end_ms - inc.start_ms;
                    match inc.kind {
                        IncidentKind::MemoryLeak => {
                            assert!((4 * HOUR..=8 * HOUR + 2 * MINUTE).contains(&len));
                            assert_ne!((inc.end_ms - w.start) % MINUTE, 0, "between scrapes");
                        }
                        IncidentKind::ErrorBurst => {
                            assert!((15 * MINUTE..=45 * MINUTE).contains(&len))
                        }
                        IncidentKind::SaturationKnee => {
                            assert!((90 * MINUTE..=150 * MINUTE).contains(&len))
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn fewer_servers_take_the_kinds_in_order() {
        let plan = plan_fleet(&opts(3, 2, 1));
        let mut kinds: Vec<IncidentKind> = plan.incidents.iter().map(|i| i.kind).collect();
        kinds.sort_by_key(|k| KIND_ORDER.iter().position(|o| o == k));
        assert_eq!(kinds, KIND_ORDER[..3].to_vec());
        assert_eq!(
            plan_fleet(&opts(1, 1, 1)).incidents[0].kind,
            IncidentKind::MemoryLeak
        );
    }

    #[test]
    fn placement_depends_on_the_seed() {
        let a = plan_fleet(&opts(8, 3, 1)).incidents;
        let b = plan_fleet(&opts(8, 3, 2)).incidents;
        assert_ne!(a, b);
        let servers = |s: u64| {
            let mut v: Vec<(IncidentKind, String)> = plan_fleet(&opts(8, 3, s))
                .incidents
                .into_iter()
                .map(|i| (i.kind, i.server))
                .collect();
            v.sort_by_key(|(k, _)| KIND_ORDER.iter().position(|o| o == k));
            v
        };
        assert!(
            (1..10).any(|s| servers(s) != servers(0)),
            "servers move with the seed"
        );
    }

    #[test]
    fn the_knee_doubles_latency() {
        assert!(load_multiplier(NORMAL_PEAK_LOAD * 1.3) < 1.001);
        assert!((load_multiplier(KNEE) - 2.0).abs() < 1e-12);
        assert!(load_multiplier(0.88) > 3.0);
        assert_eq!(server_name(0, 8), "mcp-01");
        assert_eq!(server_name(99, 120), "mcp-100");
    }
}
