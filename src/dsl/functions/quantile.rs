//! Quantiles over each window: exact, ranked as Prometheus ranks them.

use super::{FuncDef, Kernel, Noise, Pool, QR, R, TimeFunc};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "median",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Quantile(0.5)),
    },
    FuncDef {
        name: "p50",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Quantile(0.5)),
    },
    FuncDef {
        name: "p90",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Quantile(0.9)),
    },
    FuncDef {
        name: "p95",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Quantile(0.95)),
    },
    FuncDef {
        name: "p99",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Quantile(0.99)),
    },
    FuncDef {
        name: "quantile",
        params: QR,
        arg_names: "(q, range)",
        noise: Noise::Always,
        pool: Pool::Samples,
        kernel: Kernel::QuantileAt,
    },
];
