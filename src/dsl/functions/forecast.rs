//! Forecasts and scores per series: linear/Holt predictions, time to a
//! threshold, robust anomaly scores and trends.

use super::{FuncDef, Kernel, Noise, Pool, R, RQ, RT, TimeFunc};

pub(super) const FUNCTIONS: &[FuncDef] = &[
    FuncDef {
        name: "predict",
        params: RQ,
        arg_names: "(range, horizon)",
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::PredictAt,
    },
    FuncDef {
        name: "time_to",
        params: RT,
        arg_names: "(range, threshold)",
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::OverTime(TimeFunc::TimeTo),
    },
    FuncDef {
        name: "anomaly",
        params: R,
        arg_names: "(range)",
        noise: Noise::Always,
        pool: Pool::Not,
        kernel: Kernel::OverTime(TimeFunc::Anomaly),
    },
    FuncDef {
        name: "trend",
        params: R,
        arg_names: "(range)",
        noise: Noise::Never,
        pool: Pool::Not,
        kernel: Kernel::OverTime(TimeFunc::Trend),
    },
];
