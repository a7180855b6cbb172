//! One probe round against one server: connect (spawn the command, or open
//! a TCP connection to the URL's host), the lifecycle opener
//! (`server/discover` for 2026-07-28 servers, `initialize` for older ones;
//! never `ping`, which modern servers do not have), `tools/list`, an
//! optional `tools/call`, every phase under the timeout.
//!
//! The MCP conversation is rmcp's: its client, its child-process framing
//! and its Streamable HTTP transport. What this module adds is what a
//! monitor needs around it: a stdio child in its own process group with a
//! bounded stderr tail, killed with its group and reaped at the end of the
//! round whatever happened (a SIGSTOPped child included); a check of every
//! stdout line (rmcp skips lines that are not JSON, so a server writing
//! garbage would otherwise look merely slow); and the classification of
//! every failure into one kind.
//!
//! Era: a target whose era is unknown is opened with rmcp's `Auto` lifecycle
//! (discover, falling back to `initialize` on the same connection when the
//! server answers discover with a JSON-RPC error); a known era is opened the
//! known way directly, and a failed round forgets it.

use super::{CallConfig, DEFAULT_MAX_FRAME_BYTES, DEFAULT_TIMEOUT, ProbeConfig};
use crate::watch::WatchError;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, Implementation,
    InitializeRequestParams, PaginatedRequestParams, ProtocolVersion, Tool,
};
use rmcp::service::{
    ClientInitializeError, ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService,
    ServiceError,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStdout};

/// How much of a stdio server's stderr is kept for the report.
const STDERR_TAIL_BYTES: usize = 2048;
/// How long a closed connection waits for the child's exit status, to tell
/// `exited` from `down`.
const EXIT_GRACE: Duration = Duration::from_millis(1000);
/// How long reaping a killed child may take before giving up on it.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// Pages of `tools/list` followed before the list counts as hostile.
const MAX_TOOL_PAGES: usize = 100;

/// A server's protocol era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28 and later: stateless, `server/discover`, no `initialize`.
    Modern,
    /// Before 2026-07-28: `initialize` opens a session.
    Legacy,
}

impl Era {
    pub fn name(self) -> &'static str {
        match self {
            Era::Modern => "modern",
            Era::Legacy => "legacy",
        }
    }
}

/// The phases of a round, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawning the command, or a TCP connection to the URL's host and port.
    Connect,
    /// `server/discover` (modern, or an era not yet known).
    Discover,
    /// `initialize` (legacy).
    Initialize,
    ToolsList,
    Call,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Discover => "discover",
            Phase::Initialize => "initialize",
            Phase::ToolsList => "tools_list",
            Phase::Call => "call",
        }
    }
}

/// Why a round failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// A phase did not finish within the timeout.
    Timeout,
    /// Nothing answers: connection refused or reset, the command cannot be
    /// started, an HTTP 5xx, a connection closed with the child alive.
    Down,
    /// HTTP 401 or 403.
    AuthRequired,
    /// Something not JSON-RPC came back (garbage, a frame over the limit,
    /// HTML, a response of the wrong type), or no protocol version in common.
    InvalidFrame,
    /// The stdio server exited; `code` is its exit code, or `signal N`.
    Exited { code: String },
    /// The server answered a request with a JSON-RPC error (`code`).
    Error { code: i32 },
    /// The configured call returned `isError: true`.
    ToolError,
    /// The configured call's result did not hold what `expect` says.
    Unexpected,
}

impl FailureKind {
    /// The `kind` label.
    pub fn name(&self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Down => "down",
            FailureKind::AuthRequired => "auth_required",
            FailureKind::InvalidFrame => "invalid_frame",
            FailureKind::Exited { .. } => "exited",
            FailureKind::Error { .. } => "error",
            FailureKind::ToolError => "tool_error",
            FailureKind::Unexpected => "unexpected",
        }
    }

    /// The `error.type` of the client call that failed this way: a JSON-RPC
    /// code as decimal text, as the server side writes it, else the kind.
    fn error_type(&self) -> String {
        match self {
            FailureKind::Error { code } => code.to_string(),
            other => other.name().to_string(),
        }
    }
}

/// A failed round: where, what kind, and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub phase: Phase,
    pub kind: FailureKind,
    /// The error text; for `exited`, the tail of the child's stderr.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FailureKind::Exited { code } => write!(f, "exited({code}) in {}", self.phase.name())?,
            kind => write!(f, "{} in {}", kind.name(), self.phase.name())?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// One phase as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    pub phase: Phase,
    pub ok: bool,
    /// `None` for a phase the round never reached.
    pub seconds: Option<f64>,
}

