//! The one table of which metric and label names mean what to the analyzer.
//!
//! Real MCP servers report the same things under several names: one sample
//! per call (mcpops's JSON-lines ingest), OpenTelemetry's MCP histogram in its
//! dotted form or as Prometheus translates it, or a plain request counter
//! with a status label; resources under the OpenTelemetry, Prometheus
//! client-library and node_exporter names. [`FleetData::load`] reads the
//! store through this table and hands the rest of the analyzer one shape:
//! calls per server and tool, and gauges under the names in
//! [`crate::names`]. Metrics the table does not name are still analysed, as
//! generic series (counters as rates).
//!
//! [`FleetData::load`]: super::fleet::FleetData::load

use crate::names::{
    CALL_METRIC, CPU, DISK_FREE, DISK_TOTAL, IN_FLIGHT, MEMORY, MEMORY_LIMIT, SESSIONS,
    SESSIONS_LIMIT,
};

/// Labels that name the server a series comes from, in the order they are
/// tried: the first one the store's call or resource series carry is used.
pub const SERVER_LABELS: [&str; 8] = [
    "server",
    "instance",
    "service.instance.id",
    "service_instance_id",
    "service.name",
    "service_name",
    "host.name",
    "host_name",
];

/// Labels that name the tool of a `tools/call` call.
pub const TOOL_LABELS: [&str; 4] = ["gen_ai.tool.name", "gen_ai_tool_name", "tool", "tool_name"];
/// Labels that name the JSON-RPC method of a call.
pub const METHOD_LABELS: [&str; 3] = ["mcp.method.name", "mcp_method_name", "method"];
/// Labels that say why a call failed (absent on calls that succeeded).
pub const ERROR_LABELS: [&str; 2] = ["error.type", "error_type"];
/// Labels of a request counter that say how a call ended.
pub const STATUS_LABELS: [&str; 3] = ["status", "outcome", "result"];
/// Status values that mean the call failed.
pub const FAILED_STATUSES: [&str; 5] = ["error", "failure", "failed", "fail", "tool_error"];

/// Labels dropped on reading calls: an MCP session (or a connection's
/// transport) is a series of its own, and the analyzer pools calls by
/// server and tool.
pub const POOLED_CALL_LABELS: [&str; 4] = [
    "mcp.session.id",
    "mcp_session_id",
    "network.transport",
    "network_transport",
];

/// JSON-RPC errors that are the client's doing (parse error, invalid
/// request, unknown method, invalid params): they do not count against the
/// server's SLO. A tool's own failure (`tool_error`, a result with
/// `isError`) does.
pub fn is_client_error(code: &str) -> bool {
    matches!(code, "-32700" | "-32600" | "-32601" | "-32602")
}

/// Histogram families of call durations, in seconds: OpenTelemetry's MCP
/// metric in its dotted form and as Prometheus translates it.
pub const CALL_HISTOGRAMS: [&str; 3] = [
    "mcp_server_operation_duration_seconds",
    CALL_METRIC,
    "mcp_server_operation_duration",
];

/// Counters of calls (no durations), with a status or error label.
pub const REQUEST_COUNTERS: [&str; 4] = [
    "mcp_server_requests_total",
    "mcp_requests_total",
    "mcp_server_tool_calls_total",
    "mcp_tool_calls_total",
];

/// Gauges whose change of value means the process restarted.
pub const START_TIMES: [&str; 2] = ["process_start_time_seconds", "process.start_time"];

/// How a resource's samples become the analyzer's gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// A gauge, read as it is.
    AsIs,
    /// A counter: its reset-aware rate per second.
    Rate,
}

/// One resource the analyzer knows under another name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The name in the store.
    pub source: &'static str,
    /// The analyzer's name for it ([`crate::names`]).
    pub gauge: &'static str,
    pub conversion: Conversion,
}

const fn resource(source: &'static str, gauge: &'static str, conversion: Conversion) -> Resource {
    Resource {
        source,
        gauge,
        conversion,
    }
}

/// Resources by their client-library and node_exporter names. The
/// analyzer's own names (`process.memory.usage`, `disk.free_bytes`, ...) are
/// read as they are and need no row.
pub const RESOURCES: [Resource; 9] = [
    resource("process_resident_memory_bytes", MEMORY, Conversion::AsIs),
    resource(
        "container_spec_memory_limit_bytes",
        MEMORY_LIMIT,
        Conversion::AsIs,
    ),
    // CPU seconds per second: the share of one core, as process.cpu.utilization.
    resource("process_cpu_seconds_total", CPU, Conversion::Rate),
    resource("node_filesystem_avail_bytes", DISK_FREE, Conversion::AsIs),
    resource("node_filesystem_size_bytes", DISK_TOTAL, Conversion::AsIs),
    resource("mcp_server_sessions_open", SESSIONS, Conversion::AsIs),
    resource(
        "mcp_server_sessions_limit",
        SESSIONS_LIMIT,
        Conversion::AsIs,
    ),
    resource("mcp_server_requests_in_flight", IN_FLIGHT, Conversion::AsIs),
    resource("mcp_server_sessions", SESSIONS, Conversion::AsIs),
];

