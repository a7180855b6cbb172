//! One server's simulation: sessions and calls as Poisson processes whose rate
//! follows the daily cycle, then per-minute gauges derived from those calls
//! (in-flight requests by Little's law, CPU from the call rate, memory from
//! the open sessions) so that the two files tell one consistent story.

use super::plan::{
    Injected, MINUTE, RESTART_DOWNTIME, STREAM_GAUGES, STREAM_TRAFFIC, ServerPlan, Window,
    load_multiplier,
};
use super::rng::Pcg64;

const HOUR_F: f64 = crate::time::HOUR_MS as f64;
/// Clients give up on a call after this long; the call is logged as a timeout.
pub(crate) const TIMEOUT_MS: f64 = 30_000.0;
/// `Call::tool` for methods other than `tools/call`.
pub(crate) const NO_TOOL: u8 = u8::MAX;
/// Minutes simulated before the data starts, so that it starts in a steady state.
pub(crate) const WARM_UP_MINUTES: i64 = 180;
/// Memory and disk figures are whole pages.
const PAGE: f64 = 4096.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Initialize,
    ToolsList,
    ToolsCall,
    ResourcesRead,
    PromptsGet,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::ResourcesRead => "resources/read",
            Method::PromptsGet => "prompts/get",
        }
    }

    /// Median latency (ms) and log-normal shape of methods that are not tool calls.
    fn latency(self) -> (f64, f64) {
        match self {
            Method::Initialize => (12.0, 0.5),
            Method::ToolsList => (4.0, 0.4),
            Method::ResourcesRead => (25.0, 0.6),
            Method::PromptsGet | Method::ToolsCall => (6.0, 0.4),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    None,
    /// JSON-RPC -32603.
    Internal,
    /// JSON-RPC -32602.
    InvalidParams,
    Timeout,
}

#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub ts: i64,
    /// Milliseconds, a multiple of 0.1.
    pub duration_ms: f64,
    pub session: u32,
    pub method: Method,
    pub tool: u8,
    pub error: CallError,
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub id: u64,
    pub http: bool,
    pub start: i64,
    pub end: i64,
}

/// One scrape: the state at the end of its minute, averages over the minute.
#[derive(Clone, Debug)]
pub(crate) struct GaugeRow {
    pub cpu: f64,
    pub memory: f64,
    pub sessions: u32,
    pub in_flight: f64,
    pub disk_free: f64,
}

pub(crate) struct ServerData {
    pub calls: Vec<Call>,
    /// Calls of the warm-up before the data starts, in time order: the
    /// events shape leaves them out, the Prometheus shape's counters have
    /// counted them since the process started.
    pub warm_up: Vec<Call>,
    pub sessions: Vec<Session>,
    /// Scrape `j` is at `start + (j + 1)` minutes; `None` where it failed.
    pub gauges: Vec<Option<GaugeRow>>,
}

struct Traffic<'a> {
    plan: &'a ServerPlan,
    rng: Pcg64,
    calls: Vec<Call>,
    sessions: Vec<Session>,
    /// Sessions not yet known to have ended.
    active: Vec<u32>,
    restarted: bool,
    /// (time, end) of sessions to reopen after the restart, sorted.
    reconnects: Vec<(i64, i64)>,
    /// Errors owed by an error burst (see `burst_due`).
    burst_credit: f64,
}

