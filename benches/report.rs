//! `mcpops report` on the fleet that ships in data/ (8 servers, 3 days,
//! 395k calls) with rules/mcp.rules: analysis, backtest and the three files
//! written, as the README's main command does once the store is filled.
//! Target: under 5 seconds in release.

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpops::dsl::load_rules;
use mcpops::ingest::{IngestOptions, ingest_path};
use mcpops::report::{self, ReportOptions};
use mcpops::store::Store;
use std::hint::black_box;
use std::path::PathBuf;

struct Silent;

impl report::Progress for Silent {
    fn step(&self, _: &str) {}
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(tmp.path().join("store"));
    let mut w = store.writer().expect("writer");
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    ingest_path(&root.join("data/fleet"), &opts, &mut w).expect("ingest");
    w.commit().expect("commit");
    let rules_path = root.join("rules/mcp.rules");
    let rules = load_rules(std::slice::from_ref(&rules_path))
        .expect("rules")
        .files;
    let names = vec![rules_path.display().to_string()];
    let out = tmp.path().join("report");
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function("shipped_fleet", |b| {
        b.iter(|| {
            let r = report::build(&store, &rules, &names, &ReportOptions::default(), &Silent)
                .expect("report");
            black_box(report::write(&r, &out).expect("write"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
