//! The online anomaly detector behind `mcpops detect`: it scores each row
//! of a series in [0, 1] from that row and the rows before it only, the way
//! a detector watching live data has to, with one configuration for every
//! series. 0.5 and above is an alarm.
//!
//! [`Detector`] is the streaming kernel; [`detect_csv`] runs it over a
//! `timestamp,value` CSV file and writes `timestamp,value,anomaly_score`;
//! [`read_series`] loads such a file for other callers (the NAB scorer in
//! [`super::nab`]). How the detector decides is told on [`Detector`]; how
//! well it does is measured by `mcpops evaluate` on the NAB corpus.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What can go wrong reading a series or writing scores.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {source}")]
    Csv {
        file: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: empty: expected a `timestamp,value` header and at least one row")]
    Empty { file: PathBuf },
    #[error("{file}: line {line}: no `{column}` column")]
    MissingColumn {
        file: PathBuf,
        line: u64,
        column: &'static str,
    },
    #[error("{file}: line {line}: `{text}` is not a number")]
    BadNumber {
        file: PathBuf,
        line: u64,
        text: String,
    },
    #[error(
        "{file}: line {line}: `{text}` is not a timestamp (expected e.g. `2014-04-01 00:00:00`)"
    )]
    BadTimestamp {
        file: PathBuf,
        line: u64,
        text: String,
    },
    #[error("cannot write scores for {file}: {source}")]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A series read from a `timestamp,value` CSV file, rows in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// One data row: as written, and parsed.
struct Row {
    timestamp_text: String,
    value_text: String,
    timestamp_ms: i64,
    value: f64,
}