impl Traffic<'_> {
    /// Closes every session when the leaking process dies.
    fn maybe_restart(&mut self, ts: i64) {
        if let Some(Injected::Leak { restart, .. }) = self.plan.incident
            && !self.restarted
            && ts >= restart
        {
            // Clients whose sessions were cut off reconnect once the server is
            // back, each after its own back-off, for the rest of their session.
            for &s in &self.active {
                let session = &mut self.sessions[s as usize];
                if session.end > restart {
                    let back =
                        restart + RESTART_DOWNTIME + (self.rng.exp(1.0 / 90.0) * 1000.0) as i64;
                    let rest = session.end - restart;
                    self.reconnects.push((back, back + rest));
                    session.end = restart;
                }
            }
            self.reconnects.sort_unstable();
            self.active.clear();
            self.restarted = true;
        }
    }

    /// Opens a session at `ts`, until `end` if given, else for a random lifetime.
    fn open_session(&mut self, ts: i64, end: Option<i64>, mult: f64) {
        self.maybe_restart(ts);
        if self.plan.down(ts) {
            return;
        }
        let id = self.rng.next_u64() & 0xff_ffff_ffff;
        let http = self.rng.chance(self.plan.http_share);
        let end = end.unwrap_or_else(|| {
            let life = (self.rng.lognormal(self.plan.session_median_s, 0.8) * 1000.0) as i64;
            ts + life.max(5_000)
        });
        let index = self.sessions.len() as u32;
        self.sessions.push(Session {
            id,
            http,
            start: ts,
            end,
        });
        self.active.push(index);
        let init = self.make_call(ts, Method::Initialize, NO_TOOL, index, mult);
        let list_ts = ts + init.duration_ms.ceil() as i64 + self.rng.between(5, 80);
        self.calls.push(init);
        let list = self.make_call(list_ts, Method::ToolsList, NO_TOOL, index, mult);
        self.calls.push(list);
    }

    fn call(&mut self, ts: i64, mult: f64) {
        self.maybe_restart(ts);
        if self.plan.down(ts) {
            return;
        }
        let sessions = &self.sessions;
        self.active.retain(|&s| sessions[s as usize].end > ts);
        if self.active.is_empty() {
            // A client with no session connects first.
            self.open_session(ts, None, mult);
            return;
        }
        let session = self.active[self.rng.below(self.active.len() as u64) as usize];
        let u = self.rng.f64();
        let (method, tool) = if u < 0.90 {
            let pick = self.rng.f64();
            let tool = self
                .plan
                .cumulative
                .iter()
                .position(|&c| pick < c)
                .unwrap_or(self.plan.tools.len() - 1);
            (Method::ToolsCall, tool as u8)
        } else if u < 0.97 {
            (Method::ResourcesRead, NO_TOOL)
        } else {
            (Method::PromptsGet, NO_TOOL)
        };
        let call = self.make_call(ts, method, tool, session, mult);
        self.calls.push(call);
    }

    /// Whether the next call of the failing tool fails: a dithered quota, so
    /// that the burst's realised error ratio stays within a call or two of
    /// the injected one however few calls the window holds.
    fn burst_due(&mut self, ratio: f64) -> bool {
        self.burst_credit += ratio;
        let fail = self.rng.f64() < self.burst_credit;
        if fail {
            self.burst_credit -= 1.0;
        }
        fail
    }

    fn make_call(&mut self, ts: i64, method: Method, tool: u8, session: u32, mult: f64) -> Call {
        let (median, sigma) = match self.plan.tools.get(tool as usize) {
            Some(t) => (t.median_ms, t.sigma),
            None => method.latency(),
        };
        let mut d = self.rng.lognormal(median, sigma) * mult;
        let mut burst_ratio = None;
        match self.plan.incident {
            Some(Injected::Regression {
                at,
                tool: slow,
                factor,
            }) if tool as usize == slow && ts >= at => d *= factor,
            Some(Injected::Burst {
                start,
                end,
                tool: failing,
                ratio,
            }) if tool as usize == failing && ts >= start && ts < end => burst_ratio = Some(ratio),
            _ => {}
        }
        let mut error = CallError::None;
        if let Some(ratio) = burst_ratio
            && self.burst_due(ratio)
        {
            // A failing dependency: the call errors out early.
            error = CallError::Internal;
            d *= self.rng.range(0.2, 0.6);
        } else if self.rng.chance(self.plan.error_rate) {
            if self.rng.chance(0.7) {
                error = CallError::Internal;
                d *= self.rng.range(0.3, 1.0);
            } else {
                error = CallError::InvalidParams;
                d *= self.rng.range(0.05, 0.2);
            }
        }
        if d >= TIMEOUT_MS {
            d = TIMEOUT_MS;
            error = CallError::Timeout;
        }
        Call {
            ts,
            duration_ms: ((d * 10.0).round() / 10.0).max(0.1),
            session,
            method,
            tool,
            error,
        }
    }
}

