//! Rules in `mcpops watch`, as a process: the real binary on 127.0.0.1
//! scraping a real prometheus_client target, with rule files the tests
//! write. An alert fires and shows at `/api/v1/alerts` and `/api/v1/rules`
//! in the shapes a real Prometheus gives for the same rules; a changed rule
//! file with errors is refused while the old rules keep firing, and a good
//! one replaces them; a rule file with errors refuses to start; `--mode
//! dry-run` journals an action without running it; an `exec` action runs a
//! real script with the alert's labels as its arguments; a real
//! Alertmanager receives the alerts. Every process is killed by its PID when
//! a test ends, passing or not.

use super::common::{
    KillOnDrop, free_port, http, mcpops, start_alertmanager, start_prom_target, text, wait_for,
    wait_watch_ready,
};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running watch, its port and where its stderr goes.
struct Watch {
    child: KillOnDrop,
    port: u16,
    log: PathBuf,
}

impl Watch {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, target: &str) -> Value {
        let (status, _, body) = http(self.port, "GET", target, None);
        assert_eq!(status, 200, "{target}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: {e}: {body}"))
    }

    fn alerts(&self) -> Vec<Value> {
        self.get("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn firing(&self, name: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .collect()
    }

    fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, _, body) = http(self.port, "GET", "/metrics", None);
        body.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.0.id() as i32;
        // SAFETY: kill(2) on the PID of the child this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("watch did not stop within 30s:\n{}", self.log());
    }
}

fn start_watch(dir: &Path, args: &[&str]) -> Watch {
    let port = free_port();
    let log = dir.join(format!("watch-{port}.log"));
    let store = dir.join("store");
    let child = Command::new(env!("CARGO_BIN_EXE_mcpops"))
        .arg("watch")
        .arg("--store")
        .arg(&store)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("start watch");
    let mut watch = Watch {
        child: KillOnDrop(child),
        port,
        log,
    };
    let log_path = watch.log.clone();
    wait_watch_ready(&mut watch.child.0, port, || {
        fs::read_to_string(&log_path).unwrap_or_default()
    });
    watch
}

const WARM_RULES: &str = r#"evaluate every 1s

alert Warm {
  when     fixture_temperature_celsius > 10
  severity critical
  summary  "room {{room}} is warm"
}

record room_temperature_doubled = fixture_temperature_celsius * 2
"#;

