//! The NAB scorer and the online detector: the scorer's fixed points on the
//! real corpus (nothing detected scores 0, each window's first row 100), a
//! small case worked by hand from the README's rules, and the detector's
//! contract (one output row per input row, scores in [0, 1], no look-ahead,
//! clean errors and no panic on junk input).
//!
//! The corpus is `tests/data/nab` in the repository (41 files of NAB, MIT
//! licence, with its labels and profiles; its README says how NAB scores).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use mcpops::analyze::detect::{DetectError, Detector, DetectorConfig, detect_csv, read_series};
use mcpops::analyze::nab::{
    self, LabelledSeries, Profile, RowWindow, ScoredSeries, default_profiles, score_corpus,
};

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nab");
    assert!(
        dir.join("labels/combined_windows.json").is_file() && dir.join("data").is_dir(),
        "the NAB corpus ships in {}",
        dir.display()
    );
    dir
}

fn load_corpus(dir: &Path) -> Vec<LabelledSeries> {
    nab::load_corpus(&dir.join("labels/combined_windows.json"), &dir.join("data"))
        .expect("the NAB corpus loads")
}

fn profiles(dir: &Path) -> Vec<Profile> {
    let p = nab::find_profiles(&dir.join("labels/combined_windows.json"), &dir.join("data"))
        .expect("profiles load");
    assert_eq!(p, default_profiles(), "profiles.json holds NAB's weights");
    p
}

/// The corpus scored by `f(file, row)`.
fn synthetic(
    corpus: &[LabelledSeries],
    f: impl Fn(&LabelledSeries, usize) -> f64,
) -> Vec<ScoredSeries> {
    corpus
        .iter()
        .map(|file| ScoredSeries {
            name: file.name.clone(),
            scores: (0..file.series.values.len()).map(|i| f(file, i)).collect(),
            windows: file.windows.clone(),
        })
        .collect()
}

#[test]
fn a_detector_that_flags_nothing_scores_zero() {
    let dir = corpus_dir();
    let corpus = load_corpus(&dir);
    let report = score_corpus(&synthetic(&corpus, |_, _| 0.0), &profiles(&dir)).unwrap();
    assert_eq!(report.files, 41);
    assert_eq!(report.windows, 64);
    for p in &report.profiles {
        assert!(p.score.abs() < 1e-9, "{}: {}", p.profile.name, p.score);
        assert_eq!(p.detected_windows, 0);
        assert_eq!(p.false_positive_rows, 0);
        assert!(p.threshold > 1.0, "nothing flagged: {}", p.threshold);
    }
}

#[test]
fn a_detector_that_flags_each_windows_first_row_scores_100() {
    let dir = corpus_dir();
    let corpus = load_corpus(&dir);
    let perfect = synthetic(&corpus, |file, i| {
        if file.windows.iter().any(|w| w.start == i) {
            1.0
        } else {
            0.0
        }
    });
    let report = score_corpus(&perfect, &profiles(&dir)).unwrap();
    for p in &report.profiles {
        assert!(
            (p.score - 100.0).abs() < 1e-9,
            "{}: {}",
            p.profile.name,
            p.score
        );
        assert_eq!(p.detected_windows, 64);
        assert_eq!(p.false_positive_rows, 0);
        assert_eq!(p.threshold, 1.0);
    }
}

