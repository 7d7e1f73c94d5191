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
//! * [`writer`] — group commit: new call records (admitted inbound calls, CDRs) of concurrent
//!   requests written in one transaction, each request answered once it committed.

pub mod admission;
pub mod cdr;
pub mod lifecycle;
pub mod transfer;
pub mod writer;

pub use crate::store::calls::CallStatus;

use crate::carrier_accounts::AccountError;
use crate::store::StoreError;

/// Why a call could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owning carrier account could not be read.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The gateway is draining (SIGTERM): new calls go to another replica.
    #[error("this gateway is shutting down and takes no new calls")]
    Draining,
}

impl From<sqlx::Error> for CallError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}
