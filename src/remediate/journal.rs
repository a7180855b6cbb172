//! The action journal: what `watch` decided and did, in the store
//! (`STORE/journal/`). An intent record is synced before an action starts
//! and a result record after it ends; after a crash an action with an intent
//! and no result is recorded `unknown` and never run again (it counts
//! against `max`). Approvals given with `mcpops approve` are records too.
//! The journal is the audit: it reads as the table `backtest --out` writes
//! (`actions.parquet`), so `report` shows live and dry-run actions alike.
//!
//! The file is `STORE/journal/journal.jsonl`, one JSON record per line,
//! each written with one `write` on a file opened for appending: `decision`
//! (a decision that runs nothing), `intent`, `result` and `approval`. One
//! `watch` writes it, holding `STORE/journal/lock`; `mcpops approve` appends
//! approvals from another process without the lock (appends of whole lines
//! do not interleave). A crash can leave only a torn last line, which
//! reading drops (and opening for writing cuts off); a damaged line before
//! the last is an error that names it, since the journal decides what may
//! run and guessing past damage could run an action twice.

use super::audit::AuditRow;
use super::decide::{ActionEvent, Approval, Approvals, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The journal's directory in a store.
pub const JOURNAL_DIR: &str = "journal";
/// The journal's file in [`JOURNAL_DIR`].
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The lock file the writing `watch` holds, in [`JOURNAL_DIR`].
pub const JOURNAL_LOCK: &str = "lock";

/// How an action that was carried out ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl Outcome {
    /// The name the audit table shows: `ok`, `failed`, `failed(spawn)`,
    /// `timeout`, `refused`, `dry-run`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Spawn => "failed(spawn)",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::DryRun => "dry-run",
            Outcome::Unknown => "unknown",
        }
    }

    /// Whether the action ran and failed, so that escalation follows
    /// (a refused template ran nothing: the rule file is what to fix).
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Spawn | Outcome::Timeout)
    }
}

/// What an action's run left for the audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

impl ActionResult {
    /// A result that ran nothing: `DryRun`, `Refused` or `Unknown`, saying why.
    pub fn without_run(outcome: Outcome, detail: impl Into<String>) -> ActionResult {
        ActionResult {
            outcome,
            exit_code: None,
            status: None,
            duration_ms: 0,
            stdout: String::new(),
            stderr: String::new(),
            detail: detail.into(),
        }
    }
}

/// The record synced before an action runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// `mcpops approve` named no decision of the journal.
    #[error("{path}: no decision {id} in the journal (`mcpops audit` lists them)")]
    UnknownId { path: String, id: String },
    /// `mcpops approve` named a decision that waits for no approval.
    #[error("decision {id} is `{kind}`, not `awaiting approval`: there is nothing to approve")]
    NotAwaiting { id: String, kind: String },
    #[error("decision {id} was already approved by {by} at {at}")]
    AlreadyApproved { id: String, by: String, at: String },
}

impl JournalError {
    fn io(path: &Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the error is the caller's to fix (an id that is not one to
    /// approve), not a failure of the machine.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            JournalError::UnknownId { .. }
                | JournalError::NotAwaiting { .. }
                | JournalError::AlreadyApproved { .. }
        )
    }
}

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    /// A decision that runs nothing.
    Decision {
        id: String,
        wall_ms: i64,
        event: ActionEvent,
    },
    Intent(Intent),
    Result {
        id: String,
        wall_ms: i64,
        result: ActionResult,
    },
    Approval {
        id: String,
        by: String,
        at_ms: i64,
    },
}

impl Record {
    /// The record as one line, newline included. A non-finite `value` (JSON
    /// has no NaN or infinity) is written as Prometheus writes it, a string.
    fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        let value = match self {
            Record::Decision { event, .. } | Record::Intent(Intent { event, .. }) => {
                Some(event.value)
            }
            _ => None,
        };
        if let Some(x) = value.filter(|x| !x.is_finite())
            && let Some(e) = v.get_mut("event").and_then(Value::as_object_mut)
        {
            e.insert("value".into(), Value::String(crate::model::prom_float(x)));
        }
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// A record read back from one line.
    fn parse(line: &[u8]) -> Result<Record, String> {
        let mut v: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        // The non-finite values `line` wrote as strings.
        let mut value = None;
        if let Some(e) = v.get_mut("event").and_then(Value::as_object_mut)
            && let Some(Value::String(s)) = e.get("value")
        {
            value = Some(match s.as_str() {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => return Err(format!("event value {other:?} is not a number")),
            });
            e.insert("value".into(), Value::from(0.0));
        }
        let mut record: Record = serde_json::from_value(v).map_err(|e| e.to_string())?;
        if let (Some(x), Record::Decision { event, .. } | Record::Intent(Intent { event, .. })) =
            (value, &mut record)
        {
            event.value = x;
        }
        Ok(record)
    }
}

