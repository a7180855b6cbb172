//! Parse and check `rules/mcp.rules`, reported per rule (alert, record,
//! remediate and maintenance blocks; constants and tests are not counted, so
//! the figure is conservative). The target: well under a millisecond per rule.
//!
//! `cargo bench --bench dsl`

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::dsl::{self, Item};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn policy_set() -> (String, u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules");
    let src = std::fs::read_to_string(&path).expect("rules/mcp.rules");
    let file = dsl::parse_str(&src, "mcp.rules").expect("rules/mcp.rules parses");
    let rules = file
        .items
        .iter()
        .filter(|i| {
            matches!(
                i,
                Item::Alert(_) | Item::Record(_) | Item::Remediate(_) | Item::Maintenance(_)
            )
        })
        .count() as u64;
    assert!(dsl::check_str(&src, "mcp.rules").is_empty());
    (src, rules)
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let (src, rules) = policy_set();

    // Time per rule: each iteration parses and checks the whole file; the
    // elapsed time is divided by the number of rules in it.
    let mut g = c.benchmark_group("dsl per rule");
    g.bench_function(format!("parse+check mcp.rules ({rules} rules)"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(dsl::check_str(black_box(&src), "mcp.rules"));
            }
            start.elapsed() / rules as u32
        })
    });
    g.finish();

    let mut g = c.benchmark_group("dsl mcp.rules");
    g.throughput(Throughput::Elements(rules));
    g.bench_function("parse", |b| {
        b.iter(|| dsl::parse_str(black_box(&src), "mcp.rules"))
    });
    g.bench_function("parse+check", |b| {
        b.iter(|| dsl::check_str(black_box(&src), "mcp.rules"))
    });
    g.bench_function("format", |b| {
        b.iter(|| dsl::format_str(black_box(&src), "mcp.rules"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
