//! Scrapes of Prometheus text and OpenMetrics endpoints with Prometheus's
//! semantics (intervals, timeouts, `job`/`instance`, synthetic series,
//! staleness markers), each round appended to the live store.
//!
//! The door: [`ScrapeConfig`] (a `[[scrape]]` table, or `--scrape URL`),
//! [`ScrapeConfig::check`] (refuse a bad target before starting), and
//! [`run`] (one target's loop until watch stops). [`Scraper`] is one
//! target's state between rounds with the network taken out, so that the
//! tests and the bench drive a round from a body they hold.
//!
//! - `fetch.rs`: the HTTP side (Accept header, gzip, body limit while
//!   streaming, one timeout over the whole exchange).
//! - `round.rs`: a body to a batch (parse, label, limits, staleness,
//!   synthetic series).

mod fetch;
mod round;

pub use fetch::{ACCEPT_HEADER, Body, fetch};
pub use round::{Failure, Round, RoundStats, Scraper};

use super::Shared;
use super::targets::{TargetHealth, TargetKind, TargetStatus};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prometheus's default `scrape_timeout`; a target's timeout is never
/// longer than its interval.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed before a scrape fails (Go's client, which Prometheus
/// uses, stops after 10).
pub const MAX_REDIRECTS: usize = 10;

/// One scrape target (a `[[scrape]]` table of `watch.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The endpoint, `http://host:port/path`.
    pub url: String,
    #[serde(default = "default_job")]
    pub job: String,
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub interval: Option<Duration>,
    /// How long a scrape may take, the body read included (default 10s,
    /// and never more than the interval).
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub timeout: Option<Duration>,
    /// Replaces the URL's path (Prometheus's `metrics_path`).
    #[serde(default)]
    pub metrics_path: Option<String>,
    /// Query parameters added to the URL (`module = "x"` or `module = ["x", "y"]`).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValues>,
    /// Labels added to every series of the target (Prometheus's static
    /// `labels`); they may also set `job` and `instance`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `true`: a label the target exposes wins over the target's own.
    /// `false` (default): the target's wins, the exposed one is kept as
    /// `exported_<name>`.
    #[serde(default)]
    pub honor_labels: bool,
    /// `true` (default): a sample's exposed timestamp is kept; `false`: every
    /// sample takes the scrape's time.
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// More samples than this fail the scrape (0: no limit).
    #[serde(default)]
    pub sample_limit: u64,
    /// An uncompressed body of this size or more fails the scrape: bytes, or
    /// `512KB`, `10MB`, `1GB` (powers of 1024, as Prometheus reads them).
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
    /// A series with more labels than this (its name counted) fails the scrape.
    #[serde(default)]
    pub label_limit: u64,
    #[serde(default)]
    pub label_name_length_limit: u64,
    #[serde(default)]
    pub label_value_length_limit: u64,
}

fn default_job() -> String {
    "mcp".into()
}

fn yes() -> bool {
    true
}

/// A query parameter's value or values.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum ParamValues {
    One(String),
    Many(Vec<String>),
}

impl ParamValues {
    fn values(&self) -> &[String] {
        match self {
            ParamValues::One(v) => std::slice::from_ref(v),
            ParamValues::Many(v) => v,
        }
    }
}

/// A size in bytes, written as a number or as `10MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse_byte_size(&t)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `1024`, `512KB`, `10MiB`, `1GB`: Prometheus's `body_size_limit` reads
/// every unit as a power of 1024.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not a size such as 1048576, 512KB, 10MB or 1GB");
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = t[digits..].trim().to_ascii_uppercase();
    let scale: u64 = match unit.as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

impl ScrapeConfig {
    /// A target given as `--scrape URL`.
    pub fn from_url(url: &str) -> ScrapeConfig {
        ScrapeConfig {
            url: url.to_string(),
            job: default_job(),
            interval: None,
            timeout: None,
            metrics_path: None,
            params: BTreeMap::new(),
            labels: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            body_size_limit: None,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
        }
    }

