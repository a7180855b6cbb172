//! The kernels of the functions at an instant (`dsl::functions::instant`),
//! with Prometheus's semantics: `abs`, `round` (half up, to the nearest
//! multiple), `clamp`/`clamp_min`/`clamp_max` (NaN stays NaN, as Go's
//! `math.Min`/`Max` keep it; `clamp` with min above max gives no series),
//! `label_replace` (an anchored regex, `$1` and `${name}` expanded; no
//! match keeps the series as it is, an empty result removes the label),
//! `timestamp` (the sample's time for a selector, the step's otherwise),
//! `sort`/`sort_desc` (by the value at the last step, NaN last),
//! and `vector`/`scalar`/`time` as one series without labels, because this
//! language's numbers do not change from step to step.

use super::value::{Grid, Series, StepValue};
use crate::dsl::functions::InstFunc;
use regex::Regex;

/// A number function applied to every value; the metric name goes, as
/// Prometheus drops it from a function's result.
pub fn map_values(series: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            s.metric = None;
            for v in &mut s.values {
                if let Some(x) = v.get() {
                    *v = StepValue::some(f(x));
                }
            }
            s
        })
        .collect()
}

/// Go's `math.Min`: NaN if either is NaN (Rust's `f64::min` skips NaN).
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Prometheus's `round`: half up, to the nearest multiple of `to_nearest`
/// (through its inverse, as Prometheus computes it, so results match).
pub fn round(x: f64, to_nearest: f64) -> f64 {
    let inv = 1.0 / to_nearest;
    (x * inv + 0.5).floor() / inv
}

/// The value function of `abs`, `round` and the clamps with their numbers;
/// `None` for `clamp` with min above max (no series at all).
pub fn number_func(func: InstFunc, nums: &[f64]) -> Option<Box<dyn Fn(f64) -> f64 + Sync>> {
    let n = |i: usize, default: f64| nums.get(i).copied().unwrap_or(default);
    Some(match func {
        InstFunc::Abs => Box::new(f64::abs),
        InstFunc::Round => {
            let to = n(0, 1.0);
            Box::new(move |x| round(x, to))
        }
        InstFunc::Clamp => {
            let (lo, hi) = (n(0, f64::NAN), n(1, f64::NAN));
            if hi < lo {
                return None;
            }
            Box::new(move |x| go_max(lo, go_min(hi, x)))
        }
        InstFunc::ClampMin => {
            let lo = n(0, f64::NAN);
            Box::new(move |x| go_max(lo, x))
        }
        InstFunc::ClampMax => {
            let hi = n(0, f64::NAN);
            Box::new(move |x| go_min(hi, x))
        }
        _ => return None,
    })
}

