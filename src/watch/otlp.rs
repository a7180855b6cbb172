//! The OTLP/HTTP receiver: `/v1/traces` and `/v1/metrics`, protobuf or JSON,
//! gzip, answered as the OTLP specification says; decoding is
//! [`crate::ingest::otlp`]'s.
//!
//! - `Content-Type` `application/x-protobuf` or `application/json`, else
//!   415; `Content-Encoding` `gzip` or none, else 415.
//! - The body may hold at most [`OtlpOptions::body_limit`] bytes once
//!   decompressed, else 413: decompression stops one byte past the limit,
//!   so a gzip bomb costs no more than that.
//! - A body that does not decode: 400 with a `google.rpc.Status`, in the
//!   request's encoding.
//! - Otherwise the samples are appended to the live store, and 200 with an
//!   `Export*ServiceResponse` is sent only once the append returned: an
//!   acknowledged request survives a crash. Rejected spans and points are
//!   counted in its `partial_success`.
//! - More than [`OtlpOptions::max_in_flight`] appends under way: 429 with
//!   `Retry-After`; an append that fails (a full disk): 503 with
//!   `Retry-After`. Exporters retry both.

use super::Shared;
use crate::ingest::otlp::{self as decode, Encoding, Outcome};
use crate::model::MemorySink;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use std::io::Read;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The default largest body, decompressed.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// The default number of appends under way before requests get 429.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Seconds an exporter is told to wait after a 429.
pub const RETRY_AFTER_BUSY: u32 = 1;
/// Seconds an exporter is told to wait after a 503 (the store failed).
pub const RETRY_AFTER_FAILED: u32 = 5;