/// Arrival times (ms) of a Poisson process of `per_second` in the minute from `t0`.
fn arrivals(rng: &mut Pcg64, t0: i64, per_second: f64, out: &mut Vec<i64>) {
    out.clear();
    if per_second <= 0.0 {
        return;
    }
    let mut t = t0 as f64;
    let end = (t0 + MINUTE) as f64;
    loop {
        t += rng.exp(per_second) * 1000.0;
        if t >= end {
            break;
        }
        out.push(t.floor() as i64);
    }
}

/// Simulates one server over the window.
pub(crate) fn simulate(plan: &ServerPlan, w: Window, seed: u64) -> ServerData {
    let mut traffic = Traffic {
        plan,
        rng: Pcg64::new(seed, STREAM_TRAFFIC + plan.index as u64),
        calls: Vec::new(),
        sessions: Vec::new(),
        active: Vec::new(),
        restarted: false,
        reconnects: Vec::new(),
        burst_credit: 0.0,
    };
    // Slow multiplicative noise on the rate: AR(1) in log space, ~30-minute memory.
    let phi = (-1.0f64 / 30.0).exp();
    let sd = 0.07;
    let innovation = sd * (1.0 - phi * phi).sqrt();
    let mut noise = sd * traffic.rng.normal();
    let (mut new_sessions, mut call_times) = (Vec::new(), Vec::new());
    let mut session_times: Vec<(i64, Option<i64>)> = Vec::new();
    // Start early so that sessions are already open when the data begins.
    for k in -WARM_UP_MINUTES..w.minutes as i64 {
        let minute = w.start + k * MINUTE;
        let mid = minute + MINUTE / 2;
        noise = phi * noise + innovation * traffic.rng.normal();
        let base = plan.rate * plan.daily(mid) * noise.exp();
        let rate = base * plan.surge(mid);
        let mult = load_multiplier(rate / plan.capacity);
        arrivals(
            &mut traffic.rng,
            minute,
            base / plan.calls_per_session,
            &mut new_sessions,
        );
        arrivals(&mut traffic.rng, minute, rate, &mut call_times);
        session_times.clear();
        session_times.extend(new_sessions.iter().map(|&t| (t, None)));
        let due = traffic
            .reconnects
            .iter()
            .take_while(|r| r.0 < minute + MINUTE)
            .count();
        session_times.extend(
            traffic
                .reconnects
                .drain(..due)
                .map(|(t, end)| (t, Some(end))),
        );
        session_times.sort_by_key(|s| s.0);
        let (mut i, mut j) = (0, 0);
        loop {
            let (s, end) = session_times.get(i).copied().unwrap_or((i64::MAX, None));
            let c = call_times.get(j).copied().unwrap_or(i64::MAX);
            if s == i64::MAX && c == i64::MAX {
                break;
            }
            if s <= c {
                i += 1;
                traffic.open_session(s, end, mult);
            } else {
                j += 1;
                traffic.call(c, mult);
            }
        }
        traffic.maybe_restart(minute + MINUTE);
    }
    let Traffic {
        mut calls,
        sessions,
        ..
    } = traffic;
    // Splitting off the warm-up draws nothing: the data is the same whether
    // or not a shape reads it.
    let mut warm_up: Vec<Call> = Vec::new();
    calls.retain(|c| {
        if c.ts < w.start {
            warm_up.push(c.clone());
        }
        c.ts >= w.start && c.ts < w.end
    });
    calls.sort_by_key(|c| c.ts);
    warm_up.sort_by_key(|c| c.ts);
    let gauges = gauges(plan, w, seed, &calls, &sessions);
    ServerData {
        calls,
        warm_up,
        sessions,
        gauges,
    }
}

/// The smallest scrape index whose time is at or after `t`, clamped to [0, n].
fn scrape_at_or_after(w: Window, t: i64) -> usize {
    let after_first = t - w.start - MINUTE;
    let j = -((-after_first).div_euclid(MINUTE));
    j.clamp(0, w.minutes as i64) as usize
}

