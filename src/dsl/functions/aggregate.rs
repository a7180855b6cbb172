//! Aggregations across series, at each step: `sum by (server) (x)`,
//! `topk(3, x)`.

use super::{AggDef, AggKernel};

/// Aggregations across series.
pub const AGGREGATIONS: &[AggDef] = &[
    AggDef {
        name: "sum",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Sum,
    },
    AggDef {
        name: "avg",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Avg,
    },
    AggDef {
        name: "min",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Min,
    },
    AggDef {
        name: "max",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Max,
    },
    AggDef {
        name: "count",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Count,
    },
    AggDef {
        name: "stddev",
        param: false,
        keeps_labels: false,
        kernel: AggKernel::Stddev,
    },
    AggDef {
        name: "quantile",
        param: true,
        keeps_labels: false,
        kernel: AggKernel::Quantile,
    },
    AggDef {
        name: "topk",
        param: true,
        keeps_labels: true,
        kernel: AggKernel::TopK,
    },
    AggDef {
        name: "bottomk",
        param: true,
        keeps_labels: true,
        kernel: AggKernel::BottomK,
    },
];
