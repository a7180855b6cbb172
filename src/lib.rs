//! mcpops: an embedded time-series analytics engine for MCP server operators.
//!
//! Data flows one way: [`ingest`] -> [`store`] -> [`engine`] / [`analyze`]
//! -> [`remediate`] -> [`report`]. [`model`]
//! holds the types the rooms share, [`metadata`] what kind of series each
//! metric name holds, [`names`] the metric and label names,
//! [`time`] times, durations and their units, [`stats`] the numeric kernels
//! engine and analyzer both use (neither imports the other), [`dsl`] the
//! rule language, [`generate`] the sample fleet.
//!
//! The library returns data and does no process-global work: the `mcpops`
//! binary (src/main.rs, src/cli/) parses the command line, renders what the
//! library returns, and tunes the allocator (src/memory.rs).

pub mod analyze;
pub mod dsl;
pub mod engine;
pub mod fsutil;
pub mod generate;
pub mod ingest;
pub mod metadata;
pub mod model;
pub mod names;
pub mod progress;
pub mod remediate;
pub mod report;
pub mod stats;
pub mod store;
pub mod time;
pub mod watch;

/// An error and its causes on one line, `error: cause: cause`, a cause
/// left out when the text before already holds it (many errors quote their
/// source). Scrapes, probes, webhooks and Alertmanager deliveries report a
/// peer's failure so: the outermost error alone says little ("error
/// sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