/// Reads `path` row by row, handing each parsed row to `each`.
fn for_each_row(
    path: &Path,
    mut each: impl FnMut(Row) -> Result<(), DetectError>,
) -> Result<usize, DetectError> {
    let file = std::fs::File::open(path).map_err(|source| DetectError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let csv_error = |source: csv::Error| {
        let line = source.position().map_or(0, |p| p.line());
        if source.is_io_error() {
            // A read failure is about the file, not about a line of it.
            let source = match source.into_kind() {
                csv::ErrorKind::Io(e) => e,
                other => std::io::Error::other(format!("{other:?}")),
            };
            DetectError::Io {
                file: path.to_path_buf(),
                source,
            }
        } else {
            DetectError::Csv {
                file: path.to_path_buf(),
                line,
                source,
            }
        }
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].trim().is_empty()) {
        return Err(DetectError::Empty {
            file: path.to_path_buf(),
        });
    }
    let find = |name: &'static str| {
        headers
            .iter()
            .position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
            .ok_or(DetectError::MissingColumn {
                file: path.to_path_buf(),
                line: 1,
                column: name,
            })
    };
    let (ts_col, value_col) = (find("timestamp")?, find("value")?);
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, |p| p.line());
        let field = |col: usize, column: &'static str| {
            record.get(col).ok_or(DetectError::MissingColumn {
                file: path.to_path_buf(),
                line,
                column,
            })
        };
        let ts_text = field(ts_col, "timestamp")?;
        let value_text = field(value_col, "value")?;
        let timestamp_ms =
            crate::time::parse_timestamp(ts_text).ok_or_else(|| DetectError::BadTimestamp {
                file: path.to_path_buf(),
                line,
                text: ts_text.to_string(),
            })?;
        // f64's parser takes `NaN` and `inf` too: those are values the
        // detector knows to skip.
        let value: f64 = value_text
            .trim()
            .parse()
            .map_err(|_| DetectError::BadNumber {
                file: path.to_path_buf(),
                line,
                text: value_text.to_string(),
            })?;
        each(Row {
            timestamp_text: ts_text.to_string(),
            value_text: value_text.to_string(),
            timestamp_ms,
            value,
        })?;
        rows += 1;
    }
    if rows == 0 {
        return Err(DetectError::Empty {
            file: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// Reads a `timestamp,value` CSV file (a header row naming both columns,
/// then one row per sample) into memory.
pub fn read_series(path: &Path) -> Result<Series, DetectError> {
    let mut series = Series::default();
    for_each_row(path, |row| {
        series.timestamps.push(row.timestamp_ms);
        series.values.push(row.value);
        Ok(())
    })?;
    Ok(series)
}

/// Scores every row of a `timestamp,value` CSV file with a fresh default
/// detector and writes `timestamp,value,anomaly_score`: a header, then one
/// row per input row in input order, timestamp and value as written in the
/// input. Returns the number of rows. The whole input is read and checked
/// before anything is written, so bad input leaves `out` untouched.
pub fn detect_csv(path: &Path, out: &mut dyn Write) -> Result<usize, DetectError> {
    let mut detector = Detector::new(DetectorConfig::default());
    let mut scored = Vec::new();
    for_each_row(path, |row| {
        let score = detector.score(row.timestamp_ms, row.value);
        scored.push((row.timestamp_text, row.value_text, score));
        Ok(())
    })?;
    let write_error = |source: std::io::Error| DetectError::Write {
        file: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(out);
    let csv_write_error = |e: csv::Error| {
        write_error(match e.into_kind() {
            csv::ErrorKind::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        })
    };
    writer
        .write_record(["timestamp", "value", "anomaly_score"])
        .map_err(csv_write_error)?;
    for (ts, value, score) in &scored {
        writer
            .write_record([ts.as_str(), value.as_str(), &format!("{score}")])
            .map_err(csv_write_error)?;
    }
    writer.flush().map_err(write_error)?;
    Ok(scored.len())
}

/// Detector settings. The defaults are the one configuration used for every
/// series (tuned on the NAB subset shipped under `shared/data/nab`); row
/// counts assume NAB's usual five-minute sampling (288 rows a day).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Rows at the start that only teach the detector and always score 0.
    pub learn_rows: usize,
    /// Range channel: a value beyond every earlier value by this share of
    /// their range raises an alarm.
    pub range_margin: f64,
    /// Shape channel: length of the stretch of recent rows compared with
    /// every earlier stretch.
    pub shape_len: usize,
    /// Shape channel: rows of history before its distances are recorded
    /// (with less history every stretch looks new).
    pub shape_start: usize,
    /// Shape channel: distances recorded before it may raise an alarm.
    pub shape_warm: usize,
    /// Shape channel: an alarm needs a distance beyond the largest recorded
    /// one by this share of the recorded range.
    pub shape_margin: f64,
    /// Day channel: rows averaged into one block.
    pub day_block: usize,
    /// Day channel: blocks in the compared stretch (block × blocks = a day).
    pub day_blocks: usize,
    /// Day channel: blocks of history before its distances are recorded.
    pub day_start: usize,
    /// Day channel: distances recorded before it may raise an alarm.
    pub day_warm: usize,
    /// Day channel: as `shape_margin`.
    pub day_margin: f64,
    /// Shift channel: rows in the recent mean.
    pub shift_short: usize,
    /// Shift channel: rows in the recent mean plus the baseline just before
    /// them that it is compared with.
    pub shift_long: usize,
    /// Shift channel: statistics recorded before it may raise an alarm.
    pub shift_warm: usize,
    /// Shift channel: as `range_margin`, for the shift statistic.
    pub shift_margin: f64,
    /// Rows after an alarm during which no other alarm is raised.
    pub quiet_rows: usize,
    /// Rows the shape and day channels remember (2016: a week), which bounds
    /// the work and memory per row, so a long series costs linear time.
    pub history_rows: usize,
}

impl DetectorConfig {
    /// The configurations tuning may choose from (`mcpops nab cv`), named;
    /// the default first, so that it wins a tie.
    pub fn search_space() -> Vec<(String, DetectorConfig)> {
        vec![("default".to_string(), DetectorConfig::default())]
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            learn_rows: 150,
            range_margin: 0.035,
            shape_len: 16,
            shape_start: 200,
            shape_warm: 100,
            shape_margin: 0.175,
            day_block: 24,
            day_blocks: 12,
            day_start: 24,
            day_warm: 20,
            day_margin: 0.35,
            shift_short: 12,
            shift_long: 288,
            shift_warm: 50,
            shift_margin: 0.117,
            quiet_rows: 10,
            history_rows: 2016,
        }
    }
}

/// Which channel gave a row its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The value left the range of every earlier value.
    Range,
    /// The last few rows form a shape unlike any earlier stretch.
    Shape,
    /// The last day, in blocks, is unlike any earlier day.
    Day,
    /// The recent mean moved away from the day before it.
    Shift,
}

/// The extremes of a feature so far, and how far a new value goes past them
/// as a share of their range: 0 inside the range. A record broken by a wide
/// margin is the one signal all channels share, since it needs no model of
/// the feature's distribution and adapts to each series' own scale.
#[derive(Debug, Clone)]
struct Record {
    min: f64,
    max: f64,
    count: usize,
}

impl Record {
    fn new() -> Self {
        Record {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            count: 0,
        }
    }

    fn range(&self) -> f64 {
        // A flat history still has a scale, so that leaving it counts.
        (self.max - self.min).max(1e-12 * self.max.abs().max(self.min.abs()).max(1.0))
    }

    /// How far `f` goes above the maximum, as a share of the range.
    fn above(&self, f: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        ((f - self.max) / self.range()).max(0.0)
    }

    /// How far `f` goes outside the range on either side.
    fn outside(&self, f: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.above(f).max((self.min - f) / self.range())
    }

    fn push(&mut self, f: f64) {
        if f.is_finite() {
            self.min = self.min.min(f);
            self.max = self.max.max(f);
            self.count += 1;
        }
    }
}

/// The left matrix profile of a stream: for each new value, the distance
/// (root mean square) from the stretch of the last `m` values to the
/// nearest earlier stretch that does not overlap it. Squared distances to
/// every earlier stretch are kept and slid along their diagonals, so each
/// new value costs O(history) rather than O(history × m).
#[derive(Debug, Clone)]
struct LeftProfile {
    m: usize,
    /// The retained tail of the stream.
    x: Vec<f64>,
    /// `sq[k]`: squared distance between the stretch ending at the newest
    /// value and the one ending at `x[m - 1 + k]`.
    sq: Vec<f64>,
    spare: Vec<f64>,
    /// Values kept before the oldest are dropped (at least 2m).
    keep: usize,
    /// Values pushed so far, to schedule exact recomputation.
    pushed: usize,
}

impl LeftProfile {
    fn new(m: usize, keep: usize) -> Self {
        // Bounds that keep the index arithmetic below far from overflow
        // whatever the configuration says.
        let m = m.clamp(1, 1 << 20);
        LeftProfile {
            m,
            x: Vec::new(),
            sq: Vec::new(),
            spare: Vec::new(),
            keep: keep.clamp(2 * m + 1, 1 << 40),
            pushed: 0,
        }
    }

    fn push(&mut self, v: f64) -> Option<f64> {
        let m = self.m;
        if self.x.len() >= 2 * self.keep {
            // Forget the oldest values; amortised O(1) per push.
            let drop = self.x.len() - self.keep;
            self.x.drain(..drop);
            self.sq.drain(..drop.min(self.sq.len()));
        }
        self.x.push(v);
        self.pushed += 1;
        let t = self.x.len() - 1;
        if t < m {
            return None;
        }
        let x = &self.x;
        let direct = |j: usize| -> f64 {
            (0..m)
                .map(|k| {
                    let d = x[t - k] - x[j - k];
                    d * d
                })
                .sum()
        };
        let n_old = self.sq.len();
        self.spare.clear();
        self.spare.resize(n_old + 1, 0.0);
        if self.pushed.is_multiple_of(256) {
            // Sliding sums drift; start them afresh now and then.
            for (k, s) in self.spare.iter_mut().enumerate() {
                *s = direct(m - 1 + k);
            }
        } else {
            self.spare[0] = direct(m - 1);
            let (xt, xtm) = (x[t], x[t - m]);
            let out = &mut self.spare[1..];
            // Plain zipped slices so that the loop vectorises.
            for (((o, &p), &a), &b) in out
                .iter_mut()
                .zip(&self.sq[..n_old])
                .zip(&x[m..m + n_old])
                .zip(&x[..n_old])
            {
                let a = xt - a;
                let b = xtm - b;
                *o = p + a * a - b * b;
            }
        }
        std::mem::swap(&mut self.sq, &mut self.spare);
        // Earlier stretches that do not overlap the newest: ending at j <= t - m.
        if t < 2 * m - 1 {
            return None;
        }
        let candidates = &self.sq[..t + 1 - 2 * m + 1];
        let mut lanes = [f64::INFINITY; 4];
        let mut chunks = candidates.chunks_exact(4);
        for ch in &mut chunks {
            for (lane, &v) in lanes.iter_mut().zip(ch) {
                *lane = if v < *lane { v } else { *lane };
            }
        }
        let best = chunks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
        Some((best.max(0.0) / m as f64).sqrt())
    }
}

/// The online anomaly detector: feed it rows in order with
/// [`Detector::score`]; each row's score depends only on that row and the
/// rows before it.
///
/// Four channels each turn the stream into a feature and measure how far
/// the newest value of the feature breaks that feature's record:
///
/// - range: the value itself against every earlier value;
/// - shape: the distance from the last `shape_len` rows to the nearest
///   earlier stretch (a left matrix profile), so a pattern never seen
///   before stands out even within the usual range;
/// - day: the same over a day of block means, for a day unlike the others
///   (a missing daily peak, a flattened day);
/// - shift: how many standard deviations of the day before them the mean
///   of the last `shift_short` rows moved.
///
/// A channel's evidence is its record excess divided by its margin; the
/// largest evidence `E` gives the score `E / (1 + E)`, so 0.5 is where the
/// detector itself would raise an alarm. After an alarm the next
/// `quiet_rows` rows score below 0.5: NAB (and an operator) pays for every
/// repeated alarm but gains nothing from it.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    /// Finite rows seen.
    seen: usize,
    range: Record,
    shape: LeftProfile,
    shape_record: Record,
    block_sum: f64,
    block_rows: usize,
    blocks: usize,
    day: LeftProfile,
    day_record: Record,
    /// The last `shift_long` values.
    recent: std::collections::VecDeque<f64>,
    shift_record: Record,
    /// Rows since the last alarm (`None` before the first).
    since_alarm: Option<usize>,
    last_channel: Option<Channel>,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        Detector {
            seen: 0,
            range: Record::new(),
            shape: LeftProfile::new(config.shape_len, config.history_rows),
            shape_record: Record::new(),
            block_sum: 0.0,
            block_rows: 0,
            blocks: 0,
            day: LeftProfile::new(
                config.day_blocks,
                config.history_rows / config.day_block.max(1),
            ),
            day_record: Record::new(),
            recent: std::collections::VecDeque::new(),
            shift_record: Record::new(),
            since_alarm: None,
            last_channel: None,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The channel behind the last score, `None` when it was 0. Lets a
    /// report say why a row was flagged.
    pub fn last_channel(&self) -> Option<Channel> {
        self.last_channel
    }

    /// Scores the next row in [0, 1]; 0.5 and above is an alarm. A value
    /// that is not finite (NaN, infinity) scores 0 and teaches nothing. The
    /// timestamp is accepted for the API's sake but unused: like NAB, the
    /// detector treats rows by position, so repeated or backward
    /// timestamps change nothing.
    pub fn score(&mut self, _timestamp_ms: i64, value: f64) -> f64 {
        self.last_channel = None;
        if !value.is_finite() {
            return 0.0;
        }
        let c = &self.config;
        let row = self.seen;
        self.seen += 1;
        let scoring = row >= c.learn_rows;
        let mut evidence = 0.0;
        let mut channel = None;
        let mut offer = |e: f64, margin: f64, ch: Channel| {
            // Capping the excess at one whole range keeps a single wild
            // value from dwarfing everything after it.
            let e = e.min(1.0) / margin.max(f64::MIN_POSITIVE);
            if e > evidence {
                evidence = e;
                channel = Some(ch);
            }
        };

        if scoring {
            offer(self.range.outside(value), c.range_margin, Channel::Range);
        }
        self.range.push(value);

        if let Some(d) = self.shape.push(value) {
            if scoring && self.shape_record.count >= c.shape_warm {
                offer(self.shape_record.above(d), c.shape_margin, Channel::Shape);
            }
            if row >= c.shape_start {
                self.shape_record.push(d);
            }
        }

        self.block_sum += value;
        self.block_rows += 1;
        if self.block_rows >= c.day_block.max(1) {
            let mean = self.block_sum / self.block_rows as f64;
            self.block_sum = 0.0;
            self.block_rows = 0;
            self.blocks += 1;
            if let Some(d) = self.day.push(mean) {
                if scoring && self.day_record.count >= c.day_warm {
                    offer(self.day_record.above(d), c.day_margin, Channel::Day);
                }
                if self.blocks >= c.day_start {
                    self.day_record.push(d);
                }
            }
        }

        let long = c.shift_long.clamp(2, 1 << 20);
        self.recent.push_back(value);
        if self.recent.len() > long {
            self.recent.pop_front();
        }
        if self.recent.len() == long {
            let short = c.shift_short.clamp(1, long - 1);
            let recent_mean = self.recent.iter().rev().take(short).sum::<f64>() / short as f64;
            // The baseline is the window before the recent rows, so that a
            // shift does not drag its own baseline along.
            let base = long - short;
            let mean = self.recent.iter().take(base).sum::<f64>() / base as f64;
            let var = self
                .recent
                .iter()
                .take(base)
                .map(|x| (x - mean) * (x - mean))
                .sum::<f64>()
                / base as f64;
            // A flat baseline still has a scale relative to the data.
            let floor = 1e-6 * self.range.max.abs().max(self.range.min.abs()) + 1e-12;
            let z = (recent_mean - mean) / var.sqrt().max(floor);
            if scoring && self.shift_record.count >= c.shift_warm {
                offer(self.shift_record.outside(z), c.shift_margin, Channel::Shift);
            }
            self.shift_record.push(z);
        }

        if !evidence.is_finite() {
            evidence = 0.0;
            channel = None;
        }
        let c = &self.config;
        let quiet = self.since_alarm.is_some_and(|n| n < c.quiet_rows);
        if quiet {
            // Hold the score below the alarm line; the quiet time runs from
            // the alarm, not from the rows it holds back.
            evidence = evidence.min(0.5);
        } else if evidence >= 1.0 {
            self.since_alarm = Some(0);
        }
        if let Some(n) = self.since_alarm.as_mut()
            && (quiet || evidence < 1.0)
        {
            *n = n.saturating_add(1);
        }
        self.last_channel = if evidence > 0.0 { channel } else { None };
        evidence / (1.0 + evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profile by brute force over the values the profile retains.
    fn brute(x: &[f64], m: usize) -> Option<f64> {
        let t = x.len() - 1;
        if t < 2 * m - 1 {
            return None;
        }
        let best = (m - 1..=t - m)
            .map(|j| (0..m).map(|k| (x[t - k] - x[j - k]).powi(2)).sum::<f64>())
            .fold(f64::INFINITY, f64::min);
        Some((best / m as f64).sqrt())
    }

    #[test]
    fn sliding_profile_matches_brute_force_also_after_forgetting() {
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f64 / 10.0
        };
        for (m, keep, spikes) in [
            (1, 10, false),
            (3, 50, false),
            (7, 64, false),
            (16, 5000, false),
            (1, 10, true),
            (7, 64, true),
        ] {
            let scale: f64 = if spikes { 1e6 } else { 100.0 };
            let mut p = LeftProfile::new(m, keep);
            for i in 0..1500 {
                let v = if spikes && i % 97 == 0 { 1e6 } else { next() };
                let got = p.push(v);
                let want = brute(&p.x, p.m);
                match (got, want) {
                    // Sliding sums of squares drift by rounding relative
                    // to the largest values they pass over, and the square
                    // root magnifies that near 0: within a millionth of the
                    // largest value is what to expect.
                    (Some(g), Some(w)) => assert!(
                        (g - w).abs() <= 1e-6 * scale,
                        "m {m} keep {keep} row {i}: {g} vs {w}"
                    ),
                    (g, w) => assert_eq!(g, w, "m {m} keep {keep} row {i}"),
                }
            }
            assert!(p.x.len() <= 2 * p.keep);
        }
    }

    #[test]
    fn scores_stay_in_range_on_extreme_values() {
        let mut d = Detector::new(DetectorConfig::default());
        for i in 0..3000i64 {
            let v = match i % 7 {
                0 => f64::MAX,
                1 => f64::MIN,
                2 => f64::NAN,
                3 => 1e-300,
                4 => f64::INFINITY,
                _ => (i as f64).sin(),
            };
            let s = d.score(i * 300_000, v);
            assert!((0.0..=1.0).contains(&s), "row {i}: {s}");
        }
    }

    #[test]
    fn absurd_settings_do_not_panic() {
        let config = DetectorConfig {
            learn_rows: 0,
            shape_len: usize::MAX,
            shape_start: 0,
            shape_warm: 0,
            day_block: 0,
            day_blocks: 0,
            shift_short: usize::MAX,
            shift_long: usize::MAX,
            history_rows: usize::MAX,
            range_margin: 0.0,
            shape_margin: f64::NAN,
            ..DetectorConfig::default()
        };
        let mut d = Detector::new(config);
        for i in 0..500 {
            let s = d.score(i, (i % 17) as f64);
            assert!((0.0..=1.0).contains(&s), "row {i}: {s}");
        }
    }

    #[test]
    fn a_flat_series_is_quiet_until_it_moves() {
        let mut d = Detector::new(DetectorConfig::default());
        for i in 0..2000 {
            assert_eq!(d.score(i, 5.0), 0.0, "row {i}");
        }
        assert!(d.score(2000, 5.5) > 0.5);
        assert_eq!(d.last_channel(), Some(Channel::Range));
    }

    /// Each hostile value once into a daily cycle after it has learnt it:
    /// every score stays in [0, 1], the finite ones raise an alarm, the
    /// non-finite ones are skipped, and the detector keeps working after.
    #[test]
    fn hostile_values_keep_scores_in_range() {
        for h in crate::stats::testutil::HOSTILE {
            let mut d = Detector::new(DetectorConfig::default());
            let cycle = crate::stats::testutil::daily_cycle(5);
            let mut scores = Vec::new();
            for (i, v) in cycle.iter().enumerate() {
                let v = if i == 700 { h } else { *v };
                scores.push(d.score(i as i64 * 300_000, v));
            }
            assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{h}");
            if h.is_finite() {
                assert!(scores[700] >= 0.5, "{h}: {}", scores[700]);
            } else {
                assert_eq!(scores[700], 0.0, "{h}");
            }
            assert!(scores[710..].iter().all(|s| s.is_finite()), "{h}");
        }
    }
}
