//! How a command fails, and how the process exits (the README's exit codes):
//! 0 ok, 1 failure, 2 usage or input error, 3 rule problems, 4 an alert
//! that `report --fail-on` pages for, 5 a damaged store, 6 a period with
//! nothing to analyse, 7 a report whose period ends after the store's
//! newest sample (stale data).
//!
//! A failure keeps the library's error as it was returned, not its text:
//! [`report`] prints the message and then every cause in its source chain
//! that the message does not already quote.

use mcpops::analyze::analysis::AnalyzeError;
use mcpops::engine::EngineError;
use mcpops::generate::GenerateError;
use mcpops::ingest::IngestError;
use mcpops::report::ReportError;
use mcpops::store::StoreError;
use std::error::Error;
use std::fmt;
use std::io::{self, Write};

/// Any error, kept with its source chain.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A command's failure: the error, and by its kind the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments: exit 2.
    Usage(BoxError),
    /// Bad input data (a file, an expression, a rule set): exit 2, the store
    /// untouched.
    Input(BoxError),
    /// Rule files with errors, failing rule tests: exit 3.
    Rules(BoxError),
    /// Anything that is not the user's doing: an I/O failure, a poisoned
    /// lock, an Arrow or Parquet error, a broken invariant: exit 1.
    Failure(BoxError),
    /// The job ran, and found what `--fail-on` asks to page for: exit 4.
    Alerting(BoxError),
    /// The store is damaged (a corrupt or missing segment, a lost
    /// manifest): exit 5; `mcpops verify` and `mcpops repair` say more.
    Damaged(BoxError),
    /// The period holds no data the analysis recognises: exit 6, so that a
    /// cron job never reads "OK" about nothing.
    NoData(BoxError),
    /// The report's period ends after the store's newest sample (by more
    /// than twice the usual scrape interval): the report was written, marked
    /// stale, and exits 7, so that a cron job whose data stopped coming
    /// does not keep sending the last good verdict.
    Stale(BoxError),
    /// Whoever read standard output stopped reading (`mcpops analyze | head`):
    /// not a failure, so exit 0 without a message, as `ls | head` does.
    OutputClosed,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into().into())
    }

    pub fn rules(message: impl Into<String>) -> Self {
        CliError::Rules(message.into().into())
    }

    pub fn failure(error: impl Into<BoxError>) -> Self {
        CliError::Failure(error.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::OutputClosed => 0,
            CliError::Failure(_) => 1,
            CliError::Usage(_) | CliError::Input(_) => 2,
            CliError::Rules(_) => 3,
            CliError::Alerting(_) => 4,
            CliError::Damaged(_) => 5,
            CliError::NoData(_) => 6,
            CliError::Stale(_) => 7,
        }
    }

    fn inner(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match self {
            CliError::Usage(e)
            | CliError::Input(e)
            | CliError::Rules(e)
            | CliError::Failure(e)
            | CliError::Alerting(e)
            | CliError::Damaged(e)
            | CliError::NoData(e)
            | CliError::Stale(e) => Some(e.as_ref()),
            CliError::OutputClosed => None,
        }
    }
}

/// As the error it carries: the same message, the same causes.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner() {
            Some(e) => fmt::Display::fmt(e, f),
            None => f.write_str("standard output closed"),
        }
    }
}

impl Error for CliError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner().and_then(|e| e.source())
    }
}

/// Writes `mcpops: MESSAGE`, then a `caused by: CAUSE` line for each error
/// of the source chain whose text the lines before do not already hold:
/// most of the library's errors quote their source (`PATH: No such file or
/// directory`), and saying it twice would say nothing more.
pub fn report(e: &dyn Error, out: &mut dyn Write) -> io::Result<()> {
    let mut said = e.to_string();
    writeln!(out, "mcpops: {said}")?;
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !said.contains(&text) {
            writeln!(out, "caused by: {text}")?;
            said.push('\n');
            said.push_str(&text);
        }
        cause = c.source();
    }
    Ok(())
}

/// Whether a write failed because the reader of the output went away.
pub fn output_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// A failed write of the command's output: a closed pipe is no failure.
pub fn io_failure(e: io::Error) -> CliError {
    if output_closed(&e) {
        CliError::OutputClosed
    } else {
        CliError::Failure(e.into())
    }
}

