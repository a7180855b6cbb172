//! The metric and label names mcpops writes and reads: OpenTelemetry's
//! semantic conventions for MCP (`mcp.*`, `gen_ai.tool.name`, `error.type`,
//! `network.*`) and for processes (`process.*`), the disk gauges of the
//! sample fleet, and the `server` label. Ingest writes
//! calls under these names, the generator writes its gauges under them, the
//! store orders segments by them and the analyzer reads them back.
//!
//! Rule files, tests and help texts spell the names out: they are what users
//! write.

/// The metric an MCP call becomes: one sample per call, its duration in seconds.
pub const CALL_METRIC: &str = "mcp.server.operation.duration";

/// The metric an MCP client's call becomes (OTLP client spans, watch's
/// probes): one sample per call, its duration in seconds, labelled as
/// [`CALL_METRIC`] is. OpenTelemetry's MCP conventions name the client
/// side's histogram so.
pub const CLIENT_CALL_METRIC: &str = "mcp.client.operation.duration";

/// The server a series comes from.
pub const SERVER_LABEL: &str = "server";
/// The JSON-RPC method of a call (`tools/call`, `resources/read`, ...).
pub const METHOD_LABEL: &str = "mcp.method.name";
/// The tool a `tools/call` calls.
pub const TOOL_LABEL: &str = "gen_ai.tool.name";
/// Why a call failed: a JSON-RPC error code as its decimal text, or a type string.
pub const ERROR_LABEL: &str = "error.type";
/// The MCP session a call belongs to: a series of its own, short-lived.
pub const SESSION_LABEL: &str = "mcp.session.id";
/// How the session is connected (`stdio`, `streamable-http`).
pub const TRANSPORT_LABEL: &str = "network.transport";
/// The session connection's protocol.
pub const PROTOCOL_NAME_LABEL: &str = "network.protocol.name";
/// The version of that protocol.
pub const PROTOCOL_VERSION_LABEL: &str = "network.protocol.version";
/// The MCP protocol version the session negotiated.
pub const MCP_PROTOCOL_VERSION_LABEL: &str = "mcp.protocol.version";

/// CPU used by the server process, 0 to 1 of a core.
pub const CPU: &str = "process.cpu.utilization";
/// Resident memory of the server process, bytes.
pub const MEMORY: &str = "process.memory.usage";
/// Memory limit of the server process, bytes.
pub const MEMORY_LIMIT: &str = "process.memory.limit";
/// MCP sessions open.
pub const SESSIONS: &str = "mcp.server.sessions.open";
/// Most MCP sessions the server accepts.
pub const SESSIONS_LIMIT: &str = "mcp.server.sessions.limit";
/// Requests being served.
pub const IN_FLIGHT: &str = "mcp.server.requests.in_flight";
/// Free bytes on the server's data volume.
pub const DISK_FREE: &str = "disk.free_bytes";
/// Size of the server's data volume, bytes.
pub const DISK_TOTAL: &str = "disk.total_bytes";
