//! Ingest throughput (samples/s) of OpenMetrics, CSV and JSON lines into a
//! `MemorySink`, on inputs generated in memory: 500 series of gauges over
//! 400 scrapes, and 200k MCP calls.
//!
//! `cargo bench --bench ingest`

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's allocator tuning: a module of the binary, not the library
/// (its unit tests, compiled here too, run with the binary's).
#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

mod common;

use common::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::ingest::{Format, IngestOptions, ingest_reader};
use mcpops::model::MemorySink;
use std::fmt::Write;
use std::hint::black_box;

const START_S: i64 = 1_794_787_200; // 2026-11-16T00:00:00Z
const SERVERS: usize = 50;
const METRICS: [&str; 10] = [
    "process_cpu_utilization",
    "process_memory_usage_bytes",
    "process_memory_limit_bytes",
    "mcp_server_sessions_open",
    "mcp_server_sessions_limit",
    "mcp_server_requests_in_flight",
    "disk_free_bytes",
    "disk_total_bytes",
    "mcp_server_calls_total",
    "mcp_server_errors_total",
];
const SCRAPES: usize = 400;

/// OpenMetrics, one family after another as exporters and promtool's
/// backfill expect: (text, samples).
fn openmetrics() -> (String, u64) {
    let mut rng = Rng(7);
    let mut out = String::new();
    let mut n = 0;
    for metric in METRICS {
        writeln!(out, "# TYPE {metric} gauge").unwrap();
        writeln!(out, "# HELP {metric} A gauge of the MCP fleet.").unwrap();
        for s in 0..SERVERS {
            for t in 0..SCRAPES {
                let v = rng.unit() * 1000.0;
                writeln!(
                    out,
                    "{metric}{{server=\"mcp-{s:03}\",region=\"eu-west-1\"}} {v:.3} {}",
                    START_S + 60 * t as i64
                )
                .unwrap();
                n += 1;
            }
        }
    }
    out.push_str("# EOF\n");
    (out, n)
}

/// Wide CSV: a timestamp and one column per metric.
fn csv() -> (String, u64) {
    let mut rng = Rng(11);
    let mut out = String::from("timestamp");
    for m in METRICS {
        write!(out, ",{m}").unwrap();
    }
    out.push('\n');
    let rows = SERVERS * SCRAPES / 2;
    for t in 0..rows {
        write!(out, "{}", (START_S + 15 * t as i64) * 1000).unwrap();
        for _ in METRICS {
            write!(out, ",{:.3}", rng.unit() * 100.0).unwrap();
        }
        out.push('\n');
    }
    (out, (rows * METRICS.len()) as u64)
}

/// JSON lines of MCP calls, as `mcpops generate` writes them.
fn jsonl() -> (String, u64) {
    let mut rng = Rng(13);
    let mut out = String::new();
    let calls = 200_000;
    let tools = ["search", "fetch", "read_file", "write_file", "run_query"];
    for i in 0..calls {
        let ms = START_S * 1000 + i as i64 * 37;
        let secs = ms / 1000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let error = match rng.next() % 50 {
            0 => "-32603",
            1 => "\"timeout\"",
            _ => "null",
        };
        writeln!(
            out,
            "{{\"ts\":\"2026-11-16T{h:02}:{m:02}:{s:02}.{:03}Z\",\"server\":\"mcp-{:02}\",\"method\":\"tools/call\",\"tool\":\"{}\",\"duration_ms\":{:.1},\"error\":{error},\"session\":\"s-{:010x}\",\"transport\":\"streamable-http\"}}",
            ms % 1000,
            rng.next() % 8,
            tools[(rng.next() % 5) as usize],
            rng.unit() * 800.0,
            rng.next() % 64,
        )
        .unwrap();
    }
    (out, calls)
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let opts = IngestOptions {
        quiet: true,
        ..IngestOptions::default()
    };
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    for (name, format, (text, samples)) in [
        ("openmetrics", Format::OpenMetrics, openmetrics()),
        ("csv", Format::Csv, csv()),
        ("jsonl", Format::JsonLines, jsonl()),
    ] {
        group.throughput(Throughput::Elements(samples));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut sink = MemorySink::default();
                let report =
                    ingest_reader(text.as_bytes(), name, format, &opts, &mut sink).unwrap();
                assert_eq!(report.samples, samples);
                black_box(sink.samples.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
