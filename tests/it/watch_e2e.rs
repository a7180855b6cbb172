//! `mcpops watch` as one process, end to end: it scrapes a prometheus_client
//! target, probes the Python MCP fixture over stdio and receives OTLP spans,
//! all three answered through its own HTTP API; and `kill -9` between and
//! during OTLP requests loses no span that was answered 200.

use crate::common::{
    KillOnDrop, fixtures, free_port, http, http_body, python_has, start_prom_target, wait_for,
    wait_watch_ready,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `mcpops --store STORE watch --listen 127.0.0.1:PORT ARGS`, ready (at most 30 s).
fn start_watch(store: &Path, port: u16, args: &[&str]) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("--store")
        .arg(store)
        .args(["watch", "--quiet", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mcpops watch");
    let mut watch = KillOnDrop(child);
    // Its stderr is the test's own: nothing more to show.
    wait_watch_ready(&mut watch.0, port, String::new);
    watch
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query through watch's API: each series' labels and value.
fn query(port: u16, expr: &str) -> Vec<(Value, f64)> {
    let (status, _, body) = http(
        port,
        "POST",
        "/api/v1/query",
        Some(&format!("query={}", encode(expr))),
    );
    assert_eq!(status, 200, "{expr}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: {body}"))
        .iter()
        .map(|r| {
            let v = r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
            (r["metric"].clone(), v)
        })
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// An OTLP/JSON trace export of `n` MCP tool calls to `tool`, one
/// millisecond apart from `start_ns` (one sample per call and millisecond).
fn spans_json(tool: &str, n: usize, start_ns: u64) -> String {
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            let start = start_ns + i as u64 * 1_000_000;
            serde_json::json!({
                "traceId": format!("{:032x}", start),
                "spanId": format!("{:016x}", i + 1),
                "name": format!("tools/call {tool}"),
                "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 250_000).to_string(),
                "attributes": [
                    {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
                    {"key": "gen_ai.tool.name", "value": {"stringValue": tool}},
                ],
            })
        })
        .collect();
    serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "e2e"}}
            ]},
            "scopeSpans": [{"spans": spans}],
        }]
    })
    .to_string()
}

fn post_spans(port: u16, body: &str) -> u16 {
    http_body(port, "POST", "/v1/traces", Some(("application/json", body))).0
}

#[test]
fn one_process_scrapes_probes_and_receives_otlp() {
    let test = "watch_e2e::one_process_scrapes_probes_and_receives_otlp";
    if !python_has("mcp", test) {
        return;
    }
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let probe = format!(
        "python3 {} --transport stdio",
        fixtures().join("mcp_fixture.py").display()
    );
    let scrape = format!("http://127.0.0.1:{target_port}/metrics");
    let _watch = start_watch(
        &dir.path().join("store"),
        port,
        &[
            "--interval",
            "1s",
            "--scrape",
            &scrape,
            "--probe-cmd",
            &probe,
        ],
    );

    assert_eq!(post_spans(port, &spans_json("lookup", 7, now_ns())), 200);

    let instance = format!("127.0.0.1:{target_port}");
    wait_for(
        "the scrape, the probe and the spans",
        Duration::from_secs(60),
        || {
            let up = query(port, "up");
            let scraped = up
                .iter()
                .any(|(m, v)| m["instance"] == instance.as_str() && *v == 1.0);
            let probed = query(port, "mcp_probe_success{phase=\"total\"}")
                .iter()
                .any(|(_, v)| *v == 1.0);
            let calls = query(
                port,
                "sum(count(mcp.server.operation.duration{gen_ai.tool.name=\"lookup\"}[10m]))",
            );
            scraped && probed && calls.first().map(|c| c.1) == Some(7.0)
        },
    );
    // The probe's era and tool set are series too.
    let era = query(port, "mcp_probe_protocol_version_info");
    assert!(
        era.iter().any(|(m, _)| m["era"].is_string()),
        "the probe names its era: {era:?}"
    );
    let own = query(port, "mcpops_watch_up");
    assert_eq!(own.first().map(|o| o.1), Some(1.0), "{own:?}");
}

/// Rounds of: start watch on the same store, send numbered batches of spans
/// (some while the kill lands), `kill -9`. Every batch answered 200 is
/// stored whole after the next start, however the kill fell.
#[test]
fn kill_9_loses_no_acknowledged_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let base_ns = now_ns() - 60_000_000_000;
    let per_batch = 50;
    let mut acked: Vec<String> = Vec::new();
    let mut sent = 0usize;
    let mut rng = crate::common::XorShift(0x5eed_cafe);
    for round in 0..4 {
        let port = free_port();
        let mut watch = start_watch(&store, port, &["--interval", "1s"]);
        let batches = 3 + rng.below(6);
        for _ in 0..batches {
            let tool = format!("b{sent}");
            let body = spans_json(&tool, per_batch, base_ns + sent as u64 * 1_000_000_000);
            sent += 1;
            if post_spans(port, &body) == 200 {
                acked.push(tool);
            }
        }
        // One more batch in flight while the kill lands: acknowledged or
        // not, it must be whole or absent.
        let tool = format!("b{sent}");
        let body = spans_json(&tool, per_batch, base_ns + sent as u64 * 1_000_000_000);
        sent += 1;
        let sender = std::thread::spawn(move || {
            let status = std::panic::catch_unwind(|| post_spans(port, &body)).unwrap_or(0);
            (tool, status)
        });
        std::thread::sleep(Duration::from_millis(rng.below(20) as u64));
        watch.0.kill().expect("kill -9 watch");
        watch.0.wait().unwrap();
        let (tool, status) = sender.join().unwrap();
        if status == 200 {
            acked.push(tool);
        }
        eprintln!(
            "round {round}: {} of {sent} batches acknowledged",
            acked.len()
        );
    }

    let port = free_port();
    let _watch = start_watch(&store, port, &["--interval", "1s"]);
    let counts = query(port, "count(mcp.server.operation.duration[1h])");
    let by_tool: std::collections::BTreeMap<String, f64> = counts
        .iter()
        .map(|(m, v)| (m["gen_ai.tool.name"].as_str().unwrap().to_string(), *v))
        .collect();
    for tool in &acked {
        assert_eq!(
            by_tool.get(tool),
            Some(&(per_batch as f64)),
            "acknowledged batch {tool} is not stored whole: {by_tool:?}"
        );
    }
    for (tool, n) in &by_tool {
        assert_eq!(*n, per_batch as f64, "batch {tool} is stored in part");
    }
    let verify = crate::common::mcpops(&store, &["verify"]);
    assert!(
        verify.status.success(),
        "verify after the kills: {}",
        crate::common::text(&verify)
    );
}
