//! Remediation policies: the limits a `remediate` or `maintenance` block puts
//! on its action (cooldown per series, at most N runs per period, verification
//! that the alert resolved, escalation when it did not).
//!
//! [`policy`] decides; the backtest replays decisions as a dry run over
//! history, and watch mode will use the same decisions to run actions for real.
//! [`action`] fills an action's template for a series: argv, URL or text.

pub mod action;
pub mod alertmanager;
pub mod audit;
pub mod decide;
pub mod exec;
pub mod journal;
pub mod policy;
pub mod webhook;

pub use policy::{Decision, Limits, Policy};
