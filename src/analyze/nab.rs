//! Scoring of anomaly detectors the way the Numenta Anomaly Benchmark (NAB)
//! does, behind `mcpops nab score` (and, fold by fold, `mcpops nab cv`:
//! [`super::nab_cv`]).
//!
//! A corpus is a set of `timestamp,value` CSV files plus a labels JSON that
//! gives each file its anomaly windows as `[start, end]` timestamp pairs. The
//! detector scores every row in [0, 1]; one threshold per profile, chosen over
//! the whole corpus to maximise the total, turns scores into detections; the
//! total is normalised so that detecting nothing scores 0 and detecting each
//! window's first row scores 100. The rules, from the corpus's README:
//!
//! - the first `min(floor(0.15 N), 750)` rows of a file are probation and are
//!   not scored;
//! - a window (right edge `R`, `W` rows wide) scores the largest weight among
//!   its detected rows, row `i` weighing `A_TP * sigma(-(R - i + 1) / W) /
//!   sigma(-1)`, or `-A_FN` when none of its rows is detected;
//! - a detected row outside every window weighs `-A_FP` when no window came
//!   before it, else `A_FP * sigma((i - R_prev) / (W_prev - 1))`, with
//!   `sigma(y) = 2 / (1 + e^(5y)) - 1` and `sigma(y) = -1` for `y > 3`.
//!
//! Rows are treated by position (some NAB files have timestamps that repeat
//! or step backwards), so a window is turned into row indices once, when the
//! corpus is loaded, and everything after that works on indices.
//!
//! [`evaluate`] runs the default [`Detector`](super::detect::Detector) over a
//! corpus on disk; [`score_corpus`] scores any per-row scores, so tests and
//! other detectors can be measured the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::detect::{DetectError, Detector, DetectorConfig, Series, read_series};

/// Probation is this share of a file's rows...
const PROBATION_FRACTION: f64 = 0.15;
/// ...but never more than this many rows (NAB: 15% of 5000).
const PROBATION_MAX_ROWS: usize = 750;

/// What can go wrong loading or scoring a corpus.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON for {what}: {source}")]
    Json {
        file: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: window {window} of `{series}`: {problem}")]
    Window {
        file: PathBuf,
        series: String,
        window: usize,
        problem: String,
    },
    #[error("{file}: profile `{profile}`: {problem}")]
    Profile {
        file: PathBuf,
        profile: String,
        problem: String,
    },
    #[error("`{series}` is labelled in {labels} but {path} does not exist")]
    MissingData {
        labels: PathBuf,
        series: String,
        path: PathBuf,
    },
    #[error(
        "{path} has no entry in the labels {labels}: every data file needs one (use [] for none)"
    )]
    Unlabelled { labels: PathBuf, path: PathBuf },
    #[error("series `{series}`: {problem}")]
    Corpus { series: String, problem: String },
    #[error("{given} thresholds given for {profiles} scoring profiles")]
    Thresholds { given: usize, profiles: usize },
    #[error(
        "cross-validation needs labelled files in at least two categories (the first path \
         component of each labels key); found {found}"
    )]
    TooFewCategories { found: String },
    #[error(transparent)]
    Data(#[from] DetectError),
}

/// The weights of one scoring profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    /// A_TP: the weight of a window detected at its very first row.
    pub tp: f64,
    /// A_FN: the cost of a window with no detection in it.
    #[serde(rename = "fn")]
    pub fn_: f64,
    /// A_FP: the cost of a detection outside every window.
    pub fp: f64,
}

impl Profile {
    pub fn new(name: &str, tp: f64, fn_: f64, fp: f64) -> Self {
        Profile {
            name: name.to_string(),
            tp,
            fn_,
            fp,
        }
    }
}

/// NAB's three profiles, named as in its `profiles.json`; used when a corpus
/// ships no `profiles.json` of its own.
pub fn default_profiles() -> Vec<Profile> {
    vec![
        Profile::new("standard", 1.0, 1.0, 0.11),
        Profile::new("reward_low_FP_rate", 1.0, 1.0, 0.22),
        Profile::new("reward_low_FN_rate", 1.0, 2.0, 0.11),
    ]
}