    /// Refuses a target that could never be scraped (a bad URL, a timeout
    /// longer than the interval, a label the store cannot keep), so that
    /// `watch` can stop before it starts.
    pub fn check(&self, default_interval: Duration) -> Result<(), ScrapeError> {
        Target::new(self, default_interval).map(|_| ())
    }
}

/// A target that cannot be scraped as configured.
#[derive(Debug, thiserror::Error)]
#[error("scrape target `{url}` (job `{job}`): {message}")]
pub struct ScrapeError {
    pub url: String,
    pub job: String,
    pub message: String,
}

/// A checked target: what every round needs.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    pub job: String,
    pub instance: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// `job`, `instance` and the static labels, sorted by name.
    pub labels: Vec<(String, String)>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub sample_limit: u64,
    pub body_size_limit: Option<u64>,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
}

impl Target {
    pub fn new(config: &ScrapeConfig, default_interval: Duration) -> Result<Target, ScrapeError> {
        let fail = |message: String| ScrapeError {
            url: config.url.clone(),
            job: config.job.clone(),
            message,
        };
        let mut url =
            reqwest::Url::parse(&config.url).map_err(|e| fail(format!("not a URL: {e}")))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(fail(
                    "https is not supported: this build scrapes plain http (put a TLS-terminating \
                     proxy in front, or scrape the endpoint on its http port)"
                        .into(),
                ));
            }
            other => return Err(fail(format!("scheme `{other}` is not http"))),
        }
        let Some(host) = url.host_str().map(str::to_string) else {
            return Err(fail("the URL has no host".into()));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail(
                "credentials in the URL are not supported (they would be stored in labels)".into(),
            ));
        }
        if let Some(path) = &config.metrics_path {
            if !path.starts_with('/') {
                return Err(fail(format!(
                    "metrics_path `{path}` does not start with `/`"
                )));
            }
            url.set_path(path);
        }
        if !config.params.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, values) in &config.params {
                for v in values.values() {
                    pairs.append_pair(name, v);
                }
            }
        }
        url.set_fragment(None);
        let port = url
            .port_or_known_default()
            .ok_or_else(|| fail("the URL has no port".into()))?;
        // An IPv6 host keeps its brackets (`host_str` has them), as in
        // Prometheus's `__address__`.
        let instance = format!("{host}:{port}");
        if config.job.is_empty() {
            return Err(fail("the job name is empty".into()));
        }
        let interval = config.interval.unwrap_or(default_interval);
        if interval < Duration::from_millis(1) {
            return Err(fail("the interval must be at least 1ms".into()));
        }
        let timeout = match config.timeout {
            Some(t) if t > interval => {
                return Err(fail(format!(
                    "the timeout ({}) is longer than the interval ({}): a scrape must end before \
                     the next one starts",
                    crate::time::format_duration_ms(t.as_millis() as i64),
                    crate::time::format_duration_ms(interval.as_millis() as i64)
                )));
            }
            Some(t) if t.is_zero() => return Err(fail("the timeout is zero".into())),
            Some(t) => t,
            None => DEFAULT_TIMEOUT.min(interval),
        };
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        labels.insert("job".into(), config.job.clone());
        labels.insert("instance".into(), instance.clone());
        for (name, value) in &config.labels {
            check_label_name(name).map_err(|m| fail(format!("label `{name}`: {m}")))?;
            labels.insert(name.clone(), value.clone());
        }
        let job = labels.get("job").cloned().unwrap_or_default();
        let instance = labels.get("instance").cloned().unwrap_or_default();
        Ok(Target {
            url,
            job,
            instance,
            interval,
            timeout,
            labels: labels.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            honor_labels: config.honor_labels,
            honor_timestamps: config.honor_timestamps,
            sample_limit: config.sample_limit,
            body_size_limit: config.body_size_limit.map(|b| b.0).filter(|&b| b > 0),
            label_limit: config.label_limit,
            label_name_length_limit: config.label_name_length_limit,
            label_value_length_limit: config.label_value_length_limit,
        })
    }

    /// When this target's rounds fall: Prometheus spreads targets over the
    /// interval by a hash of each, so that a thousand targets are not all
    /// scraped at the same instant, and keeps each on the same phase across
    /// restarts. The delay from `now` to the first round.
    pub fn offset(&self, now: SystemTime) -> Duration {
        let interval = self.interval.as_nanos() as u64;
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let base = interval - now % interval;
        let mut next = base + self.hash() % interval;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(next)
    }

    /// FNV-1a of the target's labels and URL: stable across runs and
    /// machines, unlike the standard library's hasher.
    fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        for (n, v) in &self.labels {
            eat(n.as_bytes());
            eat(v.as_bytes());
        }
        eat(self.url.as_str().as_bytes());
        h
    }

    fn status(&self) -> TargetStatus {
        TargetStatus {
            kind: TargetKind::Scrape,
            job: self.job.clone(),
            instance: self.instance.clone(),
            url: self.url.to_string(),
            labels: self.labels.clone(),
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_round_ms: 0,
            last_duration_seconds: 0.0,
            protocol_version: None,
        }
    }
}

