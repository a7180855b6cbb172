//! The evaluator: an expression of the rule language over every step of a
//! grid at once.
//!
//! Selectors read their series from a [`Source`]; functions over time run per
//! series (or per pooled group) in parallel with rayon; aggregations,
//! operators and set operations then work step by step across series.
//! Semantics follow PromQL where the names are shared: instant selectors look
//! back 5m for the newest sample, a staleness marker ends a series, one-to-one
//! matching on identical label sets (or the `on` labels, which are then the
//! only labels kept), comparisons filter unless `bool` is given.

use super::EngineError;
use super::binary::{binary_values, match_key};
use super::budget::{Budget, Scope};
use super::histogram::{HistArgs, histograms};
use super::plan::{Plan, Shape, label_names};
use super::range::{self, Span, TimeFunc, WindowCache, over_time, over_time_shared};
use super::source::Source;
use super::value::{
    Grid, Labels, Series, StepSet, StepValue, Value, group_by, group_labels, is_stale, signature,
};
use crate::dsl::ast::{Aggregate, BinOp, Binary, Call, Expr, Grouping, Selector};
use crate::dsl::functions::{AggKernel, FuncDef, HistFunc, InstFunc, Kernel};
use crate::model::MatchOp;
use crate::store::SeriesData;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How far an instant selector looks back for a series' newest sample.
pub const LOOKBACK_MS: i64 = 5 * 60_000;

/// The samples of one pooled group: every member's samples, merged in time
/// order when a function first needs that order (`count` over whole steps
/// does not, and reads the members as they are).
struct Pooled {
    labels: Labels,
    members: Vec<Arc<SeriesData>>,
    /// Whether any member holds a stale marker (merging drops them).
    stale: bool,
    merged: OnceLock<(Vec<i64>, Vec<f64>)>,
    /// What the calls over this group share (step counts, value ranks).
    cache: WindowCache,
}

impl Pooled {
    fn new(labels: Labels, members: Vec<Arc<SeriesData>>) -> Pooled {
        let stale = members
            .iter()
            .any(|s| s.values.iter().any(|v| is_stale(*v)));
        Pooled {
            labels,
            members,
            stale,
            merged: OnceLock::new(),
            cache: WindowCache::default(),
        }
    }

    /// The group's samples in time order, stale markers left out.
    fn samples(&self) -> (&[i64], &[f64]) {
        if let ([only], false) = (self.members.as_slice(), self.stale) {
            return (&only.timestamps, &only.values);
        }
        let (ts, vs) = self.merged.get_or_init(|| {
            if !self.stale && self.members.len() <= MERGED_BY_COPY {
                let runs: Vec<(&[i64], &[f64])> = self
                    .members
                    .iter()
                    .map(|s| (&s.timestamps[..], &s.values[..]))
                    .collect();
                return merged_by_copy(&runs);
            }
            let total: usize = self.members.iter().map(|s| s.timestamps.len()).sum();
            let mut pairs: Vec<(i64, f64)> = Vec::with_capacity(total);
            for s in &self.members {
                for (&t, &v) in s.timestamps.iter().zip(&s.values) {
                    if !is_stale(v) {
                        pairs.push((t, v));
                    }
                }
            }
            pairs.sort_by_key(|p| p.0);
            pairs.into_iter().unzip()
        });
        (ts, vs)
    }

    /// The value of `func` at every step (that `needed` holds, when given).
    fn over_time(
        &self,
        func: TimeFunc,
        span: &Span,
        needed: Option<&StepSet>,
    ) -> (usize, Vec<StepValue>) {
        if func == TimeFunc::Count && !self.stale {
            let runs: Vec<&[i64]> = self.members.iter().map(|s| &s.timestamps[..]).collect();
            if let Some(counted) = range::count_of_runs(&runs, &self.cache, span) {
                return counted;
            }
        }
        let (ts, vs) = self.samples();
        over_time_shared(func, ts, vs, Some(&self.cache), needed, span, &|_| None)
    }
}

/// Groups of at most this many members merge by [`merged_by_copy`]; more
/// are sorted (finding the next head costs a look at every member).
const MERGED_BY_COPY: usize = 8;

/// Sorted runs merged into one series in time order, stably: at equal
/// times the earlier run's samples come first, as a stable sort of the
/// runs one after another orders them. Each stretch of the output is
/// copied whole from the run whose head comes first, up to the next head
/// of any other run (found by galloping): a latency group, whose calls
/// nearly all come from one member (those without an error), costs about
/// one copy where the sort of (time, value) pairs took four passes.
fn merged_by_copy(runs: &[(&[i64], &[f64])]) -> (Vec<i64>, Vec<f64>) {
    let total = runs.iter().map(|r| r.0.len().min(r.1.len())).sum();
    let (mut ts, mut vs) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut next = vec![0usize; runs.len()];
    let head = |m: usize, next: &[usize]| {
        let (t, v) = runs[m];
        t.get(next[m]).filter(|_| next[m] < v.len()).copied()
    };
    loop {
        // The run whose head comes first, the earliest run at a tie.
        let mut first: Option<(usize, i64)> = None;
        for m in 0..runs.len() {
            if let Some(t) = head(m, &next)
                && first.is_none_or(|(_, f)| t < f)
            {
                first = Some((m, t));
            }
        }
        let Some((m, _)) = first else {
            break;
        };
        // Its samples before every earlier run's head and up to every
        // later run's head come next.
        let mut below: Option<i64> = None;
        let mut up_to: Option<i64> = None;
        for other in (0..runs.len()).filter(|&o| o != m) {
            if let Some(t) = head(other, &next) {
                let limit = if other < m { &mut below } else { &mut up_to };
                *limit = Some(limit.map_or(t, |l| l.min(t)));
            }
        }
        let fits = |t: i64| below.is_none_or(|b| t < b) && up_to.is_none_or(|u| t <= u);
        let (run_ts, run_vs) = runs[m];
        let end = run_ts.len().min(run_vs.len());
        let from = next[m];
        let take = leading(&run_ts[from..end], fits);
        ts.extend_from_slice(&run_ts[from..from + take]);
        vs.extend_from_slice(&run_vs[from..from + take]);
        next[m] += take;
    }
    (ts, vs)
}

/// How many of the leading elements of `sorted` satisfy `holds`, which
/// holds on a prefix: by doubling steps, then a binary search in the last
/// one, so a short stretch costs a few looks however long the rest is.
fn leading(sorted: &[i64], holds: impl Fn(i64) -> bool) -> usize {
    let (mut done, mut step) = (0, 1);
    while done + step <= sorted.len() && holds(sorted[done + step - 1]) {
        done += step;
        step *= 2;
    }
    let rest = &sorted[done..sorted.len().min(done + step)];
    done + rest.partition_point(|&t| holds(t))
}

/// The steps at which enclosing `and`s will read an expression's series.
/// `a and b` keeps `a`'s values only where a series of `b` with the same
/// match key has one, so `b` is evaluated first and `a` may leave the other
/// steps empty. The latency rule's two p95s then rank only the windows where
/// its `count(...) >= 30` holds, about half of them.
///
/// Each entry is one `and`'s right-hand side; a series is needed at the
/// steps that all of them hold for its labels, and no entry: at every step.
/// Operators that work step by step on series that keep their labels pass a
/// demand on; anything else evaluates in full, `or` and `unless` too (a side
/// left empty at a step that is not needed would let the other side's
/// series through there, and two series of one label set could then meet a
/// later operator). So evaluation under a demand only ever leaves values
/// out, at steps the `and` drops: the values that survive it are the same,
/// and what can differ is an error that only those steps would raise (two
/// series on one side matching there): it is not raised.
#[derive(Clone, Default)]
struct Demand(Vec<Arc<Present>>);

/// Where one `and`'s right-hand side has values: the steps, by match key.
struct Present {
    on: Option<Vec<String>>,
    steps: HashMap<String, StepSet>,
}

impl Demand {
    /// This demand narrowed by `and on(on) rhs` over a grid of `n` steps.
    fn and(&self, on: Option<&[String]>, rhs: &[Series], n: usize) -> Demand {
        let mut steps: HashMap<String, StepSet> = HashMap::new();
        for s in rhs {
            steps
                .entry(match_key(s, on))
                .or_insert_with(|| StepSet::empty(n))
                .insert_present(s);
        }
        let mut narrowed = self.clone();
        narrowed.0.push(Arc::new(Present {
            on: on.map(<[String]>::to_vec),
            steps,
        }));
        narrowed
    }

    /// The steps at which a series with these labels is needed (`None`:
    /// every step).
    fn steps_for(&self, labels: &Labels, n: usize) -> Option<StepSet> {
        let mut needed: Option<StepSet> = None;
        for present in &self.0 {
            let Some(steps) = present.steps.get(&signature(labels, present.on.as_deref())) else {
                return Some(StepSet::empty(n));
            };
            match &mut needed {
                None => needed = Some(steps.clone()),
                Some(n) => n.intersect(steps),
            }
        }
        needed
    }
}

