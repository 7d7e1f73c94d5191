//! How many calls a campaign may start now: never above `maxConcurrent` calls under way,
//! never more than `callsPerMinute` starts in any 60-second window, and starts spread
//! evenly (one per `60 s / callsPerMinute`) instead of a burst at the top of each minute.

use switchboard_crds::campaign::Pacing;

/// The sliding window `callsPerMinute` is judged over.
pub const RATE_WINDOW_MS: i64 = 60_000;

/// Most calls one pass claims for one campaign (bounds a claim transaction).
pub const MAX_CLAIM_PER_PASS: i64 = 200;

/// What the database says about a campaign's recent calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    /// Attempts dialling or on a call.
    pub active: i64,
    /// Attempts started within the last [`RATE_WINDOW_MS`].
    pub started_in_window: i64,
    /// Start of the latest attempt (dialer clock, Unix ms).
    pub last_start: Option<i64>,
}

/// Calls that may be started at `now_ms`.
pub fn free_slots(pacing: &Pacing, recent: Recent, now_ms: i64) -> i64 {
    let per_minute = i64::from(pacing.calls_per_minute.max(1));
    let by_concurrency = i64::from(pacing.max_concurrent.max(1)) - recent.active;
    let by_rate = per_minute - recent.started_in_window;
    let spacing_ms = (RATE_WINDOW_MS / per_minute).max(1);
    let by_spacing = match recent.last_start {
        Some(last) => (now_ms - last) / spacing_ms,
        // Nothing started lately: up to one second's share (at least one call).
        None => (per_minute / 60).max(1),
    };
    by_concurrency
        .min(by_rate)
        .min(by_spacing)
        .clamp(0, MAX_CLAIM_PER_PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(max_concurrent: i32, calls_per_minute: i32) -> Pacing {
        Pacing {
            max_concurrent,
            calls_per_minute,
        }
    }

    #[test]
    fn concurrency_caps_starts() {
        let recent = Recent {
            active: 3,
            started_in_window: 3,
            last_start: Some(0),
        };
        assert_eq!(free_slots(&pacing(4, 1000), recent, 60_000), 1);
        assert_eq!(free_slots(&pacing(3, 1000), recent, 60_000), 0);
    }

    #[test]
    fn the_minute_window_caps_starts() {
        let recent = Recent {
            active: 0,
            started_in_window: 10,
            last_start: Some(0),
        };
        assert_eq!(free_slots(&pacing(50, 10), recent, 59_000), 0);
        assert_eq!(free_slots(&pacing(50, 12), recent, 59_000), 2);
    }

    #[test]
    fn starts_are_spread_over_the_minute() {
        // 30 per minute: one every 2 s.
        let p = pacing(50, 30);
        let one_started = Recent {
            active: 0,
            started_in_window: 1,
            last_start: Some(0),
        };
        let after = |ms| free_slots(&p, one_started, ms);
        assert_eq!(after(1_999), 0);
        assert_eq!(after(2_000), 1);
        assert_eq!(after(6_100), 3);
        assert_eq!(free_slots(&p, Recent::default(), 0), 1);
        assert_eq!(free_slots(&pacing(50, 600), Recent::default(), 0), 10);
    }
}
