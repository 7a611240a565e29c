//! UTC instants with nanosecond resolution, and their RFC 3339 text form.
//!
//! trilink keeps time as signed nanoseconds since 1970-01-01T00:00:00Z (UTC, leap seconds not
//! counted, as POSIX does). An `i64` of nanoseconds spans the years 1678 to 2262, which covers
//! every date this system will see. The civil-date conversion is Howard Hinnant's
//! `days_from_civil` algorithm, which is exact over that span.

use std::fmt;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Unix time of the J2000.0 epoch, 2000-01-01T12:00:00 (taken here as UTC).
const J2000_UNIX_SECONDS: i64 = 946_728_000;

/// An instant in UTC, nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UtcNanos(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("failed to parse time {text:?}: {reason} (expected RFC 3339 UTC such as 2026-05-14T05:27:00.5Z)")]
    Malformed { text: String, reason: &'static str },
    #[error("failed to represent time: {0} is outside the years 1678..2262")]
    OutOfRange(String),
}

impl UtcNanos {
    pub const fn from_nanos(nanos: i64) -> UtcNanos {
        UtcNanos(nanos)
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Days since J2000.0 (2000-01-01T12:00:00), computed without the precision loss of a
    /// Julian date (a JD in f64 resolves only ~40 µs).
    pub fn days_since_j2000(self) -> f64 {
        let secs = self.0.div_euclid(NANOS_PER_SECOND) - J2000_UNIX_SECONDS;
        let frac = self.0.rem_euclid(NANOS_PER_SECOND) as f64 * 1e-9;
        (secs as f64 + frac) / SECONDS_PER_DAY as f64
    }

    /// This instant plus `secs` seconds (rounded to the nearest nanosecond; saturating at the
    /// ends of the representable range, NaN adding nothing).
    pub fn add_secs_f64(self, secs: f64) -> UtcNanos {
        UtcNanos(self.0.saturating_add((secs * 1e9).round() as i64))
    }

    /// Seconds from `earlier` to `self`.
    pub fn secs_since(self, earlier: UtcNanos) -> f64 {
        (i128::from(self.0) - i128::from(earlier.0)) as f64 * 1e-9
    }

    /// Builds an instant from a civil UTC date and time.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Result<UtcNanos, TimeError> {
        let describe = || format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60
            && nanos < 1_000_000_000;
        if !valid {
            return Err(TimeError::Malformed { text: describe(), reason: "no such date or time of day" });
        }
        let days = days_from_civil(year, month, day);
        let secs = days * SECONDS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        secs.checked_mul(NANOS_PER_SECOND)
            .and_then(|n| n.checked_add(i64::from(nanos)))
            .map(UtcNanos)
            .ok_or_else(|| TimeError::OutOfRange(describe()))
    }

    /// Parses RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (a `+00:00` offset is accepted too).
    pub fn parse_rfc3339(text: &str) -> Result<UtcNanos, TimeError> {
        let bad = |reason| TimeError::Malformed { text: text.to_string(), reason };
        let b = text.as_bytes();
        if b.len() < 19 {
            return Err(bad("too short"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, TimeError> {
            let part = &b[range];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
            } else {
                Err(bad("expected digits"))
            }
        };
        if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
            return Err(bad("separators misplaced"));
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut rest = &b[19..];
        let mut nanos = 0u32;
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return Err(bad("fraction must have 1 to 9 digits"));
            }
            let frac = num(20..20 + digits)?;
            nanos = frac * 10u32.pow(9 - digits as u32);
            rest = &rest[1 + digits..];
        }
        match rest {
            b"Z" | b"z" | b"+00:00" | b"-00:00" => {}
            b"" => return Err(bad("no time zone; it must end in Z (UTC)")),
            _ => return Err(bad("time zone must be Z (UTC)")),
        }
        UtcNanos::from_civil(i64::from(year), month, day, hour, minute, second, nanos)
            .map_err(|_| bad("no such date or time of day"))
    }

    /// Splits into civil date and time of day (UTC).
    pub fn to_civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(NANOS_PER_SECOND);
        let nanos = self.0.rem_euclid(NANOS_PER_SECOND) as u32;
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let sod = secs.rem_euclid(SECONDS_PER_DAY) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, nanos)
    }
}

/// RFC 3339 with all nine fraction digits, so text order is time order: `2026-05-14T05:27:00.000000000Z`.
impl fmt::Display for UtcNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, n) = self.to_civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{n:09}Z")
    }
}

impl fmt::Debug for UtcNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcNanos({self})")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        let t = UtcNanos::parse_rfc3339("2000-01-01T12:00:00Z").unwrap();
        assert_eq!(t.as_nanos(), J2000_UNIX_SECONDS * NANOS_PER_SECOND);
        assert_eq!(t.days_since_j2000(), 0.0);
        let t = UtcNanos::parse_rfc3339("2026-05-14T05:27:00.5Z").unwrap();
        assert_eq!(t.to_string(), "2026-05-14T05:27:00.500000000Z");
        assert_eq!(UtcNanos::parse_rfc3339("1970-01-01T00:00:00Z").unwrap().as_nanos(), 0);
        assert_eq!(
            UtcNanos::parse_rfc3339("2024-02-29T23:59:59.999999999+00:00").unwrap().to_string(),
            "2024-02-29T23:59:59.999999999Z"
        );
    }

    #[test]
    fn malformed_times_are_rejected() {
        for bad in [
            "",
            "2026-05-14",
            "2026-05-14T05:27:00",
            "2026-05-14T05:27:00+09:00",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-05-14T24:00:00Z",
            "2026-05-14T05:27:00.Z",
            "2026-05-14T05:27:00.1234567890Z",
            "2026/05/14T05:27:00Z",
            "2026-05-14T05:27:6xZ",
        ] {
            assert!(UtcNanos::parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn text_round_trips(nanos in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            let t = UtcNanos::from_nanos(nanos);
            prop_assert_eq!(UtcNanos::parse_rfc3339(&t.to_string()), Ok(t));
        }
    }
}