/// Evaluates expressions over one grid against one source.
pub struct Evaluator<'a> {
    source: &'a dyn Source,
    grid: Grid,
    /// Pooled groups by selector and grouping: alerts that pool the same
    /// selector by the same labels over different windows share one merge.
    pooled: Mutex<HashMap<PooledKey, Arc<Vec<Pooled>>>>,
    /// The plan this evaluator runs by: which calls the expressions share
    /// (see [`super::plan`]). See [`Evaluator::with_plan`].
    plan: Arc<Plan>,
    /// Results of the shared calls computed so far, with how many uses
    /// are left: the last one takes the value instead of a copy.
    calls: Mutex<HashMap<Shape, (Value, usize)>>,
    /// The most samples one [`Evaluator::eval`] may hold (see [`super::budget`]).
    max_samples: u64,
}

/// A pooled merge's key: the selector's shape without its window and
/// offset, and the grouping.
type PooledKey = (Shape, bool, Vec<String>);

/// Results larger than this many cells (series x steps) are not kept for
/// sharing: a call over raw per-session series would double the memory.
const SHARED_CALL_CELLS: usize = 4 << 20;

impl<'a> Evaluator<'a> {
    pub fn new(source: &'a dyn Source, grid: Grid) -> Evaluator<'a> {
        Evaluator {
            source,
            grid,
            pooled: Mutex::new(HashMap::new()),
            plan: Arc::new(Plan::default()),
            calls: Mutex::new(HashMap::new()),
            max_samples: super::budget::DEFAULT_MAX_SAMPLES,
        }
    }

    /// Sets the samples limit of each evaluation
    /// ([`super::budget::DEFAULT_MAX_SAMPLES`] otherwise).
    pub fn with_max_samples(mut self, n: u64) -> Self {
        self.max_samples = n;
        self
    }

    /// Runs by `plan`, the plan of the expressions this evaluator will be
    /// given: each call they share is computed once.
    pub fn with_plan(mut self, plan: Arc<Plan>) -> Self {
        self.plan = plan;
        self
    }

    /// Runs by the plan of `exprs` (see [`Evaluator::with_plan`]).
    pub fn sharing<'e>(self, exprs: impl IntoIterator<Item = &'e Expr>) -> Self {
        self.with_plan(Arc::new(Plan::new(exprs)))
    }

    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The value of `expr` (constants already inlined) at every step.
    pub fn eval(&self, expr: &Expr) -> Result<Value, EngineError> {
        let budget = Budget::new(self.max_samples);
        self.eval_for(expr, &Demand::default(), &Scope::new(&budget))
    }

    /// The value of `expr` at the steps `demand` asks for (at least), held
    /// in `held` (what computing it held besides is released).
    fn eval_for(&self, expr: &Expr, demand: &Demand, held: &Scope) -> Result<Value, EngineError> {
        let inner = held.child();
        let value = self.eval_node(expr, demand, &inner)?;
        drop(inner);
        held.charge(value.cells() as u64)?;
        Ok(value)
    }

    fn eval_node(&self, expr: &Expr, demand: &Demand, held: &Scope) -> Result<Value, EngineError> {
        match expr {
            Expr::Number(n) => Ok(Value::Scalar(n.value)),
            Expr::Duration(d) => Ok(Value::Scalar(d.seconds())),
            Expr::Str(s) => Err(EngineError::Eval(format!(
                "the string \"{}\" is not a value",
                s.value
            ))),
            Expr::Const(id) => Err(EngineError::Eval(format!("unknown constant `{}`", id.name))),
            Expr::Paren(e, _) => self.eval_node(e, demand, held),
            Expr::Neg(e, _) => Ok(match self.eval_for(e, demand, held)? {
                Value::Scalar(x) => Value::Scalar(-x),
                Value::Vector(v) => Value::Vector(
                    v.into_iter()
                        .map(|mut s| {
                            s.metric = None;
                            s.values
                                .iter_mut()
                                .for_each(|x| *x = x.get().map(|x| -x).into());
                            s
                        })
                        .collect(),
                ),
            }),
            Expr::Selector(sel) => {
                if sel.range.is_some() {
                    return Err(EngineError::Eval(format!(
                        "`{}[..]` is a range: give it to a function such as avg or rate",
                        sel.metric.name
                    )));
                }
                self.instant(sel, held)
            }
            Expr::Call(c) => self.shared_call(expr, c, demand, held),
            Expr::Aggregate(a) => self.aggregate(a, held),
            Expr::Binary(b) => self.binary(b, demand, held),
        }
    }

    /// A call evaluated once per grid however many rules contain it. Two
    /// rules (or the two sides of one operator, evaluated at once) that
    /// reach the same call at the same moment may both compute it; the
    /// result is the same either way, and each spends one planned use. A shared call is computed in
    /// full, whatever its uses demand.
    fn shared_call(
        &self,
        expr: &Expr,
        c: &Call,
        demand: &Demand,
        held: &Scope,
    ) -> Result<Value, EngineError> {
        if !self.plan.shares_calls() {
            return self.call(c, demand, held);
        }
        let key = Shape::of(expr);
        let Some(uses) = self.plan.shared_uses(&key) else {
            return self.call(c, demand, held);
        };
        if let Ok(mut m) = self.calls.lock()
            && let Some((value, left)) = m.get_mut(&key)
        {
            *left -= 1;
            if *left > 0 {
                return Ok(value.clone());
            }
            if let Some((value, _)) = m.remove(&key) {
                return Ok(value);
            }
        }
        let value = self.call(c, &Demand::default(), held)?;
        if value.cells() <= SHARED_CALL_CELLS
            && let Ok(mut m) = self.calls.lock()
        {
            match m.entry(key) {
                // Computed meanwhile by another use: this one is spent too.
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    e.get_mut().1 -= 1;
                    if e.get().1 == 0 {
                        e.remove();
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((value.clone(), uses - 1));
                }
            }
        }
        Ok(value)
    }

    /// The series of a selector, their samples held to the end of the evaluation.
    fn select(&self, sel: &Selector, held: &Scope) -> Result<super::source::Selected, EngineError> {
        let matchers = sel
            .compile_matchers()
            .map_err(|e| EngineError::Eval(format!("bad regex in `{}`: {e}", sel.metric.name)))?;
        let offset = sel.offset.as_ref().map_or(0, |d| d.ms);
        let range = sel.range.as_ref().map_or(LOOKBACK_MS, |d| d.ms);
        let selected = self.source.select(
            &sel.metric.name,
            &matchers,
            self.grid.start.saturating_sub(offset).saturating_sub(range),
            self.grid.end().saturating_sub(offset),
        )?;
        let samples: usize = selected.iter().map(|s| s.timestamps.len()).sum();
        held.budget().charge(samples as u64)?;
        Ok(selected)
    }

    /// An instant selector: each series' newest sample within the lookback.
    fn instant(&self, sel: &Selector, held: &Scope) -> Result<Value, EngineError> {
        let raw = self.select(sel, held)?;
        let span = Span {
            grid: self.grid,
            range_ms: LOOKBACK_MS,
            offset_ms: sel.offset.as_ref().map_or(0, |d| d.ms),
        };
        reserve_per_series(&raw, &span, held)?;
        let out: Vec<Series> = raw
            .par_iter()
            .map(|s| {
                let (start, values) =
                    over_time(TimeFunc::Last, &s.timestamps, &s.values, &span, &|_| None);
                let values = values
                    .into_iter()
                    .map(|v| v.get().filter(|x| !is_stale(*x)).into())
                    .collect();
                Series {
                    metric: Some(s.key.metric.clone()),
                    labels: s.key.labels.clone(),
                    start,
                    values,
                }
                .trim()
            })
            .filter(|s| !s.values.is_empty())
            .collect();
        Ok(Value::Vector(sorted(out)))
    }

    fn scalar_arg(&self, e: &Expr, what: &str) -> Result<f64, EngineError> {
        match self.eval(e)? {
            Value::Scalar(x) => Ok(x),
            Value::Vector(_) => Err(EngineError::Eval(format!("{what} must be a number"))),
        }
    }

    /// The kernel of a call over time with its scalar argument bound:
    /// `None` for `absent`, which runs over a selector's series together.
    fn time_func(&self, c: &Call, def: &FuncDef) -> Result<Option<TimeFunc>, EngineError> {
        let scalar = |i: usize, what: &str| match c.args.get(i) {
            Some(e) => self.scalar_arg(e, what),
            None => Err(EngineError::Eval(format!("{what} is missing"))),
        };
        Ok(Some(match def.kernel {
            Kernel::OverTime(f) => f,
            Kernel::QuantileAt => TimeFunc::Quantile(scalar(0, "quantile's q")?),
            Kernel::PredictAt => TimeFunc::Predict(scalar(1, "predict's horizon")?),
            Kernel::Absent => return Ok(None),
            Kernel::Histogram(_) | Kernel::Instant(_) => {
                return Err(EngineError::Eval(format!(
                    "`{}` is not a function over time",
                    def.name
                )));
            }
        }))
    }