/// The tool set a server lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSet {
    pub count: usize,
    pub names: Vec<String>,
    /// Hex SHA-256 of the sorted names and canonical schemas.
    pub sha256: String,
    /// Its first 48 bits: exact in an f64, so a gauge can carry it.
    pub hash48: u64,
}

/// One MCP request the probe made, as a client-side call sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCall {
    pub at_ms: i64,
    pub method: &'static str,
    pub tool: Option<String>,
    pub seconds: f64,
    pub error_type: Option<String>,
}

/// What one round found.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    pub started_ms: i64,
    /// The era, once the lifecycle opener succeeded.
    pub era: Option<Era>,
    pub protocol_version: Option<String>,
    /// Every phase of the round, the unreached ones with `ok: false`.
    pub phases: Vec<PhaseReport>,
    pub tools: Option<ToolSet>,
    pub failure: Option<Failure>,
    pub calls: Vec<ClientCall>,
    pub total_seconds: f64,
}

impl RoundReport {
    /// The phase's measured seconds, if it ran.
    pub fn seconds(&self, phase: Phase) -> Option<f64> {
        self.phases
            .iter()
            .find(|p| p.phase == phase)
            .and_then(|p| p.seconds)
    }
}

/// A checked target.
pub(super) enum Target {
    Stdio {
        argv: Vec<String>,
    },
    Http {
        url: String,
        host: String,
        port: u16,
        headers: HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>,
    },
}

impl Target {
    pub(super) fn new(config: &ProbeConfig) -> Result<Target, WatchError> {
        let what = config.instance();
        match (&config.url, config.command.is_empty()) {
            (Some(_), false) => Err(WatchError::Config(format!(
                "probe {what}: give either `command` or `url`, not both"
            ))),
            (None, true) => Err(WatchError::Config(format!(
                "probe {what}: needs a `command` (stdio) or a `url` (Streamable HTTP)"
            ))),
            (None, false) => {
                if !config.headers.is_empty() {
                    return Err(WatchError::Config(format!(
                        "probe {what}: `headers` apply to a `url`, not to a command"
                    )));
                }
                Ok(Target::Stdio {
                    argv: config.command.clone(),
                })
            }
            (Some(url), true) => {
                if !config.env.is_empty() {
                    return Err(WatchError::Config(format!(
                        "probe {what}: `env` applies to a `command`, not to a URL"
                    )));
                }
                let parsed = reqwest::Url::parse(url).map_err(|e| {
                    WatchError::Config(format!("probe {what}: bad url {url:?}: {e}"))
                })?;
                if parsed.scheme() != "http" {
                    return Err(WatchError::Config(format!(
                        "probe {what}: only http:// URLs are supported (this build has no TLS), not {url:?}"
                    )));
                }
                let host = parsed
                    .host_str()
                    .ok_or_else(|| {
                        WatchError::Config(format!("probe {what}: url {url:?} has no host"))
                    })?
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_string();
                let port = parsed.port_or_known_default().unwrap_or(80);
                let mut headers = HashMap::new();
                for (name, value) in &config.headers {
                    let n =
                        reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                            WatchError::Config(format!(
                                "probe {what}: bad header name {name:?}: {e}"
                            ))
                        })?;
                    let v = reqwest::header::HeaderValue::from_str(value).map_err(|e| {
                        WatchError::Config(format!(
                            "probe {what}: bad value of header {name:?}: {e}"
                        ))
                    })?;
                    headers.insert(n, v);
                }
                Ok(Target::Http {
                    url: url.clone(),
                    host,
                    port,
                    headers,
                })
            }
        }
    }
}

type Client = RunningService<RoleClient, InitializeRequestParams>;

/// Measures phases and collects the report as the round goes.
struct Round {
    report: RoundReport,
    start: Instant,
    timeout: Duration,
}

impl Round {
    fn phase_done(&mut self, phase: Phase, ok: bool, seconds: f64) {
        self.report.phases.push(PhaseReport {
            phase,
            ok,
            seconds: Some(seconds),
        });
    }

    fn fail(&mut self, phase: Phase, kind: FailureKind, detail: String) {
        self.report.failure = Some(Failure {
            phase,
            kind,
            detail,
        });
    }