fn gauges(
    plan: &ServerPlan,
    w: Window,
    seed: u64,
    calls: &[Call],
    sessions: &[Session],
) -> Vec<Option<GaugeRow>> {
    let n = w.minutes;
    let mut busy = vec![0.0f64; n];
    let mut count = vec![0u32; n];
    for c in calls {
        let k = ((c.ts - w.start) / MINUTE) as usize;
        count[k] += 1;
        let (mut s, e) = (c.ts as f64, c.ts as f64 + c.duration_ms);
        let mut kk = k;
        while kk < n && s < e {
            let bound = (w.start + (kk as i64 + 1) * MINUTE) as f64;
            let seg_end = e.min(bound);
            busy[kk] += seg_end - s;
            s = seg_end;
            kk += 1;
        }
    }
    let mut open_diff = vec![0i64; n + 1];
    for s in sessions {
        let (lo, hi) = (scrape_at_or_after(w, s.start), scrape_at_or_after(w, s.end));
        if lo < hi {
            open_diff[lo] += 1;
            open_diff[hi] -= 1;
        }
    }

    let mut rng = Pcg64::new(seed, STREAM_GAUGES + plan.index as u64);
    let limit = plan.mem_limit;
    let mut open = 0i64;
    let mut rows = Vec::with_capacity(n);
    for j in 0..n {
        open += open_diff[j];
        let t = w.start + (j as i64 + 1) * MINUTE;
        let (cpu_noise, mem_noise, disk_noise) = (rng.normal(), rng.normal(), rng.normal());

        let mut cpu =
            0.012 + 0.85 * (f64::from(count[j]) / 60.0) / plan.capacity + 0.006 * cpu_noise;
        let gc_phase =
            (t - w.start).rem_euclid(plan.gc_period_ms) as f64 / plan.gc_period_ms as f64;
        let mut memory = plan.mem_base
            + open as f64 * plan.mem_per_session
            + 0.03 * limit * gc_phase
            + 0.004 * limit * mem_noise;

        let midnight = t.div_euclid(86_400_000) * 86_400_000;
        let logs_h = (t - midnight.max(w.start)) as f64 / HOUR_F;
        let mut disk = plan.disk_free0
            - plan.disk_logs_per_hour * logs_h
            - plan.disk_growth_per_hour * (t - w.start) as f64 / HOUR_F
            + 1.5 * 1_048_576.0 * disk_noise;

        match plan.incident {
            Some(Injected::Leak { start, restart }) => {
                if t > restart && t <= restart + MINUTE {
                    rows.push(None); // the process is down: the scrape fails
                    continue;
                }
                if t > start && t <= restart {
                    let frac = (t - start) as f64 / (restart - start) as f64;
                    memory += (0.985 * limit - memory) * frac;
                    cpu += 0.08 * frac.powi(3); // the garbage collector works harder
                }
            }
            Some(Injected::DiskFill { start, exhaust }) if t > start => {
                disk *= (exhaust - t) as f64 / (exhaust - start) as f64;
            }
            _ => {}
        }
        rows.push(Some(GaugeRow {
            cpu: cpu.clamp(0.001, 1.0),
            memory: (memory.min(limit - PAGE) / PAGE).floor() * PAGE,
            sessions: open as u32,
            in_flight: busy[j] / 60_000.0,
            disk_free: (disk.max(0.0) / PAGE).floor() * PAGE,
        }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_indices_round_up() {
        let w = Window {
            start: 0,
            end: 10 * MINUTE,
            minutes: 10,
        };
        // Scrape j is at (j + 1) minutes.
        assert_eq!(scrape_at_or_after(w, -5), 0);
        assert_eq!(scrape_at_or_after(w, MINUTE), 0);
        assert_eq!(scrape_at_or_after(w, MINUTE + 1), 1);
        assert_eq!(scrape_at_or_after(w, 10 * MINUTE), 9);
        assert_eq!(scrape_at_or_after(w, 10 * MINUTE + 1), 10);
        assert_eq!(scrape_at_or_after(w, 99 * MINUTE), 10);
    }

    #[test]
    fn arrivals_have_the_poisson_rate() {
        let mut rng = Pcg64::new(3, 3);
        let mut out = Vec::new();
        let mut total = 0;
        for k in 0..1000 {
            arrivals(&mut rng, k * MINUTE, 0.5, &mut out);
            assert!(out.windows(2).all(|p| p[0] <= p[1]));
            assert!(out.iter().all(|&t| t >= k * MINUTE && t < (k + 1) * MINUTE));
            total += out.len();
        }
        let rate = total as f64 / 60_000.0;
        assert!((rate - 0.5).abs() < 0.02, "{rate}");
    }
}
