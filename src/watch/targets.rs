//! Each scrape and probe target's last state (health, last error, when and
//! how long), for `/api/v1/targets` and the log.

use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Scrape,
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    Unknown,
    Up,
    Down,
}

/// One target as its collector last saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetStatus {
    pub kind: TargetKind,
    pub job: String,
    pub instance: String,
    /// The scrape URL, the probe's URL or command line.
    pub url: String,
    pub labels: Vec<(String, String)>,
    pub health: TargetHealth,
    /// Empty when the last round succeeded; for a probe that exited, the
    /// exit code and the tail of its stderr.
    pub last_error: String,
    pub last_round_ms: i64,
    pub last_duration_seconds: f64,
    /// A probe's negotiated MCP protocol version.
    pub protocol_version: Option<String>,
}

/// Every target's status, keyed by `job/instance`.
#[derive(Default)]
pub struct Targets {
    by_key: RwLock<BTreeMap<String, TargetStatus>>,
}

impl Targets {
    pub fn new() -> Targets {
        Targets::default()
    }

    pub fn update(&self, status: TargetStatus) {
        if let Ok(mut m) = self.by_key.write() {
            m.insert(format!("{}/{}", status.job, status.instance), status);
        }
    }

    pub fn all(&self) -> Vec<TargetStatus> {
        self.by_key
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}
