//! Generated expressions of the rule language evaluated over hostile series
//! (NaN, infinities, values near f64::MAX, stale markers, counter resets,
//! timestamps shared across series, gaps): none may panic, a result holds
//! one series per label set, and a range evaluation equals, step by step,
//! the instant evaluations at the steps' times, which skip the kernels that
//! only pay over many windows (sliding quantiles, step counts, shared
//! rankings; prefix sums and extremes they share). And a store gives what
//! memory gives. Deterministic (xorshift), fast in debug.

use crate::common;

use common::XorShift;
use mcpops::dsl::functions::{Param, Pool, functions};
use mcpops::dsl::parse_query;
use mcpops::engine::{Evaluator, Grid, MemorySource, Series, Value, query::query};
use mcpops::model::{SampleSink, SeriesKey};
use mcpops::store::{SeriesData, Store};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Expressions per seed; each seed draws its own series too.
const EXPRESSIONS: usize = 600;
const SEEDS: [u64; 3] = [0x9e37_79b9_7f4a_7c15, 3, 6];
const MINUTE: i64 = 60_000;

/// Three hours of samples for servers a, b and c of four metrics: a gauge
/// (`g`), a counter with resets (`c`), hostile values (`h`), and a gauge
/// with gaps and stale markers (`s`); and calls (`calls`) of 120 sessions. Every series is in time order with
/// one sample per timestamp; series of one metric share some timestamps.
fn hostile_series(rng: &mut XorShift) -> Vec<SeriesData> {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let hostile = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        f64::MAX,
        1e16,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
    ];
    let mut out = Vec::new();
    for metric in ["g", "c", "h", "s"] {
        for server in ["a", "b", "c"] {
            let mut labels = vec![("server".to_string(), server.to_string())];
            if server != "c" {
                labels.push(("tool".to_string(), format!("t{}", rng.below(2))));
            }
            let (mut timestamps, mut values) = (Vec::new(), Vec::new());
            let mut t = rng.below(20) as i64 * 1000;
            let mut counter = 0.0;
            while t < 180 * MINUTE {
                let v = match metric {
                    "g" => (rng.below(1000) as f64) / 10.0,
                    "c" => {
                        counter = if rng.below(40) == 0 {
                            0.0
                        } else {
                            counter + rng.below(50) as f64
                        };
                        counter
                    }
                    "h" if rng.below(4) == 0 => hostile[rng.below(hostile.len())],
                    "h" => rng.below(100) as f64,
                    _ if rng.below(30) == 0 => stale,
                    _ => rng.below(10) as f64,
                };
                timestamps.push(t);
                values.push(v);
                // 15 s scrapes, some late, and for `s` gaps of up to 20 minutes.
                t += 15_000 + rng.below(3) as i64 * 1000;
                if metric == "s" && rng.below(60) == 0 {
                    t += rng.below(20) as i64 * MINUTE;
                }
            }
            out.push(SeriesData {
                key: SeriesKey::new(metric, labels),
                timestamps,
                values,
            });
        }
    }
    // Calls, one short series per session (the labels the store orders
    // after time), some of them at the same millisecond as others: a
    // pooled group's samples at one time come in the order of its members,
    // key order from memory, row order where the scan itself pools.
    for session in 0..120 {
        let server = ["a", "b", "c"][session % 3];
        let labels = vec![
            ("server".to_string(), server.to_string()),
            ("session".to_string(), format!("s{session}")),
            ("tool".to_string(), format!("t{}", rng.below(2))),
        ];
        let mut t = rng.below(180) as i64 * MINUTE + rng.below(4) as i64 * 250;
        let (mut timestamps, mut values) = (Vec::new(), Vec::new());
        for _ in 0..2 + rng.below(5) {
            if t >= 180 * MINUTE {
                break;
            }
            timestamps.push(t);
            values.push(if rng.below(20) == 0 {
                hostile[rng.below(hostile.len())]
            } else {
                rng.below(5000) as f64 / 1000.0
            });
            t += (1 + rng.below(8) as i64) * 15_000;
        }
        out.push(SeriesData {
            key: SeriesKey::new("calls", labels),
            timestamps,
            values,
        });
    }
    out
}

