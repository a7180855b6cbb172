//! `mcpops watch`: one long-lived process that collects from live MCP
//! servers (Prometheus scrapes, OTLP/HTTP, MCP probes), keeps what it
//! collects in a crash-safe live store, and serves Prometheus's HTTP API over
//! it so that Grafana can chart it.
//!
//! The door: [`config::WatchConfig`] (from `watch.toml` or flags) and
//! [`run`]. Each collector is a task that appends batches to the shared
//! [`LiveStore`](crate::store::LiveStore) and reports to [`health::Health`]
//! (watch's own metrics) and [`targets::Targets`] (each target's last state).

pub mod alerting;
pub mod api;
pub mod config;
pub mod health;
pub mod otlp;
pub mod probe;
pub mod rules;
pub mod run;
pub mod scrape;
pub mod targets;

pub use run::{RunOptions, run, run_blocking};

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
    /// A value that does not make sense (an address, a zero interval),
    /// the message naming the key or flag.
    #[error("{0}")]
    Config(String),
    /// `watch.toml` does not parse or has a wrong or unknown key.
    #[error("{origin}:{line}:{col}: {message}")]
    ConfigFile {
        origin: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The listener's address is taken, not ours, or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The rule files have errors: every diagnostic, as `mcpops check`
    /// prints them.
    #[error("{}", rules_message(.0))]
    Rules(Vec<crate::dsl::Diagnostic>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn rules_message(diagnostics: &[crate::dsl::Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut text = format!("the rule files have {errors} error(s):");
    for d in diagnostics {
        text.push('\n');
        text.push_str(&d.to_string());
    }
    text
}

impl WatchError {
    /// Whether the error is the user's to fix (a config or address), not a
    /// failure of the machine.
    pub fn is_usage(&self) -> bool {
        match self {
            WatchError::Config(_)
            | WatchError::ConfigFile { .. }
            | WatchError::Bind { .. }
            | WatchError::Rules(_) => true,
            WatchError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            WatchError::Store(_) => false,
        }
    }
}
