//! The evaluation engine: expressions of the rule language over the store,
//! alert states over time, rule unit tests and backtests over history.
//!
//! An expression is evaluated over a whole [`Grid`] of steps at once
//! ([`eval::Evaluator`]): selectors read each metric once from a
//! [`source::Source`], functions over time slide their windows along the
//! steps ([`range`]), per series or per pooled group in parallel (rayon);
//! [`histogram`] combines classic histogram buckets across their `le`.
//! [`state`] is the one step-driven state of a rule set (alert states,
//! inhibitions, remediation decisions) that a [`replay`] advances over a
//! period, as a dry run, and [`live`] one step at a time for `watch`;
//! [`testrun`] checks `test` blocks against a replay and [`backtest`] reports
//! one over stored history.

pub mod alerts;
pub mod backtest;
mod binary;
pub mod budget;
pub mod eval;
pub mod histogram;
pub mod instant;
pub mod live;
pub mod plan;
pub mod query;
pub mod range;
pub mod replay;
pub mod source;
pub mod state;
pub mod testrun;
pub mod value;

pub use eval::Evaluator;
pub use source::{MemorySource, Source, StoreSource};
pub use value::{Grid, Labels, Series, StepValue, Value};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The expression cannot be evaluated (a type mismatch the checker could
    /// not see, ambiguous matching).
    #[error("{0}")]
    Eval(String),
    /// The evaluation would hold more samples than allowed ([`budget`]).
    #[error(
        "the expression would hold more than {limit} samples at once (the samples its windows read, \
         and its results: series x steps): narrow it (a shorter range, a larger step, matchers, or \
         `by` to pool series), or raise the limit with --max-samples N or MCPOPS_MAX_SAMPLES"
    )]
    TooManySamples { limit: u64 },
    /// The evaluation range or step is refused (see [`Grid::checked_range`]).
    #[error("{0}")]
    Range(#[from] value::GridError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("writing {path}: {message}")]
    Output { path: String, message: String },
    /// The engine failed, not the input: a lock poisoned by a thread that
    /// panicked, an Arrow batch that does not fit its own schema.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}
