//! One round of a target, after the HTTP read: the body parsed by the
//! ingest parsers (by its Content-Type), the target's labels applied
//! (`honor_labels`), timestamps kept or replaced (`honor_timestamps`), the
//! limits checked, staleness markers for the series that went away, and
//! the synthetic series, all in one batch stamped with the round's start.
//!
//! As in Prometheus, a round that fails (the fetch, the parse, a limit)
//! stores nothing it scraped: its batch holds only staleness markers for
//! every series of the last stored round, and the synthetic series with
//! `up` 0. A series whose sample carries its own timestamp is not tracked
//! for staleness (Prometheus leaves those alone too).

use super::Target;
use super::fetch::Body;
use crate::engine::value::stale_nan;
use crate::ingest::{Format, IngestOptions, ingest_reader};
use crate::metadata::{MetricMeta, MetricType, TypeSource};
use crate::model::{MemorySink, SampleSink, SeriesKey};
use std::collections::BTreeMap;
use std::time::Duration;

/// How far ahead of the round a sample's own timestamp may be; later ones
/// are dropped (Prometheus's `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60_000;

/// Why a round stored nothing it scraped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("timed out after {} (the scrape timeout covers the request and the whole body)", crate::time::format_duration_ms(.0.as_millis() as i64))]
    Timeout(Duration),
    #[error("{0}")]
    Http(String),
    #[error("body_size_limit exceeded: the body reached the limit of {0} bytes")]
    BodySizeLimit(u64),
    #[error("the body does not parse: {0}")]
    Parse(String),
    #[error("sample_limit exceeded: {scraped} samples scraped, limit {limit}")]
    SampleLimit { scraped: u64, limit: u64 },
    #[error("{0}")]
    LabelLimit(String),
}

impl Failure {
    /// The `reason` label of `mcpops_watch_scrape_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "timeout",
            Failure::Http(_) => "http",
            Failure::Parse(_) => "parse",
            Failure::BodySizeLimit(_) | Failure::SampleLimit { .. } | Failure::LabelLimit(_) => {
                "limit"
            }
        }
    }
}

/// What a successful round stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundStats {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples after labelling, duplicates included (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series not in the last stored round (`scrape_series_added`).
    pub series_added: u64,
    /// Samples stored from the body.
    pub stored: u64,
    /// Staleness markers written for series that went away.
    pub stale_markers: u64,
    /// A second sample of a series at the same time, dropped.
    pub duplicates: u64,
    /// Samples whose own timestamp was too far ahead, dropped.
    pub out_of_bounds: u64,
}

/// One round's batch and outcome, to store and then [`Scraper::commit`].
#[derive(Debug)]
pub struct Round {
    pub batch: MemorySink,
    pub outcome: Result<RoundStats, Failure>,
    /// Per series of the batch (the scraped ones come first): whether it
    /// goes stale when a later round lacks it.
    tracked: Vec<bool>,
    /// The metadata this round declared, when it differs from the last
    /// stored round's (then the batch carries it; else it carries none).
    metadata: Option<BTreeMap<String, MetricMeta>>,
}

/// One target between rounds: what was stored last, for staleness.
pub struct Scraper {
    target: Target,
    /// The series of the last stored round that a later round's absence ends.
    live: foldhash::HashSet<SeriesKey>,
    /// `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
    /// `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
    report: [SeriesKey; 5],
    /// Whether the synthetic series were stored (so ending the run ends them).
    reported: bool,
    /// The metadata last stored, so that a steady target's is stored once.
    last_metadata: BTreeMap<String, MetricMeta>,
}

const REPORT: [(&str, &str); 5] = [
    (
        "up",
        "Health of the scrape target. 1 means the target is healthy, 0 if the scrape failed.",
    ),
    (
        "scrape_duration_seconds",
        "Duration of the last scrape in seconds.",
    ),
    ("scrape_samples_scraped", "Number of samples last scraped."),
    (
        "scrape_samples_post_metric_relabeling",
        "Number of samples remaining after metric relabeling was applied.",
    ),
    (
        "scrape_series_added",
        "Number of series in the last scrape that were not in the one before.",
    ),
];