/// Reads NAB's `profiles.json`: `{"name": {"CostMatrix": {"tpWeight": ..,
/// "fnWeight": .., "fpWeight": .., "tnWeight": ..}}}`. Profiles come back in
/// NAB's order (standard, low FP, low FN), any others after them by name.
pub fn load_profiles(path: &Path) -> Result<Vec<Profile>, NabError> {
    #[derive(serde::Deserialize)]
    struct Costs {
        #[serde(rename = "tpWeight")]
        tp: f64,
        #[serde(rename = "fnWeight")]
        fn_: f64,
        #[serde(rename = "fpWeight")]
        fp: f64,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "CostMatrix")]
        costs: Costs,
    }
    let text = std::fs::read_to_string(path).map_err(|source| NabError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let map: BTreeMap<String, Entry> =
        serde_json::from_str(&text).map_err(|source| NabError::Json {
            file: path.to_path_buf(),
            what: "scoring profiles",
            source,
        })?;
    let mut profiles: Vec<Profile> = map
        .into_iter()
        .map(|(name, e)| Profile::new(&name, e.costs.tp, e.costs.fn_, e.costs.fp))
        .collect();
    for p in &profiles {
        let bad = |problem: &str| NabError::Profile {
            file: path.to_path_buf(),
            profile: p.name.clone(),
            problem: problem.to_string(),
        };
        if !(p.tp.is_finite() && p.fn_.is_finite() && p.fp.is_finite()) {
            return Err(bad("weights must be finite numbers"));
        }
        if p.tp <= 0.0 || p.fn_ < 0.0 || p.fp < 0.0 {
            return Err(bad("tpWeight must be > 0, fnWeight and fpWeight >= 0"));
        }
    }
    let rank = |name: &str| match name {
        "standard" => 0,
        "reward_low_FP_rate" => 1,
        "reward_low_FN_rate" => 2,
        _ => 3,
    };
    profiles.sort_by_key(|p| rank(&p.name));
    Ok(profiles)
}

/// Reads the labels JSON: `{"dir/file.csv": [["start", "end"], ...]}`, the
/// timestamps in any form [`crate::time::parse_timestamp`] accepts.
pub fn load_labels(path: &Path) -> Result<BTreeMap<String, Vec<(i64, i64)>>, NabError> {
    let text = std::fs::read_to_string(path).map_err(|source| NabError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let raw: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|source| NabError::Json {
            file: path.to_path_buf(),
            what: "anomaly windows (expected {\"file.csv\": [[start, end], ...]})",
            source,
        })?;
    let mut labels = BTreeMap::new();
    for (series, windows) in raw {
        let mut parsed = Vec::with_capacity(windows.len());
        for (k, (start, end)) in windows.iter().enumerate() {
            let bad = |problem: String| NabError::Window {
                file: path.to_path_buf(),
                series: series.clone(),
                window: k + 1,
                problem,
            };
            let s = crate::time::parse_timestamp(start)
                .ok_or_else(|| bad(format!("`{start}` is not a timestamp")))?;
            let e = crate::time::parse_timestamp(end)
                .ok_or_else(|| bad(format!("`{end}` is not a timestamp")))?;
            if e < s {
                return Err(bad(format!("ends ({end}) before it starts ({start})")));
            }
            parsed.push((s, e));
        }
        parsed.sort_unstable();
        labels.insert(series, parsed);
    }
    Ok(labels)
}

/// One window as row indices, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RowWindow {
    pub start: usize,
    pub end: usize,
}

/// One file of a corpus as the scorer sees it: a name, a score per row and
/// its windows as row indices (sorted, not overlapping).
#[derive(Debug, Clone)]
pub struct ScoredSeries {
    pub name: String,
    pub scores: Vec<f64>,
    pub windows: Vec<RowWindow>,
}

/// One labelled file of a corpus, loaded: its rows and its windows.
#[derive(Debug, Clone)]
pub struct LabelledSeries {
    /// The file's path relative to the data directory, `/`-separated, as the
    /// labels name it.
    pub name: String,
    pub series: Series,
    pub windows: Vec<RowWindow>,
}

