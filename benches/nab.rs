//! The NAB subset end to end: read the 41 CSV files and the labels, run the
//! default online detector over every row, sweep the thresholds and score
//! the three profiles; plus the detector alone over the corpus already in
//! memory. The target: the whole evaluation under a second in release.
//!
//! `cargo bench --bench nab` (the corpus is `tests/data/nab` in the repository)

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::analyze::detect::DetectorConfig;
use mcpops::analyze::nab;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nab")
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let dir = corpus_dir();
    let labels = dir.join("labels/combined_windows.json");
    let data = dir.join("data");
    let corpus = nab::load_corpus(&labels, &data).expect("corpus loads");
    let rows: usize = corpus.iter().map(|f| f.series.values.len()).sum();
    let report = nab::evaluate(&labels, &data).expect("evaluate");
    for p in &report.profiles {
        eprintln!("NAB {}: {:.2}", p.profile.name, p.score);
    }

    let mut g = c.benchmark_group("nab");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(rows as u64));
    g.bench_function(
        format!("evaluate ({} files, {rows} rows)", corpus.len()),
        |b| b.iter(|| black_box(nab::evaluate(&labels, &data).expect("evaluate"))),
    );
    let config = DetectorConfig::default();
    g.bench_function("detect only, corpus in memory", |b| {
        b.iter(|| black_box(nab::run_detector(&corpus, &config)))
    });
    let scored = nab::run_detector(&corpus, &config);
    let profiles = nab::default_profiles();
    g.bench_function("score only (threshold sweep, 3 profiles)", |b| {
        b.iter(|| black_box(nab::score_corpus(&scored, &profiles).expect("score")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
