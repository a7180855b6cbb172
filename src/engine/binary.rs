//! Operators between values, step by step: arithmetic and comparisons
//! (with `bool`) between numbers and series, one-to-one vector matching on
//! identical label sets or the `on` labels (which are then the only labels
//! kept), and the set operators `and`, `or` and `unless`, as PromQL has them.

use super::EngineError;
use super::eval::sorted;
use super::value::{Series, StepValue, Value, format_labels, group_labels, signature};
use crate::dsl::ast::BinOp;
use rayon::prelude::*;
use std::collections::HashMap;

/// One step's result of `l op r` for two present values: the value to keep, if any.
pub(super) fn combine(
    op: BinOp,
    return_bool: bool,
    l: f64,
    r: f64,
    keep_left: bool,
) -> Option<f64> {
    if op.is_comparison() {
        let holds = op.holds(l, r);
        if return_bool {
            Some(if holds { 1.0 } else { 0.0 })
        } else if holds {
            Some(if keep_left { l } else { r })
        } else {
            None
        }
    } else {
        Some(op.arith(l, r))
    }
}

/// Applies a binary operator to two values.
pub(super) fn binary_values(
    op: BinOp,
    return_bool: bool,
    on: Option<&[String]>,
    lhs: Value,
    rhs: Value,
) -> Result<Value, EngineError> {
    match (lhs, rhs) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if op.is_set() {
                return Err(EngineError::Eval(format!(
                    "`{}` needs series on both sides",
                    op.symbol()
                )));
            }
            Ok(Value::Scalar(op.on_numbers(a, b).unwrap_or(0.0)))
        }
        (Value::Vector(_), Value::Scalar(_)) | (Value::Scalar(_), Value::Vector(_))
            if op.is_set() =>
        {
            Err(EngineError::Eval(format!(
                "`{}` needs series on both sides",
                op.symbol()
            )))
        }
        (Value::Vector(v), Value::Scalar(x)) => {
            one_per_label_set(vector_scalar(op, return_bool, v, x, false), op).map(Value::Vector)
        }
        (Value::Scalar(x), Value::Vector(v)) => {
            one_per_label_set(vector_scalar(op, return_bool, v, x, true), op).map(Value::Vector)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            let out = if op.is_set() {
                set_op(op, on, l, r)
            } else {
                vector_vector(op, return_bool, on, l, r)?
            };
            one_per_label_set(out, op).map(Value::Vector)
        }
    }
}

pub(super) fn vector_scalar(
    op: BinOp,
    return_bool: bool,
    v: Vec<Series>,
    x: f64,
    scalar_left: bool,
) -> Vec<Series> {
    let drop_name = !op.is_comparison() || return_bool;
    v.into_par_iter()
        .map(|mut s| {
            with_scalar(op, return_bool, &mut s.values, x, scalar_left);
            if drop_name {
                s.metric = None;
            }
            s.trim()
        })
        .filter(|s| !s.values.is_empty())
        .collect()
}

/// Runs `$run` with `$apply` bound to `|l, r| combine(op, ...)` for the
/// operator fixed at compile time (the common ones), so that a loop inside
/// `$run` does not match the operator at every step: over a week's 10k
/// steps of hundreds of series that cost more than the arithmetic.
macro_rules! with_fixed_op {
    ($op:expr, $return_bool:expr, $keep_left:expr, |$apply:ident| $run:expr) => {
        with_fixed_op!(@ $op, $return_bool, $keep_left, $apply, $run; Add Sub Mul Div Gt Lt Ge Le Eq Ne)
    };
    (@ $op:expr, $return_bool:expr, $keep_left:expr, $apply:ident, $run:expr; $($name:ident)*) => {
        match $op {
            $(BinOp::$name => {
                let $apply = |l: f64, r: f64| combine(BinOp::$name, $return_bool, l, r, $keep_left);
                $run
            })*
            other => {
                let $apply = |l: f64, r: f64| combine(other, $return_bool, l, r, $keep_left);
                $run
            }
        }
    };
}

/// `value op x` (or `x op value`) at every present step.
pub(super) fn with_scalar(
    op: BinOp,
    return_bool: bool,
    values: &mut [StepValue],
    x: f64,
    scalar_left: bool,
) {
    fn each(values: &mut [StepValue], f: impl Fn(f64) -> Option<f64>) {
        for slot in values.iter_mut() {
            if let Some(v) = slot.get() {
                *slot = f(v).into();
            }
        }
    }
    // A comparison keeps the series' value whichever side it is on.
    with_fixed_op!(op, return_bool, !scalar_left, |apply| if scalar_left {
        each(values, |v| apply(x, v))
    } else {
        each(values, |v| apply(v, x))
    })
}

