//! `watch`'s MCP probes against real servers: the official Python SDK's
//! fixture (`tests/fixtures/mcp_fixture.py`, 2026-07-28 era) and npm's
//! `@modelcontextprotocol/server-everything` (older era), over stdio and
//! Streamable HTTP, plus hostile peers (garbage, huge frames, instant exit,
//! silence, 401, a closed port). The probe runs in-process on a tokio
//! runtime, writes into a live store in a tempdir, and the store is queried
//! afterwards. Every server is started on 127.0.0.1 with a port the test
//! chose, in its own process group, and killed by PID in a Drop guard.

use crate::common::{free_port, python_has};
use mcpops::dsl::parse_query;
use mcpops::engine::{Grid, Value, query::query};
use mcpops::store::{LiveOptions, LiveStore};
use mcpops::watch::Shared;
use mcpops::watch::health::Health;
use mcpops::watch::probe::{CallConfig, Era, FailureKind, Phase, ProbeConfig, Prober, RoundReport};
use mcpops::watch::targets::{TargetHealth, Targets};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp_fixture.py")
}

fn everything() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/node/node_modules/.bin/mcp-server-everything")
}

/// Whether the Python SDK is importable; says SKIP loudly when not.
fn have_python_mcp(test: &str) -> bool {
    python_has("mcp.server.mcpserver", test)
}

fn have_everything(test: &str) -> bool {
    let ok = everything().exists()
        && Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIP {test}: node or {} is missing (.ci/run installs it)",
            everything().display()
        );
    }
    ok
}

/// A server process, in its own process group, killed with its group by
/// PID when dropped (a stopped one too).
struct Server {
    child: Child,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        Server {
            child: cmd.spawn().expect("start server"),
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signals the group our child leads; it is not reaped yet.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), sig);
        }
    }

    /// Waits until the port accepts connections (bounded).
    fn wait_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited before listening on {port}: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not listen on {port} within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn python_http(port: u16, extra: bool) -> Server {
    let mut cmd = Command::new("python3");
    cmd.arg(fixture())
        .args(["--transport", "http", "--port", &port.to_string()]);
    if extra {
        cmd.arg("--extra-tool");
    }
    let mut s = Server::start(cmd);
    s.wait_port(port);
    s
}

