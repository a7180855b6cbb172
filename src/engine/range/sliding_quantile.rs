//! Exact quantiles over sliding windows: the samples of a series ranked
//! once ([`Ranking`]), a bitmap over the ranks marks which samples are in
//! the window ([`RankSet`]), and a cursor at the quantile's rank follows it
//! from step to step ([`RankCursor`]). Results equal sorting each window in
//! Prometheus's order (NaN below every number).

use super::super::value::StepValue;
use crate::stats::quantile;

/// Exact quantiles of sliding windows: values ranked once, a bitmap over
/// the ranks marks which samples are in the window, and a cursor at the
/// quantile's rank follows it from step to step. Windows that slide by a few
/// samples move the quantile by a few ranks, so each step costs a few word
/// scans instead of a sort (or a tree descent per sample and query).
/// The quantile of each window that `needed` (by the window's index) asks
/// for; the others are left empty, though their samples still come and go.
pub(super) fn sliding_quantile(
    ranking: &Ranking,
    windows: &[(usize, usize)],
    q: f64,
    needed: impl Fn(usize) -> bool,
) -> Vec<StepValue> {
    let Ranking { rank, sorted } = ranking;
    if !(0.0..=1.0).contains(&q) {
        // φ outside [0, 1] (or NaN): Prometheus's constant, whatever a
        // window holds, as quantile_select answers it.
        let value = quantile::quantile_sorted(&sorted[..sorted.len().min(1)], q);
        return windows
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| StepValue::when(hi > lo && needed(i), || value))
            .collect();
    }
    let n = rank.len();
    let mut present = RankSet::new(n);
    let mut cursor = RankCursor::default();
    let (mut cur_lo, mut cur_hi) = (0usize, 0usize);
    // The window before and its quantile: a window that holds the same
    // samples (no call in the last step of a quiet tool) has the same one.
    let mut last: Option<((usize, usize), StepValue)> = None;
    // A plain loop over locals, not a closure over captured state: the
    // window bounds and the cursor then stay in registers.
    let mut out = Vec::with_capacity(windows.len());
    for (i, &(lo, hi)) in windows.iter().enumerate() {
        if !needed(i) {
            out.push(StepValue::NONE);
            continue;
        }
        if let Some((window, value)) = last
            && window == (lo, hi)
        {
            out.push(value);
            continue;
        }
        if hi > cur_hi {
            for &r in &rank[cur_hi..hi] {
                present.insert(r as usize);
                cursor.inserted(r as usize);
            }
            cur_hi = hi;
        }
        if lo > cur_lo {
            for &r in &rank[cur_lo..lo] {
                present.remove(r as usize);
                cursor.removed(r as usize);
            }
            cur_lo = lo;
        }
        let count = hi.saturating_sub(lo);
        if count == 0 {
            out.push(StepValue::NONE);
            continue;
        }
        let r = q * (count - 1) as f64;
        // 0 <= r < 2^53: truncation is the floor, without a libm call per
        // step. Through i64, which x86-64 converts in one instruction each
        // way (u64 takes a sequence of them).
        let floor = r as i64;
        let lower = floor as usize;
        let w = r - floor as f64;
        let at_lower = cursor.seek(&mut present, lower);
        let at_upper = if lower + 1 < count {
            present.next_from(at_lower + 1).unwrap_or(at_lower)
        } else {
            at_lower
        };
        let (a, b) = (sorted[at_lower], sorted[at_upper]);
        let value = StepValue::some(a * (1.0 - w) + b * w);
        last = Some(((lo, hi), value));
        out.push(value);
    }
    out
}

/// Each sample's rank among the series' values, and the values in rank order.
pub(super) struct Ranking {
    pub(super) rank: Vec<u32>,
    pub(super) sorted: Vec<f64>,
}

impl Ranking {
    /// Values ranked in quantile::quantile_order (NaN first, then the order
    /// of f64::total_cmp). Which of equal values gets which rank does not
    /// matter: their values are equal.
    ///
    /// A radix sort by the upper half of each value's order key (4 passes
    /// over 8-byte pairs, where the whole key took 8 passes over 16 bytes),
    /// then each run of equal upper halves put in order by the whole key:
    /// such runs are mostly single values or copies of one value, already
    /// in order.
    pub(super) fn new(vs: &[f64]) -> Ranking {
        let n = vs.len();
        let mut by_key: Vec<(u32, u32)> = vs
            .iter()
            .zip(0..n as u32)
            .map(|(&v, i)| ((order_key(v) >> 32) as u32, i))
            .collect();
        radsort::sort_by_key(&mut by_key, |p| p.0);
        let gathered = |by_key: &[(u32, u32)]| -> Vec<f64> {
            by_key.iter().map(|&(_, i)| vs[i as usize]).collect()
        };
        let mut sorted = gathered(&by_key);
        // Whether some run is out of order: one pass over neighbours in
        // rank order, without a branch per pair. Walking the runs one by
        // one (nearly 800k of them in a week of a fleet's latencies, most
        // of them copies of one value) cost a third of the ranking.
        let out_of_order = by_key
            .windows(2)
            .zip(sorted.windows(2))
            .fold(false, |out, (k, v)| {
                out | ((k[0].0 == k[1].0) & (order_key(v[0]) > order_key(v[1])))
            });
        if out_of_order {
            for run in by_key.chunk_by_mut(|a, b| a.0 == b.0) {
                if run.len() > 1 {
                    run.sort_unstable_by_key(|&(_, i)| order_key(vs[i as usize]));
                }
            }
            sorted = gathered(&by_key);
        }
        let mut rank = vec![0u32; n];
        for (r, &(_, i)) in by_key.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        Ranking { rank, sorted }
    }
}

