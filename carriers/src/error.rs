//! The errors a carrier call can end in, sorted by what the caller should do about them.

use std::time::Duration;

/// A failed carrier call, classified so that a controller can act on it:
/// fix credentials, wait, retry, or give up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// The carrier rejected the account credentials (HTTP 401/403). Retrying will not help
    /// until someone fixes the Secret.
    #[error("carrier rejected the credentials: {message}")]
    BadCredentials {
        /// The carrier's explanation.
        message: String,
    },
    /// No number matched the search, or the requested number is no longer available.
    #[error("no matching phone number is available: {message}")]
    NothingAvailable {
        /// The carrier's explanation.
        message: String,
    },
    /// The carrier throttled us (HTTP 429). Wait `retry_after` when it said how long.
    #[error("carrier rate limit hit (retry after {retry_after:?}): {message}")]
    RateLimited {
        /// The `Retry-After` the carrier sent, if any.
        retry_after: Option<Duration>,
        /// The carrier's explanation.
        message: String,
    },
    /// A failure worth retrying with backoff: HTTP 5xx, a timeout, a dropped connection.
    #[error("transient carrier failure: {message}")]
    Transient {
        /// What went wrong.
        message: String,
    },
    /// The carrier refused the request for a reason retrying will not fix (HTTP 4xx other
    /// than the ones above, or a response we cannot understand).
    #[error("carrier refused the request (status {status:?}, code {code:?}): {message}")]
    Permanent {
        /// HTTP status, when the failure came from an HTTP response.
        status: Option<u16>,
        /// The carrier's own error code (Twilio `20404`, Telnyx `"10009"`), when it sent one.
        code: Option<String>,
        /// The carrier's explanation.
        message: String,
    },
}

impl CarrierError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// How long the carrier asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A CamelCase reason suitable for a Kubernetes condition or Event.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadCredentials { .. } => "BadCredentials",
            Self::NothingAvailable { .. } => "NothingAvailable",
            Self::RateLimited { .. } => "RateLimited",
            Self::Transient { .. } => "CarrierUnavailable",
            Self::Permanent { .. } => "CarrierRejected",
        }
    }

    /// Classifies a transport-level reqwest failure (no HTTP response was received).
    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        let what = if err.is_timeout() {
            "request timed out"
        } else if err.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        // `without_url` keeps account ids that sit in the path out of logs and conditions.
        Self::Transient {
            message: format!("{what}: {}", error_chain(&err.without_url())),
        }
    }

    /// Classifies an HTTP error response given the carrier's own code and message.
    ///
    /// `unavailable` tells whether the carrier's code means "no such number available".
    pub(crate) fn from_status(
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
        unavailable: bool,
    ) -> Self {
        match status {
            401 | 403 => Self::BadCredentials { message },
            429 => Self::RateLimited {
                retry_after,
                message,
            },
            500..=599 => Self::Transient {
                message: format!("HTTP {status}: {message}"),
            },
            _ if unavailable => Self::NothingAvailable { message },
            _ => Self::Permanent {
                status: Some(status),
                code,
                message,
            },
        }
    }
}

/// The error and its sources on one line, without the request URL (it can carry account ids).
fn error_chain(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Parses a `Retry-After` header given in seconds. (The HTTP-date form is not used by
/// Twilio or Telnyx; it is treated as absent so the caller falls back to its own backoff.)
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_actionable_kinds() {
        let e = CarrierError::from_status(401, None, "no".into(), None, false);
        assert_eq!(e.reason(), "BadCredentials");
        assert!(!e.is_retryable());
        let e = CarrierError::from_status(
            429,
            None,
            "slow".into(),
            Some(Duration::from_secs(7)),
            false,
        );
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = CarrierError::from_status(503, None, "down".into(), None, false);
        assert!(matches!(e, CarrierError::Transient { .. }));
        let e = CarrierError::from_status(400, Some("21422".into()), "gone".into(), None, true);
        assert!(matches!(e, CarrierError::NothingAvailable { .. }));
        let e = CarrierError::from_status(400, Some("21212".into()), "bad".into(), None, false);
        assert!(matches!(
            e,
            CarrierError::Permanent {
                status: Some(400),
                ..
            }
        ));
    }

    #[test]
    fn retry_after_seconds_are_parsed_and_dates_ignored() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&headers), None);
    }
}
