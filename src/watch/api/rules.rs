//! `/api/v1/alerts` and `/api/v1/rules` in Prometheus's shapes (checked
//! against Prometheus 2.42's answers): alerts with their labels
//! (`alertname` among them), annotations, `state` (`pending` or `firing`),
//! `activeAt` and `value` (Go's `%e`, `1e+00`); rule groups (one per rule
//! file) with each alerting and recording rule, its health and its last
//! evaluation, filtered by `type=alert|record` and `rule_name[]`.

use super::params::{BadParam, invalid};
use crate::engine::Labels;
use crate::engine::live::RuleKind;
use crate::remediate::alertmanager::rfc3339;
use crate::watch::rules::{AlertState, LiveAlert, Published};
use serde_json::{Map, Value as Json, json};

fn object(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// A float as Go's `strconv.FormatFloat(v, 'e', -1, 64)` writes it, as
/// Prometheus writes an alert's value: `1e+00`, `2.5e-01`, `NaN`, `+Inf`.
pub fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's shortest round-trip digits, with Go's exponent: a sign and at
    // least two digits.
    let text = format!("{v:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// One alert instance in Prometheus's shape.
fn alert_json(a: &LiveAlert) -> Json {
    json!({
        "labels": object(&a.labels),
        "annotations": object(&a.annotations),
        "state": a.state.name(),
        "activeAt": rfc3339(a.active_at),
        "value": go_exp(a.value),
    })
}

/// The active (pending and firing) instances: Prometheus serves no
/// resolved ones.
fn active(p: &Published) -> impl Iterator<Item = &LiveAlert> {
    p.alerts.iter().filter(|a| a.state != AlertState::Resolved)
}

/// `/api/v1/alerts`'s data.
pub fn alerts(p: &Published) -> Json {
    json!({"alerts": active(p).map(alert_json).collect::<Vec<_>>()})
}

/// `/api/v1/rules`'s data, filtered by `type` (`alert` or `record`) and
/// `rule_name[]`; groups left with no rule are left out, as Prometheus does.
pub fn rules(p: &Published, kind: Option<&str>, names: &[&str]) -> Result<Json, BadParam> {
    let want = match kind.map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("alert") => Some(RuleKind::Alert),
        Some("record") => Some(RuleKind::Record),
        Some(other) => {
            return Err(invalid("type", &format!("not supported value \"{other}\"")));
        }
    };
    let last = p.last_evaluation_ms.map(rfc3339);
    let seconds = p.evaluation_time.as_secs_f64();
    let mut groups = Vec::new();
    for g in &p.groups {
        let rules: Vec<Json> = g
            .rules
            .iter()
            .filter(|r| want.is_none_or(|k| k == r.kind))
            .filter(|r| names.is_empty() || names.contains(&r.name.as_str()))
            .map(|r| {
                let mut rule = match r.kind {
                    RuleKind::Alert => {
                        let instances: Vec<&LiveAlert> =
                            active(p).filter(|a| a.name == r.name).collect();
                        let state = if instances.iter().any(|a| a.state == AlertState::Firing) {
                            "firing"
                        } else if instances.is_empty() {
                            "inactive"
                        } else {
                            "pending"
                        };
                        json!({
                            "state": state,
                            "name": r.name,
                            "query": r.query,
                            "duration": r.for_ms as f64 / 1000.0,
                            "keepFiringFor": r.keep_firing_ms as f64 / 1000.0,
                            "labels": object(&r.labels),
                            "annotations": object(&r.annotations),
                            "alerts": instances.iter().map(|a| alert_json(a)).collect::<Vec<_>>(),
                            "type": "alerting",
                        })
                    }
                    RuleKind::Record => json!({
                        "name": r.name,
                        "query": r.query,
                        "type": "recording",
                    }),
                };
                // A step that failed as a whole fails every rule.
                let error = r.last_error.as_ref().or(p.last_error.as_ref());
                rule["health"] = if error.is_some() { "err" } else { "ok" }.into();
                if let Some(e) = error {
                    rule["lastError"] = e.clone().into();
                }
                rule["evaluationTime"] = r.evaluation_s.into();
                rule["lastEvaluation"] = last.clone().into();
                rule
            })
            .collect();
        if rules.is_empty() && (want.is_some() || !names.is_empty()) {
            continue;
        }
        groups.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules,
            "interval": g.interval_ms as f64 / 1000.0,
            "limit": 0,
            "evaluationTime": seconds,
            "lastEvaluation": last,
        }));
    }
    Ok(json!({"groups": groups}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::live::RuleView;
    use crate::watch::rules::GroupInfo;
    use std::time::Duration;

    #[test]
    fn values_as_go_writes_them() {
        assert_eq!(go_exp(1.0), "1e+00");
        assert_eq!(go_exp(0.25), "2.5e-01");
        assert_eq!(go_exp(1234.5), "1.2345e+03");
        assert_eq!(go_exp(-3e-120), "-3e-120");
        assert_eq!(go_exp(0.0), "0e+00");
        assert_eq!(go_exp(f64::NAN), "NaN");
        assert_eq!(go_exp(f64::NEG_INFINITY), "-Inf");
    }

    fn published() -> Published {
        let alert = |state, name: &str| LiveAlert {
            name: name.into(),
            labels: vec![
                ("alertname".into(), name.into()),
                ("server".into(), "a".into()),
            ],
            annotations: vec![("summary".into(), "down".into())],
            state,
            active_at: 1_000,
            fired_at: None,
            resolved_at: None,
            value: 1.0,
            suppressed: false,
        };
        let rule = |name: &str, kind| RuleView {
            file: "rules/mcp.rules".into(),
            name: name.into(),
            kind,
            query: "up == 0".into(),
            for_ms: 60_000,
            keep_firing_ms: 0,
            labels: vec![("severity".into(), "critical".into())],
            annotations: vec![],
            last_error: (name == "Slow").then(|| "no such series".to_string()),
            last_evaluation: None,
            evaluation_s: 0.001,
        };
        Published {
            groups: vec![GroupInfo {
                name: "mcp".into(),
                file: "rules/mcp.rules".into(),
                interval_ms: 15_000,
                rules: vec![
                    rule("Down", RuleKind::Alert),
                    rule("Slow", RuleKind::Alert),
                    rule("errors:rate5m", RuleKind::Record),
                ],
            }],
            alerts: vec![
                alert(AlertState::Firing, "Down"),
                alert(AlertState::Resolved, "Slow"),
            ],
            last_evaluation_ms: Some(2_000),
            evaluation_time: Duration::from_millis(5),
            last_error: None,
            step_ms: 15_000,
        }
    }

    #[test]
    fn shapes_and_filters_as_prometheus() {
        let p = published();
        let a = alerts(&p);
        assert_eq!(a["alerts"].as_array().unwrap().len(), 1, "{a}");
        assert_eq!(a["alerts"][0]["labels"]["alertname"], "Down");
        assert_eq!(a["alerts"][0]["activeAt"], "1970-01-01T00:00:01.000Z");
        let r = rules(&p, None, &[]).unwrap();
        let g = &r["groups"][0];
        assert_eq!(g["interval"], 15.0);
        assert_eq!(g["rules"][0]["state"], "firing");
        assert_eq!(g["rules"][0]["duration"], 60.0);
        assert_eq!(g["rules"][0]["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(g["rules"][1]["state"], "inactive");
        assert_eq!(g["rules"][1]["health"], "err");
        assert_eq!(g["rules"][1]["lastError"], "no such series");
        assert_eq!(g["rules"][0]["health"], "ok");
        assert!(g["rules"][0].get("lastError").is_none());
        assert_eq!(g["rules"][2]["type"], "recording");
        assert!(g["rules"][2].get("labels").is_none());
        let r = rules(&p, Some("record"), &[]).unwrap();
        assert_eq!(r["groups"][0]["rules"].as_array().unwrap().len(), 1);
        let r = rules(&p, Some("alert"), &["Nope"]).unwrap();
        assert_eq!(r["groups"].as_array().unwrap().len(), 0);
        let e = rules(&p, Some("bogus"), &[]).unwrap_err();
        assert!(e.0.contains("not supported value \"bogus\""), "{e:?}");
    }
}