/// A key whose unsigned order is quantile::quantile_order: 0 for every NaN
/// (which of them comes first does not matter, they are all NaN), numbers by
/// the bits of f64::total_cmp. No number's key has an upper half of 0:
/// -inf's is 0x000f_ffff.
pub(super) fn order_key(v: f64) -> u64 {
    if v.is_nan() {
        return 0;
    }
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// A set of ranks `0..n` as a bitmap, with a second bitmap of the words
/// that may be non-empty, so that a search skips empty stretches 4096
/// ranks at a time. A removal leaves its word's flag set: a search that
/// finds the word empty clears it then. Each removal costs at most one
/// such clearing, and the window walk removes as often as it inserts,
/// nearly always from words that are not empty.
pub(super) struct RankSet {
    words: Vec<u64>,
    nonempty: Vec<u64>,
}

impl RankSet {
    fn new(n: usize) -> RankSet {
        let words = n.div_ceil(64);
        RankSet {
            words: vec![0; words],
            nonempty: vec![0; words.div_ceil(64)],
        }
    }

    fn insert(&mut self, r: usize) {
        self.words[r / 64] |= 1u64 << (r % 64);
        self.nonempty[r / 4096] |= 1u64 << ((r / 64) % 64);
    }

    fn remove(&mut self, r: usize) {
        self.words[r / 64] &= !(1u64 << (r % 64));
    }

    fn contains(&self, r: usize) -> bool {
        self.words
            .get(r / 64)
            .is_some_and(|w| w & (1u64 << (r % 64)) != 0)
    }

    /// The smallest member `>= r`.
    #[inline]
    fn next_from(&mut self, r: usize) -> Option<usize> {
        let w = r / 64;
        let here = self.words.get(w)? & (u64::MAX << (r % 64));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let mut from = w + 1;
        loop {
            let w = Self::next_bit(&self.nonempty, from)?;
            let word = self.words[w];
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            self.nonempty[w / 64] &= !(1u64 << (w % 64));
            from = w + 1;
        }
    }

    /// The largest member `< r`.
    #[inline]
    fn prev_before(&mut self, r: usize) -> Option<usize> {
        let r = r.checked_sub(1)?;
        let w = r / 64;
        let here = self.words[w] & (u64::MAX >> (63 - r % 64));
        if here != 0 {
            return Some(w * 64 + 63 - here.leading_zeros() as usize);
        }
        let mut before = w;
        loop {
            let w = Self::prev_bit(&self.nonempty, before)?;
            let word = self.words[w];
            if word != 0 {
                return Some(w * 64 + 63 - word.leading_zeros() as usize);
            }
            self.nonempty[w / 64] &= !(1u64 << (w % 64));
            before = w;
        }
    }

    /// The smallest set bit `>= i` of a bitmap.
    fn next_bit(bits: &[u64], i: usize) -> Option<usize> {
        let mut w = i / 64;
        let mut word = bits.get(w)? & (u64::MAX << (i % 64));
        while word == 0 {
            w += 1;
            word = *bits.get(w)?;
        }
        Some(w * 64 + word.trailing_zeros() as usize)
    }

    /// The largest set bit `< i` of a bitmap.
    fn prev_bit(bits: &[u64], i: usize) -> Option<usize> {
        let i = i.checked_sub(1)?;
        let mut w = i / 64;
        let mut word = bits[w] & (u64::MAX >> (63 - i % 64));
        while word == 0 {
            w = w.checked_sub(1)?;
            word = bits[w];
        }
        Some(w * 64 + 63 - word.leading_zeros() as usize)
    }
}

/// A rank and how many members of a [`RankSet`] lie below it, kept up to
/// date as members come and go.
#[derive(Default)]
pub(super) struct RankCursor {
    at: usize,
    below: usize,
}

impl RankCursor {
    // Branch-free: whether a sample ranks below the cursor is a coin toss.
    fn inserted(&mut self, r: usize) {
        self.below += usize::from(r < self.at);
    }

    fn removed(&mut self, r: usize) {
        self.below -= usize::from(r < self.at);
    }

    /// The rank of the k-th (0-based) smallest member; the set holds more
    /// than `k` members.
    fn seek(&mut self, set: &mut RankSet, k: usize) -> usize {
        while self.below > k {
            // Step back onto the next member down: it becomes the cursor.
            self.at = set.prev_before(self.at).unwrap_or(0);
            self.below -= 1;
        }
        if !set.contains(self.at) {
            self.at = set.next_from(self.at).unwrap_or(self.at);
        }
        while self.below < k {
            self.below += 1;
            self.at = set.next_from(self.at + 1).unwrap_or(self.at);
        }
        self.at
    }
}
