//! What expressions evaluate to: a number, or a set of series that each hold
//! one optional value per evaluation step of a [`Grid`].
//!
//! Series are sparse in time: a series stores values only over the span of
//! steps where it can have any (`start..start + values.len()`), because one
//! MCP session is a series of its own and lives for minutes of a week.

use crate::time::{MAX_STORED_MS, MIN_STORED_MS};
use std::collections::HashMap;

/// Sorted (name, value) pairs, the metric name excluded.
pub type Labels = Vec<(String, String)>;

/// The evaluation steps: `start`, `start + step`, ..., `n` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    /// Steps from `from` to `to` inclusive.
    pub fn range(from: i64, to: i64, step: i64) -> Grid {
        let step = step.max(1);
        let n = if to < from {
            0
        } else {
            ((to - from) / step) as usize + 1
        };
        Grid {
            start: from,
            step,
            n,
        }
    }

    /// Steps from `from` to `to` inclusive, refused when the step is not
    /// positive, `to` is before `from`, a bound lies outside the years
    /// 0000-9999 (where windows reaching back from it could overflow), or
    /// there would be more than [`MAX_STEPS`](crate::dsl::MAX_STEPS): the
    /// one guard of `query`, `backtest` and `report`.
    pub fn checked_range(from: i64, to: i64, step: i64) -> Result<Grid, GridError> {
        if step <= 0 {
            return Err(GridError::StepNotPositive);
        }
        for (bound, t) in [(Bound::From, from), (Bound::To, to)] {
            if !(MIN_STORED_MS..=MAX_STORED_MS).contains(&t) {
                return Err(GridError::OutOfYears(bound));
            }
        }
        if to < from {
            return Err(GridError::Reversed);
        }
        // Within the years 0000-9999 the span fits an i64 many times over.
        let steps = ((to - from) / step) as u64 + 1;
        if steps > crate::dsl::MAX_STEPS {
            return Err(GridError::TooManySteps(steps));
        }
        Ok(Grid::range(from, to, step))
    }

    /// One step at `t`.
    pub fn instant(t: i64) -> Grid {
        Grid {
            start: t,
            step: 1,
            n: 1,
        }
    }

    pub fn time(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        self.time(self.n.saturating_sub(1))
    }

    /// The first step at or after `t` (may be `n`).
    pub fn first_at_or_after(&self, t: i64) -> usize {
        if t <= self.start {
            return 0;
        }
        let k = (t - self.start + self.step - 1) / self.step;
        (k as usize).min(self.n)
    }
}

/// Which end of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    From,
    To,
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bound::From => "start",
            Bound::To => "end",
        })
    }
}

/// Why [`Grid::checked_range`] refused a range. The messages name no flag:
/// the caller knows which flag or setting gave the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    #[error("the step must be longer than 0")]
    StepNotPositive,
    #[error("the end is before the start")]
    Reversed,
    #[error("the {0} is outside the years 0000-9999")]
    OutOfYears(Bound),
    #[error("{0} steps is more than the {max} allowed: choose a larger step or a shorter range", max = crate::dsl::MAX_STEPS)]
    TooManySteps(u64),
}

/// A step's value, or none, in the eight bytes of an `f64` where an
/// `Option<f64>` takes sixteen: series are long (a week at 1m is 10k steps)
/// and most of the engine's work is passes over them, so their memory
/// traffic is most of its time. None is one signalling NaN, which no
/// arithmetic yields (it returns quiet NaNs); a value with exactly those
/// bits is stored as the ordinary NaN instead, which prints and compares
/// the same.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct StepValue(u64);

/// The bits of [`StepValue::NONE`]: a positive signalling NaN with payload 1.
const NONE_BITS: u64 = 0x7ff0_0000_0000_0001;

impl StepValue {
    pub const NONE: StepValue = StepValue(NONE_BITS);

    #[inline]
    pub fn some(v: f64) -> StepValue {
        let bits = v.to_bits();
        StepValue(if bits == NONE_BITS {
            f64::NAN.to_bits()
        } else {
            bits
        })
    }

    /// The value of `value()` where `present`, else none (the value is
    /// only computed where present: a window's newest sample exists only
    /// in a window that holds some).
    #[inline]
    pub fn when(present: bool, value: impl FnOnce() -> f64) -> StepValue {
        if present {
            StepValue::some(value())
        } else {
            StepValue::NONE
        }
    }

    #[inline]
    pub fn get(self) -> Option<f64> {
        (self.0 != NONE_BITS).then(|| f64::from_bits(self.0))
    }

    #[inline]
    pub fn is_some(self) -> bool {
        self.0 != NONE_BITS
    }

    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == NONE_BITS
    }
}

impl Default for StepValue {
    fn default() -> StepValue {
        StepValue::NONE
    }
}