    fn call(
        &mut self,
        at_ms: i64,
        method: &'static str,
        tool: Option<String>,
        seconds: f64,
        error: Option<String>,
    ) {
        self.report.calls.push(ClientCall {
            at_ms,
            method,
            tool,
            seconds,
            error_type: error,
        });
    }

    /// One MCP request, under the round's timeout and timed. A failure (the
    /// peer's error, as `classify` names it, or no answer in time) is
    /// recorded as a failed phase and client call and returned for the
    /// caller to end the round with; an answer comes back with when it was
    /// asked and how long it took, for the caller to record.
    async fn request<T, E>(
        &mut self,
        phase: Phase,
        method: &'static str,
        tool: Option<String>,
        request: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&E) -> (FailureKind, String),
    ) -> Result<(T, i64, f64), (Phase, FailureKind, String)> {
        let at = crate::time::now_ms();
        let t = Instant::now();
        let answered = tokio::time::timeout(self.timeout, request).await;
        let seconds = t.elapsed().as_secs_f64();
        let (kind, detail) = match answered {
            Ok(Ok(value)) => return Ok((value, at, seconds)),
            Ok(Err(e)) => classify(&e),
            Err(_) => (
                FailureKind::Timeout,
                format!("no answer within {:?}", self.timeout),
            ),
        };
        self.phase_done(phase, false, seconds);
        self.call(at, method, tool, seconds, Some(kind.error_type()));
        Err((phase, kind, detail))
    }
}

/// Runs one round. `era` is what the last successful round found.
pub(super) async fn round(config: &ProbeConfig, target: &Target, era: Option<Era>) -> RoundReport {
    let mut round = Round {
        report: RoundReport {
            started_ms: crate::time::now_ms(),
            era: None,
            protocol_version: None,
            phases: Vec::new(),
            tools: None,
            failure: None,
            calls: Vec::new(),
            total_seconds: 0.0,
        },
        start: Instant::now(),
        timeout: config.timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    let max_frame = config.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
    let opener = match era {
        Some(Era::Legacy) => Phase::Initialize,
        _ => Phase::Discover,
    };
    match target {
        Target::Stdio { argv } => stdio_round(&mut round, config, argv, era, max_frame).await,
        Target::Http {
            url,
            host,
            port,
            headers,
        } => {
            http_round(
                &mut round, config, url, host, *port, headers, era, max_frame,
            )
            .await
        }
    }
    // Every phase of the round appears, the ones never reached as failed.
    let mut all = vec![Phase::Connect, opener, Phase::ToolsList];
    if config.call.is_some() {
        all.push(Phase::Call);
    }
    for phase in all {
        let reached = round.report.phases.iter().any(|p| {
            p.phase == phase
                || (phase == opener && matches!(p.phase, Phase::Discover | Phase::Initialize))
        });
        if !reached {
            round.report.phases.push(PhaseReport {
                phase,
                ok: false,
                seconds: None,
            });
        }
    }
    round.report.total_seconds = round.start.elapsed().as_secs_f64();
    round.report
}

/// The stdio server's process and what the round watches of it.
struct Spawned {
    child: Child,
    pid: Option<u32>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    stderr_task: tokio::task::JoinHandle<()>,
    frames: Arc<FrameCheck>,
}

impl Spawned {
    /// The exit status if the child exits within `grace`.
    async fn exit_code(&mut self, grace: Duration) -> Option<String> {
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(match (status.code(), signal_of(&status)) {
                (Some(code), _) => code.to_string(),
                (None, Some(sig)) => format!("signal {sig}"),
                (None, None) => "unknown".to_string(),
            }),
            _ => None,
        }
    }

    fn stderr_tail(&self) -> String {
        let bytes: Vec<u8> = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }

    /// Kills the child's whole process group and reaps the child, whatever
    /// state it is in (a stopped process dies of SIGKILL too).
    async fn finish(mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads (it was spawned with process_group(0)); the
            // pid is ours and not yet reaped, so it cannot have been reused.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
        if tokio::time::timeout(REAP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!("watch: probe child {:?} not reaped after SIGKILL", self.pid);
        }
        // stderr ends with the group; abort in case a stray holder keeps it open.
        self.stderr_task.abort();
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

fn spawn(
    config: &ProbeConfig,
    argv: &[String],
    max_frame: usize,
) -> std::io::Result<(Spawned, ChildStdout, tokio::process::ChildStdin)> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(&config.env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own group, so that the round's end kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
    let sink = tail.clone();
    // Drain stderr always (a full pipe would block the server) and keep the tail.
    let stderr_task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = sink.lock() {
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL_BYTES);
                t.drain(..excess);
            }
        }
    });
    let pid = child.id();
    Ok((
        Spawned {
            child,
            pid,
            stderr_tail: tail,
            stderr_task,
            frames: Arc::new(FrameCheck::new(max_frame)),
        },
        stdout,
        stdin,
    ))
}

