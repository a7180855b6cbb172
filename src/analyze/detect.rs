//! The online anomaly detector behind `mcpops detect`: it scores each row
//! of a series in [0, 1] from that row and the rows before it only, the way
//! a detector watching live data has to, with one configuration for every
//! series. 0.5 and above is an alarm.
//!
//! [`Detector`] is the streaming kernel; [`detect_csv`] runs it over a
//! `timestamp,value` CSV file and writes `timestamp,value,anomaly_score`;
//! [`read_series`] loads such a file for other callers (the NAB scorer in
//! [`super::nab`]). How the detector decides is told on [`Detector`].
//!
//! It is built to carry over to series it was not tuned on: everything
//! that can be read from the series is (the length of a day from the
//! sampling step, each channel's scale from the range of its own recent
//! history), one margin serves every channel, and what is left to choose
//! ([`DetectorConfig::search_space`]: the margin, the quiet time after an
//! alarm and the length of a shape) is cross-validated a category at a
//! time on the NAB corpus by `mcpops nab cv`; `mcpops nab score` gives the
//! in-sample figure.

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

/// Detector settings: few, and each with a meaning of its own. Everything
/// else follows the series: the length of a day in rows from its sampling
/// step, each channel's scale from that channel's own history. The default
/// is the one configuration used for every series.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Rows at the start that only teach the detector and always score 0.
    pub learn_rows: usize,
    /// How far a channel's statistic must go past every value it took in
    /// the remembered history to raise an alarm, as a share of that
    /// history's range: the same share for every channel, so that no
    /// channel has a sensitivity of its own to tune (a shift that no other
    /// channel sees must go a quarter further: `SHIFT_ALONE_WEIGHT`).
    pub margin: f64,
    /// Shape channel: rows in the stretch compared with every earlier one.
    pub shape_len: usize,
    /// Rows after an alarm during which no other alarm is raised, as a
    /// share of a day, and never fewer than twice `shape_len`: the rows
    /// for which the alarm's own rows are still in the shape channel's
    /// newest stretch or kept out of its neighbours, so that an alarm in
    /// them repeats the same event (on hourly series a quarter day is only
    /// six rows).
    pub quiet_days: f64,
    /// Days each channel remembers: its extremes and range are those of
    /// this much history, so a series that has moved on to a new normal
    /// stops being measured against the old one. A week covers a weekly
    /// cycle.
    pub history_days: f64,
}

impl DetectorConfig {
    /// The configurations tuning may choose from (`mcpops nab cv`), named;
    /// the default first, so that it wins a tie. The margin and the quiet
    /// time trade missed anomalies against false alarms, which is what a
    /// scoring profile weighs; the shape length is how long a pattern must
    /// be to count as one (under an hour to over two and a half hours of
    /// five-minute rows).
    pub fn search_space() -> Vec<(String, DetectorConfig)> {
        let mut space = vec![("default".to_string(), DetectorConfig::default())];
        for shape_len in [8, 16, 32] {
            for margin in [0.05, 0.1, 0.2] {
                for quiet_days in [1.0 / 24.0, 1.0 / 4.0] {
                    let config = DetectorConfig {
                        margin,
                        quiet_days,
                        shape_len,
                        ..DetectorConfig::default()
                    };
                    if config != DetectorConfig::default() {
                        space.push((
                            format!(
                                "margin {margin}, quiet {:.0}h, shape {shape_len}",
                                quiet_days * 24.0
                            ),
                            config,
                        ));
                    }
                }
            }
        }
        space
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            learn_rows: 150,
            margin: 0.1,
            shape_len: 16,
            quiet_days: 1.0 / 4.0,
            history_days: 7.0,
        }
    }
}

/// Which channel gave a row its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The value left the range of the remembered values.
    Range,
    /// The last few rows form a shape unlike any earlier stretch.
    Shape,
    /// The last day, in blocks, is unlike any earlier day.
    Day,
    /// The recent mean moved away from the day before it.
    Shift,
}

