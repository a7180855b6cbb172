//! One scrape target's round after the HTTP read, on a 1,000-series
//! OpenMetrics body (counters, gauges, a labelled histogram, as
//! prometheus_client writes them): parsing, the target's labels, staleness
//! bookkeeping and the synthetic series (`round`), and the same with the
//! batch appended to a live store in a temporary directory
//! (`round_and_append`).
//!
//! The sizing figure of `mcpops watch`: 1,000 such targets every 15 s cost
//! `1000 x time-per-round / 15 s` of one core; on two cores, half that is
//! the share of the machine.
//!
//! `cargo bench --bench scrape`

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcpops::store::{LiveOptions, LiveStore};
use mcpops::watch::scrape::{Body, ScrapeConfig, Scraper};
use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

const START_MS: i64 = 1_794_787_200_000; // 2026-11-16T00:00:00Z
const INTERVAL_MS: i64 = 15_000;

/// A body of exactly 1,000 series whose values depend on `round`: 5
/// counters x 40 tools (200, each with its `_created`: 400), 2 gauges x 100
/// sessions (200), a histogram of 8 buckets, `_sum`, `_count` and
/// `_created` x 36 tools (396), and 4 process gauges.
fn body(round: i64) -> Body {
    let mut s = String::with_capacity(128 * 1024);
    for c in 0..5 {
        let _ = writeln!(
            s,
            "# HELP mcp_calls_{c} Calls of kind {c}.\n# TYPE mcp_calls_{c} counter"
        );
        for tool in 0..40 {
            let v = (round + 1) * (tool + c + 1);
            let _ = writeln!(
                s,
                "mcp_calls_{c}_total{{tool=\"tool_{tool}\",server=\"edge\"}} {v}.0"
            );
            let _ = writeln!(
                s,
                "mcp_calls_{c}_created{{tool=\"tool_{tool}\",server=\"edge\"}} 1.7947872e+09"
            );
        }
    }
    for g in 0..2 {
        let _ = writeln!(
            s,
            "# HELP mcp_session_{g} A session gauge.\n# TYPE mcp_session_{g} gauge"
        );
        for session in 0..100 {
            let v = ((round * 7 + session * 13 + g) % 97) as f64 / 4.0;
            let _ = writeln!(s, "mcp_session_{g}{{session=\"s{session:03}\"}} {v}");
        }
    }
    let _ = writeln!(
        s,
        "# HELP mcp_latency_seconds Call latency.\n# TYPE mcp_latency_seconds histogram"
    );
    let les = ["0.005", "0.01", "0.05", "0.1", "0.5", "1.0", "5.0", "+Inf"];
    for tool in 0..36 {
        let n = (round + 1) * 10 + tool;
        for (i, le) in les.iter().enumerate() {
            let c = n * (i as i64 + 1) / les.len() as i64;
            let _ = writeln!(
                s,
                "mcp_latency_seconds_bucket{{tool=\"tool_{tool}\",le=\"{le}\"}} {c}.0"
            );
        }
        let _ = writeln!(
            s,
            "mcp_latency_seconds_sum{{tool=\"tool_{tool}\"}} {}",
            n as f64 * 0.037
        );
        let _ = writeln!(s, "mcp_latency_seconds_count{{tool=\"tool_{tool}\"}} {n}.0");
        let _ = writeln!(
            s,
            "mcp_latency_seconds_created{{tool=\"tool_{tool}\"}} 1.7947872e+09"
        );
    }
    for (name, v) in [
        ("process_resident_memory_bytes", 1.2e8),
        ("process_open_fds", 42.0),
        ("process_cpu_seconds_total", 12.5),
        ("process_start_time_seconds", 1.7947872e9),
    ] {
        let _ = writeln!(s, "{name} {}", v + round as f64);
    }
    s.push_str("# EOF\n");
    Body {
        bytes: s.into_bytes(),
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
    }
}

fn scraper() -> Scraper {
    let config: ScrapeConfig = toml::from_str(
        "url = \"http://127.0.0.1:9100/metrics\"\njob = \"mcp\"\nlabels = { env = \"prod\" }",
    )
    .expect("config");
    Scraper::new(&config, Duration::from_secs(15)).expect("scraper")
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let first = body(0);
    {
        let probe = scraper().round(Ok(first.clone()), START_MS, Duration::ZERO);
        let stats = probe.outcome.as_ref().expect("the body parses");
        assert_eq!(stats.stored, 1000, "a 1,000-series body");
    }
    let mut group = c.benchmark_group("scrape");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);

    // The same rounds twice: alone, then with each batch appended to a live
    // store as watch does.
    let tmp = tempfile::tempdir().expect("tmp");
    let store = LiveStore::open(&tmp.path().join("store"), LiveOptions::default()).expect("store");
    for (name, store) in [("round", None), ("round_and_append", Some(&store))] {
        let mut s = scraper();
        let mut round = 0i64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    (body(round), START_MS + round * INTERVAL_MS)
                },
                |(body, at)| {
                    let r = s.round(Ok(body), at, Duration::from_millis(3));
                    if let Some(store) = store {
                        store.append(&r.batch).expect("append");
                    }
                    s.commit(black_box(r));
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
