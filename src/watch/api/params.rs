//! A request's parameters as Prometheus's API reads them: from the URL's
//! query string and, for a POST, from an `application/x-www-form-urlencoded`
//! body, keys repeatable (`match[]`); times as unix seconds (a float) or
//! RFC 3339; durations as seconds (a float) or `1m30s`.

use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

/// The largest form body a request may send (a long `query` fits easily).
pub const MAX_FORM_BYTES: usize = 1 << 20;

/// Every `key=value` of the query string, then of a form body.
#[derive(Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

/// A parameter that is not what it should be: Prometheus's `bad_data`.
#[derive(Debug, PartialEq)]
pub struct BadParam(pub String);

impl Params {
    /// The first value of `key`, if given and not empty (Go's `FormValue`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when it is not given.
    pub fn time_or(&self, key: &str, default: i64) -> Result<i64, BadParam> {
        match self.get(key) {
            None => Ok(default),
            Some(t) => parse_time(t).map_err(|e| invalid(key, &e)),
        }
    }

    /// A time parameter that must be given.
    pub fn time(&self, key: &str) -> Result<i64, BadParam> {
        parse_time(self.get(key).unwrap_or("")).map_err(|e| invalid(key, &e))
    }

    /// A duration parameter in milliseconds, if given.
    pub fn duration(&self, key: &str) -> Result<Option<i64>, BadParam> {
        self.get(key)
            .map(|d| parse_duration(d).map_err(|e| invalid(key, &e)))
            .transpose()
    }

    /// A count parameter (`limit`): absent or 0 means no limit.
    pub fn limit(&self, key: &str) -> Result<Option<usize>, BadParam> {
        match self.get(key) {
            None => Ok(None),
            Some(t) => match t.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Some(n as usize)),
                Ok(0) => Ok(None),
                _ => Err(invalid(
                    key,
                    &format!("cannot parse \"{t}\" to a positive count"),
                )),
            },
        }
    }
}

/// Prometheus's wording: `invalid parameter "time": ...`.
pub fn invalid(key: &str, why: &str) -> BadParam {
    BadParam(format!("invalid parameter \"{key}\": {why}"))
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = BadParam;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs = match req.uri().query() {
            Some(q) => parse_form(q.as_bytes())?,
            None => Vec::new(),
        };
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if req.method() == Method::POST && form {
            let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
                .await
                .map_err(|e| {
                    BadParam(format!(
                        "error parsing form values: {e} (at most {MAX_FORM_BYTES} bytes)"
                    ))
                })?;
            pairs.extend(parse_form(&body)?);
        }
        Ok(Params(pairs))
    }
}

/// `a=1&b=x+y&c=%2F`: `+` is a space, `%XX` a byte, the result UTF-8.
pub fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, BadParam> {
    bytes
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(raw: &[u8]) -> Result<String, BadParam> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        BadParam(format!(
                            "error parsing form values: invalid URL escape \"{}\"",
                            String::from_utf8_lossy(&raw[i..(i + 3).min(raw.len())])
                        ))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| BadParam("error parsing form values: not UTF-8 after decoding".into()))
}

/// Unix seconds (`1763251200`, `1763251200.5`) or RFC 3339, to milliseconds
/// within the years the store holds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse \"{text}\" to a valid timestamp");
    let ms = if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() {
            return Err(bad());
        }
        let ms = (secs * 1000.0).round();
        if ms.abs() >= 9.2e18 {
            return Err(bad());
        }
        ms as i64
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|_| bad())?
            .timestamp_millis()
    };
    if crate::time::is_stored(ms) {
        Ok(ms)
    } else {
        Err(format!(
            "\"{text}\" is outside the years 0000-9999 that the store holds"
        ))
    }
}

/// Seconds (`15`, `0.5`) or a duration (`15s`, `1m30s`), to milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse \"{text}\" to a valid duration");
    if let Ok(secs) = text.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() >= 9.2e18 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    crate::time::parse_duration_ms(text).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_and_keep_repeated_keys() {
        let p =
            Params(parse_form(b"match%5B%5D=up&match[]=a%7Bb%3D%22c+d%22%7D&empty=&x").unwrap());
        assert_eq!(p.all("match[]"), ["up", "a{b=\"c d\"}"]);
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("x"), None);
        assert!(
            parse_form(b"q=%zz")
                .unwrap_err()
                .0
                .contains("invalid URL escape")
        );
        assert!(parse_form(b"q=%ff").unwrap_err().0.contains("UTF-8"));
    }

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1763251200").unwrap(), 1_763_251_200_000);
        assert_eq!(parse_time("1763251200.123").unwrap(), 1_763_251_200_123);
        assert_eq!(
            parse_time("2025-11-16T00:00:00Z").unwrap(),
            1_763_251_200_000
        );
        assert_eq!(
            parse_time("2025-11-16T01:00:00.5+01:00").unwrap(),
            1_763_251_200_500
        );
        for bad in ["", "NaN", "inf", "soon", "1e300"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert!(
            parse_time("-99999999999")
                .unwrap_err()
                .contains("0000-9999")
        );
    }

    #[test]
    fn durations_are_seconds_or_units() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.25").unwrap(), 250);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("fast").is_err());
        let p = Params(vec![("limit".into(), "-1".into())]);
        assert!(p.limit("limit").is_err());
    }
}
