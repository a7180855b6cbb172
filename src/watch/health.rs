//! watch's own health: counters and gauges (`mcpops_watch_up`, WAL size,
//! late samples, scrape and probe errors) that the collectors update, served
//! as Prometheus text on `/metrics` and stored like any scraped series.

use crate::model::{MemorySink, SampleSink, SeriesKey};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One registry of watch's own series: a name ending `_total` is a counter,
/// anything else a gauge.
#[derive(Default)]
pub struct Health {
    series: Mutex<BTreeMap<SeriesKey, f64>>,
    help: Mutex<BTreeMap<String, String>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Adds `by` to a counter (created at 0).
    pub fn add(&self, metric: &str, labels: &[(&str, &str)], by: f64) {
        if let Ok(mut series) = self.series.lock() {
            *series.entry(key(metric, labels)).or_insert(0.0) += by;
        }
    }

    /// Sets a gauge.
    pub fn set(&self, metric: &str, labels: &[(&str, &str)], value: f64) {
        if let Ok(mut series) = self.series.lock() {
            series.insert(key(metric, labels), value);
        }
    }

    /// The `# HELP` line of a metric.
    pub fn describe(&self, metric: &str, help: &str) {
        if let Ok(mut h) = self.help.lock() {
            h.insert(metric.to_string(), help.to_string());
        }
    }

    /// The current value of one series, if it exists.
    pub fn get(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series.lock().ok()?.get(&key(metric, labels)).copied()
    }

    /// Every series now, as Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let series = self.series.lock().map(|s| s.clone()).unwrap_or_default();
        let help = self.help.lock().map(|h| h.clone()).unwrap_or_default();
        let mut out = String::new();
        let mut last = "";
        for (k, v) in &series {
            if k.metric != last {
                if let Some(h) = help.get(&k.metric) {
                    out.push_str(&format!("# HELP {} {}\n", k.metric, escape_help(h)));
                }
                let kind = if k.metric.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                };
                out.push_str(&format!("# TYPE {} {kind}\n", k.metric));
            }
            last = &k.metric;
            out.push_str(&k.metric);
            if !k.labels.is_empty() {
                out.push('{');
                for (i, (n, val)) in k.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("{n}=\"{}\"", escape_label(val)));
                }
                out.push('}');
            }
            out.push_str(&format!(" {}\n", crate::model::prom_float(*v)));
        }
        out
    }

    /// Every series now as samples at `timestamp_ms`, for the store.
    pub fn batch(&self, timestamp_ms: i64) -> MemorySink {
        let mut sink = MemorySink::default();
        let series = self.series.lock().map(|s| s.clone()).unwrap_or_default();
        for (k, v) in series {
            let id = sink.intern(k);
            // A MemorySink never refuses a sample.
            let _ = sink.push(id, timestamp_ms, v);
        }
        sink
    }
}

fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(
        metric,
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let h = Health::new();
        h.describe("mcpops_watch_scrape_errors_total", "Failed scrapes.");
        h.add("mcpops_watch_scrape_errors_total", &[("job", "a\"b")], 1.0);
        h.add("mcpops_watch_scrape_errors_total", &[("job", "a\"b")], 2.0);
        h.set("mcpops_watch_up", &[], 1.0);
        let text = h.render();
        assert!(
            text.contains("# TYPE mcpops_watch_scrape_errors_total counter"),
            "{text}"
        );
        assert!(
            text.contains("mcpops_watch_scrape_errors_total{job=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mcpops_watch_up gauge\nmcpops_watch_up 1\n"),
            "{text}"
        );
        let mut parsed = MemorySink::default();
        let opts = crate::ingest::IngestOptions {
            at_ms: Some(1000),
            quiet: true,
            ..Default::default()
        };
        crate::ingest::ingest_reader(
            text.as_bytes(),
            "/metrics",
            crate::ingest::Format::Prometheus,
            &opts,
            &mut parsed,
        )
        .expect("our own exposition parses");
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(h.batch(5).samples.len(), 2);
    }
}
