//! Numeric kernels: pure functions over slices of samples (timestamps in
//! ms, f64 values) that know nothing of series, labels, stores or reports.
//! The rule engine and the analyzer both call them, so a rule and the
//! analyzer agree on the same samples, and neither room imports the other.
//!
//! [`robust`] holds median, MAD and robust z-scores (the language's
//! `anomaly`), Prometheus-style quantiles over sorted samples, and change
//! points for level shifts.

pub mod robust;
#[cfg(test)]
pub(crate) mod testutil;