impl From<Option<f64>> for StepValue {
    #[inline]
    fn from(v: Option<f64>) -> StepValue {
        v.map_or(StepValue::NONE, StepValue::some)
    }
}

/// As `Option<f64>` compares: NaN differs from itself.
impl PartialEq for StepValue {
    fn eq(&self, other: &StepValue) -> bool {
        self.get() == other.get()
    }
}

impl PartialEq<Option<f64>> for StepValue {
    fn eq(&self, other: &Option<f64>) -> bool {
        self.get() == *other
    }
}

impl std::fmt::Debug for StepValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Step values from optional ones, as tests write them.
#[cfg(test)]
pub(crate) fn step_values(values: impl IntoIterator<Item = Option<f64>>) -> Vec<StepValue> {
    values.into_iter().map(StepValue::from).collect()
}

/// One output series: labels and the values over a span of steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Kept by selectors and filters, dropped by functions and arithmetic, as in Prometheus.
    pub metric: Option<String>,
    pub labels: Labels,
    /// The step of `values[0]`.
    pub start: usize,
    pub values: Vec<StepValue>,
}

impl Series {
    pub fn new(labels: Labels, start: usize, values: Vec<StepValue>) -> Series {
        Series {
            metric: None,
            labels,
            start,
            values,
        }
    }

    /// The value at step `k`, if any.
    pub fn at(&self, k: usize) -> Option<f64> {
        k.checked_sub(self.start)
            .and_then(|i| self.values.get(i).and_then(|v| v.get()))
    }

    pub fn end(&self) -> usize {
        self.start + self.values.len()
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].1.as_str())
    }

    /// Whether any step has a value.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(|v| v.is_none())
    }

    /// Drops trailing steps without values, and leading ones when they are
    /// at least a quarter of the steps: dropping them moves every value
    /// down, a copy of the whole series that a few empty steps at the start
    /// (windows not needed there) do not repay. A step without a value
    /// means the same wherever it is.
    pub fn trim(mut self) -> Series {
        let first = self.values.iter().position(|v| v.is_some());
        match first {
            None => {
                self.values.clear();
            }
            Some(f) => {
                let last = self.values.iter().rposition(|v| v.is_some()).unwrap_or(f);
                self.values.truncate(last + 1);
                if f >= self.values.len() / 4 {
                    self.values.drain(..f);
                    self.start += f;
                }
            }
        }
        self
    }
}

/// A set of grid steps (indices `0..n`), as a bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSet {
    words: Vec<u64>,
}

impl StepSet {
    /// No step of a grid of `n`.
    pub fn empty(n: usize) -> StepSet {
        StepSet {
            words: vec![0; n.div_ceil(64)],
        }
    }

    /// The steps at which a series holds a value.
    pub fn insert_present(&mut self, s: &Series) {
        for (i, v) in s.values.iter().enumerate() {
            let k = s.start + i;
            if v.is_some()
                && let Some(w) = self.words.get_mut(k / 64)
            {
                *w |= 1 << (k % 64);
            }
        }
    }

    pub fn contains(&self, k: usize) -> bool {
        self.words
            .get(k / 64)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Keeps only the steps that `other` holds too.
    pub fn intersect(&mut self, other: &StepSet) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= o;
        }
    }
}

/// A value of an expression over the grid.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number, the same at every step.
    Scalar(f64),
    Vector(Vec<Series>),
}

impl Value {
    /// How many values it holds: series times their steps (1 for a number).
    pub fn cells(&self) -> usize {
        match self {
            Value::Scalar(_) => 1,
            Value::Vector(v) => v.iter().map(|s| s.values.len()).sum(),
        }
    }
}

/// A label set as Prometheus prints it: `{k="v", ...}`.
pub fn format_labels(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        push_quoted(&mut out, v);
    }
    out.push('}');
    out
}

/// `v` in double quotes with Go's `%q` escapes, as Prometheus prints a
/// label value: `\\`, `\"`, `\n`, `\t` and the like, `\xNN` or `\uNNNN` for
/// other control characters and line separators. A value then stays on one
/// line of a table and reads back unambiguously.
pub fn push_quoted(out: &mut String, v: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The identity of a label set for matching and grouping: the values of the
/// chosen labels (all of them when `names` is `None`), joined unambiguously.
pub fn signature(labels: &Labels, names: Option<&[String]>) -> String {
    let mut s = String::new();
    match names {
        None => {
            for (k, v) in labels {
                s.push_str(k);
                s.push('\u{1}');
                s.push_str(v);
                s.push('\u{2}');
            }
        }
        Some(names) => {
            for n in names {
                if let Ok(i) = labels.binary_search_by(|(k, _)| k.as_str().cmp(n)) {
                    s.push_str(n);
                    s.push('\u{1}');
                    s.push_str(&labels[i].1);
                }
                s.push('\u{2}');
            }
        }
    }
    s
}

/// The labels a `by (names)` group keeps, or those left after `without (names)`.
pub fn group_labels(labels: &Labels, names: &[String], without: bool) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| names.iter().any(|n| n == k) != without)
        .cloned()
        .collect()
}

