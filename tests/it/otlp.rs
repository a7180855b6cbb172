//! OTLP: the receiver served in-process on 127.0.0.1 with a port of its
//! own, fed by the real OpenTelemetry Python SDK and by the official MCP
//! SDK's fixture server; hostile bodies; and `mcpops ingest` of the
//! Collector's file-exporter files.

use crate::common::{KillOnDrop, fixtures, python_has, wait_for};
use flate2::Compression;
use flate2::write::GzEncoder;
use mcpops::ingest::otlp::STALE_NAN_BITS;
use mcpops::model::SeriesKey;
use mcpops::store::{LiveOptions, LiveStore, ScanRequest, SeriesData, Store};
use mcpops::watch::otlp::{OtlpOptions, router_with};
use mcpops::watch::{Shared, health::Health, targets::Targets};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL: &str = "mcp.server.operation.duration";

/// The receiver on 127.0.0.1:0 in a runtime of its own; dropped, the
/// runtime stops and the server with it.
struct Receiver {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Shared,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Receiver {
    fn start(options: OtlpOptions) -> Receiver {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            LiveStore::open(&dir.path().join("store"), LiveOptions::default()).expect("live store");
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let shared = Shared {
            store: Arc::new(store),
            health: Arc::new(Health::new()),
            targets: Arc::new(Targets::new()),
            shutdown,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router_with(shared.clone(), options);
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            rt,
            addr,
            shared,
            _dir: dir,
            _stop: stop,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// POSTs a body; the status, headers and body of the answer.
    fn post(
        &self,
        path: &str,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = format!("{}{path}", self.base());
        self.rt.block_on(async {
            let client = reqwest::Client::new();
            let mut req = client
                .post(url)
                .header("content-type", content_type)
                .body(body);
            if let Some(e) = encoding {
                req = req.header("content-encoding", e);
            }
            let resp = req
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            (status, headers, resp.bytes().await.expect("body").to_vec())
        })
    }

    fn series(&self, metric: &str) -> Vec<SeriesData> {
        scan(&self.shared.store.snapshot().expect("snapshot"), metric)
    }

    fn health(&self, metric: &str) -> f64 {
        self.shared.health.get(metric, &[]).unwrap_or(0.0)
    }
}

fn scan(snapshot: &mcpops::store::Snapshot, metric: &str) -> Vec<SeriesData> {
    snapshot
        .scan(&ScanRequest {
            start_ms: mcpops::time::MIN_STORED_MS,
            end_ms: mcpops::time::MAX_STORED_MS,
            metric: Some(metric.to_string()),
            matchers: vec![],
            without: vec![],
        })
        .expect("scan")
}

fn samples(series: &[SeriesData]) -> usize {
    series.iter().map(|s| s.values.len()).sum()
}

/// Runs a Python script to its end (at most `limit`), its stdout as JSON.
fn run_python(script: &Path, args: &[&str], limit: Duration) -> serde_json::Value {
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut child = KillOnDrop(
        Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("python3"),
    );
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            let mut out = String::new();
            std::io::Read::read_to_string(child.0.stdout.as_mut().expect("stdout"), &mut out)
                .expect("read");
            let err = std::fs::read_to_string(log.path()).unwrap_or_default();
            assert!(status.success(), "{script:?} failed: {status}\n{err}");
            return serde_json::from_str(out.trim())
                .unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        }
        assert!(
            started.elapsed() < limit,
            "{script:?} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count_by(series: &[SeriesData], labels: &[&str]) -> BTreeMap<Vec<String>, usize> {
    let mut out = BTreeMap::new();
    for s in series {
        let key = labels
            .iter()
            .map(|l| s.key.label(l).unwrap_or("").to_string())
            .collect();
        *out.entry(key).or_insert(0) += s.values.len();
    }
    out
}

#[test]
fn mcp_fixture_calls_are_counted_per_tool_and_error_type() {
    if !python_has(
        "mcp, opentelemetry.exporter.otlp.proto.http",
        "mcp_fixture_calls_are_counted_per_tool_and_error_type",
    ) {
        return;
    }
    let r = Receiver::start(OtlpOptions::default());
    let endpoint = format!("{}/v1/traces", r.base());
    let calls = 3;
    let made = run_python(
        &fixtures().join("otlp_mcp_calls.py"),
        &["--endpoint", &endpoint, "--calls", &calls.to_string()],
        Duration::from_secs(120),
    );
    // What the client saw, by tool and error type ("" for success).
    let mut want: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (tool, outcomes) in made.as_object().expect("object") {
        for (outcome, n) in outcomes.as_object().expect("object") {
            let error = if outcome == "ok" {
                ""
            } else {
                outcome.as_str()
            };
            want.insert(
                vec![tool.clone(), error.to_string()],
                n.as_u64().expect("n") as usize,
            );
        }
    }
    assert_eq!(want.values().sum::<usize>(), 4 * calls, "{made}");
    assert_eq!(
        want.get(&vec!["is_error".to_string(), "tool_error".to_string()]),
        Some(&calls)
    );
    let tool_calls = || {
        let series: Vec<SeriesData> = r
            .series(CALL)
            .into_iter()
            .filter(|s| s.key.label("mcp.method.name") == Some("tools/call"))
            .collect();
        count_by(&series, &["gen_ai.tool.name", "error.type"])
    };
    wait_for(
        &format!("the fixture's spans: {want:?}"),
        Duration::from_secs(60),
        || tool_calls().values().sum::<usize>() >= 4 * calls,
    );
    assert_eq!(tool_calls(), want);
    let any = r.series(CALL);
    assert!(
        any.iter()
            .all(|s| s.key.label("server") == Some("mcpops-fixture")
                && s.key.label("job") == Some("mcpops-fixture")),
        "{:?}",
        any.iter().map(|s| s.key.to_string()).collect::<Vec<_>>()
    );
    // The slow tool's calls took their 50 ms.
    for s in any
        .iter()
        .filter(|s| s.key.label("gen_ai.tool.name") == Some("slow"))
    {
        assert!(s.values.iter().all(|&v| (0.05..5.0).contains(&v)), "{s:?}");
    }
    assert!(r.health("mcpops_watch_otlp_spans_stored_total") >= (4 * calls) as f64);
}

#[test]
fn sdk_spans_and_metrics_are_stored_as_prometheus_translates_them() {
    if !python_has(
        "opentelemetry.exporter.otlp.proto.http",
        "sdk_spans_and_metrics_are_stored_as_prometheus_translates_them",
    ) {
        return;
    }
    let r = Receiver::start(OtlpOptions::default());
    let calls = 10;
    run_python(
        &fixtures().join("otlp_sdk_export.py"),
        &["--endpoint", &r.base(), "--calls", &calls.to_string()],
        Duration::from_secs(120),
    );
    let spans = r.series(CALL);
    assert_eq!(samples(&spans), calls, "one sample per SERVER span");
    let by_error = count_by(&spans, &["error.type"]);
    assert_eq!(by_error.get(&vec!["-32603".to_string()]), Some(&4));
    assert_eq!(by_error.get(&vec![String::new()]), Some(&6));
    for s in &spans {
        assert_eq!(s.key.label("server"), Some("search-mcp"));
        assert_eq!(s.key.label("job"), Some("tools/search-mcp"));
        assert_eq!(s.key.label("instance"), Some("search-1"));
        assert_eq!(s.key.label("gen_ai.tool.name"), Some("search"));
        assert_eq!(s.key.label("jsonrpc.request.id"), None, "not a label");
        assert!(s.values.iter().all(|&v| (0.001..1.0).contains(&v)), "{s:?}");
    }
    assert_eq!(r.health("mcpops_watch_otlp_spans_skipped_total"), 1.0);

    let last = |metric: &str, le: Option<&str>| -> f64 {
        let series = r.series(metric);
        let s = series
            .iter()
            .find(|s| s.key.label("le") == le)
            .unwrap_or_else(|| panic!("no {metric} le={le:?} in {series:?}"));
        assert_eq!(s.key.label("job"), Some("tools/search-mcp"), "{}", s.key);
        assert_eq!(s.key.label("instance"), Some("search-1"), "{}", s.key);
        *s.values.last().expect("a sample")
    };
    let h = "mcp_server_operation_duration_seconds";
    assert_eq!(last(&format!("{h}_count"), None), calls as f64);
    assert_eq!(last(&format!("{h}_bucket"), Some("+Inf")), calls as f64);
    let sum: f64 = (0..calls).map(|i| 0.002 + i as f64 * 0.01).sum();
    assert!((last(&format!("{h}_sum"), None) - sum).abs() < 1e-9);
    // The SDK's default bounds: 0, 5, 10, 25... (seconds here); all ten
    // recordings are under 5.
    assert_eq!(last(&format!("{h}_bucket"), Some("5")), calls as f64);
    assert_eq!(last(&format!("{h}_bucket"), Some("0")), 0.0);
    let bucket = r.series(&format!("{h}_bucket"));
    assert_eq!(
        bucket[0].key.label("mcp_method_name"),
        Some("tools/call"),
        "attribute names escaped as Prometheus does"
    );
    assert_eq!(last("mcp_requests_total", None), calls as f64);
    assert_eq!(last("mcp_sessions_open", None), 2.0);
    assert_eq!(last("process_cpu_utilization_ratio", None), 0.25);
    let info = r.series("target_info");
    assert!(
        info.iter()
            .any(|s| s.key.label("deployment_environment") == Some("test")
                && s.key.label("job") == Some("tools/search-mcp")),
        "{info:?}"
    );

    // The analyzer reads an OTLP-fed store: the calls, by the server label.
    drop(spans);
    let snapshot = r.shared.store.snapshot().expect("snapshot");
    let rules = mcpops::dsl::load_rules(&[
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/mcp.rules")
    ])
    .expect("rules");
    let a = mcpops::analyze::analysis::analyze(
        &snapshot,
        &rules.files,
        &mcpops::analyze::analysis::AnalyzeOptions::default(),
    )
    .expect("analyze");
    assert_eq!(a.servers, 1, "{}", a.server_label);
    assert!(a.calls >= calls as u64, "{} calls", a.calls);
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.to_string())
}

const T0: u64 = 1_794_787_201_234_000_000; // 2026-11-16T00:00:01.234Z

fn mcp_span(id: u8, tool: &str, start_ns: u64, end_ns: u64) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![id; 8],
        name: format!("tools/call {tool}"),
        kind: 2, // SERVER
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes: vec![
            kv("mcp.method.name", s("tools/call")),
            kv("gen_ai.tool.name", s(tool)),
        ],
        ..Default::default()
    }
}

fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("srv"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const PB: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[test]
fn hostile_bodies_get_the_answers_the_spec_gives() {
    let r = Receiver::start(OtlpOptions {
        body_limit: 1 << 20,
        ..OtlpOptions::default()
    });
    let good = trace_request(vec![mcp_span(1, "t", T0, T0 + 5_000_000)]).encode_to_vec();

    let (status, _, _) = r.post("/v1/traces", "text/plain", None, good.clone());
    assert_eq!(status, 415, "wrong content type");
    let (status, _, _) = r.post("/v1/traces", PB, Some("br"), good.clone());
    assert_eq!(status, 415, "unknown content encoding");

    let (status, headers, body) = r.post("/v1/traces", PB, None, good[..good.len() / 2].to_vec());
    assert_eq!(status, 400, "truncated protobuf");
    assert_eq!(headers["content-type"], PB);
    let st = RpcStatus::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(st.code, 3);
    assert!(st.message.contains("protobuf"), "{}", st.message);

    let (status, headers, body) = r.post(
        "/v1/metrics",
        JSON,
        None,
        b"{\"resourceMetrics\": [{]".to_vec(),
    );
    assert_eq!(status, 400, "garbage JSON");
    assert_eq!(headers["content-type"], JSON);
    let st: serde_json::Value = serde_json::from_slice(&body).expect("JSON status");
    assert_eq!(st["code"], 3, "{st}");
    assert!(st["message"].as_str().unwrap().contains("JSON"), "{st}");

    // A gzip bomb: a few KB that would expand to 64 MiB; stopped at 1 MiB.
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let (status, _, _) = r.post("/v1/traces", PB, Some("gzip"), bomb);
    assert_eq!(status, 413, "gzip bomb");
    let (status, _, _) = r.post("/v1/traces", PB, None, vec![0u8; 2 << 20]);
    assert_eq!(status, 413, "plain body over the limit");
    let (status, _, _) = r.post("/v1/traces", PB, Some("gzip"), b"not gzip".to_vec());
    assert_eq!(status, 400, "corrupt gzip");
    assert_eq!(samples(&r.series(CALL)), 0, "nothing stored so far");

    // A good body, gzipped: 200 and stored.
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&good).unwrap();
    let (status, _, body) = r.post("/v1/traces", PB, Some("gzip"), gz.finish().unwrap());
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(&body[..]).expect("response");
    assert_eq!(resp.partial_success, None);
    assert_eq!(samples(&r.series(CALL)), 1);

    // Rejected spans are counted, the rest stored; a repeated span is one call.
    let huge = "x".repeat(100_000);
    let req = trace_request(vec![
        mcp_span(2, "ok", T0 + 1_000_000, T0 + 2_000_000),
        mcp_span(2, "ok", T0 + 1_000_000, T0 + 2_000_000),
        mcp_span(3, &huge, T0, T0 + 1),
        mcp_span(4, "zero", 0, 5),
        mcp_span(5, "backwards", T0 + 10, T0),
        Span {
            kind: 1, // INTERNAL: not a call, not rejected
            ..mcp_span(6, "internal", T0, T0 + 1)
        },
    ]);
    let (status, _, body) = r.post("/v1/traces", PB, None, req.encode_to_vec());
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(&body[..])
        .unwrap()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 3, "{}", partial.error_message);
    for what in ["100000 bytes", "no time", "ends before it starts"] {
        assert!(
            partial.error_message.contains(what),
            "{}",
            partial.error_message
        );
    }
    let calls = r.series(CALL);
    assert_eq!(
        count_by(&calls, &["gen_ai.tool.name"]),
        BTreeMap::from([(vec!["ok".into()], 1), (vec!["t".into()], 1)])
    );
    // The same request again (an exporter's retry) adds no call.
    let (status, _, _) = r.post("/v1/traces", PB, None, req.encode_to_vec());
    assert_eq!(status, 200);
    assert_eq!(samples(&r.series(CALL)), 2);
    assert_eq!(r.health("mcpops_watch_otlp_spans_rejected_total"), 6.0);
    assert_eq!(r.health("mcpops_watch_otlp_spans_skipped_total"), 4.0);
    assert!(
        r.shared
            .health
            .get(
                "mcpops_watch_otlp_requests_total",
                &[("signal", "traces"), ("code", "413")]
            )
            .is_some_and(|n| n == 2.0)
    );
}