/// Turns timestamp windows into row windows by position: a window starts at
/// the first row stamped with its start (or, failing an exact match, the
/// first row after it) and ends at the first row from there stamped with its
/// end (failing that, the last row before the next one past the end). NAB
/// does the same with `timestamps.index(...)`.
pub fn rows_of_windows(
    timestamps: &[i64],
    windows: &[(i64, i64)],
) -> Result<Vec<RowWindow>, String> {
    let mut out: Vec<RowWindow> = Vec::with_capacity(windows.len());
    for (k, &(s, e)) in windows.iter().enumerate() {
        let from = out.last().map_or(0, |w| w.end + 1);
        let start = timestamps[from..]
            .iter()
            .position(|&t| t == s)
            .or_else(|| timestamps[from..].iter().position(|&t| t > s))
            .map(|p| p + from)
            .ok_or_else(|| format!("window {} starts after the last row", k + 1))?;
        let end = match timestamps[start..].iter().position(|&t| t == e) {
            Some(p) => start + p,
            None => {
                let past = timestamps[start..]
                    .iter()
                    .position(|&t| t > e)
                    .map_or(timestamps.len(), |p| start + p);
                if past == start {
                    return Err(format!("window {} holds no row", k + 1));
                }
                past - 1
            }
        };
        out.push(RowWindow { start, end });
    }
    Ok(out)
}

/// The rows a file of `rows` rows keeps out of scoring at its start.
pub fn probation_rows(rows: usize) -> usize {
    ((PROBATION_FRACTION * rows as f64).floor() as usize).min(PROBATION_MAX_ROWS)
}

/// NAB's scaled sigmoid: 1 far before a window's right edge, 0 at it, -1 well
/// past it.
fn sigma(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Where a scored row falls: in a window (by global window number) or not.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Window(usize),
    Outside,
}

/// The weight of detecting each scored row, per profile, plus its window.
struct RowWeights {
    /// The rows past probation: (file, row).
    rows: Vec<(usize, usize)>,
    slot: Vec<Slot>,
    /// The unit weight: sigma(...)/sigma(-1) in a window, sigma(...) or -1
    /// outside; a profile multiplies it by A_TP or A_FP.
    unit: Vec<f64>,
    /// Global window number -> (file, window index in file), for windows that
    /// reach past probation (the others are not scored, as in NAB).
    windows: Vec<(usize, usize)>,
    /// Per counted window: does its first row lie past probation (so the
    /// perfect detector, which flags exactly that row, gets it)?
    first_row_scored: Vec<bool>,
}

fn row_weights(files: &[ScoredSeries]) -> RowWeights {
    let max_tp = sigma(-1.0);
    let mut w = RowWeights {
        rows: Vec::new(),
        slot: Vec::new(),
        unit: Vec::new(),
        windows: Vec::new(),
        first_row_scored: Vec::new(),
    };
    for (f, file) in files.iter().enumerate() {
        let n = file.scores.len();
        let probation = probation_rows(n);
        let mut global = Vec::with_capacity(file.windows.len());
        for (k, win) in file.windows.iter().enumerate() {
            if win.end >= probation {
                global.push(Some(w.windows.len()));
                w.windows.push((f, k));
                w.first_row_scored.push(win.start >= probation);
            } else {
                global.push(None);
            }
        }
        // `next` walks the windows as the rows go by; `prev` is the last
        // window whose right edge is behind the current row.
        let mut next = 0;
        let mut prev: Option<RowWindow> = None;
        for i in 0..n {
            while next < file.windows.len() && file.windows[next].end < i {
                prev = Some(file.windows[next]);
                next += 1;
            }
            let inside = file
                .windows
                .get(next)
                .filter(|win| win.start <= i && i <= win.end);
            if i < probation {
                continue;
            }
            let (slot, unit) = match (inside, global.get(next).copied().flatten()) {
                // A window holding a scored row reaches past probation, so
                // it is always counted.
                (Some(win), Some(g)) => {
                    let width = (win.end - win.start + 1) as f64;
                    let y = -((win.end - i + 1) as f64) / width;
                    (Slot::Window(g), sigma(y) / max_tp)
                }
                (Some(_), None) => continue,
                (None, _) => match prev {
                    // A one-row window has no width to decay over: every
                    // detection after it is as bad as any (y = infinity).
                    Some(p) if p.end > p.start => {
                        let y = (i - p.end) as f64 / (p.end - p.start) as f64;
                        (Slot::Outside, sigma(y))
                    }
                    _ => (Slot::Outside, -1.0),
                },
            };
            w.rows.push((f, i));
            w.slot.push(slot);
            w.unit.push(unit);
        }
    }
    w
}