impl Scraper {
    pub fn new(
        config: &super::ScrapeConfig,
        default_interval: Duration,
    ) -> Result<Scraper, super::ScrapeError> {
        let target = Target::new(config, default_interval)?;
        let report = REPORT.map(|(name, _)| SeriesKey::new(name, target.labels.clone()));
        Ok(Scraper {
            target,
            live: Default::default(),
            report,
            reported: false,
            last_metadata: BTreeMap::new(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The series a later round's absence would end.
    pub fn live_series(&self) -> usize {
        self.live.len()
    }

    /// The batch of one round that started at `start_ms` and whose fetch
    /// took `duration`. Nothing changes until [`Scraper::commit`]: a
    /// batch the store refused leaves the state as if the round never ran.
    pub fn round(
        &self,
        fetched: Result<Body, Failure>,
        start_ms: i64,
        duration: Duration,
    ) -> Round {
        let mut batch = MemorySink::default();
        let mut tracked = Vec::new();
        let outcome = match fetched {
            Err(f) => Err((f, 0, 0)),
            Ok(body) => self.scraped(&body, start_ms, &mut batch, &mut tracked),
        };
        if outcome.is_err() {
            // Nothing scraped is kept from a failed round.
            batch = MemorySink::default();
            tracked.clear();
        }
        let stale = self.mark_stale(&mut batch, &tracked, start_ms);
        let (up, scraped, post_relabel, series_added) = match &outcome {
            Ok(s) => (1.0, s.scraped, s.post_relabel, s.series_added),
            Err((_, scraped, post)) => (0.0, *scraped, *post, 0),
        };
        let values = [
            up,
            duration.as_secs_f64(),
            scraped as f64,
            post_relabel as f64,
            series_added as f64,
        ];
        for (key, value) in self.report.iter().zip(values) {
            let id = batch.intern(key.clone());
            // A MemorySink takes every sample.
            let _ = batch.push(id, start_ms, value);
        }
        for (name, help) in REPORT {
            batch.describe(name, report_meta(name, help));
        }
        let metadata = if batch.metadata == self.last_metadata {
            batch.metadata.clear();
            None
        } else {
            Some(batch.metadata.clone())
        };
        Round {
            batch,
            outcome: outcome
                .map(|s| RoundStats {
                    stale_markers: stale,
                    ..s
                })
                .map_err(|(f, _, _)| f),
            tracked,
            metadata,
        }
    }

    /// Takes a round as stored: its series are now the ones whose absence
    /// ends them.
    pub fn commit(&mut self, round: Round) {
        let tracked = round.tracked;
        self.live = round
            .batch
            .series
            .into_iter()
            .zip(tracked)
            .filter_map(|(k, t)| t.then_some(k))
            .collect();
        self.reported = true;
        if let Some(m) = round.metadata {
            self.last_metadata = m;
        }
    }

    /// The staleness markers that end every series of the target at
    /// `at_ms` (the target is going away), or `None` when none is live.
    /// Markers are written once: the state is cleared.
    pub fn end(&mut self, at_ms: i64) -> Option<MemorySink> {
        if self.live.is_empty() && !self.reported {
            return None;
        }
        let mut batch = MemorySink::default();
        let keys = self.live.drain().chain(
            self.reported
                .then(|| self.report.iter().cloned())
                .into_iter()
                .flatten(),
        );
        for key in keys {
            let id = batch.intern(key);
            let _ = batch.push(id, at_ms, stale_nan());
        }
        self.reported = false;
        Some(batch)
    }

    /// Stale markers at `at_ms` for the live series the batch's tracked
    /// ones lack; how many.
    fn mark_stale(&self, batch: &mut MemorySink, tracked: &[bool], at_ms: i64) -> u64 {
        let gone: Vec<SeriesKey> = {
            let now: foldhash::HashSet<&SeriesKey> = batch
                .series
                .iter()
                .zip(tracked)
                .filter_map(|(k, &t)| t.then_some(k))
                .collect();
            if now.len() == self.live.len() && self.live.iter().all(|k| now.contains(k)) {
                return 0;
            }
            self.live
                .iter()
                .filter(|k| !now.contains(k))
                .cloned()
                .collect()
        };
        for key in &gone {
            let id = batch.intern(key.clone());
            let _ = batch.push(id, at_ms, stale_nan());
        }
        gone.len() as u64
    }

    /// Parses a body into `out` with the target's labels; on failure, the
    /// failure and how many samples were scraped and kept before it.
    fn scraped(
        &self,
        body: &Body,
        start_ms: i64,
        out: &mut MemorySink,
        tracked: &mut Vec<bool>,
    ) -> Result<RoundStats, (Failure, u64, u64)> {
        let mut stats = RoundStats::default();
        // Prometheus parses nothing of an empty body: an empty scrape ends
        // every series, and the target is up.
        if body.bytes.is_empty() {
            return Ok(stats);
        }
        let opts = IngestOptions {
            // The parser stamps a sample without a timestamp of its own
            // with the round's start: any other time is the sample's own.
            at_ms: Some(start_ms),
            quiet: true,
            ..Default::default()
        };
        let mut raw = MemorySink::default();
        ingest_reader(
            &body.bytes[..],
            self.target.url.as_str(),
            format_of(&body.content_type),
            &opts,
            &mut raw,
        )
        .map_err(|e| (Failure::Parse(e.to_string()), 0, 0))?;
        let mut ids = Vec::with_capacity(raw.series.len());
        for key in std::mem::take(&mut raw.series) {
            let key = self.labelled(key);
            self.check_label_limits(&key)
                .map_err(|m| (Failure::LabelLimit(m), 0, 0))?;
            ids.push(out.intern(key));
        }
        let n = out.series.len();
        tracked.resize(n, false);
        let mut last_ts = vec![i64::MIN; n];
        let limit = self.target.sample_limit;
        let mut over_limit = false;
        for &(raw_id, t, v) in &raw.samples {
            stats.scraped += 1;
            stats.post_relabel += 1;
            let id = ids[raw_id as usize] as usize;
            let own = t != start_ms && self.target.honor_timestamps;
            let t = if own { t } else { start_ms };
            if last_ts[id] == t {
                stats.duplicates += 1;
                continue;
            }
            if t > start_ms + MAX_AHEAD_MS {
                stats.out_of_bounds += 1;
                continue;
            }
            // Counting goes on past the limit, so that the failure says how
            // many samples the target exposed.
            if limit > 0 && stats.stored >= limit {
                over_limit = true;
                continue;
            }
            if last_ts[id] == i64::MIN && !own && !self.live.contains(&out.series[id]) {
                stats.series_added += 1;
            }
            last_ts[id] = t;
            let _ = out.push(id as u32, t, v);
            stats.stored += 1;
            if !own {
                tracked[id] = true;
            }
        }
        if over_limit {
            return Err((
                Failure::SampleLimit {
                    scraped: stats.scraped,
                    limit,
                },
                stats.scraped,
                stats.post_relabel,
            ));
        }
        // A series none of whose samples were kept is no series of this round.
        for (id, &t) in last_ts.iter().enumerate() {
            if t == i64::MIN {
                tracked[id] = false;
            }
        }
        out.metadata = raw.metadata;
        Ok(stats)
    }

    /// The series' labels with the target's: with `honor_labels` the
    /// exposed ones win; without, the target's win and a conflicting
    /// exposed label is kept as `exported_<name>` (`exported_exported_...`
    /// when that is taken too, shortest names first, as Prometheus does).
    fn labelled(&self, key: SeriesKey) -> SeriesKey {
        let SeriesKey { metric, mut labels } = key;
        if self.target.honor_labels {
            for (name, value) in &self.target.labels {
                if !labels.iter().any(|(n, _)| n == name) {
                    labels.push((name.clone(), value.clone()));
                }
            }
        } else {
            let mut conflicts = Vec::new();
            for (name, value) in &self.target.labels {
                match labels.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => {
                        let exposed = std::mem::replace(&mut slot.1, value.clone());
                        conflicts.push((name.clone(), exposed));
                    }
                    None => labels.push((name.clone(), value.clone())),
                }
            }
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut exported = name;
                loop {
                    exported = format!("exported_{exported}");
                    if !labels.iter().any(|(n, _)| *n == exported) {
                        labels.push((exported, value));
                        break;
                    }
                }
            }
        }
        SeriesKey::new(metric, labels)
    }

    /// `label_limit`, `label_name_length_limit`, `label_value_length_limit`,
    /// counted as Prometheus counts them (the name as `__name__`).
    fn check_label_limits(&self, key: &SeriesKey) -> Result<(), String> {
        let t = &self.target;
        let short = |s: &str| s.chars().take(50).collect::<String>();
        let count = key.labels.len() as u64 + 1;
        if t.label_limit > 0 && count > t.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {}, number of labels: {count}, limit: {})",
                short(&key.metric),
                t.label_limit
            ));
        }
        let all = std::iter::once(("__name__", key.metric.as_str()))
            .chain(key.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        for (name, value) in all {
            for (setting, limit, length) in [
                (
                    "label_name_length_limit",
                    t.label_name_length_limit,
                    name.len(),
                ),
                (
                    "label_value_length_limit",
                    t.label_value_length_limit,
                    value.len(),
                ),
            ] {
                if limit > 0 && length as u64 > limit {
                    return Err(format!(
                        "{setting} exceeded (metric: {}, label name: {}, length: {length}, \
                         limit: {limit})",
                        short(&key.metric),
                        short(name),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The parser for a Content-Type: OpenMetrics when the target says so,
/// else Prometheus text (Prometheus 2.x falls back to it for any other
/// or no type).
pub fn format_of(content_type: &str) -> Format {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

fn report_meta(name: &str, help: &str) -> MetricMeta {
    MetricMeta {
        kind: MetricType::Gauge,
        source: TypeSource::Declared,
        family: name.to_string(),
        part: None,
        unit: (name == "scrape_duration_seconds").then(|| "seconds".to_string()),
        help: Some(help.to_string()),
        declared_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ScrapeConfig;
    use super::*;
    use crate::engine::value::is_stale;

    const T0: i64 = 1_800_000_000_000;

    fn scraper(extra: &str) -> Scraper {
        let config: ScrapeConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:9100/metrics\"\njob = \"j\"\n{extra}"
        ))
        .unwrap();
        Scraper::new(&config, Duration::from_secs(15)).unwrap()
    }

    fn text(body: &str) -> Result<Body, Failure> {
        Ok(Body {
            bytes: body.as_bytes().to_vec(),
            content_type: "text/plain; version=0.0.4".into(),
        })
    }

    fn om(body: &str) -> Result<Body, Failure> {
        Ok(Body {
            bytes: body.as_bytes().to_vec(),
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
        })
    }

    /// `metric{labels} value@t` of every sample, sorted.
    fn samples(batch: &MemorySink) -> Vec<String> {
        let mut v: Vec<String> = batch
            .resolved()
            .into_iter()
            .map(|(k, t, v)| {
                let v = if is_stale(v) {
                    "stale".into()
                } else {
                    v.to_string()
                };
                format!("{k} {v}@{}", t - T0)
            })
            .collect();
        v.sort();
        v
    }

    fn step(s: &mut Scraper, body: Result<Body, Failure>, at: i64) -> Round {
        let round = s.round(body, T0 + at, Duration::from_millis(5));
        let out = Round {
            batch: round.batch.clone(),
            outcome: round.outcome.clone(),
            tracked: round.tracked.clone(),
            metadata: round.metadata.clone(),
        };
        s.commit(round);
        out
    }

    #[test]
    fn a_round_labels_every_series_and_adds_the_synthetic_ones() {
        let s = scraper("");
        let r = s.round(text("a 1\nb{x=\"y\"} 2\n"), T0, Duration::from_millis(250));
        assert_eq!(
            samples(&r.batch),
            vec![
                "a{instance=\"127.0.0.1:9100\", job=\"j\"} 1@0",
                "b{instance=\"127.0.0.1:9100\", job=\"j\", x=\"y\"} 2@0",
                "scrape_duration_seconds{instance=\"127.0.0.1:9100\", job=\"j\"} 0.25@0",
                "scrape_samples_post_metric_relabeling{instance=\"127.0.0.1:9100\", job=\"j\"} 2@0",
                "scrape_samples_scraped{instance=\"127.0.0.1:9100\", job=\"j\"} 2@0",
                "scrape_series_added{instance=\"127.0.0.1:9100\", job=\"j\"} 2@0",
                "up{instance=\"127.0.0.1:9100\", job=\"j\"} 1@0",
            ]
        );
        assert_eq!(r.batch.metadata["up"].kind, MetricType::Gauge);
    }

    #[test]
    fn honor_labels_false_exports_the_conflicting_labels() {
        let s = scraper("labels = { team = \"core\" }");
        let body = "m{job=\"other\",instance=\"i\",exported_job=\"taken\",team=\"t\"} 1\n";
        let r = s.round(text(body), T0, Duration::ZERO);
        let m = r
            .batch
            .series
            .iter()
            .find(|k| k.metric == "m")
            .unwrap()
            .to_string();
        assert_eq!(
            m,
            "m{exported_exported_job=\"other\", exported_instance=\"i\", exported_job=\"taken\", \
             exported_team=\"t\", instance=\"127.0.0.1:9100\", job=\"j\", team=\"core\"}"
        );
    }

    #[test]
    fn honor_labels_true_keeps_the_exposed_labels() {
        let s = scraper("honor_labels = true\nlabels = { team = \"core\" }");
        let r = s.round(text("m{job=\"other\"} 1\n"), T0, Duration::ZERO);
        let m = r.batch.series.iter().find(|k| k.metric == "m").unwrap();
        assert_eq!(
            m.to_string(),
            "m{instance=\"127.0.0.1:9100\", job=\"other\", team=\"core\"}"
        );
        // The synthetic series always carry the target's own labels.
        let up = r.batch.series.iter().find(|k| k.metric == "up").unwrap();
        assert_eq!(up.label("job"), Some("j"));
    }

    #[test]
    fn honor_timestamps_keeps_or_replaces_the_exposed_time() {
        let body = format!("a 1 {}\nb 2\n", T0 - 5000);
        let kept = scraper("").round(text(&body), T0, Duration::ZERO);
        assert!(
            samples(&kept.batch)
                .contains(&"a{instance=\"127.0.0.1:9100\", job=\"j\"} 1@-5000".to_string())
        );
        let replaced = scraper("honor_timestamps = false").round(text(&body), T0, Duration::ZERO);
        assert!(
            samples(&replaced.batch)
                .contains(&"a{instance=\"127.0.0.1:9100\", job=\"j\"} 1@0".to_string())
        );
        // OpenMetrics timestamps are seconds.
        let body = format!("a 1 {}.5\n# EOF\n", (T0 - 5000) / 1000);
        let kept = scraper("").round(om(&body), T0, Duration::ZERO);
        assert!(
            samples(&kept.batch)
                .contains(&"a{instance=\"127.0.0.1:9100\", job=\"j\"} 1@-4500".to_string())
        );
    }

    #[test]
    fn vanished_series_get_one_marker_and_a_failure_ends_them_all() {
        let mut s = scraper("");
        step(&mut s, text("a 1\nb 2\n"), 0);
        let r = step(&mut s, text("a 1\n"), 15_000);
        assert!(
            samples(&r.batch)
                .contains(&"b{instance=\"127.0.0.1:9100\", job=\"j\"} stale@15000".to_string())
        );
        assert_eq!(r.outcome.as_ref().unwrap().stale_markers, 1);
        // Written once: b is no longer live.
        let r = step(&mut s, text("a 1\n"), 30_000);
        assert_eq!(r.outcome.as_ref().unwrap().stale_markers, 0);
        assert!(!samples(&r.batch).iter().any(|l| l.contains("stale")));
        // A failed round stores nothing scraped, ends a, and reports up 0.
        let r = step(&mut s, Err(Failure::Http("refused".into())), 45_000);
        let got = samples(&r.batch);
        assert!(
            got.contains(&"a{instance=\"127.0.0.1:9100\", job=\"j\"} stale@45000".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"up{instance=\"127.0.0.1:9100\", job=\"j\"} 0@45000".to_string()));
        assert_eq!(got.len(), 6, "{got:?}");
        let r = step(&mut s, Err(Failure::Http("refused".into())), 60_000);
        assert_eq!(samples(&r.batch).len(), 5, "no second marker");
        // Ending the run ends the synthetic series too, once.
        let end = s.end(T0 + 61_000).unwrap();
        assert_eq!(end.samples.len(), 5);
        assert!(end.samples.iter().all(|s| is_stale(s.2)));
        assert!(s.end(T0 + 62_000).is_none());
    }

    #[test]
    fn a_round_the_store_refused_changes_nothing() {
        let mut s = scraper("");
        step(&mut s, text("a 1\nb 2\n"), 0);
        // Not committed: b's marker was never stored ...
        let lost = s.round(text("a 1\n"), T0 + 15_000, Duration::ZERO);
        assert_eq!(lost.outcome.unwrap().stale_markers, 1);
        // ... so the next stored round writes it.
        let r = step(&mut s, text("a 1\n"), 30_000);
        assert_eq!(r.outcome.unwrap().stale_markers, 1);
    }

    #[test]
    fn series_with_their_own_timestamps_are_not_marked() {
        let mut s = scraper("");
        step(&mut s, text(&format!("a 1 {}\nb 2\n", T0 - 1000)), 0);
        assert_eq!(s.live_series(), 1);
        let r = step(&mut s, text("c 1\n"), 15_000);
        let got = samples(&r.batch);
        assert!(
            got.iter()
                .any(|l| l.starts_with("b{") && l.contains("stale"))
        );
        assert!(!got.iter().any(|l| l.starts_with("a{")), "{got:?}");
    }

    #[test]
    fn limits_fail_the_whole_round() {
        let s = scraper("sample_limit = 2");
        let r = s.round(text("a 1\nb 2\nc 3\n"), T0, Duration::ZERO);
        assert_eq!(
            r.outcome,
            Err(Failure::SampleLimit {
                scraped: 3,
                limit: 2
            })
        );
        let got = samples(&r.batch);
        assert_eq!(got.len(), 5, "only the synthetic series: {got:?}");
        assert!(got.contains(
            &"scrape_samples_scraped{instance=\"127.0.0.1:9100\", job=\"j\"} 3@0".to_string()
        ));
        assert!(got.contains(&"up{instance=\"127.0.0.1:9100\", job=\"j\"} 0@0".to_string()));
        assert!(
            s.round(text("a 1\nb 2\n"), T0, Duration::ZERO)
                .outcome
                .is_ok()
        );

        for (setting, body, says) in [
            // job, instance, x and the name: 4 labels.
            (
                "label_limit = 3",
                "a{x=\"1\"} 1\n",
                "label_limit exceeded (metric: a, number of labels: 4, limit: 3)",
            ),
            // The target's own instance label is the first too long.
            (
                "label_value_length_limit = 3",
                "a{x=\"long\"} 1\n",
                "label_value_length_limit exceeded (metric: a, label name: instance, length: 14, limit: 3)",
            ),
            (
                "label_name_length_limit = 8",
                "a{long_name=\"v\"} 1\n",
                "label_name_length_limit exceeded (metric: a, label name: long_name, length: 9, limit: 8)",
            ),
        ] {
            let e = scraper(setting)
                .round(text(body), T0, Duration::ZERO)
                .outcome
                .unwrap_err();
            assert!(e.to_string().contains(says), "{setting}: {e}");
            assert_eq!(e.reason(), "limit", "{setting}");
        }
    }

    #[test]
    fn bad_bodies_fail_with_where_and_what() {
        let s = scraper("");
        for (body, expect) in [
            ("a{x=\"\u{1}\" 1\n", "metrics:1:"),
            ("a 1 2 3\n", "unexpected `3`"),
            ("a NaNx\n", "metrics:1:3"),
        ] {
            let e = s.round(text(body), T0, Duration::ZERO).outcome.unwrap_err();
            assert_eq!(e.reason(), "parse");
            assert!(e.to_string().contains(expect), "{body:?}: {e}");
        }
        let bad_utf8 = Ok(Body {
            bytes: b"a{x=\"\xff\xfe\"} 1\n".to_vec(),
            content_type: "text/plain".into(),
        });
        let e = s.round(bad_utf8, T0, Duration::ZERO).outcome.unwrap_err();
        assert_eq!(e.reason(), "parse", "{e}");
        // OpenMetrics without `# EOF` is a truncated body.
        let e = s
            .round(om("a 1\n"), T0, Duration::ZERO)
            .outcome
            .unwrap_err();
        assert_eq!(e.reason(), "parse", "{e}");
        // An empty body is an empty scrape, not a failure.
        let r = s.round(text(""), T0, Duration::ZERO);
        assert_eq!(r.outcome.unwrap().scraped, 0);
    }

    #[test]
    fn duplicates_and_far_future_samples_are_dropped_not_fatal() {
        let s = scraper("");
        let body = format!("a 1\na 2\nb 1 {}\n", T0 + 3_600_000);
        let r = s.round(text(&body), T0, Duration::ZERO);
        let stats = r.outcome.unwrap();
        assert_eq!(
            (
                stats.scraped,
                stats.stored,
                stats.duplicates,
                stats.out_of_bounds
            ),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn metadata_is_stored_when_it_changes() {
        let mut s = scraper("");
        let body = "# TYPE a counter\n# HELP a As.\na_total 1\n";
        let r = step(&mut s, text(body), 0);
        assert!(
            r.batch.metadata.contains_key("a_total"),
            "{:?}",
            r.batch.metadata
        );
        let r = step(&mut s, text(body), 15_000);
        assert!(r.batch.metadata.is_empty());
        let r = step(&mut s, text("# TYPE a gauge\na 1\n"), 30_000);
        assert_eq!(r.batch.metadata["a"].kind, MetricType::Gauge);
    }

    #[test]
    fn content_types_choose_the_parser() {
        assert_eq!(
            format_of("application/openmetrics-text; version=1.0.0"),
            Format::OpenMetrics
        );
        assert_eq!(
            format_of("Application/OpenMetrics-Text"),
            Format::OpenMetrics
        );
        assert_eq!(format_of("text/plain; version=0.0.4"), Format::Prometheus);
        assert_eq!(format_of(""), Format::Prometheus);
        assert_eq!(format_of("application/json"), Format::Prometheus);
    }
}