/// A label name Prometheus accepts and the store can keep.
fn check_label_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("a label name is letters, digits and `_`, not starting with a digit".into());
    }
    if name.starts_with("__") {
        return Err("names starting with `__` are reserved".into());
    }
    if crate::model::is_reserved_column(name) {
        return Err(format!(
            "`{name}` is a column of the store's segments, not a label"
        ));
    }
    Ok(())
}

/// The health counters this module updates.
const SCRAPES_TOTAL: &str = "mcpops_watch_scrapes_total";
const SCRAPE_ERRORS_TOTAL: &str = "mcpops_watch_scrape_errors_total";

/// The one HTTP client of a target: no proxy from the environment (as
/// Prometheus uses none unless configured), gzip, Prometheus's redirect limit.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .gzip(true)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("mcpops/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Wall-clock milliseconds since the epoch.
fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Scrapes `target` every interval until watch stops. A target that cannot
/// be scraped as configured is reported in the target table and health
/// counters (`reason="config"`) and not scraped.
pub async fn run(target: ScrapeConfig, default_interval: Duration, shared: Shared) {
    let health = shared.health.clone();
    health.describe(SCRAPES_TOTAL, "Scrapes attempted, by target.");
    health.describe(
        SCRAPE_ERRORS_TOTAL,
        "Failed scrapes, by target and reason (timeout, http, parse, limit, store, config).",
    );
    let scraper = match Scraper::new(&target, default_interval) {
        Ok(s) => s,
        Err(e) => {
            health.add(
                SCRAPE_ERRORS_TOTAL,
                &[
                    ("job", &target.job),
                    ("instance", &target.url),
                    ("reason", "config"),
                ],
                1.0,
            );
            shared.targets.update(TargetStatus {
                kind: TargetKind::Scrape,
                job: target.job.clone(),
                instance: target.url.clone(),
                url: target.url.clone(),
                labels: Vec::new(),
                health: TargetHealth::Down,
                last_error: e.to_string(),
                last_round_ms: 0,
                last_duration_seconds: 0.0,
                protocol_version: None,
            });
            return;
        }
    };
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            let mut status = scraper.target().status();
            status.health = TargetHealth::Down;
            status.last_error = format!("cannot build the HTTP client: {e}");
            shared.targets.update(status);
            return;
        }
    };
    shared.targets.update(scraper.target().status());
    scrape_loop(scraper, client, shared).await;
}

/// The rounds of one target, then its end-of-run staleness markers.
async fn scrape_loop(mut scraper: Scraper, client: reqwest::Client, shared: Shared) {
    let mut shutdown = shared.shutdown.clone();
    let interval = scraper.target().interval;
    let wall0 = SystemTime::now();
    let first = tokio::time::Instant::now() + scraper.target().offset(wall0);
    let wall_first = wall0 + (first - tokio::time::Instant::now());
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Prometheus stamps a round with its scheduled time when it started
    // within 2ms of it (1% of the interval at most): samples of a steady
    // target then fall at exact multiples of the interval.
    let tolerance = (interval / 100).min(Duration::from_millis(2));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let tick = tokio::select! {
            t = ticker.tick() => t,
            changed = shutdown.changed() => {
                // A dropped sender means watch is going away too.
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        };
        let scheduled = wall_first + (tick - first);
        let now = SystemTime::now();
        let start = match now.duration_since(scheduled) {
            Ok(late) if late <= tolerance => scheduled,
            _ => now,
        };
        let started = std::time::Instant::now();
        let fetched = fetch(&client, scraper.target()).await;
        let duration = started.elapsed();
        let start_ms = wall_ms(start);
        scraper = match store_round(scraper, fetched, start_ms, duration, &shared).await {
            Some(s) => s,
            None => return,
        };
    }
    let end_ms = wall_ms(SystemTime::now());
    let store = shared.store.clone();
    // The target's series end here: watch is stopping, and a restart
    // starts them anew (Prometheus writes these when a target goes away).
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(batch) = scraper.end(end_ms) {
            // Nothing is left to report a failure to once the loop ended.
            let _ = store.append(&batch);
        }
    })
    .await;
}

