//! Calls: what happens from the moment a carrier tells the gateway about a call until its
//! record, usage and customer webhook are written. No HTTP here: the carrier-webhook handlers
//! in `http::webhooks` parse and verify, then call these.
//!
//! * [`admission`] — a new inbound call is refused (unknown number, suspended tenant, monthly
//!   limit) or recorded, counted and handed a call token; an answered campaign call gets its
//!   call token from the attempt the dialer wrote.
//! * [`lifecycle`] — carrier status changes and runtime events move a call through
//!   [`CallStatus`]; the first terminal status bills the minutes once and queues
//!   `call.completed`.
//! * [`transfer`] — redirects a live call through the carrier that carries it.
//! * [`cdr`] — call detail records from a tenant's PBX.

pub mod admission;
pub mod cdr;
pub mod lifecycle;
pub mod transfer;

use crate::carrier_accounts::AccountError;
use crate::store::StoreError;

/// Where a call is. Stored as its wire name (the carriers' own words, Twilio's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// The dialer wrote the attempt; the carrier has not been asked yet.
    Dialing,
    /// The carrier accepted the call request.
    Queued,
    /// The carrier started the call.
    Initiated,
    /// The callee's phone rings.
    Ringing,
    /// Answered and connected.
    InProgress,
    /// Ended after being answered.
    Completed,
    /// The callee was busy.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The call could not be placed.
    Failed,
    /// Hung up (or rejected) before being answered.
    Canceled,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Dialing,
        CallStatus::Queued,
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// The stored and wire name (`in-progress`, `no-answer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Dialing => "dialing",
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// The status a carrier names (Twilio's `CallStatus` words), `None` for others.
    pub fn parse(text: &str) -> Option<Self> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the status ends the call.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owning carrier account could not be read.
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<sqlx::Error> for CallError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_ends_are_terminal() {
        for status in CallStatus::ALL {
            assert_eq!(CallStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            CallStatus::parse("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(CallStatus::parse("answered"), None);
        let terminal: Vec<_> = CallStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(CallStatus::as_str)
            .collect();
        assert_eq!(
            terminal,
            ["completed", "busy", "no-answer", "failed", "canceled"]
        );
    }
}
