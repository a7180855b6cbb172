//! Engine throughput on a generated 20-server fleet over 7 days:
//! - `backtest/mcp_rules_7d_1m`: rules/mcp.rules replayed at a 1m step,
//!   throughput in input samples (every sample the backtest reads from the
//!   store, lookback included);
//! - `backtest/prometheus_rules_7d_1m`: rules/prometheus.rules replayed at
//!   a 1m step over the same fleet as a Prometheus server would hold it
//!   (`generate --shape prometheus`), throughput in input samples;
//! - `query/p95_by_server_1h`: `p95(mcp.server.operation.duration[1h]) by
//!   (server)` at a 1h step over the week, the query that
//!   scripts/compare-duckdb.sh also runs through DuckDB's SQL.
//!
//! Set MCPOPS_BENCH_STORE to an existing store (made by scripts/compare-duckdb.sh)
//! to skip generating and ingesting the fleet.

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::dsl::{load_rules, parse_query};
use mcpops::engine::backtest::{BacktestOptions, backtest};
use mcpops::engine::{Grid, query::query};
use std::hint::black_box;
use std::path::PathBuf;

fn engine(c: &mut Criterion) {
    memory::tune_allocator();
    let tmp = tempfile::tempdir().expect("tmp");
    let store = common::fleet_store(&tmp);
    let snap = store.snapshot().expect("snapshot");
    let (first, last) = snap.manifest().extent().expect("data");
    let rules = load_rules(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules")])
        .expect("rules")
        .files;
    let opts = BacktestOptions {
        from_ms: first,
        to_ms: last,
        step_ms: None,
        record: false,
        align_start: false,
        max_samples: mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
    };
    let probe = backtest(&store, &rules, &opts).expect("backtest");
    let mut group = c.benchmark_group("backtest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(probe.samples_read));
    group.bench_function("mcp_rules_7d_1m", |b| {
        b.iter(|| black_box(backtest(&store, &rules, &opts).expect("backtest")))
    });
    group.finish();

    let prom_tmp = tempfile::tempdir().expect("tmp");
    let prom = common::prometheus_fleet_store(&prom_tmp);
    let (pfirst, plast) = prom
        .snapshot()
        .expect("snapshot")
        .manifest()
        .extent()
        .expect("data");
    let prom_rules =
        load_rules(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/prometheus.rules")])
            .expect("rules")
            .files;
    // Histogram rules over a week of 1,800-odd bucket series at a 1m step
    // hold more than the default 50M samples per rule: the bench raises
    // the limit as `--max-samples` does.
    let prom_opts = BacktestOptions {
        from_ms: pfirst,
        to_ms: plast,
        max_samples: 1_000_000_000,
        ..opts.clone()
    };
    let probe = backtest(&prom, &prom_rules, &prom_opts).expect("backtest");
    let mut group = c.benchmark_group("backtest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(probe.samples_read));
    group.bench_function("prometheus_rules_7d_1m", |b| {
        b.iter(|| black_box(backtest(&prom, &prom_rules, &prom_opts).expect("backtest")))
    });
    group.finish();

    let expr = parse_query("p95(mcp.server.operation.duration[1h]) by (server)").expect("query");
    let hour = 3_600_000;
    let grid = Grid::range(
        first - first.rem_euclid(hour) + hour,
        last - last.rem_euclid(hour) + hour,
        hour,
    );
    let mut group = c.benchmark_group("query");
    group.sample_size(10);
    group.bench_function("p95_by_server_1h", |b| {
        b.iter(|| {
            black_box(
                query(
                    store.snapshot().expect("snapshot"),
                    &expr,
                    grid,
                    mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
                )
                .expect("query"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
