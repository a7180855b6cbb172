//! Functions at an instant, as PromQL has them: each takes series (an
//! instant value, not a range) or numbers and computes per step, without
//! a window. `abs`, `round` and the clamps map each value; `label_replace`
//! rewrites a label; `timestamp` gives the time of each value's sample; `sort` and
//! `sort_desc` order a result by value; `vector`, `scalar` and `time` stand in for PromQL's
//! scalars that change per step: this language's numbers are the same at
//! every step, so these give one series without labels instead.

use super::{FuncDef, InstFunc, Kernel, Noise, Param, Pool};

const V: &[Param] = &[Param::Series];
const VO: &[Param] = &[Param::Series, Param::OptScalar];
const VS: &[Param] = &[Param::Series, Param::Scalar];
const VSS: &[Param] = &[Param::Series, Param::Scalar, Param::Scalar];
const S: &[Param] = &[Param::Scalar];
const VTTTT: &[Param] = &[
    Param::Series,
    Param::Text,
    Param::Text,
    Param::Text,
    Param::Text,
];

const fn def(
    name: &'static str,
    params: &'static [Param],
    arg_names: &'static str,
    f: InstFunc,
) -> FuncDef {
    FuncDef {
        name,
        params,
        arg_names,
        // Each maps values it is given: noise is its argument's.
        noise: Noise::Never,
        // Per series by nature: aggregate the result instead.
        pool: Pool::Not,
        kernel: Kernel::Instant(f),
    }
}

pub(super) const FUNCTIONS: &[FuncDef] = &[
    def("abs", V, "(v)", InstFunc::Abs),
    def("round", VO, "(v, to_nearest)", InstFunc::Round),
    def("clamp", VSS, "(v, min, max)", InstFunc::Clamp),
    def("clamp_min", VS, "(v, min)", InstFunc::ClampMin),
    def("clamp_max", VS, "(v, max)", InstFunc::ClampMax),
    def(
        "label_replace",
        VTTTT,
        "(v, dst, replacement, src, regex)",
        InstFunc::LabelReplace,
    ),
    def("vector", S, "(number)", InstFunc::Vector),
    def("scalar", V, "(v)", InstFunc::Scalar),
    def("time", &[], "()", InstFunc::Time),
    def("timestamp", V, "(v)", InstFunc::Timestamp),
    def("sort", V, "(v)", InstFunc::Sort),
    def("sort_desc", V, "(v)", InstFunc::SortDesc),
];
