//! `analyze` over the 20-server, 7-day fleet (2.29M calls; 3.9M samples
//! with the gauges): the whole job, store scan included. The target is a
//! 1.8x speedup from one thread to two: run it twice and compare,
//!
//!   RAYON_NUM_THREADS=1 cargo bench --bench analyze -- --save-baseline one
//!   RAYON_NUM_THREADS=2 cargo bench --bench analyze -- --baseline one
//!
//! (criterion prints the second against the first). MCPOPS_BENCH_STORE=DIR
//! reuses a store (scripts/compare-duckdb.sh makes that fleet).

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpops::analyze::analysis::{AnalyzeOptions, analyze};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let tmp = tempfile::tempdir().expect("tmp");
    let store = common::fleet_store(&tmp);
    let snap = store.snapshot().expect("snapshot");
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    group.bench_function("fleet_20x7d", |b| {
        b.iter(|| black_box(analyze(&snap, &[], &AnalyzeOptions::default()).expect("analyze")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
