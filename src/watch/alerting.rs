//! Alerts to Alertmanager, as Prometheus sends them: every `resend` (and at
//! once when an alert starts firing or resolves) the firing alerts that no
//! `suppress` holds back are POSTed to each Alertmanager's
//! `/api/v2/alerts`, with `endsAt` = now + 4 x max(step, resend) so that
//! Alertmanager resolves them by itself if watch goes away; resolved ones
//! are sent with `endsAt` = their resolution time for the 15 minutes the
//! rules keep them. A failed send is logged and counted, and never holds up
//! evaluation. On SIGTERM the sender stops (no resolution is sent: the
//! alerts were not resolved, and Alertmanager ends them when `endsAt`
//! passes).

use super::Shared;
use super::rules::{AlertState, LiveAlert, Log, RulesState};
use crate::remediate::alertmanager::{PostableAlert, post_alerts};
use std::sync::Arc;
use std::time::Duration;

/// Where and how often alerts go.
#[derive(Clone, Debug)]
pub struct AlertingOptions {
    /// Base URLs (`http://127.0.0.1:9093`).
    pub urls: Vec<String>,
    pub resend: Duration,
    /// Where the API is, for `generatorURL`.
    pub external_url: String,
}

/// The URL an alert links back to: watch's alerts.
pub fn generator_url(external_url: &str) -> String {
    format!("{external_url}/api/v1/alerts")
}

/// The alerts to send now: firing and not suppressed (until `now + hold`),
/// and resolved (until their resolution).
pub fn to_send(
    alerts: &[LiveAlert],
    now_ms: i64,
    hold: Duration,
    external_url: &str,
) -> Vec<PostableAlert> {
    alerts
        .iter()
        .filter(|a| !a.suppressed)
        .filter_map(|a| {
            let starts = a.fired_at.unwrap_or(a.active_at);
            let ends = match a.state {
                AlertState::Firing => now_ms + hold.as_millis() as i64,
                // Only what fired was sent, so only that resolves.
                AlertState::Resolved if a.fired_at.is_some() => a.resolved_at?,
                _ => return None,
            };
            Some(PostableAlert::new(
                &a.name,
                &a.labels,
                a.annotations.clone(),
                starts,
                ends,
                generator_url(external_url),
            ))
        })
        .collect()
}

/// Sends until watch stops.
pub async fn run(shared: Shared, state: Arc<RulesState>, options: AlertingOptions, log: Log) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            log.error(&format!("alertmanager: cannot make an HTTP client: {e}"));
            return;
        }
    };
    let mut stop = shared.shutdown.clone();
    let mut tick = tokio::time::interval(options.resend);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One log line per Alertmanager going down and coming back, not per send.
    let mut failing = vec![false; options.urls.len()];
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.changed.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let published = state.published();
        let hold = options
            .resend
            .max(Duration::from_millis(published.step_ms.max(0) as u64))
            * 4;
        let alerts = to_send(
            &published.alerts,
            crate::time::now_ms(),
            hold,
            &options.external_url,
        );
        if alerts.is_empty() {
            continue;
        }
        for (i, url) in options.urls.iter().enumerate() {
            let labels = [("alertmanager", url.as_str())];
            match post_alerts(&client, url, &alerts).await {
                Ok(()) => {
                    shared
                        .health
                        .add("mcpops_watch_alertmanager_sends_total", &labels, 1.0);
                    if failing[i] {
                        log.error(&format!("alertmanager {url} takes alerts again"));
                    }
                    failing[i] = false;
                }
                Err(e) => {
                    shared.health.add(
                        "mcpops_watch_alertmanager_send_failures_total",
                        &labels,
                        1.0,
                    );
                    if !failing[i] {
                        log.error(&format!("alertmanager: sending alerts failed: {e}"));
                    }
                    failing[i] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(state: AlertState, suppressed: bool) -> LiveAlert {
        LiveAlert {
            name: "Down".into(),
            labels: vec![
                ("alertname".into(), "Down".into()),
                ("server".into(), "a".into()),
            ],
            annotations: vec![("summary".into(), "a is down".into())],
            state,
            active_at: 1_000,
            fired_at: (state != AlertState::Pending).then_some(61_000),
            resolved_at: (state == AlertState::Resolved).then_some(121_000),
            value: 1.0,
            suppressed,
        }
    }

    #[test]
    fn firing_until_later_resolved_at_their_end_pending_and_suppressed_never() {
        let hold = Duration::from_secs(240);
        let sent = to_send(
            &[
                alert(AlertState::Firing, false),
                alert(AlertState::Resolved, false),
                alert(AlertState::Pending, false),
                alert(AlertState::Firing, true),
            ],
            200_000,
            hold,
            "http://127.0.0.1:9464",
        );
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].starts_at, "1970-01-01T00:01:01.000Z");
        assert_eq!(sent[0].ends_at, "1970-01-01T00:07:20.000Z");
        assert_eq!(sent[1].ends_at, "1970-01-01T00:02:01.000Z");
        assert_eq!(sent[0].labels[0], ("alertname".into(), "Down".into()));
        let json = serde_json::to_value(&sent[0]).unwrap();
        assert_eq!(json["generatorURL"], "http://127.0.0.1:9464/api/v1/alerts");
        assert_eq!(json["labels"]["alertname"], "Down");
        assert_eq!(json["annotations"]["summary"], "a is down");
    }
}