/// A range selector.
fn range(rng: &mut XorShift) -> String {
    let metric = rng.pick(&["g", "c", "h", "s", "calls", "missing"]);
    let matcher = rng.pick(&[
        "",
        "{server=\"a\"}",
        "{server!=\"b\"}",
        "{tool=~\"t.*\"}",
        "{tool=\"\"}",
    ]);
    let window = rng.pick(&["1m", "5m", "7m30s", "20m", "1h", "2h"]);
    let offset = rng.pick(&["", "", " offset 1m", " offset 90s", " offset 1h"]);
    format!("{metric}{matcher}[{window}]{offset}")
}

/// An instant expression, at most `depth` levels deep.
fn instant(rng: &mut XorShift, depth: u32) -> String {
    let leaf = depth == 0 || rng.below(4) == 0;
    if leaf {
        return match rng.below(3) {
            0 => format!(
                "{}{}",
                rng.pick(&["g", "c", "h", "s", "calls"]),
                rng.pick(&["", "{server=\"a\"}", " offset 5m"])
            ),
            _ => over_time(rng),
        };
    }
    let d = depth - 1;
    match rng.below(6) {
        0 | 1 => over_time(rng),
        2 => {
            let agg = rng.pick(&["sum", "avg", "min", "max", "count", "stddev"]);
            let by = rng.pick(&["", " by (server)", " without (tool)", " by (tool)"]);
            format!("{agg}{by} ({})", instant(rng, d))
        }
        3 => {
            let k = rng.pick(&["1", "2"]);
            let which = rng.pick(&["topk", "bottomk"]);
            format!("{which}({k}, {})", instant(rng, d))
        }
        4 => {
            let op = rng.pick(&["+", "-", "*", "/", "%", "^", "and", "or", "unless"]);
            let on = rng.pick(&["", "", " on (server)"]);
            format!("({}) {op}{on} ({})", instant(rng, d), instant(rng, d))
        }
        _ => {
            let op = rng.pick(&[">", "<", ">=", "<=", "==", "!=", "> bool", "* 2 +"]);
            let number = rng.pick(&["0", "1", "-1", "0.5", "1e308", "5m"]);
            format!("({}) {op} {number}", instant(rng, d))
        }
    }
}

/// A function over a range, of each series or pooled over groups of them:
/// any of the function table's, so that a new one is generated too.
fn over_time(rng: &mut XorShift) -> String {
    let r = range(rng);
    let all: Vec<_> = functions().collect();
    let f = all[rng.below(all.len())];
    let call = match f.params {
        [Param::Range] => format!("{}({r})", f.name),
        [Param::Scalar, Param::Range] => format!(
            "{}({}, {r})",
            f.name,
            rng.pick(&["0", "0.5", "0.95", "1", "2"])
        ),
        [Param::Range, Param::Scalar] => format!("{}({r}, {})", f.name, rng.pick(&["10m", "1h"])),
        [Param::Range, Param::Threshold] => {
            format!("{}({r}, {})", f.name, rng.pick(&["0", "100", "1e308", "g"]))
        }
        other => panic!("a function of {other:?}: teach the generator its arguments"),
    };
    // Pooled: the function over every sample of each group's series.
    let pool = if f.pool == Pool::Not {
        ""
    } else {
        rng.pick(&[
            "",
            "",
            " by (server)",
            " by (server, tool)",
            " without (tool)",
        ])
    };
    format!("{call}{pool}")
}

/// What an evaluation gives at each step: labels to value.
type Steps = Vec<BTreeMap<String, f64>>;

/// A series' name and labels, as one key.
fn series_key(s: &Series) -> String {
    format!("{:?}{:?}", s.metric, s.labels)
}

/// A label set (and name) that more than one of the result's series carry:
/// a result holds one series per label set.
fn duplicate_series(value: &Value) -> Option<String> {
    let Value::Vector(series) = value else {
        return None;
    };
    let mut seen = std::collections::HashSet::new();
    series
        .iter()
        .map(series_key)
        .find(|key| !seen.insert(key.clone()))
}