/// watch scraping the target every second, with `rules` in `dir`.
fn watch_with_rules(dir: &Path, target_port: u16, rules: &str, more: &[&str]) -> (Watch, PathBuf) {
    let file = dir.join("warm.rules");
    fs::write(&file, rules).unwrap();
    let scrape = format!("http://127.0.0.1:{target_port}/metrics");
    let mut args = vec![
        "--interval",
        "1s",
        "--offset",
        "1s",
        "--scrape",
        &scrape,
        "--rules",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    (start_watch(dir, &args), file)
}

#[test]
fn an_alert_fires_and_shows_at_alerts_and_rules() {
    let test = "watch_rules::an_alert_fires_and_shows_at_alerts_and_rules";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (watch, file) = watch_with_rules(dir.path(), target_port, WARM_RULES, &[]);
    wait_for("Warm to fire for room x", Duration::from_secs(40), || {
        watch
            .firing("Warm")
            .iter()
            .any(|a| a["labels"]["room"] == "x")
    });
    let alerts = watch.firing("Warm");
    let x = alerts.iter().find(|a| a["labels"]["room"] == "x").unwrap();
    assert_eq!(x["labels"]["severity"], "critical", "{x}");
    assert_eq!(x["annotations"]["summary"], "room x is warm", "{x}");
    assert!(x["activeAt"].as_str().unwrap().ends_with('Z'), "{x}");
    assert!(x["value"].as_str().unwrap().contains("e+01"), "{x}");
    // Room y is below zero: not an alert.
    assert!(
        alerts.iter().all(|a| a["labels"]["room"] != "y"),
        "{alerts:?}"
    );

    let rules = watch.get("/api/v1/rules");
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["file"], file.display().to_string(), "{rules}");
    assert_eq!(group["interval"], 1.0, "{rules}");
    let warm = &group["rules"][0];
    assert_eq!(warm["type"], "alerting", "{rules}");
    assert_eq!(warm["state"], "firing", "{rules}");
    assert_eq!(warm["health"], "ok", "{rules}");
    assert!(!warm["alerts"].as_array().unwrap().is_empty(), "{rules}");
    let records = watch.get("/api/v1/rules?type=record");
    let only = records["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{records}");
    assert_eq!(only[0]["name"], "room_temperature_doubled");

    // The record's samples go into the store: queries see them.
    wait_for("the record's samples", Duration::from_secs(20), || {
        let q = watch.get("/api/v1/query?query=room_temperature_doubled");
        q["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert_eq!(watch.metric("mcpops_watch_rules_reload_success"), Some(1.0));
    assert!(watch.stop().success());
}

/// The keys of a JSON value, recursively (arrays by their first element),
/// as `path` lines: the shape without the values.
fn shape(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // Labels and annotations hold the rule's own names.
                if k == "labels" || k == "annotations" {
                    out.push(format!("{path}.{k}"));
                    continue;
                }
                shape(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => match a.first() {
            Some(first) => shape(first, &format!("{path}[]"), out),
            None => out.push(format!("{path}[]")),
        },
        _ => out.push(path.to_string()),
    }
    out.sort();
    out.dedup();
}

/// Prometheus with the same rule (in its language) over the same target:
/// its `/api/v1/alerts` and `/api/v1/rules` have the keys ours have.
#[test]
fn alerts_and_rules_have_prometheus_shapes() {
    let test = "watch_rules::alerts_and_rules_have_prometheus_shapes";
    if !Path::new("/usr/bin/prometheus").exists() {
        eprintln!("SKIP {test}: /usr/bin/prometheus is not installed");
        return;
    }
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (watch, _) = watch_with_rules(dir.path(), target_port, WARM_RULES, &[]);

    let prom_port = free_port();
    fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: warm\n  interval: 1s\n  rules:\n  - alert: Warm\n    expr: fixture_temperature_celsius > 10\n    labels: {severity: critical}\n    annotations: {summary: 'room {{ $labels.room }} is warm'}\n  - record: room_temperature_doubled\n    expr: fixture_temperature_celsius * 2\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [rules.yml]\nscrape_configs:\n- job_name: mcp\n  static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        ),
    )
    .unwrap();
    let prom = KillOnDrop(
        Command::new("/usr/bin/prometheus")
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg("--storage.tsdb.path=prom-data")
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let get = |port: u16, target: &str| -> Option<Value> {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let (status, _, body) = http(port, "GET", target, None);
        (status == 200).then(|| serde_json::from_str(&body).ok())?
    };
    let firing = |port: u16| {
        get(port, "/api/v1/alerts").is_some_and(|a| {
            a["data"]["alerts"]
                .as_array()
                .is_some_and(|l| l.iter().any(|a| a["state"] == "firing"))
        })
    };
    wait_for("both to fire Warm", Duration::from_secs(60), || {
        firing(prom_port) && firing(watch.port)
    });
    for target in [
        "/api/v1/alerts",
        "/api/v1/rules",
        "/api/v1/rules?type=record",
    ] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        shape(&get(watch.port, target).unwrap(), "", &mut ours);
        shape(&get(prom_port, target).unwrap(), "", &mut theirs);
        assert_eq!(ours, theirs, "{target}: mcpops's keys, then Prometheus's");
    }
    let bogus = http(watch.port, "GET", "/api/v1/rules?type=bogus", None);
    let theirs = http(prom_port, "GET", "/api/v1/rules?type=bogus", None);
    assert_eq!(bogus.0, theirs.0);
    let parse = |b: &str| serde_json::from_str::<Value>(b).unwrap();
    assert_eq!(parse(&bogus.2), parse(&theirs.2));
    drop(prom);
    assert!(watch.stop().success());
}

#[test]
fn a_bad_rule_file_is_refused_and_the_old_rules_keep_firing() {
    let test = "watch_rules::a_bad_rule_file_is_refused_and_the_old_rules_keep_firing";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (watch, file) = watch_with_rules(dir.path(), target_port, WARM_RULES, &[]);
    wait_for("Warm to fire", Duration::from_secs(40), || {
        !watch.firing("Warm").is_empty()
    });
    // An unknown function: the file no longer checks.
    fs::write(
        &file,
        WARM_RULES.replace(
            "fixture_temperature_celsius > 10",
            "nosuchfn(fixture_temperature_celsius) > 10",
        ),
    )
    .unwrap();
    wait_for("the refusal", Duration::from_secs(20), || {
        watch.metric("mcpops_watch_rules_reload_success") == Some(0.0)
    });
    let log = watch.log();
    assert!(log.contains("refused"), "{log}");
    assert!(
        log.contains("warm.rules:"),
        "the diagnostics name the file: {log}"
    );
    // Steps go on with the old rules.
    let before = watch.metric("mcpops_watch_rule_evaluations_total").unwrap();
    wait_for("more steps", Duration::from_secs(20), || {
        watch.metric("mcpops_watch_rule_evaluations_total").unwrap() >= before + 2.0
    });
    assert!(!watch.firing("Warm").is_empty(), "{:?}", watch.alerts());

    // A good file replaces the rules: SIGHUP takes it at once.
    fs::write(&file, WARM_RULES.replace("alert Warm", "alert Hot")).unwrap();
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe { libc::kill(watch.child.0.id() as i32, libc::SIGHUP) };
    wait_for("Hot to fire instead", Duration::from_secs(40), || {
        !watch.firing("Hot").is_empty() && watch.firing("Warm").is_empty()
    });
    assert_eq!(watch.metric("mcpops_watch_rules_reload_success"), Some(1.0));
    assert!(watch.stop().success());
}

#[test]
fn a_rule_file_with_errors_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.rules");
    fs::write(&file, "alert Broken {\n  when nosuchfn(up) > 1\n}\n").unwrap();
    let o = mcpops(
        &dir.path().join("store"),
        &[
            "watch",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--rules",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.rules:2:"), "{err}");
    assert!(err.contains("nosuchfn"), "{err}");
    // Nothing was written.
    assert!(!dir.path().join("store").join("journal").exists());
}

