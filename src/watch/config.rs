//! What `watch` runs: `watch.toml`, or the flags that cover the common case.

use super::probe::ProbeConfig;
use super::scrape::ScrapeConfig;
use std::path::PathBuf;
use std::time::Duration;

/// A whole `watch.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    pub store: Option<PathBuf>,
    #[serde(default)]
    pub scrape: Vec<ScrapeConfig>,
    #[serde(default)]
    pub probe: Vec<ProbeConfig>,
}

/// Durations in `watch.toml` as the rest of mcpops writes them (`15s`, `1m`).
pub mod duration_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        crate::time::parse_duration_ms(&text)
            .map(|ms| Some(Duration::from_millis(ms as u64)))
            .map_err(serde::de::Error::custom)
    }
}

/// The scrape and probe interval when neither the target nor `--interval` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
