//! Where selectors get their samples: the store (read once per metric and
//! shared by every rule that names it), series held in memory (rule tests),
//! and an overlay that adds the output of `record` rules on top of either.

use super::EngineError;
use crate::model::{Matcher, SeriesKey, series_matches};
use crate::store::{ScanRequest, SeriesData, Snapshot};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The series of one metric that match a selector, in time order each.
pub type Selected = Arc<Vec<Arc<SeriesData>>>;

pub trait Source: Sync {
    /// Series of `metric` matching `matchers` with samples in `start..=end` (ms).
    /// A source may return more samples than asked; callers window them.
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Selected, EngineError>;
}

/// A borrowed source is a source: whoever holds `&dyn Source` can hand it
/// where a `Box<dyn Source>` is wanted, with no wrapper of its own.
impl<S: Source + ?Sized> Source for &S {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Selected, EngineError> {
        (**self).select(metric, matchers, start_ms, end_ms)
    }
}

/// Samples read from a store snapshot. Each metric is scanned once over the
/// source's whole time range and kept; selectors filter it in memory, so the
/// many rules that read `mcp.server.operation.duration` pay for one scan.
pub struct StoreSource {
    snapshot: Snapshot,
    start_ms: i64,
    end_ms: i64,
    cache: Mutex<HashMap<String, Arc<Vec<Arc<SeriesData>>>>>,
    /// Labels the scan of a metric may drop (see [`super::plan`]).
    drop: HashMap<String, Vec<String>>,
    /// The metrics the expressions read, for [`StoreSource::prefetch`].
    planned: Vec<String>,
    /// Samples read from the store so far (each metric counted once).
    pub samples_read: std::sync::atomic::AtomicU64,
}

impl StoreSource {
    /// A source that reads `start_ms..=end_ms`: the evaluation range widened
    /// by the longest lookback of the expressions to evaluate.
    pub fn new(snapshot: Snapshot, start_ms: i64, end_ms: i64) -> StoreSource {
        StoreSource {
            snapshot,
            start_ms,
            end_ms,
            cache: Mutex::new(HashMap::new()),
            drop: HashMap::new(),
            planned: Vec::new(),
            samples_read: Default::default(),
        }
    }

    /// Reads what `plan` says the expressions read: only the labels they
    /// need, where every use of a metric pools its samples (see
    /// [`super::plan`]).
    pub fn with_plan(mut self, plan: &super::plan::Plan) -> Self {
        for (metric, needed) in plan.reads() {
            self.planned.push(metric.clone());
            let Some(needed) = needed else { continue };
            let stored: BTreeSet<&String> = self
                .snapshot
                .manifest()
                .segments
                .iter()
                .filter(|s| s.metrics.contains(metric))
                .flat_map(|s| &s.labels)
                .collect();
            let drop: Vec<String> = stored
                .into_iter()
                .filter(|l| !needed.contains(*l))
                .cloned()
                .collect();
            if !drop.is_empty() {
                self.drop.insert(metric.clone(), drop);
            }
        }
        self
    }

    /// Scans every metric of the expressions given to
    /// [`StoreSource::for_expressions`] before evaluation starts, in one
    /// pass over the store: a day's gauges share row groups (and their value
    /// dictionary) with its MCP calls. Rules evaluated in parallel would
    /// otherwise ask for the same metric at the same moment and both scan it
    /// (the cache only knows a metric once its scan is done).
    pub fn prefetch(&self) -> Result<(), EngineError> {
        let cached = self.cache.lock().map_err(poisoned)?;
        let missing: Vec<&String> = self
            .planned
            .iter()
            .filter(|m| !cached.contains_key(*m))
            .collect();
        drop(cached);
        let reqs: Vec<ScanRequest> = missing.iter().map(|m| self.request(m)).collect();
        for (metric, series) in missing.into_iter().zip(self.snapshot.scan_many(&reqs)?) {
            self.keep(metric, series)?;
        }
        Ok(())
    }