async fn stdio_round(
    round: &mut Round,
    config: &ProbeConfig,
    argv: &[String],
    era: Option<Era>,
    max_frame: usize,
) {
    let t0 = Instant::now();
    let (mut spawned, stdout, stdin) = match spawn(config, argv, max_frame) {
        Ok(s) => s,
        Err(e) => {
            round.phase_done(Phase::Connect, false, t0.elapsed().as_secs_f64());
            round.fail(
                Phase::Connect,
                FailureKind::Down,
                format!("cannot start {:?}: {e}", argv[0]),
            );
            return;
        }
    };
    round.phase_done(Phase::Connect, true, t0.elapsed().as_secs_f64());
    let reader = CheckedReader {
        inner: stdout,
        check: spawned.frames.clone(),
    };
    let outcome = converse(round, config, (reader, stdin), era).await;
    if let Some((phase, kind, detail)) = outcome {
        // What the transport saw beats the generic error it caused; a child
        // that exited explains a closed connection.
        let kind_detail = if let Some(frame) = spawned.frames.violation() {
            (FailureKind::InvalidFrame, frame)
        } else if kind != FailureKind::Down {
            // The server answered (an error, a timeout): how the child ends
            // after the client hung up says nothing about this round.
            (kind, detail)
        } else if let Some(code) = spawned.exit_code(EXIT_GRACE).await {
            let tail = spawned.stderr_tail();
            (
                FailureKind::Exited { code },
                if tail.is_empty() { detail } else { tail },
            )
        } else {
            (kind, detail)
        };
        fix_failure(round, phase, kind_detail.0, kind_detail.1);
    }
    spawned.finish().await;
}

#[allow(clippy::too_many_arguments)]
async fn http_round(
    round: &mut Round,
    config: &ProbeConfig,
    url: &str,
    host: &str,
    port: u16,
    headers: &HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>,
    era: Option<Era>,
    max_frame: usize,
) {
    let t0 = Instant::now();
    let connected =
        tokio::time::timeout(round.timeout, tokio::net::TcpStream::connect((host, port))).await;
    let seconds = t0.elapsed().as_secs_f64();
    match connected {
        Ok(Ok(_stream)) => round.phase_done(Phase::Connect, true, seconds),
        Ok(Err(e)) => {
            round.phase_done(Phase::Connect, false, seconds);
            round.fail(
                Phase::Connect,
                FailureKind::Down,
                format!("{host}:{port}: {e}"),
            );
            return;
        }
        Err(_) => {
            round.phase_done(Phase::Connect, false, seconds);
            round.fail(
                Phase::Connect,
                FailureKind::Timeout,
                format!("{host}:{port}: no connection within {:?}", round.timeout),
            );
            return;
        }
    }
    let client = match reqwest::Client::builder()
        .connect_timeout(round.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            round.fail(
                Phase::Connect,
                FailureKind::Down,
                format!("HTTP client: {e}"),
            );
            return;
        }
    };
    let mut transport_config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .custom_headers(headers.clone());
    transport_config.max_json_response_size = max_frame;
    transport_config.max_sse_event_size = max_frame;
    let transport = StreamableHttpClientTransport::with_client(client, transport_config);
    if let Some((phase, kind, detail)) = converse(round, config, transport, era).await {
        fix_failure(round, phase, kind, detail);
    }
}

/// Replaces the round's failure (and its failed client call's `error.type`)
/// once the transport-specific checks have refined it.
fn fix_failure(round: &mut Round, phase: Phase, kind: FailureKind, detail: String) {
    if let Some(call) = round.report.calls.last_mut()
        && call.error_type.is_some()
    {
        call.error_type = Some(kind.error_type());
    }
    round.fail(phase, kind, detail);
}