fn by_step(value: Value, steps: usize) -> Steps {
    let mut out = vec![BTreeMap::new(); steps];
    match value {
        Value::Scalar(x) => {
            for step in &mut out {
                step.insert(String::new(), x);
            }
        }
        Value::Vector(series) => {
            for s in series {
                let key = series_key(&s);
                for (k, step) in out.iter_mut().enumerate() {
                    if let Some(x) = s.at(k) {
                        step.insert(key.clone(), x);
                    }
                }
            }
        }
    }
    out
}

/// Equal, both NaN, or apart by rounding: relatively, or below the
/// smallest normal number (a sum of the same values in another order).
fn same(a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    (a.is_nan() && b.is_nan())
        || a == b
        || d <= 1e-9 * a.abs().max(b.abs())
        || d < f64::MIN_POSITIVE
}

/// The same series with the same values (NaN equal to NaN) at one step.
fn same_step(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, x), (kb, y))| ka == kb && same(*x, *y))
}

#[test]
fn generated_expressions_never_panic_and_a_range_equals_its_instants() {
    // Steps off the samples' grid and ranges that are not whole steps, then
    // a 1m grid on which the whole-step kernels apply.
    let grids = [
        Grid::range(100 * MINUTE + 7_000, 170 * MINUTE, 7 * MINUTE),
        Grid::range(60 * MINUTE, 190 * MINUTE, MINUTE),
    ];
    let (mut checked, mut rejected) = (0, 0);
    let mut failures = Vec::new();
    for seed in SEEDS {
        let mut rng = XorShift(seed);
        let source = MemorySource::new(hostile_series(&mut rng));
        for _ in 0..EXPRESSIONS {
            let text = instant(&mut rng, 3);
            let Ok(expr) = parse_query(&text) else {
                rejected += 1;
                continue;
            };
            checked += 1;
            for (g, grid) in grids.iter().enumerate() {
                // A grid's steps thinned out for the instant side: debug builds
                // re-read every window for each.
                let stride = if g == 0 { 1 } else { 13 };
                let run = catch_unwind(AssertUnwindSafe(|| {
                    let ranged = Evaluator::new(&source, *grid)
                        .sharing([&expr])
                        .eval(&expr)
                        .map(|v| (duplicate_series(&v), by_step(v, grid.n)));
                    let instants: Vec<_> = (0..grid.n)
                        .step_by(stride)
                        .map(|k| {
                            let at = Grid::instant(grid.time(k));
                            let one = Evaluator::new(&source, at).eval(&expr);
                            (k, one.map(|v| by_step(v, 1).remove(0)))
                        })
                        .collect();
                    (ranged, instants)
                }));
                let Ok((ranged, instants)) = run else {
                    failures.push(format!("`{text}` panicked on grid {g}"));
                    continue;
                };
                let ranged = match ranged {
                    Ok((Some(twice), _)) => {
                        failures.push(format!("`{text}` grid {g}: two series {twice}"));
                        continue;
                    }
                    Ok((None, r)) => r,
                    Err(e) => {
                        // As in PromQL, a range fails where one of its steps
                        // does (several series matching one key at that step).
                        let fails_somewhere = (0..grid.n).any(|k| {
                            Evaluator::new(&source, Grid::instant(grid.time(k)))
                                .eval(&expr)
                                .is_err()
                        });
                        if !fails_somewhere {
                            failures.push(format!("`{text}`: range fails ({e}), no step does"));
                        }
                        continue;
                    }
                };
                for (k, one) in instants {
                    let one = match one {
                        Ok(one) => one,
                        Err(e) => {
                            failures.push(format!("`{text}` at step {k}: instant fails ({e})"));
                            continue;
                        }
                    };
                    let agree = same_step(&one, &ranged[k]);
                    if !agree {
                        failures.push(format!(
                            "`{text}` grid {g} step {k}:\n    range:   {:?}\n    instant: {one:?}",
                            ranged[k]
                        ));
                    }
                }
            }
        }
    }
    let generated = EXPRESSIONS * SEEDS.len();
    assert!(
        checked >= generated * 3 / 4,
        "only {checked} of {generated} generated expressions parse ({rejected} rejected)"
    );
    assert!(
        failures.is_empty(),
        "{} failures, the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The same series read back from a store (two commits, a later one
/// rewriting samples of the first, the three hours across midnight so that
/// they fill two day segments) give what they give from memory, for every
/// generated expression on both grids: the scan's row-group pruning, runs,
/// merges and pooled reads change nothing.
#[test]
fn a_store_reads_back_what_memory_evaluates() {
    // 2025-11-15T23:00:00Z.
    const T0: i64 = 1_763_247_600_000;
    let grids = [
        Grid::range(T0 + 100 * MINUTE + 7_000, T0 + 170 * MINUTE, 7 * MINUTE),
        Grid::range(T0 + 40 * MINUTE, T0 + 190 * MINUTE, MINUTE),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let mut failures = Vec::new();
    for (n, seed) in SEEDS.into_iter().enumerate() {
        let mut rng = XorShift(seed);
        let mut series = hostile_series(&mut rng);
        let store = Store::open(dir.path().join(format!("store{n}")));
        for commit in 0..2 {
            let mut w = store.writer().expect("writer");
            for s in &mut series {
                let id = w.intern(s.key.clone());
                let calls = s.key.metric == "calls";
                for (i, (t, v)) in s.timestamps.iter().zip(&mut s.values).enumerate() {
                    // The second commit writes every third sample and
                    // rewrites every seventh of the first (not of the
                    // calls: pooled reads keep such duplicates, a known
                    // departure).
                    let first = i % 3 != 2;
                    let rewrite = commit == 1 && first && i % 7 == 0 && !calls;
                    if rewrite {
                        *v += 1000.0;
                    }
                    if (commit == 0 && first) || (commit == 1 && !first) || rewrite {
                        w.push(id, T0 + t, *v).expect("push");
                    }
                }
            }
            w.commit().expect("commit");
        }
        for s in &mut series {
            for t in &mut s.timestamps {
                *t += T0;
            }
        }
        let memory = MemorySource::new(series);
        for _ in 0..EXPRESSIONS / 2 {
            let text = instant(&mut rng, 3);
            // present_ratio expects the median spacing of the samples the
            // evaluation holds: all of memory's, only the range a store
            // reads. A known departure, left to its own issue.
            if text.contains("present_ratio") {
                continue;
            }
            let Ok(expr) = parse_query(&text) else {
                continue;
            };
            for (g, grid) in grids.iter().enumerate() {
                let stored = query(
                    store.snapshot().expect("snapshot"),
                    &expr,
                    *grid,
                    mcpops::engine::budget::DEFAULT_MAX_SAMPLES,
                );
                if let Some(twice) = stored.as_ref().ok().and_then(duplicate_series) {
                    failures.push(format!("seed {seed} `{text}` grid {g}: two series {twice}"));
                }
                let stored = stored.map(|v| by_step(v, grid.n));
                let held = Evaluator::new(&memory, *grid)
                    .sharing([&expr])
                    .eval(&expr)
                    .map(|v| by_step(v, grid.n));
                let agree = match (&stored, &held) {
                    (Ok(a), Ok(b)) => a.iter().zip(b).all(|(a, b)| same_step(a, b)),
                    (Err(a), Err(b)) => a.to_string() == b.to_string(),
                    _ => false,
                };
                if !agree {
                    let first_difference = match (&stored, &held) {
                        (Ok(a), Ok(b)) => a
                            .iter()
                            .zip(b)
                            .enumerate()
                            .find(|(_, (a, b))| !same_step(a, b))
                            .map(|(k, (a, b))| format!("step {k}: {a:?}\n    memory: {b:?}")),
                        _ => Some(format!("{:?}\n    memory: {:?}", stored.err(), held.err())),
                    };
                    failures.push(format!(
                        "seed {seed} `{text}` grid {g}:\n    store:  {}",
                        first_difference.unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences, the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