fn everything_http(port: u16) -> Server {
    let mut cmd = Command::new(everything());
    cmd.arg("streamableHttp").env("PORT", port.to_string());
    let mut s = Server::start(cmd);
    s.wait_port(port);
    s
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A `Shared` over a live store in `dir`, and the shutdown switch.
fn shared(dir: &Path) -> (Shared, tokio::sync::watch::Sender<bool>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let store = LiveStore::open(dir, LiveOptions::default()).expect("open live store");
    (
        Shared {
            store: Arc::new(store),
            health: Arc::new(Health::new()),
            targets: Arc::new(Targets::new()),
            shutdown: rx,
        },
        tx,
    )
}

/// The query's value now, per series, with labels printed `k=v,...`.
fn query_now(shared: &Shared, text: &str) -> Vec<(String, f64)> {
    let expr = parse_query(text).expect("query parses");
    let snapshot = shared.store.snapshot().expect("snapshot");
    let now = mcpops::time::now_ms() + 1_000;
    match query(snapshot, &expr, Grid::instant(now), 10_000_000).expect("query runs") {
        Value::Scalar(v) => vec![(String::new(), v)],
        Value::Vector(series) => series
            .iter()
            .filter_map(|s| {
                let v = s.at(0)?;
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Some((labels.join(","), v))
            })
            .collect(),
    }
}

fn stdio_fixture(args: &[&str]) -> ProbeConfig {
    let mut argv = vec!["python3".to_string(), fixture().display().to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    ProbeConfig::from_command(argv)
}

fn echo_call(expect: &str) -> Option<CallConfig> {
    Some(CallConfig {
        tool: "echo".into(),
        arguments: Some(
            serde_json::json!({"text": "hi there"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
        expect: Some(expect.into()),
    })
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d)
}

#[test]
fn python_fixture_over_stdio_is_modern_and_remembered() {
    if !have_python_mcp("python_fixture_over_stdio_is_modern_and_remembered") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (shared, _tx) = shared(dir.path());
    let mut config = stdio_fixture(&[]);
    config.name = Some("fixture-stdio".into());
    config.call = echo_call(r#"{"result":"hi there"}"#);
    let mut prober = Prober::new(config).expect("valid target");
    let rt = runtime();
    let first = rt.block_on(prober.round());
    assert!(first.failure.is_none(), "{:?}", first.failure);
    assert_eq!(first.era, Some(Era::Modern));
    assert_eq!(first.protocol_version.as_deref(), Some("2026-07-28"));
    assert!(first.seconds(Phase::Discover).is_some());
    assert!(
        first.seconds(Phase::Initialize).is_none(),
        "a modern server is never initialized"
    );
    let tools = first.tools.clone().expect("tools listed");
    assert_eq!(tools.names, ["echo", "fail", "is_error", "slow"]);
    assert_eq!(prober.era(), Some(Era::Modern));
    rt.block_on(prober.record(&first, &shared))
        .expect("recorded");
    let second = rt.block_on(prober.round());
    assert!(second.failure.is_none(), "{:?}", second.failure);
    assert_eq!(
        second.tools.as_ref().map(|t| &t.sha256),
        Some(&tools.sha256)
    );
    // The remembered era opens with discover alone: one opener call.
    assert_eq!(
        second.calls.iter().map(|c| c.method).collect::<Vec<_>>(),
        ["server/discover", "tools/list", "tools/call"]
    );
    rt.block_on(prober.record(&second, &shared))
        .expect("recorded");

    let up = query_now(
        &shared,
        r#"mcp_probe_up{job="mcp-probe",instance="fixture-stdio"}"#,
    );
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].1, 1.0);
    let info = query_now(&shared, "mcp_probe_protocol_version_info");
    assert!(
        info.iter().any(|(l, v)| l.contains("era=modern")
            && l.contains("version=2026-07-28")
            && *v == 1.0),
        "{info:?}"
    );
    let hash = query_now(&shared, "mcp_probe_tools_hash");
    assert_eq!(hash[0].1, tools.hash48 as f64);
    let calls = query_now(
        &shared,
        r#"count(mcp.client.operation.duration{mcp.method.name="tools/call", gen_ai.tool.name="echo"}[10m])"#,
    );
    assert_eq!(calls.iter().map(|(_, v)| v).sum::<f64>(), 2.0, "{calls:?}");
    let status = shared.targets.all();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].health, TargetHealth::Up);
    assert_eq!(status[0].protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(
        shared.health.get("mcpops_watch_probes_total", &[]),
        Some(2.0)
    );
}

#[test]
fn python_fixture_over_http_slow_call_sigstop_and_restart() {
    if !have_python_mcp("python_fixture_over_http_slow_call_sigstop_and_restart") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (shared, _tx) = shared(dir.path());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let server = python_http(port, false);
    let mut config = ProbeConfig::from_url(&url);
    config.timeout = Some(Duration::from_secs(2));
    config.call = Some(CallConfig {
        tool: "slow".into(),
        arguments: serde_json::json!({"seconds": 1.5}).as_object().cloned(),
        expect: Some("slept".into()),
    });
    let mut prober = Prober::new(config).expect("valid target");
    let rt = runtime();
    let ok = rt.block_on(prober.round());
    assert!(ok.failure.is_none(), "{:?}", ok.failure);
    assert_eq!(ok.era, Some(Era::Modern));
    let call = ok.seconds(Phase::Call).expect("call measured");
    assert!((1.4..3.0).contains(&call), "a 1.5 s call measured {call} s");
    eprintln!(
        "fixture http: version {:?}, phases {:?}",
        ok.protocol_version, ok.phases
    );
    let before = ok.tools.clone().expect("tools");
    rt.block_on(prober.record(&ok, &shared)).expect("recorded");

    // Wedged: the kernel still accepts the connection, nothing answers.
    server.signal(libc::SIGSTOP);
    let t = Instant::now();
    let wedged = rt.block_on(prober.round());
    let took = t.elapsed();
    server.signal(libc::SIGCONT);
    let failure = wedged.failure.clone().expect("a stopped server fails");
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert_eq!(failure.phase, Phase::Discover, "{failure}");
    let phase = wedged.seconds(Phase::Discover).expect("measured");
    assert!(
        (1.9..2.6).contains(&phase),
        "timed out after {phase} s, timeout 2 s"
    );
    assert!(took < secs(4.5), "the round took {took:?}");
    eprintln!("fixture http SIGSTOP: round {took:?}, {failure}");
    assert_eq!(prober.era(), None, "a failed round forgets the era");
    rt.block_on(prober.record(&wedged, &shared))
        .expect("recorded");
    let failed = query_now(&shared, "mcp_probe_failure");
    assert!(
        failed
            .iter()
            .any(|(l, _)| l.contains("kind=timeout") && l.contains("phase=discover")),
        "{failed:?}"
    );
    assert_eq!(
        shared
            .health
            .get("mcpops_watch_probe_errors_total", &[("kind", "timeout")]),
        Some(1.0)
    );

    // Restarted with one more tool: the schema hash changes.
    drop(server);
    let _server = python_http(port, true);
    let after = rt.block_on(prober.round());
    assert!(after.failure.is_none(), "{:?}", after.failure);
    let after_tools = after.tools.clone().expect("tools");
    assert_eq!(after_tools.count, before.count + 1);
    assert_ne!(after_tools.hash48, before.hash48);
    rt.block_on(prober.record(&after, &shared))
        .expect("recorded");
    // The failure and the old tool set are stale at once, not for 5 minutes.
    assert!(query_now(&shared, "mcp_probe_failure").is_empty());
    let info = query_now(&shared, "mcp_probe_tools_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].0.contains(&after_tools.sha256), "{info:?}");
    let changes = query_now(&shared, "changes(mcp_probe_tools_hash[1h])");
    let hashes = (
        query_now(&shared, "count(mcp_probe_tools_hash[1h])"),
        query_now(&shared, "mcp_probe_tools_hash"),
    );
    assert_eq!(
        changes.first().map(|c| c.1),
        Some(1.0),
        "changes {changes:?}; before {:x}, after {:x}; samples {hashes:?}",
        before.hash48,
        after_tools.hash48
    );
}

#[test]
fn tool_errors_and_unmet_expectations_fail_the_call_phase() {
    if !have_python_mcp("tool_errors_and_unmet_expectations_fail_the_call_phase") {
        return;
    }
    let rt = runtime();
    let cases = [
        ("fail", None, "error", Some("-32603")),
        ("is_error", None, "tool_error", Some("tool_error")),
        ("echo", Some("nope"), "unexpected", None),
    ];
    for (tool, expect, kind, error_type) in cases {
        let mut config = stdio_fixture(&[]);
        config.call = Some(CallConfig {
            tool: tool.into(),
            arguments: serde_json::json!({"text": "x"})
                .as_object()
                .cloned()
                .filter(|_| tool == "echo"),
            expect: expect.map(str::to_string),
        });
        let mut prober = Prober::new(config).expect("valid");
        let report = rt.block_on(prober.round());
        let f = report.failure.clone().expect("fails");
        assert_eq!((f.phase, f.kind.name()), (Phase::Call, kind), "{tool}: {f}");
        let call = report
            .calls
            .iter()
            .find(|c| c.method == "tools/call")
            .expect("call sample");
        assert_eq!(call.error_type.as_deref(), error_type, "{tool}");
        assert_eq!(call.tool.as_deref(), Some(tool));
    }
}

#[test]
fn stopped_stdio_server_times_out_and_is_reaped() {
    if !have_python_mcp("stopped_stdio_server_times_out_and_is_reaped") {
        return;
    }
    // The shell stops itself before it becomes the server: wedged from the start.
    let marker = format!("mcpops-wedged-{}", std::process::id());
    let script = format!(
        "kill -STOP $$; exec python3 {} --name {marker}",
        fixture().display()
    );
    let mut config = ProbeConfig::from_command(vec!["sh".into(), "-c".into(), script]);
    config.timeout = Some(Duration::from_secs(1));
    let mut prober = Prober::new(config).expect("valid");
    let rt = runtime();
    let t = Instant::now();
    let report = rt.block_on(prober.round());
    assert!(t.elapsed() < secs(4.0), "round took {:?}", t.elapsed());
    let f = report.failure.expect("fails");
    assert_eq!(
        (f.phase, f.kind.clone()),
        (Phase::Discover, FailureKind::Timeout),
        "{f}"
    );
    // Killed and reaped: no process of ours carries the marker.
    let alive: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker) && !c.contains("kill -STOP"))
        .collect();
    assert!(alive.is_empty(), "left running: {alive:?}");
}

#[test]
fn hostile_stdio_servers() {
    let rt = runtime();
    let sh =
        |script: &str| ProbeConfig::from_command(vec!["sh".into(), "-c".into(), script.into()]);

    // Exits at once with code 3: exited(3) and its stderr tail.
    let dir = tempfile::tempdir().expect("tempdir");
    let (shared, _tx) = shared(dir.path());
    let mut prober = Prober::new(sh("echo 'fatal: no config file' >&2; exit 3")).expect("valid");
    let report = rt.block_on(prober.round());
    let f = report.failure.clone().expect("fails");
    assert_eq!(f.kind, FailureKind::Exited { code: "3".into() }, "{f}");
    assert!(f.detail.contains("fatal: no config file"), "{f}");
    rt.block_on(prober.record(&report, &shared))
        .expect("recorded");
    let status = &shared.targets.all()[0];
    assert_eq!(status.health, TargetHealth::Down);
    assert!(
        status.last_error.starts_with("exited(3)"),
        "{}",
        status.last_error
    );
    assert!(
        status.last_error.contains("fatal: no config file"),
        "{}",
        status.last_error
    );
    let failure = query_now(&shared, "mcp_probe_failure");
    assert!(
        failure
            .iter()
            .any(|(l, _)| l.contains("exit_code=3") && l.contains("kind=exited")),
        "{failure:?}"
    );
    let success = query_now(&shared, r#"mcp_probe_success{phase="tools_list"}"#);
    assert_eq!(success[0].1, 0.0, "an unreached phase did not succeed");

    // Garbage on stdout: invalid_frame, at once rather than at the timeout.
    let mut config = sh("echo 'Server listening on stdio'; sleep 30");
    config.timeout = Some(Duration::from_secs(5));
    let t = Instant::now();
    let report = rt.block_on(Prober::new(config).expect("valid").round());
    let f = report.failure.expect("fails");
    assert_eq!(f.kind, FailureKind::InvalidFrame, "{f}");
    assert!(f.detail.contains("Server listening"), "{f}");
    assert!(t.elapsed() < secs(3.0), "took {:?}", t.elapsed());

    // One frame past the limit (no newline ever comes).
    let mut config = sh("head -c 300000 /dev/zero | tr '\\0' x; sleep 30");
    config.max_frame_bytes = Some(64 * 1024);
    config.timeout = Some(Duration::from_secs(5));
    let report = rt.block_on(Prober::new(config).expect("valid").round());
    let f = report.failure.expect("fails");
    assert_eq!(f.kind, FailureKind::InvalidFrame, "{f}");
    assert!(f.detail.contains("longer than 65536 bytes"), "{f}");

    // Never answers.
    let mut config = sh("sleep 30");
    config.timeout = Some(Duration::from_millis(800));
    let report = rt.block_on(Prober::new(config).expect("valid").round());
    let f = report.failure.expect("fails");
    assert_eq!((f.phase, f.kind), (Phase::Discover, FailureKind::Timeout));

    // A command that does not exist.
    let config = ProbeConfig::from_command(vec!["/nonexistent/mcp-server".into()]);
    let report = rt.block_on(Prober::new(config).expect("valid").round());
    let f = report.failure.expect("fails");
    assert_eq!((f.phase, f.kind), (Phase::Connect, FailureKind::Down));
}

#[test]
fn closed_port_is_down_and_401_is_auth_required() {
    let rt = runtime();
    let closed = free_port();
    let mut prober = Prober::new(ProbeConfig::from_url(&format!(
        "http://127.0.0.1:{closed}/mcp"
    )))
    .expect("valid");
    let f = rt.block_on(prober.round()).failure.expect("fails");
    assert_eq!(
        (f.phase, f.kind.clone()),
        (Phase::Connect, FailureKind::Down),
        "{f}"
    );

    // A server that refuses every request: with and without a challenge.
    for challenge in [true, false] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_flag = stop.clone();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen_by = seen.clone();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop_flag.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline
            {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = vec![0u8; 65536];
                        let n = conn.read(&mut buf).unwrap_or(0);
                        if let Ok(mut s) = seen_by.lock() {
                            s.push(String::from_utf8_lossy(&buf[..n]).to_string());
                        }
                        let header = if challenge {
                            "WWW-Authenticate: Bearer realm=\"mcp\"\r\n"
                        } else {
                            ""
                        };
                        let _ = write!(
                            conn,
                            "HTTP/1.1 401 Unauthorized\r\n{header}Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nUnauthorized"
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let mut config = ProbeConfig::from_url(&format!("http://127.0.0.1:{port}/mcp"));
        config
            .headers
            .insert("X-Probe-Token".into(), "wrong".into());
        let report = rt.block_on(Prober::new(config).expect("valid").round());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = server.join();
        let f = report.failure.expect("fails");
        assert_eq!(
            f.kind,
            FailureKind::AuthRequired,
            "challenge {challenge}: {f}"
        );
        let requests = seen.lock().map(|s| s.join("\n")).unwrap_or_default();
        assert!(
            requests
                .to_ascii_lowercase()
                .contains("x-probe-token: wrong"),
            "configured headers are sent: {requests}"
        );
    }
}

#[test]
fn server_everything_is_legacy_over_stdio_and_http() {
    if !have_everything("server_everything_is_legacy_over_stdio_and_http") {
        return;
    }
    let rt = runtime();
    let long_call = || {
        Some(CallConfig {
            tool: "trigger-long-running-operation".into(),
            arguments: serde_json::json!({"duration": 2, "steps": 2})
                .as_object()
                .cloned(),
            expect: Some("Long running operation completed".into()),
        })
    };
    let mut stdio =
        ProbeConfig::from_command(vec![everything().display().to_string(), "stdio".into()]);
    stdio.call = long_call();
    let mut prober = Prober::new(stdio).expect("valid");
    // A legacy round that succeeded and timed the 2 s operation.
    let legacy_with_long_call = |report: &RoundReport, transport: &str| {
        assert!(
            report.failure.is_none(),
            "{transport}: {:?}",
            report.failure
        );
        assert_eq!(
            report.era,
            Some(Era::Legacy),
            "{transport}: {:?}",
            report.protocol_version
        );
        eprintln!(
            "server-everything {transport}: version {:?}, phases {:?}",
            report.protocol_version, report.phases
        );
        assert!(report.seconds(Phase::Initialize).is_some(), "{transport}");
        let call = report.seconds(Phase::Call).expect("call measured");
        assert!(
            (1.9..3.5).contains(&call),
            "{transport}: a 2 s operation measured {call} s"
        );
    };
    let report = rt.block_on(prober.round());
    legacy_with_long_call(&report, "stdio");
    // Remembered: the next round initializes directly.
    let again = rt.block_on(prober.round());
    assert!(again.failure.is_none(), "{:?}", again.failure);
    assert_eq!(again.calls[0].method, "initialize");

    let port = free_port();
    let _server = everything_http(port);
    let mut http = ProbeConfig::from_url(&format!("http://127.0.0.1:{port}/mcp"));
    http.call = long_call();
    let report = rt.block_on(Prober::new(http).expect("valid").round());
    legacy_with_long_call(&report, "http");
    assert!(
        report
            .tools
            .expect("tools")
            .names
            .iter()
            .any(|n| n == "echo")
    );
}

#[test]
fn run_loop_probes_every_interval_and_stops_on_shutdown() {
    if !have_python_mcp("run_loop_probes_every_interval_and_stops_on_shutdown") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (shared, tx) = shared(dir.path());
    let mut config = stdio_fixture(&[]);
    config.name = Some("looped".into());
    config.interval = Some(Duration::from_millis(300));
    let rt = runtime();
    let task = rt.spawn(mcpops::watch::probe::run(
        config,
        Duration::from_secs(15),
        shared.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared
        .health
        .get("mcpops_watch_probes_total", &[])
        .unwrap_or(0.0)
        < 2.0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    tx.send(true).expect("signal shutdown");
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await })
        .expect("the loop returns after shutdown")
        .expect("no panic");
    let rounds = query_now(&shared, r#"count(mcp_probe_up{instance="looped"}[10m])"#);
    assert!(rounds[0].1 >= 2.0, "{rounds:?}");
}
