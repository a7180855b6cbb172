//! `mcpops query`: one expression, at an instant or over a range of steps,
//! evaluated against the store (the binary prints the [`Value`]).

use super::EngineError;
use super::eval::Evaluator;
use super::source::StoreSource;
use super::value::{Grid, Value};
use crate::dsl::ast::Expr;
use crate::store::Snapshot;

/// The longest stretch of history before a step that `expr` reads.
pub fn expr_lookback_ms(expr: &Expr) -> i64 {
    let mut longest = super::eval::LOOKBACK_MS;
    expr.walk(&mut |x| {
        if let Expr::Selector(s) = x {
            let r = s.range.as_ref().map_or(super::eval::LOOKBACK_MS, |d| d.ms);
            let o = s.offset.as_ref().map_or(0, |d| d.ms);
            longest = longest.max(r.saturating_add(o));
        }
    });
    longest
}

/// Evaluates `expr` over `grid` against a store snapshot, reading only the
/// days and row groups the grid and the expression's windows need.
pub fn query(snapshot: Snapshot, expr: &Expr, grid: Grid) -> Result<Value, EngineError> {
    let source = StoreSource::new(
        snapshot,
        grid.start.saturating_sub(expr_lookback_ms(expr)),
        grid.end(),
    )
    .for_expressions([expr]);
    source.prefetch()?;
    Evaluator::new(&source, grid).sharing([expr]).eval(expr)
}
