//! Append throughput of the live store (write-ahead log, fsync, head), for
//! batches shaped like one scrape (1,000 series, one sample each) and like
//! one OTLP export (10,000 samples over 500 series), from one appender and
//! from four at once (fsyncs shared by group commit). Flushes are kept out
//! (thresholds never reached), and the log lives in a temporary directory:
//! on tmpfs an fsync is nearly free, so point TMPDIR at a real disk to
//! measure what the disk costs.
//!
//! `cargo bench --bench live`

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::model::{MemorySink, SampleSink, SeriesKey};
use mcpops::store::{LiveOptions, LiveStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const T0: i64 = 1_763_251_200_000;

/// One scrape of a target: `series` gauges at time `t`.
fn scrape(target: usize, series: usize, t: i64) -> MemorySink {
    let mut b = MemorySink::default();
    for s in 0..series {
        let id = b.intern(SeriesKey::new(
            format!("metric_{}", s % 50),
            vec![
                (
                    "instance".into(),
                    format!("10.0.{}.{}:9100", target / 250, target % 250),
                ),
                ("job".into(), "mcp".into()),
                ("series".into(), (s / 50).to_string()),
            ],
        ));
        b.push(id, t, (s as f64) * 1.5 + t as f64 * 1e-3)
            .expect("push");
    }
    b
}

/// One OTLP export: 10,000 per-call samples over 500 (server, tool) series.
fn otlp(t: i64) -> MemorySink {
    let mut b = MemorySink::default();
    for i in 0..10_000usize {
        let id = b.intern(SeriesKey::new(
            "mcp.server.operation.duration",
            vec![
                ("server".into(), format!("mcp-{:02}", i % 20)),
                ("gen_ai.tool.name".into(), format!("tool-{}", (i / 20) % 25)),
            ],
        ));
        b.push(id, t + (i as i64 % 1000), 0.001 * (i % 97) as f64)
            .expect("push");
    }
    b
}

fn live(c: &mut Criterion) {
    memory::tune_allocator();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        LiveStore::open(
            dir.path(),
            LiveOptions {
                flush_samples: usize::MAX,
                flush_interval: Duration::from_secs(86_400),
                ..LiveOptions::default()
            },
        )
        .expect("open"),
    );
    // Each batch at a later time, so that none is late.
    let clock = AtomicI64::new(T0);
    let next = || clock.fetch_add(15_000, Ordering::Relaxed);
    let mut group = c.benchmark_group("live_append");
    group.sample_size(20);

    group.throughput(Throughput::Elements(1_000));
    group.bench_function("scrape_1000_series", |b| {
        b.iter_batched(
            || scrape(0, 1_000, next()),
            |batch| store.append(&batch).expect("append"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("otlp_10k_samples", |b| {
        b.iter_batched(
            || otlp(next()),
            |batch| store.append(&batch).expect("append"),
            criterion::BatchSize::SmallInput,
        )
    });
    // Four scrape tasks appending at once: one iteration is one batch
    // from each.
    group.throughput(Throughput::Elements(4_000));
    group.bench_function("scrape_4_appenders", |b| {
        b.iter_batched(
            || {
                let t = next();
                (0..4).map(|k| scrape(k + 1, 1_000, t)).collect::<Vec<_>>()
            },
            |batches| {
                std::thread::scope(|s| {
                    for batch in &batches {
                        let store = &store;
                        s.spawn(move || store.append(batch).expect("append"));
                    }
                });
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
    eprintln!("{:?}", store.stats());
}

criterion_group!(benches, live);
criterion_main!(benches);
