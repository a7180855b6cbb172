//! Running an `exec` action for real: the prepared argument vector (never a
//! shell), a clean environment plus `MCPOPS_ALERT_*` variables, its own
//! process group, SIGTERM on timeout and SIGKILL after a grace period, and
//! bounded stdout/stderr kept for the audit.
//!
//! The process group is the unit that is stopped: on timeout the whole group
//! gets SIGTERM and, after the grace period, SIGKILL, so that what a script
//! started in the background goes with it. A script that exits in time may
//! leave a process behind on purpose (a restart script starting a server);
//! such a process should detach (`setsid`, output redirected), since its
//! output is read only for a short drain after the script exits.

use super::decide::ActionEvent;
use super::journal::{ActionResult, Outcome};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How an `exec` action runs.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// The block's `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The most bytes of stdout and of stderr kept (the rest is counted).
    pub output_limit: usize,
    /// The variables the process gets, on top of a minimal `PATH`.
    pub env: Vec<(String, String)>,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        ExecOptions {
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            env: Vec::new(),
        }
    }
}

/// An action's timeout when its block sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// The bytes of stdout and of stderr the audit keeps by default.
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 * 1024;
/// The `PATH` an action runs with: the system's directories only, so that
/// what `watch`'s own environment holds never decides which program runs.
pub const MINIMAL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long output is still read after the script exits: a background
/// process that kept the pipes open does not hold the action beyond this.
const DRAIN: Duration = Duration::from_millis(500);
/// How long reaping may take after SIGKILL (it cannot be refused; this only
/// bounds a process stuck in the kernel).
const REAP: Duration = Duration::from_secs(5);

/// The variables an action gets for the decision `event` of the alert whose
/// Alertmanager fingerprint is `fingerprint`: `MCPOPS_ALERT_NAME`,
/// `MCPOPS_ALERT_SEVERITY`, `MCPOPS_ALERT_VALUE`, `MCPOPS_ALERT_FINGERPRINT`,
/// `MCPOPS_ACTION_ID`, `MCPOPS_POLICY`, and `MCPOPS_ALERT_LABEL_<NAME>` per
/// label (the name upper-cased, anything but letters, digits and `_` made
/// `_`; the value as it is: the environment carries it as one string).
pub fn alert_env(event: &ActionEvent, fingerprint: &str) -> Vec<(String, String)> {
    let severity = event
        .labels
        .iter()
        .find(|(k, _)| k == "severity")
        .map_or("", |(_, v)| v.as_str());
    let mut env = vec![
        ("MCPOPS_ALERT_NAME".to_string(), event.trigger.clone()),
        ("MCPOPS_ALERT_SEVERITY".to_string(), severity.to_string()),
        (
            "MCPOPS_ALERT_VALUE".to_string(),
            crate::model::prom_float(event.value),
        ),
        (
            "MCPOPS_ALERT_FINGERPRINT".to_string(),
            fingerprint.to_string(),
        ),
        ("MCPOPS_ACTION_ID".to_string(), event.id()),
        ("MCPOPS_POLICY".to_string(), event.policy.clone()),
    ];
    for (name, value) in &event.labels {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        // A value with a NUL byte cannot be in an environment; it is cut
        // there rather than failing the action.
        let value = value.split('\0').next().unwrap_or_default();
        env.push((format!("MCPOPS_ALERT_LABEL_{name}"), value.to_string()));
    }
    env
}

