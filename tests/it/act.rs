//! Carrying actions out for real: `exec` with real processes (hostile label
//! values, timeouts, process groups, bounded output, a clean environment),
//! `webhook` against HTTP servers the tests start (retries, 4xx, hangs), the
//! payload against Debian's `prometheus-alertmanager` (its alerts API and its
//! own webhook payload, the golden file `tests/fixtures/alertmanager/`), and
//! the journal (crash records, torn and damaged lines, approvals, the lock).

use crate::common::{fixtures, free_port, http, start_alertmanager, wait_for};
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
        mode: mcpops::dsl::ast::Mode::Auto,
        approved_by: None,
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

/// The process ids a script wrote to `file`.
fn pids_in(file: &Path) -> Vec<i32> {
    fs::read_to_string(file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
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
    let pids = pids_in(&pids);
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
    let pid = pids_in(&pid_file)[0];
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
    let pid = pids_in(&pid_file)[0];
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

/// Whether `ours` has the same keys as `theirs`, recursively (objects'
/// keys, arrays' elements pairwise, scalars' JSON types); the first
/// difference, with its path.
fn same_keys(ours: &Value, theirs: &Value, at: &str) -> Result<(), String> {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            let (mut sa, mut sb) = (ka.clone(), kb.clone());
            sa.sort();
            sb.sort();
            if sa != sb {
                return Err(format!("{at}: keys {sa:?}, Alertmanager's {sb:?}"));
            }
            for k in ka {
                same_keys(&a[k], &b[k], &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!(
                    "{at}: {} elements, Alertmanager's {}",
                    a.len(),
                    b.len()
                ));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_keys(x, y, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        (a, b) => Err(format!("{at}: {a} where Alertmanager has {b}")),
    }
}

/// The alert both the golden test and the fixture test describe.
fn golden_alert(starts_ms: i64, ends_ms: i64) -> PostableAlert {
    PostableAlert::new(
        "McpServerDown",
        &vec![
            ("server".to_string(), "mcp-01".to_string()),
            ("severity".to_string(), "page".to_string()),
            ("job".to_string(), "mcp".to_string()),
        ],
        vec![
            ("summary".into(), "mcp-01 is down".into()),
            ("runbook".into(), "https://runbooks.example/mcp-down".into()),
        ],
        starts_ms,
        ends_ms,
        "http://127.0.0.1:9464/graph".into(),
    )
}

/// mcpops's payload for [`golden_alert`], as the receiver `sink` of a route
/// grouped by `alertname` gets it.
fn our_payload(alert: &PostableAlert, now_ms: i64) -> Value {
    let m = WebhookMessage::new(
        "sink",
        &["alertname"],
        vec![WebhookAlert::from_postable(alert, now_ms)],
        "http://alertmanager.example:9093",
    );
    serde_json::to_value(&m).unwrap()
}

/// Times and the external URL made constant, so the saved payload does not
/// change from run to run.
fn normalise(mut v: Value) -> Value {
    v["externalURL"] = "http://alertmanager.example:9093".into();
    for a in v["alerts"].as_array_mut().into_iter().flatten() {
        a["startsAt"] = "2026-11-20T14:00:00.000Z".into();
    }
    v
}

const GOLDEN: &str = "alertmanager/webhook_v4.json";

#[test]
fn our_webhook_payload_has_the_keys_of_alertmanagers_saved_one() {
    let saved: Value =
        serde_json::from_str(&fs::read_to_string(fixtures().join(GOLDEN)).unwrap()).unwrap();
    let alert = golden_alert(1_700_000_000_000, 1_700_000_600_000);
    let ours = our_payload(&alert, 1_700_000_100_000);
    same_keys(&ours, &saved, "$").unwrap();
    // The values that do not depend on the run agree too.
    for key in [
        "version",
        "status",
        "receiver",
        "groupKey",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "truncatedAlerts",
    ] {
        assert_eq!(ours[key], saved[key], "{key}");
    }
    for key in [
        "status",
        "labels",
        "annotations",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ] {
        assert_eq!(
            ours["alerts"][0][key], saved["alerts"][0][key],
            "alerts[0].{key}"
        );
    }
}

#[test]
fn alertmanager_takes_our_alerts_and_its_webhook_payload_is_ours_key_for_key() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let sink = start_sink(&rt, vec![(200, Duration::ZERO)]);
    let hook = format!("http://127.0.0.1:{}/hook", sink.port);
    let Some((_am, am_port)) = start_alertmanager(dir.path(), &hook) else {
        return;
    };
    let now = mcpops::time::now_ms();
    let alert = golden_alert(now - 60_000, now + 600_000);
    let client = reqwest::Client::new();
    rt.block_on(post_alerts(
        &client,
        &format!("http://127.0.0.1:{am_port}"),
        std::slice::from_ref(&alert),
    ))
    .expect("alertmanager takes the alert");

    // Its alerts API shows the alert with our labels and our fingerprint.
    let (status, _, body) = http(am_port, "GET", "/api/v2/alerts", None);
    assert_eq!(status, 200, "{body}");
    let alerts: Value = serde_json::from_str(&body).unwrap();
    let shown = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "McpServerDown")
        .unwrap_or_else(|| panic!("our alert in {body}"));
    for (k, v) in &alert.labels {
        assert_eq!(shown["labels"][k], *v, "label {k}");
    }
    assert_eq!(
        shown["labels"].as_object().unwrap().len(),
        alert.labels.len()
    );
    assert_eq!(shown["annotations"]["summary"], "mcp-01 is down");
    assert_eq!(shown["fingerprint"], fingerprint(&alert.labels));
    assert_eq!(shown["status"]["state"], "active");

    // Its webhook for the alert: the golden payload.
    wait_for("alertmanager's webhook", Duration::from_secs(30), || {
        !sink.seen.lock().unwrap().is_empty()
    });
    let theirs = sink.seen.lock().unwrap()[0].1.clone();
    let ours = our_payload(&alert, now);
    same_keys(&ours, &theirs, "$").unwrap();
    assert_eq!(
        ours["alerts"][0]["fingerprint"],
        theirs["alerts"][0]["fingerprint"]
    );
    assert_eq!(ours["groupKey"], theirs["groupKey"]);
    assert_eq!(ours["alerts"][0]["status"], theirs["alerts"][0]["status"]);
    assert_eq!(ours["alerts"][0]["endsAt"], theirs["alerts"][0]["endsAt"]);
    assert_eq!(ours["commonLabels"], theirs["commonLabels"]);
    assert_eq!(ours["groupLabels"], theirs["groupLabels"]);
    assert_eq!(ours["alerts"][0]["labels"], theirs["alerts"][0]["labels"]);
    let theirs = normalise(theirs);
    if std::env::var_os("MCPOPS_BLESS").is_some() {
        let path = fixtures().join(GOLDEN);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_string_pretty(&theirs).unwrap() + "\n").unwrap();
    }
    let saved: Value =
        serde_json::from_str(&fs::read_to_string(fixtures().join(GOLDEN)).unwrap()).unwrap();
    assert_eq!(
        theirs, saved,
        "Alertmanager's payload changed: MCPOPS_BLESS=1 saves it anew"
    );

    // Resolved (endsAt now): Alertmanager sends it resolved, and so do we.
    let resolved = golden_alert(now - 60_000, mcpops::time::now_ms());
    rt.block_on(post_alerts(
        &client,
        &format!("http://127.0.0.1:{am_port}"),
        std::slice::from_ref(&resolved),
    ))
    .unwrap();
    wait_for("the resolved webhook", Duration::from_secs(30), || {
        sink.seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b["status"] == "resolved")
    });
    let theirs = sink
        .seen
        .lock()
        .unwrap()
        .iter()
        .find(|(_, b)| b["status"] == "resolved")
        .unwrap()
        .1
        .clone();
    let ours = our_payload(&resolved, mcpops::time::now_ms());
    same_keys(&ours, &theirs, "$").unwrap();
    assert_eq!(ours["status"], "resolved");
    assert_eq!(ours["alerts"][0]["status"], theirs["alerts"][0]["status"]);
    assert_eq!(
        WebhookAlert::from_postable(&resolved, mcpops::time::now_ms()).status,
        Status::Resolved
    );
}

