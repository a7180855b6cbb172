//! Prometheus's HTTP API over the live store (`/api/v1/query`,
//! `/api/v1/query_range`, series, labels, label values, metadata, targets,
//! build info), watch's own `/metrics`, `/-/healthy` and `/-/ready`,
//! answering in the rule language so Grafana's Prometheus data source charts
//! mcpops directly.
//!
//! Shapes, parameters, limits and error wording follow Prometheus's
//! `web/api/v1/api.go`: errors are `{"status":"error","errorType":...,
//! "error":...}` with 400 (`bad_data`), 422 (`execution`), 503 (`timeout`),
//! 500 (`internal`). Queries parse with [`crate::dsl::parse_query`] and run
//! with [`crate::engine::query::query`] over the live store's snapshot, on
//! the blocking pool, at most [`ApiOptions::max_concurrent_queries`] at once
//! and each within its timeout (a query past its timeout is answered 503 at
//! once; its evaluation finishes in the background, still holding its
//! place, so runaway queries cannot pile up).

pub mod json;
pub mod params;
pub mod rules;
pub mod selector;

use super::Shared;
use crate::dsl::ast::Expr;
use crate::engine::EngineError;
use crate::engine::value::{Grid, Value};
use crate::model::{Matcher, series_matches};
use crate::store::{Catalog, StoreError};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use json::{ErrorType, ResultKind};
use params::{BadParam, Params, invalid};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Prometheus's limit on the points of one series of a range query.
pub const MAX_POINTS: i64 = 11_000;

/// What the API may spend.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// The most samples one query may hold at once.
    pub max_samples: u64,
    /// The longest a query may take; a request's `timeout` may shorten it.
    pub query_timeout: Duration,
    /// Queries evaluated at once; more wait (within their timeout).
    pub max_concurrent_queries: usize,
    /// Each scrape target's interval by URL, for `/api/v1/targets`.
    pub target_intervals: BTreeMap<String, Duration>,
    /// The rules' alerts and groups, for `/api/v1/alerts` and
    /// `/api/v1/rules` (empty lists without rules).
    pub rules: Option<Arc<super::rules::RulesState>>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_samples: crate::engine::budget::DEFAULT_MAX_SAMPLES,
            query_timeout: super::config::DEFAULT_QUERY_TIMEOUT,
            // Prometheus's --query.max-concurrency.
            max_concurrent_queries: 20,
            target_intervals: BTreeMap::new(),
            rules: None,
        }
    }
}

struct Api {
    shared: Shared,
    options: ApiOptions,
    queries: Arc<Semaphore>,
}

/// The API's routes, with the default limits.
pub fn router(shared: Shared) -> Router {
    router_with(shared, ApiOptions::default())
}

/// The API's routes.
pub fn router_with(shared: Shared, options: ApiOptions) -> Router {
    let api = Arc::new(Api {
        queries: Arc::new(Semaphore::new(options.max_concurrent_queries.max(1))),
        shared,
        options,
    });
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules_handler))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/{*rest}", any(not_found))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/metrics", get(metrics))
        .with_state(api)
}

/// An API error: its type (and so its status) and message.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    fn new(kind: ErrorType, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl From<BadParam> for ApiError {
    fn from(e: BadParam) -> Self {
        ApiError::new(ErrorType::BadData, e.0)
    }
}

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        respond(Err(self.into()))
    }
}

/// A JSON answer, with warnings; or an error.
type Answer = Result<(Json, Vec<String>), ApiError>;

