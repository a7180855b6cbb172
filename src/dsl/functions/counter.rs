//! Rates and changes: counters (resets included) and gauges' movement,
//! extrapolated as Prometheus does. Pooled `by`, they run per series and
//! add up.

use super::{FuncDef, Kernel, Noise, Pool, R, TimeFunc};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "rate",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Sum,
        kernel: Kernel::OverTime(TimeFunc::Rate),
    },
    FuncDef {
        name: "increase",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Sum,
        kernel: Kernel::OverTime(TimeFunc::Increase),
    },
    FuncDef {
        name: "delta",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Sum,
        kernel: Kernel::OverTime(TimeFunc::Delta),
    },
    FuncDef {
        name: "deriv",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Sum,
        kernel: Kernel::OverTime(TimeFunc::Deriv),
    },
    FuncDef {
        name: "changes",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Sum,
        kernel: Kernel::OverTime(TimeFunc::Changes),
    },
];