/// The MCP part of a round, on any transport. Returns the failure, if any,
/// for the caller to refine.
async fn converse<T, E, A>(
    round: &mut Round,
    config: &ProbeConfig,
    transport: T,
    era: Option<Era>,
) -> Option<(Phase, FailureKind, String)>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: StdError + Send + Sync + 'static,
{
    let info = InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("mcpops-probe", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    let modern = vec![ProtocolVersion::V_2026_07_28];
    let (opener, lifecycle) = match era {
        Some(Era::Legacy) => (Phase::Initialize, ClientLifecycleMode::Initialize),
        Some(Era::Modern) => (
            Phase::Discover,
            ClientLifecycleMode::Discover {
                preferred_versions: modern,
            },
        ),
        None => (
            Phase::Discover,
            ClientLifecycleMode::Auto {
                preferred_versions: modern,
                legacy_version: None,
            },
        ),
    };
    let opened = round
        .request(
            opener,
            opener_method(opener),
            None,
            info.serve_with_lifecycle(transport, lifecycle),
            |e| (classify_init(e), chain(e)),
        )
        .await;
    let (client, at, seconds): (Client, _, _) = match opened {
        Ok(answered) => answered,
        Err(failure) => return Some(failure),
    };
    let (found_era, version) = match client.peer_info() {
        Some(info) => {
            let v = info.protocol_version.clone();
            (
                if v.has_initialize() {
                    Era::Legacy
                } else {
                    Era::Modern
                },
                v.to_string(),
            )
        }
        None => (
            if opener == Phase::Initialize {
                Era::Legacy
            } else {
                Era::Modern
            },
            String::new(),
        ),
    };
    // Auto mode may have fallen back: name the phase by what answered.
    let opener = match found_era {
        Era::Modern => Phase::Discover,
        Era::Legacy => Phase::Initialize,
    };
    round.phase_done(opener, true, seconds);
    round.call(at, opener_method(opener), None, seconds, None);
    round.report.era = Some(found_era);
    round.report.protocol_version = (!version.is_empty()).then_some(version);

    let failure = async {
        let listed = round
            .request(
                Phase::ToolsList,
                "tools/list",
                None,
                list_tools(&client),
                service_failure,
            )
            .await;
        let (tools, at, seconds) = match listed {
            Ok(answered) => answered,
            Err(failure) => return Some(failure),
        };
        round.phase_done(Phase::ToolsList, true, seconds);
        round.call(at, "tools/list", None, seconds, None);
        round.report.tools = Some(tool_set(&tools));
        let call = config.call.as_ref()?;
        call_tool(round, &client, call).await
    }
    .await;
    // Dropping the client cancels its service task; a stdio child is killed
    // by the caller, an HTTP session is left to expire (a DELETE to a
    // wedged server could hang).
    let _ = tokio::time::timeout(Duration::from_secs(1), client.cancel()).await;
    failure
}

/// A failed `tools/list` or `tools/call`: its kind and the error's text.
fn service_failure(e: &ServiceError) -> (FailureKind, String) {
    (classify_service(e), e.to_string())
}

fn opener_method(phase: Phase) -> &'static str {
    match phase {
        Phase::Initialize => "initialize",
        _ => "server/discover",
    }
}

async fn list_tools(client: &Client) -> Result<Vec<Tool>, ServiceError> {
    let mut tools = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = PaginatedRequestParams::default().with_cursor(cursor);
        let page = client.list_tools(Some(params)).await?;
        tools.extend(page.tools);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(tools),
        }
    }
    // A server that pages forever: not a list a client could use.
    Err(ServiceError::UnexpectedResponse)
}

async fn call_tool(
    round: &mut Round,
    client: &Client,
    call: &CallConfig,
) -> Option<(Phase, FailureKind, String)> {
    let mut params = CallToolRequestParams::new(call.tool.clone());
    if let Some(args) = &call.arguments {
        params = params.with_arguments(args.clone());
    }
    let tool = Some(call.tool.clone());
    let called = round
        .request(
            Phase::Call,
            "tools/call",
            tool.clone(),
            client.call_tool(params),
            service_failure,
        )
        .await;
    let (result, at, seconds) = match called {
        Ok(answered) => answered,
        Err(failure) => return Some(failure),
    };
    if result.is_error == Some(true) {
        round.phase_done(Phase::Call, false, seconds);
        round.call(at, "tools/call", tool, seconds, Some("tool_error".into()));
        return Some((
            Phase::Call,
            FailureKind::ToolError,
            snippet(&result_text(&result)),
        ));
    }
    // The call itself succeeded: its client sample has no error.type even
    // when the expectation fails.
    round.call(at, "tools/call", tool, seconds, None);
    if let Some(expect) = &call.expect
        && let Err(why) = check_expect(&result, expect)
    {
        round.phase_done(Phase::Call, false, seconds);
        return Some((Phase::Call, FailureKind::Unexpected, why));
    }
    round.phase_done(Phase::Call, true, seconds);
    None
}

fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the result holds `expect`: JSON containment when `expect` is a
/// JSON object or array, else a substring of the text.
pub(crate) fn check_expect(result: &CallToolResult, expect: &str) -> Result<(), String> {
    let text = result_text(result);
    let trimmed = expect.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let want: serde_json::Value =
            serde_json::from_str(expect).map_err(|e| format!("`expect` is not valid JSON: {e}"))?;
        let got = result
            .structured_content
            .clone()
            .or_else(|| serde_json::from_str(&text).ok());
        return match got {
            Some(got) if contains(&got, &want) => Ok(()),
            Some(got) => Err(format!(
                "result {} does not contain {}",
                snippet(&got.to_string()),
                want
            )),
            None => Err(format!(
                "result has no JSON to hold {want}: {}",
                snippet(&text)
            )),
        };
    }
    if text.contains(expect) {
        Ok(())
    } else {
        Err(format!(
            "result text {:?} does not contain {expect:?}",
            snippet(&text)
        ))
    }
}

fn contains(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (got, want) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        _ => got == want,
    }
}

fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The tool set's identity: names sorted, each with its input and output
/// schemas as canonical JSON (keys sorted at every depth, no whitespace),
/// so the hash depends on what the tools are, not on how the server
/// happened to order them.
pub fn tool_set(tools: &[Tool]) -> ToolSet {
    let mut entries: Vec<(String, String)> = tools
        .iter()
        .map(|t| {
            let input = canonical(&serde_json::Value::Object((*t.input_schema).clone()));
            let output = t
                .output_schema
                .as_ref()
                .map(|o| canonical(&serde_json::Value::Object((**o).clone())))
                .unwrap_or_else(|| "null".to_string());
            (t.name.to_string(), format!("{input}\u{0}{output}"))
        })
        .collect();
    entries.sort();
    let mut hasher = Sha256::new();
    for (name, schemas) in &entries {
        hasher.update(name.as_bytes());
        hasher.update([0u8]);
        hasher.update(schemas.as_bytes());
        hasher.update([b'\n']);
    }
    let digest = hasher.finalize();
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let hash48 = digest[..6]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64);
    ToolSet {
        count: entries.len(),
        names: entries.into_iter().map(|(n, _)| n).collect(),
        sha256,
        hash48,
    }
}

