//! One scrape's HTTP exchange, as Prometheus makes it: its Accept header
//! (OpenMetrics 1.0.0 preferred, then text 0.0.4), gzip, the scrape timeout
//! in a header, one deadline over the request and the whole body, and the
//! body size limit counted on the uncompressed bytes as they arrive (a gzip
//! bomb or an endless body stops at the limit, never buffered whole).

use super::Target;
use super::round::Failure;
use crate::error_chain;
use std::time::Duration;

/// The Accept header of Prometheus 2.x.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A scraped body, uncompressed, and the Content-Type it came with.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// Fetches the target's endpoint once; any failure (refused, a status
/// other than 200, the body limit, the deadline) as a [`Failure`].
pub async fn fetch(client: &reqwest::Client, target: &Target) -> Result<Body, Failure> {
    let exchange = async {
        let mut response = client
            .get(target.url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format_seconds(target.timeout),
            )
            .send()
            .await
            .map_err(|e| Failure::Http(error_chain(&e)))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(Failure::Http(format!(
                "server returned HTTP status {status}"
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let limit = target.body_size_limit.unwrap_or(u64::MAX);
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Http(format!("reading the body: {}", error_chain(&e))))?
        {
            // Prometheus fails a body that reaches the limit.
            if bytes.len() as u64 + chunk.len() as u64 >= limit {
                return Err(Failure::BodySizeLimit(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes,
            content_type,
        })
    };
    match tokio::time::timeout(target.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout(target.timeout)),
    }
}

/// `1.5`, `10`: seconds as Prometheus writes the header.
fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}
