//! The decisions of remediation and maintenance blocks, step by step: whether
//! an action is due for an alert instance (or a maintenance condition) at a
//! step, and what holds it back (cooldown, `max N per D`, concurrency, the
//! circuit breaker, a guard, inhibition, a pending approval), verification
//! and escalation. `backtest` replays these decisions over history as a dry
//! run and `watch` makes the same decisions live and carries them out, so a
//! backtest over a window that `watch` ran in shows what `watch` did.

use crate::engine::value::Labels;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What happened to an action at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The action would have run.
    Run,
    /// A maintenance condition held; the action waits for the window's next slot.
    Scheduled,
    /// Suppressed: the same series ran it within the cooldown.
    Cooldown,
    /// Suppressed: `max N per D` was spent.
    MaxReached,
    /// The alert was still firing when `verify within` ran out.
    VerifyFailed,
    /// The escalation action would have run.
    Escalated,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Run => "run",
            EventKind::Scheduled => "scheduled",
            EventKind::Cooldown => "suppressed (cooldown)",
            EventKind::MaxReached => "suppressed (max)",
            EventKind::VerifyFailed => "verify failed",
            EventKind::Escalated => "escalated",
        }
    }
}

/// One step of a remediation or maintenance dry run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub time: i64,
    /// The `remediate` or `maintenance` block.
    pub policy: String,
    pub kind: EventKind,
    /// The alert that triggered it, or the maintenance block's name.
    pub trigger: String,
    pub labels: Labels,
    /// The action as it would have run (`exec "systemctl restart mcp@mcp-06"`).
    pub action: String,
    /// The alert episode (index into [`Replay::episodes`]) for remediations.
    pub episode: Option<usize>,
    /// The condition's value that the action's template sees as `{{value}}`.
    pub value: f64,
}

/// An approval given with `mcpops approve ID`, read back from the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Who approved (`--by`, else the user running `mcpops approve`).
    pub by: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// Approvals by the id of the decision that asked for them
/// ([`ActionEvent::id`]).
pub type Approvals = HashMap<String, Approval>;

impl ActionEvent {
    /// A name for this decision that the same data always gives it, in
    /// `watch` and in `backtest` alike: 16 hex digits of a SHA-256 of the
    /// block, the kind, the step and the labels. `mcpops approve ID` names a
    /// decision so, and the journal keys intents and results by it.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.policy.as_bytes());
        h.update([0]);
        h.update(self.kind.name().as_bytes());
        h.update([0]);
        h.update(self.time.to_be_bytes());
        for (k, v) in &self.labels {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
