//! The period `analyze`, `report` and `backtest` cover when no `--from` or
//! `--to` says otherwise: where the store's data is dense.
//!
//! The store's first and last samples are a poor default on their own: one
//! sample stamped 1970-01-01 or 9999-12-31 (a broken exporter clock, a typo
//! in a backfill) stretches the period over decades, and every step and
//! five-minute bucket of it costs memory. So the manifest's segments (each
//! with its first and last time and its row count) are joined into runs of
//! data with no gap of more than a day between them, and a run at either
//! end is left out when it is an outlier on both counts:
//!
//! - tiny: with the others left out on its side, it holds at most
//!   [`OUTLIER_SHARE`] of the samples;
//! - far: the gap to the next run is more than [`MIN_OUTLIER_GAP_MS`] and more
//!   than the span of the data that remains, so including it would more than
//!   double the period.
//!
//! The day a cron job reports on is never cut for being young: it touches the
//! day before. A store whose data sits in two large runs a year apart keeps
//! both.

use crate::store::SegmentMeta;
use crate::time::DAY_MS;

/// Segments further apart than this start a new run.
const RUN_GAP_MS: i64 = DAY_MS;

/// The largest share of all samples the runs left out on one side may hold.
pub const OUTLIER_SHARE: f64 = 0.01;

/// A run closer than this to the rest is never left out.
pub const MIN_OUTLIER_GAP_MS: i64 = 7 * DAY_MS;

/// A stretch of data: its first and last sample times and its sample count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub from_ms: i64,
    pub to_ms: i64,
    pub rows: u64,
}

/// The dense part of a store's data and the outlying runs left out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DensePeriod {
    pub from_ms: i64,
    pub to_ms: i64,
    /// In time order; those before `from_ms`, then those after `to_ms`.
    pub left_out: Vec<Run>,
}

/// The runs of data in the segments, in time order.
pub fn runs(segments: &[SegmentMeta]) -> Vec<Run> {
    let mut spans: Vec<Run> = segments
        .iter()
        .filter(|s| s.rows > 0)
        .map(|s| Run {
            from_ms: s.min_ts.min(s.max_ts),
            to_ms: s.max_ts.max(s.min_ts),
            rows: s.rows,
        })
        .collect();
    spans.sort_by_key(|r| (r.from_ms, r.to_ms));
    let mut out: Vec<Run> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.from_ms.saturating_sub(last.to_ms) <= RUN_GAP_MS => {
                last.to_ms = last.to_ms.max(s.to_ms);
                last.rows = last.rows.saturating_add(s.rows);
            }
            _ => out.push(s),
        }
    }
    out
}

/// Where the data is dense (see the module docs); `None` for an empty store.
pub fn dense_period(segments: &[SegmentMeta]) -> Option<DensePeriod> {
    let runs = runs(segments);
    let total: u64 = runs.iter().map(|r| r.rows).sum();
    let budget = (total as f64 * OUTLIER_SHARE).floor() as u64;
    // Gaps and spans in i128: times can sit anywhere in i64.
    let far = |gap_from: i64, gap_to: i64, rest_from: i64, rest_to: i64| {
        let gap = i128::from(gap_to) - i128::from(gap_from);
        gap > i128::from(MIN_OUTLIER_GAP_MS) && gap > i128::from(rest_to) - i128::from(rest_from)
    };
    // Runs lo..=hi are kept. Each side is cut at the innermost gap that
    // leaves a tiny outer part far from the rest; cutting one side shortens
    // the rest, which can make a gap on the other side count as far.
    let (mut lo, mut hi) = (0usize, runs.len().checked_sub(1)?);
    loop {
        let (was_lo, was_hi) = (lo, hi);
        let mut outer = 0u64;
        for k in 1..=hi {
            outer += runs[k - 1].rows;
            if outer > budget {
                break;
            }
            if k > lo
                && far(
                    runs[k - 1].to_ms,
                    runs[k].from_ms,
                    runs[k].from_ms,
                    runs[hi].to_ms,
                )
            {
                lo = k;
            }
        }
        let mut outer = 0u64;
        for k in (lo..runs.len() - 1).rev() {
            outer += runs[k + 1].rows;
            if outer > budget {
                break;
            }
            if k < hi
                && far(
                    runs[k].to_ms,
                    runs[k + 1].from_ms,
                    runs[lo].from_ms,
                    runs[k].to_ms,
                )
            {
                hi = k;
            }
        }
        if (lo, hi) == (was_lo, was_hi) {
            break;
        }
    }
    Some(DensePeriod {
        from_ms: runs[lo].from_ms,
        to_ms: runs[hi].to_ms,
        left_out: runs[..lo].iter().chain(&runs[hi + 1..]).copied().collect(),
    })
}