/// The complete records in `bytes` (read from the file's `offset`, line
/// numbers counted from `first_line`), and the bytes they take: a last line
/// without its newline is torn and left out.
fn parse_records(
    bytes: &[u8],
    path: &Path,
    first_line: usize,
) -> Result<(Vec<Record>, usize), JournalError> {
    let mut records = Vec::new();
    let mut used = 0;
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let Some(body) = line.strip_suffix(b"\n") else {
            break; // torn: the writer stopped mid-line
        };
        used += line.len();
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = Record::parse(body).map_err(|message| JournalError::Corrupt {
            path: path.display().to_string(),
            line: first_line + i,
            message,
        })?;
        records.push(record);
    }
    Ok((records, used))
}

/// One decision of the journal with what followed it: the row of the audit.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: String,
    pub event: ActionEvent,
    /// When it was recorded (wall clock).
    pub wall_ms: i64,
    /// Whether an intent was recorded: the action was (to be) carried out.
    pub intent: bool,
    /// How it ended; `None` for a decision that runs nothing, or an action
    /// still running.
    pub result: Option<ActionResult>,
}

/// A journal as read back.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Decisions in the order they were recorded, one per id.
    pub entries: Vec<Entry>,
    pub approvals: Approvals,
    /// Whether the last line was torn (and left out).
    pub torn_tail: bool,
    /// Lines read (for line numbers of appended records).
    lines: usize,
    index: HashMap<String, usize>,
}

impl Log {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Decision { id, wall_ms, event } => self.decision(id, wall_ms, event, false),
            Record::Intent(i) => self.decision(i.id, i.wall_ms, i.event, true),
            Record::Result { id, result, .. } => {
                if let Some(&at) = self.index.get(&id) {
                    self.entries[at].result = Some(result);
                }
            }
            Record::Approval { id, by, at_ms } => {
                // The first approval counts; `approve` refuses a second.
                self.approvals.entry(id).or_insert(Approval { by, at_ms });
            }
        }
    }

    fn decision(&mut self, id: String, wall_ms: i64, event: ActionEvent, intent: bool) {
        if let Some(&at) = self.index.get(&id) {
            // `watch` records a run's decision, then its intent.
            self.entries[at].intent |= intent;
            return;
        }
        self.index.insert(id.clone(), self.entries.len());
        self.entries.push(Entry {
            id,
            event,
            wall_ms,
            intent,
            result: None,
        });
    }

    /// The entry of decision `id`.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.index.get(id).map(|&i| &self.entries[i])
    }

    /// The journal as the rows of the actions table (`backtest --out`'s
    /// `actions.parquet`): a decision awaiting approval shows who approved
    /// it; an action carried out, its outcome (`running` while it has no
    /// result), exit code, duration, and its detail with the output kept.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        self.entries
            .iter()
            .map(|e| {
                let mut event = e.event.clone();
                if event.approved_by.is_none()
                    && let Some(a) = self.approvals.get(&e.id)
                {
                    event.approved_by = Some(a.by.clone());
                }
                let mut row = AuditRow {
                    id: e.id.clone(),
                    ..AuditRow::dry_run(&event)
                };
                if let Some(r) = &e.result {
                    row.outcome = Some(r.outcome.name().to_string());
                    row.exit_code = r.exit_code;
                    row.duration_s = Some(r.duration_ms as f64 / 1000.0);
                    let mut detail = r.detail.clone();
                    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                        if !text.is_empty() {
                            detail.push_str(&format!("\n{name}:\n{text}"));
                        }
                    }
                    row.detail = Some(detail);
                } else if e.intent {
                    row.outcome = Some("running".to_string());
                }
                row
            })
            .collect()
    }
}

/// Reads the journal at `path` (a missing file is an empty journal).
/// Returns the log and the length of its complete lines.
fn read_path(path: &Path) -> Result<(Log, u64), JournalError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Log::default(), 0)),
        Err(e) => return Err(JournalError::io(path, e)),
    };
    let (records, used) = parse_records(&bytes, path, 1)?;
    let mut log = Log {
        torn_tail: used < bytes.len(),
        lines: bytes[..used].iter().filter(|&&b| b == b'\n').count(),
        ..Log::default()
    };
    for r in records {
        log.apply(r);
    }
    Ok((log, used as u64))
}

/// The journal file of the store at `store_root`.
pub fn path(store_root: &Path) -> PathBuf {
    store_root.join(JOURNAL_DIR).join(JOURNAL_FILE)
}

/// Reads the journal of the store at `store_root`, for readers (`mcpops
/// audit`, `report`): no lock, a missing journal is empty, a torn last line
/// is left out. An action still running has an entry with no result.
pub fn read(store_root: &Path) -> Result<Log, JournalError> {
    read_path(&path(store_root)).map(|(log, _)| log)
}

