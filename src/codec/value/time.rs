//! Dates, times of day and timestamps of schema formats as ISO 8601 text, and back.

use jaq_json::Val;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::error::FitError;
use super::fit;

const EPOCH: Date = Date::constant(1970, 1, 1);

fn unit(digits: u8) -> i64 {
    10i64.pow(digits as u32)
}

fn text(s: String) -> Val {
    Val::utf8_str(s.into_bytes())
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (the number itself when out of range).
pub fn date(days: i32) -> Val {
    match EPOCH.checked_add(jiff::Span::new().days(days)) {
        Ok(d) => text(d.to_string()),
        Err(_) => Val::from(days as isize),
    }
}

/// A time of day in units of `10^-digits` s as `HH:MM:SS.fff` (with `digits` digits).
pub fn time(units: i64, digits: u8) -> Val {
    let nanos = units.checked_mul(1_000_000_000 / unit(digits));
    match nanos.and_then(|n| Time::MIN.checked_add(SignedDuration::from_nanos(n)).ok()) {
        Some(t) if (0..86_400 * unit(digits)).contains(&units) => {
            text(t.strftime(&format!("%H:%M:%S%.{digits}f")).to_string())
        }
        _ => Val::from(units as isize),
    }
}

/// A timestamp in units of `10^-digits` s since the epoch as RFC 3339 text, in UTC with `Z`,
/// or without an offset for a local timestamp (`utc` false).
pub fn timestamp(units: i64, digits: u8, utc: bool) -> Val {
    let nanos = units as i128 * (1_000_000_000 / unit(digits)) as i128;
    match Timestamp::from_nanosecond(nanos) {
        Ok(ts) => {
            let zone = if utc { "Z" } else { "" };
            let format = format!("%Y-%m-%dT%H:%M:%S%.{digits}f{zone}");
            text(ts.to_zoned(TimeZone::UTC).strftime(&format).to_string())
        }
        Err(_) => Val::from(units as isize),
    }
}

/// A date from `YYYY-MM-DD` text or a number of days.
pub fn date_from(val: &Val) -> Result<i32, FitError> {
    let Val::TStr(s) = val else {
        return fit::int(val);
    };
    let s = fit::utf8(s)?;
    let d = s.parse::<Date>().map_err(|e| FitError::NotDate {
        text: s.clone(),
        reason: e.to_string(),
    })?;
    let span = EPOCH.until(d).map_err(|e| FitError::Calendar {
        text: s.clone(),
        reason: e.to_string(),
    })?;
    Ok(span.get_days())
}

/// A time of day in units of `10^-digits` s from `HH:MM:SS[.fff]` text or a number.
pub fn time_from(val: &Val, digits: u8) -> Result<i64, FitError> {
    let Val::TStr(s) = val else {
        return fit::long(val);
    };
    let s = fit::utf8(s)?;
    let t = s.parse::<Time>().map_err(|e| FitError::NotTime {
        text: s.clone(),
        reason: e.to_string(),
    })?;
    let nanos = Time::MIN.duration_until(t).as_nanos();
    Ok((nanos / (1_000_000_000 / unit(digits)) as i128) as i64)
}

/// A timestamp in units of `10^-digits` s from RFC 3339 text (with an offset; a local
/// timestamp, `utc` false, also without) or a number.
pub fn timestamp_from(val: &Val, digits: u8, utc: bool) -> Result<i64, FitError> {
    let Val::TStr(s) = val else {
        return fit::long(val);
    };
    let s = fit::utf8(s)?;
    let ts: Timestamp = match s.parse() {
        Ok(ts) => ts,
        Err(e) if utc => {
            return Err(FitError::NotTimestamp {
                text: s,
                reason: e.to_string(),
            });
        }
        Err(_) => local(&s)?,
    };
    let units = ts.as_nanosecond() / (1_000_000_000 / unit(digits)) as i128;
    i64::try_from(units).map_err(|_| FitError::OutOfRange(s))
}

/// A local timestamp's text (without an offset), read as UTC.
fn local(s: &str) -> Result<Timestamp, FitError> {
    let dt = s
        .parse::<jiff::civil::DateTime>()
        .map_err(|e| FitError::NotDateTime {
            text: s.to_string(),
            reason: e.to_string(),
        })?;
    let zoned = dt.to_zoned(TimeZone::UTC).map_err(|e| FitError::Calendar {
        text: s.to_string(),
        reason: e.to_string(),
    })?;
    Ok(zoned.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Val) -> String {
        match v {
            Val::TStr(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trips_through_text() {
        assert_eq!(s(date(19_000)), "2022-01-08");
        assert_eq!(date_from(&date(19_000)), Ok(19_000));
        assert_eq!(date_from(&date(-1)), Ok(-1));
        assert_eq!(s(time(3_723_004, 3)), "01:02:03.004");
        assert_eq!(time_from(&time(3_723_004, 3), 3), Ok(3_723_004));
        assert_eq!(
            s(timestamp(1_700_000_000_123, 3, true)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            s(timestamp(1_700_000_000_123_456, 6, false)),
            "2023-11-14T22:13:20.123456"
        );
        for (units, digits, utc) in [
            (1_700_000_000_123i64, 3u8, true),
            (-5, 6, false),
            (7, 9, true),
        ] {
            assert_eq!(
                timestamp_from(&timestamp(units, digits, utc), digits, utc),
                Ok(units)
            );
        }
        let offset = Val::utf8_str("2023-11-15T00:13:20.123+02:00");
        assert_eq!(timestamp_from(&offset, 3, true), Ok(1_700_000_000_123));
        assert_eq!(timestamp_from(&Val::from(42isize), 3, true), Ok(42));
    }
}