fn respond(answer: Answer) -> Response {
    let (status, body) = match answer {
        Ok((data, warnings)) => (StatusCode::OK, json::success(data, &warnings)),
        Err(e) => (
            StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json::error(e.kind, &e.message),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl Api {
    /// Counts a request in watch's own metrics and renders the answer.
    fn finish(&self, handler: &str, answer: Answer) -> Response {
        let code = match &answer {
            Ok(_) => 200,
            Err(e) => e.kind.status(),
        };
        self.shared.health.add(
            "mcpops_watch_api_requests_total",
            &[("handler", handler), ("code", &code.to_string())],
            1.0,
        );
        respond(answer)
    }

    /// The timeout of one query: the request's, at most the configured one.
    fn timeout(&self, p: &Params) -> Result<Duration, ApiError> {
        let limit = self.options.query_timeout;
        Ok(match p.duration("timeout")? {
            Some(ms) if ms <= 0 => {
                return Err(invalid("timeout", "the timeout must be more than 0").into());
            }
            Some(ms) => limit.min(Duration::from_millis(ms as u64)),
            None => limit,
        })
    }

    /// Evaluates `expr` over `grid` on the blocking pool, within `timeout`.
    async fn evaluate(&self, expr: Expr, grid: Grid, timeout: Duration) -> Result<Value, ApiError> {
        let store = self.shared.store.clone();
        let queries = self.queries.clone();
        let max_samples = self.options.max_samples;
        let run = async move {
            let permit = queries
                .acquire_owned()
                .await
                .map_err(|_| ApiError::new(ErrorType::Unavailable, "watch is stopping"))?;
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let snapshot = store.snapshot()?;
                crate::engine::query::query(snapshot, &expr, grid, max_samples)
            });
            match task.await {
                Ok(result) => result.map_err(engine_error),
                Err(e) => Err(ApiError::new(
                    ErrorType::Internal,
                    format!("the evaluation failed: {e}"),
                )),
            }
        };
        tokio::time::timeout(timeout, run)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    ErrorType::Timeout,
                    format!(
                        "query timed out in expression evaluation (after {})",
                        crate::time::format_duration_ms(timeout.as_millis() as i64)
                    ),
                ))
            })
    }

    /// `/query` and `/query_range` once their times are read: the request's
    /// timeout and `query`, evaluated over `start..=end` by `step` ms.
    async fn query_on(
        &self,
        p: &Params,
        (start, end, step): (i64, i64, i64),
        kind: ResultKind,
    ) -> Answer {
        let timeout = self.timeout(p)?;
        let expr = parse_expr(p)?;
        let grid = Grid::checked_range(start, end, step)
            .map_err(|e| ApiError::new(ErrorType::BadData, e.to_string()))?;
        let value = self.evaluate(expr, grid, timeout).await?;
        Ok((json::query_data(&value, grid, kind), vec![]))
    }

    /// The catalog of the series that any of `sets` may select, read on
    /// the blocking pool.
    async fn catalog(&self, sets: &[Vec<Matcher>]) -> Result<Catalog, ApiError> {
        // Only the metrics named by equality, when every selector names one.
        let names: Option<BTreeSet<String>> = sets
            .iter()
            .map(|set| {
                set.iter()
                    .find(|m| m.name == "__name__" && m.op == crate::model::MatchOp::Equal)
                    .map(|m| m.value.clone())
            })
            .collect();
        let names = names.filter(|_| !sets.is_empty());
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = store.snapshot()?;
            match &names {
                Some(names) => snapshot.catalog(&|m| names.contains(m)),
                None => snapshot.catalog(&|_| true),
            }
        })
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, format!("reading the catalog: {e}")))?
        .map_err(store_error)
    }

    /// `match[]`, `start`, `end` and `limit` of the metadata endpoints, and
    /// the series they select, sorted by key.
    async fn selected(&self, p: &Params, required: bool) -> Result<Selected, ApiError> {
        let texts = p.all("match[]");
        if required && texts.is_empty() {
            return Err(ApiError::new(
                ErrorType::BadData,
                "no match[] parameter provided",
            ));
        }
        let sets = texts
            .iter()
            .map(|t| selector::parse_selector(t).map_err(|e| invalid("match[]", &e)))
            .collect::<Result<Vec<_>, _>>()?;
        let start = p.time_or("start", i64::MIN)?;
        let end = p.time_or("end", i64::MAX)?;
        if end < start {
            return Err(invalid("end", "end timestamp must not be before start time").into());
        }
        let limit = p.limit("limit")?;
        let catalog = self.catalog(&sets).await?;
        let keys = catalog
            .series
            .into_iter()
            .filter(|s| s.first <= end && s.last >= start)
            .filter(|s| sets.is_empty() || sets.iter().any(|m| series_matches(&s.key, m)))
            .map(|s| s.key)
            .collect();
        Ok(Selected { keys, limit })
    }
}

struct Selected {
    keys: Vec<crate::model::SeriesKey>,
    limit: Option<usize>,
}

/// A sorted list cut at `limit`, with Prometheus's warning when cut.
fn limited<T>(mut items: Vec<T>, limit: Option<usize>) -> (Vec<T>, Vec<String>) {
    match limit {
        Some(n) if items.len() > n => {
            items.truncate(n);
            (items, vec!["results truncated due to limit".into()])
        }
        _ => (items, Vec::new()),
    }
}

