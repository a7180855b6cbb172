//! `webhook` actions for real: POST Alertmanager's version 4 webhook payload
//! ([`super::alertmanager`]), retry 5xx answers and timeouts with backoff
//! and jitter (never a 4xx), and send an idempotency key (the alert's
//! fingerprint and the episode's start) so a receiver can drop a repeat.
