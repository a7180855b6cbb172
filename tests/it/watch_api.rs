//! `mcpops watch` as a process and its Prometheus HTTP API: the real binary
//! on 127.0.0.1 and a port the test chose, over a store filled with a
//! generated fleet (Prometheus's shape) and calls with dotted OpenTelemetry
//! names, driven with the requests Grafana's Prometheus data source sends
//! (tests/fixtures/grafana/requests.json). Query answers must equal
//! `mcpops query --format json` for the same expression and times; bad
//! requests get Prometheus's error JSON; SIGTERM exits 0 with the store
//! flushed and valid; bad configs and taken ports exit 2. Every process is
//! killed by its PID when a test ends, passing or not.

use super::common::{free_port, http, mcpops, text, wait_watch_ready};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The first and last second of the dashboard the fixtures ask about.
const DASHBOARD_START: i64 = 1_794_823_200; // 2026-11-16T10:00:00Z

/// A store with a day of two servers in Prometheus's shape and ten minutes
/// of calls under OpenTelemetry's dotted names, built once per test run;
/// each test works on a copy of it.
fn prepared_store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("watch_api");
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let store = root.join("store");
        let fleet = root.join("fleet");
        let o = mcpops(
            &store,
            &[
                "generate",
                "--servers",
                "2",
                "--days",
                "1",
                "--seed",
                "3",
                "--rate",
                "0.5",
                "--shape",
                "prometheus",
                "--out",
                fleet.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let o = mcpops(&store, &["ingest", fleet.join("metrics").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        // Calls every 10 s from 10:00 to 10:10, as `mcp.server.operation.duration`
        // events whose labels have dots too.
        let mut csv = String::from("timestamp,metric,value,mcp.method.name,server\n");
        for i in 0..60 {
            let t = (DASHBOARD_START + i * 10) * 1000;
            let method = if i % 3 == 0 {
                "tools/list"
            } else {
                "tools/call"
            };
            csv.push_str(&format!(
                "{t},mcp.server.operation.duration,{},{method},mcp-01\n",
                0.05 + (i % 7) as f64 / 100.0
            ));
        }
        let calls = root.join("calls.csv");
        fs::write(&calls, csv).unwrap();
        let o = mcpops(&store, &["ingest", calls.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        store
    })
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A running `mcpops watch`, killed (by PID) when dropped.
struct Watch {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Watch {
    /// `mcpops watch --store COPY --listen 127.0.0.1:PORT ARGS...`, ready.
    fn start(args: &[&str]) -> Watch {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(prepared_store(), &dir.path().join("store"));
        let port = free_port();
        let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(["watch", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start mcpops watch");
        let mut watch = Watch { child, port, dir };
        watch.wait_ready();
        watch
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let stderr_file = self.dir.path().join("stderr");
        let log = || fs::read_to_string(&stderr_file).unwrap_or_default();
        wait_watch_ready(&mut self.child, self.port, log);
    }

    /// A request; the status and the JSON body (checked to be JSON).
    fn call(&self, method: &str, target: &str, form: Option<&str>) -> (u16, Value) {
        let (status, content_type, body) = http(self.port, method, target, form);
        assert_eq!(
            content_type, "application/json",
            "{method} {target}: {body}"
        );
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {target}: not JSON ({e}): {body}"));
        (status, json)
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "watch did not stop within 20 s of SIGTERM:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to its exit, killed by PID after `secs`.
fn run_bounded(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("mcpops {args:?} still ran after {secs} s: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Checks the shape of a query's `data` as Prometheus's API writes it.
fn check_query_shape(what: &str, data: &Value) {
    let points = |p: &Value| {
        let p = p
            .as_array()
            .unwrap_or_else(|| panic!("{what}: a point {p}"));
        assert_eq!(p.len(), 2, "{what}: {p:?}");
        assert!(p[0].is_number(), "{what}: time {p:?}");
        let v = p[1]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: value {p:?}"));
        assert!(
            v.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&v),
            "{what}: {v}"
        );
    };
    match data["resultType"].as_str() {
        Some("scalar") => points(&data["result"]),
        Some("vector") => {
            for s in data["result"].as_array().unwrap() {
                assert!(s["metric"].is_object(), "{what}: {s}");
                points(&s["value"]);
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().unwrap() {
                assert!(s["metric"].is_object(), "{what}: {s}");
                let values = s["values"].as_array().unwrap();
                assert!(!values.is_empty(), "{what}: a series without points: {s}");
                values.iter().for_each(points);
            }
        }
        other => panic!("{what}: resultType {other:?}"),
    }
}

#[test]
fn grafana_requests_get_prometheus_shapes_and_query_values() {
    let watch = Watch::start(&[]);
    let fixtures: Vec<Value> = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana/requests.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(fixtures.len() >= 10);
    for f in &fixtures {
        let what = f["what"].as_str().unwrap();
        let (status, body) = watch.call(
            f["method"].as_str().unwrap(),
            f["path"].as_str().unwrap(),
            f["body"].as_str(),
        );
        assert_eq!(
            status,
            f["status"].as_u64().unwrap() as u16,
            "{what}: {body}"
        );
        assert_eq!(body["status"], "success", "{what}: {body}");
        let data = &body["data"];
        if let Some(kind) = f["resultType"].as_str() {
            assert_eq!(data["resultType"], kind, "{what}: {body}");
            check_query_shape(what, data);
        }
        if f["nonEmpty"] == json!(true) {
            let list = data.get("result").unwrap_or(data);
            assert!(
                list.as_array().is_some_and(|a| !a.is_empty()),
                "{what}: empty: {body}"
            );
        }
        for item in f["contains"].as_array().into_iter().flatten() {
            assert!(
                data.as_array().unwrap().contains(item),
                "{what}: {item} missing from {data}"
            );
        }
        for key in f["keys"].as_array().into_iter().flatten() {
            assert!(
                data.get(key.as_str().unwrap()).is_some(),
                "{what}: no {key} in {data}"
            );
        }
        if let Some(expr) = f["expr"].as_str() {
            let mut args = vec!["query", expr];
            args.extend(
                f["cli"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap()),
            );
            args.extend(["--format", "json"]);
            let o = mcpops(&watch.store(), &args);
            assert!(o.status.success(), "{what}: {}", text(&o));
            let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                data, &cli["data"],
                "{what}: the API and `mcpops query` differ"
            );
        }
    }
    // Series are listed with their metric name and every label, dotted or not.
    let (_, body) = watch.call(
        "GET",
        "/api/v1/series?match%5B%5D=%7B%22mcp.server.operation.duration%22%7D",
        None,
    );
    assert_eq!(
        body["data"],
        json!([
            {"__name__": "mcp.server.operation.duration", "mcp.method.name": "tools/call", "server": "mcp-01"},
            {"__name__": "mcp.server.operation.duration", "mcp.method.name": "tools/list", "server": "mcp-01"},
        ])
    );
    // A histogram's metadata is its family's, with type, help and unit.
    let (_, body) = watch.call(
        "GET",
        "/api/v1/metadata?metric=mcp_server_operation_duration_seconds",
        None,
    );
    let entry = &body["data"]["mcp_server_operation_duration_seconds"][0];
    assert_eq!(entry["type"], "histogram", "{body}");
    assert_eq!(entry["unit"], "seconds", "{body}");
    assert!(
        entry["help"].as_str().unwrap().contains("Duration"),
        "{body}"
    );
    // A query that cannot finish within its `timeout` is answered 503.
    let (status, body) = watch.call(
        "POST",
        "/api/v1/query_range",
        Some(&format!(
            "query=histogram_quantile%280.5%2C+rate%28mcp_server_operation_duration_seconds_bucket%5B1h%5D%29%29&start={}&end={}&step=60&timeout=1ms",
            DASHBOARD_START - 36_000,
            DASHBOARD_START + 36_000
        )),
    );
    assert_eq!(
        (status, &body["errorType"]),
        (503, &json!("timeout")),
        "{body}"
    );
}

/// A request (method, target, form body) and its status, errorType and a
/// part of its error.
type BadRequest<'a> = (&'a str, String, Option<String>, u16, &'a str, &'a str);

#[test]
fn bad_requests_get_prometheus_error_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watch.toml");
    fs::write(&config, "[limits]\nmax_samples = 1000\n").unwrap();
    let watch = Watch::start(&["--config", config.to_str().unwrap()]);
    let range = |q: &str| {
        format!(
            "query={q}&start={DASHBOARD_START}&end={}&step=60",
            DASHBOARD_START + 7200
        )
    };
    let cases: Vec<BadRequest> = vec![
        (
            "GET",
            "/api/v1/query?query=rate(up".into(),
            None,
            400,
            "bad_data",
            "invalid parameter \"query\": 1:",
        ),
        (
            "GET",
            "/api/v1/query?query=p96(up%5B5m%5D)".into(),
            None,
            400,
            "bad_data",
            "unknown function",
        ),
        (
            "GET",
            "/api/v1/query".into(),
            None,
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "GET",
            "/api/v1/query?query=up&time=soon".into(),
            None,
            400,
            "bad_data",
            "invalid parameter \"time\": cannot parse \"soon\" to a valid timestamp",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&start=0&end=100000&step=1".into()),
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&start=100&end=10&step=1".into()),
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&start=0&end=10&step=0".into()),
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&start=0&end=10&step=fast".into()),
            400,
            "bad_data",
            "invalid parameter \"step\"",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&end=10&step=1".into()),
            400,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some("query=up&start=NaN&end=10&step=1".into()),
            400,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "POST",
            "/api/v1/query".into(),
            Some("query=up&time=%zz".into()),
            400,
            "bad_data",
            "invalid URL escape",
        ),
        (
            "GET",
            "/api/v1/series".into(),
            None,
            400,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "GET",
            "/api/v1/series?match%5B%5D=%7B%7D".into(),
            None,
            400,
            "bad_data",
            "at least one non-empty matcher",
        ),
        (
            "GET",
            "/api/v1/series?match%5B%5D=up%7Bjob%3D".into(),
            None,
            400,
            "bad_data",
            "invalid parameter \"match[]\"",
        ),
        (
            "GET",
            "/api/v1/label/U__a_zz_/values".into(),
            None,
            400,
            "bad_data",
            "invalid label name",
        ),
        (
            "GET",
            "/api/v1/labels?limit=-3".into(),
            None,
            400,
            "bad_data",
            "invalid parameter \"limit\"",
        ),
        (
            "POST",
            "/api/v1/query_range".into(),
            Some(range(
                "rate(mcp_server_operation_duration_seconds_bucket%5B5m%5D)",
            )),
            422,
            "execution",
            "more than 1000 samples",
        ),
        (
            "GET",
            "/api/v1/query_exemplars?query=up".into(),
            None,
            404,
            "not_found",
            "does not serve",
        ),
    ];
    for (method, target, form, status, kind, says) in cases {
        let (got, body) = watch.call(method, &target, form.as_deref());
        assert_eq!(got, status, "{method} {target}: {body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], kind, "{method} {target}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{method} {target}: {error}");
        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    }
}

#[test]
fn sigterm_exits_0_with_own_health_stored_and_the_store_valid() {
    let mut watch = Watch::start(&["--interval", "1s"]);
    // watch's own health reaches the store every interval, and /metrics.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = watch.call("GET", "/api/v1/query?query=mcpops_watch_up", None);
        if body["data"]["result"][0]["value"][1] == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no mcpops_watch_up after 20 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, content_type, metrics) = http(watch.port, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for line in [
        "# TYPE mcpops_watch_up gauge\nmcpops_watch_up 1\n",
        "# TYPE mcpops_watch_wal_bytes gauge",
        "# TYPE mcpops_watch_late_samples_total counter",
        "mcpops_watch_api_requests_total{code=\"200\",handler=\"/api/v1/query\"}",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    // Stored with its type and help, as /metrics declares them.
    let (_, body) = watch.call(
        "GET",
        "/api/v1/metadata?metric=mcpops_watch_flushes_total",
        None,
    );
    let entry = &body["data"]["mcpops_watch_flushes_total"][0];
    assert_eq!(entry["type"], "counter", "{body}");
    assert!(
        entry["help"].as_str().unwrap().contains("Flushes"),
        "{body}"
    );
    let (status, _, body) = http(watch.port, "GET", "/-/healthy", None);
    assert_eq!((status, body.as_str()), (200, "mcpops watch is Healthy.\n"));

    let status = watch.terminate();
    assert_eq!(status.code(), Some(0), "{}", watch.stderr());
    let o = mcpops(&watch.store(), &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpops(
        &watch.store(),
        &["query", "mcpops_watch_up", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cli["data"]["result"][0]["value"][1], "1", "{cli}");
}

#[test]
fn bad_configs_and_taken_addresses_exit_2_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let config = dir.path().join("watch.toml");
    // `watch --config` with `toml` as the file: exits 2.
    let with_config = |toml: &str| {
        fs::write(&config, toml).unwrap();
        let o = run_bounded(
            &[
                "--store",
                store,
                "watch",
                "--config",
                config.to_str().unwrap(),
            ],
            30,
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        o
    };
    let o = with_config("interval = \"15s\"\n\n[limits]\nmax_samples = \"many\"\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:4:15: ", config.display())),
        "{err}"
    );

    let o = with_config("[[scrape]]\nurl = \"http://127.0.0.1:1/metrics\"\nintervall = \"5s\"\n");
    assert!(text(&o).contains("intervall"), "{}", text(&o));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run_bounded(&["--store", store, "watch", "--listen", &addr], 30);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("cannot listen on {addr}")),
        "{}",
        text(&o)
    );

    for (args, says) in [
        (
            vec!["--listen", "9464"],
            "--listen: `9464` is not an address",
        ),
        (vec!["--probe-cmd", "server 'unclosed"], "--probe-cmd: "),
        (vec!["--interval", "0s"], "--interval: must be more than 0s"),
    ] {
        let mut all = vec!["--store", store, "watch"];
        all.extend(args);
        let o = run_bounded(&all, 30);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(says), "{}", text(&o));
    }
    drop(taken);
}
