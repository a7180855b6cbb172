//! Checks of what counters and classic histograms promise, made as samples
//! stream in, across every file of a run. Nothing is dropped: a sample that
//! breaks a promise is stored as written, and the run's report carries a
//! warning naming the file, line, series and what queries will make of it.
//!
//! - A histogram's buckets at one timestamp must include `le="+Inf"`, and
//!   their cumulative counts must not go down as `le` rises; `le` must be a
//!   number.
//! - A counter (a `_total` name, a declared counter, a histogram's or
//!   summary's `_count`) must not go down unless its process restarted: a
//!   change of `process_start_time_seconds` of the same `instance`/`job`
//!   (or `server`), or of the counter's `_created`, in the same interval.
//!
//! Every series gets a [`Role`] once, when first interned, so the per-sample
//! cost for a gauge is one indexed load and a branch. Buckets are grouped
//! per histogram (the series without `le`) and checked per timestamp: in
//! files written scrape by scrape (or OpenMetrics point by point) a batch
//! is the contiguous run of a histogram's buckets at one time; in files
//! written series by series the buckets of a time arrive far apart and are
//! held per timestamp up to [`MAX_PENDING_BUCKETS`]. Counter resets are
//! decided at the end of the run, when every restart is known whatever the
//! order of the file.

use super::IngestWarning;
use crate::metadata::{MetricType, Part, part_in_family};
use crate::model::SeriesKey;
// Looked up once per sample of a scrape or a file: foldhash, not SipHash.
use foldhash::{HashMap, HashMapExt};

/// The metric whose changes mark a process restart.
pub const START_TIME_METRIC: &str = "process_start_time_seconds";

/// Labels that name the process a series comes from, in this order.
const PROCESS_LABELS: [&str; 3] = ["instance", "job", "server"];

/// Bucket samples held for histograms written series by series (24 bytes
/// each): beyond it their checks stop, and a warning says so.
pub const MAX_PENDING_BUCKETS: usize = 4 << 20;

/// Counter resets held until the end of the run to be matched with
/// restarts; beyond it they are counted, unchecked, and a warning says so.
const MAX_RESETS: usize = 1 << 20;

/// What a series is, for the checks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    None,
    /// A counter: its state's index.
    Counter(u32),
    /// A bucket of histogram `group` with a numeric `le`.
    Bucket {
        group: u32,
        le: f64,
    },
    /// `process_start_time_seconds` of process `process`: its state's index.
    StartTime {
        process: u32,
        state: u32,
    },
    /// A `_created` series: the key it shares with its counter, its state.
    Created {
        key: u32,
        state: u32,
    },
}

/// The last sample of a series, for comparing the next with.
#[derive(Clone, Copy)]
struct Last {
    ts: i64,
    value: f64,
}

const NO_LAST: Last = Last {
    ts: i64::MIN,
    value: f64::NAN,
};

struct CounterState {
    series: u32,
    process: u32,
    created: u32,
    last: Last,
}

/// A counter that went down between two samples.
struct Reset {
    counter: u32,
    prev: Last,
    now: Last,
    file: u32,
    line: u64,
}

/// One bucket at one time.
#[derive(Clone, Copy)]
struct Bucket {
    le: f64,
    value: f64,
    line: u64,
    file: u32,
}

#[derive(PartialEq)]
enum Layout {
    Unknown,
    /// A time's buckets come together (scrapes, OpenMetrics points).
    Contiguous,
    /// Each bucket's series comes whole, one after another.
    BySeries,
}

/// The first time a problem was seen and how many times in all.
#[derive(Clone, Default)]
struct Seen {
    count: u64,
    first: Option<(u32, u64, i64, String)>,
}

impl Seen {
    fn add(&mut self, file: u32, line: u64, ts: i64, detail: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((file, line, ts, detail()));
        }
    }
}

struct Group {
    /// The histogram's series without `le`, as messages name it.
    name: String,
    layout: Layout,
    /// The sink id of the bucket series last seen.
    last_series: u32,
    cur_ts: i64,
    cur: Vec<Bucket>,
    by_ts: HashMap<i64, Vec<Bucket>>,
    /// Buckets not checked: too many held for a series-by-series file.
    unchecked: u64,
    no_inf: Seen,
    decreasing: Seen,
}