/// Appends `line` to the file at `path` with one `write` and syncs it.
fn append_synced(file: &mut File, path: &Path, line: &[u8]) -> Result<(), JournalError> {
    file.write_all(line)
        .and_then(|()| file.sync_data())
        .map_err(|e| JournalError::io(path, e))
}

/// Records that `by` approves the decision `id` of the journal of the store
/// at `store_root`, from a process other than the `watch` that writes the
/// journal (no lock: one appended line, synced). Refuses an id that is not
/// a decision awaiting approval, or one already approved.
pub fn approve(store_root: &Path, id: &str, by: &str) -> Result<Approval, JournalError> {
    let path = path(store_root);
    let (log, used) = read_path(&path)?;
    let Some(entry) = log.get(id) else {
        return Err(JournalError::UnknownId {
            path: path.display().to_string(),
            id: id.to_string(),
        });
    };
    if entry.event.kind != EventKind::AwaitingApproval {
        return Err(JournalError::NotAwaiting {
            id: id.to_string(),
            kind: entry.event.kind.name().to_string(),
        });
    }
    if let Some(a) = log.approvals.get(id) {
        return Err(JournalError::AlreadyApproved {
            id: id.to_string(),
            by: a.by.clone(),
            at: crate::time::format_ms(a.at_ms),
        });
    }
    let mut file = File::options()
        .append(true)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    if log.torn_tail {
        // A torn line followed by a record would be damage in the middle.
        // Only a writer that stopped mid-line leaves one, and `watch` cuts
        // it off when it opens the journal; without a `watch`, cut it here.
        let _lock = crate::store::lock_file(&path.with_file_name(JOURNAL_LOCK))
            .map_err(|e| JournalError::Locked(e.to_string()))?;
        file.set_len(used).map_err(|e| JournalError::io(&path, e))?;
    }
    let approval = Approval {
        by: by.to_string(),
        at_ms: crate::time::now_ms(),
    };
    let record = Record::Approval {
        id: id.to_string(),
        by: approval.by.clone(),
        at_ms: approval.at_ms,
    };
    append_synced(&mut file, &path, &record.line())?;
    Ok(approval)
}

/// What the open journal holds in memory.
struct State {
    file: File,
    log: Log,
    /// The bytes of the file read into `log`: `approvals` reads on from here.
    read_to: u64,
    /// Decisions in the order recorded, the ones with intents included.
    past: Vec<ActionEvent>,
    seen: HashSet<String>,
}

/// The journal of one store, open for writing by one `watch`.
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
    _lock: crate::store::FileLock,
}

