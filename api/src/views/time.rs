//! The API's one time format: instants are ISO 8601 UTC strings with milliseconds
//! (`2026-12-03T10:15:00.000Z`), durations are seconds, days are `YYYY-MM-DD`. Query parameters
//! take an instant as ISO 8601 or as Unix seconds (as Strava's `after`/`before` do).

use chrono::{DateTime, NaiveDate, SecondsFormat};

/// An instant (Unix ms) as ISO 8601 UTC with milliseconds.
pub fn iso_instant(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms}"), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A day counted from 1970-01-01 as `YYYY-MM-DD`.
pub fn iso_day(days_since_epoch: i64) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days_since_epoch)))
        .map_or_else(|| days_since_epoch.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// An instant given as ISO 8601 (RFC 3339, with an offset) or as Unix seconds, in Unix ms.
pub fn parse_instant_ms(text: &str) -> Option<i64> {
    match text.parse::<i64>() {
        Ok(seconds) => seconds.checked_mul(1000),
        Err(_) => DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_days_render_as_iso_8601_and_instants_parse_either_way() {
        assert_eq!(iso_instant(1_780_000_000_123), "2026-05-28T20:26:40.123Z");
        assert_eq!(iso_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_day(20_783), "2026-11-26");
        assert_eq!(iso_day(0), "1970-01-01");
        assert_eq!(parse_instant_ms("2026-05-28T20:26:40.123Z"), Some(1_780_000_000_123));
        assert_eq!(parse_instant_ms("2026-05-28T22:26:40+02:00"), Some(1_780_000_000_000));
        assert_eq!(parse_instant_ms("1780000000"), Some(1_780_000_000_000));
        assert_eq!(parse_instant_ms("yesterday"), None);
        assert_eq!(parse_instant_ms(&i64::MAX.to_string()), None);
    }
}