/// An I/O error on a path the user named, with that path in front.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PathError {
    pub path: String,
    pub source: io::Error,
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(_) | StoreError::NotAStore { .. } | StoreError::NoStore { .. } => {
                CliError::Usage(e.into())
            }
            StoreError::Io { ref source, .. } if output_closed(source) => CliError::OutputClosed,
            // Bad credentials, refused access, no bucket, no answer: the
            // user's set-up, to fix before retrying (exit 2); a server
            // error is not (exit 1).
            StoreError::Remote { kind, .. } if kind.is_setup() => CliError::Usage(e.into()),
            ref damage if damage.is_damage() => CliError::Damaged(e.into()),
            other => CliError::Failure(other.into()),
        }
    }
}

impl From<AnalyzeError> for CliError {
    fn from(e: AnalyzeError) -> Self {
        match e {
            AnalyzeError::Store(e) => e.into(),
            AnalyzeError::NothingToAnalyse(_) => CliError::NoData(e.into()),
        }
    }
}

impl From<ReportError> for CliError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Store(e) => e.into(),
            ReportError::NothingToReport(e) => e.into(),
            ReportError::Reversed { .. } => CliError::Usage(e.into()),
            ReportError::BeforeData { .. } => CliError::NoData(e.into()),
            e => CliError::failure(e),
        }
    }
}

impl From<IngestError> for CliError {
    fn from(e: IngestError) -> Self {
        match &e {
            IngestError::Sink(_) => CliError::Failure(e.into()),
            IngestError::Io { source, .. } if source.kind() != io::ErrorKind::NotFound => {
                CliError::Failure(e.into())
            }
            _ => CliError::Input(e.into()),
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::Eval(_) | EngineError::TooManySamples { .. } => CliError::Input(e.into()),
            EngineError::Range(e) => super::shared::range_error(e, "the step"),
            EngineError::Io(e) => io_failure(e),
            other => CliError::Failure(other.into()),
        }
    }
}

impl From<GenerateError> for CliError {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::InvalidOptions(_) => CliError::Usage(e.into()),
            other => CliError::Failure(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(e: &dyn Error) -> String {
        let mut out = Vec::new();
        report(e, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_cause_the_message_quotes_is_not_repeated() {
        let e = CliError::failure(PathError {
            path: "out.csv".into(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "permission denied"),
        });
        assert_eq!(reported(&e), "mcpops: out.csv: permission denied\n");
    }

    #[test]
    fn a_cause_the_message_leaves_out_is_printed_under_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("writing the report")]
        struct Outer(#[source] PathError);
        let e = CliError::failure(Outer(PathError {
            path: "r/report.html".into(),
            source: io::Error::other("disk full"),
        }));
        assert_eq!(
            reported(&e),
            "mcpops: writing the report\ncaused by: r/report.html: disk full\n"
        );
    }

    #[test]
    fn internal_failures_exit_1_and_bad_input_2() {
        let poisoned = EngineError::Internal("a lock was poisoned".into());
        assert_eq!(CliError::from(poisoned).exit_code(), 1);
        let eval = EngineError::Eval("no such label".into());
        assert_eq!(CliError::from(eval).exit_code(), 2);
        let closed = EngineError::Io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(CliError::from(closed).exit_code(), 0);
        assert_eq!(
            CliError::from(StoreError::Frame("arrow: x".into())).exit_code(),
            1
        );
        assert_eq!(
            CliError::from(StoreError::Invalid("x".into())).exit_code(),
            2
        );
    }

    #[test]
    fn remote_failures_of_the_users_set_up_exit_2_and_others_1() {
        use mcpops::store::RemoteKind;
        let remote = |kind| StoreError::Remote {
            op: "put",
            location: "s3://bucket/store/x".into(),
            kind,
            message: "403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id you provided \
                      does not exist in our records."
                .into(),
        };
        for kind in [
            RemoteKind::Access,
            RemoteKind::NoBucket,
            RemoteKind::Unreachable,
            RemoteKind::Config,
        ] {
            assert_eq!(CliError::from(remote(kind)).exit_code(), 2, "{kind:?}");
        }
        assert_eq!(CliError::from(remote(RemoteKind::Other)).exit_code(), 1);
        assert_eq!(
            reported(&CliError::from(remote(RemoteKind::Access))),
            "mcpops: put s3://bucket/store/x: 403 Forbidden: InvalidAccessKeyId: The AWS \
             Access Key Id you provided does not exist in our records.\n"
        );
    }
}
