//! `mcpops watch`: one long-lived process that collects from live MCP
//! servers (Prometheus scrapes, OTLP/HTTP, MCP probes), keeps what it
//! collects in a crash-safe live store, and serves Prometheus's HTTP API over
//! it so that Grafana can chart it.
//!
//! The door: [`config::WatchConfig`] (from `watch.toml` or flags) and
//! [`run`]. Each collector is a task that appends batches to the shared
//! [`LiveStore`](crate::store::LiveStore) and reports to [`health::Health`]
//! (watch's own metrics) and [`targets::Targets`] (each target's last state).

pub mod api;
pub mod config;
pub mod health;
pub mod otlp;
pub mod probe;
pub mod scrape;
pub mod targets;

use crate::store::LiveStore;
use std::sync::Arc;

/// What every collector and handler shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<LiveStore>,
    pub health: Arc<health::Health>,
    pub targets: Arc<targets::Targets>,
    /// Turns `true` when watch is stopping: loops finish their current
    /// round and return.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}