fn decision(t: i64, kind: EventKind, server: &str) -> ActionEvent {
    ActionEvent {
        time: t,
        kind,
        ..event(server)
    }
}

fn ok_result() -> ActionResult {
    ActionResult {
        outcome: Outcome::Ok,
        exit_code: Some(0),
        status: None,
        duration_ms: 120,
        stdout: "restarted\n".into(),
        stderr: String::new(),
        detail: "exit code 0".into(),
    }
}

/// Journals `e`'s intent to run, at wall time `wall_ms`.
fn intend(j: &Journal, e: &ActionEvent, wall_ms: i64) {
    j.intent(&Intent {
        id: e.id(),
        event: e.clone(),
        wall_ms,
    })
    .unwrap();
}

/// Journals a run as watch does: its decision, then its intent, then its
/// result.
fn journal_run(j: &Journal, e: &ActionEvent, wall_ms: i64, result: &ActionResult) {
    j.record(e).unwrap();
    intend(j, e, wall_ms);
    j.result(&e.id(), result).unwrap();
}

fn journal_lines(store: &Path) -> Vec<Value> {
    fs::read_to_string(journal::path(store))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_journal_reads_back_and_an_intent_without_result_becomes_unknown_once() {
    let store = tempfile::tempdir().unwrap();
    let suppressed = decision(60_000, EventKind::Cooldown, "a");
    let ran = decision(120_000, EventKind::Run, "a");
    let crashed = decision(180_000, EventKind::Run, "b");
    {
        let j = Journal::open(store.path()).unwrap();
        j.record(&suppressed).unwrap();
        journal_run(&j, &ran, 1, &ok_result());
        intend(&j, &crashed, 2);
        assert_eq!(j.past(), [suppressed.clone(), ran.clone(), crashed.clone()]);
        // A reader meanwhile: the running action has no result yet.
        let log = journal::read(store.path()).unwrap();
        assert_eq!(log.entries.len(), 3);
        assert_eq!(log.get(&crashed.id()).unwrap().result, None);
        assert!(log.get(&crashed.id()).unwrap().intent);
        assert!(!log.get(&suppressed.id()).unwrap().intent);
    } // watch stops here without a result for `crashed`

    let j = Journal::open(store.path()).unwrap();
    assert_eq!(j.past(), [suppressed.clone(), ran.clone(), crashed.clone()]);
    drop(j);
    let log = journal::read(store.path()).unwrap();
    assert_eq!(log.get(&ran.id()).unwrap().result, Some(ok_result()));
    let unknown = log.get(&crashed.id()).unwrap().result.clone().unwrap();
    assert_eq!(unknown.outcome, Outcome::Unknown);
    // A second restart adds nothing.
    let before = journal_lines(store.path()).len();
    drop(Journal::open(store.path()).unwrap());
    assert_eq!(journal_lines(store.path()).len(), before);
    let kinds: Vec<String> = journal_lines(store.path())
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "decision", "decision", "intent", "result", "intent", "result"
        ]
    );
}

