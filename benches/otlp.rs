//! OTLP spans decoded and stored (spans/s): a realistic
//! `ExportTraceServiceRequest` of 1,000 MCP server spans (20 servers, 12
//! tools, sessions, a few failures, the attributes the Python SDK sets)
//! as protobuf, decoded into per-call samples; then the same with each
//! batch appended to a live store, as `/v1/traces` does. The figure to
//! hold: at least 200k spans/s.
//!
//! `cargo bench --bench otlp`

// The binary's allocator and its tuning (src/memory.rs), so that figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;

mod common;

use common::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcpops::ingest::otlp::{Encoding, Outcome, decode_traces, traces_into};
use mcpops::model::MemorySink;
use mcpops::store::{LiveOptions, LiveStore};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use std::hint::black_box;

const SPANS: usize = 1_000;
const SERVERS: usize = 20;
const T0: u64 = 1_794_787_200_000_000_000; // 2026-11-16T00:00:00Z

fn kv(key: &str, text: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(text.to_string())),
        }),
        ..Default::default()
    }
}

/// One request as an MCP fleet's collector would forward it: spans grouped
/// by server (resource), each with the SDK's attributes.
fn request(rng: &mut Rng, batch: u64) -> Vec<u8> {
    let mut resource_spans = Vec::new();
    for server in 0..SERVERS {
        let mut spans = Vec::new();
        for i in 0..SPANS / SERVERS {
            let n = (batch as usize * SPANS + server * SPANS / SERVERS + i) as u64;
            let start = T0 + n * 1_000_000 + rng.next() % 1_000_000;
            let duration = 1_000_000 + rng.next() % 500_000_000;
            let tool = format!("tool_{}", rng.next() % 12);
            let mut attributes = vec![
                kv("mcp.method.name", "tools/call"),
                kv("mcp.protocol.version", "2025-11-25"),
                kv("jsonrpc.request.id", &n.to_string()),
                kv("gen_ai.operation.name", "execute_tool"),
                kv("gen_ai.tool.name", &tool),
                kv("mcp.session.id", &format!("session-{}", rng.next() % 8)),
                kv("network.transport", "tcp"),
            ];
            let failed = rng.next().is_multiple_of(50);
            if failed {
                attributes.push(kv("error.type", "-32603"));
            }
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&rng.next().to_be_bytes());
            trace_id[8..].copy_from_slice(&n.to_be_bytes());
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: rng.next().to_be_bytes().to_vec(),
                name: format!("tools/call {tool}"),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + duration,
                attributes,
                status: failed.then(|| Status {
                    code: 2,
                    message: "internal error".into(),
                }),
                ..Default::default()
            });
        }
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", &format!("mcp-{server:02}")),
                    kv("service.instance.id", &format!("mcp-{server:02}-0")),
                    kv("telemetry.sdk.language", "python"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

fn bench(c: &mut Criterion) {
    memory::tune_allocator();
    let mut rng = Rng(0x0071_9e5f_00d5_eed5);
    let bodies: Vec<Vec<u8>> = (0..16).map(|b| request(&mut rng, b)).collect();
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(SPANS as u64));
    // One of 16 distinct bodies, cycled, decoded into a fresh sink.
    let mut next = 0usize;
    let mut decoded = || {
        let body = &bodies[next % bodies.len()];
        next += 1;
        let req = decode_traces(body, Encoding::Protobuf).expect("decode");
        let mut sink = MemorySink::default();
        let mut outcome = Outcome::default();
        traces_into(&req, &mut sink, "bench", &mut outcome).expect("sink");
        assert_eq!(outcome.calls, SPANS as u64);
        sink
    };
    g.bench_function("decode 1000 MCP spans (protobuf) into a MemorySink", |b| {
        b.iter(|| black_box(decoded().samples.len()))
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = LiveStore::open(&tmp.path().join("store"), LiveOptions::default()).expect("store");
    g.bench_function(
        "decode 1000 MCP spans and append them to the live store",
        |b| {
            // Later rounds write the same samples again, which the store
            // keeps as duplicates.
            b.iter(|| black_box(store.append(&decoded()).expect("append")))
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
