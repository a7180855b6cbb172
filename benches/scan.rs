//! Scan throughput: samples per second read back from a store, for a full
//! scan and for a selective one (one metric of one server) that pruning
//! should make cheap.

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::model::{Matcher, SampleSink, SeriesKey};
use mcpops::store::{ScanRequest, Store};
use std::hint::black_box;

const SERVERS: usize = 20;
const METRICS: [&str; 8] = [
    "process.cpu.utilization",
    "process.memory.usage",
    "mcp.server.sessions.open",
    "mcp.server.requests.in_flight",
    "disk.free_bytes",
    "mcp.server.calls",
    "mcp.server.errors",
    "mcp.server.sessions.limit",
];
const MINUTES: i64 = 7 * 1440;
const T0: i64 = 1_763_251_200_000;

/// A week of one-minute gauges for a 20-server fleet: 1.6M samples.
fn build_store(dir: &std::path::Path) -> Store {
    let store = Store::open(dir);
    let mut w = store.writer().expect("writer");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for s in 0..SERVERS {
        for (m, metric) in METRICS.iter().enumerate() {
            let key = SeriesKey::new(*metric, vec![("server".into(), format!("mcp-{s:02}"))]);
            let id = w.intern(key);
            let mut level = 1000.0 * (m + 1) as f64;
            for i in 0..MINUTES {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                level += (x % 1000) as f64 / 100.0 - 5.0;
                w.push(id, T0 + i * 60_000, (level * 100.0).round() / 100.0)
                    .expect("push");
            }
        }
    }
    w.commit().expect("commit");
    store
}

fn scan(c: &mut Criterion) {
    memory::tune_allocator();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = build_store(dir.path());
    let snapshot = store.snapshot().expect("snapshot");
    let total = (SERVERS * METRICS.len()) as u64 * MINUTES as u64;

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(total));
    group.bench_function("full", |b| {
        b.iter(|| black_box(snapshot.scan(&ScanRequest::all()).expect("scan")))
    });
    let one = ScanRequest {
        metric: Some("process.memory.usage".into()),
        matchers: vec![Matcher::parse("server=mcp-07").expect("matcher")],
        ..ScanRequest::all()
    };
    group.throughput(Throughput::Elements(MINUTES as u64));
    group.bench_function("one_series", |b| {
        b.iter(|| black_box(snapshot.scan(&one).expect("scan")))
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
