//! Carrying actions out for real: `exec` with real processes (hostile label
//! values, timeouts, process groups, bounded output, a clean environment),
//! `webhook` against HTTP servers the tests start (retries, 4xx, hangs), the
//! payload against Debian's `prometheus-alertmanager` (its alerts API and its
//! own webhook payload, the golden file `tests/fixtures/alertmanager/`), and
//! the journal (crash records, torn and damaged lines, approvals, the lock).

use crate::common::{KillOnDrop, fixtures, free_port, http, wait_for};
use mcpops::remediate::alertmanager::{
    PostableAlert, Status, WebhookAlert, WebhookMessage, fingerprint, post_alerts,
};
use mcpops::remediate::decide::{ActionEvent, EventKind};
use mcpops::remediate::exec::{self, ExecOptions};
use mcpops::remediate::journal::{self, ActionResult, Intent, Journal, JournalError, Outcome};
use mcpops::remediate::webhook::{self, RetryOptions};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An executable shell script `name` in `dir` with `body`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

fn opts(timeout_ms: u64, grace_ms: u64) -> ExecOptions {
    ExecOptions {
        timeout: Duration::from_millis(timeout_ms),
        grace: Duration::from_millis(grace_ms),
        output_limit: 64 * 1024,
        env: Vec::new(),
    }
}

fn event(server: &str) -> ActionEvent {
    ActionEvent {
        time: 1_700_000_040_000,
        policy: "restart-down".into(),
        kind: EventKind::Run,
        trigger: "McpDown".into(),
        labels: vec![
            ("server".into(), server.into()),
            ("severity".into(), "page".into()),
            ("mcp.method-name".into(), "tools/call".into()),
        ],
        action: "exec \"restart\"".into(),
        episode: Some(0),
        value: 0.25,
    }
}

/// Whether the process `pid` is gone (or a zombie, dead but not yet reaped).
fn dead(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn hostile_label_values_reach_the_script_as_one_argument_each_and_nothing_else_happens() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("x");
    fs::create_dir(&victim).unwrap();
    let pwned = dir.path().join("pwned");
    let out = dir.path().join("args");
    let s = script(
        dir.path(),
        "restart.sh",
        &format!(
            "printf '%s\\0' \"$#\" \"$@\" > '{}'\nenv > '{}.env'",
            out.display(),
            out.display()
        ),
    );
    let values = [
        format!("a b;rm -rf {}", victim.display()),
        format!("$(touch {})", pwned.display()),
        format!("`touch {}`", pwned.display()),
        "'\"; exit 1 #\n--now".to_string(),
    ];
    // Through the language's own template, as `watch` fills it.
    let rules = format!(
        "maintenance M {{\n  when x > 1\n  window \"daily 02:00-04:00 UTC\"\n  do exec \"{s} --server {{{{server}}}} --also={{{{server}}}}\"\n}}\n"
    );
    let file = mcpops::dsl::parse_str(&rules, "t.rules").expect("parses");
    let mcpops::dsl::ast::Item::Maintenance(m) = &file.items[0] else {
        panic!("a maintenance block")
    };
    let rt = rt();
    for value in &values {
        let lookup = |name: &str| (name == "server").then(|| value.clone());
        let mcpops::remediate::action::Prepared::Exec(argv) =
            mcpops::remediate::action::prepare(&m.action, &lookup).expect("prepared")
        else {
            panic!("an exec")
        };
        let mut o = opts(10_000, 500);
        o.env = exec::alert_env(&event(value), "0123456789abcdef");
        let r = rt.block_on(exec::run(&argv, &o));
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        let got = fs::read(&out).unwrap();
        let args: Vec<&[u8]> = got.split(|&b| b == 0).collect();
        let also = format!("--also={value}");
        let want = [
            "3".as_bytes(),
            b"--server",
            value.as_bytes(),
            also.as_bytes(),
        ];
        assert_eq!(&args[..4], &want[..], "{value:?}");
        let env = fs::read_to_string(format!("{}.env", out.display())).unwrap();
        // `env` prints a value with a newline over two lines: compare the start.
        let first_line = value.lines().next().unwrap();
        assert!(
            env.contains(&format!("MCPOPS_ALERT_LABEL_SERVER={first_line}")),
            "{env}"
        );
    }
    assert!(victim.is_dir(), "the rm in a label value ran");
    assert!(
        !pwned.exists(),
        "the command substitution in a label value ran"
    );
}

