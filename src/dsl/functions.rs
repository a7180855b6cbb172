//! The function table: functions over time (their range argument) and
//! aggregations across series (an instant argument).
//!
//! A name used over a range means over time, over an instant expression it
//! means across series: `sum(x[5m])` is a [`Call`](super::ast::Call),
//! `sum(x)` and `sum by (a) (x)` are [`Aggregate`](super::ast::Aggregate)s.
//!
//! "Noisy" functions make the checker warn when an alert uses them without
//! `for`: one evaluation's spike should not page. Quantiles (`p50`..`p99`,
//! `median`, `quantile`) and `anomaly` are always noisy; `rate`, `increase`,
//! `delta`, `deriv`, `changes`, `min` and `max` are noisy over a window
//! shorter than [`SHORT_WINDOW_MS`].

/// Windows below this make the short-window functions noisy.
pub const SHORT_WINDOW_MS: i64 = 5 * 60_000;

/// What an argument must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A range such as `x[5m]`.
    Range,
    /// A number (a literal, a duration in seconds, a constant).
    Scalar,
    /// A number, or an instant expression whose series match the range's
    /// series one-to-one on identical label sets, as a binary operator's
    /// operands do (`time_to(process.memory.usage[1h], process.memory.limit)`).
    Threshold,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    Never,
    Always,
    /// Noisy when the range is shorter than [`SHORT_WINDOW_MS`].
    ShortWindow,
}

/// How `by`/`without` after a function over time combines the series of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The samples of every series in the group are pooled, then the
    /// function runs once (`p95(x[5m]) by (server)`: the p95 of every call).
    Samples,
    /// The function runs per series and the results are added
    /// (`rate`, `increase`, `delta`, `deriv`, `changes`, `count`, `sum`).
    Sum,
    /// Pooling is not allowed (`absent`, `present_ratio` and the predictive
    /// functions, whose meaning is per series).
    Not,
}

#[derive(Clone, Copy, Debug)]
pub struct FuncInfo {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Argument names for messages.
    pub arg_names: &'static str,
    pub noise: Noise,
    pub pool: Pool,
}

impl FuncInfo {
    /// Index of the range argument.
    pub fn range_arg(&self) -> usize {
        self.params
            .iter()
            .position(|p| *p == Param::Range)
            .unwrap_or(0)
    }
}

const R: &[Param] = &[Param::Range];
const QR: &[Param] = &[Param::Scalar, Param::Range];
const RQ: &[Param] = &[Param::Range, Param::Scalar];
const RT: &[Param] = &[Param::Range, Param::Threshold];

macro_rules! f {
    ($name:literal, $params:expr, $args:literal, $noise:ident, $pool:ident) => {
        FuncInfo {
            name: $name,
            params: $params,
            arg_names: $args,
            noise: Noise::$noise,
            pool: Pool::$pool,
        }
    };
}

/// Functions over time. The argument marked `Range` must be a range.
pub const FUNCTIONS: &[FuncInfo] = &[
    f!("avg", R, "(range)", Never, Samples),
    f!("min", R, "(range)", ShortWindow, Samples),
    f!("max", R, "(range)", ShortWindow, Samples),
    f!("sum", R, "(range)", Never, Sum),
    f!("count", R, "(range)", Never, Sum),
    f!("last", R, "(range)", Never, Samples),
    f!("first", R, "(range)", Never, Samples),
    f!("stddev", R, "(range)", Never, Samples),
    f!("median", R, "(range)", Always, Samples),
    f!("p50", R, "(range)", Always, Samples),
    f!("p90", R, "(range)", Always, Samples),
    f!("p95", R, "(range)", Always, Samples),
    f!("p99", R, "(range)", Always, Samples),
    f!("quantile", QR, "(q, range)", Always, Samples),
    f!("rate", R, "(range)", ShortWindow, Sum),
    f!("increase", R, "(range)", ShortWindow, Sum),
    f!("delta", R, "(range)", ShortWindow, Sum),
    f!("deriv", R, "(range)", ShortWindow, Sum),
    f!("changes", R, "(range)", ShortWindow, Sum),
    f!("absent", R, "(range)", Never, Not),
    f!("present_ratio", R, "(range)", Never, Not),
    f!("predict", RQ, "(range, horizon)", Never, Not),
    f!("time_to", RT, "(range, threshold)", Never, Not),
    f!("anomaly", R, "(range)", Always, Not),
    f!("trend", R, "(range)", Never, Not),
];

#[derive(Clone, Copy, Debug)]
pub struct AggInfo {
    pub name: &'static str,
    /// Takes a number first: `quantile(q, v)`, `topk(k, v)`, `bottomk(k, v)`.
    pub param: bool,
    /// Keeps each series' own labels (`topk`, `bottomk` select series);
    /// the others keep only the `by` labels, or drop the `without` ones.
    pub keeps_labels: bool,
}

/// Aggregations across series.
pub const AGGREGATIONS: &[AggInfo] = &[
    AggInfo {
        name: "sum",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "avg",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "min",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "max",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "count",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "stddev",
        param: false,
        keeps_labels: false,
    },
    AggInfo {
        name: "quantile",
        param: true,
        keeps_labels: false,
    },
    AggInfo {
        name: "topk",
        param: true,
        keeps_labels: true,
    },
    AggInfo {
        name: "bottomk",
        param: true,
        keeps_labels: true,
    },
];

pub fn function(name: &str) -> Option<&'static FuncInfo> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

pub fn aggregation(name: &str) -> Option<&'static AggInfo> {
    AGGREGATIONS.iter().find(|a| a.name == name)
}

/// The known name closest to `name`, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    FUNCTIONS
        .iter()
        .map(|f| f.name)
        .chain(AGGREGATIONS.iter().map(|a| a.name))
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance (names are short).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