/// A metrics request as the Collector's file exporter and OTLP/JSON write
/// it: camelCase, 64-bit integers as strings, enums as integers, `NaN` as a
/// string, a point flagged NoRecordedValue (flags 1).
const METRICS_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"srv"}},{"key":"service.instance.id","value":{"stringValue":"i-1"}}]},"scopeMetrics":[{"scope":{"name":"x"},"metrics":[{"name":"queue.depth","unit":"{item}","description":"Items waiting.","gauge":{"dataPoints":[{"attributes":[{"key":"queue","value":{"stringValue":"a"}}],"timeUnixNano":"1794787201234000000","asDouble":"NaN"},{"attributes":[{"key":"queue","value":{"stringValue":"b"}}],"timeUnixNano":"1794787201234000000","asInt":"7"},{"attributes":[{"key":"queue","value":{"stringValue":"c"}}],"timeUnixNano":"1794787201234000000","flags":1}]}},{"name":"bytes.sent","unit":"By","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"timeUnixNano":"1794787201234000000","asInt":"5"}]}},{"name":"latency","unit":"ms","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"1794787201234000000","count":"1","scale":1}]}},{"name":"rpc.duration","unit":"s","summary":{"dataPoints":[{"timeUnixNano":"1794787201234000000","count":"4","sum":"Infinity","quantileValues":[{"quantile":0.5,"value":0.4},{"quantile":0.99,"value":1.5}]}]}},{"name":"t0","gauge":{"dataPoints":[{"timeUnixNano":"0","asDouble":1}]}}]}]}]}"#;

