//! Alertmanager's wire formats, written as Alertmanager writes and reads
//! them: the alerts `watch` posts to `/api/v2/alerts` (as Prometheus posts
//! them) and the version 4 webhook payload that Alertmanager sends to its
//! receivers, which `webhook` actions send too, so receivers built for
//! Alertmanager (Robusta, Keep, prometheus-am-executor) take either.
//!
//! An alert's identity is its fingerprint, computed from its labels exactly
//! as Alertmanager computes it ([`fingerprint`]), so the fingerprint in a
//! webhook from mcpops and the one Alertmanager shows for the same alert agree.

use crate::engine::value::Labels;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// One alert as `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// `alertname` first among them, as Prometheus sends.
    #[serde(serialize_with = "as_object")]
    pub labels: Labels,
    #[serde(serialize_with = "as_object")]
    pub annotations: Labels,
    /// RFC 3339 with milliseconds, UTC.
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// An alert's labels as Alertmanager sees them: `alertname` first, then
/// the instance's labels (any `alertname` of theirs replaced).
pub fn with_alertname(alertname: &str, labels: &Labels) -> Labels {
    let mut all = vec![("alertname".to_string(), alertname.to_string())];
    all.extend(labels.iter().filter(|(k, _)| k != "alertname").cloned());
    all
}

impl PostableAlert {
    /// An alert named `alertname` with `labels` (the alert's `alertname`
    /// goes first; labels with empty values are left out, as Prometheus
    /// leaves them out), active from `starts_ms` until `ends_ms`.
    pub fn new(
        alertname: &str,
        labels: &Labels,
        annotations: Labels,
        starts_ms: i64,
        ends_ms: i64,
        generator_url: String,
    ) -> PostableAlert {
        let mut all = with_alertname(alertname, labels);
        all.retain(|(_, v)| !v.is_empty());
        PostableAlert {
            labels: all,
            annotations: annotations
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            starts_at: rfc3339(starts_ms),
            ends_at: rfc3339(ends_ms),
            generator_url,
        }
    }
}

/// A time as Alertmanager's API takes it: RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    use chrono::{SecondsFormat, TimeZone, Utc};
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ZERO_TIME.to_string(),
    }
}

