//! The platform admins: people named by e-mail address in `SWITCHBOARD_PLATFORM_ADMINS`
//! (signed in, with that address verified). The role is the platform's, not a tenant role: it
//! grants no access to a tenant's own API, only to `/api/v1/admin/…` (list tenants, suspend
//! and resume, override plan and limits, system health).
//!
//! Suspension is stored on the tenant (`admin_suspended_at`) and, in Kubernetes mode, written
//! into the Tenant's `spec.suspended` (the operator then scales the runtime to zero); calls are
//! refused politely either way. A manifest that holds `spec.suspended` keeps it: the admin's
//! suspend or resume is refused naming the field manager (`KubeError::OwnedElsewhere`), and the
//! manifest must be changed instead.

use serde_json::json;
use switchboard_crds::{LimitPatch, Plan};

use super::LifecycleError;
use crate::state::AppState;
use crate::store::lifecycle::{self, AdminTenantRow};
use crate::store::tenants::{self, TenantRow};
use crate::store::{Flag, StoreError, billing, system, users, webhooks};

/// Whether `user_id` is a platform admin: a verified address listed in the setting.
pub async fn is_platform_admin(state: &AppState, user_id: &str) -> Result<bool, StoreError> {
    let admins = &state.config.lifecycle.platform_admins;
    if admins.iter().all(|a| a.trim().is_empty()) {
        return Ok(false);
    }
    let mut conn = state.store.pool().acquire().await?;
    let Some(user) = users::by_id(&mut conn, user_id).await? else {
        return Ok(false);
    };
    Ok(user.email_verified_at.is_some()
        && admins
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(&user.email)))
}

/// Tenants after the id `after` (from the start when `None`), by id, at most `limit`.
pub async fn list_tenants(
    state: &AppState,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AdminTenantRow>, LifecycleError> {
    let mut tx = system::read(&state.store).await?;
    let rows = lifecycle::admin_page(&mut tx, after.unwrap_or(""), limit).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn tenant_by_key(state: &AppState, key: &str) -> Result<TenantRow, LifecycleError> {
    tenants::load_by_key(&state.store, key)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))
}

/// Suspends (`true`) or resumes the tenant named by `key` (slug or id); returns it as stored.
pub async fn set_suspended(
    state: &AppState,
    key: &str,
    suspended: bool,
    now: i64,
) -> Result<TenantRow, LifecycleError> {
    let mut tenant = tenant_by_key(state, key).await?;
    let mut tx = system::write_for_tenant(&state.store, &tenant.id).await?;
    let row = lifecycle::get(&mut tx, &tenant.id)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))?;
    if !suspended && row.deletion_requested_at.is_some() {
        return Err(LifecycleError::PendingDeletion(tenant.slug));
    }
    lifecycle::set_admin_suspension(&mut tx, &tenant.id, suspended, now).await?;
    let action = if suspended {
        "tenant.suspended"
    } else {
        "tenant.resumed"
    };
    lifecycle::record_platform(
        &mut tx,
        action,
        Some(&tenant.id),
        "platform-admin",
        &json!({}),
        now,
    )
    .await?;
    crate::store::audit::record(
        &mut tx,
        &crate::store::audit::AuditEvent {
            tenant_id: &tenant.id,
            actor_type: "platform_admin",
            actor_id: None,
            action,
            target_type: Some("tenant"),
            target_id: Some(&tenant.id),
            ip: None,
            request_id: None,
            details: json!({}),
        },
        now,
    )
    .await?;
    tenant.suspended = Flag(suspended);
    // The CR first: a manifest holding `spec.suspended` refuses, and nothing changes.
    state.kube.apply_tenant(&tenant, &["suspended"]).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Overrides the plan and/or the stored limit overrides of the tenant named by `key`. A
/// later Stripe subscription event sets the plan again (billing stays the plan's source for
/// subscribed tenants).
pub async fn override_plan(
    state: &AppState,
    key: &str,
    plan: Option<Plan>,
    limits: Option<&LimitPatch>,
    now: i64,
) -> Result<TenantRow, LifecycleError> {
    let mut tenant = tenant_by_key(state, key).await?;
    let mut tx = system::write_for_tenant(&state.store, &tenant.id).await?;
    if let Some(plan) = plan {
        billing::set_plan(&mut tx, &tenant.id, plan.as_str(), now).await?;
        tenant.plan = plan.as_str().to_owned();
    }
    if let Some(limits) = limits {
        let text = serde_json::to_string(limits).map_err(|e| LifecycleError::Invalid {
            field: "limits".to_owned(),
            message: e.to_string(),
        })?;
        lifecycle::set_limit_overrides(&mut tx, &tenant.id, &text, now).await?;
    }
    lifecycle::record_platform(
        &mut tx,
        "tenant.plan_overridden",
        Some(&tenant.id),
        "platform-admin",
        &json!({"plan": plan.map(Plan::as_str), "limits": limits}),
        now,
    )
    .await?;
    if plan.is_some() {
        state.kube.apply_tenant(&tenant, &["plan"]).await?;
    }
    tx.commit().await?;
    Ok(tenant)
}

/// One dependency's state in the health view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether it is in use here (`false`: not configured, e.g. Redis or Kubernetes standalone).
    pub configured: bool,
    /// Whether it answered.
    pub ok: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
}

impl Check {
    fn of(result: Option<Result<(), String>>) -> Self {
        match result {
            None => Self {
                configured: false,
                ok: true,
                error: None,
            },
            Some(Ok(())) => Self {
                configured: true,
                ok: true,
                error: None,
            },
            Some(Err(error)) => Self {
                configured: true,
                ok: false,
                error: Some(error),
            },
        }
    }
}

/// The platform's health: its dependencies, the webhook backlog, tenants by plan and status.
#[derive(Debug, Clone)]
pub struct Health {
    /// The database (a write transaction within the readiness probe's time).
    pub database: Check,
    /// Redis (shared rate limits).
    pub redis: Check,
    /// The Kubernetes API.
    pub kubernetes: Check,
    /// Customer webhooks pending delivery.
    pub outbox_pending: i64,
    /// Customer webhooks given up on.
    pub outbox_failed: i64,
    /// Age of the oldest pending delivery in seconds.
    pub outbox_oldest_pending_seconds: Option<i64>,
    /// `(plan, status, count)`.
    pub tenants: Vec<(String, String, i64)>,
}

/// Looks at every dependency (each within a few seconds) and counts.
pub async fn health(state: &AppState, now: i64) -> Result<Health, LifecycleError> {
    let database = Check::of(Some(state.store.ping().await.map_err(|e| e.to_string())));
    let redis = Check::of(state.limiter.ping().await);
    let kubernetes = Check::of(match state.kube.client() {
        None => None,
        Some(client) => Some(
            match tokio::time::timeout(
                std::time::Duration::from_secs(3),
                client.apiserver_version(),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no answer within 3 s".to_owned()),
            },
        ),
    });
    let mut tx = system::read(&state.store).await?;
    let backlog = webhooks::outbox_backlog(&mut tx).await?;
    let failed = lifecycle::failed_deliveries(&mut tx).await?;
    let tenants = lifecycle::tenant_counts(&mut tx).await?;
    tx.commit().await?;
    Ok(Health {
        database,
        redis,
        kubernetes,
        outbox_pending: backlog.pending,
        outbox_failed: failed,
        outbox_oldest_pending_seconds: backlog.oldest_created_at.map(|t| (now - t).max(0) / 1000),
        tenants,
    })
}