fn engine_error(e: EngineError) -> ApiError {
    let kind = match &e {
        EngineError::Eval(_) | EngineError::TooManySamples { .. } => ErrorType::Execution,
        EngineError::Range(_) => ErrorType::BadData,
        // The store failing to read is the server's failure, as
        // Prometheus's storage errors are `internal`.
        _ => ErrorType::Internal,
    };
    ApiError::new(kind, e.to_string())
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::new(ErrorType::Internal, e.to_string())
}

/// The `query` parameter, checked: its diagnostics, one line each, as the
/// error.
fn parse_expr(p: &Params) -> Result<Expr, ApiError> {
    let text = p
        .get("query")
        .ok_or_else(|| invalid("query", "no expression given"))?;
    crate::dsl::parse_query(text).map_err(|diags| {
        let lines: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let mut line = format!("{}:{}: {}", d.line, d.col, d.message);
                if let Some(h) = &d.help {
                    line.push_str(&format!(" (help: {h})"));
                }
                line
            })
            .collect();
        invalid("query", &lines.join("; ")).into()
    })
}

async fn query(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let t = p.time_or("time", crate::time::now_ms())?;
        api.query_on(&p, (t, t, 1), ResultKind::Instant).await
    }
    .await;
    api.finish("/api/v1/query", answer)
}

async fn query_range(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let start = p.time("start")?;
        let end = p.time("end")?;
        if end < start {
            return Err(invalid("end", "end timestamp must not be before start time").into());
        }
        let step = p
            .duration("step")?
            .ok_or_else(|| invalid("step", "cannot parse \"\" to a valid duration"))?;
        if step <= 0 {
            return Err(invalid(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            )
            .into());
        }
        // For safety, as Prometheus: a minute's resolution for a week.
        if (end - start) / step > MAX_POINTS {
            return Err(ApiError::new(
                ErrorType::BadData,
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        api.query_on(&p, (start, end, step), ResultKind::Range).await
    }
    .await;
    api.finish("/api/v1/query_range", answer)
}

async fn series(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let selected = api.selected(&p, true).await?;
        let (keys, warnings) = limited(selected.keys, selected.limit);
        let data: Vec<Json> = keys
            .iter()
            .map(|k| json::metric_object(Some(&k.metric), &k.labels))
            .collect();
        Ok((data.into(), warnings))
    }
    .await;
    api.finish("/api/v1/series", answer)
}

async fn labels(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let selected = api.selected(&p, false).await?;
        let mut names: BTreeSet<&str> = selected
            .keys
            .iter()
            .flat_map(|k| k.labels.iter().map(|(n, _)| n.as_str()))
            .collect();
        if !selected.keys.is_empty() {
            names.insert("__name__");
        }
        let (names, warnings) = limited(names.into_iter().collect(), selected.limit);
        Ok((json!(names), warnings))
    }
    .await;
    api.finish("/api/v1/labels", answer)
}

async fn label_values(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    let answer = async {
        let name = selector::unescape_label_name(&name)
            .map_err(|e| ApiError::new(ErrorType::BadData, e))?;
        if name.is_empty() {
            return Err(ApiError::new(
                ErrorType::BadData,
                "invalid label name: \"\"",
            ));
        }
        let selected = api.selected(&p, false).await?;
        let values: BTreeSet<&str> = if name == "__name__" {
            selected.keys.iter().map(|k| k.metric.as_str()).collect()
        } else {
            selected
                .keys
                .iter()
                .filter_map(|k| k.label(&name))
                .collect()
        };
        let (values, warnings) = limited(values.into_iter().collect(), selected.limit);
        Ok((json!(values), warnings))
    }
    .await;
    api.finish("/api/v1/label/:name/values", answer)
}

/// Prometheus's name for a metric type: it knows no `event` (one sample
/// per call, its duration) and calls untyped `unknown`.
fn prometheus_type(kind: crate::metadata::MetricType) -> &'static str {
    use crate::metadata::MetricType as T;
    match kind {
        T::Untyped | T::Event => "unknown",
        other => other.name(),
    }
}

