//! The analyzer: bottlenecks, anomalies and failure forecasts over the store,
//! with per-series kernels run in parallel (rayon).
//!
//! The kernels here are shared with the engine: the rule language's
//! `predict`, `time_to`, `trend` and `anomaly` call [`forecast`] and
//! [`robust`], so a rule and the analyzer agree on the same samples.
//! [`detect`] is the online (streaming, no look-ahead) detector behind
//! `mcpops detect`, and [`nab`] scores detectors the way the Numenta Anomaly
//! Benchmark does (`mcpops evaluate`).

pub mod detect;
pub mod forecast;
pub mod nab;
pub mod robust;
#[cfg(test)]
mod testutil;
