//! Remediation: the decisions of `remediate` and `maintenance` blocks and
//! what carries them out.
//!
//! [`decide`] makes the decisions step by step (cooldown and `max` per
//! series through [`policy`], verification and escalation, concurrency
//! slots, the circuit breaker, guards, inhibition, approvals); a backtest
//! steps it over history as a dry run and `watch` steps it live, so both
//! decide alike. [`action`] fills an action's template for a series: argv,
//! URL or text. [`audit`] is the actions table both write.

pub mod action;
pub mod alertmanager;
pub mod audit;
pub mod decide;
pub mod exec;
pub mod journal;
pub mod policy;
pub mod webhook;

pub use policy::{Decision, Limits, Policy};