/// JSON with object keys sorted at every depth, whatever order the map
/// type keeps them in.
pub fn canonical(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// An error and its sources on one line, cut to a snippet.
fn chain(e: &(dyn StdError + 'static)) -> String {
    snippet(&crate::error_chain(e))
}

fn classify_init(e: &ClientInitializeError) -> FailureKind {
    match e {
        // Discover was answered as a legacy server would, then initialize
        // failed: the fallback's error is the one that says why.
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => classify_init(fallback),
        ClientInitializeError::JsonRpcError(data) => FailureKind::Error { code: data.code.0 },
        ClientInitializeError::ExpectedInitResponse(_)
        | ClientInitializeError::ExpectedInitResult(_)
        | ClientInitializeError::ConflictInitResponseId(..)
        | ClientInitializeError::UncorrelatedErrorResponse { .. }
        | ClientInitializeError::NoCompatibleProtocolVersion { .. } => FailureKind::InvalidFrame,
        // rmcp keeps the transport's error in a field thiserror does not
        // treat as the source: walk it explicitly.
        ClientInitializeError::TransportError { error, .. } => classify_chain(error),
        other => classify_chain(other),
    }
}

fn classify_service(e: &ServiceError) -> FailureKind {
    match e {
        ServiceError::McpError(data) => FailureKind::Error { code: data.code.0 },
        ServiceError::UnexpectedResponse => FailureKind::InvalidFrame,
        ServiceError::Timeout { .. } => FailureKind::Timeout,
        other => classify_chain(other),
    }
}

type HttpError = StreamableHttpError<reqwest::Error>;

/// The kind of a transport failure, from the first error in the chain that
/// says more than "closed".
fn classify_chain(e: &(dyn StdError + 'static)) -> FailureKind {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>()
            && let Some(kind) = classify_http(h)
        {
            return kind;
        }
        if let Some(rmcp::transport::worker::WorkerQuitReason::Fatal { error, .. }) =
            err.downcast_ref::<rmcp::transport::worker::WorkerQuitReason<HttpError>>()
            && let Some(kind) = classify_http(error)
        {
            return kind;
        }
        if let Some(r) = err.downcast_ref::<reqwest::Error>()
            && let Some(kind) = classify_reqwest(r)
        {
            return kind;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::InvalidData => return FailureKind::InvalidFrame,
                std::io::ErrorKind::TimedOut => return FailureKind::Timeout,
                _ => {}
            }
        }
        cur = err.source();
    }
    FailureKind::Down
}

fn classify_http(h: &HttpError) -> Option<FailureKind> {
    Some(match h {
        StreamableHttpError::AuthRequired(_) | StreamableHttpError::InsufficientScope(_) => {
            FailureKind::AuthRequired
        }
        StreamableHttpError::UnexpectedServerResponse(text)
            if text.starts_with("HTTP 401") || text.starts_with("HTTP 403") =>
        {
            FailureKind::AuthRequired
        }
        StreamableHttpError::UnexpectedServerResponse(_)
        | StreamableHttpError::UnexpectedContentType(_)
        | StreamableHttpError::Deserialize(_)
        | StreamableHttpError::ResponseBodyTooLarge { .. }
        | StreamableHttpError::Sse(_) => FailureKind::InvalidFrame,
        StreamableHttpError::HttpStatus(_) => FailureKind::Down,
        StreamableHttpError::Client(r) => return classify_reqwest(r),
        _ => return None,
    })
}

fn classify_reqwest(r: &reqwest::Error) -> Option<FailureKind> {
    if r.is_timeout() {
        Some(FailureKind::Timeout)
    } else if r.is_connect() {
        Some(FailureKind::Down)
    } else if r.is_decode() {
        Some(FailureKind::InvalidFrame)
    } else {
        None
    }
}

/// What the stdout check saw: the first line that is not a JSON-RPC message.
struct FrameCheck {
    max: usize,
    line: Mutex<Vec<u8>>,
    violation: Mutex<Option<String>>,
}

impl FrameCheck {
    fn new(max: usize) -> FrameCheck {
        FrameCheck {
            max,
            line: Mutex::new(Vec::new()),
            violation: Mutex::new(None),
        }
    }

    fn violation(&self) -> Option<String> {
        self.violation.lock().ok().and_then(|v| v.clone())
    }

    /// Checks the bytes just read; the first violation is kept.
    fn feed(&self, bytes: &[u8]) -> Result<(), String> {
        let Ok(mut line) = self.line.lock() else {
            return Ok(());
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let (chunk, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            if line.len() + chunk.len() > self.max {
                return Err(self.record(format!("a stdout frame longer than {} bytes", self.max)));
            }
            line.extend_from_slice(chunk);
            if ended {
                let checked = check_frame(&line);
                line.clear();
                if let Err(why) = checked {
                    return Err(self.record(why));
                }
                rest = &rest[chunk.len() + 1..];
            } else {
                rest = &[];
            }
        }
        Ok(())
    }

    fn record(&self, why: String) -> String {
        if let Ok(mut v) = self.violation.lock()
            && v.is_none()
        {
            *v = Some(why.clone());
        }
        why
    }
}

/// One stdout line: blank, or a JSON-RPC 2.0 object (or batch array).
fn check_frame(line: &[u8]) -> Result<(), String> {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Head {
        jsonrpc: Option<String>,
    }
    let shown = || snippet(&String::from_utf8_lossy(text));
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(_)) => Ok(()),
        Ok(v @ serde_json::Value::Object(_)) => match serde_json::from_value::<Head>(v) {
            Ok(Head {
                jsonrpc: Some(ref version),
            }) if version == "2.0" => Ok(()),
            _ => Err(format!(
                "stdout line is JSON but not JSON-RPC 2.0: {}",
                shown()
            )),
        },
        _ => Err(format!("stdout line is not JSON-RPC: {}", shown())),
    }
}

/// The child's stdout as rmcp reads it, every line checked on the way.
struct CheckedReader {
    inner: ChildStdout,
    check: Arc<FrameCheck>,
}