/// Turns one fetch into a batch, stores it off the async threads, and
/// records the outcome; the scraper back, or `None` if the blocking task
/// died (a bug: the target stops rather than scraping without its state).
async fn store_round(
    mut scraper: Scraper,
    fetched: Result<Body, Failure>,
    start_ms: i64,
    duration: Duration,
    shared: &Shared,
) -> Option<Scraper> {
    let store = shared.store.clone();
    let (job, instance) = (
        scraper.target().job.clone(),
        scraper.target().instance.clone(),
    );
    let joined = tokio::task::spawn_blocking(move || {
        let round = scraper.round(fetched, start_ms, duration);
        let stored = store.append(&round.batch).map(|_| ());
        let outcome = round.outcome.clone();
        if stored.is_ok() {
            scraper.commit(round);
        }
        (scraper, outcome, stored)
    })
    .await;
    let (scraper, outcome, stored) = match joined {
        Ok(x) => x,
        Err(e) => {
            shared.health.add(
                SCRAPE_ERRORS_TOTAL,
                &[
                    ("job", &job),
                    ("instance", &instance),
                    ("reason", "internal"),
                ],
                1.0,
            );
            shared.targets.update(TargetStatus {
                health: TargetHealth::Down,
                last_error: format!(
                    "the round's task failed, the target is no longer scraped: {e}"
                ),
                last_round_ms: start_ms,
                ..TargetStatus {
                    kind: TargetKind::Scrape,
                    job,
                    instance,
                    url: String::new(),
                    labels: Vec::new(),
                    health: TargetHealth::Unknown,
                    last_error: String::new(),
                    last_round_ms: 0,
                    last_duration_seconds: 0.0,
                    protocol_version: None,
                }
            });
            return None;
        }
    };
    let t = scraper.target();
    let who = [("job", t.job.as_str()), ("instance", t.instance.as_str())];
    shared.health.add(SCRAPES_TOTAL, &who, 1.0);
    let mut status = t.status();
    status.last_round_ms = start_ms;
    status.last_duration_seconds = duration.as_secs_f64();
    let error = match (&outcome, &stored) {
        (Err(f), _) => Some((f.reason(), f.to_string())),
        (Ok(_), Err(e)) => Some(("store", format!("the store refused the round: {e}"))),
        (Ok(_), Ok(())) => None,
    };
    match error {
        None => status.health = TargetHealth::Up,
        Some((reason, message)) => {
            shared.health.add(
                SCRAPE_ERRORS_TOTAL,
                &[who[0], who[1], ("reason", reason)],
                1.0,
            );
            status.health = TargetHealth::Down;
            status.last_error = message;
        }
    }
    shared.targets.update(status);
    Some(scraper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Result<Target, ScrapeError> {
        let config: ScrapeConfig = toml::from_str(text).expect("parses");
        Target::new(&config, Duration::from_secs(15))
    }

    #[test]
    fn a_toml_table_gives_prometheus_defaults() {
        let t = target("url = \"http://127.0.0.1:9100/metrics\"").unwrap();
        assert_eq!(t.job, "mcp");
        assert_eq!(t.instance, "127.0.0.1:9100");
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        assert!(!t.honor_labels);
        assert!(t.honor_timestamps);
        assert_eq!(
            t.labels,
            vec![
                ("instance".into(), "127.0.0.1:9100".into()),
                ("job".into(), "mcp".into())
            ]
        );
        // A short interval caps the default timeout.
        let t = target("url = \"http://h/m\"\ninterval = \"2s\"").unwrap();
        assert_eq!(t.timeout, Duration::from_secs(2));
        assert_eq!(
            t.instance, "h:80",
            "the scheme's port, as __address__ has it"
        );
    }

    #[test]
    fn every_field_is_read() {
        let t = target(
            r#"
url = "http://[::1]:8080/x?a=1#frag"
job = "api"
interval = "30s"
timeout = "5s"
metrics_path = "/metrics"
params = { module = ["m1", "m2"], b = "2" }
labels = { team = "core", instance = "api-1" }
honor_labels = true
honor_timestamps = false
sample_limit = 100
body_size_limit = "1MB"
label_limit = 30
label_name_length_limit = 100
label_value_length_limit = 200
"#,
        )
        .unwrap();
        assert_eq!(
            t.url.as_str(),
            "http://[::1]:8080/metrics?a=1&b=2&module=m1&module=m2"
        );
        assert_eq!(t.instance, "api-1", "a static label may set the instance");
        assert_eq!(t.timeout, Duration::from_secs(5));
        assert_eq!(t.body_size_limit, Some(1 << 20));
        assert!(t.honor_labels && !t.honor_timestamps);
        assert_eq!((t.sample_limit, t.label_limit), (100, 30));
        let t = target("url = \"http://[::1]:8080/\"").unwrap();
        assert_eq!(t.instance, "[::1]:8080");
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        for (text, expect) in [
            ("url = \"nope\"", "not a URL"),
            ("url = \"https://h/m\"", "https is not supported"),
            ("url = \"ftp://h/m\"", "scheme `ftp`"),
            (
                "url = \"http://h/m\"\ninterval = \"5s\"\ntimeout = \"6s\"",
                "longer than the interval",
            ),
            ("url = \"http://h/m\"\njob = \"\"", "job name is empty"),
            ("url = \"http://h/m\"\nlabels = { value = \"x\" }", "column"),
            ("url = \"http://h/m\"\nlabels = { __x = \"x\" }", "reserved"),
            (
                "url = \"http://h/m\"\nlabels = { \"a-b\" = \"x\" }",
                "letters",
            ),
            (
                "url = \"http://h/m\"\nmetrics_path = \"m\"",
                "does not start",
            ),
            ("url = \"http://u:p@h/m\"", "credentials"),
        ] {
            let e = target(text).expect_err(text).to_string();
            assert!(e.contains(expect), "{text}: {e}");
        }
        let e = toml::from_str::<ScrapeConfig>("url = \"http://h/\"\nbody_size_limit = \"1XB\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a size"), "{e}");
        let e = toml::from_str::<ScrapeConfig>("url = \"http://h/\"\nhonour_labels = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("512KB"), Ok(512 << 10));
        assert_eq!(parse_byte_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("1gb"), Ok(1 << 30));
        assert!(parse_byte_size("MB").is_err());
        assert!(parse_byte_size("99999999999999999999TB").is_err());
        assert!(parse_byte_size("1.5MB").is_err());
    }

    #[test]
    fn offsets_spread_targets_and_keep_their_phase() {
        let a = target("url = \"http://127.0.0.1:1/metrics\"\ninterval = \"15s\"").unwrap();
        let b = target("url = \"http://127.0.0.1:2/metrics\"\ninterval = \"15s\"").unwrap();
        let now = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let (oa, ob) = (a.offset(now), b.offset(now));
        assert!(oa <= a.interval && ob <= b.interval);
        assert_ne!(oa, ob, "two targets fall at different phases");
        // The phase is absolute: a second later the first round is a second nearer.
        let later = a.offset(now + Duration::from_secs(1));
        let phase = |t: SystemTime, off: Duration| {
            (t + off).duration_since(UNIX_EPOCH).unwrap().as_nanos() % a.interval.as_nanos()
        };
        assert_eq!(phase(now, oa), phase(now + Duration::from_secs(1), later));
    }
}