/// `l op r` at every step of `l` (empty where either has no value), for a
/// left series with one partner on the right: no step can match twice, and
/// the steps pair up over the overlap of the two spans.
pub(super) fn with_partner(op: BinOp, return_bool: bool, l: &Series, r: &Series) -> Vec<StepValue> {
    let mut values = vec![StepValue::NONE; l.values.len()];
    let (lo, hi) = (l.start.max(r.start), l.end().min(r.end()));
    if lo < hi {
        let out = &mut values[lo - l.start..hi - l.start];
        let pairs = || {
            l.values[lo - l.start..hi - l.start]
                .iter()
                .zip(&r.values[lo - r.start..hi - r.start])
        };
        with_fixed_op!(op, return_bool, true, |apply| {
            for (slot, (a, b)) in out.iter_mut().zip(pairs()) {
                if let (Some(a), Some(b)) = (a.get(), b.get()) {
                    *slot = apply(a, b).into();
                }
            }
        })
    }
    values
}

pub(super) fn match_key(s: &Series, on: Option<&[String]>) -> String {
    signature(&s.labels, on)
}

pub(super) fn vector_vector(
    op: BinOp,
    return_bool: bool,
    on: Option<&[String]>,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
) -> Result<Vec<Series>, EngineError> {
    let mut right: HashMap<String, Vec<&Series>> = HashMap::new();
    for s in &rhs {
        right.entry(match_key(s, on)).or_default().push(s);
    }
    let mut left_count: HashMap<String, usize> = HashMap::new();
    for s in &lhs {
        *left_count.entry(match_key(s, on)).or_default() += 1;
    }
    // Series by series in parallel; the first error in the left's order wins.
    let each = lhs
        .into_par_iter()
        .map(|l| -> Result<Option<(String, Series)>, EngineError> {
        let key = match_key(&l, on);
        let Some(partners) = right.get(&key) else {
            return Ok(None);
        };
        // One-to-one matching on `on (...)` keeps only those labels, as PromQL does.
        let labels = match on {
            Some(names) => group_labels(&l.labels, names, false),
            None => l.labels.clone(),
        };
        let values = match partners.as_slice() {
            // One partner: the usual case.
            [r] => with_partner(op, return_bool, &l, r),
            _ => {
                let mut values = Vec::with_capacity(l.values.len());
                for (i, lv) in l.values.iter().enumerate() {
                    let step = l.start + i;
                    let Some(lv) = lv.get() else {
                        values.push(StepValue::NONE);
                        continue;
                    };
                    let mut found = partners.iter().filter_map(|r| r.at(step));
                    let rv = found.next();
                    if rv.is_some() && found.next().is_some() {
                        return Err(EngineError::Eval(format!(
                            "several series on the right of `{}` match {}: match on fewer labels with on(...)",
                            op.symbol(),
                            format_labels(&labels)
                        )));
                    }
                    values.push(rv.and_then(|rv| combine(op, return_bool, lv, rv, true)).into());
                }
                values
            }
        };
        let keep_name = op.is_comparison() && !return_bool;
        let s = Series {
            metric: if keep_name { l.metric.clone() } else { None },
            labels,
            start: l.start,
            values,
        }
        .trim();
        Ok((!s.values.is_empty()).then_some((key, s)))
    });
    let each: Vec<Result<Option<(String, Series)>, EngineError>> = each.collect();
    let mut out = Vec::with_capacity(each.len());
    let mut shared_keys: HashMap<String, Vec<usize>> = HashMap::new();
    for s in each {
        if let Some((key, s)) = s? {
            if left_count.get(&key).is_some_and(|&n| n > 1) {
                shared_keys.entry(key).or_default().push(out.len());
            }
            out.push(s);
        }
    }
    // As in PromQL, several left series that match one key are an error
    // only at a step where more than one of them gives a result: a series
    // that ends where another with the same key begins (a label that
    // changed) is no conflict, and `one_per_label_set` joins them.
    let mut groups: Vec<&Vec<usize>> = shared_keys.values().filter(|g| g.len() > 1).collect();
    groups.sort_unstable_by_key(|g| g[0]);
    for group in groups {
        if interleaved(group.iter().map(|&i| &out[i])).is_none() {
            return Err(EngineError::Eval(format!(
                "several series on the left of `{}` match {}: match on more labels, or aggregate first",
                op.symbol(),
                format_labels(&out[group[0]].labels)
            )));
        }
    }
    Ok(sorted(out))
}