/// The receiver's limits.
#[derive(Clone, Debug)]
pub struct OtlpOptions {
    /// The largest body accepted, after decompression, in bytes.
    pub body_limit: usize,
    /// Appends allowed under way at once.
    pub max_in_flight: usize,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        OtlpOptions {
            body_limit: DEFAULT_BODY_LIMIT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

#[derive(Clone)]
struct Receiver {
    shared: Shared,
    options: OtlpOptions,
    permits: Arc<Semaphore>,
}

/// The receiver's routes, with the default limits.
pub fn router(shared: Shared) -> axum::Router {
    router_with(shared, OtlpOptions::default())
}

/// The receiver's routes.
pub fn router_with(shared: Shared, options: OtlpOptions) -> axum::Router {
    describe_health(&shared);
    let receiver = Receiver {
        shared,
        permits: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
        options,
    };
    axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route("/v1/metrics", axum::routing::post(metrics))
        .with_state(receiver)
}

fn describe_health(shared: &Shared) {
    let h = &shared.health;
    h.describe(
        "mcpops_watch_otlp_requests_total",
        "OTLP export requests answered, by signal and HTTP status.",
    );
    h.describe(
        "mcpops_watch_otlp_spans_received_total",
        "Spans received over OTLP.",
    );
    h.describe(
        "mcpops_watch_otlp_spans_stored_total",
        "Spans stored as MCP call samples.",
    );
    h.describe(
        "mcpops_watch_otlp_spans_skipped_total",
        "Spans accepted but not stored: not MCP calls, or repeated in a request.",
    );
    h.describe(
        "mcpops_watch_otlp_spans_rejected_total",
        "MCP spans that could not be stored (partial_success.rejected_spans).",
    );
    h.describe(
        "mcpops_watch_otlp_points_received_total",
        "Metric data points received over OTLP.",
    );
    h.describe(
        "mcpops_watch_otlp_points_rejected_total",
        "Data points that could not be stored (partial_success.rejected_data_points).",
    );
    h.describe(
        "mcpops_watch_otlp_samples_appended_total",
        "Samples appended to the store from OTLP.",
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }
}

async fn traces(State(r): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    export(r, Signal::Traces, headers, body).await
}

async fn metrics(State(r): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    export(r, Signal::Metrics, headers, body).await
}

/// Why a request was not stored: the HTTP status, the gRPC code of the
/// `Status` body, the message, and the seconds to wait before retrying.
struct Refusal {
    status: StatusCode,
    code: i32,
    message: String,
    retry_after: Option<u32>,
}

// google.rpc.Code values.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

impl Refusal {
    fn new(status: StatusCode, code: i32, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP error response. The
/// `opentelemetry-proto` crate does not carry it; its `details` are left
/// out (they are optional).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

async fn export(r: Receiver, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let result = handle(&r, signal, &headers, body).await;
    let encoding = request_encoding(&headers).unwrap_or(Encoding::Json);
    let response = match result {
        Ok(outcome) => success(signal, encoding, &outcome),
        Err(refusal) => refuse(encoding, refusal),
    };
    let code = response.status().as_u16().to_string();
    r.shared.health.add(
        "mcpops_watch_otlp_requests_total",
        &[("signal", signal.name()), ("code", &code)],
        1.0,
    );
    response
}

fn request_encoding(headers: &HeaderMap) -> Option<Encoding> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/x-protobuf") {
        Some(Encoding::Protobuf)
    } else if media.eq_ignore_ascii_case("application/json") {
        Some(Encoding::Json)
    } else {
        None
    }
}

async fn handle(
    r: &Receiver,
    signal: Signal,
    headers: &HeaderMap,
    body: Body,
) -> Result<Outcome, Refusal> {
    let encoding = request_encoding(headers).ok_or_else(|| {
        let given = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".into());
        Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_ARGUMENT,
            format!(
                "Content-Type {given:?}: OTLP/HTTP takes application/x-protobuf or application/json"
            ),
        )
    })?;
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e.is_empty() || e == "identity" => false,
        Some(e) if e == "gzip" => true,
        Some(e) => {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                format!("Content-Encoding {e:?}: the receiver takes gzip or none"),
            ));
        }
    };
    let limit = r.options.body_limit;
    let too_large = move || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            format!("the body is over the {limit} bytes the receiver takes (decompressed)"),
        )
    };
    // A compressed body is no larger than what it holds (gzip adds a few
    // bytes to data it cannot shrink): the same limit, with room for that.
    let raw = axum::body::to_bytes(body, limit.saturating_add(limit / 64 + 1024))
        .await
        .map_err(|e| {
            // http-body-util's LengthLimitError says "length limit exceeded".
            if e.to_string().contains("length limit") {
                too_large()
            } else {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    INVALID_ARGUMENT,
                    format!("reading the body: {e}"),
                )
            }
        })?;
    // Appends under way beyond the bound mean the store is behind: the
    // exporter keeps the batch and retries rather than queueing here.
    let permit = r.permits.clone().try_acquire_owned().map_err(|_| Refusal {
        retry_after: Some(RETRY_AFTER_BUSY),
        ..Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            UNAVAILABLE,
            "the store is behind: retry later",
        )
    })?;
    let store = r.shared.store.clone();
    let at = format!("OTLP /v1/{}", signal.name());
    let work = move || -> Result<(Outcome, u64), Refusal> {
        let _permit = permit;
        let bytes: std::borrow::Cow<[u8]> = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        INVALID_ARGUMENT,
                        format!("the gzip body does not decompress: {e}"),
                    )
                })?;
            out.into()
        } else {
            (&raw[..]).into()
        };
        if bytes.len() > limit {
            return Err(too_large());
        }
        let bad = |e: decode::OtlpError| {
            Refusal::new(StatusCode::BAD_REQUEST, INVALID_ARGUMENT, e.to_string())
        };
        let mut batch = MemorySink::default();
        let mut outcome = Outcome::default();
        let sunk = match signal {
            Signal::Traces => {
                let req = decode::decode_traces(&bytes, encoding).map_err(bad)?;
                decode::traces_into(&req, &mut batch, &at, &mut outcome)
            }
            Signal::Metrics => {
                let req = decode::decode_metrics(&bytes, encoding).map_err(bad)?;
                decode::metrics_into(&req, &mut batch, &at, &mut outcome)
            }
        };
        // A MemorySink takes every sample.
        sunk.map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, UNAVAILABLE, e.0))?;
        let samples = batch.samples.len() as u64;
        if samples > 0 || !batch.metadata.is_empty() {
            store.append(&batch).map_err(|e| Refusal {
                retry_after: Some(RETRY_AFTER_FAILED),
                ..Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    format!("the store could not keep the batch: {e}"),
                )
            })?;
        }
        Ok((outcome, samples))
    };
    let (outcome, samples) = tokio::task::spawn_blocking(work).await.map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            UNAVAILABLE,
            format!("the decoder stopped: {e}"),
        )
    })??;
    let h = &r.shared.health;
    match signal {
        Signal::Traces => {
            h.add(
                "mcpops_watch_otlp_spans_received_total",
                &[],
                outcome.spans as f64,
            );
            h.add(
                "mcpops_watch_otlp_spans_stored_total",
                &[],
                outcome.calls as f64,
            );
            h.add(
                "mcpops_watch_otlp_spans_skipped_total",
                &[],
                outcome.skipped_spans as f64,
            );
            h.add(
                "mcpops_watch_otlp_spans_rejected_total",
                &[],
                outcome.rejected_spans as f64,
            );
        }
        Signal::Metrics => {
            h.add(
                "mcpops_watch_otlp_points_received_total",
                &[],
                outcome.points as f64,
            );
            h.add(
                "mcpops_watch_otlp_points_rejected_total",
                &[],
                outcome.rejected_points as f64,
            );
        }
    }
    h.add(
        "mcpops_watch_otlp_samples_appended_total",
        &[],
        samples as f64,
    );
    Ok(outcome)
}

fn content_type(encoding: Encoding) -> HeaderValue {
    HeaderValue::from_static(match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    })
}

fn success(signal: Signal, encoding: Encoding, outcome: &Outcome) -> Response {
    let message = outcome.message();
    let body: Vec<u8> = match signal {
        Signal::Traces => {
            let partial = (outcome.rejected_spans > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: outcome.rejected_spans as i64,
                error_message: message,
            });
            let resp = ExportTraceServiceResponse {
                partial_success: partial,
            };
            encode(&resp, encoding)
        }
        Signal::Metrics => {
            let partial = (outcome.rejected_points > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: outcome.rejected_points as i64,
                error_message: message,
            });
            let resp = ExportMetricsServiceResponse {
                partial_success: partial,
            };
            encode(&resp, encoding)
        }
    };
    ([(header::CONTENT_TYPE, content_type(encoding))], body).into_response()
}

fn encode<M: prost::Message + serde::Serialize>(m: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => m.encode_to_vec(),
        // Serializing plain structs of strings and integers does not fail.
        Encoding::Json => serde_json::to_vec(m).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

fn refuse(encoding: Encoding, refusal: Refusal) -> Response {
    let status = RpcStatus {
        code: refusal.code,
        message: refusal.message,
    };
    let mut response = (
        refusal.status,
        [(header::CONTENT_TYPE, content_type(encoding))],
        encode(&status, encoding),
    )
        .into_response();
    if let Some(secs) = refusal.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