async fn metadata(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let limit = p.limit("limit")?;
        let per_metric = p.limit("limit_per_metric")?;
        let only = p.get("metric").map(String::from);
        let catalog = api.catalog(&[]).await?;
        let mut families: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        for (name, meta) in &catalog.metadata {
            // A counter under the name users select (`x_total`, as a
            // Prometheus text `# TYPE` line names it); a histogram or
            // summary under its family, whose parts Grafana strips.
            let key = match meta.part {
                None | Some(crate::metadata::Part::Total) => name,
                Some(_) => &meta.family,
            };
            if only.as_ref().is_some_and(|m| m != key) {
                continue;
            }
            let entry = json!({
                "type": prometheus_type(meta.kind),
                "help": meta.help.clone().unwrap_or_default(),
                "unit": meta.unit.clone().unwrap_or_default(),
            });
            let list = families.entry(key.clone()).or_default();
            if !list.contains(&entry) && per_metric.is_none_or(|n| list.len() < n) {
                list.push(entry);
            }
        }
        let data: serde_json::Map<String, Json> = families
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, v)| (k, Json::from(v)))
            .collect();
        Ok((data.into(), vec![]))
    }
    .await;
    api.finish("/api/v1/metadata", answer)
}

async fn targets(State(api): State<Arc<Api>>, p: Params) -> Response {
    let answer = async {
        let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
        if !["any", "active", "dropped"].contains(&state.as_str()) {
            return Err(invalid("state", "must be active, dropped or any"));
        }
        let active: Vec<Json> = if state == "dropped" {
            Vec::new()
        } else {
            api.shared
                .targets
                .all()
                .iter()
                .map(|t| target_json(t, &api.options))
                .collect()
        };
        Ok((
            json!({"activeTargets": active, "droppedTargets": [], "droppedTargetCounts": {}}),
            vec![],
        ))
    }
    .await;
    api.finish("/api/v1/targets", answer.map_err(ApiError::from))
}

impl Api {
    fn published(&self) -> Arc<super::rules::Published> {
        self.options
            .rules
            .as_ref()
            .map(|r| r.published())
            .unwrap_or_default()
    }
}

async fn alerts(State(api): State<Arc<Api>>) -> Response {
    let data = rules::alerts(&api.published());
    api.finish("/api/v1/alerts", Ok((data, vec![])))
}

async fn rules_handler(State(api): State<Arc<Api>>, p: Params) -> Response {
    let names = p.all("rule_name[]");
    let answer = rules::rules(&api.published(), p.get("type"), &names)
        .map(|data| (data, vec![]))
        .map_err(ApiError::from);
    api.finish("/api/v1/rules", answer)
}

/// One target in Prometheus's `activeTargets` shape; a probe's pool is its
/// job, its URL the probed URL or command line.
fn target_json(t: &super::targets::TargetStatus, options: &ApiOptions) -> Json {
    let mut labels: serde_json::Map<String, Json> = t
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
        .collect();
    labels.insert("job".into(), t.job.clone().into());
    labels.insert("instance".into(), t.instance.clone().into());
    let health = match t.health {
        super::targets::TargetHealth::Up => "up",
        super::targets::TargetHealth::Down => "down",
        super::targets::TargetHealth::Unknown => "unknown",
    };
    let last_scrape = if t.last_round_ms > 0 {
        crate::time::format_ms(t.last_round_ms)
    } else {
        // Go's zero time, as Prometheus writes a target never scraped.
        "0001-01-01T00:00:00Z".into()
    };
    let mut out = json!({
        "discoveredLabels": {"__address__": t.instance, "job": t.job},
        "labels": labels,
        "scrapePool": t.job,
        "scrapeUrl": t.url,
        "globalUrl": t.url,
        "lastError": t.last_error,
        "lastScrape": last_scrape,
        "lastScrapeDuration": t.last_duration_seconds,
        "health": health,
    });
    if let Some(i) = options.target_intervals.get(&t.url) {
        out["scrapeInterval"] = crate::time::format_duration_ms(i.as_millis() as i64).into();
    }
    out
}

async fn buildinfo(State(api): State<Arc<Api>>) -> Response {
    // No `features`: Grafana reads their absence as "Prometheus" (not Mimir).
    let data = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    });
    api.finish("/api/v1/status/buildinfo", Ok((data, vec![])))
}

async fn not_found(State(api): State<Arc<Api>>, Path(rest): Path<String>) -> Response {
    api.finish(
        "other",
        Err(ApiError::new(
            ErrorType::NotFound,
            format!("/api/v1/{rest}: mcpops watch does not serve this endpoint"),
        )),
    )
}

async fn healthy() -> &'static str {
    "mcpops watch is Healthy.\n"
}

/// Ready once serving: the store was opened (and its log replayed) before
/// the listener was handed to the server.
async fn ready() -> &'static str {
    "mcpops watch is Ready.\n"
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    super::run::record_store_health(&api.shared);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.shared.health.render(),
    )
        .into_response()
}