/// NAB's scaled sigmoid, written out again from the README.
fn sigma(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

#[test]
fn true_and_false_positives_weigh_as_the_readme_says() {
    // 100 rows: probation is floor(0.15 * 100) = 15 rows. One window, rows
    // 40..=49 (R = 49, W = 10). Flagged (0.9): row 5 (probation: ignored),
    // row 20 (no window before it: -A_FP), row 42 (in the window), row 55
    // (y = (55 - 49) / 9 = 2/3 after the window) and row 77 (y = 28/9 > 3).
    let mut scores = vec![0.0; 100];
    for i in [5, 20, 42, 55, 77] {
        scores[i] = 0.9;
    }
    let file = ScoredSeries {
        name: "hand.csv".into(),
        scores,
        windows: vec![RowWindow { start: 40, end: 49 }],
    };
    // Row 42: sigma(-(49 - 42 + 1) / 10) / sigma(-1) = sigma(-0.8) / sigma(-1).
    let tp = sigma(-0.8) / sigma(-1.0);
    assert!((tp - 0.977_106_84).abs() < 1e-8);
    let after = sigma(6.0 / 9.0);
    assert!((after - -0.931_109_61).abs() < 1e-8);
    assert_eq!(sigma(28.0 / 9.0), -1.0);

    let report = score_corpus(std::slice::from_ref(&file), &default_profiles()).unwrap();
    assert_eq!(report.per_file[0].probation_rows, 15);
    for p in &report.profiles {
        let (a_tp, a_fn, a_fp) = (p.profile.tp, p.profile.fn_, p.profile.fp);
        let raw = a_tp * tp - a_fp + a_fp * after - a_fp;
        let expected = 100.0 * (raw + a_fn) / (a_tp + a_fn);
        assert!(
            (p.raw - raw).abs() < 1e-12,
            "{}: raw {}",
            p.profile.name,
            p.raw
        );
        assert!((p.score - expected).abs() < 1e-9, "{}", p.profile.name);
        assert_eq!(p.threshold, 0.9);
        assert_eq!((p.detected_windows, p.missed_windows), (1, 0));
        assert_eq!(p.false_positive_rows, 3);
        assert_eq!((p.null, p.perfect), (-a_fn, a_tp));
    }
    // The same figures by hand, to a few digits.
    let standard = &report.profiles[0];
    assert!((standard.raw - 0.654_684_78).abs() < 1e-8);
    assert!((standard.score - 82.734_239_2).abs() < 1e-6);
    assert!((report.profiles[1].score - 66.613_136_4).abs() < 1e-6);
    assert!((report.profiles[2].score - 88.489_492_8).abs() < 1e-6);
    assert_eq!(report.per_file[0].profiles[0].false_positive_rows, 3);
}

#[test]
fn the_threshold_is_the_one_that_maximises_the_total() {
    // Row 20 (a false positive) scores 0.9, row 42 (in the window) 0.8:
    // at 0.9 the total is -1 - 0.11, below the null detector's -1; at 0.8
    // it is tp - 0.11. A window scores its best (earliest) detected row.
    let mut scores = vec![0.0; 100];
    scores[20] = 0.9;
    scores[42] = 0.8;
    scores[45] = 0.8;
    let file = ScoredSeries {
        name: "hand.csv".into(),
        scores,
        windows: vec![RowWindow { start: 40, end: 49 }],
    };
    let report = score_corpus(&[file], &default_profiles()).unwrap();
    let standard = &report.profiles[0];
    assert_eq!(standard.threshold, 0.8);
    let tp = sigma(-0.8) / sigma(-1.0);
    assert!((standard.raw - (tp - 0.11)).abs() < 1e-12);

    // When every threshold loses to flagging nothing, nothing is flagged.
    let mut scores = vec![0.0; 100];
    scores[20] = 0.7;
    let lonely = ScoredSeries {
        name: "fp.csv".into(),
        scores,
        windows: vec![RowWindow { start: 40, end: 49 }],
    };
    let report = score_corpus(&[lonely], &default_profiles()).unwrap();
    assert_eq!(report.profiles[0].score, 0.0);
    assert!(report.profiles[0].threshold > 1.0);
}

#[test]
fn windows_that_do_not_fit_are_errors_not_panics() {
    let file = ScoredSeries {
        name: "bad.csv".into(),
        scores: vec![0.0; 10],
        windows: vec![RowWindow { start: 5, end: 10 }],
    };
    let err = score_corpus(&[file], &default_profiles()).unwrap_err();
    assert!(err.to_string().contains("bad.csv"), "{err}");
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
    path
}

fn detect_to_string(path: &Path) -> Result<String, DetectError> {
    let mut out = Vec::new();
    detect_csv(path, &mut out)?;
    Ok(String::from_utf8(out).expect("output is UTF-8"))
}

/// Checks detect's output against its input: header first, one row per
/// input row, timestamp and value echoed, scores in [0, 1].
fn check_output(input: &[(String, String)], output: &str) -> Vec<f64> {
    let mut lines = output.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    let mut scores = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(output.as_bytes());
    for (row, (ts, value)) in reader.records().zip(input) {
        let row = row.unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!((&row[0], &row[1]), (ts.as_str(), value.as_str()));
        let score: f64 = row[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "score {score}");
        scores.push(score);
    }
    assert_eq!(scores.len(), input.len(), "one output row per input row");
    scores
}

/// The rows of one real series of the corpus (4032 five-minute CPU readings).
fn nab_rows() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        corpus_dir().join("data/realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv"),
    )
    .unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let (t, v) = l.split_once(',').unwrap();
            (t.to_string(), v.to_string())
        })
        .collect()
}

fn csv_text(rows: &[(String, String)]) -> String {
    let mut text = String::from("timestamp,value\n");
    for (t, v) in rows {
        text.push_str(&format!("{t},{v}\n"));
    }
    text
}