/// Go's zero time, which Alertmanager writes as the `endsAt` of an alert
/// that has not resolved.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A label set as a JSON object, in its order.
fn as_object<S: Serializer>(labels: &Labels, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(labels.len()))?;
    for (k, v) in labels {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// Alertmanager's fingerprint of a label set (Prometheus's
/// `model.LabelSet.Fingerprint`): FNV-1a, 64 bits, over the names in sorted
/// order, each name and value followed by the byte 0xff; 16 hex digits.
/// Labels with empty values are left out, as Alertmanager drops them from
/// the alerts it receives before it computes the fingerprint.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    const SEPARATOR: u8 = 0xff;
    let mut sorted: Vec<&(String, String)> = labels.iter().filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in sorted {
        add(k.as_bytes());
        add(&[SEPARATOR]);
        add(v.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{h:016x}")
}

/// An alert's state in a webhook payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert of a webhook payload (Alertmanager's `template.Alert`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: Status,
    #[serde(serialize_with = "as_object")]
    pub labels: Labels,
    #[serde(serialize_with = "as_object")]
    pub annotations: Labels,
    pub starts_at: String,
    /// [`ZERO_TIME`] while firing, as Alertmanager sends it.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

impl WebhookAlert {
    /// The payload's form of `alert`: resolved when its `endsAt` is not after
    /// `now_ms` (Alertmanager's rule), and then with that `endsAt`.
    pub fn from_postable(alert: &PostableAlert, now_ms: i64) -> WebhookAlert {
        let ends = crate::time::parse_timestamp(&alert.ends_at);
        let resolved = ends.is_some_and(|e| e <= now_ms);
        WebhookAlert {
            status: if resolved {
                Status::Resolved
            } else {
                Status::Firing
            },
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: alert.starts_at.clone(),
            ends_at: if resolved {
                alert.ends_at.clone()
            } else {
                ZERO_TIME.to_string()
            },
            generator_url: alert.generator_url.clone(),
            fingerprint: fingerprint(&alert.labels),
        }
    }
}

/// The version 4 webhook payload (Alertmanager's `webhook.Message`: its
/// `template.Data` and the version, group key and truncation count).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub receiver: String,
    /// `firing` when any alert fires, else `resolved`.
    pub status: Status,
    pub alerts: Vec<WebhookAlert>,
    #[serde(serialize_with = "as_object")]
    pub group_labels: Labels,
    /// The labels every alert has with the same value.
    #[serde(serialize_with = "as_object")]
    pub common_labels: Labels,
    #[serde(serialize_with = "as_object")]
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always "4".
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

impl WebhookMessage {
    /// The payload for `alerts`, grouped by the labels named in `group_by`
    /// (taken from the first alert), as Alertmanager's root route with that
    /// `group_by` would send it to `receiver`.
    pub fn new(
        receiver: &str,
        group_by: &[&str],
        alerts: Vec<WebhookAlert>,
        external_url: &str,
    ) -> WebhookMessage {
        let first = alerts.first().map(|a| a.labels.as_slice()).unwrap_or(&[]);
        let mut group_labels: Labels = first
            .iter()
            .filter(|(k, _)| group_by.contains(&k.as_str()))
            .cloned()
            .collect();
        group_labels.sort();
        let common = |of: &dyn Fn(&WebhookAlert) -> &Labels| -> Labels {
            let mut out: Labels = alerts
                .first()
                .map(|a| of(a).clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| {
                    alerts
                        .iter()
                        .all(|a| of(a).iter().any(|(k2, v2)| k2 == k && v2 == v))
                })
                .collect();
            out.sort();
            out
        };
        let common_labels = common(&|a| &a.labels);
        let common_annotations = common(&|a| &a.annotations);
        let status = if alerts.iter().any(|a| a.status == Status::Firing) {
            Status::Firing
        } else {
            Status::Resolved
        };
        WebhookMessage {
            receiver: receiver.to_string(),
            status,
            group_key: format!("{{}}:{}", label_set_string(&group_labels)),
            alerts,
            group_labels,
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
            version: "4".to_string(),
            truncated_alerts: 0,
        }
    }
}

/// A label set as Prometheus's `LabelSet.String()` writes it:
/// `{a="x", b="y"}`, sorted by name, values quoted.
fn label_set_string(labels: &Labels) -> String {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort();
    let mut out = String::from("{");
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        crate::engine::value::push_quoted(&mut out, v);
    }
    out.push('}');
    out
}

/// How long [`post_alerts`] waits for Alertmanager's answer.
pub const POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Posts `alerts` to the Alertmanager at `base_url` (`POST
/// /api/v2/alerts`). The error says the status and the start of the answer,
/// or why no answer came.
pub async fn post_alerts(
    client: &reqwest::Client,
    base_url: &str,
    alerts: &[PostableAlert],
) -> Result<(), String> {
    let url = format!("{}/api/v2/alerts", base_url.trim_end_matches('/'));
    let body = serde_json::to_vec(alerts).map_err(|e| format!("POST {url}: {e}"))?;
    let answer = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        // An Alertmanager that hangs must not hold the next resend.
        .timeout(POST_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", crate::error_chain(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let body = answer.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    Err(format!("POST {url}: {status}: {}", body.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprints_are_prometheus_model_fingerprints() {
        // Values from prometheus/common model/signature_test.go
        // (TestLabelsToSignature / TestFingerprint).
        assert_eq!(fingerprint(&labels(&[])), "cbf29ce484222325");
        assert_eq!(
            fingerprint(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ])),
            format!("{:016x}", 5799056148416392346u64)
        );
        // Order does not matter; empty values are left out.
        assert_eq!(
            fingerprint(&labels(&[("b", "2"), ("a", "1"), ("c", "")])),
            fingerprint(&labels(&[("a", "1"), ("b", "2")]))
        );
    }

    #[test]
    fn group_key_and_common_labels() {
        let a = PostableAlert::new(
            "Down",
            &labels(&[("server", "a"), ("severity", "page")]),
            labels(&[("summary", "a is down")]),
            0,
            1,
            String::new(),
        );
        let b = PostableAlert::new(
            "Down",
            &labels(&[("server", "b"), ("severity", "page")]),
            labels(&[("summary", "b is down")]),
            0,
            10_000,
            String::new(),
        );
        let m = WebhookMessage::new(
            "r",
            &["alertname"],
            vec![
                WebhookAlert::from_postable(&a, 5_000),
                WebhookAlert::from_postable(&b, 5_000),
            ],
            "",
        );
        assert_eq!(m.group_key, r#"{}:{alertname="Down"}"#);
        assert_eq!(
            m.common_labels,
            labels(&[("alertname", "Down"), ("severity", "page")])
        );
        assert!(m.common_annotations.is_empty());
        assert_eq!(m.status, Status::Firing);
        assert_eq!(m.alerts[0].status, Status::Resolved);
        assert_eq!(m.alerts[1].ends_at, ZERO_TIME);
    }
}