    fn call(&self, c: &Call, demand: &Demand, held: &Scope) -> Result<Value, EngineError> {
        let name = c.func.name.as_str();
        let def = c
            .def
            .ok_or_else(|| EngineError::Eval(format!("unknown function `{name}`")))?;
        match def.kernel {
            Kernel::Histogram(func) => return self.histogram(c, func, held),
            Kernel::Instant(func) => return self.instant_func(c, func, held),
            _ => {}
        }
        let sel = match c.args.get(def.range_arg()).map(Expr::unparen) {
            Some(Expr::Selector(s)) if s.range.is_some() => s,
            _ => {
                return Err(EngineError::Eval(format!(
                    "`{name}` needs a range such as x[5m] as its argument"
                )));
            }
        };
        let span = Span {
            grid: self.grid,
            range_ms: sel.range.as_ref().map_or(0, |d| d.ms),
            offset_ms: sel.offset.as_ref().map_or(0, |d| d.ms),
        };
        let Some(func) = self.time_func(c, def)? else {
            return self.absent(sel, &span, held);
        };
        let threshold = if func == TimeFunc::TimeTo {
            match c.args.get(1) {
                Some(e) => Some(self.eval_for(e, &Demand::default(), held)?),
                None => return Err(EngineError::Eval("time_to needs a threshold".into())),
            }
        } else {
            None
        };
        let raw = self.select(sel, held)?;
        let n = self.grid.n;
        let out = match &c.pool {
            Some(g) if def.pools_samples() => {
                let groups = self.pooled(sel, g, &raw);
                reserve_pooled(&groups, &span, held)?;
                groups
                    .par_iter()
                    .filter_map(|p| {
                        let needed = demand.steps_for(&p.labels, n);
                        if needed.as_ref().is_some_and(StepSet::is_empty) {
                            return None;
                        }
                        let (start, values) = p.over_time(func, &span, needed.as_ref());
                        Some(Series::new(p.labels.clone(), start, values).trim())
                    })
                    .collect::<Vec<_>>()
            }
            Some(g) => {
                // Added up per group as they are computed, in the order of
                // the series; the members' labels are not the result's: no
                // demand.
                let order: Vec<usize> = (0..raw.len()).collect();
                let per = PerSeries {
                    raw: &raw,
                    func,
                    span: &span,
                    threshold: threshold.as_ref(),
                };
                self.fold_groups(
                    &per,
                    &order,
                    &label_names(g),
                    g.without,
                    Fold::SumFromZero,
                    held,
                )?
            }
            None => {
                reserve_per_series(&raw, &span, held)?;
                self.per_series(&raw, func, &span, threshold.as_ref(), demand)
            }
        };
        Ok(Value::Vector(sorted(
            out.into_iter().filter(|s| !s.values.is_empty()).collect(),
        )))
    }

    /// A function at an instant ([`super::instant`]): its series and
    /// numbers, then the kernel per value, per series or per step.
    fn instant_func(&self, c: &Call, func: InstFunc, held: &Scope) -> Result<Value, EngineError> {
        let name = c.func.name.as_str();
        let series = |i: usize| -> Result<Vec<Series>, EngineError> {
            match c.args.get(i) {
                Some(e) => match self.eval_for(e, &Demand::default(), held)? {
                    Value::Vector(v) => Ok(v),
                    Value::Scalar(_) => Err(EngineError::Eval(format!(
                        "the first argument of `{name}` must be series, not a number"
                    ))),
                },
                None => Err(EngineError::Eval(format!("`{name}` needs series"))),
            }
        };
        let text = |i: usize| -> Result<&str, EngineError> {
            match c.args.get(i).map(Expr::unparen) {
                Some(Expr::Str(s)) => Ok(s.value.as_str()),
                _ => Err(EngineError::Eval(format!(
                    "argument {} of `{name}` must be a string",
                    i + 1
                ))),
            }
        };
        let out = match func {
            InstFunc::Vector => {
                let x = match c.args.first() {
                    Some(e) => self.scalar_arg(e, "vector's argument")?,
                    None => return Err(EngineError::Eval("`vector` needs a number".into())),
                };
                vec![super::instant::vector(x, self.grid)]
            }
            InstFunc::Sort | InstFunc::SortDesc => {
                // Returned in its own order, not the labels' (`sorted`).
                let last = self.grid.n.saturating_sub(1);
                let out = super::instant::sort_by_value(
                    series(0)?
                        .into_iter()
                        .filter(|s| !s.values.is_empty())
                        .collect(),
                    last,
                    func == InstFunc::SortDesc,
                );
                return Ok(Value::Vector(out));
            }
            InstFunc::Time => vec![super::instant::time(self.grid)],
            InstFunc::Timestamp => match c.args.first().map(Expr::unparen) {
                // A selector's own samples: their times, not the steps'.
                Some(Expr::Selector(sel)) if sel.range.is_none() => {
                    let raw = self.select(sel, held)?;
                    let offset = sel.offset.as_ref().map_or(0, |d| d.ms);
                    raw.iter()
                        .map(|s| {
                            super::instant::sample_timestamps(
                                &s.key.labels,
                                &s.timestamps,
                                &s.values,
                                self.grid,
                                offset,
                                LOOKBACK_MS,
                            )
                        })
                        .collect()
                }
                _ => super::instant::step_timestamps(series(0)?, self.grid),
            },
            InstFunc::Scalar => vec![super::instant::scalar(&series(0)?, self.grid)],
            InstFunc::LabelReplace => {
                super::instant::label_replace(series(0)?, text(1)?, text(2)?, text(3)?, text(4)?)
                    .map_err(EngineError::Eval)?
            }
            InstFunc::Abs
            | InstFunc::Round
            | InstFunc::Clamp
            | InstFunc::ClampMin
            | InstFunc::ClampMax => {
                let nums = c.args[1.min(c.args.len())..]
                    .iter()
                    .map(|e| self.scalar_arg(e, &format!("`{name}`'s number")))
                    .collect::<Result<Vec<f64>, _>>()?;
                let input = series(0)?;
                match super::instant::number_func(func, &nums) {
                    Some(f) => super::instant::map_values(input, f),
                    None => Vec::new(),
                }
            }
        };
        Ok(Value::Vector(sorted(
            out.into_iter()
                .map(Series::trim)
                .filter(|s| !s.values.is_empty())
                .collect(),
        )))
    }

    /// A function over classic histograms: its numbers, then its bucket
    /// series at every step, then one value per histogram
    /// ([`super::histogram`]).
    fn histogram(&self, c: &Call, func: HistFunc, held: &Scope) -> Result<Value, EngineError> {
        let name = c.func.name.as_str();
        let Some((buckets, numbers)) = c.args.split_last() else {
            return Err(EngineError::Eval(format!("`{name}` needs bucket series")));
        };
        let numbers = numbers
            .iter()
            .map(|e| self.scalar_arg(e, &format!("each number of `{name}`")))
            .collect::<Result<Vec<f64>, _>>()?;
        let args = HistArgs::new(func, &numbers)
            .ok_or_else(|| EngineError::Eval(format!("`{name}` got {} numbers", numbers.len())))?;
        // The result's labels are not the buckets' (`le` goes): no demand.
        let series = match self.eval_for(buckets, &Demand::default(), held)? {
            Value::Vector(v) => v,
            Value::Scalar(_) => {
                return Err(EngineError::Eval(format!(
                    "`{name}` needs bucket series, not a number"
                )));
            }
        };
        Ok(Value::Vector(histograms(name, args, series)?))
    }

    fn per_series(
        &self,
        raw: &[Arc<SeriesData>],
        func: TimeFunc,
        span: &Span,
        threshold: Option<&Value>,
        demand: &Demand,
    ) -> Vec<Series> {
        let thresholds: HashMap<String, &Series> = match threshold {
            Some(Value::Vector(v)) => v.iter().map(|s| (signature(&s.labels, None), s)).collect(),
            _ => HashMap::new(),
        };
        let n = self.grid.n;
        raw.par_iter()
            .filter_map(|s| {
                let needed = demand.steps_for(&s.key.labels, n);
                if needed.as_ref().is_some_and(StepSet::is_empty) {
                    return None;
                }
                let (ts, vs) = without_stale(s);
                let thr: Box<dyn Fn(usize) -> Option<f64> + Sync> = match threshold {
                    Some(Value::Scalar(x)) => {
                        let x = *x;
                        Box::new(move |_| Some(x))
                    }
                    Some(Value::Vector(_)) => match thresholds.get(&signature(&s.key.labels, None))
                    {
                        Some(t) => {
                            let t = *t;
                            Box::new(move |k| t.at(k))
                        }
                        None => Box::new(|_| None),
                    },
                    None => Box::new(|_| None),
                };
                let (start, values) =
                    over_time_shared(func, &ts, &vs, None, needed.as_ref(), span, &*thr);
                Some(Series::new(s.key.labels.clone(), start, values).trim())
            })
            .collect()
    }

