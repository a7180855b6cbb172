//! Time values as people write them: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC),
//! `YYYY-MM-DD`, epoch seconds or milliseconds (told apart by magnitude),
//! `now` and `now-24h`; and durations such as `250ms`, `1h30m`, `2d`, `1w`.
//! All times are milliseconds since the Unix epoch, UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// One second in milliseconds, the unit of every time here.
pub const SECOND_MS: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds (UTC days: no leap seconds, no daylight saving).
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// Epoch numbers at or above this are milliseconds, below it seconds
/// (1e11 seconds is the year 5138; 1e11 milliseconds is 1973).
const EPOCH_MS_THRESHOLD: f64 = 1e11;

/// The first millisecond the store keeps, 0000-01-01T00:00:00Z: the store
/// names every day `YYYY-MM-DD`, so years have four digits.
pub const MIN_STORED_MS: i64 = -62_167_219_200_000;
/// The last millisecond the store keeps, 9999-12-31T23:59:59.999Z.
pub const MAX_STORED_MS: i64 = 253_402_300_799_999;

/// Whether the store can keep a sample at `ms`.
pub fn is_stored(ms: i64) -> bool {
    (MIN_STORED_MS..=MAX_STORED_MS).contains(&ms)
}

/// `ms` when the store can keep a sample at that time, else why not.
pub fn check_stored_range(ms: i64) -> Result<i64, String> {
    if is_stored(ms) {
        Ok(ms)
    } else {
        Err(format!(
            "timestamp {ms} ms is outside the years 0 to 9999 that the store keeps"
        ))
    }
}

/// Parses a point in time; `now_ms` anchors `now` and `now-DURATION`.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now_ms);
    }
    if let Some(rest) = t.strip_prefix("now-") {
        return Ok(now_ms - parse_duration_ms(rest)?);
    }
    parse_timestamp(t).ok_or_else(|| {
        format!(
            "`{t}` is not a time: expected RFC 3339 (2026-11-20T14:00:00Z), \
             `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD`, epoch seconds or milliseconds, or now-24h"
        )
    })
}

/// Parses an absolute timestamp in any of the detected forms, `None` if it is none of them.
pub fn parse_timestamp(t: &str) -> Option<i64> {
    let t = t.trim();
    let first = *t.as_bytes().first()?;
    if (first.is_ascii_digit() || first == b'-' || first == b'+')
        && let Some(ms) = parse_epoch(t)
    {
        return Some(ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

/// Epoch seconds or milliseconds, integer or decimal.
pub fn parse_epoch(t: &str) -> Option<i64> {
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(if (i.unsigned_abs() as f64) >= EPOCH_MS_THRESHOLD {
            i
        } else {
            i.checked_mul(1000)?
        });
    }
    let f: f64 = t.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let ms = if f.abs() >= EPOCH_MS_THRESHOLD {
        f
    } else {
        f * 1000.0
    };
    (ms.abs() < 9.2e18).then_some(ms.round() as i64)
}

/// Parses a duration such as `250ms`, `15s`, `5m`, `1h30m`, `2d`, `1w` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not a duration such as 250ms, 15s, 5m, 1h30m, 2d or 1w");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit_ms: i64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => SECOND_MS,
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => WEEK_MS,
            "y" => 365 * DAY_MS,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Milliseconds now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 text for a timestamp, to the second when it has no milliseconds.
pub fn format_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(dt) if ms % 1000 == 0 => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

/// The UTC day (`YYYY-MM-DD`) a timestamp falls in; the store partitions by it.
pub fn day_of(ms: i64) -> String {
    let day_index = ms.div_euclid(DAY_MS);
    match Utc.timestamp_millis_opt(day_index * DAY_MS).single() {
        Some(dt) => dt.format("%Y-%m-%d").to_string(),
        None => "invalid".to_string(),
    }
}

/// Human duration text: `1h30m`, `250ms`, `2d4h`.
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, size) in [
        ("d", DAY_MS as u64),
        ("h", HOUR_MS as u64),
        ("m", MINUTE_MS as u64),
        ("s", SECOND_MS as u64),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_time_form() {
        let t = 1_763_647_200_000; // 2025-11-20T14:00:00Z
        assert_eq!(parse_time("2025-11-20T14:00:00Z", 0), Ok(t));
        assert_eq!(parse_time("2025-11-20T15:00:00+01:00", 0), Ok(t));
        assert_eq!(parse_time("2025-11-20 14:00:00", 0), Ok(t));
        assert_eq!(parse_time("1763647200", 0), Ok(t));
        assert_eq!(parse_time("1763647200000", 0), Ok(t));
        assert_eq!(parse_time("1763647200.5", 0), Ok(t + 500));
        assert_eq!(parse_time("2025-11-20", 0), Ok(t - 14 * 3_600_000));
        assert_eq!(parse_time("now-1h", t), Ok(t - 3_600_000));
        assert!(parse_time("yesterday", 0).is_err());
        assert!(parse_time("2025-13-40", 0).is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Ok(172_800_000));
        assert_eq!(parse_duration_ms("1w"), Ok(604_800_000));
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("5x").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("99999999999999999w").is_err());
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
    }

    #[test]
    fn stored_range_is_years_0_to_9999() {
        assert_eq!(day_of(MIN_STORED_MS), "0000-01-01");
        assert_eq!(day_of(MAX_STORED_MS), "9999-12-31");
        assert_eq!(check_stored_range(MIN_STORED_MS), Ok(MIN_STORED_MS));
        assert_eq!(check_stored_range(MAX_STORED_MS), Ok(MAX_STORED_MS));
        for ms in [MIN_STORED_MS - 1, MAX_STORED_MS + 1, i64::MIN, i64::MAX] {
            let e = check_stored_range(ms).unwrap_err();
            assert!(e.contains("outside the years 0 to 9999"), "{e}");
        }
    }

    #[test]
    fn days_partition_utc() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(-1), "1969-12-31");
        assert_eq!(day_of(1_763_647_200_000), "2025-11-20");
    }
}
