//! The analyzer: bottlenecks, anomalies and failure forecasts over the store,
//! with per-series kernels run in parallel (rayon).
//!
//! The numeric kernels (quantiles, median and MAD, anomaly scores, least
//! squares, Holt, change points) are in [`crate::stats`], shared with the
//! rule engine, so a rule and the analyzer agree on the same samples.
//! [`detect`] is the online (streaming, no look-ahead) detector behind
//! `mcpops detect`, and [`nab`] scores detectors the way the Numenta Anomaly
//! Benchmark does (`mcpops nab score`); [`nab_cv`] cross-validates the
//! detector's tuning one category at a time (`mcpops nab cv`). [`analysis`] is `mcpops analyze`:
//! [`fleet`] loads calls and gauges, [`bottleneck`] and [`incidents`] find
//! where the time goes and what happened, and [`forecast`] fits a model per
//! series to tell when it runs out.
//! [`period`] finds where a store's data is dense: the period `analyze`,
//! `report` and `backtest` default to.

pub mod analysis;
pub mod bottleneck;
pub mod detect;
pub mod fleet;
pub mod forecast;
pub mod histogram;
pub mod incidents;
pub mod nab;
pub mod nab_cv;
pub mod period;
pub mod shapes;
#[cfg(test)]
pub(crate) mod testutil;
