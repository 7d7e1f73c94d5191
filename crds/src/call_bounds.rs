//! Bounds on call data from outside (carrier callbacks, PBX CDRs, runtime events): what the
//! gateway stores, bills and sums. One definition for every source, so that no record can make
//! a sum overflow (`/calls/stats`) or bill an absurd number of minutes.

/// Longest call the platform records, in seconds (24 h, the longest call Twilio and Telnyx
/// allow). With every duration at most this, summing 10^14 calls still fits an `i64`.
pub const MAX_CALL_DURATION_SECS: i64 = 24 * 3600;

/// Earliest call time accepted, Unix milliseconds (2000-01-01T00:00:00Z).
pub const EARLIEST_CALL_TIME_MS: i64 = 946_684_800_000;

/// How far in the future a reported call time may lie, in milliseconds (clock skew of the
/// reporting PBX or carrier).
pub const MAX_FUTURE_SKEW_MS: i64 = 24 * 3600 * 1000;

/// A reported duration brought into `0..=MAX_CALL_DURATION_SECS` (for signed carrier
/// callbacks, which are trusted to be the carrier's but not to be sane).
pub fn clamp_duration(seconds: i64) -> i64 {
    seconds.clamp(0, MAX_CALL_DURATION_SECS)
}

/// Whether a duration is within bounds (for CDRs, which are refused when not).
pub fn duration_in_bounds(seconds: i64) -> bool {
    (0..=MAX_CALL_DURATION_SECS).contains(&seconds)
}

/// Whether a call time (Unix ms) lies between [`EARLIEST_CALL_TIME_MS`] and `now_ms` plus
/// [`MAX_FUTURE_SKEW_MS`].
pub fn time_in_bounds(at_ms: i64, now_ms: i64) -> bool {
    at_ms >= EARLIEST_CALL_TIME_MS && at_ms <= now_ms.saturating_add(MAX_FUTURE_SKEW_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_are_bounded() {
        assert_eq!(clamp_duration(i64::MAX), MAX_CALL_DURATION_SECS);
        assert_eq!(clamp_duration(-5), 0);
        assert!(duration_in_bounds(0) && duration_in_bounds(MAX_CALL_DURATION_SECS));
        assert!(!duration_in_bounds(-1) && !duration_in_bounds(i64::MAX));
        let now = 1_800_000_000_000;
        assert!(time_in_bounds(now, now));
        assert!(!time_in_bounds(0, now));
        assert!(!time_in_bounds(i64::MAX, now));
        assert!(!time_in_bounds(now + MAX_FUTURE_SKEW_MS + 1, now));
    }
}
