//! The analyzer: bottlenecks, anomalies and failure forecasts over the store,
//! with per-series kernels run in parallel (rayon).
//!
//! The kernels here are shared with the engine: the rule language's
//! `predict`, `time_to`, `trend` and `anomaly` call [`forecast`] and
//! [`robust`], so a rule and the analyzer agree on the same samples.

pub mod forecast;
pub mod robust;