/// The checks' state over one run.
#[derive(Default)]
pub(crate) struct Checks {
    roles: Vec<Role>,
    counters: Vec<CounterState>,
    /// Last sample of each start-time and `_created` series.
    lasts: Vec<Last>,
    groups: Vec<Group>,
    group_ids: HashMap<SeriesKey, u32>,
    /// Process identities (the values of [`PROCESS_LABELS`]) to an id.
    processes: HashMap<Vec<String>, u32>,
    /// `(family, labels)` keys shared by a counter and its `_created`.
    created_keys: HashMap<SeriesKey, u32>,
    /// Intervals `(before, at]` in which a process restarted, by process id.
    restarts: HashMap<u32, Vec<(i64, i64)>>,
    /// Intervals in which a `_created` changed, by created key.
    recreated: HashMap<u32, Vec<(i64, i64)>>,
    resets: Vec<Reset>,
    resets_unchecked: u64,
    pending: usize,
    /// Files as warnings name them, by index.
    pub(crate) files: Vec<String>,
    /// Per series (sink id) with an `le` that is not a number: reported at intern.
    pub(crate) warnings: Vec<IngestWarning>,
}

impl Checks {
    /// Gives a newly interned series its role. `declared`: the family type
    /// and part a `# TYPE` line gave its name, if any.
    pub(crate) fn classify(
        &mut self,
        id: u32,
        key: &SeriesKey,
        declared: Option<(MetricType, Option<Part>, &str)>,
        file: u32,
        line: u64,
    ) {
        let role = self.role_of(key, declared, file, line);
        let i = id as usize;
        if self.roles.len() <= i {
            self.roles.resize(i + 1, Role::None);
        }
        self.roles[i] = role;
    }

    fn role_of(
        &mut self,
        key: &SeriesKey,
        declared: Option<(MetricType, Option<Part>, &str)>,
        file: u32,
        line: u64,
    ) -> Role {
        let name = key.metric.as_str();
        if name == START_TIME_METRIC {
            let process = self.process_of(key);
            self.lasts.push(NO_LAST);
            return Role::StartTime {
                process,
                state: self.lasts.len() as u32 - 1,
            };
        }
        // The family and part, declared or by the name's conventions.
        let (kind, part, family) = match declared {
            Some((kind, part, family)) => (Some(kind), part, family.to_string()),
            None => {
                let guess = [Part::Total, Part::Bucket, Part::Count, Part::Created]
                    .into_iter()
                    .find_map(|p| name.strip_suffix(p.suffix()).map(|stem| (p, stem)));
                match guess {
                    Some((p, stem)) => (None, Some(p), stem.to_string()),
                    None => (None, None, name.to_string()),
                }
            }
        };
        let without = |drop: &str| {
            SeriesKey::new(
                family.clone(),
                key.labels
                    .iter()
                    .filter(|(k, _)| k != drop)
                    .cloned()
                    .collect(),
            )
        };
        match (kind, part) {
            (
                None | Some(MetricType::Histogram | MetricType::GaugeHistogram),
                Some(Part::Bucket),
            ) => {
                let Some(le_text) = key.label("le") else {
                    return Role::None;
                };
                let Some(le) = super::parse_f64(le_text.trim().as_bytes()).filter(|l| !l.is_nan())
                else {
                    self.warnings.push(IngestWarning {
                        file: self.files[file as usize].clone(),
                        line,
                        message: format!(
                            "histogram bucket `{key}`: le=\"{}\" is not a number; its samples are \
                             kept, and Prometheus's histogram_quantile leaves such a bucket out",
                            super::show_str(le_text)
                        ),
                    });
                    return Role::None;
                };
                let group_key = without("le");
                let next = self.groups.len() as u32;
                let group = *self.group_ids.entry(group_key.clone()).or_insert(next);
                if group == next {
                    self.groups.push(Group {
                        name: format!("{}{}", key.metric, &group_key.to_string()[family.len()..]),
                        layout: Layout::Unknown,
                        last_series: u32::MAX,
                        cur_ts: i64::MIN,
                        cur: Vec::new(),
                        by_ts: HashMap::new(),
                        unchecked: 0,
                        no_inf: Seen::default(),
                        decreasing: Seen::default(),
                    });
                }
                Role::Bucket { group, le }
            }
            (None | Some(MetricType::Counter | MetricType::Histogram), Some(Part::Created)) => {
                let created = self.created_key(without(""));
                self.lasts.push(NO_LAST);
                Role::Created {
                    key: created,
                    state: self.lasts.len() as u32 - 1,
                }
            }
            (None, Some(Part::Total))
            | (Some(MetricType::Counter), None | Some(Part::Total))
            | (Some(MetricType::Histogram | MetricType::Summary), Some(Part::Count)) => {
                let process = self.process_of(key);
                let created = self.created_key(without(""));
                self.counters.push(CounterState {
                    series: u32::MAX,
                    process,
                    created,
                    last: NO_LAST,
                });
                Role::Counter(self.counters.len() as u32 - 1)
            }
            _ => Role::None,
        }
    }

    fn process_of(&mut self, key: &SeriesKey) -> u32 {
        let identity: Vec<String> = PROCESS_LABELS
            .iter()
            .map(|l| key.label(l).unwrap_or("").to_string())
            .collect();
        let next = self.processes.len() as u32;
        *self.processes.entry(identity).or_insert(next)
    }