    fn metric(&self, metric: &str) -> Result<Arc<Vec<Arc<SeriesData>>>, EngineError> {
        if let Some(hit) = self.cache.lock().map_err(poisoned)?.get(metric) {
            return Ok(hit.clone());
        }
        let series = self.snapshot.scan(&self.request(metric))?;
        self.keep(metric, series)
    }

    /// What to read of a metric: the source's time range, every series,
    /// without the labels no expression needs.
    fn request(&self, metric: &str) -> ScanRequest {
        ScanRequest {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            metric: Some(metric.to_string()),
            without: self.drop.get(metric).cloned().unwrap_or_default(),
            ..ScanRequest::all()
        }
    }

    /// Caches a metric's series and counts their samples as read.
    fn keep(
        &self,
        metric: &str,
        series: Vec<SeriesData>,
    ) -> Result<Arc<Vec<Arc<SeriesData>>>, EngineError> {
        let series: Vec<Arc<SeriesData>> = series.into_iter().map(Arc::new).collect();
        let n: usize = series.iter().map(|s| s.timestamps.len()).sum();
        self.samples_read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        let series = Arc::new(series);
        self.cache
            .lock()
            .map_err(poisoned)?
            .insert(metric.to_string(), series.clone());
        Ok(series)
    }
}

fn poisoned<T>(_: T) -> EngineError {
    EngineError::Internal("a parallel evaluation failed while holding the scan cache".into())
}

impl Source for StoreSource {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Selected, EngineError> {
        let all = self.metric(metric)?;
        Ok(filter(&all, matchers))
    }
}

fn filter(all: &Arc<Vec<Arc<SeriesData>>>, matchers: &[Matcher]) -> Selected {
    if matchers.is_empty() {
        return all.clone();
    }
    Arc::new(
        all.iter()
            .filter(|s| series_matches(&s.key, matchers))
            .cloned()
            .collect(),
    )
}

/// Series held in memory, by metric name.
#[derive(Default)]
pub struct MemorySource {
    by_metric: HashMap<String, Arc<Vec<Arc<SeriesData>>>>,
}

impl MemorySource {
    pub fn new(series: Vec<SeriesData>) -> MemorySource {
        let mut src = MemorySource::default();
        src.add(series);
        src
    }

    /// Adds series; a series whose key is already present is replaced.
    pub fn add(&mut self, series: Vec<SeriesData>) {
        let mut grouped: HashMap<String, Vec<SeriesData>> = HashMap::new();
        for s in series {
            grouped.entry(s.key.metric.clone()).or_default().push(s);
        }
        for (metric, added) in grouped {
            let mut merged: Vec<Arc<SeriesData>> = self
                .by_metric
                .get(&metric)
                .map(|v| v.as_ref().clone())
                .unwrap_or_default();
            for s in added {
                merged.retain(|old| old.key != s.key);
                merged.push(Arc::new(s));
            }
            // In key order, as a store's scan gives them: a pooled group's
            // members then merge in the same order from both, and its sums
            // add in the same order.
            merged.sort_by(|a, b| a.key.cmp(&b.key));
            self.by_metric.insert(metric, Arc::new(merged));
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.by_metric
            .values()
            .flat_map(|v| v.iter().map(|s| &s.key))
    }
}

impl Source for MemorySource {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Selected, EngineError> {
        Ok(match self.by_metric.get(metric) {
            Some(all) => filter(all, matchers),
            None => Arc::new(Vec::new()),
        })
    }
}

/// A base source plus series added on top (the output of `record` rules):
/// a metric present in the overlay is read from it alone.
pub struct Overlay<'a> {
    pub base: &'a dyn Source,
    pub extra: MemorySource,
}

impl Source for Overlay<'_> {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Selected, EngineError> {
        if self.extra.by_metric.contains_key(metric) {
            return self.extra.select(metric, matchers, start_ms, end_ms);
        }
        self.base.select(metric, matchers, start_ms, end_ms)
    }
}
