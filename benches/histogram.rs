//! p95 latency per server per hour from a Prometheus-shaped histogram, by
//! the engine and by DuckDB's SQL over the same Parquet segments:
//!
//! - `histogram/p95_by_instance_1h`: `histogram_quantile(0.95, sum by (le,
//!   instance) (rate(mcp_server_operation_duration_seconds_bucket[1h])))` at
//!   a 1h step over a week;
//! - then `scripts/histogram-duckdb.py` computes the same (reset-aware
//!   increase per series and hour, Prometheus's extrapolation, the sum per
//!   server and bound, the bucket interpolation) in DuckDB, best of 5, and
//!   this bench prints both times, their ratio, and how far the two results
//!   are apart (they must agree to 1e-9).
//!
//! The data, built here and written through the store's writer: 20 servers
//! (`instance` "mcp-NN:9464", `job` "mcp") scraped every minute for 7 days,
//! each with six method/tool series of OpenTelemetry's 15 bucket bounds
//! (0.01 s to 300 s, and +Inf): 1,800 bucket series, 18.1 million samples.
//! Each server restarts once (its counters start over), so the rates go
//! through a counter reset.
//!
//! `cargo bench --bench histogram` (needs python3 with duckdb for the
//! comparison; without it only the engine is timed).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

mod common;

use common::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::dsl::parse_query;
use mcpops::engine::{Grid, Value, query::query};
use mcpops::model::{SampleSink, SeriesKey};
use mcpops::store::Store;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const METRIC: &str = "mcp_server_operation_duration_seconds_bucket";
const SERVERS: usize = 20;
const DAYS: i64 = 7;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// 2026-11-16T00:00:00Z.
const START: i64 = 1_794_787_200_000;
/// OpenTelemetry's MCP duration boundaries, in seconds, then +Inf.
const BOUNDS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// (method, tool, median seconds) of each server's series.
const CALLS: [(&str, &str, f64); 6] = [
    ("tools/call", "search", 0.2),
    ("tools/call", "fetch", 0.8),
    ("tools/call", "query_db", 1.5),
    ("tools/call", "summarize", 4.0),
    ("resources/read", "", 0.05),
    ("tools/list", "", 0.01),
];

fn le_text(i: usize) -> String {
    BOUNDS.get(i).map_or("+Inf".to_string(), |b| b.to_string())
}

