//! What an attempt's outcome means for its contact: done, or another try after a backoff.

use switchboard_crds::campaign::{RetryPolicy, RetryableOutcome};

/// Longest wait between two attempts, whatever the policy doubles to.
pub const MAX_BACKOFF_MS: i64 = 24 * 3600 * 1000;

/// An attempt's outcome, as the dialer judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The contact answered (whatever happened after).
    Answered,
    /// Rang out.
    NoAnswer,
    /// Busy line.
    Busy,
    /// The carrier could not place or connect the call.
    Failed,
    /// Nobody knows whether the phone rang (a crash or timeout between writing the attempt
    /// and hearing from the carrier). Never retried: a second call could be a double call.
    Unknown,
}

impl Outcome {
    /// Classifies a stored outcome: a carrier status (`no-answer`, `busy`, `failed`,
    /// `canceled`, `completed`), a runtime end reason (the call was answered), or `unknown`.
    pub fn from_stored(outcome: &str) -> Self {
        match outcome {
            "no-answer" => Outcome::NoAnswer,
            "busy" => Outcome::Busy,
            "failed" | "canceled" => Outcome::Failed,
            "unknown" => Outcome::Unknown,
            _ => Outcome::Answered,
        }
    }

    fn retryable_as(self) -> Option<RetryableOutcome> {
        match self {
            Outcome::NoAnswer => Some(RetryableOutcome::NoAnswer),
            Outcome::Busy => Some(RetryableOutcome::Busy),
            Outcome::Failed => Some(RetryableOutcome::Failed),
            Outcome::Answered | Outcome::Unknown => None,
        }
    }
}

/// Final contact states (as stored in `campaign_contacts.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    /// Reached.
    Completed,
    /// Never answered (no answer or busy on the last attempt).
    NoAnswer,
    /// Could not be called.
    Failed,
}

impl Final {
    /// The stored state name.
    pub fn state(self) -> &'static str {
        match self {
            Final::Completed => "completed",
            Final::NoAnswer => "no_answer",
            Final::Failed => "failed",
        }
    }
}

/// The contact's next step after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Dial again no earlier than this instant (Unix ms).
    RetryAt(i64),
    /// Done.
    Done(Final),
}

/// Decides the contact's next step after `attempts_made` counted attempts ended in `outcome`
/// at `now_ms`. Backoff doubles from `backoffSeconds` after each attempt, capped at a day.
pub fn next_step(policy: &RetryPolicy, attempts_made: i64, outcome: Outcome, now_ms: i64) -> Next {
    let retry = outcome
        .retryable_as()
        .is_some_and(|o| policy.retry_on.contains(&o))
        && attempts_made < i64::from(policy.max_attempts);
    if retry {
        let doublings = u32::try_from((attempts_made - 1).clamp(0, 20)).unwrap_or(20);
        let backoff = i64::from(policy.backoff_seconds.max(0))
            .saturating_mul(1000)
            .saturating_mul(1_i64 << doublings)
            .min(MAX_BACKOFF_MS);
        return Next::RetryAt(now_ms.saturating_add(backoff));
    }
    Next::Done(match outcome {
        Outcome::Answered => Final::Completed,
        Outcome::NoAnswer | Outcome::Busy => Final::NoAnswer,
        Outcome::Failed | Outcome::Unknown => Final::Failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: i32, retry_on: Vec<RetryableOutcome>) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff_seconds: 60,
            retry_on,
        }
    }

    #[test]
    fn retries_double_the_backoff_until_attempts_run_out() {
        let p = policy(3, vec![RetryableOutcome::NoAnswer, RetryableOutcome::Busy]);
        assert_eq!(
            next_step(&p, 1, Outcome::NoAnswer, 0),
            Next::RetryAt(60_000)
        );
        assert_eq!(next_step(&p, 2, Outcome::Busy, 0), Next::RetryAt(120_000));
        assert_eq!(
            next_step(&p, 3, Outcome::NoAnswer, 0),
            Next::Done(Final::NoAnswer)
        );
    }

    #[test]
    fn only_listed_outcomes_are_retried_and_unknown_never() {
        let p = policy(5, vec![RetryableOutcome::Busy]);
        assert_eq!(
            next_step(&p, 1, Outcome::NoAnswer, 0),
            Next::Done(Final::NoAnswer)
        );
        assert_eq!(
            next_step(&p, 1, Outcome::Failed, 0),
            Next::Done(Final::Failed)
        );
        assert_eq!(
            next_step(&p, 1, Outcome::Unknown, 0),
            Next::Done(Final::Failed)
        );
        assert_eq!(
            next_step(&p, 1, Outcome::Answered, 0),
            Next::Done(Final::Completed)
        );
    }

    #[test]
    fn backoff_is_capped_at_a_day() {
        let p = RetryPolicy {
            max_attempts: 10,
            backoff_seconds: 86_400,
            retry_on: vec![RetryableOutcome::Failed],
        };
        assert_eq!(
            next_step(&p, 4, Outcome::Failed, 5),
            Next::RetryAt(5 + MAX_BACKOFF_MS)
        );
    }

    #[test]
    fn stored_outcomes_classify() {
        assert_eq!(Outcome::from_stored("no-answer"), Outcome::NoAnswer);
        assert_eq!(Outcome::from_stored("canceled"), Outcome::Failed);
        assert_eq!(Outcome::from_stored("caller-hung-up"), Outcome::Answered);
        assert_eq!(Outcome::from_stored("unknown"), Outcome::Unknown);
    }
}
