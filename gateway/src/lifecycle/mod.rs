//! The data lifecycle of tenants and accounts (issue 19), never speaking HTTP:
//!
//! * [`retention`] — how long calls, transcripts and audit entries are kept, and the pass
//!   that deletes what is older;
//! * [`deletion`] — an owner deletes a tenant (suspended at once, purged after a grace
//!   period, restorable until then; numbers released, the Tenant CR deleted), a person
//!   deletes their account;
//! * [`export`] — one `tar.gz` archive of everything of a tenant, or of a person's own data;
//! * [`platform`] — the platform admins (`SWITCHBOARD_PLATFORM_ADMINS`): suspension, plan and
//!   limit overrides, system health;
//! * [`rekey`] — re-encryption of stored secrets under the current master key.
//!
//! [`spawn`] starts the worker that purges tenants past their grace period, enforces
//! retention and re-encrypts, every `SWITCHBOARD_LIFECYCLE_INTERVAL_SECONDS`.

pub mod deletion;
pub mod export;
pub mod platform;
pub mod rekey;
pub mod retention;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::kube::KubeError;
use crate::state::AppState;
use crate::store::StoreError;

/// Why a lifecycle action cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster refused or was unreachable.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// No such tenant (or account).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The person is the only owner of these tenants (slugs): transfer ownership or delete
    /// them first.
    #[error("sole owner of {}: transfer ownership or delete the tenant first", .0.join(", "))]
    SoleOwner(Vec<String>),
    /// The password given to confirm is wrong.
    #[error("the password is wrong")]
    WrongPassword,
    /// A manifest tenant whose Tenant still exists: delete it from the manifest.
    #[error("tenant {0} is defined by a Tenant manifest; delete the manifest first")]
    ManagedByManifest(String),
    /// The tenant is already pending deletion.
    #[error("tenant {0} is pending deletion; restore it first")]
    PendingDeletion(String),
    /// The tenant is not pending deletion.
    #[error("tenant {0} is not pending deletion")]
    NotPendingDeletion(String),
    /// A request field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The camelCase field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Releasing a number at the carrier failed.
    #[error("carrier: {0}")]
    Carrier(String),
    /// Writing the archive failed.
    #[error("archive: {0}")]
    Archive(String),
    /// A stored secret cannot be decrypted with any configured master key.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// What one worker pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Tenants purged.
    pub purged: usize,
    /// Rows removed by retention, summed over tenants.
    pub removed: crate::store::lifecycle::Removed,
    /// Secrets re-encrypted under the current master key.
    pub rekeyed: rekey::Rekeyed,
}

/// One pass: purge tenants past their grace period, enforce retention, re-encrypt secrets
/// sealed with a former master key. Each step's failure is logged and the next still runs.
pub async fn run_pass(state: &AppState, now: i64) -> PassReport {
    let mut report = PassReport::default();
    match deletion::purge_due(state, now).await {
        Ok(purged) => report.purged = purged,
        Err(error) => tracing::warn!(%error, "purging deleted tenants failed"),
    }
    match retention::enforce_all(state, now).await {
        Ok(removed) => report.removed = removed,
        Err(error) => tracing::warn!(%error, "retention pass failed"),
    }
    match rekey::rekey_all(&state.store, &state.keyring).await {
        Ok(rekeyed) => report.rekeyed = rekeyed,
        Err(error) => tracing::warn!(%error, "re-encryption under the current master key failed"),
    }
    report
}

/// Starts the data-lifecycle worker (first pass at once: the startup path of a master-key
/// rotation), unless `SWITCHBOARD_LIFECYCLE_WORKER=false`.
pub fn spawn(state: &AppState) -> Option<JoinHandle<()>> {
    let config = &state.config.lifecycle;
    if !config.lifecycle_worker {
        return None;
    }
    let every = Duration::from_secs(config.lifecycle_interval_seconds.max(1));
    let state = state.clone();
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let report = run_pass(&state, crate::store::now_ms()).await;
            if report != PassReport::default() {
                tracing::info!(?report, "data lifecycle pass");
            }
        }
    }))
}

impl From<sqlx::Error> for LifecycleError {
    fn from(error: sqlx::Error) -> Self {
        LifecycleError::Store(StoreError::Database(error))
    }
}