/// The result of scoring one profile over a corpus.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileScore {
    pub profile: Profile,
    /// Rows scoring at or above this are detections; chosen to maximise
    /// `raw`. When detecting nothing is best it is above every score (1.1
    /// for scores in [0, 1], as in NAB).
    pub threshold: f64,
    /// 100 (raw - null) / (perfect - null); 0 when the corpus has no windows.
    pub score: f64,
    pub raw: f64,
    pub null: f64,
    pub perfect: f64,
    pub detected_windows: usize,
    pub missed_windows: usize,
    pub false_positive_rows: usize,
}

/// One file's share of one profile's score at that profile's threshold.
#[derive(Debug, Clone, Serialize)]
pub struct FileProfileScore {
    pub profile: String,
    pub raw: f64,
    pub detected_windows: usize,
    pub missed_windows: usize,
    pub false_positive_rows: usize,
}

/// One file of the corpus.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub name: String,
    pub rows: usize,
    pub probation_rows: usize,
    pub windows: usize,
    pub profiles: Vec<FileProfileScore>,
}

/// NAB's verdict on a detector over a corpus.
#[derive(Debug, Clone, Serialize)]
pub struct NabReport {
    pub files: usize,
    pub rows: usize,
    /// Windows that reach past probation (the others are not scored).
    pub windows: usize,
    pub profiles: Vec<ProfileScore>,
    pub per_file: Vec<FileReport>,
}

impl NabReport {
    /// The normalised score of the profile named `name`.
    pub fn score(&self, name: &str) -> Option<f64> {
        self.profiles
            .iter()
            .find(|p| p.profile.name == name)
            .map(|p| p.score)
    }
}

/// Scores per-row detector output over a corpus for each profile: picks the
/// threshold that maximises the profile's total over the whole corpus (the
/// highest such threshold on a tie, as NAB's stable sort does) and
/// normalises the total at it. A NaN score never counts as a detection.
pub fn score_corpus(files: &[ScoredSeries], profiles: &[Profile]) -> Result<NabReport, NabError> {
    score_corpus_at(files, profiles, None)
}