    /// The merged samples of each group of a selector's series.
    fn pooled(&self, sel: &Selector, g: &Grouping, raw: &[Arc<SeriesData>]) -> Arc<Vec<Pooled>> {
        // Neither the range nor the offset changes which samples a source
        // gives (every sample of the matching series; the windows are cut
        // later), so `x[30m]` and `x[1d] offset 1d` share one merge.
        let key = (
            Shape::of(&Expr::Selector(Selector {
                range: None,
                offset: None,
                ..sel.clone()
            })),
            g.without,
            label_names(g),
        );
        if let Some(hit) = self.pooled.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return hit;
        }
        let names = label_names(g);
        let groups = group_by(
            raw.iter()
                .map(|s| (group_labels(&s.key.labels, &names, g.without), s)),
        );
        // In parallel: finding stale markers reads every member's values.
        let merged: Vec<Pooled> = groups
            .into_par_iter()
            .map(|(labels, members)| Pooled::new(labels, members.into_iter().cloned().collect()))
            .collect();
        let merged = Arc::new(merged);
        if let Ok(mut m) = self.pooled.lock() {
            m.insert(key, merged.clone());
        }
        merged
    }

    /// `absent(x[range])`: 1 at the steps where no matching series has a
    /// sample in the window, labelled with the selector's `=` matchers.
    fn absent(&self, sel: &Selector, span: &Span, held: &Scope) -> Result<Value, EngineError> {
        let raw = self.select(sel, held)?;
        // Whether a window holds a sample does not depend on the order of
        // the series' samples: count them per step where windows are whole
        // steps, and merge them in time order only otherwise.
        let runs: Vec<&[i64]> = raw.iter().map(|s| &s.timestamps[..]).collect();
        let counted = raw
            .iter()
            .all(|s| !s.values.iter().any(|v| is_stale(*v)))
            .then(|| range::count_of_runs(&runs, &WindowCache::default(), span))
            .flatten();
        let (start, counts) = counted.unwrap_or_else(|| {
            let mut ts: Vec<i64> = raw
                .iter()
                .flat_map(|s| {
                    s.timestamps
                        .iter()
                        .zip(&s.values)
                        .filter(|(_, v)| !is_stale(**v))
                        .map(|(t, _)| *t)
                })
                .collect();
            ts.sort_unstable();
            over_time(TimeFunc::Count, &ts, &vec![0.0; ts.len()], span, &|_| None)
        });
        let values: Vec<StepValue> = (0..self.grid.n)
            .map(|k| {
                let present = k >= start && counts.get(k - start).is_some_and(|c| c.is_some());
                StepValue::when(!present, || 1.0)
            })
            .collect();
        let mut labels: Labels = sel
            .matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal && m.name != "__name__" && !m.value.is_empty())
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let s = Series::new(labels, 0, values).trim();
        Ok(Value::Vector(if s.values.is_empty() {
            vec![]
        } else {
            vec![s]
        }))
    }

    /// The series of a function over a range that runs per series (no
    /// pooling), ready to compute in parts: `None` for any other call.
    fn per_series_call<'c>(
        &self,
        c: &'c Call,
        held: &Scope,
    ) -> Result<Option<PerSeriesParts<'c>>, EngineError> {
        let Some(def) = c.def else {
            return Ok(None);
        };
        if let Kernel::Histogram(_) | Kernel::Instant(_) = def.kernel {
            return Ok(None);
        }
        let sel = match c.args.get(def.range_arg()).map(Expr::unparen) {
            Some(Expr::Selector(s)) if s.range.is_some() => s,
            _ => return Ok(None),
        };
        if c.pool.is_some() {
            return Ok(None);
        }
        let Some(func) = self.time_func(c, def)? else {
            return Ok(None);
        };
        let span = Span {
            grid: self.grid,
            range_ms: sel.range.as_ref().map_or(0, |d| d.ms),
            offset_ms: sel.offset.as_ref().map_or(0, |d| d.ms),
        };
        let threshold = match (func, c.args.get(1)) {
            (TimeFunc::TimeTo, Some(e)) => Some(self.eval_for(e, &Demand::default(), held)?),
            (TimeFunc::TimeTo, None) => return Ok(None),
            _ => None,
        };
        Ok(Some((sel, func, span, threshold)))
    }

    /// `sum`, `min`, `max` or `count` across the series of a function that
    /// runs per series (`max by (server) (p99(x[1h]))`, where each MCP
    /// session is a series): the function's results are folded into their
    /// groups as they are computed, so they never all exist at once. The
    /// values are those of aggregating the whole result: each group's
    /// members fold in the order that aggregation takes them (by labels).
    /// `None` when the aggregation is not of that kind.
    fn streamed_aggregate(
        &self,
        a: &Aggregate,
        held: &Scope,
    ) -> Result<Option<Value>, EngineError> {
        let fold = match a.def.kernel {
            AggKernel::Sum => Fold::Sum,
            AggKernel::Min => Fold::Min,
            AggKernel::Max => Fold::Max,
            AggKernel::Count => Fold::Count,
            AggKernel::Avg
            | AggKernel::Stddev
            | AggKernel::Quantile
            | AggKernel::TopK
            | AggKernel::BottomK => return Ok(None),
        };
        let Expr::Call(c) = a.arg.unparen() else {
            return Ok(None);
        };
        if !self.plan.streams(a) {
            return Ok(None);
        }
        let inner = held.child();
        let Some((sel, func, span, threshold)) = self.per_series_call(c, &inner)? else {
            return Ok(None);
        };
        let raw = self.select(sel, &inner)?;
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by(|&i, &j| raw[i].key.labels.cmp(&raw[j].key.labels));
        let (names, without) = match &a.grouping {
            Some(g) => (label_names(g), g.without),
            None => (Vec::new(), false),
        };
        let per = PerSeries {
            raw: &raw,
            func,
            span: &span,
            threshold: threshold.as_ref(),
        };
        let out = self.fold_groups(&per, &order, &names, without, fold, &inner)?;
        Ok(Some(Value::Vector(sorted(out))))
    }

    /// The results of `per` folded into groups by `names` (or all labels
    /// but them, `without`), taking the series in `order`, a chunk at a time.
    fn fold_groups(
        &self,
        per: &PerSeries,
        order: &[usize],
        names: &[String],
        without: bool,
        fold: Fold,
        held: &Scope,
    ) -> Result<Vec<Series>, EngineError> {
        let groups = group_by(
            order
                .iter()
                .map(|&i| (group_labels(&per.raw[i].key.labels, names, without), i)),
        );
        let mut group_of = vec![0usize; per.raw.len()];
        let mut accs: Vec<Accumulator> = Vec::with_capacity(groups.len());
        for (g, (labels, members)) in groups.into_iter().enumerate() {
            let mut touched: Option<std::ops::Range<usize>> = None;
            for &i in &members {
                group_of[i] = g;
                let ts = &per.raw[i].timestamps;
                if let (Some(&first), Some(&last)) = (ts.first(), ts.last()) {
                    let r = per.span.steps_touching(first, last);
                    touched = Some(union_range(touched, r));
                }
            }
            let touched = touched.unwrap_or(0..0);
            held.charge(touched.len() as u64)?;
            accs.push(Accumulator::new(labels, touched));
        }
        // A part may hold a quarter of the limit (a full window at every step).
        let part_len = (self.max_samples / (4 * self.grid.n.max(1) as u64))
            .clamp(16, FOLD_CHUNK as u64) as usize;
        for chunk in order.chunks(part_len) {
            let part = held.child();
            let series: Vec<Arc<SeriesData>> = chunk.iter().map(|&i| per.raw[i].clone()).collect();
            reserve_per_series(&series, per.span, &part)?;
            let results = self.per_series(
                &series,
                per.func,
                per.span,
                per.threshold,
                &Demand::default(),
            );
            for (&i, s) in chunk.iter().zip(&results) {
                accs[group_of[i]].add(s, fold);
            }
        }
        Ok(accs
            .into_iter()
            .map(Accumulator::finish)
            .filter(|s| !s.values.is_empty())
            .collect())
    }

    fn aggregate(&self, a: &Aggregate, held: &Scope) -> Result<Value, EngineError> {
        if let Some(v) = self.streamed_aggregate(a, held)? {
            return Ok(v);
        }
        let op = a.op.name.as_str();
        let param = match &a.param {
            Some(p) => Some(self.scalar_arg(p, &format!("{op}'s parameter"))?),
            None => None,
        };
        let series = match self.eval_for(&a.arg, &Demand::default(), held)? {
            Value::Vector(v) => v,
            Value::Scalar(_) => {
                return Err(EngineError::Eval(format!(
                    "`{op}` across series needs series, not a number"
                )));
            }
        };
        let (names, without) = match &a.grouping {
            Some(g) => (label_names(g), g.without),
            None => (Vec::new(), false),
        };
        let groups = group_by(
            series
                .into_iter()
                .map(|s| (group_labels(&s.labels, &names, without), s)),
        );
        let out: Vec<Series> = groups
            .into_par_iter()
            .flat_map_iter(|(labels, members)| {
                aggregate_group(a.def.kernel, param, labels, members)
            })
            .filter(|s| !s.values.is_empty())
            .collect();
        Ok(Value::Vector(sorted(out)))
    }

    /// A binary operation. What each side may leave out of what `demand`
    /// asks of the result: a side's series at a step feeds only the result's
    /// series with the same labels at that step when matching is on all
    /// labels; with `on`, the sides' labels differ from the result's, and
    /// the side is evaluated in full.
    fn binary(&self, b: &Binary, demand: &Demand, held: &Scope) -> Result<Value, EngineError> {
        let on = b.on.as_ref().map(label_names);
        let all = Demand::default();
        let same_labels = if on.is_none() { demand } else { &all };
        let (lhs, rhs) = match b.op {
            BinOp::And => {
                let rhs = self.eval_for(&b.rhs, same_labels, held)?;
                let narrowed = match &rhs {
                    Value::Vector(v) => demand.and(on.as_deref(), v, self.grid.n),
                    Value::Scalar(_) => demand.clone(),
                };
                (self.eval_for(&b.lhs, &narrowed, held)?, rhs)
            }
            // The sides at once: the latency rule's two p95s each end in one
            // long window walk over the busiest tool, which would otherwise
            // leave the other core idle twice.
            op => {
                let sides = match op {
                    BinOp::Or | BinOp::Unless => &all,
                    _ => same_labels,
                };
                let (lhs, rhs) = rayon::join(
                    || self.eval_for(&b.lhs, sides, held),
                    || self.eval_for(&b.rhs, sides, held),
                );
                (lhs?, rhs?)
            }
        };
        binary_values(b.op, b.return_bool, on.as_deref(), lhs, rhs)
    }
}

