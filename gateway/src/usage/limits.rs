//! Limit arithmetic: metering periods, when the next one starts, which threshold notices a
//! counter has reached. (The limits themselves are `switchboard_crds::effective_limits`.)
//! Pure functions, unit tested.

use chrono::{Datelike, TimeZone, Utc};

/// The metering period of a Unix-ms instant: `YYYY-MM` in UTC.
pub fn period_of(now_ms: i64) -> String {
    let at = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now);
    format!("{:04}-{:02}", at.year(), at.month())
}

/// Seconds from `now_ms` to the start of the next period (the `Retry-After` of a monthly limit).
pub fn seconds_until_next_period(now_ms: i64) -> u64 {
    let at = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now);
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(now_ms + 86_400_000);
    u64::try_from((next - now_ms).max(1_000) / 1_000).unwrap_or(1)
}

/// Threshold levels (percent) that `value` has reached against `limit`.
pub fn levels_reached(value: i64, limit: Option<u64>) -> Vec<i64> {
    let Some(limit) = limit.and_then(|l| i64::try_from(l).ok()).filter(|l| *l > 0) else {
        return Vec::new();
    };
    [80, 100]
        .into_iter()
        .filter(|level| value.saturating_mul(100) >= level * limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_retry_after() {
        // 2026-11-30T23:59:00Z
        let late = 1_796_083_140_000;
        assert_eq!(period_of(late), "2026-11");
        assert_eq!(seconds_until_next_period(late), 60);
        // 2026-12-31T23:00:00Z rolls into January.
        assert_eq!(seconds_until_next_period(1_798_758_000_000), 3_600);
    }

    #[test]
    fn threshold_levels() {
        assert!(levels_reached(39, Some(50)).is_empty());
        assert_eq!(levels_reached(40, Some(50)), vec![80]);
        assert_eq!(levels_reached(50, Some(50)), vec![80, 100]);
        assert!(levels_reached(10_000, None).is_empty());
    }
}