/// [`score_corpus`], but with each profile's threshold given
/// (`thresholds[k]` for `profiles[k]`) instead of chosen on `files`: how a
/// corpus is scored with thresholds tuned on another (see [`super::nab_cv`]).
/// `None` chooses them, as [`score_corpus`] does.
pub fn score_corpus_at(
    files: &[ScoredSeries],
    profiles: &[Profile],
    thresholds: Option<&[f64]>,
) -> Result<NabReport, NabError> {
    if let Some(t) = thresholds
        && t.len() != profiles.len()
    {
        return Err(NabError::Thresholds {
            given: t.len(),
            profiles: profiles.len(),
        });
    }
    for file in files {
        let bad = |problem: String| NabError::Corpus {
            series: file.name.clone(),
            problem,
        };
        let mut last_end: Option<usize> = None;
        for (k, win) in file.windows.iter().enumerate() {
            if win.start > win.end || win.end >= file.scores.len() {
                return Err(bad(format!(
                    "window {} (rows {}..={}) does not fit its {} rows",
                    k + 1,
                    win.start,
                    win.end,
                    file.scores.len()
                )));
            }
            if last_end.is_some_and(|e| win.start <= e) {
                return Err(bad(format!(
                    "window {} overlaps or precedes the one before it",
                    k + 1
                )));
            }
            last_end = Some(win.end);
        }
    }
    let weights = row_weights(files);
    // Rows by score, highest first; NaN rows are never detections.
    let mut order: Vec<usize> = (0..weights.rows.len())
        .filter(|&r| {
            let (f, i) = weights.rows[r];
            !files[f].scores[i].is_nan()
        })
        .collect();
    let score_of = |r: usize| {
        let (f, i) = weights.rows[r];
        files[f].scores[i]
    };
    order.sort_by(|&a, &b| score_of(b).total_cmp(&score_of(a)));
    let max_score = order.first().map(|&r| score_of(r));
    let above_all = match max_score {
        Some(m) if m < 1.1 => 1.1,
        Some(m) => m + 1.0,
        None => 1.1,
    };

    let n_windows = weights.windows.len();
    let results: Vec<f64> = match thresholds {
        Some(t) => t.to_vec(),
        None => profiles
            .iter()
            .map(|profile| best_threshold(&weights, &order, score_of, profile, above_all))
            .collect(),
    };

    // Everything below is recomputed at the chosen thresholds, file by file,
    // so the per-file detail adds up to the corpus totals.
    let mut per_file: Vec<FileReport> = files
        .iter()
        .map(|file| FileReport {
            name: file.name.clone(),
            rows: file.scores.len(),
            probation_rows: probation_rows(file.scores.len()),
            windows: file
                .windows
                .iter()
                .filter(|w| w.end >= probation_rows(file.scores.len()))
                .count(),
            profiles: Vec::new(),
        })
        .collect();
    let mut profile_scores = Vec::with_capacity(profiles.len());
    for (profile, &threshold) in profiles.iter().zip(&results) {
        let mut fp_raw = vec![0.0; files.len()];
        let mut fp_rows = vec![0usize; files.len()];
        let mut best: Vec<Option<f64>> = vec![None; n_windows];
        for (r, &(f, i)) in weights.rows.iter().enumerate() {
            let s = files[f].scores[i];
            if s.is_nan() || s < threshold {
                continue;
            }
            match weights.slot[r] {
                Slot::Window(g) => {
                    let v = profile.tp * weights.unit[r];
                    best[g] = Some(best[g].map_or(v, |b: f64| b.max(v)));
                }
                Slot::Outside => {
                    fp_raw[f] += profile.fp * weights.unit[r];
                    fp_rows[f] += 1;
                }
            }
        }
        let mut file_scores: Vec<FileProfileScore> = files
            .iter()
            .enumerate()
            .map(|(f, _)| FileProfileScore {
                profile: profile.name.clone(),
                raw: fp_raw[f],
                detected_windows: 0,
                missed_windows: 0,
                false_positive_rows: fp_rows[f],
            })
            .collect();
        let (mut null, mut perfect) = (0.0, 0.0);
        for (g, &(f, _)) in weights.windows.iter().enumerate() {
            let fs = &mut file_scores[f];
            match best[g] {
                // A detection weighs more than a miss costs, always: sigma
                // stays above 0 inside a window.
                Some(v) => {
                    fs.raw += v.max(-profile.fn_);
                    fs.detected_windows += 1;
                }
                None => {
                    fs.raw -= profile.fn_;
                    fs.missed_windows += 1;
                }
            }
            null -= profile.fn_;
            perfect += if weights.first_row_scored[g] {
                profile.tp
            } else {
                -profile.fn_
            };
        }
        let raw: f64 = file_scores.iter().map(|s| s.raw).sum();
        let score = if perfect > null {
            100.0 * (raw - null) / (perfect - null)
        } else {
            0.0
        };
        profile_scores.push(ProfileScore {
            profile: profile.clone(),
            threshold,
            score,
            raw,
            null,
            perfect,
            detected_windows: file_scores.iter().map(|s| s.detected_windows).sum(),
            missed_windows: file_scores.iter().map(|s| s.missed_windows).sum(),
            false_positive_rows: file_scores.iter().map(|s| s.false_positive_rows).sum(),
        });
        for (report, fs) in per_file.iter_mut().zip(file_scores) {
            report.profiles.push(fs);
        }
    }
    Ok(NabReport {
        files: files.len(),
        rows: files.iter().map(|f| f.scores.len()).sum(),
        windows: n_windows,
        profiles: profile_scores,
        per_file,
    })
}

/// Sweeps the threshold down through every distinct score, keeping the
/// running total, and returns the threshold of the first (highest) maximum.
fn best_threshold(
    weights: &RowWeights,
    order: &[usize],
    score_of: impl Fn(usize) -> f64,
    profile: &Profile,
    above_all: f64,
) -> f64 {
    let mut best_window: Vec<f64> = vec![-profile.fn_; weights.windows.len()];
    let mut total = -profile.fn_ * weights.windows.len() as f64;
    let (mut best_total, mut best_threshold) = (total, above_all);
    let mut k = 0;
    while k < order.len() {
        let threshold = score_of(order[k]);
        while k < order.len() && score_of(order[k]) == threshold {
            let r = order[k];
            match weights.slot[r] {
                Slot::Window(g) => {
                    let v = profile.tp * weights.unit[r];
                    if v > best_window[g] {
                        total += v - best_window[g];
                        best_window[g] = v;
                    }
                }
                Slot::Outside => total += profile.fp * weights.unit[r],
            }
            k += 1;
        }
        if total > best_total {
            best_total = total;
            best_threshold = threshold;
        }
    }
    best_threshold
}