/// At most this many series are folded into groups at a time: enough for
/// the per-series functions' parallelism, little beside the groups' values.
const FOLD_CHUNK: usize = 4096;

/// The smallest range holding both.
fn union_range(
    a: Option<std::ops::Range<usize>>,
    b: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    match a {
        Some(a) => a.start.min(b.start)..a.end.max(b.end),
        None => b,
    }
}

/// What [`Evaluator::per_series_call`] prepares: the selector, the
/// function, where its windows sit, and `time_to`'s threshold.
type PerSeriesParts<'c> = (&'c Selector, TimeFunc, Span, Option<Value>);

/// A function over a range, to run per series of `raw`.
struct PerSeries<'a> {
    raw: &'a [Arc<SeriesData>],
    func: TimeFunc,
    span: &'a Span,
    threshold: Option<&'a Value>,
}

/// How members' values combine into their group's, as the aggregation
/// they stand for computes it from the same values in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    /// `sum` across series (`Iterator::sum` over the values present).
    Sum,
    /// A function over time pooled `by` that adds up: from 0, step by step.
    SumFromZero,
    Min,
    Max,
    Count,
}

/// One group's values over the steps its members can reach, and the span
/// their results did reach.
struct Accumulator {
    labels: Labels,
    start: usize,
    values: Vec<StepValue>,
    reached: Option<std::ops::Range<usize>>,
}

impl Accumulator {
    fn new(labels: Labels, steps: std::ops::Range<usize>) -> Accumulator {
        Accumulator {
            labels,
            start: steps.start,
            values: vec![StepValue::NONE; steps.len()],
            reached: None,
        }
    }

    fn add(&mut self, s: &Series, fold: Fold) {
        if s.values.is_empty() {
            return;
        }
        self.reached = Some(union_range(self.reached.take(), s.start..s.end()));
        for (k, v) in s.values.iter().enumerate() {
            let Some(v) = v.get() else { continue };
            let slot = &mut self.values[s.start + k - self.start];
            *slot = StepValue::some(match (slot.get(), fold) {
                (None, Fold::Sum) => std::iter::once(v).sum(),
                (None, Fold::SumFromZero) => 0.0 + v,
                (None, Fold::Count) => 1.0,
                (None, Fold::Min | Fold::Max) => v,
                (Some(acc), Fold::Sum | Fold::SumFromZero) => acc + v,
                (Some(acc), Fold::Count) => acc + 1.0,
                (Some(acc), Fold::Min) => range::min_skipping_nan(&[acc, v]),
                (Some(acc), Fold::Max) => range::max_skipping_nan(&[acc, v]),
            });
        }
    }

    /// The group's series over the steps its members' results reached
    /// (as aggregating them takes them), trimmed as a result is.
    fn finish(self) -> Series {
        let Some(reached) = self.reached else {
            return Series::new(self.labels, 0, Vec::new());
        };
        let from = reached.start - self.start;
        let to = reached.end - self.start;
        let values = if from == 0 && to == self.values.len() {
            self.values
        } else {
            self.values[from..to].to_vec()
        };
        Series::new(self.labels, reached.start, values).trim()
    }
}

/// Reserves what a function of each series can hold: a value at every
/// step whose window reaches one of its samples.
fn reserve_per_series(
    raw: &[Arc<SeriesData>],
    span: &Span,
    held: &Scope,
) -> Result<(), EngineError> {
    let cells: usize = raw
        .iter()
        .map(|s| match (s.timestamps.first(), s.timestamps.last()) {
            (Some(&first), Some(&last)) => span.steps_touching(first, last).len(),
            _ => 0,
        })
        .sum();
    held.charge(cells as u64)
}

/// Reserves what a function of each pooled group can hold.
fn reserve_pooled(groups: &[Pooled], span: &Span, held: &Scope) -> Result<(), EngineError> {
    let cells: usize = groups
        .iter()
        .map(|p| {
            let first = p.members.iter().filter_map(|s| s.timestamps.first()).min();
            let last = p.members.iter().filter_map(|s| s.timestamps.last()).max();
            match (first, last) {
                (Some(&first), Some(&last)) => span.steps_touching(first, last).len(),
                _ => 0,
            }
        })
        .sum();
    held.charge(cells as u64)
}

pub(super) fn sorted(mut v: Vec<Series>) -> Vec<Series> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels).then(a.metric.cmp(&b.metric)));
    v
}

/// A series' samples without staleness markers (ranges skip them).
fn without_stale(s: &SeriesData) -> (std::borrow::Cow<'_, [i64]>, std::borrow::Cow<'_, [f64]>) {
    if !s.values.iter().any(|v| is_stale(*v)) {
        return (s.timestamps.as_slice().into(), s.values.as_slice().into());
    }
    let (ts, vs): (Vec<i64>, Vec<f64>) = s
        .timestamps
        .iter()
        .zip(&s.values)
        .filter(|(_, v)| !is_stale(**v))
        .map(|(t, v)| (*t, *v))
        .unzip();
    (ts.into(), vs.into())
}

/// The step span covered by a set of series.
fn union_span(members: &[Series]) -> (usize, usize) {
    let start = members.iter().map(|s| s.start).min().unwrap_or(0);
    let end = members.iter().map(Series::end).max().unwrap_or(0);
    (start, end.max(start))
}

