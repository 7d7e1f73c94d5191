//! Usage metering and plan limits.
//!
//! Counters live per tenant and month (`usage_counters`). Usage that already happened
//! (minutes, STT, TTS) is recorded under an event id, at most once. A new call is admitted by
//! one conditional `UPDATE … WHERE counter < limit`, so concurrent calls on several replicas
//! cannot overshoot a limit. API-key requests are counted in memory and written in batches
//! ([`meter::ApiMeter`]). Crossing 80 % and 100 % of a limit raises one `usage.threshold`
//! customer webhook per metric and month.
//!
//! Limits are the tenant's effective ones ([`limits_for`]): computed by
//! `switchboard_crds::effective_limits`, the function the operator uses too, from the plan,
//! the platform's `SWITCHBOARD_PLAN_LIMITS` and the tenant's stored overrides.

pub mod limits;
pub mod meter;

use serde_json::json;
use sqlx::AnyConnection;
use switchboard_crds::{LimitPatch, Plan, PlanLimits, PlanOverrides, effective_limits};

use crate::outbox;
use crate::store::usage::{self, Metric};
use crate::store::{Scope, Store, StoreError, billing, now_ms, tenants};

/// Whether a new call may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted (or already counted for this carrier call) and allowed.
    Admitted,
    /// The monthly call or minute limit is reached.
    OverLimit,
}

/// The limit of a metric under `limits` (`None` = unlimited).
pub fn limit_of(limits: &PlanLimits, metric: Metric) -> Option<u64> {
    match metric {
        Metric::CallCount => limits.monthly_calls,
        Metric::CallMinutes => limits.monthly_minutes,
        Metric::ApiRequests => limits.monthly_api_requests,
        Metric::SttMs | Metric::TtsCharacters => None,
    }
}

fn as_limit(limit: Option<u64>) -> Option<i64> {
    limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

/// The effective limits of a tenant on `plan` (unknown plan names get the free plan's, the
/// safe side), read in the caller's tenant-scoped transaction: the plan's, the platform's,
/// the stored billing overrides, then the Tenant CR's `spec.limits` as mirrored into the
/// tenant's row (Kubernetes mode). Stored overrides that do not parse are ignored.
pub async fn limits_for(
    conn: &mut AnyConnection,
    platform: &PlanOverrides,
    tenant_id: &str,
    plan: &str,
) -> Result<PlanLimits, StoreError> {
    let tenant = billing::get(conn, tenant_id)
        .await?
        .and_then(|b| serde_json::from_str::<LimitPatch>(&b.limit_overrides).ok());
    let limits = effective_limits(plan_or_free(plan), platform, tenant.as_ref());
    let manifest = tenants::limits_of(conn, tenant_id)
        .await?
        .and_then(|text| serde_json::from_str::<LimitPatch>(&text).ok())
        .unwrap_or_default();
    Ok(manifest.apply(limits))
}

/// The stored plan name as a [`Plan`]; unknown names get the free plan, the safe side.
pub fn plan_or_free(plan: &str) -> Plan {
    plan.parse().unwrap_or(Plan::Free)
}

/// Raises the 80 % / 100 % notices `value` has newly reached, in the caller's transaction.
pub async fn raise_thresholds(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    value: i64,
    limit: Option<u64>,
) -> Result<(), StoreError> {
    for level in limits::levels_reached(value, limit) {
        if usage::raise_alert(&mut *conn, tenant_id, period, metric, level, now_ms()).await? {
            tracing::info!(
                tenant_id,
                metric = metric.column(),
                level,
                "usage threshold reached"
            );
            outbox::enqueue_event(
                &mut *conn,
                tenant_id,
                "usage.threshold",
                json!({
                    "tenantId": tenant_id, "period": period, "metric": metric.column(),
                    "percent": level, "value": value, "limit": limit,
                }),
            )
            .await?;
        }
    }
    Ok(())
}

/// Counts a new call under `event_id` (the carrier call id, so a retried webhook counts once)
/// unless the tenant is at its call or minute limit.
pub async fn admit_call(
    store: &Store,
    platform: &PlanOverrides,
    tenant_id: &str,
    plan: &str,
    event_id: &str,
) -> Result<Admission, StoreError> {
    let now = now_ms();
    let period = limits::period_of(now);
    let mut tx = store.write(&Scope::tenant(tenant_id)).await?;
    let limits = limits_for(&mut tx, platform, tenant_id, plan).await?;
    if !usage::claim_event(
        &mut tx,
        tenant_id,
        event_id,
        &period,
        Metric::CallCount,
        1,
        now,
    )
    .await?
    {
        tx.commit().await?;
        return Ok(Admission::Admitted);
    }
    let mut guards = Vec::new();
    if let Some(limit) = as_limit(limits.monthly_calls) {
        guards.push((Metric::CallCount, limit));
    }
    if let Some(limit) = as_limit(limits.monthly_minutes) {
        guards.push((Metric::CallMinutes, limit));
    }
    let Some(value) =
        usage::increment_within(&mut tx, tenant_id, &period, Metric::CallCount, &guards, now)
            .await?
    else {
        // Dropping the transaction forgets the claimed event id too: a later retry of the
        // same call is judged afresh.
        tx.rollback().await?;
        return Ok(Admission::OverLimit);
    };
    raise_thresholds(
        &mut tx,
        tenant_id,
        &period,
        Metric::CallCount,
        value,
        limits.monthly_calls,
    )
    .await?;
    tx.commit().await?;
    Ok(Admission::Admitted)
}

/// Records usage that already happened (minutes, STT, TTS) once per `event_id`. Returns
/// whether it was new.
pub async fn record(
    conn: &mut AnyConnection,
    platform: &PlanOverrides,
    tenant_id: &str,
    plan: &str,
    event_id: &str,
    metric: Metric,
    amount: i64,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let period = limits::period_of(now);
    if !usage::claim_event(
        &mut *conn, tenant_id, event_id, &period, metric, amount, now,
    )
    .await?
    {
        return Ok(false);
    }
    let value = usage::add(&mut *conn, tenant_id, &period, metric, amount, now).await?;
    let limits = limits_for(&mut *conn, platform, tenant_id, plan).await?;
    raise_thresholds(
        conn,
        tenant_id,
        &period,
        metric,
        value,
        limit_of(&limits, metric),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plans_get_the_free_plans_limits_with_its_overrides() {
        let overrides = PlanOverrides::parse(Some(r#"{"free":{"monthlyCalls":70}}"#)).unwrap();
        assert_eq!(
            effective_limits(plan_or_free("gold"), &overrides, None).monthly_calls,
            Some(70)
        );
        assert_eq!(plan_or_free("enterprise"), Plan::Enterprise);
    }
}
