//! Running an `exec` action for real: the prepared argument vector (never a
//! shell), a clean environment plus `MCPOPS_ALERT_*` variables, its own
//! process group, SIGTERM on timeout and SIGKILL after a grace period, and
//! bounded stdout/stderr kept for the audit.

use super::journal::ActionResult;
use std::time::Duration;

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

/// An action's timeout when its block sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Runs `argv` and waits for it (or for the timeout and the kill).
pub async fn run(_argv: &[String], _opts: &ExecOptions) -> ActionResult {
    todo!("exec helper")
}
