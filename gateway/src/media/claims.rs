//! Pruning the media-stream claims (`media_stream_claims`, migration 0015).
//!
//! A claim keeps a call token from opening a second stream. Once the token has expired the
//! proxy refuses it before looking at claims, so the claim protects nothing any more and is
//! deleted; without this the table grew by one row per call forever. A token expires at most
//! its lifetime after it was issued, and it is issued before its stream is claimed, so a claim
//! older than the lifetime (plus [`CLOCK_MARGIN`] for replicas whose clocks differ) outlived
//! its token.

use std::time::Duration;

use crate::store::{Store, StoreError, calls, system};

/// Added to the call-token lifetime before a claim is deleted (clock differences between
/// replicas).
pub const CLOCK_MARGIN: Duration = Duration::from_secs(300);

/// How often the worker prunes (see [`crate::workers`]).
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes, across tenants, the claims whose call token has expired by `now_ms` (Unix ms),
/// for tokens living `token_ttl_seconds`; returns how many were deleted.
pub async fn prune_expired(
    store: &Store,
    token_ttl_seconds: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let margin_ms = i64::try_from(CLOCK_MARGIN.as_millis()).unwrap_or(i64::MAX);
    let before = now_ms
        .saturating_sub(token_ttl_seconds.max(0).saturating_mul(1000))
        .saturating_sub(margin_ms);
    let mut tx = system::write(store).await?;
    let deleted = calls::delete_media_stream_claims_before(&mut tx, before).await?;
    tx.commit().await?;
    Ok(deleted)
}
