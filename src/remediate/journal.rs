//! The action journal: what `watch` decided and did, in the store
//! (`STORE/journal/`). An intent record is synced before an action starts
//! and a result record after it ends; after a crash an action with an intent
//! and no result is recorded `unknown` and never run again (it counts
//! against `max`). Approvals given with `mcpops approve` are records too.
//! The journal is the audit: it reads as the table `backtest --out` writes
//! (`actions.parquet`), so `report` shows live and dry-run actions alike.

use super::decide::ActionEvent;
use serde::Serialize;

/// How an action that was carried out ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit code 0, or a 2xx answer.
    Ok,
    /// A non-zero exit code, a signal, or an HTTP error after the retries.
    Failed,
    /// The program could not be started (`failed(spawn)`).
    Spawn,
    /// It ran past its timeout and was killed.
    Timeout,
    /// Its template refused the values (an option-like label value).
    Refused,
    /// The block, or watch, is in dry-run mode.
    DryRun,
    /// An intent with no result: watch stopped while it ran.
    Unknown,
}

/// What an action's run left for the audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionResult {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    /// The HTTP status of a webhook's last answer.
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// Bounded, lossy UTF-8.
    pub stdout: String,
    pub stderr: String,
    /// Why, in words: `exit code 3`, `spawn: No such file or directory`.
    pub detail: String,
}

/// The record synced before an action runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intent {
    /// [`ActionEvent::id`] of the decision.
    pub id: String,
    pub event: ActionEvent,
    /// Wall-clock time of the intent (the event's time is its step).
    pub wall_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A record that does not read back (not a torn last line, which is dropped).
    #[error("{path}:{line}: {message}")]
    Corrupt {
        path: String,
        line: usize,
        message: String,
    },
    /// Another `watch` holds the journal.
    #[error("{0}")]
    Locked(String),
}

/// The journal of one store, open for writing by one `watch`.
pub struct Journal {
    _private: (),
}

impl Journal {
    /// Opens (or creates) `STORE/journal/`, takes its lock, and records
    /// `unknown` for every intent that has no result.
    pub fn open(_store_root: &std::path::Path) -> Result<Journal, JournalError> {
        todo!("act helper")
    }

    /// Records a decision that runs nothing (a suppression, a failed
    /// verification, a wait for approval).
    pub fn record(&self, _event: &ActionEvent) -> Result<(), JournalError> {
        todo!("act helper")
    }

    /// Records, and syncs to disk, that an action is about to run.
    pub fn intent(&self, _intent: &Intent) -> Result<(), JournalError> {
        todo!("act helper")
    }

    /// Records, and syncs, how the action with intent `id` ended.
    pub fn result(&self, _id: &str, _result: &ActionResult) -> Result<(), JournalError> {
        todo!("act helper")
    }

    /// Every decision recorded so far, in order (intents' events included).
    pub fn past(&self) -> Vec<ActionEvent> {
        todo!("act helper")
    }

    /// The approvals given so far (re-read: `mcpops approve` appends them
    /// from another process).
    pub fn approvals(&self) -> Result<super::decide::Approvals, JournalError> {
        todo!("act helper")
    }
}
