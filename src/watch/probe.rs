//! Probes of MCP servers, like a blackbox exporter: over stdio or
//! Streamable HTTP, in either protocol era, phase by phase, each round's
//! results appended to the live store as `mcp_probe_*` series and
//! `mcp.client.operation.duration` samples.

use super::Shared;
use std::time::Duration;

/// One probe target (a `[[probe]]` table of `watch.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The `instance` label; defaults to the URL or the command line.
    #[serde(default)]
    pub name: Option<String>,
    /// A stdio server: the command line (argv).
    #[serde(default)]
    pub command: Vec<String>,
    /// A Streamable HTTP server.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, with = "crate::watch::config::duration_opt")]
    pub interval: Option<Duration>,
}

impl ProbeConfig {
    /// A target given as `--probe-cmd 'CMD ARGS'` (split like a shell, no shell run).
    pub fn from_command(argv: Vec<String>) -> ProbeConfig {
        ProbeConfig {
            name: None,
            command: argv,
            url: None,
            interval: None,
        }
    }

    /// A target given as `--probe-url URL`.
    pub fn from_url(url: &str) -> ProbeConfig {
        ProbeConfig {
            name: None,
            command: Vec::new(),
            url: Some(url.to_string()),
            interval: None,
        }
    }
}

/// Probes `target` every interval until watch stops.
pub async fn run(_target: ProbeConfig, _default_interval: Duration, _shared: Shared) {}