/// A script that writes its arguments, one a line, to `out`.
fn recording_script(dir: &Path, out: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("restart.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nprintf 'alert=%s room=%s\\n' \"$MCPOPS_ALERT_NAME\" \"$MCPOPS_ALERT_LABEL_ROOM\" >> '{}'\n",
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn remediation_rules(script: &Path) -> String {
    format!(
        "{WARM_RULES}\nremediate CoolDown {{\n  on       Warm\n  do       exec \"{} {{{{room}}}} {{{{alert}}}}\"\n  timeout  10s\n  cooldown 1h\n}}\n",
        script.display()
    )
}

/// The journal's lines that hold `word`.
fn journal_lines(store: &Path, word: &str) -> Vec<String> {
    fs::read_to_string(store.join("journal").join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(word))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_exec_action_runs_a_script_with_the_alerts_labels() {
    let test = "watch_rules::an_exec_action_runs_a_script_with_the_alerts_labels";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran.txt");
    let script = recording_script(dir.path(), &out);
    let (watch, _) = watch_with_rules(dir.path(), target_port, &remediation_rules(&script), &[]);
    wait_for("the script to run", Duration::from_secs(40), || {
        fs::read_to_string(&out).is_ok_and(|t| t.contains("alert="))
    });
    let ran = fs::read_to_string(&out).unwrap();
    assert!(ran.starts_with("x\nWarm\nalert=Warm room=x\n"), "{ran:?}");
    let store = dir.path().join("store");
    wait_for("the result in the journal", Duration::from_secs(20), || {
        !journal_lines(&store, "\"ok\"").is_empty()
    });
    assert!(!journal_lines(&store, "intent").is_empty());
    // The cooldown holds: one run in the episode.
    std::thread::sleep(Duration::from_secs(3));
    let ran = fs::read_to_string(&out).unwrap();
    assert_eq!(ran.matches("alert=").count(), 1, "{ran:?}");
    assert_eq!(watch.metric("mcpops_watch_audit_writable"), Some(1.0));
    assert!(watch.stop().success());
}

#[test]
fn dry_run_journals_actions_and_runs_none() {
    let test = "watch_rules::dry_run_journals_actions_and_runs_none";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran.txt");
    let script = recording_script(dir.path(), &out);
    let (watch, _) = watch_with_rules(
        dir.path(),
        target_port,
        &remediation_rules(&script),
        &["--mode", "dry-run"],
    );
    let store = dir.path().join("store");
    wait_for(
        "a dry-run result in the journal",
        Duration::from_secs(40),
        || !journal_lines(&store, "dry_run").is_empty(),
    );
    assert!(!journal_lines(&store, "intent").is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!out.exists(), "the script ran in dry-run mode");
    assert!(watch.stop().success());
}

/// Debian's Alertmanager gets the firing alert with the rule's labels.
#[test]
fn alertmanager_receives_the_firing_alerts() {
    let test = "watch_rules::alertmanager_receives_the_firing_alerts";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Routed to a sink that is never up: this test reads Alertmanager's API.
    let Some((_am, am_port)) = start_alertmanager(dir.path(), "http://127.0.0.1:9/hook") else {
        return;
    };
    let am_alerts = || -> Vec<Value> {
        if std::net::TcpStream::connect(("127.0.0.1", am_port)).is_err() {
            return Vec::new();
        }
        let (status, _, body) = http(am_port, "GET", "/api/v2/alerts", None);
        if status != 200 {
            return Vec::new();
        }
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    wait_for("alertmanager to be up", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", am_port)).is_ok()
            && http(am_port, "GET", "/-/ready", None).0 == 200
    });
    let am = format!("http://127.0.0.1:{am_port}");
    let (watch, _) = watch_with_rules(
        dir.path(),
        target_port,
        WARM_RULES,
        &["--alertmanager", &am],
    );
    wait_for("alertmanager to hold Warm", Duration::from_secs(60), || {
        am_alerts().iter().any(|a| {
            a["labels"]["alertname"] == "Warm"
                && a["labels"]["room"] == "x"
                && a["labels"]["severity"] == "critical"
                && a["annotations"]["summary"] == "room x is warm"
        })
    });
    let held = am_alerts();
    let warm = held
        .iter()
        .find(|a| a["labels"]["alertname"] == "Warm")
        .unwrap();
    assert_eq!(warm["status"]["state"], "active", "{warm}");
    assert_eq!(
        warm["generatorURL"],
        format!("http://127.0.0.1:{}/api/v1/alerts", watch.port)
    );
    assert!(
        watch
            .metric("mcpops_watch_alertmanager_sends_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(watch.stop().success());
}

/// A script that fails: the block's escalation runs, once for the episode,
/// and the journal says both.
#[test]
fn a_failed_action_escalates_once() {
    use std::os::unix::fs::PermissionsExt;
    let test = "watch_rules::a_failed_action_escalates_once";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("fail.sh");
    fs::write(&failing, "#!/bin/sh\necho 'cannot restart' >&2\nexit 3\n").unwrap();
    fs::set_permissions(&failing, fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("paged.txt");
    let page = recording_script(dir.path(), &out);
    let rules = format!(
        "{WARM_RULES}\nremediate CoolDown {{\n  on       Warm\n  where    room == \"x\"\n  do       exec \"{}\"\n  cooldown 1h\n  escalate exec \"{} paged {{{{room}}}}\"\n}}\n",
        failing.display(),
        page.display()
    );
    let (watch, _) = watch_with_rules(dir.path(), target_port, &rules, &[]);
    wait_for("the escalation to run", Duration::from_secs(40), || {
        fs::read_to_string(&out).is_ok_and(|t| t.contains("alert="))
    });
    let store = dir.path().join("store");
    wait_for(
        "both results in the journal",
        Duration::from_secs(20),
        || journal_lines(&store, "\"result\"").len() >= 2,
    );
    let failed = journal_lines(&store, "\"failed\"");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("cannot restart"),
        "the stderr is kept: {failed:?}"
    );
    assert!(!journal_lines(&store, "escalated").is_empty());
    std::thread::sleep(Duration::from_secs(3));
    let paged = fs::read_to_string(&out).unwrap();
    assert_eq!(paged.matches("alert=").count(), 1, "{paged:?}");
    assert!(paged.starts_with("paged\nx\n"), "{paged:?}");
    assert!(watch.stop().success());
}

/// A restart on the same store: the alert is firing again from the first
/// answer (replayed from history, not pending for its `for`), and the action
/// that ran before is not run again.
#[test]
fn a_restart_brings_the_alert_back_firing_and_runs_nothing_twice() {
    let test = "watch_rules::a_restart_brings_the_alert_back_firing_and_runs_nothing_twice";
    let Some((_target, target_port)) = start_prom_target(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran.txt");
    let script = recording_script(dir.path(), &out);
    let rules = remediation_rules(&script).replace(
        "  severity critical\n",
        "  for      3s\n  severity critical\n",
    );
    let (watch, _) = watch_with_rules(dir.path(), target_port, &rules, &[]);
    wait_for("the script to run", Duration::from_secs(40), || {
        fs::read_to_string(&out).is_ok_and(|t| t.contains("alert="))
    });
    assert!(watch.stop().success());

    let (watch, _) = watch_with_rules(dir.path(), target_port, &rules, &[]);
    // Ready means started: the warm-up replay is done, and no step has been
    // evaluated for long enough for `for 3s` to pass again.
    let firing = watch.firing("Warm");
    assert!(
        firing.iter().any(|a| a["labels"]["room"] == "x"),
        "firing at once after the restart: {:?}\n{}",
        watch.alerts(),
        watch.log()
    );
    let before = watch
        .metric("mcpops_watch_rule_evaluations_total")
        .unwrap_or(0.0);
    wait_for("a few steps", Duration::from_secs(20), || {
        watch
            .metric("mcpops_watch_rule_evaluations_total")
            .unwrap_or(0.0)
            >= before + 3.0
    });
    let ran = fs::read_to_string(&out).unwrap();
    assert_eq!(
        ran.matches("alert=").count(),
        1,
        "run again after the restart: {ran:?}"
    );
    assert!(watch.stop().success());
}