/// Runs `argv` and waits for it (or for the timeout and the kill).
pub async fn run(argv: &[String], opts: &ExecOptions) -> ActionResult {
    let started = Instant::now();
    let elapsed_ms = || started.elapsed().as_millis() as i64;
    let Some(program) = argv.first() else {
        return spawn_failure("spawn: empty command".into(), 0);
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", MINIMAL_PATH)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout stops what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return spawn_failure(format!("spawn {program}: {e}"), elapsed_ms()),
    };
    let pgid = child.id().map(|p| p as libc::pid_t);
    let limit = opts.output_limit;
    let stdout = child.stdout.take().map(|s| Reader::start(s, limit));
    let stderr = child.stderr.take().map(|s| Reader::start(s, limit));

    let (outcome, exit_code, detail) = match tokio::time::timeout(opts.timeout, child.wait()).await
    {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(0), _) => (Outcome::Ok, Some(0), "exit code 0".to_string()),
                (Some(c), _) => (Outcome::Failed, Some(c), format!("exit code {c}")),
                (None, Some(s)) => (Outcome::Failed, None, format!("killed by signal {s}")),
                (None, None) => (Outcome::Failed, None, "ended without a status".into()),
            }
        }
        Ok(Err(e)) => (Outcome::Failed, None, format!("wait: {e}")),
        Err(_) => {
            let how = stop_group(&mut child, pgid, opts.grace).await;
            let detail = format!(
                "timed out after {}; {how}",
                crate::time::format_duration_ms(opts.timeout.as_millis() as i64)
            );
            (Outcome::Timeout, None, detail)
        }
    };
    let stdout = match stdout {
        Some(r) => r.text().await,
        None => String::new(),
    };
    let stderr = match stderr {
        Some(r) => r.text().await,
        None => String::new(),
    };
    ActionResult {
        outcome,
        exit_code,
        status: None,
        duration_ms: elapsed_ms(),
        stdout,
        stderr,
        detail,
    }
}

fn spawn_failure(detail: String, duration_ms: i64) -> ActionResult {
    ActionResult {
        outcome: Outcome::Spawn,
        exit_code: None,
        status: None,
        duration_ms,
        stdout: String::new(),
        stderr: String::new(),
        detail,
    }
}

/// Signals the process group `pgid` leads.
fn signal_group(pgid: Option<libc::pid_t>, signal: libc::c_int) -> bool {
    let Some(pgid) = pgid.filter(|&p| p > 0) else {
        return false;
    };
    // SAFETY: kill(2) with a negative pid signals the group the child leads
    // (spawned with process_group(0)). The group id stays taken while any
    // member lives, so it cannot name someone else's group meanwhile.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// SIGTERM to the group, SIGKILL after `grace` if the script or anything
/// in its group is still there, then reaps the script. Says what it took.
async fn stop_group(
    child: &mut tokio::process::Child,
    pgid: Option<libc::pid_t>,
    grace: Duration,
) -> &'static str {
    signal_group(pgid, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    let leader_gone = tokio::time::timeout_at(deadline, child.wait())
        .await
        .is_ok();
    // The script may have gone while what it started ignores SIGTERM: wait
    // out the grace for the rest of the group too.
    while leader_gone && signal_group(pgid, 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !signal_group(pgid, 0) {
        return "stopped by SIGTERM";
    }
    signal_group(pgid, libc::SIGKILL);
    let _ = child.start_kill();
    let _ = tokio::time::timeout(REAP, child.wait()).await;
    "SIGKILL after the grace period"
}

/// What a reader has kept so far: at most the limit, and how many bytes
/// more it read.
type Kept = std::sync::Arc<std::sync::Mutex<(Vec<u8>, u64)>>;

/// Reads `r` to its end, keeping at most `limit` bytes in `kept`.
async fn bounded<R: AsyncRead + Unpin>(mut r: R, limit: usize, kept: Kept) {
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let Ok(mut k) = kept.lock() else { break };
                let room = limit.saturating_sub(k.0.len()).min(n);
                k.0.extend_from_slice(&buf[..room]);
                k.1 += (n - room) as u64;
            }
        }
    }
}

/// A reader of one of the child's pipes.
struct Reader {
    kept: Kept,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    fn start<R: AsyncRead + Unpin + Send + 'static>(r: R, limit: usize) -> Reader {
        let kept = Kept::default();
        let task = tokio::spawn(bounded(r, limit, kept.clone()));
        Reader { kept, task }
    }

    /// The text read (lossy UTF-8), noting what was not kept. A pipe still
    /// open [`DRAIN`] after the script ended (a background process holds
    /// it) is read no further.
    async fn text(self) -> String {
        let mut task = self.task;
        let open = tokio::time::timeout(DRAIN, &mut task).await.is_err();
        task.abort();
        let (bytes, more) = self
            .kept
            .lock()
            .map(|k| (k.0.clone(), k.1))
            .unwrap_or_default();
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if more > 0 {
            text.push_str(&format!("\n[{more} more bytes not kept]"));
        }
        if open {
            text.push_str("\n[still open after the command ended: read no further]");
        }
        text
    }
}
