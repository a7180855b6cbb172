//! The kernels over classic histograms: `histogram_quantile` and
//! `histogram_fraction` over bucket series, each a cumulative count of the
//! observations at or below the upper bound its `le` label names.
//!
//! At each step, the series that differ only in `le` (and that share a
//! metric name, as Prometheus groups them) form one histogram; the result
//! keeps their other labels, without the metric name. The quantile follows
//! Prometheus 2.42's `bucketQuantile` for classic buckets (promtool 2.42 is
//! the oracle of `tests/lang/promql_parity.rules`): buckets sorted by upper
//! bound, those with the same bound added together, decreasing cumulative
//! counts raised to the largest count below them, linear interpolation
//! within the bucket the rank falls in (the lowest from 0 when its bound is
//! above 0), the highest finite bound for a rank in the `+Inf` bucket, and
//! NaN without a `+Inf` bucket, with fewer than two buckets or with no
//! observation. The fraction follows Prometheus 3's `BucketFraction` for
//! classic buckets (linear interpolation within a bucket; the `+Inf`
//! bucket's observations lie above every finite bound).
//!
//! Series whose `le` is missing or does not read as a number are left out,
//! as Prometheus leaves them out.
//!
//! Each group's members are sorted by bound once; a step is then one pass
//! over them into a buffer the group reuses, so the steps allocate nothing.

use super::EngineError;
use super::value::{Labels, Series, StepValue, signature};
use crate::dsl::functions::{BUCKET_LABEL, HistFunc};
use rayon::prelude::*;
use std::collections::HashMap;

/// A histogram function's numbers: φ, or the lower and upper bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HistArgs {
    Quantile(f64),
    Fraction { lower: f64, upper: f64 },
}

impl HistArgs {
    /// The arguments of `func` from its leading numbers, in order.
    pub fn new(func: HistFunc, numbers: &[f64]) -> Option<HistArgs> {
        match (func, numbers) {
            (HistFunc::Quantile, [q]) => Some(HistArgs::Quantile(*q)),
            (HistFunc::Fraction, [lower, upper]) => Some(HistArgs::Fraction {
                lower: *lower,
                upper: *upper,
            }),
            _ => None,
        }
    }

    fn of(self, buckets: &mut [(f64, f64)]) -> f64 {
        match self {
            HistArgs::Quantile(q) => bucket_quantile(q, buckets),
            HistArgs::Fraction { lower, upper } => bucket_fraction(lower, upper, buckets),
        }
    }
}