impl Journal {
    /// Opens (or creates) `STORE/journal/`, takes its lock, and records
    /// `unknown` for every intent that has no result.
    pub fn open(store_root: &Path) -> Result<Journal, JournalError> {
        let dir = store_root.join(JOURNAL_DIR);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
            crate::fsutil::sync_dir(store_root).map_err(|e| JournalError::io(store_root, e))?;
        }
        let lock = crate::store::lock_file(&dir.join(JOURNAL_LOCK)).map_err(|e| match e {
            crate::store::StoreError::Locked { path } => JournalError::Locked(format!(
                "another `mcpops watch` writes the journal of this store ({path} is locked)"
            )),
            other => JournalError::Locked(other.to_string()),
        })?;
        let path = dir.join(JOURNAL_FILE);
        let created = !path.exists();
        let file = File::options()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, e))?;
        if created {
            file.sync_all().map_err(|e| JournalError::io(&path, e))?;
            crate::fsutil::sync_dir(&dir).map_err(|e| JournalError::io(&dir, e))?;
        }
        let (mut log, used) = read_path(&path)?;
        if log.torn_tail {
            // Cut the torn line off, so that what is appended next starts a line.
            file.set_len(used)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io(&path, e))?;
            log.torn_tail = false;
        }
        let mut state = State {
            file,
            read_to: used,
            past: Vec::new(),
            seen: HashSet::new(),
            log: Log::default(),
        };
        let crashed: Vec<String> = log
            .entries
            .iter()
            .filter(|e| e.intent && e.result.is_none())
            .map(|e| e.id.clone())
            .collect();
        for e in &log.entries {
            state.seen.insert(e.id.clone());
            state.past.push(e.event.clone());
        }
        state.log = log;
        let journal = Journal {
            path,
            state: Mutex::new(state),
            _lock: lock,
        };
        for id in crashed {
            let result = ActionResult::without_run(
                Outcome::Unknown,
                "watch stopped while the action ran: not run again",
            );
            journal.result(&id, &result)?;
        }
        Ok(journal)
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the state as the
        // last whole append made it: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` (synced when `sync`), then applies it to the state.
    fn append(&self, record: Record, sync: bool) -> Result<(), JournalError> {
        let line = record.line();
        let mut st = self.state();
        if sync {
            append_synced(&mut st.file, &self.path, &line)?;
        } else {
            st.file
                .write_all(&line)
                .map_err(|e| JournalError::io(&self.path, e))?;
        }
        let event = match &record {
            Record::Decision { id, event, .. } | Record::Intent(Intent { id, event, .. }) => {
                Some((id.clone(), event.clone()))
            }
            _ => None,
        };
        if let Some((id, event)) = event
            && st.seen.insert(id)
        {
            st.past.push(event);
        }
        st.log.apply(record);
        Ok(())
    }

    /// Records a decision that runs nothing (a suppression, a failed
    /// verification, a wait for approval).
    pub fn record(&self, event: &ActionEvent) -> Result<(), JournalError> {
        self.append(
            Record::Decision {
                id: event.id(),
                wall_ms: crate::time::now_ms(),
                event: event.clone(),
            },
            false,
        )
    }

    /// Records, and syncs to disk, that an action is about to run.
    pub fn intent(&self, intent: &Intent) -> Result<(), JournalError> {
        self.append(Record::Intent(intent.clone()), true)
    }

    /// Records, and syncs, how the action with intent `id` ended.
    pub fn result(&self, id: &str, result: &ActionResult) -> Result<(), JournalError> {
        self.append(
            Record::Result {
                id: id.to_string(),
                wall_ms: crate::time::now_ms(),
                result: result.clone(),
            },
            true,
        )
    }

    /// Every decision recorded so far, in order (intents' events included).
    pub fn past(&self) -> Vec<ActionEvent> {
        self.state().past.clone()
    }

    /// Makes the journal write to `file` from now on and returns the file it
    /// wrote to: tests give it `/dev/full` for a real write failure.
    #[cfg(test)]
    pub(crate) fn swap_file(&self, file: File) -> File {
        std::mem::replace(&mut self.state().file, file)
    }

    /// Whether block `policy` escalated for the instance with `labels` at
    /// or after `since` (escalation goes out once per episode).
    pub fn escalated_since(
        &self,
        policy: &str,
        labels: &crate::engine::Labels,
        since: i64,
    ) -> bool {
        self.state().past.iter().any(|e| {
            e.kind == EventKind::Escalated
                && e.policy == policy
                && e.labels == *labels
                && e.time >= since
        })
    }

    /// The journal as recorded so far (with the approvals read so far).
    pub fn log(&self) -> Log {
        self.state().log.clone()
    }

    /// The approvals given so far (re-read: `mcpops approve` appends them
    /// from another process).
    pub fn approvals(&self) -> Result<Approvals, JournalError> {
        let mut st = self.state();
        let mut file = File::open(&self.path).map_err(|e| JournalError::io(&self.path, e))?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(st.read_to))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| JournalError::io(&self.path, e))?;
        let first_line = st.log.lines + 1;
        let (records, used) = parse_records(&bytes, &self.path, first_line)?;
        st.read_to += used as u64;
        st.log.lines += bytes[..used].iter().filter(|&&b| b == b'\n').count();
        for r in records {
            // Our own records are in the state already; take the others'.
            if let Record::Approval { .. } = r {
                st.log.apply(r);
            }
        }
        Ok(st.log.approvals.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: i64, kind: EventKind, server: &str) -> ActionEvent {
        ActionEvent {
            time: t,
            policy: "restart".into(),
            kind,
            trigger: "Down".into(),
            labels: vec![("server".into(), server.into())],
            action: format!("exec \"restart {server}\""),
            episode: Some(0),
            value: 1.5,
            mode: crate::dsl::ast::Mode::Auto,
            approved_by: None,
        }
    }

    #[test]
    fn records_read_back_with_non_finite_values() {
        let mut e = event(60_000, EventKind::Run, "a");
        for x in [f64::INFINITY, f64::NEG_INFINITY, 2.5] {
            e.value = x;
            let r = Record::Intent(Intent {
                id: e.id(),
                event: e.clone(),
                wall_ms: 7,
            });
            let line = r.line();
            assert!(line.ends_with(b"\n"));
            match Record::parse(&line[..line.len() - 1]).unwrap() {
                Record::Intent(i) => assert_eq!(i.event, e),
                other => panic!("{other:?}"),
            }
        }
        e.value = f64::NAN;
        let line = Record::Decision {
            id: e.id(),
            wall_ms: 0,
            event: e.clone(),
        }
        .line();
        match Record::parse(&line[..line.len() - 1]).unwrap() {
            Record::Decision { event, .. } => assert!(event.value.is_nan()),
            other => panic!("{other:?}"),
        }
    }
}
