//! Alertmanager's wire formats, written as Alertmanager writes and reads
//! them: the alerts `watch` posts to `/api/v2/alerts` (as Prometheus posts
//! them) and the version 4 webhook payload that Alertmanager sends to its
//! receivers, which `webhook` actions send too, so receivers built for
//! Alertmanager (Robusta, Keep, prometheus-am-executor) take either.

use crate::engine::value::Labels;
use serde::Serialize;

/// One alert as `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// `alertname` first among them, as Prometheus sends.
    pub labels: Labels,
    pub annotations: Labels,
    /// RFC 3339 with milliseconds, UTC.
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}
