//! Functions over the samples of each window: sums, extremes, first and
//! last, spread.

use super::{FuncDef, Kernel, Noise, Pool, R, TimeFunc};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "avg",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Avg),
    },
    FuncDef {
        name: "min",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Min),
    },
    FuncDef {
        name: "max",
        params: R,
        arg_names: "(range)",
        noise: Noise::ShortWindow,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Max),
    },
    FuncDef {
        name: "sum",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Sum),
    },
    FuncDef {
        name: "count",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Count),
    },
    FuncDef {
        name: "last",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Last),
    },
    FuncDef {
        name: "first",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::First),
    },
    FuncDef {
        name: "stddev",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Samples,
        kernel: Kernel::OverTime(TimeFunc::Stddev),
    },
];
