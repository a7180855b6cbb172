//! Remediation for real, end to end, with real processes: `mcpops watch`
//! probes the Python MCP fixture server, which breaks on purpose; the alert
//! fires and reaches Alertmanager, a real restart script restarts the server,
//! the probe recovers and `verify within` passes; five servers alerting at
//! once stay under the concurrency caps and hostile label values reach the
//! script as one argument each; a binary that does not exist fails to spawn
//! and counts toward `max`; `kill -9` between an action's intent and its
//! result never runs it again. After each live run, `backtest` over the same
//! steps on the same store makes the same decisions.

use crate::common::{
    KillOnDrop, fixtures, free_port, http, mcpops, python_has, start_alertmanager,
    start_printing_port, text, wait_for, wait_watch_ready,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `mcpops watch --config FILE`, ready (at most 30 s); its stderr goes to `log`.
fn start_watch(config: &Path, port: u16, log: &Path) -> KillOnDrop {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("watch log");
    let child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .args(["watch", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start mcpops watch");
    let mut watch = KillOnDrop(child);
    let log = log.to_path_buf();
    wait_watch_ready(&mut watch.0, port, move || {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    watch
}

/// SIGTERM, then wait (at most 30 s) for a clean exit.
fn stop_watch(mut watch: KillOnDrop) {
    let pid = watch.0.id() as i32;
    // SAFETY: a plain kill(2) of a child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = watch.0.try_wait().expect("wait") {
            assert!(status.success(), "watch exited {status}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "watch did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scrape target serving `file` (tests/fixtures/file_target.py).
fn start_file_target(file: &Path) -> (KillOnDrop, u16) {
    let mut cmd = Command::new("python3");
    cmd.arg(fixtures().join("file_target.py"))
        .arg("--file")
        .arg(file);
    start_printing_port(cmd)
}

/// Kills the process whose id `pid_file` holds, if any: the server the
/// restart script started outlives the script.
struct KillPidFile(PathBuf);

impl Drop for KillPidFile {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) of the fixture server this test had started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The journal as the actions table: `mcpops audit --format json`.
fn audit(store: &Path) -> Vec<Value> {
    let out = mcpops(store, &["audit", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("audit json");
    json.as_array().cloned().unwrap_or_default()
}

fn events<'a>(rows: &'a [Value], policy: &str, event: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["policy"] == policy && r["event"] == event)
        .collect()
}

/// The alert instances watch serves at `/api/v1/alerts`.
fn live_alerts(port: u16) -> Vec<Value> {
    let (status, _, body) = http(port, "GET", "/api/v1/alerts", None);
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The value of a one-series instant query through watch's API.
fn query_value(port: u16, expr: &str) -> Option<f64> {
    let form = format!(
        "query={}",
        expr.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    let (status, _, body) = http(port, "POST", "/api/v1/query", Some(&form));
    if status != 200 {
        return None;
    }
    let json: Value = serde_json::from_str(&body).ok()?;
    json["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// What watch decided (its journal, read by `mcpops audit`) against what a
/// backtest of the same rules over the same steps on the same store decides:
/// the same decision ids (block, kind, step and labels), leaving out the
/// escalations that followed a failed run (an outcome, which only the live
/// run knows), and the same firing times.
fn assert_backtest_agrees(store: &Path, rules: &Path, from_ms: i64, to_ms: i64) {
    let rows = audit(store);
    let failed_runs: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["event"] == "run" && r["outcome"] != "ok" && r["outcome"] != "dry-run")
        .map(|r| format!("{} {} {}", r["time"], r["policy"], r["labels"]))
        .collect();
    let live: BTreeSet<String> = rows
        .iter()
        .filter(|r| {
            !(r["event"] == "escalated"
                && failed_runs.contains(&format!("{} {} {}", r["time"], r["policy"], r["labels"])))
        })
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let out = mcpops(
        store,
        &[
            "backtest",
            "--rules",
            rules.to_str().unwrap(),
            "--from",
            &from_ms.to_string(),
            "--to",
            &to_ms.to_string(),
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let bt: Value = serde_json::from_slice(&out.stdout).expect("backtest json");
    let replayed: BTreeSet<String> = bt["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        live, replayed,
        "watch's decisions and the backtest's differ\nlive: {rows:#?}\nbacktest: {:#}",
        bt["actions"]
    );
    assert!(!live.is_empty(), "nothing was decided: {rows:#?}");
}

/// The first whole second at or before `ms` (the rules below step by 1s).
fn floor_s(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

#[test]
fn a_broken_server_is_restarted_verified_and_the_backtest_agrees() {
    let test = "remediate_e2e::a_broken_server_is_restarted_verified_and_the_backtest_agrees";
    if !python_has("mcp", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, broken, pid_file, log) = (
        d.join("store"),
        d.join("broken"),
        d.join("fixture.pid"),
        d.join("fixture.log"),
    );
    let mcp_port = free_port();
    let fixture = fixtures().join("mcp_fixture.py");
    let _server = KillPidFile(pid_file.clone());
    // Started the way the restart script starts it, so that the script can
    // stop it by its pid file.
    let restart = fixtures().join("remediate/restart_fixture.sh");
    let python = python_executable();
    let out = Command::new("sh")
        .arg(&restart)
        .arg(&pid_file)
        .arg(mcp_port.to_string())
        .arg(&broken)
        .arg(&fixture)
        .arg(&log)
        .arg(&python)
        .output()
        .expect("start the fixture");
    assert!(out.status.success(), "{out:?}");
    let first_pid = std::fs::read_to_string(&pid_file).unwrap();

    // Alertmanager, routed to a sink that is never up: the test reads its API.
    let am = start_alertmanager(d, "http://127.0.0.1:9/hook");
    let am_alerts = |am_port: u16| -> Vec<Value> {
        let (status, _, body) = http(am_port, "GET", "/api/v2/alerts", None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };

    let rules = d.join("rules.mcp");
    std::fs::write(
        &rules,
        format!(
            r#"evaluate every 1s

alert FixtureCallFailing {{
  when mcp_probe_success{{phase="call"}} == 0
  for 2s
  severity critical
  labels {{ team = "mcp" }}
  summary "{{{{instance}}}}: tools/call fails"
}}

remediate RestartFixture {{
  on FixtureCallFailing
  do exec "sh {restart} {pid} {port} {broken} {fixture} {log} {python}"
  timeout 30s
  verify within 20s
  max 3 per 6h
  escalate notify "{{{{instance}}}} did not recover"
}}
"#,
            restart = restart.display(),
            pid = pid_file.display(),
            port = mcp_port,
            broken = broken.display(),
            fixture = fixture.display(),
            log = log.display(),
            python = python.display(),
        ),
    )
    .unwrap();
    let port = free_port();
    let config = d.join("watch.toml");
    let alertmanager = match &am {
        Some((_, am_port)) => {
            format!("[alertmanager]\nurls = [\"http://127.0.0.1:{am_port}\"]\nresend = \"1s\"\n")
        }
        None => String::new(),
    };
    std::fs::write(
        &config,
        format!(
            r#"store = "{store}"
listen = "127.0.0.1:{port}"
interval = "1s"

[rules]
files = ["{rules}"]

{alertmanager}
[[probe]]
name = "fixture"
url = "http://127.0.0.1:{mcp_port}/mcp"
timeout = "5s"
call = {{ tool = "echo", arguments = {{ text = "hi" }}, expect = "hi" }}
"#,
            store = store.display(),
            rules = rules.display(),
        ),
    )
    .unwrap();
    let watch_log = d.join("watch.log");
    let started_ms = now_ms();
    let watch = start_watch(&config, port, &watch_log);
    let watch_log_text = || std::fs::read_to_string(&watch_log).unwrap_or_default();
    wait_for(
        "the probe's call to succeed",
        Duration::from_secs(30),
        || query_value(port, r#"mcp_probe_success{phase="call"}"#) == Some(1.0),
    );

    // Break it: the alert fires, reaches Alertmanager, the script restarts
    // the server, the probe recovers and the alert resolves.
    std::fs::write(&broken, "").unwrap();
    wait_for("the alert to fire", Duration::from_secs(40), || {
        live_alerts(port).iter().any(|a| a["state"] == "firing")
    });
    if let Some((_, am_port)) = &am {
        wait_for(
            "Alertmanager to hold the alert",
            Duration::from_secs(30),
            || {
                am_alerts(*am_port).iter().any(|a| {
                    a["labels"]["alertname"] == "FixtureCallFailing"
                        && a["labels"]["team"] == "mcp"
                        && a["labels"]["instance"] == "fixture"
                        && a["labels"]["severity"] == "critical"
                })
            },
        );
    }
    wait_for(
        "the restart, the recovery and the resolution",
        Duration::from_secs(90),
        || {
            let rows = audit(&store);
            events(&rows, "RestartFixture", "run")
                .iter()
                .any(|r| r["outcome"] == "ok")
                && live_alerts(port).is_empty()
                && query_value(port, r#"mcp_probe_success{phase="call"}"#) == Some(1.0)
        },
    );
    let second_pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_ne!(first_pid, second_pid, "the script restarted the server");
    assert!(!broken.exists(), "the script repaired it");
    // A few quiet steps, then stop.
    std::thread::sleep(Duration::from_secs(3));
    let stopped_ms = now_ms();
    stop_watch(watch);

    let rows = audit(&store);
    let runs = events(&rows, "RestartFixture", "run");
    assert_eq!(runs.len(), 1, "{rows:#?}\n{}", watch_log_text());
    let run = runs[0];
    assert_eq!(run["outcome"], "ok", "{run:#}");
    assert_eq!(run["exit_code"], 0, "{run:#}");
    assert!(run["duration_s"].as_f64().unwrap() > 0.0, "{run:#}");
    assert!(
        run["detail"]
            .as_str()
            .unwrap_or("")
            .contains("restarted on port"),
        "the script's output is in the audit: {run:#}"
    );
    assert!(
        events(&rows, "RestartFixture", "verify failed").is_empty()
            && events(&rows, "RestartFixture", "escalated").is_empty(),
        "{rows:#?}"
    );
    // The whole live run, replayed: the steps start at a whole second
    // before watch started (nothing was stored before it).
    assert_backtest_agrees(&store, &rules, floor_s(started_ms), floor_s(stopped_ms));

    // With watch gone, Alertmanager lets the alert lapse at its endsAt.
    if let Some((_, am_port)) = &am {
        wait_for(
            "Alertmanager to resolve the alert",
            Duration::from_secs(30),
            || {
                !am_alerts(*am_port)
                    .iter()
                    .any(|a| a["labels"]["alertname"] == "FixtureCallFailing")
            },
        );
    }
}

/// The absolute path of the `python3` the tests run (the one with the MCP
/// SDK): actions run with a minimal PATH.
fn python_executable() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// watch scraping `target` every second with `rules`; the config in `dir`.
fn watch_scraping(dir: &Path, target: u16, rules: &Path) -> (KillOnDrop, u16, PathBuf) {
    let port = free_port();
    let config = dir.join("watch.toml");
    std::fs::write(
        &config,
        format!(
            r#"store = "{store}"
listen = "127.0.0.1:{port}"
interval = "1s"

[rules]
files = ["{rules}"]
offset = "2s"

[[scrape]]
url = "http://127.0.0.1:{target}/metrics"
"#,
            store = dir.join("store").display(),
            rules = rules.display(),
        ),
    )
    .unwrap();
    let log = dir.join("watch.log");
    (start_watch(&config, port, &log), port, log)
}

/// The runs `record_action.sh` recorded in `dir`: (arguments, start ns, end ns).
fn recorded_runs(dir: &Path) -> Vec<(Vec<String>, i128, Option<i128>)> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(run) = name.strip_suffix(".args") else {
            continue;
        };
        let args = std::fs::read_to_string(&path).unwrap();
        let read = |ext: &str| {
            std::fs::read_to_string(dir.join(format!("{run}.{ext}")))
                .ok()
                .and_then(|s| s.trim().parse::<i128>().ok())
        };
        let Some(start) = read("start") else {
            continue;
        };
        runs.push((
            args.lines().map(str::to_string).collect(),
            start,
            read("end"),
        ));
    }
    runs.sort_by_key(|r| r.1);
    runs
}

/// A file-target scenario: `metrics.prom` served by a scrape target, the
/// alert `ServerDown` (`svc_down == 1`) and the remediation `Restart` on
/// it, and watch scraping the target every second.
struct Scenario {
    /// Serves `metrics.prom` for as long as the scenario lives.
    _target: KillOnDrop,
    target_port: u16,
    rules: PathBuf,
    store: PathBuf,
    log: PathBuf,
    started_ms: i64,
}

impl Scenario {
    /// Serves `metrics` (Prometheus text), writes the rules with `restart`
    /// as the lines of `Restart` after `on ServerDown`, and starts watch:
    /// the scenario and watch.
    fn start(d: &Path, metrics: &str, restart: &str) -> (Scenario, KillOnDrop) {
        let file = d.join("metrics.prom");
        std::fs::write(&file, metrics).unwrap();
        let (target, target_port) = start_file_target(&file);
        let rules = d.join("rules.mcp");
        std::fs::write(
            &rules,
            format!(
                "evaluate every 1s\n\nalert ServerDown {{\n  when svc_down == 1\n}}\n\n\
                 remediate Restart {{\n  on ServerDown\n{restart}}}\n"
            ),
        )
        .unwrap();
        let started_ms = now_ms();
        let (watch, _port, log) = watch_scraping(d, target_port, &rules);
        let scenario = Scenario {
            _target: target,
            target_port,
            rules,
            store: d.join("store"),
            log,
            started_ms,
        };
        (scenario, watch)
    }

    /// Two more steps, then watch stopped; when it stopped (ms).
    fn stop(&self, watch: KillOnDrop) -> i64 {
        std::thread::sleep(Duration::from_secs(2));
        let stopped_ms = now_ms();
        stop_watch(watch);
        stopped_ms
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// [`assert_backtest_agrees`] over the steps from watch's start until
    /// `stopped_ms`.
    fn assert_backtest_agrees(&self, stopped_ms: i64) {
        assert_backtest_agrees(
            &self.store,
            &self.rules,
            floor_s(self.started_ms),
            floor_s(stopped_ms),
        );
    }
}

/// One server, `s1`, down.
const ONE_SERVER_DOWN: &str = "svc_down{server=\"s1\"} 1\n";

/// `Restart`'s action: `record_action.sh` recording into `runs`, sleeping
/// `sleep_s` seconds, with the alert's server as its argument.
fn record_action(runs: &Path, sleep_s: u32) -> String {
    format!(
        "  do exec \"sh {script} {runs} {sleep_s} {{{{server}}}}\"\n",
        script = fixtures().join("remediate/record_action.sh").display(),
        runs = runs.display(),
    )
}

#[test]
fn five_servers_at_once_stay_under_the_caps_and_hostile_labels_stay_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs_dir = d.join("runs");
    std::fs::create_dir(&runs_dir).unwrap();
    let canary = d.join("pwned");
    let victim = d.join("x");
    std::fs::write(&victim, "still here").unwrap();
    let hostile = [
        format!("a b;rm -rf {}", victim.display()),
        format!("$(touch {})", canary.display()),
    ];
    let servers: Vec<String> = ["s1", "s2", "s3"]
        .iter()
        .map(|s| s.to_string())
        .chain(hostile.iter().cloned())
        .collect();
    let mut metrics = String::from("# TYPE svc_down gauge\n");
    for s in &servers {
        metrics.push_str(&format!("svc_down{{server=\"{s}\"}} 1\n"));
    }
    let restart =
        record_action(&runs_dir, 1) + "  timeout 2s\n  concurrency 1 per server\n  concurrency 2\n";
    let (sc, watch) = Scenario::start(d, &metrics, &restart);
    // Slots are held for the timeout plus the 5s kill grace: three rounds.
    wait_for("five runs", Duration::from_secs(90), || {
        recorded_runs(&runs_dir)
            .iter()
            .filter(|r| r.2.is_some())
            .count()
            == 5
    });
    let stopped_ms = sc.stop(watch);

    let runs = recorded_runs(&runs_dir);
    assert_eq!(runs.len(), 5, "{runs:?}\n{}", sc.log_text());
    // Each server's value arrived as exactly one argument.
    let got: BTreeSet<String> = runs.iter().map(|r| r.0.join("\u{1}")).collect();
    let want: BTreeSet<String> = servers.iter().cloned().collect();
    assert_eq!(got, want);
    assert!(!canary.exists(), "a label value ran as a command");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "still here");
    // Never more than two at once (start/end times of the scripts).
    for (_, start, _) in &runs {
        let running = runs
            .iter()
            .filter(|(_, s, e)| s <= start && e.is_none_or(|e| e > *start))
            .count();
        assert!(running <= 2, "{running} actions at once: {runs:?}");
    }
    let rows = audit(&sc.store);
    assert!(
        !events(&rows, "Restart", "suppressed (concurrency)").is_empty(),
        "the cap held some back: {rows:#?}"
    );
    sc.assert_backtest_agrees(stopped_ms);
}

#[test]
fn a_missing_binary_fails_to_spawn_and_counts_toward_max() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let restart = format!(
        "  do exec \"{missing} {{{{server}}}}\"\n  verify within 1s\n  max 3 per 6h\n",
        missing = d.join("no-such-restart").display(),
    );
    let (sc, watch) = Scenario::start(d, ONE_SERVER_DOWN, &restart);
    wait_for("max to be reached", Duration::from_secs(60), || {
        !events(&audit(&sc.store), "Restart", "suppressed (max)").is_empty()
    });
    let stopped_ms = sc.stop(watch);
    let rows = audit(&sc.store);
    let runs = events(&rows, "Restart", "run");
    assert_eq!(runs.len(), 3, "{rows:#?}\n{}", sc.log_text());
    for r in &runs {
        assert_eq!(r["outcome"], "failed(spawn)", "{r:#}");
        assert!(
            r["detail"]
                .as_str()
                .unwrap_or("")
                .contains("No such file or directory"),
            "{r:#}"
        );
    }
    assert_eq!(
        events(&rows, "Restart", "suppressed (max)").len(),
        1,
        "{rows:#?}"
    );
    sc.assert_backtest_agrees(stopped_ms);
}

#[test]
fn kill_9_between_intent_and_result_is_unknown_and_never_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs_dir = d.join("runs");
    std::fs::create_dir(&runs_dir).unwrap();
    let restart = record_action(&runs_dir, 4) + "  timeout 30s\n";
    let (sc, mut watch) = Scenario::start(d, ONE_SERVER_DOWN, &restart);
    let journal = sc.store.join("journal/journal.jsonl");
    wait_for("the action to start", Duration::from_secs(60), || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .contains("\"record\":\"intent\"")
            && !recorded_runs(&runs_dir).is_empty()
    });
    // Between the intent and the result: the script sleeps 4s.
    watch.0.kill().expect("kill -9 watch");
    watch.0.wait().expect("reap watch");
    // Again, on a port of its own, with the same store and rules.
    let (watch, port, _) = watch_scraping(d, sc.target_port, &sc.rules);
    wait_for("the alert to be back", Duration::from_secs(30), || {
        live_alerts(port).iter().any(|a| a["state"] == "firing")
    });
    // Several steps with the alert firing and no result for the first run.
    std::thread::sleep(Duration::from_secs(6));
    stop_watch(watch);
    let rows = audit(&sc.store);
    let runs = events(&rows, "Restart", "run");
    assert_eq!(runs.len(), 1, "{rows:#?}");
    assert_eq!(runs[0]["outcome"], "unknown", "{:#}", runs[0]);
    assert_eq!(recorded_runs(&runs_dir).len(), 1, "the script ran once");
}

#[test]
fn an_action_waits_for_mcpops_approve_and_the_backtest_applies_the_approval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs_dir = d.join("runs");
    std::fs::create_dir(&runs_dir).unwrap();
    let restart = record_action(&runs_dir, 0) + "  approve within 10m by \"oncall\"\n";
    let (sc, watch) = Scenario::start(d, ONE_SERVER_DOWN, &restart);
    let mut waiting = None;
    wait_for(
        "a decision awaiting approval",
        Duration::from_secs(60),
        || {
            waiting = events(&audit(&sc.store), "Restart", "awaiting approval")
                .first()
                .map(|r| r["id"].as_str().unwrap().to_string());
            waiting.is_some()
        },
    );
    let id = waiting.unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        recorded_runs(&runs_dir).is_empty(),
        "nothing runs before the approval"
    );
    let approve = mcpops(&sc.store, &["approve", &id, "--by", "alice"]);
    assert!(approve.status.success(), "{}", text(&approve));
    let again = mcpops(&sc.store, &["approve", &id, "--by", "bob"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    wait_for("the approved run", Duration::from_secs(30), || {
        recorded_runs(&runs_dir).iter().any(|r| r.2.is_some())
    });
    let stopped_ms = sc.stop(watch);
    let rows = audit(&sc.store);
    let runs = events(&rows, "Restart", "run");
    assert_eq!(runs.len(), 1, "{rows:#?}\n{}", sc.log_text());
    assert_eq!(runs[0]["approved_by"], "alice", "{:#}", runs[0]);
    assert_eq!(runs[0]["outcome"], "ok", "{:#}", runs[0]);
    assert_eq!(recorded_runs(&runs_dir)[0].0, ["s1"]);
    sc.assert_backtest_agrees(stopped_ms);
}
