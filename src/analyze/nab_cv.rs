//! Leave-one-category-out cross-validation of the detector on a NAB
//! corpus, behind `mcpops nab cv`: how well the detector does on files it
//! was not tuned on.
//!
//! A category is the first path component of a labels key
//! (`realTraffic/speed_t4013.csv` is in `realTraffic`). For each category in
//! turn, everything that is tuned is chosen on the other categories only:
//! the detector configuration, out of the small declared search space
//! [`DetectorConfig::search_space`], and each profile's corpus-wide
//! threshold. The held-out category is then scored with exactly that
//! configuration and threshold, one for all its files, each file scored
//! causally by a fresh detector. The in-sample figure tunes the same
//! choices on every category at once, as `mcpops nab score` does for the
//! default configuration.
//!
//! A category without anomaly windows (NAB's `artificialNoAnomaly`) has no
//! normalised score: NAB normalises by the spread between detecting nothing
//! and detecting every window, which is 0 there. Its held-out figure is its
//! raw score (the summed cost of its false positives, 0 at best) and its
//! false-positive count; the mean held-out score is over the categories that
//! have windows. Such a category still takes part in every other fold's
//! tuning, where its false positives cost what they cost.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::detect::DetectorConfig;
use super::nab::{
    NabError, Profile, ScoredSeries, find_profiles, load_corpus, run_detector, score_corpus,
    score_corpus_at,
};

/// One profile's outcome on one held-out category.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub profile: String,
    /// The configuration chosen on the other categories.
    pub candidate: String,
    /// The threshold chosen on the other categories.
    pub threshold: f64,
    /// The normalised score the choice reached on the other categories.
    pub training_score: f64,
    /// The held-out category's normalised score; `None` when it has no
    /// windows (NAB's normalisation is 0/0 there).
    pub score: Option<f64>,
    /// The held-out category's raw score at that threshold.
    pub raw: f64,
    pub detected_windows: usize,
    pub missed_windows: usize,
    pub false_positive_rows: usize,
}

/// One fold: a category held out.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    pub category: String,
    pub files: usize,
    /// Windows that reach past probation (the ones NAB scores).
    pub windows: usize,
    /// One entry per profile, in the profiles' order.
    pub profiles: Vec<HeldOut>,
}

/// One profile over all folds.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    pub profile: String,
    /// The mean of the held-out scores of the categories with windows.
    pub mean_held_out: f64,
    /// The lowest of those scores.
    pub min_held_out: f64,
    /// Tuned and scored on every category.
    pub in_sample: f64,
    pub in_sample_candidate: String,
    pub in_sample_threshold: f64,
}

/// The cross-validation of a detector's search space over a corpus.
#[derive(Debug, Clone, Serialize)]
pub struct CvReport {
    pub files: usize,
    pub rows: usize,
    /// The configurations tuning chooses from, by name.
    pub candidates: Vec<String>,
    pub folds: Vec<Fold>,
    pub summary: Vec<ProfileSummary>,
}