/// One series per label set and name, as a PromQL result holds: series
/// that an operation left alike (`or` of two sides, arithmetic that dropped
/// two names, left series of one match key) become one where their steps
/// do not meet, and are an error where they do (Prometheus's "vector
/// cannot contain metrics with the same labelset").
pub(super) fn one_per_label_set(
    series: Vec<Series>,
    op: BinOp,
) -> Result<Vec<Series>, EngineError> {
    let alike = |a: &Series, b: &Series| a.labels == b.labels && a.metric == b.metric;
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut rest = sorted(series).into_iter().peekable();
    while let Some(first) = rest.next() {
        if rest.peek().is_none_or(|next| !alike(&first, next)) {
            out.push(first);
            continue;
        }
        let mut run = vec![first];
        while let Some(next) = rest.next_if(|next| alike(&run[0], next)) {
            run.push(next);
        }
        let one = interleaved(run.iter()).ok_or_else(|| {
            EngineError::Eval(format!(
                "`{}` gives two series {}{} at one step: keep a label that tells them apart, or aggregate first",
                op.symbol(),
                run[0].metric.as_deref().unwrap_or(""),
                format_labels(&run[0].labels)
            ))
        })?;
        out.push(one);
    }
    Ok(out)
}

/// Series with the same labels as one, or `None` where two of them have a
/// value at one step.
pub(super) fn interleaved<'s>(parts: impl Iterator<Item = &'s Series> + Clone) -> Option<Series> {
    let first = parts.clone().next()?;
    let start = parts.clone().map(|s| s.start).min()?;
    let end = parts.clone().map(Series::end).max()?;
    let mut values = vec![StepValue::NONE; end - start];
    for s in parts {
        for (i, v) in s.values.iter().enumerate() {
            let slot = &mut values[s.start + i - start];
            if v.is_some() {
                if slot.is_some() {
                    return None;
                }
                *slot = *v;
            }
        }
    }
    Some(Series {
        metric: first.metric.clone(),
        labels: first.labels.clone(),
        start,
        values,
    })
}

/// `l and r` (`keep_where_present`) or `l unless r` for a left series with
/// one partner: `l`'s values stay where `r` has a value at the same step,
/// or where it has none. Step by step over the overlap of the two spans,
/// where a search of the partners at every step cost more than the rule.
pub(super) fn mask_by_partner(l: &mut Series, r: &Series, keep_where_present: bool) {
    let (lo, hi) = (l.start.max(r.start), l.end().min(r.end()));
    if lo >= hi {
        if keep_where_present {
            l.values.fill(StepValue::NONE);
        }
        return;
    }
    let (before, rest) = l.values.split_at_mut(lo - l.start);
    let (overlap, after) = rest.split_at_mut(hi - lo);
    if keep_where_present {
        before.fill(StepValue::NONE);
        after.fill(StepValue::NONE);
    }
    for (slot, there) in overlap
        .iter_mut()
        .zip(&r.values[lo - r.start..hi - r.start])
    {
        if there.is_some() != keep_where_present {
            *slot = StepValue::NONE;
        }
    }
}

pub(super) fn set_op(
    op: BinOp,
    on: Option<&[String]>,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
) -> Vec<Series> {
    let present = |side: &[Series]| -> HashMap<String, Vec<(usize, usize, usize)>> {
        let mut m: HashMap<String, Vec<(usize, usize, usize)>> = HashMap::new();
        for (i, s) in side.iter().enumerate() {
            m.entry(match_key(s, on))
                .or_default()
                .push((i, s.start, s.end()));
        }
        m
    };
    let any_at = |side: &[Series], idx: Option<&Vec<(usize, usize, usize)>>, step: usize| {
        idx.is_some_and(|v| {
            v.iter()
                .any(|&(i, s, e)| step >= s && step < e && side[i].at(step).is_some())
        })
    };
    let right_idx = present(&rhs);
    let mut out: Vec<Series> = Vec::new();
    match op {
        BinOp::And | BinOp::Unless => {
            out = lhs
                .into_par_iter()
                .filter_map(|mut l| {
                    let idx = right_idx.get(&match_key(&l, on));
                    match idx.map(Vec::as_slice) {
                        None if op == BinOp::And => return None,
                        None => {}
                        Some(&[(i, _, _)]) => mask_by_partner(&mut l, &rhs[i], op == BinOp::And),
                        Some(_) => {
                            for (i, slot) in l.values.iter_mut().enumerate() {
                                let there = any_at(&rhs, idx, l.start + i);
                                if there != (op == BinOp::And) {
                                    *slot = StepValue::NONE;
                                }
                            }
                        }
                    }
                    let l = l.trim();
                    (!l.values.is_empty()).then_some(l)
                })
                .collect();
        }
        _ => {
            let left_idx = present(&lhs);
            for mut r in rhs.iter().cloned() {
                let idx = left_idx.get(&match_key(&r, on));
                for (i, slot) in r.values.iter_mut().enumerate() {
                    if any_at(&lhs, idx, r.start + i) {
                        *slot = StepValue::NONE;
                    }
                }
                let r = r.trim();
                if !r.values.is_empty() {
                    out.push(r);
                }
            }
            out.extend(lhs);
        }
    }
    sorted(out)
}
