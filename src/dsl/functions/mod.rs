//! The function registry: one definition per function of the language, the
//! only place a function's name is matched. Functions over time (their
//! range argument) are grouped by family, one file each ([`window`],
//! [`quantile`], [`counter`], [`presence`], [`forecast`]); aggregations
//! across series (an instant argument) are in [`aggregate`]; the functions
//! over classic histograms (an instant argument of bucket series, combined
//! across their `le` label) are in [`histogram`]; PromQL's functions at an
//! instant (`abs`, `round`, the clamps, `label_replace`, `vector`,
//! `scalar`, `time`, `timestamp`, `sort`, `sort_desc`) are in [`instant`].
//!
//! A definition holds everything the language knows of a function: its
//! parameters and their types, how `by`/`without` pools it, whether an
//! alert on it is noisy, and its kernel. The parser resolves each call to
//! its definition once; the checker and the engine read the definition and
//! the evaluator dispatches on the kernel, never on a name. Adding a
//! function is a definition here, its kernel in the engine (an exhaustive
//! match: the build fails without it), an entry in `docs/language.md` and
//! an expectation in `tests/lang/`; the registry test checks the last two.
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

mod aggregate;
mod counter;
mod forecast;
mod histogram;
mod instant;
mod presence;
mod quantile;
mod window;

pub use aggregate::AGGREGATIONS;

/// The label that holds a classic histogram bucket's upper bound.
pub const BUCKET_LABEL: &str = "le";

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
    /// Series at an instant (`rate(x_bucket[5m])`, `sum by (le) (...)`):
    /// the buckets of a histogram function.
    Instant,
    /// Series at an instant, any labels: the argument of a function at an
    /// instant (`abs(x)`).
    Series,
    /// A string (`label_replace`'s label names, replacement and regex).
    Text,
    /// A number that may be left out, last (`round`'s `to_nearest`).
    OptScalar,
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
    /// (`rate`, `increase`, `delta`, `deriv`, `changes`).
    Sum,
    /// Pooling is not allowed (`absent`, `present_ratio` and the predictive
    /// functions, whose meaning is per series).
    Not,
}

/// What computes a function over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    /// A kernel over each window of a series (or of a pooled group).
    OverTime(TimeFunc),
    /// `quantile(q, range)`: the quantile kernel at the first argument.
    QuantileAt,
    /// `predict(range, horizon)`: the forecast kernel at the second argument,
    /// in seconds.
    PredictAt,
    /// `absent(range)`: over all the selector's series together, 1 where no
    /// series has a sample in the window.
    Absent,
    /// A function over classic histogram buckets, at each step across the
    /// series that differ only in `le` (`engine::histogram`); its numbers
    /// are its leading arguments.
    Histogram(HistFunc),
    /// A function at an instant (`engine::instant`): per step, from its
    /// arguments' values at that step, no window.
    Instant(InstFunc),
}

/// What a function at an instant computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstFunc {
    Abs,
    Round,
    Clamp,
    ClampMin,
    ClampMax,
    LabelReplace,
    Vector,
    Scalar,
    Time,
    Timestamp,
    Sort,
    SortDesc,
}

/// What a histogram function computes from one group's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistFunc {
    /// `histogram_quantile(φ, buckets)`.
    Quantile,
    /// `histogram_fraction(lower, upper, buckets)`.
    Fraction,
}

/// A kernel over the windows of one series, with its numeric parameter
/// where it has one. The engine implements each (`engine::range`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeFunc {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    First,
    Stddev,
    Quantile(f64),
    Rate,
    Increase,
    Delta,
    Deriv,
    Changes,
    PresentRatio,
    Predict(f64),
    /// The threshold comes per step from the caller.
    TimeTo,
    Anomaly,
    Trend,
}

/// A function over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuncDef {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Argument names for messages.
    pub arg_names: &'static str,
    pub noise: Noise,
    pub pool: Pool,
    pub kernel: Kernel,
}

impl FuncDef {
    /// Index of the range argument.
    pub fn range_arg(&self) -> usize {
        self.params
            .iter()
            .position(|p| *p == Param::Range)
            .unwrap_or(0)
    }

    /// Whether `by`/`without` pools the samples of a group before the
    /// kernel runs, rather than adding up per-series results.
    pub fn pools_samples(&self) -> bool {
        self.pool == Pool::Samples
    }
}

