//! `mcpops query`: one expression, at an instant or over a range of steps,
//! evaluated against the store (the binary prints the [`Value`]).

use super::EngineError;
use super::eval::Evaluator;
use super::plan::Plan;
use super::source::StoreSource;
use super::value::{Grid, Value};
use crate::dsl::ast::Expr;
use crate::store::Snapshot;
use std::sync::Arc;

/// Evaluates `expr` over `grid` against a store snapshot, reading only the
/// days and row groups the grid and the expression's windows need.
/// One evaluation may hold at most `max_samples` samples (see
/// [`super::budget`]).
pub fn query(
    snapshot: Snapshot,
    expr: &Expr,
    grid: Grid,
    max_samples: u64,
) -> Result<Value, EngineError> {
    let plan = Arc::new(Plan::new([expr]));
    let source = StoreSource::new(
        snapshot,
        grid.start.saturating_sub(plan.lookback_ms()),
        grid.end(),
    )
    .with_plan(&plan);
    source.prefetch()?;
    Evaluator::new(&source, grid)
        .with_plan(plan)
        .with_max_samples(max_samples)
        .eval(expr)
}