/// The upper bound a bucket's `le` names, as Go's `strconv.ParseFloat`
/// reads it for the forms exporters write (`0.5`, `1e-3`, `+Inf`, `1.0`).
pub fn parse_le(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// `name`'s value over `series` (bucket series): one result series per
/// histogram, sorted by labels. Two histograms whose results would carry
/// the same labels (buckets of two metrics, not yet stripped of their
/// names by `rate` or an aggregation) are an error, as in Prometheus.
pub fn histograms(
    name: &str,
    args: HistArgs,
    series: Vec<Series>,
) -> Result<Vec<Series>, EngineError> {
    // (metric, labels without `le`) -> members with their bounds.
    let mut index: HashMap<(Option<String>, String), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in series {
        let Some(bound) = s.label(BUCKET_LABEL).and_then(parse_le) else {
            continue;
        };
        let labels: Labels = s
            .labels
            .iter()
            .filter(|(k, _)| k != BUCKET_LABEL)
            .cloned()
            .collect();
        let key = (s.metric.clone(), signature(&labels, None));
        let g = *index.entry(key).or_insert_with(|| {
            groups.push((s.metric.clone(), labels, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push((bound, s));
    }
    let mut seen: HashMap<String, &Option<String>> = HashMap::new();
    for (metric, labels, _) in &groups {
        if let Some(other) = seen.insert(signature(labels, None), metric) {
            let name_of = |m: &Option<String>| m.clone().unwrap_or_else(|| "(no name)".into());
            return Err(EngineError::Eval(format!(
                "`{name}`: the buckets of `{}` and of `{}` both give the series {}: apply rate() or sum by (le, ...) first, or select one metric",
                name_of(other),
                name_of(metric),
                show_labels(labels)
            )));
        }
    }
    let mut out: Vec<Series> = groups
        .into_par_iter()
        .map(|(_, labels, members)| group_values(args, labels, members))
        .filter(|s| !s.values.is_empty())
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// A histogram's metric name, labels without `le`, and buckets with their bounds.
type Group = (Option<String>, Labels, Vec<(f64, Series)>);

fn show_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// One histogram's value at each step where any of its buckets has one.
fn group_values(args: HistArgs, labels: Labels, mut members: Vec<(f64, Series)>) -> Series {
    members.sort_by(|a, b| a.0.total_cmp(&b.0));
    let start = members.iter().map(|(_, s)| s.start).min().unwrap_or(0);
    let end = members.iter().map(|(_, s)| s.end()).max().unwrap_or(start);
    let mut buf: Vec<(f64, f64)> = Vec::with_capacity(members.len());
    let values: Vec<StepValue> = (start..end.max(start))
        .map(|step| {
            buf.clear();
            for (bound, s) in &members {
                let Some(count) = s.at(step) else { continue };
                // Sorted by bound: equal bounds are neighbours, added
                // together as Prometheus's coalesceBuckets does.
                match buf.last_mut() {
                    Some(last) if last.0 == *bound => last.1 += count,
                    _ => buf.push((*bound, count)),
                }
            }
            StepValue::when(!buf.is_empty(), || args.of(&mut buf))
        })
        .collect();
    Series::new(labels, start, values).trim()
}

/// Prometheus's `bucketQuantile` (2.42) over buckets sorted by bound with
/// equal bounds already added together. Raises decreasing counts in place.
pub fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    match buckets.last() {
        Some(&(bound, _)) if bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    ensure_monotonic(buckets);
    let n = buckets.len();
    if n < 2 {
        return f64::NAN;
    }
    let observations = buckets[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let rank = q * observations;
    // The first bucket (the +Inf one aside) whose count reaches the rank, as
    // Go's sort.Search finds it: a NaN rank reaches none.
    let b = buckets[..n - 1].partition_point(|&(_, count)| {
        count
            .partial_cmp(&rank)
            .is_none_or(std::cmp::Ordering::is_lt)
    });
    if b == n - 1 {
        return buckets[n - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (end, mut count) = buckets[b];
    let (mut start, mut rank) = (0.0, rank);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Prometheus's `ensureMonotonic`: each count at least the largest before it.
fn ensure_monotonic(buckets: &mut [(f64, f64)]) {
    let Some(&(_, first)) = buckets.first() else {
        return;
    };
    let mut max = first;
    for b in buckets.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
}

/// Prometheus 3's `BucketFraction` for classic buckets (sorted, equal
/// bounds added together): the estimated share of observations between
/// `lower` and `upper`, interpolating linearly within the buckets they fall
/// in. The lowest bucket starts at 0 when its bound is above 0 (else at
/// -Inf, where no interpolation is possible and the whole bucket counts);
/// the `+Inf` bucket's observations lie above every finite bound.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &[(f64, f64)]) -> f64 {
    match buckets.last() {
        Some(&(bound, _)) if bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut low = if buckets[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(high, cum)) in buckets.iter().enumerate() {
        if i > 0 {
            low = buckets[i - 1].0;
        }
        let interpolate = |v: f64| {
            if low == f64::NEG_INFINITY {
                cum
            } else {
                rank + (cum - rank) * (v - low) / (high - low)
            }
        };
        if !lower_set && low >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && low >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && low < lower && high > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && low < upper && high > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cum;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantile_interpolates_within_the_bucket_of_the_rank() {
        // 10 at or below 0.1, 30 at or below 0.5, 40 in all.
        let mut b = [(0.1, 10.0), (0.5, 30.0), (INF, 40.0)];
        // rank 20: half way through (0.1, 0.5] (0.1 + 0.4 * 0.5 in floats).
        assert_eq!(bucket_quantile(0.5, &mut b), 0.1 + 0.4 * 0.5);
        // rank 4: the lowest bucket, from 0.
        assert!((bucket_quantile(0.1, &mut b) - 0.04).abs() < 1e-15);
        // rank 38: the +Inf bucket gives the highest finite bound.
        assert_eq!(bucket_quantile(0.95, &mut b), 0.5);
    }

    #[test]
    fn quantile_edges_are_prometheus_s() {
        let b = [(0.1, 10.0), (0.5, 30.0), (INF, 40.0)];
        assert_eq!(bucket_quantile(-0.1, &mut b.clone()), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &mut b.clone()), INF);
        assert!(bucket_quantile(f64::NAN, &mut b.clone()).is_nan());
        assert!(bucket_quantile(0.5, &mut [(0.1, 1.0), (0.5, 2.0)]).is_nan());
        assert!(bucket_quantile(0.5, &mut [(INF, 5.0)]).is_nan());
        assert!(bucket_quantile(0.5, &mut [(0.1, 0.0), (INF, 0.0)]).is_nan());
        // A lowest bound at or below 0 is the answer for a rank within it.
        assert_eq!(bucket_quantile(0.1, &mut [(-1.0, 5.0), (INF, 10.0)]), -1.0);
    }

    #[test]
    fn decreasing_counts_are_raised_before_the_search() {
        let mut b = [(0.1, 10.0), (0.5, 4.0), (1.0, 20.0), (INF, 20.0)];
        // After the fix: 10, 10, 20, 20; rank 15 is half way through (0.5, 1].
        assert_eq!(bucket_quantile(0.75, &mut b), 0.75);
        assert_eq!(b[1].1, 10.0);
    }

    #[test]
    fn fraction_interpolates_and_counts_the_inf_bucket_above_every_bound() {
        let b = [(0.1, 10.0), (0.5, 30.0), (INF, 40.0)];
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, 0.1, &b), 0.25);
        // 10 + half of (0.1, 0.5]'s 20 = 20 of 40.
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, 0.3, &b), 0.5);
        assert_eq!(bucket_fraction(0.3, INF, &b), 0.5);
        assert_eq!(bucket_fraction(0.5, 1e9, &b), 0.0);
        assert_eq!(bucket_fraction(0.5, 0.1, &b), 0.0);
        assert!(bucket_fraction(0.0, 1.0, &[(0.1, 1.0), (0.5, 2.0)]).is_nan());
        assert!(bucket_fraction(f64::NAN, 1.0, &b).is_nan());
    }

    #[test]
    fn le_reads_as_exporters_write_it() {
        assert_eq!(parse_le("+Inf"), Some(INF));
        assert_eq!(parse_le("1.0"), Some(1.0));
        assert_eq!(parse_le("1e-3"), Some(0.001));
        assert_eq!(parse_le("fast"), None);
        assert_eq!(parse_le(""), None);
    }
}