/// The resource row for a stored name.
pub fn resource_of(metric: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.source == metric)
}

/// Labels that tell one filesystem of a host from another: of several, the
/// analyzer watches the one closest to full.
pub const FILESYSTEM_LABELS: [&str; 3] = ["mountpoint", "device", "fstype"];

/// What a stored metric name is to the analyzer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// One sample per call, the value its duration in seconds.
    CallEvents,
    /// A part of a call-duration histogram family (`family` is its base name).
    CallHistogram { family: String, part: HistogramPart },
    /// A request counter.
    RequestCounter,
    /// A process start time.
    StartTime,
    /// A resource the table names.
    Resource(&'static Resource),
    /// A part of a histogram the table does not name: its `_count` and
    /// `_sum` are analysed as counters, its buckets are not.
    OtherHistogram(HistogramPart),
    /// Any other series: a counter (analysed as its rate) or a gauge.
    Generic { counter: bool },
}

/// The series a Prometheus histogram family is stored as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistogramPart {
    Bucket,
    Sum,
    Count,
    Created,
}

/// Splits `name` into a histogram family and part by its suffix.
pub fn histogram_part(name: &str) -> Option<(&str, HistogramPart)> {
    [
        ("_bucket", HistogramPart::Bucket),
        ("_sum", HistogramPart::Sum),
        ("_count", HistogramPart::Count),
        ("_created", HistogramPart::Created),
    ]
    .into_iter()
    .find_map(|(suffix, part)| Some((name.strip_suffix(suffix)?, part)))
}

/// What `metric` is. `histograms` holds the base names of the families
/// that have `_bucket` series with an `le` label in the store; `counter`
/// whether the store's metadata says the metric only grows between resets
/// (`Some(true)`), is a level (`Some(false)`), or says nothing (`None`:
/// then Prometheus's naming convention decides, `_total` is a counter).
pub fn role(metric: &str, histograms: &[String], counter: Option<bool>) -> Role {
    if metric == CALL_METRIC && !histograms.iter().any(|h| h == CALL_METRIC) {
        return Role::CallEvents;
    }
    if let Some((family, part)) = histogram_part(metric)
        && histograms.iter().any(|h| h == family)
    {
        if CALL_HISTOGRAMS.contains(&family) {
            return Role::CallHistogram {
                family: family.to_string(),
                part,
            };
        }
        return Role::OtherHistogram(part);
    }
    if REQUEST_COUNTERS.contains(&metric) {
        return Role::RequestCounter;
    }
    if START_TIMES.contains(&metric) {
        return Role::StartTime;
    }
    if let Some(r) = resource_of(metric) {
        return Role::Resource(r);
    }
    Role::Generic {
        counter: counter.unwrap_or_else(|| metric.ends_with("_total")),
    }
}

/// What the analyzer looks for, for the message when it finds none of it.
pub fn looked_for() -> String {
    format!(
        "calls ({CALL_METRIC} samples, the histograms {} or the counters {}) or resources ({}), \
         labelled by one of {}",
        CALL_HISTOGRAMS
            .iter()
            .map(|h| format!("{h}_bucket"))
            .collect::<Vec<_>>()
            .join(", "),
        REQUEST_COUNTERS.join(", "),
        [MEMORY, CPU, DISK_FREE, SESSIONS, IN_FLIGHT]
            .iter()
            .copied()
            .chain(RESOURCES.iter().map(|r| r.source))
            .collect::<Vec<_>>()
            .join(", "),
        SERVER_LABELS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_table_and_the_conventions() {
        let hist = vec!["mcp_server_operation_duration_seconds".to_string()];
        assert_eq!(role(CALL_METRIC, &hist, None), Role::CallEvents);
        assert_eq!(
            role("mcp_server_operation_duration_seconds_bucket", &hist, None),
            Role::CallHistogram {
                family: "mcp_server_operation_duration_seconds".into(),
                part: HistogramPart::Bucket
            }
        );
        // Without buckets in the store, `_count` is just a counter's name.
        assert_eq!(
            role("mcp_server_operation_duration_seconds_count", &[], None),
            Role::Generic { counter: false }
        );
        assert!(matches!(
            role("process_cpu_seconds_total", &hist, None),
            Role::Resource(r) if r.conversion == Conversion::Rate
        ));
        assert_eq!(
            role("http_requests_total", &hist, None),
            Role::Generic { counter: true }
        );
        assert_eq!(
            role("queue_depth", &hist, Some(true)),
            Role::Generic { counter: true }
        );
        assert_eq!(
            role("process_start_time_seconds", &hist, None),
            Role::StartTime
        );
        assert!(is_client_error("-32602") && !is_client_error("tool_error"));
    }
}