    fn created_key(&mut self, key: SeriesKey) -> u32 {
        let next = self.created_keys.len() as u32;
        *self.created_keys.entry(key).or_insert(next)
    }

    /// Checks one sample of series `id`.
    #[inline]
    pub(crate) fn sample(&mut self, id: u32, ts: i64, value: f64, file: u32, line: u64) {
        let Some(&role) = self.roles.get(id as usize) else {
            return;
        };
        match role {
            Role::None => {}
            Role::Counter(c) => self.counter(c, id, ts, value, file, line),
            Role::Bucket { group, le } => self.bucket(
                group,
                id,
                ts,
                Bucket {
                    le,
                    value,
                    line,
                    file,
                },
            ),
            Role::StartTime { process, state } => {
                if let Some((before, at)) = self.changed(state, ts, value) {
                    self.restarts.entry(process).or_default().push((before, at));
                }
            }
            Role::Created { key, state } => {
                if let Some((before, at)) = self.changed(state, ts, value) {
                    self.recreated.entry(key).or_default().push((before, at));
                }
            }
        }
    }

    /// Updates a start-time or `_created` series; the interval in which its
    /// value changed, if it did.
    fn changed(&mut self, state: u32, ts: i64, value: f64) -> Option<(i64, i64)> {
        let last = &mut self.lasts[state as usize];
        if ts <= last.ts {
            return None; // out of order or repeated: nothing to compare with
        }
        let before = *last;
        *last = Last { ts, value };
        (before.ts != i64::MIN && before.value != value && !value.is_nan())
            .then_some((before.ts, ts))
    }

    fn counter(&mut self, c: u32, id: u32, ts: i64, value: f64, file: u32, line: u64) {
        let state = &mut self.counters[c as usize];
        state.series = id;
        if ts <= state.last.ts || value.is_nan() {
            return;
        }
        let prev = state.last;
        state.last = Last { ts, value };
        if value < prev.value {
            if self.resets.len() < MAX_RESETS {
                self.resets.push(Reset {
                    counter: c,
                    prev,
                    now: Last { ts, value },
                    file,
                    line,
                });
            } else {
                self.resets_unchecked += 1;
            }
        }
    }

    fn bucket(&mut self, g: u32, id: u32, ts: i64, b: Bucket) {
        let group = &mut self.groups[g as usize];
        let same_series = group.last_series == id;
        group.last_series = id;
        if group.layout == Layout::BySeries {
            if self.pending < MAX_PENDING_BUCKETS {
                group.by_ts.entry(ts).or_default().push(b);
                self.pending += 1;
            } else {
                group.unchecked += 1;
            }
            return;
        }
        if group.cur.is_empty() || ts == group.cur_ts {
            group.cur_ts = ts;
            group.cur.push(b);
            return;
        }
        // A new time. One bucket so far, and the same series again: the
        // file is written series by series.
        if group.layout == Layout::Unknown && group.cur.len() == 1 && same_series {
            group.layout = Layout::BySeries;
            let held = std::mem::take(&mut group.cur);
            self.pending += held.len() + 1;
            group.by_ts.insert(group.cur_ts, held);
            group.by_ts.entry(ts).or_default().push(b);
            return;
        }
        group.layout = Layout::Contiguous;
        let batch = std::mem::replace(&mut group.cur, vec![b]);
        let at = std::mem::replace(&mut group.cur_ts, ts);
        check_batch(group, at, batch);
    }