/// The first and last sample times the segments hold within [from, to]
/// (inclusive), from their recorded bounds: an upper bound on the span the
/// samples there cover. `None` when no segment overlaps the range.
pub fn extent_within(segments: &[SegmentMeta], from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for s in segments.iter().filter(|s| s.rows > 0) {
        let (a, b) = (s.min_ts.max(from_ms), s.max_ts.min(to_ms));
        if a <= b {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_305_600_000; // 2026-11-21

    fn seg(min_ts: i64, max_ts: i64, rows: u64) -> SegmentMeta {
        SegmentMeta {
            id: 0,
            day: String::new(),
            path: String::new(),
            rows,
            series: 1,
            min_ts,
            max_ts,
            bytes: 0,
            duplicates: 0,
            metrics: Vec::new(),
            labels: Vec::new(),
            checksums: None,
            committed: 0,
        }
    }

    /// Three busy days from T0.
    fn bulk() -> Vec<SegmentMeta> {
        (0..3)
            .map(|d| seg(T0 + d * DAY_MS, T0 + (d + 1) * DAY_MS - 1, 100_000))
            .collect()
    }

    #[test]
    fn an_empty_store_has_no_period() {
        assert_eq!(dense_period(&[]), None);
    }

    #[test]
    fn dense_data_is_all_kept() {
        let p = dense_period(&bulk()).unwrap();
        assert_eq!((p.from_ms, p.to_ms), (T0, T0 + 3 * DAY_MS - 1));
        assert!(p.left_out.is_empty());
    }

    #[test]
    fn lone_samples_decades_away_are_left_out() {
        let mut s = bulk();
        s.push(seg(0, 0, 1));
        s.push(seg(253_402_300_799_000, 253_402_300_799_000, 1)); // 9999-12-31T23:59:59Z
        let p = dense_period(&s).unwrap();
        assert_eq!((p.from_ms, p.to_ms), (T0, T0 + 3 * DAY_MS - 1));
        assert_eq!(
            p.left_out,
            vec![
                Run {
                    from_ms: 0,
                    to_ms: 0,
                    rows: 1
                },
                Run {
                    from_ms: 253_402_300_799_000,
                    to_ms: 253_402_300_799_000,
                    rows: 1
                }
            ]
        );
    }

    #[test]
    fn a_young_day_next_to_the_rest_is_kept() {
        let mut s = bulk();
        s.push(seg(T0 + 3 * DAY_MS, T0 + 3 * DAY_MS + 60_000, 3));
        let p = dense_period(&s).unwrap();
        assert_eq!(p.to_ms, T0 + 3 * DAY_MS + 60_000);
        assert!(p.left_out.is_empty());
    }

    #[test]
    fn a_small_run_within_a_week_is_kept() {
        let mut s = bulk();
        s.push(seg(T0 + 8 * DAY_MS, T0 + 8 * DAY_MS, 5));
        assert!(dense_period(&s).unwrap().left_out.is_empty());
    }

    #[test]
    fn large_runs_far_apart_are_both_kept() {
        let mut s = bulk();
        s.push(seg(T0 + 365 * DAY_MS, T0 + 366 * DAY_MS, 50_000));
        let p = dense_period(&s).unwrap();
        assert_eq!((p.from_ms, p.to_ms), (T0, T0 + 366 * DAY_MS));
    }

    #[test]
    fn several_outliers_on_one_side_share_the_budget() {
        let mut s = bulk();
        // 1% of 304k is 3040: the oldest two (2500 together) go, as one
        // part far from the rest; with the third it would be 4000.
        s.push(seg(T0 - 100 * DAY_MS, T0 - 100 * DAY_MS, 1500));
        s.push(seg(T0 - 1000 * DAY_MS, T0 - 1000 * DAY_MS, 1500));
        s.push(seg(T0 - 2000 * DAY_MS, T0 - 2000 * DAY_MS, 1000));
        let p = dense_period(&s).unwrap();
        assert_eq!(p.from_ms, T0 - 100 * DAY_MS);
        assert_eq!(p.left_out.len(), 2);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let s = vec![seg(i64::MIN, i64::MIN, 1), seg(i64::MAX, i64::MAX, 1)];
        let p = dense_period(&s).unwrap();
        assert_eq!((p.from_ms, p.to_ms), (i64::MIN, i64::MAX));
        assert_eq!(extent_within(&s, 0, 10), None);
        assert_eq!(
            extent_within(&bulk(), T0 + DAY_MS, i64::MAX),
            Some((T0 + DAY_MS, T0 + 3 * DAY_MS - 1))
        );
    }
}
