//! Retention: a tenant's settings over the platform defaults, capped by its plan
//! (`switchboard_crds::retention`), and the pass that deletes what is older (call
//! recordings included: their files in the tenant's bucket or the data folder, then rows).

use switchboard_crds::retention::{Retention, RetentionSettings, effective_retention};

use super::LifecycleError;
use crate::state::AppState;
use crate::store::lifecycle::{self, Removed};
use crate::store::{Scope, Store, system};
use crate::usage::plan_or_free;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Tenants read per page of a pass.
const PAGE: i64 = 200;

/// A tenant's settings and the retention in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionView {
    /// What the tenant set (unset kinds follow the platform default).
    pub settings: RetentionSettings,
    /// What the worker enforces: settings over defaults, capped by the plan.
    pub effective: Retention,
    /// The plan's cap in days.
    pub plan_cap_days: u32,
}

/// Parses stored settings; a row that does not parse counts as no settings (the defaults),
/// never as "keep forever".
pub fn parse_settings(stored: &str) -> RetentionSettings {
    serde_json::from_str(stored).unwrap_or_default()
}

fn view(plan: &str, settings: RetentionSettings) -> RetentionView {
    let plan = plan_or_free(plan);
    RetentionView {
        effective: effective_retention(plan, &settings),
        plan_cap_days: switchboard_crds::retention::plan_cap_days(plan),
        settings,
    }
}

/// The tenant's retention.
pub async fn get(
    store: &Store,
    tenant_id: &str,
    plan: &str,
) -> Result<RetentionView, LifecycleError> {
    let mut tx = store.read(&Scope::tenant(tenant_id)).await?;
    let row = lifecycle::get(&mut tx, tenant_id)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))?;
    tx.commit().await?;
    Ok(view(plan, parse_settings(&row.retention)))
}

/// Replaces the tenant's settings (validated; a value above the plan's cap is kept as set
/// and enforced at the cap, so an upgrade lifts it).
pub async fn set(
    store: &Store,
    tenant_id: &str,
    plan: &str,
    settings: RetentionSettings,
    now: i64,
) -> Result<RetentionView, LifecycleError> {
    settings.validate().map_err(|e| LifecycleError::Invalid {
        field: e.field.to_owned(),
        message: e.to_string(),
    })?;
    let text = serde_json::to_string(&settings).map_err(|e| LifecycleError::Invalid {
        field: "retention".to_owned(),
        message: e.to_string(),
    })?;
    let mut tx = store.write(&Scope::tenant(tenant_id)).await?;
    lifecycle::set_retention(&mut tx, tenant_id, &text, now).await?;
    tx.commit().await?;
    Ok(view(plan, settings))
}

/// Cut-off times (Unix ms) of a retention at `now`: `(calls, transcripts, audit)`.
pub fn cutoffs(retention: &Retention, now: i64) -> (i64, i64, i64) {
    let before = |days: u32| now - i64::from(days) * DAY_MS;
    (
        before(retention.calls_days),
        before(retention.transcripts_days),
        before(retention.audit_days),
    )
}

/// Enforces retention for every tenant at `now`, one transaction per tenant; returns what
/// was removed in total.
pub async fn enforce_all(state: &AppState, now: i64) -> Result<Removed, LifecycleError> {
    let mut total = Removed::default();
    let mut after = String::new();
    loop {
        let mut tx = system::read(&state.store).await?;
        let page = lifecycle::retention_page(&mut tx, &after, PAGE).await?;
        tx.commit().await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = last.clone();
        for (tenant_id, plan, stored) in page {
            let retention = effective_retention(plan_or_free(&plan), &parse_settings(&stored));
            let (calls, transcripts, audit) = cutoffs(&retention, now);
            // Recordings first: their objects live outside the database, and a recording
            // whose object cannot be deleted now stays listed for the next pass.
            let recordings_before = now - i64::from(retention.recordings_days) * DAY_MS;
            match crate::recordings::remove_older_than(state, &tenant_id, recordings_before).await {
                Ok(count) => total.recordings += count,
                Err(error) => {
                    tracing::warn!(%error, tenant = %tenant_id, "removing expired recordings failed")
                }
            }
            let mut tx = state.store.write(&Scope::tenant(&tenant_id)).await?;
            let removed =
                lifecycle::enforce_retention(&mut tx, &tenant_id, calls, transcripts, audit)
                    .await?;
            tx.commit().await?;
            total.calls += removed.calls;
            total.transcript_turns += removed.transcript_turns;
            total.audit_entries += removed.audit_entries;
        }
    }
    Ok(total)
}
