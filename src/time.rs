//! Time for every part of pcapd: [`Timestamp`] (job records: milliseconds since the Unix
//! epoch, written as RFC 3339 UTC strings with milliseconds, `2024-05-01T12:00:00.123Z`) and
//! the civil-date conversions (syslog headers, log times).
//!
//! The record and the wire carry the string form; in memory a [`Timestamp`] is an integer so
//! that ordering, age checks and injected test clocks are plain arithmetic. The civil-date
//! conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`, which are exact for
//! the proleptic Gregorian calendar; no date crate is needed for this one format.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a string is not an RFC 3339 timestamp we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp ({reason}): {value:?}")]
pub struct TimestampError {
    pub value: String,
    pub reason: &'static str,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                Timestamp(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX))
            }
        }
    }

    pub const fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating at the far future.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`. Fractions finer than a
    /// millisecond are truncated; `t`, `z` and a space separator are accepted as RFC 3339 allows.
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        let fail = |reason| TimestampError {
            value: text.to_owned(),
            reason,
        };
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !text.is_ascii() {
            return Err(fail("too short"));
        }
        let number = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let digits = &bytes[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(fail("expected digits"));
            }
            Ok(digits
                .iter()
                .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0')))
        };
        let separators_ok = bytes[4] == b'-'
            && bytes[7] == b'-'
            && matches!(bytes[10], b'T' | b't' | b' ')
            && bytes[13] == b':'
            && bytes[16] == b':';
        if !separators_ok {
            return Err(fail("bad separators"));
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(fail("no such date"));
        }
        // Second 60 is a leap second; it is folded into the next second like most systems do.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(fail("no such time of day"));
        }

        let mut rest = &bytes[19..];
        let mut millis = 0i64;
        if let Some(fraction) = rest.strip_prefix(b".") {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return Err(fail("empty fraction"));
            }
            for (position, digit) in fraction[..digits.min(3)].iter().enumerate() {
                millis += i64::from(digit - b'0') * [100, 10, 1][position];
            }
            rest = &fraction[digits..];
        }
        let offset_minutes = match rest {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let offset = [h1, h2, m1, m2];
                if !offset.iter().all(|b| b.is_ascii_digit()) {
                    return Err(fail("bad offset"));
                }
                let hours = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
                let minutes = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
                if hours > 23 || minutes > 59 {
                    return Err(fail("bad offset"));
                }
                let total = hours * 60 + minutes;
                if *sign == b'-' {
                    -total
                } else {
                    total
                }
            }
            _ => return Err(fail("expected Z or a numeric offset")),
        };

        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
        Ok(Timestamp(seconds * 1_000 + millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000);
        let millis = self.0.rem_euclid(1_000);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            second_of_day / 3_600,
            second_of_day % 3_600 / 60,
            second_of_day % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789 UTC.
        assert_eq!(
            Timestamp::from_unix_millis(951_827_696_789).to_string(),
            "2000-02-29T12:34:56.789Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_700_000_000_000).to_string(),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_round_trips_every_day_across_four_centuries() {
        // One instant per 997 minutes from 1900 to 2300 hits every month, leap rule and
        // time of day combination often enough to catch an off-by-one in either direction.
        let start = Timestamp::parse("1900-01-01T00:00:00.000Z").unwrap();
        let end = Timestamp::parse("2300-01-01T00:00:00.000Z").unwrap();
        let mut at = start.unix_millis();
        while at < end.unix_millis() {
            let stamp = Timestamp::from_unix_millis(at);
            assert_eq!(Timestamp::parse(&stamp.to_string()), Ok(stamp));
            at += 997 * 60_000 + 7;
        }
    }

    #[test]
    fn parse_accepts_offsets_and_fractions() {
        let utc = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(Timestamp::parse("2024-05-01T14:30:00+02:30"), Ok(utc));
        assert_eq!(Timestamp::parse("2024-05-01t07:00:00-05:00"), Ok(utc));
        let fine = Timestamp::parse("2024-05-01T12:00:00.1239Z").unwrap();
        assert_eq!(fine.unix_millis() - utc.unix_millis(), 123);
        let coarse = Timestamp::parse("2024-05-01T12:00:00.5Z").unwrap();
        assert_eq!(coarse.unix_millis() - utc.unix_millis(), 500);
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024/05/01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let stamp = Timestamp::from_unix_millis(1_700_000_000_123);
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stamp);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