#[test]
fn the_environment_is_clean_and_carries_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "env.sh", "env");
    let mut o = opts(10_000, 500);
    o.env = exec::alert_env(&event("mcp-01"), "0123456789abcdef");
    let r = rt().block_on(exec::run(&[s], &o));
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let mut names: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "MCPOPS_ACTION_ID",
            "MCPOPS_ALERT_FINGERPRINT",
            "MCPOPS_ALERT_LABEL_MCP_METHOD_NAME",
            "MCPOPS_ALERT_LABEL_SERVER",
            "MCPOPS_ALERT_LABEL_SEVERITY",
            "MCPOPS_ALERT_NAME",
            "MCPOPS_ALERT_SEVERITY",
            "MCPOPS_ALERT_VALUE",
            "MCPOPS_POLICY",
            "PATH",
            "PWD", // the shell sets it itself
        ],
        "{}",
        r.stdout
    );
    let e = event("mcp-01");
    for want in [
        "MCPOPS_ALERT_NAME=McpDown".to_string(),
        "MCPOPS_ALERT_SEVERITY=page".into(),
        "MCPOPS_ALERT_VALUE=0.25".into(),
        "MCPOPS_ALERT_FINGERPRINT=0123456789abcdef".into(),
        format!("MCPOPS_ACTION_ID={}", e.id()),
        "MCPOPS_POLICY=restart-down".into(),
        "MCPOPS_ALERT_LABEL_MCP_METHOD_NAME=tools/call".into(),
        format!("PATH={}", exec::MINIMAL_PATH),
    ] {
        assert!(r.stdout.lines().any(|l| l == want), "{want}: {}", r.stdout);
    }
}

#[test]
fn exit_codes_and_spawn_failures() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let s = script(dir.path(), "fail.sh", "echo oops >&2; exit 3");
    let r = rt.block_on(exec::run(&[s], &opts(10_000, 500)));
    assert_eq!(
        (r.outcome, r.exit_code, r.detail.as_str(), r.stderr.as_str()),
        (Outcome::Failed, Some(3), "exit code 3", "oops\n")
    );

    let missing = dir.path().join("no-such-binary");
    let r = rt.block_on(exec::run(
        &[missing.display().to_string()],
        &opts(10_000, 500),
    ));
    assert_eq!(r.outcome, Outcome::Spawn, "{r:?}");
    assert!(
        r.detail.contains("No such file or directory"),
        "{}",
        r.detail
    );

    let not_executable = dir.path().join("plain.txt");
    fs::write(&not_executable, "echo hi\n").unwrap();
    let r = rt.block_on(exec::run(
        &[not_executable.display().to_string()],
        &opts(10_000, 500),
    ));
    assert_eq!(r.outcome, Outcome::Spawn, "{r:?}");
    assert!(r.detail.contains("Permission denied"), "{}", r.detail);

    // A name without a slash is looked up in the minimal PATH only.
    let r = rt.block_on(exec::run(&["true".to_string()], &opts(10_000, 500)));
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let r = rt.block_on(exec::run(&[], &opts(10_000, 500)));
    assert_eq!(r.outcome, Outcome::Spawn, "{r:?}");
}

#[test]
fn a_script_that_ignores_sigterm_is_killed_after_the_grace_and_its_group_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The script ignores SIGTERM; its background child does too, in the group.
    let s = script(
        dir.path(),
        "stubborn.sh",
        &format!(
            "trap '' TERM\n(trap '' TERM; while :; do sleep 0.05; done) &\necho $$ $! > '{}'\necho started\nwhile :; do sleep 0.05; done",
            pids.display()
        ),
    );
    let started = Instant::now();
    let r = rt().block_on(exec::run(&[s], &opts(700, 600)));
    let took = started.elapsed();
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(r.detail.contains("SIGKILL"), "{}", r.detail);
    assert!(r.stdout.starts_with("started"), "{r:?}");
    assert!(
        took >= Duration::from_millis(1_300) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    let pids: Vec<i32> = fs::read_to_string(&pids)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    wait_for("the group to die", Duration::from_secs(5), || {
        pids.iter().all(|&p| dead(p))
    });
}

#[test]
fn a_script_that_stops_on_sigterm_ends_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let s = script(
        dir.path(),
        "slow.sh",
        &format!("sleep 300 &\necho $! > '{}'\nwait", pid_file.display()),
    );
    let started = Instant::now();
    let r = rt().block_on(exec::run(&[s], &opts(500, 5_000)));
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(r.detail.contains("SIGTERM"), "{}", r.detail);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for(
        "the background sleep to die",
        Duration::from_secs(5),
        || dead(pid),
    );
}