#[test]
fn detect_writes_one_scored_row_per_input_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = nab_rows();
    let path = write_file(dir.path(), "series.csv", csv_text(&rows).as_bytes());
    let output = detect_to_string(&path).unwrap();
    let scores = check_output(&rows, &output);
    assert!(scores.iter().any(|&s| s >= 0.5), "some row raises an alarm");
    assert!(scores.iter().filter(|&&s| s >= 0.5).count() < rows.len() / 100);
    // read_series sees the same rows.
    assert_eq!(read_series(&path).unwrap().values.len(), rows.len());
}

#[test]
fn scores_never_look_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let rows = nab_rows();
    let whole = write_file(dir.path(), "whole.csv", csv_text(&rows).as_bytes());
    let whole_scores = check_output(&rows, &detect_to_string(&whole).unwrap());
    for cut in [1, 151, 700, 1234, rows.len() - 1] {
        let prefix = &rows[..cut];
        let part = write_file(dir.path(), "part.csv", csv_text(prefix).as_bytes());
        let part_scores = check_output(prefix, &detect_to_string(&part).unwrap());
        assert_eq!(part_scores[..], whole_scores[..cut], "prefix of {cut} rows");
    }
    // The same through the API, row by row, and with a cap on history small
    // enough that the shape channels forget.
    let series = read_series(&whole).unwrap();
    for config in [
        DetectorConfig::default(),
        DetectorConfig {
            history_days: 1.0,
            ..DetectorConfig::default()
        },
    ] {
        let mut a = Detector::new(config.clone());
        let all: Vec<f64> = series
            .timestamps
            .iter()
            .zip(&series.values)
            .map(|(&t, &v)| a.score(t, v))
            .collect();
        let mut b = Detector::new(config);
        for (i, (&t, &v)) in series
            .timestamps
            .iter()
            .zip(&series.values)
            .enumerate()
            .take(900)
        {
            assert_eq!(b.score(t, v), all[i], "row {i}");
        }
    }
}

#[test]
fn nan_values_score_zero_and_do_not_disturb_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = nab_rows();
    rows.truncate(1000);
    let clean = check_output(
        &rows,
        &detect_to_string(&write_file(dir.path(), "a.csv", csv_text(&rows).as_bytes())).unwrap(),
    );
    let mut holed = rows.clone();
    holed.insert(500, ("2014-02-20 00:00:00".into(), "NaN".into()));
    holed.insert(10, ("2014-02-20 00:00:00".into(), "inf".into()));
    let scores = check_output(
        &holed,
        &detect_to_string(&write_file(
            dir.path(),
            "b.csv",
            csv_text(&holed).as_bytes(),
        ))
        .unwrap(),
    );
    assert_eq!(scores[10], 0.0);
    assert_eq!(scores[501], 0.0);
    let without: Vec<f64> = scores
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 10 && i != 501)
        .map(|(_, &s)| s)
        .collect();
    assert_eq!(without, clean, "a skipped value changes no other score");
}

