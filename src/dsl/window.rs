//! Maintenance windows: `"Sat 02:00-04:00 UTC"`.
//!
//! Form: `[DAYS] HH:MM-HH:MM [ZONE]`.
//! - DAYS: `daily` (the default), `weekdays`, `weekends`, or a comma list of
//!   `Mon`..`Sun` and ranges such as `Mon-Fri` (case-insensitive, 3 letters
//!   or the full name).
//! - The slot starts on each listed day at the first time and ends at the
//!   second; an end at or before the start runs past midnight into the next
//!   day (`Sat 23:00-01:00`). `24:00` is allowed as an end.
//! - ZONE: `UTC` (the default), `Z`, or a fixed offset `+02:00` / `-0500`
//!   (no time-zone database: fixed offsets only).

use crate::time::{DAY_MS, MINUTE_MS as MIN_MS};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Bit 0 is Monday ... bit 6 Sunday.
    pub days: u8,
    /// Minutes after local midnight.
    pub start_min: u32,
    pub end_min: u32,
    /// Offset of the zone from UTC in minutes.
    pub offset_min: i32,
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn day_index(s: &str) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| l.len() >= 3 && d.starts_with(&l))
        .map(|i| i as u32)
}

fn parse_hm(s: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_zone(s: &str) -> Option<i32> {
    let u = s.to_ascii_uppercase();
    if u == "UTC" || u == "Z" || u == "GMT" {
        return Some(0);
    }
    let rest = u.strip_prefix("UTC").unwrap_or(&u);
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits = digits.replace(':', "");
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

impl Window {
    /// Parses a window; the error says what was expected.
    pub fn parse(text: &str) -> Result<Window, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(time_at) = words
            .iter()
            .position(|w| w.contains(':') && w.contains('-'))
        else {
            return Err(
                "expected a time range such as `02:00-04:00`, optionally after days (`Sat`, `Mon-Fri`) and before a zone (`UTC`)"
                    .into(),
            );
        };
        let days = if time_at == 0 {
            0x7f
        } else {
            parse_days(&words[..time_at].join(" "))?
        };
        let (a, b) = words[time_at].split_once('-').unwrap_or(("", ""));
        let start_min = parse_hm(a, false)
            .ok_or_else(|| format!("`{a}` is not a time of day such as `02:00`"))?;
        let end_min = parse_hm(b, true)
            .ok_or_else(|| format!("`{b}` is not a time of day such as `04:00`"))?;
        if start_min == end_min {
            return Err(format!("the window `{}` is empty", words[time_at]));
        }
        let offset_min = match &words[time_at + 1..] {
            [] => 0,
            [z] => parse_zone(z).ok_or_else(|| {
                format!("`{z}` is not a zone: use `UTC` or a fixed offset such as `+02:00`")
            })?,
            more => {
                return Err(format!(
                    "unexpected `{}` after the zone",
                    more[1..].join(" ")
                ));
            }
        };
        Ok(Window {
            days,
            start_min,
            end_min,
            offset_min,
        })
    }

    fn len_ms(&self) -> i64 {
        let len = if self.end_min > self.start_min {
            self.end_min - self.start_min
        } else {
            self.end_min + 24 * 60 - self.start_min
        };
        len as i64 * MIN_MS
    }

    /// The slot (start, end) in ms UTC that contains `t`, or the next one after it.
    pub fn slot_at_or_after(&self, t: i64) -> (i64, i64) {
        let off = self.offset_min as i64 * MIN_MS;
        let local = t + off;
        let day0 = local.div_euclid(DAY_MS) - 1;
        for d in day0..day0 + 9 {
            // 1970-01-01 was a Thursday (index 3).
            let weekday = (d + 3).rem_euclid(7) as u32;
            if self.days & (1 << weekday) == 0 {
                continue;
            }
            let start = d * DAY_MS + self.start_min as i64 * MIN_MS - off;
            let end = start + self.len_ms();
            if end > t {
                return (start, end);
            }
        }
        // Unreachable for a window with at least one day; keep it total.
        (t, t)
    }

    /// Whether `t` (ms UTC) falls inside a slot.
    pub fn contains(&self, t: i64) -> bool {
        let (s, e) = self.slot_at_or_after(t);
        s <= t && t < e
    }
}

fn parse_days(s: &str) -> Result<u8, String> {
    let l = s.trim().to_ascii_lowercase();
    match l.as_str() {
        "daily" | "every day" | "*" => return Ok(0x7f),
        "weekdays" => return Ok(0x1f),
        "weekends" => return Ok(0x60),
        _ => {}
    }
    let mut mask = 0u8;
    for part in l.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("`{part}` is not a day such as `Sat` or a range such as `Mon-Fri`");
        if let Some((a, b)) = part.split_once('-') {
            let a = day_index(a.trim()).ok_or_else(bad)?;
            let b = day_index(b.trim()).ok_or_else(bad)?;
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        } else {
            mask |= 1 << day_index(part).ok_or_else(bad)?;
        }
    }
    if mask == 0 {
        return Err(format!("`{s}` names no day"));
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-11-22 is a Saturday.
    const SAT: i64 = 1_763_769_600_000;

    #[test]
    fn parses_the_forms() {
        let w = Window::parse("Sat 02:00-04:00 UTC").unwrap();
        assert_eq!(
            (w.days, w.start_min, w.end_min, w.offset_min),
            (1 << 5, 120, 240, 0)
        );
        assert_eq!(
            Window::parse("Mon-Fri 22:00-02:00 +01:00").unwrap().days,
            0x1f
        );
        assert_eq!(
            Window::parse("Fri-Mon 01:00-02:00").unwrap().days,
            0b111_0001
        );
        assert_eq!(Window::parse("03:00-04:00").unwrap().days, 0x7f);
        assert_eq!(
            Window::parse("sat,sunday 00:00-24:00 Z").unwrap().days,
            0x60
        );
        for bad in [
            "Sat",
            "Sat 2:00",
            "Sat 02:00-02:00",
            "Sad 02:00-03:00",
            "Sat 25:00-26:00",
            "Sat 01:00-02:00 CET",
            "",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_slots() {
        let w = Window::parse("Sat 02:00-04:00 UTC").unwrap();
        assert!(w.contains(SAT + 3 * 3_600_000));
        assert!(!w.contains(SAT + 4 * 3_600_000));
        assert_eq!(
            w.slot_at_or_after(SAT + 5 * 3_600_000).0,
            SAT + 7 * DAY_MS + 2 * 3_600_000
        );
        let z = Window::parse("Sat 02:00-04:00 +02:00").unwrap();
        assert!(z.contains(SAT + 30 * 60_000), "02:30 local is 00:30 UTC");
        let wrap = Window::parse("Fri 23:00-01:00").unwrap();
        assert!(wrap.contains(SAT + 30 * 60_000));
    }
}