#[test]
fn output_is_bounded_and_a_leftover_process_does_not_hold_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "loud.sh",
        "head -c 100000 /dev/zero | tr '\\0' a\nhead -c 3000 /dev/zero | tr '\\0' b >&2",
    );
    let mut o = opts(10_000, 500);
    o.output_limit = 1000;
    let r = rt().block_on(exec::run(&[s], &o));
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(
        r.stdout,
        format!("{}\n[99000 more bytes not kept]", "a".repeat(1000))
    );
    assert_eq!(
        r.stderr,
        format!("{}\n[2000 more bytes not kept]", "b".repeat(1000))
    );

    // A script that leaves a process behind holding its stdout ends when
    // the script ends (plus a short drain), not when the process does.
    let pid_file = dir.path().join("pid");
    let s = script(
        dir.path(),
        "leaves.sh",
        &format!("sleep 30 &\necho $! > '{}'\necho done", pid_file.display()),
    );
    let started = Instant::now();
    let r = rt().block_on(exec::run(&[s], &opts(20_000, 500)));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the sleep this test started (by its pid).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(r.stdout.starts_with("done\n"), "{:?}", r.stdout);
}

/// A local HTTP server answering each request with the next of `answers`
/// (status, delay), the last repeated; it records each request's
/// idempotency key and body.
struct Sink {
    port: u16,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

fn start_sink(rt: &tokio::runtime::Runtime, answers: Vec<(u16, Duration)>) -> Sink {
    use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let log = seen.clone();
    let answers = Arc::new(answers);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            let answers = answers.clone();
            async move {
                let key = headers
                    .get(webhook::IDEMPOTENCY_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push((key, body));
                    l.len()
                };
                let (status, delay) = answers[(n - 1).min(answers.len() - 1)];
                tokio::time::sleep(delay).await;
                (StatusCode::from_u16(status).unwrap(), "answer")
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move { axum::serve(listener, app).await });
    Sink { port, seen }
}

fn message() -> (WebhookMessage, String) {
    let labels = vec![
        ("server".to_string(), "mcp-01".to_string()),
        ("severity".to_string(), "page".to_string()),
    ];
    let alert = PostableAlert::new(
        "McpDown",
        &labels,
        vec![("summary".into(), "mcp-01 is down".into())],
        1_700_000_000_000,
        1_700_000_600_000,
        String::new(),
    );
    let key = webhook::idempotency_key(&fingerprint(&alert.labels), 1_700_000_000_000);
    let m = WebhookMessage::new(
        "restart-down",
        &["alertname"],
        vec![WebhookAlert::from_postable(&alert, 1_700_000_100_000)],
        "",
    );
    (m, key)
}

fn quick_retries() -> RetryOptions {
    RetryOptions {
        attempts: 3,
        attempt_timeout: Duration::from_millis(400),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        total: Duration::from_secs(10),
    }
}

#[test]
fn a_webhook_is_retried_after_a_5xx_with_the_same_key() {
    let rt = rt();
    let sink = start_sink(
        &rt,
        vec![
            (500, Duration::ZERO),
            (429, Duration::ZERO),
            (200, Duration::ZERO),
        ],
    );
    let (m, key) = message();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/hook", sink.port);
    let r = rt.block_on(webhook::send(&client, &url, &m, &key, &quick_retries()));
    assert_eq!((r.outcome, r.status), (Outcome::Ok, Some(200)), "{r:?}");
    assert!(r.detail.contains("3 attempts"), "{}", r.detail);
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(k, _)| *k == key), "{seen:?}");
    assert_eq!(seen[0].1["version"], "4");
    assert_eq!(seen[0].1["alerts"][0]["labels"]["server"], "mcp-01");
    assert_eq!(seen[0].1, seen[2].1, "every attempt sends the same payload");
}

#[test]
fn a_webhook_4xx_is_not_retried() {
    let rt = rt();
    let sink = start_sink(&rt, vec![(400, Duration::ZERO), (200, Duration::ZERO)]);
    let (m, key) = message();
    let url = format!("http://127.0.0.1:{}/hook", sink.port);
    let r = rt.block_on(webhook::send(
        &reqwest::Client::new(),
        &url,
        &m,
        &key,
        &quick_retries(),
    ));
    assert_eq!((r.outcome, r.status), (Outcome::Failed, Some(400)), "{r:?}");
    assert_eq!(r.detail, "HTTP 400 after 1 attempt");
    assert_eq!(sink.seen.lock().unwrap().len(), 1);
}

#[test]
fn a_hanging_webhook_times_out_after_the_retries() {
    let rt = rt();
    let sink = start_sink(&rt, vec![(200, Duration::from_secs(30))]);
    let (m, key) = message();
    let url = format!("http://127.0.0.1:{}/hook", sink.port);
    let started = Instant::now();
    let r = rt.block_on(webhook::send(
        &reqwest::Client::new(),
        &url,
        &m,
        &key,
        &quick_retries(),
    ));
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(r.detail.contains("3 attempts"), "{}", r.detail);
    assert_eq!(sink.seen.lock().unwrap().len(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Nothing listening: no answer, retried, failed.
    let port = free_port();
    let r = rt.block_on(webhook::send(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/hook"),
        &m,
        &key,
        &quick_retries(),
    ));
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert!(
        r.detail.starts_with("no answer after 3 attempts"),
        "{}",
        r.detail
    );
}
