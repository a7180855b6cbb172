//! Whether series report: `absent` over all the selector's series, the
//! share of steps with a sample per series.

use super::{FuncDef, Kernel, Noise, Pool, R, TimeFunc};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "absent",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::Absent,
    },
    FuncDef {
        name: "present_ratio",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::OverTime(TimeFunc::PresentRatio),
    },
];