/// What computes an aggregation across series, at each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggKernel {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Quantile,
    TopK,
    BottomK,
}

/// An aggregation across series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AggDef {
    pub name: &'static str,
    /// Takes a number first: `quantile(q, v)`, `topk(k, v)`, `bottomk(k, v)`.
    pub param: bool,
    /// Keeps each series' own labels (`topk`, `bottomk` select series);
    /// the others keep only the `by` labels, or drop the `without` ones.
    pub keeps_labels: bool,
    pub kernel: AggKernel,
}

const R: &[Param] = &[Param::Range];
const QR: &[Param] = &[Param::Scalar, Param::Range];
const RQ: &[Param] = &[Param::Range, Param::Scalar];
const RT: &[Param] = &[Param::Range, Param::Threshold];
const SI: &[Param] = &[Param::Scalar, Param::Instant];
const SSI: &[Param] = &[Param::Scalar, Param::Scalar, Param::Instant];

/// The families of functions over time, in the order the language
/// reference lists them.
pub const FAMILIES: &[(&str, &[FuncDef])] = &[
    ("windows", window::FUNCTIONS),
    ("quantiles", quantile::FUNCTIONS),
    ("counters", counter::FUNCTIONS),
    ("presence", presence::FUNCTIONS),
    ("forecasts", forecast::FUNCTIONS),
];

/// Every function over time.
pub fn functions() -> impl Iterator<Item = &'static FuncDef> {
    FAMILIES.iter().flat_map(|(_, defs)| defs.iter())
}

/// The functions over classic histograms, in the order the language
/// reference lists them (its `## Functions over histograms`).
pub fn histogram_functions() -> impl Iterator<Item = &'static FuncDef> {
    histogram::FUNCTIONS.iter()
}

/// The functions at an instant, in the order the language reference lists
/// them (its `## Functions at an instant`).
pub fn instant_functions() -> impl Iterator<Item = &'static FuncDef> {
    instant::FUNCTIONS.iter()
}

/// The definition of a function called by name: one over time, over
/// histograms or at an instant (aggregations are [`aggregation`]).
pub fn function(name: &str) -> Option<&'static FuncDef> {
    functions()
        .chain(histogram_functions())
        .chain(instant_functions())
        .find(|f| f.name == name)
}

/// How many arguments a function needs: its parameters but an optional last.
pub fn required_args(def: &FuncDef) -> usize {
    def.params
        .iter()
        .filter(|p| **p != Param::OptScalar)
        .count()
}

pub fn aggregation(name: &str) -> Option<&'static AggDef> {
    AGGREGATIONS.iter().find(|a| a.name == name)
}

/// The known name closest to `name`, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    functions()
        .chain(histogram_functions())
        .chain(instant_functions())
        .map(|f| f.name)
        .chain(AGGREGATIONS.iter().map(|a| a.name))
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// PromQL's functions over time that this language writes otherwise,
/// with the way to write them here. The one table of such hints: the
/// parser's "unknown function" help reads it through [`help_for`].
pub const PROMQL_EQUIVALENTS: &[(&str, &str)] = &[
    ("avg_over_time", "avg(x[5m])"),
    ("min_over_time", "min(x[5m])"),
    ("max_over_time", "max(x[5m])"),
    ("sum_over_time", "sum(x[5m])"),
    ("count_over_time", "count(x[5m])"),
    ("last_over_time", "last(x[5m])"),
    ("stddev_over_time", "stddev(x[5m])"),
    ("quantile_over_time", "quantile(0.95, x[5m])"),
    ("absent_over_time", "absent(x[5m])"),
    ("present_over_time", "present_ratio(x[5m]) > 0"),
    ("predict_linear", "predict(x[1h], 10m)"),
    ("irate", "rate(x[5m])"),
    ("idelta", "delta(x[5m])"),
];

/// The help for a name that is no function: this language's way to write
/// a PromQL function (`quantile_over_time(0.9, x[5m])` is
/// `quantile(0.9, x[5m])`), else the closest known name.
pub fn help_for(name: &str) -> Option<String> {
    if let Some((_, here)) = PROMQL_EQUIVALENTS.iter().find(|(p, _)| *p == name) {
        return Some(format!(
            "PromQL's `{name}` is written `{here}` here: a function over a range works over time"
        ));
    }
    suggest(name).map(|s| format!("did you mean `{s}`?"))
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
