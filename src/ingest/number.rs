//! Numbers and times as the text formats write them, parsed on the fast
//! path where it is exact (decimals of at most 15 digits, RFC 3339 in UTC)
//! and by the standard library or chrono otherwise.

/// Parses a float as written in the text formats: decimal, exponent, `NaN`,
/// `Inf`, `+Inf`, `-Inf` (any case).
#[inline]
pub(crate) fn parse_f64(bytes: &[u8]) -> Option<f64> {
    if let Some(v) = fast_decimal(bytes) {
        return Some(v);
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `[+-]digits[.digits]` with at most 15 digits: the integer and the power of
/// ten are exact in f64, so one division rounds correctly (Clinger's fast
/// path). Anything else is `None`.
#[inline]
fn fast_decimal(bytes: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut dot = None;
    for (i, &c) in digits.iter().enumerate() {
        if c.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(c - b'0');
            count += 1;
        } else if c == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return None;
        }
    }
    if count == 0 || count > 15 {
        return None;
    }
    let frac = dot.map_or(0, |d| digits.len() - d - 1);
    let v = mantissa as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Parses an optionally signed decimal integer.
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (neg, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        n = n.checked_mul(10).and_then(|n| {
            if neg {
                n.checked_sub(d)
            } else {
                n.checked_add(d)
            }
        })?;
    }
    Some(n)
}

/// Epoch numbers at or above this are milliseconds, below it seconds (as
/// [`crate::time::parse_epoch`] decides).
pub(crate) const EPOCH_MS_THRESHOLD: f64 = 1e11;

/// Parses a timestamp as [`crate::time::parse_timestamp`] does, with a fast
/// path for the common `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
pub(crate) fn parse_time_text(text: &str) -> Option<i64> {
    fast_rfc3339(text.as_bytes()).or_else(|| crate::time::parse_timestamp(text))
}

/// RFC 3339 with a 4-digit year, seconds below 60 and at most 9 fraction
/// digits; anything else is `None` (and left to chrono).
pub(super) fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<i64> {
        let mut n = 0i64;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        for k in 0..3 {
            millis = millis * 10
                + b.get(start + k)
                    .filter(|_| k < digits)
                    .map_or(0, |&c| i64::from(c - b'0'));
        }
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + millis)
}