/// Prometheus's `label_replace` on each series: where `src`'s value (empty
/// when absent) matches the whole regex, `dst` becomes the expanded
/// replacement, or goes when that is empty; elsewhere the series is kept
/// as it is. The metric name stays.
pub fn label_replace(
    series: Vec<Series>,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Vec<Series>, String> {
    let re = Regex::new(&format!("^(?s:{regex})$"))
        .map_err(|e| format!("bad regex in `label_replace`: {e}"))?;
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for mut s in series {
        let value = s
            .labels
            .iter()
            .find(|(k, _)| k == src)
            .map_or("", |(_, v)| v.as_str());
        if let Some(caps) = re.captures(value) {
            let mut res = String::new();
            caps.expand(replacement, &mut res);
            s.labels.retain(|(k, _)| k != dst);
            if !res.is_empty() {
                s.labels.push((dst.to_string(), res));
                s.labels.sort();
            }
        }
        out.push(s);
    }
    // Two series made the same by the rewrite at one step: Prometheus
    // refuses the vector; so does this.
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    for w in out.windows(2) {
        if w[0].labels == w[1].labels
            && w[0].metric == w[1].metric
            && w[0].start < w[1].end()
            && w[1].start < w[0].end()
        {
            return Err(format!(
                "`label_replace` made two series with the same labels {}",
                super::value::format_labels(&w[0].labels)
            ));
        }
    }
    Ok(out)
}

/// `scalar(v)`: at each step the value of the only series with one, NaN
/// where none or several have one.
pub fn scalar(series: &[Series], grid: Grid) -> Series {
    let values = (0..grid.n)
        .map(|k| {
            let mut found = series.iter().filter_map(|s| s.at(k));
            match (found.next(), found.next()) {
                (Some(x), None) => StepValue::some(x),
                _ => StepValue::some(f64::NAN),
            }
        })
        .collect();
    Series::new(Vec::new(), 0, values)
}

/// `timestamp(selector)`: at each step, the time in seconds of the newest
/// sample in the lookback window `(t - lookback, t]` (after `offset`), as
/// Prometheus gives the sample's time rather than the step's; a stale
/// marker ends the series there. The metric name goes.
pub fn sample_timestamps(
    key_labels: &[(String, String)],
    timestamps: &[i64],
    values: &[f64],
    grid: Grid,
    offset_ms: i64,
    lookback_ms: i64,
) -> Series {
    let values = (0..grid.n)
        .map(|k| {
            let t = grid.start + k as i64 * grid.step - offset_ms;
            let i = timestamps.partition_point(|&ts| ts <= t);
            match i.checked_sub(1) {
                Some(j)
                    if timestamps[j] > t - lookback_ms && !super::value::is_stale(values[j]) =>
                {
                    StepValue::some(timestamps[j] as f64 / 1000.0)
                }
                _ => StepValue::NONE,
            }
        })
        .collect();
    Series::new(key_labels.to_vec(), 0, values)
}

/// `timestamp(v)` of anything but a selector: the step's time wherever `v`
/// has a value, as Prometheus stamps a computed value with the evaluation
/// time. The metric name goes.
pub fn step_timestamps(series: Vec<Series>, grid: Grid) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            s.metric = None;
            let start = s.start;
            for (i, v) in s.values.iter_mut().enumerate() {
                if v.get().is_some() {
                    let t = grid.start + (start + i) as i64 * grid.step;
                    *v = StepValue::some(t as f64 / 1000.0);
                }
            }
            s
        })
        .collect()
}

/// `sort`/`sort_desc`: the series ordered by their value at the last step
/// (an instant query's only one), NaN and no value last, ties by labels;
/// as in Prometheus, the order means something only at an instant, and
/// the series keep their metric name.
pub fn sort_by_value(mut series: Vec<Series>, last: usize, descending: bool) -> Vec<Series> {
    series.sort_by(|a, b| {
        let key = |s: &Series| s.at(last).filter(|x| !x.is_nan());
        let by_value = match (key(a), key(b)) {
            (Some(x), Some(y)) if descending => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_value.then_with(|| a.labels.cmp(&b.labels))
    });
    series
}

/// `vector(x)`: `x` at every step, without labels.
pub fn vector(x: f64, grid: Grid) -> Series {
    Series::new(Vec::new(), 0, vec![StepValue::some(x); grid.n])
}

/// `time()`: each step's time in seconds, without labels.
pub fn time(grid: Grid) -> Series {
    let values = (0..grid.n)
        .map(|k| StepValue::some((grid.start + k as i64 * grid.step) as f64 / 1000.0))
        .collect();
    Series::new(Vec::new(), 0, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(label: &str, x: Option<f64>) -> Series {
        let v = x.map_or(StepValue::NONE, StepValue::some);
        Series::new(vec![("a".into(), label.into())], 0, vec![v])
    }

    fn order(v: &[Series]) -> Vec<&str> {
        v.iter().map(|s| s.labels[0].1.as_str()).collect()
    }

    #[test]
    fn sort_orders_by_value_with_nan_last_both_ways() {
        let input = || {
            vec![
                one("nan", Some(f64::NAN)),
                one("three", Some(3.0)),
                one("minus", Some(-1.0)),
                one("ten", Some(10.0)),
            ]
        };
        assert_eq!(
            order(&sort_by_value(input(), 0, false)),
            ["minus", "three", "ten", "nan"]
        );
        assert_eq!(
            order(&sort_by_value(input(), 0, true)),
            ["ten", "three", "minus", "nan"]
        );
    }

    #[test]
    fn round_is_half_up_as_in_prometheus() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(2.5, 2.0), 2.0);
    }
}