fn aggregate_group(
    kernel: AggKernel,
    param: Option<f64>,
    labels: Labels,
    members: Vec<Series>,
) -> Vec<Series> {
    let (start, end) = union_span(&members);
    if matches!(kernel, AggKernel::TopK | AggKernel::BottomK) {
        let k = param.unwrap_or(1.0);
        let k = if k.is_nan() || k < 1.0 {
            0
        } else {
            k.min(members.len() as f64) as usize
        };
        let mut picked: Vec<Vec<StepValue>> =
            vec![vec![StepValue::NONE; end - start]; members.len()];
        let mut present: Vec<(usize, f64)> = Vec::new();
        for step in start..end {
            present.clear();
            present.extend(
                members
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.at(step).map(|v| (i, v))),
            );
            // NaN sorts last for both, as Prometheus does.
            present.sort_by(|a, b| {
                let ord = match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if kernel == AggKernel::TopK => b.1.total_cmp(&a.1),
                    _ => a.1.total_cmp(&b.1),
                };
                ord.then(a.0.cmp(&b.0))
            });
            for &(i, v) in present.iter().take(k) {
                picked[i][step - start] = StepValue::some(v);
            }
        }
        return members
            .into_iter()
            .zip(picked)
            .map(|(s, values)| {
                Series {
                    metric: s.metric,
                    labels: s.labels,
                    start,
                    values,
                }
                .trim()
            })
            .collect();
    }
    let mut buf: Vec<f64> = Vec::with_capacity(members.len());
    let values: Vec<StepValue> = (start..end)
        .map(|step| -> Option<f64> {
            buf.clear();
            buf.extend(members.iter().filter_map(|s| s.at(step)));
            if buf.is_empty() {
                return None;
            }
            let n = buf.len() as f64;
            Some(match kernel {
                AggKernel::Sum => buf.iter().sum(),
                AggKernel::Avg => range::mean(&buf),
                AggKernel::Count => n,
                AggKernel::Min => range::min_skipping_nan(&buf),
                AggKernel::Max => range::max_skipping_nan(&buf),
                AggKernel::Stddev => range::population_stddev(&buf),
                AggKernel::Quantile => {
                    buf.sort_by(crate::stats::quantile::quantile_order);
                    crate::stats::quantile::quantile_sorted(&buf, param.unwrap_or(f64::NAN))
                }
                // Selected above.
                AggKernel::TopK | AggKernel::BottomK => return None,
            })
        })
        .map(StepValue::from)
        .collect();
    vec![Series::new(labels, start, values).trim()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::{
        combine, mask_by_partner, one_per_label_set, set_op, with_partner,
    };
    use crate::engine::source::MemorySource;
    use crate::engine::value::step_values;
    use crate::model::SeriesKey;

    fn series(metric: &str, labels: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesData {
        SeriesData {
            key: SeriesKey::new(
                metric,
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            timestamps: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        }
    }

    fn eval_at(src: &MemorySource, expr: &str, t: i64) -> Vec<(Labels, f64)> {
        let file = crate::dsl::parse_str(&format!("record r = {expr}\n"), "t").expect("parses");
        let e = file.records().next().expect("record").expr.clone();
        let ev = Evaluator::new(src, Grid::instant(t));
        match ev.eval(&e).expect("evaluates") {
            Value::Scalar(x) => vec![(vec![], x)],
            Value::Vector(v) => v
                .into_iter()
                .filter_map(|s| s.at(0).map(|x| (s.labels, x)))
                .collect(),
        }
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Counts the selects that reach the source.
    struct CountingSource {
        inner: MemorySource,
        selects: std::sync::atomic::AtomicUsize,
    }

    impl Source for CountingSource {
        fn select(
            &self,
            metric: &str,
            matchers: &[crate::model::Matcher],
            start_ms: i64,
            end_ms: i64,
        ) -> Result<super::super::source::Selected, EngineError> {
            self.selects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.select(metric, matchers, start_ms, end_ms)
        }
    }

    #[test]
    fn a_repeated_call_is_computed_once_and_gives_the_same_value() {
        let src = CountingSource {
            inner: MemorySource::new(vec![series(
                "lat",
                &[("server", "a")],
                &[(10_000, 1.0), (20_000, 3.0), (30_000, 8.0)],
            )]),
            selects: Default::default(),
        };
        let file = crate::dsl::parse_str(
            "record r = avg(lat[1m]) + avg(lat[1m]) * max(lat[1m])\n",
            "t",
        )
        .expect("parses");
        let e = file.records().next().expect("record").expr.clone();
        let value = |ev: Evaluator| match ev.eval(&e).expect("evaluates") {
            Value::Vector(v) => v[0].values.clone(),
            Value::Scalar(_) => panic!("a vector"),
        };
        // One thread: the two sides of `+` would otherwise run at once, and
        // may then both compute the shared call (allowed, see shared_call).
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a pool");
        let value = |ev: Evaluator| one_thread.install(|| value(ev));
        let plain = value(Evaluator::new(&src, Grid::instant(40_000)));
        assert_eq!(src.selects.swap(0, std::sync::atomic::Ordering::Relaxed), 3);
        let shared = value(Evaluator::new(&src, Grid::instant(40_000)).sharing([&e]));
        assert_eq!(src.selects.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(plain, shared);
        // Its last planned use took the kept value: an evaluation beyond
        // the plan computes the call again, to the same value.
        let ev = Evaluator::new(&src, Grid::instant(40_000)).sharing([&e]);
        let once = ev.eval(&e).expect("evaluates");
        let again = ev.eval(&e).expect("evaluates");
        assert_eq!(once, again);
        assert!(ev.calls.lock().expect("lock").is_empty());
        assert_eq!(plain, vec![Some(4.0 + 4.0 * 8.0)]);
    }

    #[test]
    fn pooled_quantile_is_over_every_sample_of_the_group() {
        let src = MemorySource::new(vec![
            series(
                "lat",
                &[("server", "a"), ("s", "1")],
                &[(10_000, 1.0), (20_000, 2.0)],
            ),
            series(
                "lat",
                &[("server", "a"), ("s", "2")],
                &[(15_000, 3.0), (25_000, 4.0)],
            ),
            series("lat", &[("server", "b"), ("s", "3")], &[(15_000, 10.0)]),
        ]);
        let got = eval_at(&src, "max(lat[1m]) by (server)", 30_000);
        assert_eq!(
            got,
            vec![(l(&[("server", "a")]), 4.0), (l(&[("server", "b")]), 10.0)]
        );
        let got = eval_at(&src, "p50(lat[1m]) by (server)", 30_000);
        assert_eq!(got[0], (l(&[("server", "a")]), 2.5));
        let got = eval_at(&src, "count(lat[1m]) by (server)", 30_000);
        assert_eq!(
            got,
            vec![(l(&[("server", "a")]), 4.0), (l(&[("server", "b")]), 1.0)]
        );
    }

    #[test]
    fn on_matching_keeps_only_the_on_labels_and_filters_compare() {
        let src = MemorySource::new(vec![
            series("used", &[("server", "a"), ("kind", "x")], &[(0, 90.0)]),
            series("used", &[("server", "b"), ("kind", "x")], &[(0, 10.0)]),
            series("limit", &[("server", "a")], &[(0, 100.0)]),
            series("limit", &[("server", "b")], &[(0, 100.0)]),
        ]);
        let got = eval_at(&src, "used / on(server) limit > 0.5", 60_000);
        assert_eq!(got, vec![(l(&[("server", "a")]), 0.9)]);
        let got = eval_at(&src, "used / on(server) limit > bool 0.5", 60_000);
        assert_eq!(got.len(), 2);
        // Identical label sets are required without on(): nothing matches.
        assert!(eval_at(&src, "used / limit", 60_000).is_empty());
    }

    /// An operation's result holds one series per label set: series that it
    /// left alike (two names dropped by arithmetic) join where their steps
    /// do not meet, and are an error where they do, as in Prometheus.
    #[test]
    fn a_result_holds_one_series_per_label_set() {
        let minutes = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..to).map(|m| (m * 60_000, 1.0)).collect()
        };
        let src = MemorySource::new(vec![
            series("a", &[("s", "1")], &minutes(0, 5)),
            series("b", &[("s", "1")], &minutes(20, 25)),
            series("c", &[("s", "1")], &minutes(3, 8)),
        ]);
        let run = |expr: &str| {
            let e = crate::dsl::parse_query(expr).expect("parses");
            Evaluator::new(&src, Grid::range(0, 30 * 60_000, 60_000)).eval(&e)
        };
        let Ok(Value::Vector(v)) = run("(a or b) * 2") else {
            panic!("a and b never meet")
        };
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].labels, l(&[("s", "1")]));
        // a at 0m..8m (5m lookback, open on the left), b at 20m..28m.
        assert_eq!(v[0].values.iter().filter(|x| x.is_some()).count(), 9 + 9);
        // `or` keeps c only where a is not, so the two still join.
        let Ok(Value::Vector(v)) = run("(a or c) * 2") else {
            panic!("or masks c where a is")
        };
        assert_eq!(v.len(), 1, "{v:?}");
        // Two alike series at one step are an error.
        let at = |from: usize, n: usize| Series {
            metric: None,
            labels: l(&[("s", "1")]),
            start: from,
            values: vec![StepValue::some(1.0); n],
        };
        let err = one_per_label_set(vec![at(0, 4), at(3, 2)], BinOp::Mul).expect_err("meet at 3");
        assert!(err.to_string().contains("two series"), "{err}");
        let joined = one_per_label_set(vec![at(0, 3), at(3, 2)], BinOp::Mul).expect("apart");
        assert_eq!(joined.len(), 1);
        assert_eq!((joined[0].start, joined[0].values.len()), (0, 5));
    }

    /// Two left series that match one key fail a range only if they give a
    /// result at the same step, as PromQL's one-to-one matching does step
    /// by step: a series that ends where the other begins is no conflict.
    #[test]
    fn left_series_of_one_key_conflict_only_where_they_meet() {
        let minutes = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..to).map(|m| (m * 60_000, 1.0)).collect()
        };
        let src = MemorySource::new(vec![
            series("used", &[("server", "a"), ("pod", "1")], &minutes(0, 10)),
            series("used", &[("server", "a"), ("pod", "2")], &minutes(20, 30)),
            series("used", &[("server", "a"), ("pod", "3")], &minutes(25, 40)),
            series("limit", &[("server", "a")], &minutes(0, 40)),
        ]);
        let run = |expr: &str, from: i64, to: i64| {
            let file = crate::dsl::parse_str(&format!("record r = {expr}\n"), "t").expect("parses");
            let e = file.records().next().expect("record").expr.clone();
            Evaluator::new(&src, Grid::range(from * 60_000, to * 60_000, 60_000)).eval(&e)
        };
        let apart = "used{pod!=\"3\"} / on(server) limit";
        let Ok(Value::Vector(v)) = run(apart, 0, 35) else {
            panic!("pods 1 and 2 never meet")
        };
        // One series, as Prometheus's result has one per label set.
        assert_eq!(v.len(), 1, "{v:?}");
        let steps: usize = v
            .iter()
            .map(|s| s.values.iter().filter(|x| x.is_some()).count())
            .sum();
        // pod 1 at 0m..13m, pod 2 at 20m..33m: samples a minute apart and
        // a lookback of 5m, open on the left.
        assert_eq!(steps, 14 + 14);
        let meeting = "used / on(server) limit";
        let err = run(meeting, 0, 35).expect_err("pods 2 and 3 meet at 25m");
        assert!(
            err.to_string().contains("several series on the left"),
            "{err}"
        );
        // Before the two meet, the same expression is fine.
        assert!(run(meeting, 0, 19).is_ok());
    }

    /// `and` and `unless` against one partner keep exactly the steps that
    /// a step-by-step look at the partner keeps, whatever the two spans'
    /// overlap: none, partial on either side, one inside the other.
    #[test]
    fn a_single_partner_masks_the_steps_it_has_or_lacks() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(3);
        let random_series = |rng: &mut StdRng| {
            let start = rng.random_range(0..20);
            let values = (0..rng.random_range(0..30))
                .map(|i| rng.random_bool(0.6).then_some(i as f64))
                .collect::<Vec<_>>();
            Series::new(vec![], start, step_values(values))
        };
        for _ in 0..500 {
            let (l, r) = (random_series(&mut rng), random_series(&mut rng));
            for keep_where_present in [true, false] {
                let mut got = l.clone();
                mask_by_partner(&mut got, &r, keep_where_present);
                let want = step_values(
                    (l.start..l.end())
                        .map(|k| l.at(k).filter(|_| r.at(k).is_some() == keep_where_present)),
                );
                assert_eq!((got.start, &got.values), (l.start, &want), "{l:?} {r:?}");
            }
        }
    }

    /// Merging by copies gives what a stable sort of the runs one after
    /// another gives: runs of every size, empty ones, long stretches of one
    /// run, and ties within and across runs.
    #[test]
    fn runs_merged_by_copy_are_a_stable_sort_of_them() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(11);
        for case in 0..400 {
            let k = rng.random_range(1..=MERGED_BY_COPY);
            let runs: Vec<(Vec<i64>, Vec<f64>)> = (0..k)
                .map(|m| {
                    let len = if m == 0 {
                        rng.random_range(0..300)
                    } else {
                        rng.random_range(0..20)
                    };
                    let mut ts: Vec<i64> = (0..len)
                        .map(|_| rng.random_range(0..if case % 2 == 0 { 50 } else { 5_000 }))
                        .collect();
                    ts.sort();
                    let vs = (0..len).map(|i| (m * 1000 + i) as f64).collect();
                    (ts, vs)
                })
                .collect();
            let refs: Vec<(&[i64], &[f64])> = runs.iter().map(|(t, v)| (&t[..], &v[..])).collect();
            let mut want: Vec<(i64, f64)> = runs
                .iter()
                .flat_map(|(t, v)| t.iter().copied().zip(v.iter().copied()))
                .collect();
            want.sort_by_key(|p| p.0);
            assert_eq!(merged_by_copy(&refs), want.into_iter().unzip(), "{runs:?}");
        }
    }

    #[test]
    fn unless_and_or_follow_label_sets() {
        let src = MemorySource::new(vec![
            series("up", &[("server", "a")], &[(0, 1.0)]),
            series("up", &[("server", "b")], &[(0, 1.0), (540_000, 1.0)]),
        ]);
        // At 10m only b has a sample in the last 2m; a reported within the last hour.
        let got = eval_at(&src, "last(up[1h]) unless last(up[2m])", 600_000);
        assert_eq!(got, vec![(l(&[("server", "a")]), 1.0)]);
        let got = eval_at(&src, "last(up[2m]) or last(up[1h])", 600_000);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn instant_selector_looks_back_five_minutes_and_stops_at_stale() {
        let src = MemorySource::new(vec![
            series("g", &[("s", "a")], &[(0, 1.0)]),
            series(
                "g",
                &[("s", "b")],
                &[(0, 1.0), (60_000, super::super::value::stale_nan())],
            ),
        ]);
        assert_eq!(eval_at(&src, "g", 240_000).len(), 1);
        assert!(eval_at(&src, "g", 300_000).is_empty());
    }

    /// `absent` over a grid gives 1 exactly at the steps whose window
    /// holds no sample of any matching series: counted per step when the
    /// samples carry no stale marker, merged in time order when one does
    /// (the marker is no sample), and the two ways agree.
    #[test]
    fn absent_marks_the_steps_whose_window_no_series_reaches() {
        use super::super::value::stale_nan;
        let minute = 60_000;
        let a: Vec<(i64, f64)> = [3, 4, 5, 20, 21]
            .iter()
            .map(|m| (m * minute, 1.0))
            .collect();
        let b: Vec<(i64, f64)> = [4, 40].iter().map(|m| (m * minute + 7_000, 1.0)).collect();
        let mut b_stale = b.clone();
        b_stale.push((41 * minute, stale_nan()));
        let grid = Grid::range(0, 60 * minute, minute);
        let want: Vec<Option<f64>> = (0..grid.n)
            .map(|k| {
                let t = grid.time(k);
                let seen = a
                    .iter()
                    .chain(&b)
                    .any(|&(s, _)| s > t - 10 * minute && s <= t);
                (!seen).then_some(1.0)
            })
            .collect();
        for b in [b, b_stale] {
            let src = MemorySource::new(vec![
                series("g", &[("s", "a")], &a),
                series("g", &[("s", "b")], &b),
            ]);
            let file = crate::dsl::parse_str("record r = absent(g[10m])\n", "t").expect("parses");
            let expr = file.records().next().expect("record").expr.clone();
            let Value::Vector(got) = Evaluator::new(&src, grid).eval(&expr).expect("evaluates")
            else {
                panic!("absent gives series");
            };
            let got: Vec<Option<f64>> = (0..grid.n).map(|k| got[0].at(k)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn absent_carries_equality_matchers() {
        let src = MemorySource::new(vec![series("g", &[("s", "a")], &[(0, 1.0)])]);
        assert!(eval_at(&src, "absent(g[10m])", 60_000).is_empty());
        let got = eval_at(&src, "absent(g{s=\"b\", t=~\"x\"}[10m])", 60_000);
        assert_eq!(got, vec![(l(&[("s", "b")]), 1.0)]);
    }

    #[test]
    fn topk_keeps_series_labels() {
        let src = MemorySource::new(vec![
            series("g", &[("s", "a")], &[(0, 1.0)]),
            series("g", &[("s", "b")], &[(0, 3.0)]),
            series("g", &[("s", "c")], &[(0, 2.0)]),
        ]);
        let got = eval_at(&src, "topk(2, g)", 0);
        assert_eq!(got, vec![(l(&[("s", "b")]), 3.0), (l(&[("s", "c")]), 2.0)]);
        let got = eval_at(&src, "quantile(0.5, g)", 0);
        assert_eq!(got, vec![(vec![], 2.0)]);
    }

    /// Evaluated with the demand of its `and`, an expression's surviving
    /// values are the ones that evaluating both sides in full and then
    /// applying the `and` gives, bit for bit: through pooled and per-series
    /// quantiles, offsets, comparisons, arithmetic, nested `and`, `or` and
    /// `unless` with and without `on`. Passing the demand to a side whose
    /// labels differ from the result's (the left of `or on`) fails this.
    #[test]
    fn an_and_evaluates_its_left_only_where_its_right_holds_and_gets_the_same_values() {
        let mut state = 7u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let mut data = Vec::new();
        for server in ["a", "b", "c"] {
            for tool in ["x", "y"] {
                for session in 0..4 {
                    let mut t = next(60_000) as i64;
                    let mut points = Vec::new();
                    // Busy and quiet stretches, so that counts cross thresholds.
                    while t < 4 * 3_600_000 {
                        points.push((t, next(1000) as f64 / 10.0));
                        t += if (t / 1_200_000) % 2 == 0 {
                            5_000
                        } else {
                            90_000
                        } + next(20_000) as i64;
                    }
                    let session = session.to_string();
                    let labels = [("server", server), ("tool", tool), ("session", &session)];
                    data.push(series("lat", &labels, &points));
                }
            }
        }
        let src = MemorySource::new(data);
        let grid = Grid::range(3_600_000, 4 * 3_600_000, 60_000);
        let value_of = |text: &str| -> Value {
            let e = crate::dsl::parse_query(text).expect("parses");
            Evaluator::new(&src, grid).eval(&e).expect("evaluates")
        };
        let by_st = "by (server, tool)";
        let cases: Vec<(String, Option<&str>, String)> = vec![
            (
                format!("p95(lat[10m]) {by_st}"),
                None,
                format!("count(lat[10m]) {by_st} >= 20"),
            ),
            (
                format!("p95(lat[10m]) {by_st} > 0.9 * p95(lat[1h] offset 30m) {by_st}"),
                None,
                format!("count(lat[10m]) {by_st} >= 15"),
            ),
            (
                "p50(lat[15m]) by (server)".into(),
                Some("server"),
                format!("count(lat[5m]) {by_st} > 5"),
            ),
            (
                "quantile(0.9, lat[20m]) - 1".into(),
                None,
                "count(lat[20m]) > 3".into(),
            ),
            (
                format!("p95(lat[10m]) {by_st} or p50(lat[10m]) by (server)"),
                None,
                "count(lat[10m]) by (server) > 30".into(),
            ),
            (
                format!("p90(lat[10m]) by (server) > 88 or on (server) p50(lat[10m]) {by_st}"),
                None,
                format!("count(lat[10m]) {by_st} > 10"),
            ),
            (
                format!("p95(lat[10m]) by (server) unless on (server) count(lat[5m]) {by_st} > 40"),
                None,
                "count(lat[10m]) by (server) > 20".into(),
            ),
            (
                format!("(p95(lat[10m]) {by_st} and count(lat[10m]) {by_st} > 10) > 2"),
                None,
                format!("count(lat[30m]) {by_st} > 40"),
            ),
        ];
        let bits = |v: Value| -> Vec<(Labels, usize, Vec<Option<u64>>)> {
            let Value::Vector(v) = v else {
                panic!("a vector")
            };
            v.into_iter()
                .map(|s| {
                    let bits = s.values.iter().map(|x| x.get().map(f64::to_bits)).collect();
                    (s.labels, s.start, bits)
                })
                .collect()
        };
        for (lhs, on, rhs) in &cases {
            let on_clause = on.map(|o| format!(" on ({o})")).unwrap_or_default();
            let whole = value_of(&format!("({lhs}) and{on_clause} ({rhs})"));
            let (Value::Vector(l), Value::Vector(r)) = (value_of(lhs), value_of(rhs)) else {
                panic!("vectors")
            };
            let on_names = on.map(|o| vec![o.to_string()]);
            let apart = Value::Vector(set_op(BinOp::And, on_names.as_deref(), l, r));
            let whole = bits(whole);
            assert!(
                !whole.is_empty(),
                "{lhs} and {rhs}: an empty case tests nothing"
            );
            assert_eq!(whole, bits(apart), "{lhs} and{on_clause} {rhs}");
        }
    }

    /// The steps a demand asks of a series: where every `and` above has a
    /// series with the same match key, and none where one has no such series.
    #[test]
    fn a_demand_needs_the_steps_every_and_holds() {
        let n = 10;
        let rhs1 = vec![Series::new(
            l(&[("server", "a")]),
            2,
            step_values([Some(1.0), Some(1.0), None, Some(1.0), Some(1.0)]),
        )];
        let rhs2 = vec![Series::new(
            l(&[("server", "a"), ("tool", "x")]),
            0,
            step_values([Some(1.0); 5]),
        )];
        let on = ["server".to_string()];
        let demand = Demand::default()
            .and(Some(&on), &rhs1, n)
            .and(None, &rhs2, n);
        let steps = |labels: &[(&str, &str)]| {
            demand
                .steps_for(&l(labels), n)
                .map(|s| (0..n).filter(|&k| s.contains(k)).collect::<Vec<_>>())
        };
        assert_eq!(steps(&[("server", "a"), ("tool", "x")]), Some(vec![2, 3]));
        assert_eq!(steps(&[("server", "a"), ("tool", "y")]), Some(vec![]));
        assert_eq!(steps(&[("server", "b"), ("tool", "x")]), Some(vec![]));
        assert_eq!(Demand::default().steps_for(&l(&[("server", "a")]), n), None);
    }

    /// A left series with one partner gets, for every operator, what
    /// combining the two step by step gives: over spans that overlap on
    /// either side, nest, touch or miss each other, with gaps in both.
    #[test]
    fn one_partner_pairs_steps_as_combining_them_one_by_one() {
        let vals = |start: usize, n: usize, gap: usize| {
            let values = (0..n).map(|i| (i % gap != 0).then_some(i as f64 * 0.75 - 3.0));
            Series::new(vec![], start, step_values(values))
        };
        let ops = [
            BinOp::Add,
            BinOp::Sub,
            BinOp::Mul,
            BinOp::Div,
            BinOp::Mod,
            BinOp::Pow,
            BinOp::Gt,
            BinOp::Lt,
            BinOp::Ge,
            BinOp::Le,
            BinOp::Eq,
            BinOp::Ne,
        ];
        let l = vals(10, 20, 4);
        for (start, n) in [
            (0, 5),
            (0, 10),
            (0, 15),
            (12, 5),
            (5, 40),
            (25, 10),
            (30, 3),
            (40, 2),
        ] {
            let r = vals(start, n, 3);
            for op in ops {
                for return_bool in [false, true] {
                    let got: Vec<Option<f64>> = with_partner(op, return_bool, &l, &r)
                        .iter()
                        .map(|v| v.get())
                        .collect();
                    let want: Vec<Option<f64>> = (l.start..l.end())
                        .map(|k| {
                            let (a, b) = (l.at(k)?, r.at(k)?);
                            combine(op, return_bool, a, b, true)
                        })
                        .collect();
                    let bits = |v: &[Option<f64>]| -> Vec<Option<u64>> {
                        v.iter().map(|x| x.map(f64::to_bits)).collect()
                    };
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{op:?} bool {return_bool} r at {start}+{n}"
                    );
                }
            }
        }
    }

    /// Under a demand, `or` does not let its right side through at steps
    /// where its left side was left out: `(p95(x[10m]) or x) - x` holds one
    /// series per label set in full, and so it does inside an `and`.
    #[test]
    fn an_or_under_an_and_does_not_double_its_series() {
        let mut points = Vec::new();
        let mut t = 0i64;
        while t < 60 * 60_000 {
            points.push((t, (points.len() % 7) as f64 + 1.0));
            t += if t < 30 * 60_000 { 30_000 } else { 240_000 };
        }
        let src = MemorySource::new(vec![series("lat", &[("s", "a")], &points)]);
        let grid = Grid::range(10 * 60_000, 60 * 60_000, 60_000);
        let run = |q: &str| {
            let e = crate::dsl::parse_query(q).expect("parses");
            Evaluator::new(&src, grid).eval(&e)
        };
        let lhs = "(p95(lat[10m]) or lat) - lat";
        let rhs = "count(lat[10m]) > 5";
        let whole = run(&format!("({lhs}) and ({rhs})")).expect("no ambiguous match");
        let (Ok(Value::Vector(l)), Ok(Value::Vector(r))) = (run(lhs), run(rhs)) else {
            panic!("both sides evaluate to series")
        };
        let apart = Value::Vector(set_op(BinOp::And, None, l, r));
        assert!(whole.cells() > 1);
        assert_eq!(whole, apart);
    }

    /// Many short-lived series (MCP sessions) of two servers, with NaN,
    /// negative zero and a stale marker among their values.
    fn sessions() -> MemorySource {
        let mut all = Vec::new();
        let mut x: u64 = 7;
        for i in 0..300 {
            let server = if i % 3 == 0 { "a" } else { "b" };
            let session = format!("s{i:03}");
            let begin = (i as i64 % 50) * 60_000;
            let points: Vec<(i64, f64)> = (0..(1 + i % 7))
                .map(|k| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let v = match x % 40 {
                        0 => f64::NAN,
                        1 => -0.0,
                        2 if k > 0 => super::super::value::stale_nan(),
                        r => r as f64 * 0.37 - 3.0,
                    };
                    (begin + k as i64 * 17_000, v)
                })
                .collect();
            all.push(series(
                "calls",
                &[("server", server), ("session", &session)],
                &points,
            ));
        }
        MemorySource::new(all)
    }

    fn range_eval(src: &dyn Source, expr: &str, max_samples: u64) -> Result<Value, EngineError> {
        let file = crate::dsl::parse_str(&format!("record r = {expr}\n"), "t").expect("parses");
        let e = file.records().next().expect("record").expr.clone();
        Evaluator::new(src, Grid::range(0, 60 * 60_000, 60_000))
            .with_max_samples(max_samples)
            .eval(&e)
    }

    /// Each series' values by step, NaN made comparable.
    fn by_step(v: Value) -> Vec<(Labels, Vec<(usize, String)>)> {
        let Value::Vector(v) = v else {
            panic!("a vector")
        };
        v.into_iter()
            .map(|s| {
                let pts = (s.start..s.end())
                    .filter_map(|k| s.at(k).map(|x| (k, format!("{:?}", x + 0.0))))
                    .collect();
                (s.labels, pts)
            })
            .collect()
    }

    #[test]
    fn aggregations_folded_as_computed_equal_the_whole_result() {
        let src = sessions();
        for (streamed, whole) in [
            (
                "max by (server) (p99(calls[10m]))",
                "max by (server) (p99(calls[10m]) * 1)",
            ),
            (
                "min by (server) (avg(calls[5m]))",
                "min by (server) (avg(calls[5m]) * 1)",
            ),
            (
                "sum by (server) (count(calls[15m]))",
                "sum by (server) (count(calls[15m]) * 1)",
            ),
            ("sum(max(calls[20m]))", "sum(max(calls[20m]) * 1)"),
            (
                "count without (session) (last(calls[3m]))",
                "count without (session) (last(calls[3m]) * 1)",
            ),
            (
                "sum by (session) (delta(calls[30m]))",
                "sum by (session) (delta(calls[30m]) * 1)",
            ),
            (
                "rate(calls[10m]) by (server)",
                "sum by (server) (rate(calls[10m]))",
            ),
        ] {
            let a = by_step(range_eval(&src, streamed, u64::MAX).unwrap());
            let b = by_step(range_eval(&src, whole, u64::MAX).unwrap());
            assert!(!a.is_empty(), "{streamed}");
            assert_eq!(a, b, "{streamed} vs {whole}");
        }
    }

    #[test]
    fn the_samples_limit_refuses_before_it_computes() {
        let src = sessions();
        // 300 per-session series whose 1h windows reach most of 61 steps.
        let per_session = "p99(calls[1h])";
        let held = |limit| range_eval(&src, per_session, limit);
        assert!(held(u64::MAX).is_ok());
        assert!(matches!(
            held(5_000),
            Err(EngineError::TooManySamples { limit: 5_000 })
        ));
        // Aggregated as computed, the same function holds far less.
        assert!(range_eval(&src, "max by (server) (p99(calls[1h]))", 5_000).is_ok());
        // Pooled by server before it runs: two series.
        assert!(range_eval(&src, "p99(calls[1h]) by (server)", 2_000).is_ok());
    }
}
