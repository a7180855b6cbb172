//! The samples limit: how many samples one evaluation may hold at once, as
//! Prometheus's `--query.max-samples` bounds a query. Counted are the
//! samples its selectors read (the windows' raw samples, held to the end)
//! and the cells (series x steps) of the intermediate results alive at the
//! same moment: a node's result is held until the node above it has been
//! computed from it. A function over a range reserves what its result can
//! at most hold before it computes anything, so an evaluation that would
//! exceed the limit fails before it allocates, with an error that names the
//! limit and how to raise it.
//!
//! Each expression is counted on its own (a query; each rule of a
//! backtest), so whether one fails does not depend on what runs beside it.

use super::EngineError;
use std::sync::atomic::{AtomicU64, Ordering};

/// The limit when neither `--max-samples` nor `MCPOPS_MAX_SAMPLES` sets one:
/// Prometheus's default.
pub const DEFAULT_MAX_SAMPLES: u64 = 50_000_000;

/// The count of one evaluation against its limit.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    held: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            held: AtomicU64::new(0),
        }
    }

    /// Adds `n` held samples for the rest of the evaluation.
    pub fn charge(&self, n: u64) -> Result<(), EngineError> {
        let now = self.held.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if now > self.limit {
            return Err(EngineError::TooManySamples { limit: self.limit });
        }
        Ok(())
    }

    fn release(&self, n: u64) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Samples held while one node of an expression is computed: its
/// children's results and its own reservations, released together when
/// the scope ends (its own result is then charged to the scope above).
#[derive(Debug)]
pub struct Scope<'a> {
    budget: &'a Budget,
    mine: AtomicU64,
}

impl<'a> Scope<'a> {
    pub fn new(budget: &'a Budget) -> Scope<'a> {
        Scope {
            budget,
            mine: AtomicU64::new(0),
        }
    }

    /// Holds `n` samples until this scope ends.
    pub fn charge(&self, n: u64) -> Result<(), EngineError> {
        self.mine.fetch_add(n, Ordering::Relaxed);
        self.budget.charge(n)
    }

    /// A scope for a child node, charging the same budget.
    pub fn child(&self) -> Scope<'a> {
        Scope::new(self.budget)
    }

    pub fn budget(&self) -> &'a Budget {
        self.budget
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.budget.release(*self.mine.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_releases_what_it_held() {
        let b = Budget::new(10);
        let outer = Scope::new(&b);
        {
            let inner = outer.child();
            inner.charge(6).unwrap();
            assert!(inner.charge(5).is_err(), "11 held");
        }
        outer.charge(10).expect("the inner scope's 11 are released");
        assert!(matches!(
            outer.charge(1),
            Err(EngineError::TooManySamples { limit: 10 })
        ));
    }
}