/// The category of a labels key: its first path component.
pub fn category_of(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

/// The best candidate for each profile on `files` (a subset given by
/// index): the highest raw total at its own best threshold, the earlier
/// candidate on a tie. Returns (candidate, threshold, normalised score).
fn tune(
    candidates: &[(String, Vec<ScoredSeries>)],
    files: &[usize],
    profiles: &[Profile],
) -> Result<Vec<(usize, f64, f64)>, NabError> {
    let mut best: Vec<Option<(usize, f64, f64, f64)>> = vec![None; profiles.len()];
    for (c, (_, scored)) in candidates.iter().enumerate() {
        let subset: Vec<ScoredSeries> = files.iter().map(|&f| scored[f].clone()).collect();
        let report = score_corpus(&subset, profiles)?;
        for (k, p) in report.profiles.iter().enumerate() {
            // The raw total, not the normalised score: the same order on a
            // fixed set of files, and still defined when it has no windows.
            if best[k].is_none_or(|(_, _, _, raw)| p.raw > raw) {
                best[k] = Some((c, p.threshold, p.score, p.raw));
            }
        }
    }
    Ok(best
        .into_iter()
        .map(|b| {
            let (c, t, s, _) = b.expect("at least one candidate");
            (c, t, s)
        })
        .collect())
}

/// Cross-validates per-row scores already computed: `candidates` holds, for
/// each configuration of the search space, its name and its scores of every
/// file of the corpus (the same files in the same order for each). Every
/// choice made for a fold sees only the files outside the held-out
/// category.
pub fn cross_validate(
    candidates: &[(String, Vec<ScoredSeries>)],
    profiles: &[Profile],
) -> Result<CvReport, NabError> {
    let Some((_, first)) = candidates.first() else {
        return Err(NabError::TooFewCategories {
            found: "no configuration to choose from".into(),
        });
    };
    let mut categories: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (f, file) in first.iter().enumerate() {
        categories
            .entry(category_of(&file.name))
            .or_default()
            .push(f);
    }
    if categories.len() < 2 {
        return Err(NabError::TooFewCategories {
            found: match categories.keys().next() {
                Some(c) => format!("only `{c}`"),
                None => "none".into(),
            },
        });
    }
    let mut folds = Vec::with_capacity(categories.len());
    for (&category, held) in &categories {
        let train: Vec<usize> = (0..first.len())
            .filter(|f| category_of(&first[*f].name) != category)
            .collect();
        let choices = tune(candidates, &train, profiles)?;
        let mut outcomes = Vec::with_capacity(profiles.len());
        let mut windows = 0;
        for (k, (profile, &(c, threshold, training_score))) in
            profiles.iter().zip(&choices).enumerate()
        {
            let subset: Vec<ScoredSeries> =
                held.iter().map(|&f| candidates[c].1[f].clone()).collect();
            let report =
                score_corpus_at(&subset, std::slice::from_ref(profile), Some(&[threshold]))?;
            let p = &report.profiles[0];
            if k == 0 {
                windows = report.windows;
            }
            outcomes.push(HeldOut {
                profile: profile.name.clone(),
                candidate: candidates[c].0.clone(),
                threshold,
                training_score,
                score: (report.windows > 0).then_some(p.score),
                raw: p.raw,
                detected_windows: p.detected_windows,
                missed_windows: p.missed_windows,
                false_positive_rows: p.false_positive_rows,
            });
        }
        folds.push(Fold {
            category: category.to_string(),
            files: held.len(),
            windows,
            profiles: outcomes,
        });
    }
    let everything: Vec<usize> = (0..first.len()).collect();
    let in_sample = tune(candidates, &everything, profiles)?;
    let summary = profiles
        .iter()
        .enumerate()
        .zip(&in_sample)
        .map(|((k, profile), &(c, threshold, score))| {
            let held: Vec<f64> = folds.iter().filter_map(|f| f.profiles[k].score).collect();
            let mean = if held.is_empty() {
                0.0
            } else {
                held.iter().sum::<f64>() / held.len() as f64
            };
            ProfileSummary {
                profile: profile.name.clone(),
                mean_held_out: mean,
                min_held_out: held.iter().copied().fold(f64::INFINITY, f64::min),
                in_sample: score,
                in_sample_candidate: candidates[c].0.clone(),
                in_sample_threshold: threshold,
            }
        })
        .collect();
    Ok(CvReport {
        files: first.len(),
        rows: first.iter().map(|f| f.scores.len()).sum(),
        candidates: candidates.iter().map(|(n, _)| n.clone()).collect(),
        folds,
        summary,
    })
}

/// Cross-validates `space` (named configurations) over the corpus on disk,
/// `labels` and `data_dir` as for [`super::nab::evaluate`].
pub fn cross_validate_corpus_with(
    labels: &Path,
    data_dir: &Path,
    space: &[(String, DetectorConfig)],
) -> Result<CvReport, NabError> {
    let profiles = find_profiles(labels, data_dir)?;
    let corpus = load_corpus(labels, data_dir)?;
    let candidates: Vec<(String, Vec<ScoredSeries>)> = space
        .iter()
        .map(|(name, config)| (name.clone(), run_detector(&corpus, config)))
        .collect();
    cross_validate(&candidates, &profiles)
}

/// [`cross_validate_corpus_with`] over the detector's declared search
/// space, [`DetectorConfig::search_space`].
pub fn cross_validate_corpus(labels: &Path, data_dir: &Path) -> Result<CvReport, NabError> {
    cross_validate_corpus_with(labels, data_dir, &DetectorConfig::search_space())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::nab::{RowWindow, default_profiles};

    const ROWS: usize = 100;

    /// A file of `ROWS` rows, one window at rows 50..=59 when `window`,
    /// scoring `in_window` on the window's first row, `noise` on row 80 and
    /// 0 elsewhere.
    fn file(name: &str, window: bool, in_window: f64, noise: f64) -> ScoredSeries {
        let mut scores = vec![0.0; ROWS];
        if window {
            scores[50] = in_window;
        }
        scores[80] = noise;
        ScoredSeries {
            name: name.into(),
            scores,
            windows: if window {
                vec![RowWindow { start: 50, end: 59 }]
            } else {
                Vec::new()
            },
        }
    }

    /// Category `a` holds more windows than `b` and `c` together, so a fold
    /// that let `a`'s own files into its tuning would choose what suits
    /// `a`. Candidate `suits-a` catches `a`'s windows and nothing else;
    /// `suits-bc` catches `b`'s and `c`'s only. Held out, `a` must get
    /// `suits-bc` and so score 0.
    #[test]
    fn a_held_out_category_takes_no_part_in_choosing_its_configuration() {
        let names = ["a/1.csv", "a/2.csv", "a/3.csv", "b/1.csv", "c/1.csv"];
        let scored = |hits: &[&str]| -> Vec<ScoredSeries> {
            names
                .iter()
                .map(|n| {
                    let hit = hits.contains(&category_of(n));
                    file(n, true, if hit { 0.9 } else { 0.0 }, 0.0)
                })
                .collect()
        };
        let candidates = vec![
            ("suits-a".to_string(), scored(&["a"])),
            ("suits-bc".to_string(), scored(&["b", "c"])),
        ];
        let report = cross_validate(&candidates, &default_profiles()).unwrap();
        let fold = |c: &str| report.folds.iter().find(|f| f.category == c).unwrap();
        for p in &fold("a").profiles {
            assert_eq!(p.candidate, "suits-bc", "{}", p.profile);
            assert_eq!(p.score, Some(0.0), "{}", p.profile);
            assert_eq!(p.missed_windows, 3);
        }
        for c in ["b", "c"] {
            // Trained on `a` plus one of `b` and `c`: `a` outweighs.
            for p in &fold(c).profiles {
                assert_eq!(p.candidate, "suits-a", "{c} {}", p.profile);
                assert_eq!(p.score, Some(0.0));
            }
        }
        // In sample, every window counts: `a`'s three beat `b` and `c`.
        for s in &report.summary {
            assert_eq!(s.in_sample_candidate, "suits-a");
            assert!((s.in_sample - 60.0).abs() < 1e-9, "{}", s.in_sample);
            assert_eq!(s.mean_held_out, 0.0);
        }
    }

    /// The threshold too comes from the other categories: `a`'s windows
    /// score 0.3, the others' 0.9 with false positives at 0.3, so tuning
    /// without `a` puts the threshold above 0.3 and `a` misses all its
    /// windows; tuning with `a` would have taken 0.3 and caught them.
    #[test]
    fn a_held_out_category_takes_no_part_in_choosing_its_threshold() {
        let mut files = Vec::new();
        for k in 0..6 {
            files.push(file(&format!("a/{k}.csv"), true, 0.3, 0.0));
        }
        for c in ["b", "c"] {
            files.push(file(&format!("{c}/1.csv"), true, 0.9, 0.3));
        }
        let candidates = vec![("only".to_string(), files)];
        let report = cross_validate(&candidates, &default_profiles()).unwrap();
        let a = report.folds.iter().find(|f| f.category == "a").unwrap();
        let standard = &a.profiles[0];
        assert!(standard.threshold > 0.3, "{}", standard.threshold);
        assert_eq!((standard.detected_windows, standard.missed_windows), (0, 6));
        assert_eq!(standard.score, Some(0.0));
        // Tuned on everything, 0.3 pays: six windows for two false alarms.
        assert_eq!(report.summary[0].in_sample_threshold, 0.3);
    }

    /// A category without windows has no normalised score, only its false
    /// positives; the mean is over the others.
    #[test]
    fn a_category_without_windows_reports_its_false_positives() {
        let files = vec![
            file("quiet/1.csv", false, 0.0, 0.95),
            file("quiet/2.csv", false, 0.0, 0.0),
            file("loud/1.csv", true, 0.9, 0.0),
            file("loud/2.csv", true, 0.9, 0.0),
        ];
        let report = cross_validate(&[("only".into(), files)], &default_profiles()).unwrap();
        let quiet = report.folds.iter().find(|f| f.category == "quiet").unwrap();
        let standard = &quiet.profiles[0];
        assert_eq!(quiet.windows, 0);
        assert_eq!(standard.score, None);
        assert_eq!(standard.false_positive_rows, 1);
        assert!((standard.raw + 0.11).abs() < 1e-12, "{}", standard.raw);
        let loud = report.folds.iter().find(|f| f.category == "loud").unwrap();
        let held = loud.profiles[0].score.unwrap();
        assert_eq!(report.summary[0].mean_held_out, held);
    }

    #[test]
    fn one_category_is_an_error() {
        let files = vec![file("only/1.csv", true, 0.9, 0.0)];
        let err = cross_validate(&[("x".into(), files)], &default_profiles()).unwrap_err();
        assert!(err.to_string().contains("`only`"), "{err}");
    }
}
