//! Prometheus's HTTP API envelope and result shapes, in one place for the
//! API and for `mcpops query --format json`: `{"status":"success","data":
//! {"resultType":..., "result":...}}` holding a vector or a scalar for an
//! instant, a matrix for a range; `{"status":"error","errorType":...,
//! "error":...}` on failure. Times are unix seconds (a fraction only when
//! there are milliseconds), sample values strings as Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)` writes them (`NaN`, `+Inf`, `-Inf`).

use crate::engine::value::{Grid, Labels, Series, StepValue, Value};
use crate::model::prom_float;
use serde_json::{Map, Value as Json, json};

/// What a query asked for: one instant (a `vector` or `scalar` result), or a
/// range of steps (a `matrix`, even of one step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    Instant,
    Range,
}

/// Prometheus's `errorType`s, each with the HTTP status its API answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is wrong (a parameter, the expression's syntax): 400.
    BadData,
    /// The expression could not be evaluated: 422.
    Execution,
    /// The query ran out of time: 503.
    Timeout,
    /// The server cannot answer now (the store): 503.
    Unavailable,
    /// The server failed: 500.
    Internal,
    /// No such endpoint: 404.
    NotFound,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Unavailable => "unavailable",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout | ErrorType::Unavailable => 503,
            ErrorType::Internal => 500,
            ErrorType::NotFound => 404,
        }
    }
}

/// `{"status":"success","data":DATA}`, with `warnings` when there are any.
pub fn success(data: Json, warnings: &[String]) -> Json {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = warnings.into();
    }
    body
}

/// `{"status":"error","errorType":TYPE,"error":MESSAGE}`.
pub fn error(kind: ErrorType, message: &str) -> Json {
    json!({"status": "error", "errorType": kind.name(), "error": message})
}

/// A time as Prometheus's API writes it: seconds, with the milliseconds as
/// a fraction only when there are any.
pub fn api_time(ms: i64) -> Json {
    if ms % 1000 == 0 {
        (ms / 1000).into()
    } else {
        (ms as f64 / 1000.0).into()
    }
}

/// A series' labels as a JSON object, with `__name__` when it keeps its
/// metric name.
pub fn metric_object(metric: Option<&str>, labels: &Labels) -> Json {
    let mut object: Map<String, Json> = labels
        .iter()
        .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
        .collect();
    if let Some(m) = metric {
        object.insert("__name__".into(), m.into());
    }
    object.into()
}

/// The `data` of a query's answer: `resultType` and `result`. A number over
/// a range is one series without labels, as Prometheus answers a range
/// query of a scalar; series without a value at any step are left out, as
/// Prometheus never returns them.
pub fn query_data(value: &Value, grid: Grid, kind: ResultKind) -> Json {
    let spread;
    let value = match (value, kind) {
        (Value::Scalar(x), ResultKind::Range) => {
            spread = Value::Vector(vec![Series::new(
                Vec::new(),
                0,
                vec![StepValue::some(*x); grid.n],
            )]);
            &spread
        }
        _ => value,
    };
    match value {
        Value::Scalar(x) => {
            json!({"resultType": "scalar", "result": [api_time(grid.end()), prom_float(*x)]})
        }
        Value::Vector(series) => {
            let result: Vec<Json> = series
                .iter()
                .filter_map(|s| {
                    let points = points(s, grid);
                    let metric = metric_object(s.metric.as_deref(), &s.labels);
                    match kind {
                        ResultKind::Instant => {
                            let (t, x) = points.last()?;
                            Some(json!({"metric": metric, "value": [api_time(*t), prom_float(*x)]}))
                        }
                        ResultKind::Range if points.is_empty() => None,
                        ResultKind::Range => {
                            let values: Vec<Json> = points
                                .iter()
                                .map(|(t, x)| json!([api_time(*t), prom_float(*x)]))
                                .collect();
                            Some(json!({"metric": metric, "values": values}))
                        }
                    }
                })
                .collect();
            let result_type = match kind {
                ResultKind::Instant => "vector",
                ResultKind::Range => "matrix",
            };
            json!({"resultType": result_type, "result": result})
        }
    }
}

/// A series' steps that hold a value, as (time, value).
pub fn points(s: &Series, grid: Grid) -> Vec<(i64, f64)> {
    s.values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.get().map(|v| (grid.time(s.start + i), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(metric: Option<&str>, labels: &[(&str, &str)], values: &[Option<f64>]) -> Series {
        let mut s = Series::new(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            0,
            values
                .iter()
                .map(|v| v.map_or(StepValue::NONE, StepValue::some))
                .collect(),
        );
        s.metric = metric.map(String::from);
        s
    }

    #[test]
    fn instant_vectors_and_scalars_have_prometheus_shapes() {
        let grid = Grid::checked_range(1_500, 1_500, 1).unwrap();
        let v = Value::Vector(vec![
            series(Some("up"), &[("job", "a")], &[Some(1.0)]),
            series(None, &[("job", "b")], &[None]),
        ]);
        assert_eq!(
            query_data(&v, grid, ResultKind::Instant),
            json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a"}, "value": [1.5, "1"]}
            ]})
        );
        assert_eq!(
            query_data(&Value::Scalar(f64::NEG_INFINITY), grid, ResultKind::Instant),
            json!({"resultType": "scalar", "result": [1.5, "-Inf"]})
        );
    }

    #[test]
    fn ranges_are_matrices_even_of_one_step_and_scalars_spread() {
        let grid = Grid::checked_range(0, 2_000, 1_000).unwrap();
        let v = Value::Vector(vec![series(None, &[], &[Some(0.5), None, Some(f64::NAN)])]);
        assert_eq!(
            query_data(&v, grid, ResultKind::Range),
            json!({"resultType": "matrix", "result": [
                {"metric": {}, "values": [[0, "0.5"], [2, "NaN"]]}
            ]})
        );
        let one = Grid::checked_range(5_000, 5_000, 1_000).unwrap();
        assert_eq!(
            query_data(&Value::Scalar(2.0), one, ResultKind::Range),
            json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[5, "2"]]}]})
        );
    }

    #[test]
    fn numbers_never_use_exponents() {
        assert_eq!(prom_float(1e21), "1000000000000000000000");
        assert_eq!(prom_float(1.5e-7), "0.00000015");
        assert_eq!(prom_float(f64::INFINITY), "+Inf");
        assert_eq!(
            error(ErrorType::BadData, "x"),
            json!({"status": "error", "errorType": "bad_data", "error": "x"})
        );
    }
}