/// Finds the profiles for a corpus: `profiles.json` next to the labels file,
/// in its parent, or next to the data directory; NAB's own weights if none.
pub fn find_profiles(labels: &Path, data_dir: &Path) -> Result<Vec<Profile>, NabError> {
    let candidates = [
        labels.parent().map(|p| p.join("profiles.json")),
        labels
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("profiles.json")),
        data_dir.parent().map(|p| p.join("profiles.json")),
    ];
    for path in candidates.into_iter().flatten() {
        if path.is_file() {
            return load_profiles(&path);
        }
    }
    Ok(default_profiles())
}

/// Loads every labelled file of a corpus: each labels entry must have its
/// file under `data_dir`, and each CSV under `data_dir` its labels entry.
pub fn load_corpus(labels: &Path, data_dir: &Path) -> Result<Vec<LabelledSeries>, NabError> {
    let windows = load_labels(labels)?;
    let mut on_disk = Vec::new();
    list_csv(data_dir, data_dir, &mut on_disk)?;
    for (name, path) in &on_disk {
        if !windows.contains_key(name) {
            return Err(NabError::Unlabelled {
                labels: labels.to_path_buf(),
                path: path.clone(),
            });
        }
    }
    let jobs: Vec<(&String, &Vec<(i64, i64)>)> = windows.iter().collect();
    jobs.into_par_iter()
        .map(|(name, wins)| {
            let path = data_dir.join(name);
            if !path.is_file() {
                return Err(NabError::MissingData {
                    labels: labels.to_path_buf(),
                    series: name.clone(),
                    path,
                });
            }
            let series = read_series(&path)?;
            let rows =
                rows_of_windows(&series.timestamps, wins).map_err(|problem| NabError::Corpus {
                    series: name.clone(),
                    problem,
                })?;
            Ok(LabelledSeries {
                name: name.clone(),
                series,
                windows: rows,
            })
        })
        .collect()
}

/// Every `*.csv` below `dir`, as (name relative to `root` with `/`, path).
fn list_csv(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), NabError> {
    let io = |source| NabError::Io {
        file: dir.to_path_buf(),
        source,
    };
    // The entry's own type, not its target's: a symlinked directory is not
    // walked, so a link loop cannot recurse forever.
    let mut entries: Vec<(PathBuf, bool)> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir()))))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for (path, is_dir) in entries {
        if is_dir {
            list_csv(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

/// Runs a fresh detector with `config` over each series (in parallel) and
/// returns the per-row scores ready for [`score_corpus`].
pub fn run_detector(corpus: &[LabelledSeries], config: &DetectorConfig) -> Vec<ScoredSeries> {
    corpus
        .par_iter()
        .map(|file| {
            let mut detector = Detector::new(config.clone());
            let scores = file
                .series
                .timestamps
                .iter()
                .zip(&file.series.values)
                .map(|(&t, &v)| detector.score(t, v))
                .collect();
            ScoredSeries {
                name: file.name.clone(),
                scores,
                windows: file.windows.clone(),
            }
        })
        .collect()
}

/// Scores the default detector over the corpus on disk: `labels` is NAB's
/// `combined_windows.json`, `data_dir` the folder of category folders of
/// CSV files; the profiles come from [`find_profiles`].
pub fn evaluate(labels: &Path, data_dir: &Path) -> Result<NabReport, NabError> {
    evaluate_with(labels, data_dir, &DetectorConfig::default())
}

/// [`evaluate`] with a given detector configuration.
pub fn evaluate_with(
    labels: &Path,
    data_dir: &Path,
    config: &DetectorConfig,
) -> Result<NabReport, NabError> {
    let profiles = find_profiles(labels, data_dir)?;
    let corpus = load_corpus(labels, data_dir)?;
    let scored = run_detector(&corpus, config);
    score_corpus(&scored, &profiles)
}