/// A trace request in OTLP/JSON: hex ids, string nanoseconds, kind 2.
const TRACES_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"srv"}}]},"scopeSpans":[{"scope":{"name":"mcp"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"tools/call search","kind":2,"startTimeUnixNano":"1794787201234000000","endTimeUnixNano":"1794787201484000000","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"gen_ai.tool.name","value":{"stringValue":"search"}},{"key":"error.type","value":{"stringValue":"tool_error"}},{"key":"mcp.session.id","value":{"stringValue":"s-1"}}],"status":{"code":2}},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"tools/list","kind":3,"startTimeUnixNano":"1794787201000000000","endTimeUnixNano":"1794787201010000000","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/list"}}],"status":{"code":2}}]}]}]}"#;

fn check_metrics_json(series: impl Fn(&str) -> Vec<SeriesData>) {
    let depth = series("queue_depth");
    let by_queue: BTreeMap<&str, f64> = depth
        .iter()
        .map(|s| (s.key.label("queue").unwrap(), s.values[0]))
        .collect();
    assert!(by_queue["a"].is_nan() && by_queue["a"].to_bits() != STALE_NAN_BITS);
    assert_eq!(by_queue["b"], 7.0);
    assert_eq!(by_queue["c"].to_bits(), STALE_NAN_BITS, "NoRecordedValue");
    assert_eq!(depth[0].key.label("instance"), Some("i-1"));
    assert_eq!(depth[0].timestamps[0], 1_794_787_201_234);
    assert_eq!(series("bytes_sent_total")[0].values, vec![5.0]);
    let summary = series("rpc_duration_seconds");
    assert_eq!(summary.len(), 2);
    assert!(
        summary
            .iter()
            .any(|s| s.key.label("quantile") == Some("0.99"))
    );
    assert_eq!(series("rpc_duration_seconds_count")[0].values, vec![4.0]);
    assert_eq!(
        series("rpc_duration_seconds_sum")[0].values,
        vec![f64::INFINITY]
    );
    assert!(series("latency_milliseconds_bucket").is_empty());
    assert!(series("t0").is_empty());
}

#[test]
fn otlp_json_requests_are_received() {
    let r = Receiver::start(OtlpOptions::default());
    let (status, headers, body) = r.post("/v1/metrics", JSON, None, METRICS_JSON.into());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], JSON);
    let resp: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let partial = &resp["partialSuccess"];
    assert_eq!(partial["rejectedDataPoints"], 2, "{resp}");
    let message = partial["errorMessage"].as_str().unwrap();
    assert!(message.contains("exponential histogram"), "{message}");
    assert!(message.contains("no time"), "{message}");
    check_metrics_json(|m| r.series(m));

    let (status, _, body) = r.post(
        "/v1/traces",
        "application/json; charset=utf-8",
        None,
        TRACES_JSON.into(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let calls = r.series(CALL);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].values, vec![0.25]);
    assert_eq!(calls[0].timestamps, vec![1_794_787_201_234]);
    assert_eq!(calls[0].key.label("error.type"), Some("tool_error"));
    assert_eq!(calls[0].key.label("mcp.session.id"), Some("s-1"));
    let client = r.series("mcp.client.operation.duration");
    assert_eq!(client[0].values, vec![0.01]);
    assert_eq!(client[0].key.label("error.type"), Some("_OTHER"));
}

#[test]
fn ingest_reads_the_collector_file_exporters_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("export.otlp.jsonl");
    let logs =
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#;
    std::fs::write(&file, format!("{TRACES_JSON}\n{METRICS_JSON}\n\n{logs}\n")).unwrap();
    let store_dir = tmp.path().join("store");
    let o = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(&store_dir)
        .args(["--quiet", "ingest"])
        .arg(&file)
        .output()
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("export.otlp.jsonl:2: warning: 0 spans and 2 data points not stored"),
        "{text}"
    );
    let snapshot = Store::open(&store_dir).snapshot().unwrap();
    check_metrics_json(|m| scan(&snapshot, m));
    assert_eq!(samples(&scan(&snapshot, CALL)), 1);

    // Length-prefixed protobuf, gzipped, as the file exporter's proto format.
    let pb = tmp.path().join("spans.otlp.pb.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for id in 1..=3u8 {
        let msg = trace_request(vec![mcp_span(
            id,
            "pb",
            T0 + id as u64 * 1_000_000,
            T0 + 9_000_000,
        )])
        .encode_to_vec();
        gz.write_all(&(msg.len() as u32).to_be_bytes()).unwrap();
        gz.write_all(&msg).unwrap();
    }
    std::fs::write(&pb, gz.finish().unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(&store_dir)
        .args(["--quiet", "ingest"])
        .arg(&pb)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snapshot = Store::open(&store_dir).snapshot().unwrap();
    let pb_calls: Vec<SeriesData> = scan(&snapshot, CALL)
        .into_iter()
        .filter(|s| s.key.label("gen_ai.tool.name") == Some("pb"))
        .collect();
    assert_eq!(samples(&pb_calls), 3);
    assert_eq!(
        pb_calls[0].key,
        SeriesKey::new(
            CALL,
            vec![
                ("gen_ai.tool.name".into(), "pb".into()),
                ("job".into(), "srv".into()),
                ("mcp.method.name".into(), "tools/call".into()),
                ("server".into(), "srv".into()),
            ]
        )
    );

    // A bad line names its file, line and column.
    let bad = tmp.path().join("bad.otlp.jsonl");
    std::fs::write(&bad, format!("{TRACES_JSON}\n{{\"resourceSpans\": 3}}\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(tmp.path().join("store2"))
        .args(["--quiet", "ingest"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.otlp.jsonl:2:"), "{err}");
    assert!(err.contains("OTLP JSON"), "{err}");
}