#[test]
fn bad_files_get_errors_that_name_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("empty.csv", b"", &["empty.csv", "empty"]),
        ("header.csv", b"timestamp,value\n", &["header.csv", "empty"]),
        (
            "nocol.csv",
            b"timestamp,val\n2014-04-01 00:00:00,1\n",
            &["nocol.csv", "line 1", "`value`"],
        ),
        (
            "short.csv",
            b"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00\n",
            &["short.csv", "line 3", "`value`"],
        ),
        (
            "number.csv",
            b"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,1.2.3\n",
            &["number.csv", "line 3", "`1.2.3`", "not a number"],
        ),
        (
            "time.csv",
            b"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-31 00:05:00,2\n",
            &[
                "time.csv",
                "line 3",
                "`2014-04-31 00:05:00`",
                "not a timestamp",
            ],
        ),
        (
            "utf8.csv",
            b"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,\xff\xfe\n",
            &["utf8.csv", "line 3"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let path = write_file(d, name, bytes);
        let mut out = Vec::new();
        let err = detect_csv(&path, &mut out).expect_err(name);
        let msg = err.to_string();
        for needle in *needles {
            assert!(msg.contains(needle), "{name}: `{msg}` lacks `{needle}`");
        }
        assert!(out.is_empty(), "{name}: nothing is written on bad input");
    }
    let missing = d.join("missing.csv");
    let err = detect_csv(&missing, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
}

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn junk_line(rng: &mut XorShift) -> Vec<u8> {
    const SEEDS: &[&str] = &[
        "2014-04-01 00:00:00,12.5",
        "2014-04-01 00:05:00,NaN",
        "2014-04-01 00:10:00,-1e308",
        "\"2014-04-01 00:15:00\",\"7\"",
        "2014-04-01T00:20:00Z,1.5e-3",
        "1396310700,3",
        "timestamp,value",
        ",",
        "",
        "2014-04-01 00:25:00,1,extra",
    ];
    const SPECIAL: &[u8] = b",\"\n\r\t .-+eE:0123456789\xff\x00";
    let mut b = SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec();
    for _ in 0..rng.below(4) {
        let pos = rng.below(b.len() + 1);
        match rng.below(5) {
            0 => b.insert(pos, SPECIAL[rng.below(SPECIAL.len())]),
            1 if pos < b.len() => {
                b.remove(pos);
            }
            2 => b.truncate(pos),
            3 => b.insert(pos, (rng.next() & 0xff) as u8),
            _ => {
                let end = (pos + 1 + rng.below(6)).min(b.len());
                let chunk = b[pos.min(end)..end].to_vec();
                b.splice(pos..pos, chunk);
            }
        }
    }
    b
}

#[test]
fn junk_input_errors_cleanly_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut failed) = (0, 0);
    for n in 0..1500 {
        let mut bytes = Vec::new();
        if rng.below(4) != 0 {
            bytes.extend_from_slice(b"timestamp,value\n");
        }
        let lines = rng.below(40);
        for _ in 0..lines {
            bytes.extend(junk_line(&mut rng));
            bytes.push(b'\n');
        }
        let name = format!("junk{n}.csv");
        let path = write_file(dir.path(), &name, &bytes);
        let mut out = Vec::new();
        match detect_csv(&path, &mut out) {
            Ok(rows) => {
                ok += 1;
                let text = String::from_utf8(out).unwrap();
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let mut seen = 0;
                for row in reader.records() {
                    let score: f64 = row.unwrap()[2].parse().unwrap();
                    assert!((0.0..=1.0).contains(&score), "{name}: {score}");
                    seen += 1;
                }
                assert_eq!(seen, rows, "{name}");
            }
            Err(e) => {
                failed += 1;
                let msg = e.to_string();
                assert!(
                    msg.contains(&name),
                    "{name}: `{msg}` does not name the file"
                );
                assert!(out.is_empty(), "{name}: partial output");
                let line = match &e {
                    DetectError::Csv { line, .. }
                    | DetectError::MissingColumn { line, .. }
                    | DetectError::BadNumber { line, .. }
                    | DetectError::BadTimestamp { line, .. } => Some(*line),
                    _ => None,
                };
                if let Some(line) = line {
                    // Quoted fields may span lines, so a line can run past
                    // the count of newline-ended junk lines by none at all.
                    let total = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                    assert!(line >= 1 && line <= total, "{name}: line {line} of {total}");
                    assert!(msg.contains(&format!("line {line}")), "{msg}");
                }
            }
        }
    }
    assert!(
        ok > 0 && failed > 0,
        "the junk mixes good and bad files: {ok} ok, {failed} failed"
    );
}

#[test]
fn evaluate_runs_the_default_detector_over_the_corpus() {
    let dir = corpus_dir();
    let report = nab::evaluate(&dir.join("labels/combined_windows.json"), &dir.join("data"))
        .expect("evaluate");
    for p in &report.profiles {
        eprintln!("NAB {}: {:.2}", p.profile.name, p.score);
    }
    assert_eq!(report.profiles.len(), 3);
    assert_eq!(report.per_file.len(), 41);
    for p in &report.profiles {
        assert!(
            p.score > 0.0 && p.score <= 100.0,
            "{}: {}",
            p.profile.name,
            p.score
        );
    }
    let standard = report.score("standard").unwrap();
    assert!(standard >= 70.0, "standard profile: {standard}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"reward_low_FN_rate\""));
    // Per-file detail adds up to the corpus totals.
    for (k, p) in report.profiles.iter().enumerate() {
        let raw: f64 = report.per_file.iter().map(|f| f.profiles[k].raw).sum();
        assert!((raw - p.raw).abs() < 1e-9);
    }
}

#[test]
fn evaluate_reports_missing_and_unlabelled_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("data/cat")).unwrap();
    write_file(
        d,
        "data/cat/a.csv",
        b"timestamp,value\n2014-04-01 00:00:00,1\n",
    );
    write_file(d, "labels.json", br#"{"cat/b.csv": []}"#);
    let err = nab::evaluate(&d.join("labels.json"), &d.join("data")).unwrap_err();
    assert!(err.to_string().contains("a.csv"), "{err}");
    write_file(d, "labels.json", br#"{"cat/a.csv": [], "cat/b.csv": []}"#);
    let err = nab::evaluate(&d.join("labels.json"), &d.join("data")).unwrap_err();
    assert!(err.to_string().contains("cat/b.csv"), "{err}");
    write_file(
        d,
        "labels.json",
        br#"{"cat/a.csv": [["2014-04-01 00:00:00", "nope"]]}"#,
    );
    let err = nab::evaluate(&d.join("labels.json"), &d.join("data")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