/// Groups items by the label set `key` gives, keeping first-seen order.
pub fn group_by<T>(items: impl IntoIterator<Item = (Labels, T)>) -> Vec<(Labels, Vec<T>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<T>)> = Vec::new();
    for (labels, item) in items {
        let sig = signature(&labels, None);
        match index.get(&sig) {
            Some(&i) => groups[i].1.push(item),
            None => {
                index.insert(sig, groups.len());
                groups.push((labels, vec![item]));
            }
        }
    }
    groups
}

// Test series use the staleness marker for `stale`; ranges skip it.
pub use crate::model::{STALE_NAN_BITS, is_stale, stale_nan};

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimming keeps every step's reading; it drops the empty end, and the
    /// empty start only when that is a quarter of the steps or more.
    #[test]
    fn trim_keeps_every_reading_and_drops_long_empty_ends() {
        for lead in [0usize, 1, 3, 9, 40] {
            let mut values = vec![None; lead];
            values.extend((0..30).map(|i| (i % 4 != 1).then_some(i as f64)));
            values.extend([None, None]);
            let untrimmed = Series::new(Labels::default(), 5, step_values(values));
            let trimmed = untrimmed.clone().trim();
            for k in 0..100 {
                assert_eq!(trimmed.at(k), untrimmed.at(k), "lead {lead}, step {k}");
            }
            assert_eq!(trimmed.end(), 5 + lead + 29);
            let dropped = lead >= (lead + 29) / 4;
            assert_eq!(
                trimmed.start,
                if dropped { 5 + lead } else { 5 },
                "lead {lead}"
            );
        }
        assert!(
            Series::new(Labels::default(), 2, vec![StepValue::NONE; 7])
                .trim()
                .values
                .is_empty()
        );
    }

    #[test]
    fn grid_steps_and_bounds() {
        let g = Grid::range(0, 600_000, 60_000);
        assert_eq!(g.n, 11);
        assert_eq!(g.time(10), 600_000);
        assert_eq!(g.first_at_or_after(60_001), 2);
        assert_eq!(g.first_at_or_after(-5), 0);
        assert_eq!(g.first_at_or_after(10_000_000), 11);
        assert_eq!(Grid::range(10, 0, 1).n, 0);
    }

    #[test]
    fn trim_keeps_the_span_with_values() {
        let values = step_values([None, Some(1.0), None, Some(2.0), None]);
        let s = Series::new(vec![], 3, values).trim();
        assert_eq!(s.start, 4);
        assert_eq!(s.values, vec![Some(1.0), None, Some(2.0)]);
        assert_eq!(s.at(6), Some(2.0));
        assert_eq!(s.at(3), None);
        assert!(
            Series::new(vec![], 0, vec![StepValue::NONE])
                .trim()
                .values
                .is_empty()
        );
    }

    /// Every f64 is a value, NaNs too, the one with the bits that stand for
    /// none included (it becomes the ordinary NaN); none is none.
    #[test]
    fn step_values_hold_every_f64_and_none() {
        let specials = [
            0.0,
            -0.0,
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            -f64::NAN,
            // Prometheus's staleness marker.
            f64::from_bits(0x7ff0_0000_0000_0002),
        ];
        for v in specials {
            let got = StepValue::some(v).get().expect("a value");
            assert_eq!(got.to_bits(), v.to_bits());
            assert!(StepValue::some(v).is_some());
        }
        let lookalike = StepValue::some(f64::from_bits(NONE_BITS));
        assert!(lookalike.is_some());
        assert!(lookalike.get().is_some_and(f64::is_nan));
        assert!(StepValue::some(-f64::from_bits(NONE_BITS)).is_some());
        assert!(StepValue::NONE.is_none());
        assert_eq!(StepValue::NONE.get(), None);
        assert_eq!(StepValue::from(None), StepValue::NONE);
        assert_eq!(StepValue::from(Some(2.0)).get(), Some(2.0));
        assert_eq!(StepValue::default(), StepValue::NONE);
        assert_eq!(std::mem::size_of::<StepValue>(), 8);
    }

    #[test]
    fn signatures_separate_missing_and_empty() {
        let a: Labels = vec![("a".into(), "1".into())];
        let b: Labels = vec![("b".into(), "1".into())];
        let names = ["a".to_string(), "b".to_string()];
        assert_ne!(signature(&a, Some(&names)), signature(&b, Some(&names)));
        assert_ne!(signature(&a, None), signature(&b, None));
    }
}
