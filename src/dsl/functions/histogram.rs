//! Functions over classic histograms: bucket series told apart by their
//! `le` label (the cumulative count of observations at or below that upper
//! bound), as Prometheus stores a histogram's `_bucket` series. They take
//! an instant value (the buckets' counts, or their `rate`/`increase`, or a
//! `sum by (le, ...)` of those) and combine, at each step, the series that
//! differ only in `le`.

use super::{FuncDef, HistFunc, Kernel, Noise, Pool, SI, SSI};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "histogram_quantile",
        params: SI,
        arg_names: "(φ, buckets)",
        // A quantile, as `p95` is: one evaluation's tail moves it.
        noise: Noise::Always,
        pool: Pool::Not,
        kernel: Kernel::Histogram(HistFunc::Quantile),
    },
    FuncDef {
        name: "histogram_fraction",
        params: SSI,
        arg_names: "(lower, upper, buckets)",
        // A share of counts, as an error ratio is.
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::Histogram(HistFunc::Fraction),
    },
];