    /// Finishes the checks at the end of the run: the warnings, in order of
    /// file and line.
    pub(crate) fn finish(&mut self, names: &dyn Fn(u32) -> String) -> Vec<IngestWarning> {
        let mut out = std::mem::take(&mut self.warnings);
        let files = self.files.clone();
        let place = |file: u32| files[file as usize].clone();
        for group in &mut self.groups {
            let cur = std::mem::take(&mut group.cur);
            if !cur.is_empty() {
                check_batch(group, group.cur_ts, cur);
            }
            let mut held: Vec<(i64, Vec<Bucket>)> = group.by_ts.drain().collect();
            held.sort_by_key(|(ts, _)| *ts);
            for (ts, batch) in held {
                check_batch(group, ts, batch);
            }
            let more = |n: u64| {
                if n > 1 {
                    format!(" (and at {} more times)", n - 1)
                } else {
                    String::new()
                }
            };
            if let Some((file, line, ts, _)) = &group.no_inf.first {
                out.push(IngestWarning {
                    file: place(*file),
                    line: *line,
                    message: format!(
                        "histogram `{}` has no le=\"+Inf\" bucket at {}{}: its samples are kept, \
                         and histogram_quantile gives NaN for it, as Prometheus's does",
                        group.name,
                        crate::time::format_ms(*ts),
                        more(group.no_inf.count)
                    ),
                });
            }
            if let Some((file, line, ts, detail)) = &group.decreasing.first {
                out.push(IngestWarning {
                    file: place(*file),
                    line: *line,
                    message: format!(
                        "histogram `{}` at {}: bucket counts go down as le rises ({detail}){}: \
                         the samples are kept as written, and histogram_quantile takes each \
                         bucket as at least the one below it, as Prometheus's does",
                        group.name,
                        crate::time::format_ms(*ts),
                        more(group.decreasing.count)
                    ),
                });
            }
            if group.unchecked > 0 {
                out.push(IngestWarning {
                    file: String::new(),
                    line: 0,
                    message: format!(
                        "histogram `{}`: {} bucket samples were not checked (+Inf and order): \
                         the run's files hold more than {MAX_PENDING_BUCKETS} buckets written \
                         series by series; they are stored as written",
                        group.name, group.unchecked
                    ),
                });
            }
        }
        // Counter resets that no restart explains, the first per series.
        let mut per_counter: HashMap<u32, (usize, u64)> = HashMap::new();
        for (i, r) in self.resets.iter().enumerate() {
            let c = &self.counters[r.counter as usize];
            let overlaps = |spans: Option<&Vec<(i64, i64)>>| {
                spans.is_some_and(|s| {
                    s.iter()
                        .any(|&(before, at)| before < r.now.ts && at > r.prev.ts)
                })
            };
            if overlaps(self.restarts.get(&c.process)) || overlaps(self.recreated.get(&c.created)) {
                continue;
            }
            per_counter.entry(r.counter).or_insert((i, 0)).1 += 1;
        }
        let mut firsts: Vec<(usize, u64)> = per_counter.into_values().collect();
        firsts.sort();
        for (i, count) in firsts {
            let r = &self.resets[i];
            let series = names(self.counters[r.counter as usize].series);
            out.push(IngestWarning {
                file: place(r.file),
                line: r.line,
                message: format!(
                    "counter `{series}` went down from {} to {} at {} with no restart \
                     ({START_TIME_METRIC} and `_created` unchanged){}: the samples are kept, \
                     and rate and increase count it as a reset, as Prometheus does (the \
                     increase across it is taken as {})",
                    r.prev.value,
                    r.now.value,
                    crate::time::format_ms(r.now.ts),
                    if count > 1 {
                        format!(" (and {} more times)", count - 1)
                    } else {
                        String::new()
                    },
                    r.now.value
                ),
            });
        }
        if self.resets_unchecked > 0 {
            out.push(IngestWarning {
                file: String::new(),
                line: 0,
                message: format!(
                    "{} more counter decreases were not matched with restarts (more than \
                     {MAX_RESETS} in one run); their samples are stored as written",
                    self.resets_unchecked
                ),
            });
        }
        out
    }
}

/// Checks the buckets of one histogram at one time.
fn check_batch(group: &mut Group, ts: i64, mut batch: Vec<Bucket>) {
    if !batch.is_sorted_by(|a, b| a.le <= b.le) {
        batch.sort_by(|a, b| a.le.total_cmp(&b.le));
    }
    let first = batch[0];
    if batch.last().is_none_or(|b| b.le != f64::INFINITY) {
        group.no_inf.add(first.file, first.line, ts, String::new);
    }
    if let Some(w) = batch
        .windows(2)
        .find(|w| w[1].value < w[0].value && w[1].le > w[0].le)
    {
        let (a, b) = (w[0], w[1]);
        group.decreasing.add(b.file, b.line, ts, || {
            format!(
                "le=\"{}\" counts {}, le=\"{}\" counts {}",
                le_text(a.le),
                a.value,
                le_text(b.le),
                b.value
            )
        });
    }
}

fn le_text(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

/// The family, part and type a `# TYPE` line gave `name`: its own family,
/// else the family it is a sample of.
pub(crate) fn declared_family<'a>(
    name: &str,
    types: &'a std::collections::HashMap<String, MetricType>,
) -> Option<(MetricType, Option<Part>, &'a str)> {
    if let Some((family, &kind)) = types.get_key_value(name) {
        let part = part_in_family(name, family, kind).flatten();
        return Some((kind, part, family));
    }
    for suffix in [
        "_total", "_bucket", "_sum", "_count", "_created", "_gsum", "_gcount", "_info",
    ] {
        if let Some(stem) = name.strip_suffix(suffix)
            && let Some((family, &kind)) = types.get_key_value(stem)
            && let Some(part) = part_in_family(name, family, kind)
        {
            return Some((kind, part, family));
        }
    }
    None
}