#[test]
fn a_torn_last_line_is_dropped_and_a_damaged_one_before_it_named() {
    let store = tempfile::tempdir().unwrap();
    let first = decision(60_000, EventKind::Cooldown, "a");
    let second = decision(120_000, EventKind::Cooldown, "b");
    drop(Journal::open(store.path()).unwrap());
    {
        let j = Journal::open(store.path()).unwrap();
        j.record(&first).unwrap();
    }
    let path = journal::path(store.path());
    let whole = fs::read(&path).unwrap();
    // A crash mid-write: half a record, no newline.
    let mut torn = whole.clone();
    torn.extend_from_slice(br#"{"record":"intent","id":"00"#);
    fs::write(&path, &torn).unwrap();
    let log = journal::read(store.path()).unwrap();
    assert!(log.torn_tail);
    assert_eq!(log.entries.len(), 1);
    {
        let j = Journal::open(store.path()).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            whole,
            "opening cuts the torn line off"
        );
        j.record(&second).unwrap();
    }
    let log = journal::read(store.path()).unwrap();
    assert!(!log.torn_tail);
    assert_eq!(log.entries.len(), 2);

    // A damaged line with a whole line after it is not a crash's tear.
    let mut damaged = whole.clone();
    damaged.extend_from_slice(b"{\"record\":\"decision\",\"id\":\0garbage\n");
    damaged.extend_from_slice(&fs::read(&path).unwrap()[whole.len()..]);
    fs::write(&path, &damaged).unwrap();
    for e in [
        Journal::open(store.path()).err().unwrap(),
        journal::read(store.path()).unwrap_err(),
    ] {
        match &e {
            JournalError::Corrupt { line, path: p, .. } => {
                assert_eq!(*line, 2);
                assert!(p.ends_with("journal/journal.jsonl"), "{p}");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("journal.jsonl:2: "), "{e}");
    }
}

#[test]
fn one_watch_writes_the_journal_and_an_unwritable_one_is_an_error() {
    let store = tempfile::tempdir().unwrap();
    let j = Journal::open(store.path()).unwrap();
    match Journal::open(store.path()) {
        Err(JournalError::Locked(m)) => assert!(m.contains("another `mcpops watch`"), "{m}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a second writer opened the journal"),
    }
    drop(j);
    drop(Journal::open(store.path()).unwrap());

    // A journal that cannot be a file, and a journal directory that is a file.
    let store = tempfile::tempdir().unwrap();
    fs::create_dir_all(journal::path(store.path())).unwrap();
    assert!(matches!(
        Journal::open(store.path()),
        Err(JournalError::Io { .. })
    ));
    let store = tempfile::tempdir().unwrap();
    fs::write(store.path().join(journal::JOURNAL_DIR), "").unwrap();
    assert!(Journal::open(store.path()).is_err());
}

#[test]
fn approvals_come_from_another_process_once_and_only_for_decisions_awaiting_one() {
    let store = tempfile::tempdir().unwrap();
    let waiting = decision(60_000, EventKind::AwaitingApproval, "a");
    let ran = decision(60_000, EventKind::Run, "b");
    let j = Journal::open(store.path()).unwrap();
    j.record(&waiting).unwrap();
    j.record(&ran).unwrap();
    assert!(j.approvals().unwrap().is_empty());

    let given = journal::approve(store.path(), &waiting.id(), "alice").unwrap();
    assert_eq!(given.by, "alice");
    let seen = j.approvals().unwrap();
    assert_eq!(seen.get(&waiting.id()), Some(&given));
    // Records after the approval, and a re-read, change nothing.
    j.record(&decision(120_000, EventKind::Cooldown, "c"))
        .unwrap();
    assert_eq!(j.approvals().unwrap(), seen);

    match journal::approve(store.path(), &waiting.id(), "bob") {
        Err(e @ JournalError::AlreadyApproved { .. }) => {
            assert!(e.to_string().contains("already approved by alice"), "{e}");
            assert!(e.is_user_error());
        }
        other => panic!("{other:?}"),
    }
    match journal::approve(store.path(), &ran.id(), "bob") {
        Err(e @ JournalError::NotAwaiting { .. }) => {
            assert!(e.to_string().contains("is `run`"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match journal::approve(store.path(), "0000000000000000", "bob") {
        Err(e @ JournalError::UnknownId { .. }) => {
            assert!(
                e.to_string().contains("no decision 0000000000000000"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(j);
    // After a restart the approval is still there.
    let j = Journal::open(store.path()).unwrap();
    assert_eq!(j.approvals().unwrap().get(&waiting.id()), Some(&given));
    // A store with no journal has nothing to approve.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        journal::approve(empty.path(), &waiting.id(), "bob"),
        Err(JournalError::UnknownId { .. })
    ));
}

/// A store whose journal holds a decision awaiting approval, an action that
/// failed, and a suppression; their ids.
fn store_with_journal() -> (tempfile::TempDir, [String; 3]) {
    let store = tempfile::tempdir().unwrap();
    let waiting = decision(60_000, EventKind::AwaitingApproval, "a");
    let failed = decision(60_000, EventKind::Run, "b");
    let held = decision(120_000, EventKind::Cooldown, "b");
    let j = Journal::open(store.path()).unwrap();
    j.record(&waiting).unwrap();
    journal_run(
        &j,
        &failed,
        1,
        &ActionResult {
            outcome: Outcome::Failed,
            exit_code: Some(3),
            status: None,
            duration_ms: 1500,
            stdout: String::new(),
            stderr: "no such unit\n".into(),
            detail: "exit code 3".into(),
        },
    );
    j.record(&held).unwrap();
    (store, [waiting.id(), failed.id(), held.id()])
}

#[test]
fn mcpops_approve_appends_an_approval_once_and_refuses_other_ids() {
    use crate::common::{mcpops, text};
    let (store, [waiting, failed, _]) = store_with_journal();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .args(["approve", &waiting, "--store"])
        .arg(store.path())
        .env("USER", "carol")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with(&format!("approved {waiting} by carol at ")),
        "{}",
        text(&o)
    );
    let log = journal::read(store.path()).unwrap();
    assert_eq!(log.approvals[&waiting].by, "carol");

    for (id, says) in [
        (waiting.as_str(), "already approved by carol"),
        (failed.as_str(), "is `run`, not `awaiting approval`"),
        ("0123456789abcdef", "no decision 0123456789abcdef"),
    ] {
        let o = mcpops(store.path(), &["approve", id, "--by", "dave"]);
        assert_eq!(o.status.code(), Some(2), "{id}: {}", text(&o));
        assert!(text(&o).contains(says), "{id}: {}", text(&o));
    }
    // A store that is not there; a journal that cannot be read.
    let o = mcpops(
        &store.path().join("nope"),
        &["approve", &waiting, "--by", "dave"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let broken = tempfile::tempdir().unwrap();
    fs::create_dir_all(journal::path(broken.path())).unwrap();
    let o = mcpops(broken.path(), &["approve", &waiting, "--by", "dave"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn mcpops_audit_prints_the_journal_as_the_actions_table() {
    use crate::common::{mcpops, text};
    let (store, [waiting, failed, held]) = store_with_journal();
    journal::approve(store.path(), &waiting, "alice").unwrap();

    let o = mcpops(store.path(), &["audit", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&waiting, &failed, &held]);
    assert_eq!(rows[0]["event"], "awaiting approval");
    assert_eq!(rows[0]["approved_by"], "alice");
    assert_eq!(rows[0]["outcome"], Value::Null);
    assert_eq!(rows[1]["outcome"], "failed");
    assert_eq!(rows[1]["exit_code"], 3);
    assert_eq!(rows[1]["duration_s"], 1.5);
    assert_eq!(rows[1]["detail"], "exit code 3\nstderr:\nno such unit\n");
    assert_eq!(rows[1]["labels"]["server"], "b");
    assert_eq!(rows[2]["event"], "suppressed (cooldown)");

    let o = mcpops(store.path(), &["audit", "--format", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "time,policy,event,trigger,mcp.method-name,server,severity,action,id,mode,approved_by,outcome,exit_code,duration_s,detail"
    );

    let o = mcpops(store.path(), &["audit"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains(&waiting) && table.contains("approved by alice"),
        "{table}"
    );

    // --out: actions.parquet in the backtest's schema, read back by its reader.
    let out = tempfile::tempdir().unwrap();
    let o = mcpops(
        store.path(),
        &[
            "audit",
            "--format",
            "csv",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let back = mcpops::remediate::audit::read(&out.path().join("actions.parquet")).unwrap();
    let want = journal::read(store.path()).unwrap().audit_rows();
    assert_eq!(back.len(), 3);
    for (got, want) in back.iter().zip(&want) {
        assert_eq!(
            (
                &got.id,
                &got.outcome,
                got.exit_code,
                got.duration_s,
                &got.detail,
                &got.event.approved_by
            ),
            (
                &want.id,
                &want.outcome,
                want.exit_code,
                want.duration_s,
                &want.detail,
                &want.event.approved_by
            )
        );
    }
    assert_eq!(
        mcpops::remediate::audit::schema(),
        mcpops::remediate::audit::batch(&back).unwrap().schema()
    );

    // A store where watch never acted: an empty table; no store: exit 2.
    let empty = tempfile::tempdir().unwrap();
    let o = mcpops(empty.path(), &["audit", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        Value::Array(vec![])
    );
    let o = mcpops(&empty.path().join("nope"), &["audit"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