/// Values a statistic must have remembered before it may raise an alarm:
/// fewer say little about its tail.
const MIN_HISTORY: usize = 50;
/// Steps read to find the sampling step (their median).
const STEP_ROWS: usize = 32;
/// Blocks of a day in the day channel (two-hour blocks).
const DAY_BLOCKS: usize = 12;
/// How many times the other channels' history the day channel remembers.
/// It gets one value per block, so a week gives it only 84 distances, and
/// (a day of blocks making one stretch) only 7 that do not overlap: too
/// few to know the tail its record stands for.
const DAY_HISTORY_FACTOR: usize = 2;
/// What the second strongest channel adds to the evidence, as a share of
/// its own: two channels breaking their records on the same row say more
/// than the stronger one alone.
const SECOND_CHANNEL_WEIGHT: f64 = 0.2;
/// What the shift channel's share counts for when no other channel sees
/// anything on the row. A moved hourly mean is measured against one day's
/// deviation, itself a noisy estimate, and is the channel that raises the
/// most lone false alarms; a shift that also changes a value's range, a
/// shape or the day it sits in counts in full.
const SHIFT_ALONE_WEIGHT: f64 = 0.8;

/// The extremes of a statistic's last `cap` values. A record broken by a
/// wide margin is the signal every channel shares: it needs no model of the
/// statistic's distribution, and measured as a share of the history's range
/// it adapts to each series' scale. Only the smallest and largest values
/// are ever asked for, so each is kept as a monotonic queue of (arrival,
/// value): the front is the extreme, and a push costs O(1) amortised.
#[derive(Debug, Clone)]
struct Tail {
    /// Values that are the largest of everything after them, oldest first.
    largest: std::collections::VecDeque<(u64, f64)>,
    /// Values that are the smallest of everything after them, oldest first.
    smallest: std::collections::VecDeque<(u64, f64)>,
    /// Finite values pushed so far.
    pushed: u64,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Tail {
            largest: std::collections::VecDeque::new(),
            smallest: std::collections::VecDeque::new(),
            pushed: 0,
            cap: cap.clamp(1, 1 << 24),
        }
    }

    /// How many values are remembered.
    fn len(&self) -> usize {
        self.pushed.min(self.cap as u64) as usize
    }

    fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let at = self.pushed;
        self.pushed += 1;
        let forgotten = |&(i, _): &(u64, f64)| i + self.cap as u64 <= at;
        while self.largest.front().is_some_and(forgotten) {
            self.largest.pop_front();
        }
        while self.smallest.front().is_some_and(forgotten) {
            self.smallest.pop_front();
        }
        while self.largest.back().is_some_and(|&(_, x)| x <= v) {
            self.largest.pop_back();
        }
        self.largest.push_back((at, v));
        while self.smallest.back().is_some_and(|&(_, x)| x >= v) {
            self.smallest.pop_back();
        }
        self.smallest.push_back((at, v));
    }

    /// The smallest and largest remembered values.
    fn extremes(&self) -> Option<(f64, f64)> {
        Some((self.smallest.front()?.1, self.largest.front()?.1))
    }

    /// The range of the remembered values, floored so that a flat history
    /// still has a scale, relative to its values, and leaving it counts.
    fn range(&self) -> f64 {
        let (min, max) = self.extremes().unwrap_or((0.0, 0.0));
        (max - min).max(1e-12 * min.abs().max(max.abs()).max(1.0))
    }

    /// How far `v` goes above the largest remembered value, as a share of
    /// their range: 0 within it. Capped at one whole range, which keeps a
    /// single wild value from dwarfing everything after it.
    fn above(&self, v: f64) -> f64 {
        match self.extremes() {
            Some((_, max)) if v > max => ((v - max) / self.range()).min(1.0),
            _ => 0.0,
        }
    }

    /// As [`Tail::above`], below the smallest remembered value.
    fn below(&self, v: f64) -> f64 {
        match self.extremes() {
            Some((min, _)) if v < min => ((min - v) / self.range()).min(1.0),
            _ => 0.0,
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

/// The parts of the detector that need the length of a day in rows, built
/// once the sampling step is known.
#[derive(Debug, Clone)]
struct Channels {
    /// Rows in a day, from the median sampling step.
    day_rows: usize,
    quiet_rows: usize,
    range: Tail,
    shape: LeftProfile,
    shape_tail: Tail,
    block_rows: usize,
    block_sum: f64,
    block_filled: usize,
    blocks: usize,
    day: LeftProfile,
    day_tail: Tail,
    /// The last day of values, for the shift channel.
    recent: std::collections::VecDeque<f64>,
    shift_short: usize,
    shift_tail: Tail,
}

/// The most rows a channel remembers whatever the sampling step, which
/// bounds the work per row (a week of one-minute rows); a "day" is never
/// longer either.
const MAX_HISTORY_ROWS: usize = 10_080;

impl Channels {
    fn new(config: &DetectorConfig, day_rows: usize) -> Self {
        let day_rows = day_rows.clamp(DAY_BLOCKS, MAX_HISTORY_ROWS);
        let days = if config.history_days.is_finite() {
            config.history_days.clamp(1.0, 1e6)
        } else {
            7.0
        };
        let history = ((days * day_rows as f64) as usize).clamp(day_rows, MAX_HISTORY_ROWS);
        let block_rows = (day_rows / DAY_BLOCKS).max(1);
        let quiet = if config.quiet_days.is_finite() {
            config.quiet_days.clamp(0.0, 1e6)
        } else {
            0.0
        };
        let shape = LeftProfile::new(config.shape_len, history);
        Channels {
            day_rows,
            // An anomalous row sits in the shape channel's newest stretch
            // for `m` rows, and the stretches overlapping it are kept out
            // of the nearest-neighbour search for `m` more: 2m rows in
            // which the channel still sees the same event.
            quiet_rows: ((quiet * day_rows as f64).round() as usize).max(2 * shape.m),
            range: Tail::new(history),
            shape,
            shape_tail: Tail::new(history),
            block_rows,
            block_sum: 0.0,
            block_filled: 0,
            blocks: 0,
            day: LeftProfile::new(DAY_BLOCKS, DAY_HISTORY_FACTOR * history / block_rows),
            day_tail: Tail::new(DAY_HISTORY_FACTOR * history / block_rows),
            recent: std::collections::VecDeque::new(),
            shift_short: (day_rows / 24).max(2),
            shift_tail: Tail::new(history),
        }
    }
}

/// The online anomaly detector: feed it rows in order with
/// [`Detector::score`]; each row's score depends only on that row and the
/// rows before it.
///
/// It first reads the sampling step (the median of the first steps) to
/// know how many rows make a day. Then four channels each turn the stream
/// into a statistic and measure how far the newest value of the statistic
/// goes past every value it took in the remembered history (a week), as a
/// share of that history's range:
///
/// - range: the value itself, on either side;
/// - shape: the distance from the last `shape_len` rows to the nearest
///   earlier stretch (a left matrix profile), so a pattern never seen
///   before stands out even within the usual range;
/// - day: the same over a day of two-hour block means, for a day unlike
///   the others (a missing daily peak, a flattened day);
/// - shift: how many standard deviations of the day before it the mean of
///   the last hour moved, on either side.
///
/// Alone, the shift channel's share counts for `SHIFT_ALONE_WEIGHT` of
/// itself. The largest share, plus `SECOND_CHANNEL_WEIGHT` of the second
/// largest, divided by `margin` is the evidence `E`; the score
/// is `E / (1 + E)`, so 0.5 is where the detector itself would raise an
/// alarm. After an alarm the next `quiet_days` of rows (at least twice
/// `shape_len`) score below 0.5: NAB (and an operator) pays for every
/// repeated alarm but gains nothing from it.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    /// Finite rows seen.
    seen: usize,
    /// The first rows, kept until the sampling step is known.
    first: Vec<(i64, f64)>,
    channels: Option<Box<Channels>>,
    /// Rows since the last alarm (`None` before the first).
    since_alarm: Option<usize>,
    last_channel: Option<Channel>,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        Detector {
            seen: 0,
            first: Vec::new(),
            channels: None,
            since_alarm: None,
            last_channel: None,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The rows in a day, once the sampling step is known.
    pub fn day_rows(&self) -> Option<usize> {
        self.channels.as_ref().map(|c| c.day_rows)
    }

    /// The channel behind the last score, `None` when it was 0. Lets a
    /// report say why a row was flagged.
    pub fn last_channel(&self) -> Option<Channel> {
        self.last_channel
    }

    /// Scores the next row in [0, 1]; 0.5 and above is an alarm. A value
    /// that is not finite (NaN, infinity) scores 0 and teaches nothing.
    /// Timestamps set the length of a day (from the median of the first
    /// steps: rows that repeat or step backwards do not count); otherwise,
    /// like NAB, the detector treats rows by position.
    pub fn score(&mut self, timestamp_ms: i64, value: f64) -> f64 {
        self.last_channel = None;
        if !value.is_finite() {
            return 0.0;
        }
        let row = self.seen;
        self.seen += 1;
        if self.channels.is_none() {
            self.first.push((timestamp_ms, value));
            if self.first.len() <= STEP_ROWS {
                return 0.0;
            }
            let mut steps: Vec<i64> = self
                .first
                .windows(2)
                .map(|w| w[1].0.saturating_sub(w[0].0))
                .filter(|&s| s > 0)
                .collect();
            steps.sort_unstable();
            // No usable step: NAB's usual five minutes.
            let step = steps.get(steps.len() / 2).copied().unwrap_or(300_000);
            let day_rows = (86_400_000 / step.max(1)).max(1) as usize;
            let mut channels = Box::new(Channels::new(&self.config, day_rows));
            let first = std::mem::take(&mut self.first);
            for (i, &(_, v)) in first.iter().enumerate() {
                Self::update(&self.config, &mut channels, i, v, false);
            }
            self.channels = Some(channels);
            return 0.0;
        }
        let Some(channels) = self.channels.as_mut() else {
            return 0.0;
        };
        let scoring = row >= self.config.learn_rows;
        let (excess, channel) = Self::update(&self.config, channels, row, value, scoring);
        let quiet_rows = channels.quiet_rows;
        let mut evidence = excess / self.config.margin.max(1e-9);
        if !evidence.is_finite() {
            evidence = 0.0;
        }
        let quiet = self.since_alarm.is_some_and(|n| n < quiet_rows);
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

    /// Feeds one value to every channel; returns the combined excess over
    /// the channels' records (0 when not `scoring`: the largest, plus a
    /// share of the second) and the channel of the largest.
    fn update(
        config: &DetectorConfig,
        c: &mut Channels,
        row: usize,
        value: f64,
        scoring: bool,
    ) -> (f64, Option<Channel>) {
        // Each channel's excess over its record, by `Channel as usize`.
        let mut shares = [0.0f64; 4];
        // Neighbouring shape distances share all but one of their rows, so
        // MIN_HISTORY of them say little more than one would: the shape
        // channel waits for MIN_HISTORY stretches that do not overlap, or
        // for all the history it keeps when that is shorter.
        let shape_history = MIN_HISTORY
            .saturating_mul(c.shape.m)
            .min(c.shape_tail.cap)
            .max(MIN_HISTORY);
        let mut offer = |tail: &Tail, e: f64, ch: Channel| {
            let needed = match ch {
                Channel::Shape => shape_history,
                _ => MIN_HISTORY,
            };
            if scoring && tail.len() >= needed && e > 0.0 {
                shares[ch as usize] = e;
            }
        };

        offer(
            &c.range,
            c.range.above(value).max(c.range.below(value)),
            Channel::Range,
        );
        c.range.push(value);

        if let Some(d) = c.shape.push(value) {
            offer(&c.shape_tail, c.shape_tail.above(d), Channel::Shape);
            // Early distances are large only for want of history.
            if row >= config.learn_rows {
                c.shape_tail.push(d);
            }
        }

        c.block_sum += value;
        c.block_filled += 1;
        if c.block_filled >= c.block_rows {
            let mean = c.block_sum / c.block_filled as f64;
            c.block_sum = 0.0;
            c.block_filled = 0;
            c.blocks += 1;
            if let Some(d) = c.day.push(mean) {
                offer(&c.day_tail, c.day_tail.above(d), Channel::Day);
                // As for shape: a day is compared once two others exist.
                if c.blocks >= 3 * DAY_BLOCKS {
                    c.day_tail.push(d);
                }
            }
        }

        let long = c.day_rows.max(c.shift_short + 2);
        c.recent.push_back(value);
        if c.recent.len() > long {
            c.recent.pop_front();
        }
        if c.recent.len() == long {
            let short = c.shift_short;
            let recent_mean = c.recent.iter().rev().take(short).sum::<f64>() / short as f64;
            // The baseline is the window before the recent rows, so that a
            // shift does not drag its own baseline along.
            let base = long - short;
            let mean = c.recent.iter().take(base).sum::<f64>() / base as f64;
            let var = c
                .recent
                .iter()
                .take(base)
                .map(|x| (x - mean) * (x - mean))
                .sum::<f64>()
                / base as f64;
            // A flat baseline still has a scale relative to the data.
            let floor = 1e-6 * mean.abs() + 1e-12;
            let z = (recent_mean - mean) / var.sqrt().max(floor);
            offer(
                &c.shift_tail,
                c.shift_tail.above(z).max(c.shift_tail.below(z)),
                Channel::Shift,
            );
            c.shift_tail.push(z);
        }
        let shift = Channel::Shift as usize;
        if (0..shares.len()).all(|k| k == shift || shares[k] == 0.0) {
            shares[shift] *= SHIFT_ALONE_WEIGHT;
        }
        let (mut best, mut second) = (0.0, 0.0);
        let mut channel = None;
        for (ch, &e) in [Channel::Range, Channel::Shape, Channel::Day, Channel::Shift]
            .into_iter()
            .zip(&shares)
        {
            if e > best {
                second = best;
                best = e;
                channel = Some(ch);
            } else if e > second {
                second = e;
            }
        }
        (best + SECOND_CHANNEL_WEIGHT * second, channel)
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
            margin: 0.0,
            quiet_days: f64::NAN,
            history_days: f64::INFINITY,
        };
        for step in [0, 1, 300_000, i64::MAX / 1000] {
            let mut d = Detector::new(config.clone());
            for i in 0..500i64 {
                let s = d.score(i.wrapping_mul(step), (i % 17) as f64);
                assert!((0.0..=1.0).contains(&s), "step {step} row {i}: {s}");
            }
        }
        let config = DetectorConfig {
            shape_len: 0,
            margin: f64::NAN,
            quiet_days: -1.0,
            history_days: 0.0,
            ..DetectorConfig::default()
        };
        let mut d = Detector::new(config);
        for i in 0..500 {
            let s = d.score(i * 300_000, (i % 17) as f64);
            assert!((0.0..=1.0).contains(&s), "row {i}: {s}");
        }
    }

    #[test]
    fn a_flat_series_is_quiet_until_it_moves() {
        let mut d = Detector::new(DetectorConfig::default());
        for i in 0..2000 {
            assert_eq!(d.score(i * 300_000, 5.0), 0.0, "row {i}");
        }
        assert!(d.score(2000 * 300_000, 5.5) > 0.5);
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
