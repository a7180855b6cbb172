//! `webhook` actions for real: POST Alertmanager's version 4 webhook payload
//! ([`super::alertmanager`]), retry 5xx answers and timeouts with backoff
//! and jitter (never a 4xx), and send an idempotency key (the alert's
//! fingerprint and the episode's start) so a receiver can drop a repeat.
//!
//! Backoff is exponential with full jitter (a random wait between zero and
//! the doubled cap), so that many alerts retrying against one receiver
//! spread out rather than arrive together. Attempts and the total time are
//! both bounded: a webhook action ends within [`RetryOptions::total`] plus
//! one attempt's timeout.

use super::alertmanager::WebhookMessage;
use super::journal::{ActionResult, Outcome};
use std::time::{Duration, Instant};

/// How a webhook is retried.
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Attempts in all, the first included (at least one).
    pub attempts: u32,
    /// One attempt's limit, from connecting to the end of the answer.
    pub attempt_timeout: Duration,
    /// The first backoff's cap; each retry doubles it, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts after this much time from the first attempt.
    pub total: Duration,
}

impl Default for RetryOptions {
    fn default() -> RetryOptions {
        RetryOptions {
            attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            total: Duration::from_secs(60),
        }
    }
}

/// The header that carries the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The idempotency key of an alert episode's webhook: the alert's
/// fingerprint and the episode's start (ms), `<fingerprint>-<start>`. Every
/// retry, and a repeat for the same episode, sends the same key.
pub fn idempotency_key(fingerprint: &str, episode_start_ms: i64) -> String {
    format!("{fingerprint}-{episode_start_ms}")
}

/// How one attempt ended.
enum Attempt {
    /// An answer: its status and the start of its body.
    Answer(u16, String),
    TimedOut(String),
    /// No answer (refused, reset, DNS): worth a retry.
    Unreachable(String),
}

/// POSTs `message` as JSON to `url` with the idempotency key, retrying a
/// 5xx or 429 answer, a timeout or a connection failure; a 2xx is `Ok`,
/// anything else `Failed` at once; retries spent end `Failed` (an error
/// answer or no connection) or `Timeout`.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    message: &WebhookMessage,
    idempotency_key: &str,
    opts: &RetryOptions,
) -> ActionResult {
    let started = Instant::now();
    let result = |outcome, status: Option<u16>, detail: String, body: String| ActionResult {
        outcome,
        exit_code: None,
        status,
        duration_ms: started.elapsed().as_millis() as i64,
        stdout: body,
        stderr: String::new(),
        detail,
    };
    let body = match serde_json::to_vec(message) {
        Ok(b) => b,
        Err(e) => {
            return result(
                Outcome::Failed,
                None,
                format!("payload: {e}"),
                String::new(),
            );
        }
    };
    let attempts = opts.attempts.max(1);
    let mut rng = Jitter::new(idempotency_key);
    let mut n = 0;
    loop {
        n += 1;
        let attempt = post(client, url, &body, idempotency_key, opts.attempt_timeout).await;
        let tries = if n == 1 {
            "1 attempt".to_string()
        } else {
            format!("{n} attempts")
        };
        let retryable = match &attempt {
            Attempt::Answer(status, body) if (200..300).contains(status) => {
                return result(
                    Outcome::Ok,
                    Some(*status),
                    format!("HTTP {status} after {tries}"),
                    body.clone(),
                );
            }
            Attempt::Answer(status, _) => *status >= 500 || *status == 429,
            Attempt::TimedOut(_) | Attempt::Unreachable(_) => true,
        };
        // Full jitter: a wait anywhere in [0, cap], cap doubling per retry.
        let cap = opts
            .initial_backoff
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(opts.max_backoff);
        let wait = rng.below(cap);
        let out_of_time = started.elapsed() + wait >= opts.total;
        if !retryable || n >= attempts || out_of_time {
            let why = if retryable && n < attempts {
                " (retries out of time)"
            } else {
                ""
            };
            return match attempt {
                Attempt::Answer(status, body) => result(
                    Outcome::Failed,
                    Some(status),
                    format!("HTTP {status} after {tries}{why}"),
                    body,
                ),
                Attempt::TimedOut(e) => result(
                    Outcome::Timeout,
                    None,
                    format!("timed out after {tries}{why}: {e}"),
                    String::new(),
                ),
                Attempt::Unreachable(e) => result(
                    Outcome::Failed,
                    None,
                    format!("no answer after {tries}{why}: {e}"),
                    String::new(),
                ),
            };
        }
        tokio::time::sleep(wait).await;
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    key: &str,
    timeout: Duration,
) -> Attempt {
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_HEADER, key)
        .body(body.to_vec())
        .timeout(timeout)
        .send();
    // The request's own timeout covers the body as reqwest reads it; this
    // one bounds the whole exchange whatever the client was built with.
    let exchange = async {
        let answer = request.await?;
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, text))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Attempt::TimedOut(format!(
            "no answer within {}",
            crate::time::format_duration_ms(timeout.as_millis() as i64)
        )),
        Ok(Ok((status, text))) => Attempt::Answer(status, text.chars().take(1024).collect()),
        Ok(Err(e)) if e.is_timeout() => Attempt::TimedOut(crate::error_chain(&e)),
        Ok(Err(e)) => Attempt::Unreachable(crate::error_chain(&e)),
    }
}

/// A small generator for the backoff's jitter (xorshift64*), seeded from
/// the clock and the key: jitter needs spread, not secrecy.
struct Jitter(u64);

impl Jitter {
    fn new(key: &str) -> Jitter {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(key.as_bytes());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Jitter(h.finish() | 1)
    }

    /// A duration in `[0, cap]`.
    fn below(&mut self, cap: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(if nanos == 0 { 0 } else { r % (nanos + 1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_cap() {
        let mut j = Jitter::new("k");
        let cap = Duration::from_millis(100);
        let waits: Vec<Duration> = (0..1000).map(|_| j.below(cap)).collect();
        assert!(waits.iter().all(|w| *w <= cap));
        // Spread over the range, not stuck at one end.
        assert!(waits.iter().any(|w| *w < cap / 4));
        assert!(waits.iter().any(|w| *w > cap * 3 / 4));
        assert_eq!(j.below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_key_is_fingerprint_and_episode_start() {
        assert_eq!(
            idempotency_key("0123456789abcdef", 1_700_000_000_000),
            "0123456789abcdef-1700000000000"
        );
    }
}