impl AsyncRead for CheckedReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                match this.check.feed(fresh) {
                    Ok(()) => Poll::Ready(Ok(())),
                    // Ends rmcp's read loop: the round fails now as
                    // invalid_frame instead of timing out on a server whose
                    // answers rmcp would skip.
                    Err(why) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        why,
                    ))),
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, schema: serde_json::Value) -> Tool {
        let serde_json::Value::Object(map) = schema else {
            panic!("schema must be an object")
        };
        Tool::new(name.to_string(), "", Arc::new(map))
    }

    #[test]
    fn tool_hash_ignores_order_and_sees_schema_changes() {
        let a = tool(
            "a",
            serde_json::json!({"type":"object","properties":{"x":{"type":"string"},"y":{"type":"number"}}}),
        );
        let b = tool("b", serde_json::json!({"type":"object"}));
        let a_reordered = tool(
            "a",
            serde_json::json!({"properties":{"y":{"type":"number"},"x":{"type":"string"}},"type":"object"}),
        );
        let one = tool_set(&[a.clone(), b.clone()]);
        let two = tool_set(&[b.clone(), a_reordered]);
        assert_eq!(one, two);
        assert_eq!(one.count, 2);
        assert_eq!(one.sha256.len(), 64);
        assert!(one.hash48 < (1u64 << 48));
        assert_eq!(one.hash48 as f64 as u64, one.hash48, "exact in an f64");
        assert_eq!(format!("{:012x}", one.hash48), one.sha256[..12]);
        let changed = tool(
            "a",
            serde_json::json!({"type":"object","properties":{"x":{"type":"integer"}}}),
        );
        assert_ne!(tool_set(&[changed, b.clone()]).sha256, one.sha256);
        assert_ne!(tool_set(&[b]).sha256, one.sha256);
    }

    #[test]
    fn frames_that_are_not_json_rpc_are_caught() {
        let check = FrameCheck::new(64);
        assert!(check.feed(b"{\"jsonrpc\":\"2.0\",\"id\":1,").is_ok());
        assert!(check.feed(b"\"result\":{}}\n\n").is_ok());
        assert!(check.feed(b"[{\"jsonrpc\":\"2.0\"}]\r\n").is_ok());
        let err = check.feed(b"Server listening on stdio\n").unwrap_err();
        assert!(err.contains("not JSON-RPC: Server listening"), "{err}");
        assert_eq!(check.violation().as_deref(), Some(err.as_str()));
        let other = FrameCheck::new(64);
        assert!(
            other
                .feed(b"{\"id\":1}\n")
                .unwrap_err()
                .contains("not JSON-RPC 2.0")
        );
        let big = FrameCheck::new(16);
        assert!(big.feed(&[b'{'; 10]).is_ok());
        assert!(
            big.feed(&[b'x'; 10])
                .unwrap_err()
                .contains("longer than 16 bytes")
        );
    }

    #[test]
    fn expectations_match_text_or_contained_json() {
        let mut r =
            CallToolResult::success(vec![rmcp::model::ContentBlock::text("Echo: hi there")]);
        assert!(check_expect(&r, "hi").is_ok());
        assert!(
            check_expect(&r, "bye")
                .unwrap_err()
                .contains("does not contain")
        );
        r.structured_content = Some(serde_json::json!({"result":"hi","n":{"a":1,"b":2}}));
        assert!(check_expect(&r, r#"{"n":{"a":1}}"#).is_ok());
        assert!(check_expect(&r, r#"{"n":{"a":2}}"#).is_err());
        assert!(
            check_expect(&r, "{not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn configs_are_checked() {
        let both = ProbeConfig {
            url: Some("http://127.0.0.1:1/mcp".into()),
            ..ProbeConfig::from_command(vec!["x".into()])
        };
        assert!(Target::new(&both).is_err());
        assert!(Target::new(&ProbeConfig::from_url("https://example.org/mcp")).is_err());
        assert!(Target::new(&ProbeConfig::from_url("not a url")).is_err());
        let mut bad_header = ProbeConfig::from_url("http://127.0.0.1:1/mcp");
        bad_header.headers.insert("bad name".into(), "v".into());
        assert!(Target::new(&bad_header).is_err());
        let parsed: crate::watch::config::WatchConfig = toml::from_str(
            r#"
            [[probe]]
            command = ["python3", "fixture.py"]
            env = { A = "1" }
            timeout = "2s"
            call = { tool = "echo", arguments = { text = "hi" }, expect = "hi" }
            "#,
        )
        .expect("parses");
        let p = &parsed.probe[0];
        assert_eq!(p.timeout, Some(Duration::from_secs(2)));
        assert_eq!(p.call.as_ref().map(|c| c.tool.as_str()), Some("echo"));
        assert_eq!(p.job(), "mcp-probe");
        assert_eq!(p.instance(), "python3 fixture.py");
    }
}