/// Writes the week of buckets, minute by minute, and compacts each day.
fn build(store: &Store) -> u64 {
    let mut w = store.writer().expect("writer");
    let mut ids = Vec::new();
    for s in 0..SERVERS {
        for (method, tool, _) in CALLS {
            for b in 0..=BOUNDS.len() {
                let mut labels = vec![
                    ("instance".to_string(), format!("mcp-{:02}:9464", s + 1)),
                    ("job".to_string(), "mcp".to_string()),
                    ("mcp_method_name".to_string(), method.to_string()),
                    ("le".to_string(), le_text(b)),
                ];
                if !tool.is_empty() {
                    labels.push(("gen_ai_tool_name".to_string(), tool.to_string()));
                }
                ids.push(w.intern(SeriesKey::new(METRIC, labels)));
            }
        }
    }
    let per_server = CALLS.len() * (BOUNDS.len() + 1);
    // Observations per (server, call, bucket) since the last restart.
    let mut counts = vec![0u64; SERVERS * per_server];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let minutes = DAYS * 24 * 60;
    let mut samples = 0u64;
    for m in 0..minutes {
        let t = START + m * MINUTE;
        // Slower in the afternoon: a daily cycle of the medians.
        let daily = 1.0 + 0.5 * ((m % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin();
        for s in 0..SERVERS {
            // Each server restarts once, on its own day.
            if m == 600 + 480 * s as i64 {
                counts[s * per_server..(s + 1) * per_server].fill(0);
            }
            let slow = 1.0 + s as f64 * 0.05;
            for (c, (_, _, median)) in CALLS.iter().enumerate() {
                let base = s * per_server + c * (BOUNDS.len() + 1);
                let calls = 20 + rng.next() % 20;
                for _ in 0..calls {
                    // Log-normal-ish: the median times e^(z), z from three uniforms.
                    let z = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 1.6;
                    let d = median * daily * slow * z.exp();
                    let b = BOUNDS.partition_point(|&x| x < d);
                    counts[base + b] += 1;
                }
                let mut cumulative = 0u64;
                for b in 0..=BOUNDS.len() {
                    cumulative += counts[base + b];
                    w.push(ids[base + b], t, cumulative as f64).expect("push");
                    samples += 1;
                }
            }
        }
    }
    w.commit().expect("commit");
    store.compact().expect("compact");
    samples
}

/// (instance, step time) -> value of a query result.
fn rows(v: &Value, grid: Grid) -> Vec<(String, i64, f64)> {
    let Value::Vector(series) = v else {
        panic!("the query gave a number")
    };
    let mut out = Vec::new();
    for s in series {
        let inst = s.label("instance").expect("instance").to_string();
        for k in s.start..s.end() {
            if let Some(x) = s.at(k) {
                out.push((inst.clone(), grid.time(k), x));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

fn histogram(c: &mut Criterion) {
    memory::tune_allocator();
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(tmp.path().join("store"));
    let began = Instant::now();
    let samples = build(&store);
    eprintln!(
        "built {samples} samples of {} bucket series in {:.1} s",
        SERVERS * CALLS.len() * (BOUNDS.len() + 1),
        began.elapsed().as_secs_f64()
    );
    let text = "histogram_quantile(0.95, sum by (le, instance) (rate(mcp_server_operation_duration_seconds_bucket[1h])))";
    let expr = parse_query(text).expect("query");
    // Every hour whose window lies in the data.
    let grid = Grid::range(START + HOUR, START + DAYS * 24 * HOUR, HOUR);
    let run = || {
        query(
            store.snapshot().expect("snapshot"),
            &expr,
            grid,
            mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
        )
        .expect("query")
    };
    let ours = rows(&run(), grid);
    assert_eq!(ours.len(), SERVERS * grid.n, "a p95 per server and hour");

    let mut group = c.benchmark_group("histogram");
    group.sample_size(10);
    group.throughput(Throughput::Elements(samples));
    group.bench_function("p95_by_instance_1h", |b| b.iter(|| black_box(run())));
    group.finish();

    // The same run's engine time, best of 5, beside DuckDB's best of 5.
    let engine_best = (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(run());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/histogram-duckdb.py");
    let out_csv = tmp.path().join("duckdb.csv");
    let duck = Command::new("python3")
        .arg(&script)
        .arg(tmp.path().join("store"))
        .arg(grid.start.to_string())
        .arg(grid.end().to_string())
        .arg("--out")
        .arg(&out_csv)
        .output();
    let duck = match duck {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "duckdb comparison skipped: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("duckdb comparison skipped: python3: {e}");
            return;
        }
    };
    let duck_best: f64 = String::from_utf8_lossy(&duck.stdout)
        .trim()
        .parse()
        .expect("the script prints seconds");
    let theirs: Vec<(String, i64, f64)> = std::fs::read_to_string(&out_csv)
        .expect("duckdb's rows")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().expect("time"),
                f[2].parse().expect("value"),
            )
        })
        .collect();
    assert_eq!(theirs.len(), ours.len(), "as many rows from DuckDB");
    let mut worst = 0.0f64;
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!((&a.0, a.1), (&b.0, b.1), "the same server and hour");
        worst = worst.max((a.2 - b.2).abs() / a.2.abs().max(1e-300));
    }
    assert!(worst < 1e-9, "DuckDB and the engine differ by {worst:e}");
    println!(
        "p95 per server per hour over {} servers x 7 days ({} rows; largest relative difference {worst:.1e}):",
        SERVERS,
        ours.len()
    );
    println!("  mcpops engine (in process, best of 5)  {engine_best:.3} s");
    println!("  duckdb SQL    (in process, best of 5)  {duck_best:.3} s");
    println!(
        "  ratio duckdb/mcpops                    {:.2}x",
        duck_best / engine_best
    );
}

criterion_group!(benches, histogram);
criterion_main!(benches);
