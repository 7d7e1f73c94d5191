//! Deleting tenants and accounts.
//!
//! A tenant: an owner's request suspends it at once (calls refused politely; in Kubernetes its
//! Tenant gets `spec.suspended`, so the operator scales the runtime to zero) and sets the purge
//! time `SWITCHBOARD_DELETION_GRACE_HOURS` ahead. Until then an owner can restore it whole. The
//! worker then purges it: its numbers are released (standalone: given back to the sandbox
//! carrier; Kubernetes: its PhoneNumbers are deleted, whose finalizer makes the operator
//! release them at the carrier), its Tenant CR is deleted, its call recordings' files are
//! deleted (its own bucket or the data folder), and every row of the tenant goes
//! (`ON DELETE CASCADE` from `tenants`). A `tenant.purged` entry of the platform audit log
//! remains, naming the tenant's id only.
//!
//! An account: refused (naming the tenants) while the person is the only owner of a tenant
//! not pending deletion; otherwise the user row goes with its sessions and tokens, and every
//! trace of the person (memberships, invitations to the address, actor, target and IP address
//! in audit logs) is removed or anonymised; `account.deleted` remains in the platform log.

use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use switchboard_carriers::Carrier;
use switchboard_crds::phone_number::PhoneNumber;
use switchboard_crds::tenant::Tenant;

use super::LifecycleError;
use crate::kube::is_linked;
use crate::passwords::verify_password;
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::lifecycle;
use crate::store::tenants::{self, ORIGIN_MANIFEST, TenantRow};
use crate::store::{Flag, Scope, numbers, system, users};

/// Who asked, for the audit logs.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `user`, `api_key` or `platform_admin`.
    pub kind: &'a str,
    /// The user's or key's id (`None` for a platform admin in a tenant's own log).
    pub id: Option<&'a str>,
    /// Client IP address.
    pub ip: Option<&'a str>,
    /// Request id.
    pub request_id: Option<&'a str>,
}

/// Tenants purged per pass at most.
const PURGES_PER_PASS: i64 = 50;

async fn tenant_row(state: &AppState, tenant_id: &str) -> Result<TenantRow, LifecycleError> {
    tenants::load(&state.store, tenant_id)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))
}

/// An owner asks for the tenant's deletion: suspended now, purged after the grace period.
/// Returns the purge time (Unix ms).
pub async fn request(
    state: &AppState,
    tenant_id: &str,
    actor: Actor<'_>,
    now: i64,
) -> Result<i64, LifecycleError> {
    let mut tenant = tenant_row(state, tenant_id).await?;
    if tenant.origin == ORIGIN_MANIFEST && tenant.detached_at.is_none() {
        return Err(LifecycleError::ManagedByManifest(tenant.slug));
    }
    let mut tx = state.store.write(&Scope::tenant(tenant_id)).await?;
    let row = lifecycle::get(&mut tx, tenant_id)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))?;
    if row.deletion_requested_at.is_some() {
        return Err(LifecycleError::PendingDeletion(tenant.slug));
    }
    let grace_ms = i64::try_from(state.config.lifecycle.deletion_grace_hours)
        .unwrap_or(i64::MAX / 3_600_000)
        .saturating_mul(3_600_000);
    let purge_after = now.saturating_add(grace_ms);
    lifecycle::request_deletion(&mut tx, tenant_id, now, purge_after).await?;
    audit_tenant(
        &mut tx,
        tenant_id,
        actor,
        "tenant.deletion_requested",
        json!({"purgeAfter": purge_after}),
        now,
    )
    .await?;
    // The CR first: a refusal leaves nothing changed.
    tenant.suspended = Flag(true);
    state.kube.apply_tenant(&tenant, &["suspended"]).await?;
    tx.commit().await?;
    Ok(purge_after)
}

/// An owner restores a tenant pending deletion; it is resumed unless a platform admin
/// suspended it. Returns whether it stays suspended.
pub async fn restore(
    state: &AppState,
    tenant_id: &str,
    actor: Actor<'_>,
    now: i64,
) -> Result<bool, LifecycleError> {
    let mut tenant = tenant_row(state, tenant_id).await?;
    let mut tx = state.store.write(&Scope::tenant(tenant_id)).await?;
    let row = lifecycle::get(&mut tx, tenant_id)
        .await?
        .ok_or(LifecycleError::NotFound("tenant"))?;
    if row.deletion_requested_at.is_none() {
        return Err(LifecycleError::NotPendingDeletion(tenant.slug));
    }
    let suspended = lifecycle::restore(&mut tx, tenant_id, now).await?;
    audit_tenant(&mut tx, tenant_id, actor, "tenant.restored", json!({}), now).await?;
    tenant.suspended = Flag(suspended);
    state.kube.apply_tenant(&tenant, &["suspended"]).await?;
    tx.commit().await?;
    Ok(suspended)
}

async fn audit_tenant(
    tx: &mut crate::store::Tx,
    tenant_id: &str,
    actor: Actor<'_>,
    action: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<(), LifecycleError> {
    audit::record(
        tx,
        &AuditEvent {
            tenant_id,
            actor_type: actor.kind,
            actor_id: actor.id,
            action,
            target_type: Some("tenant"),
            target_id: Some(tenant_id),
            ip: actor.ip,
            request_id: actor.request_id,
            details,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Purges every tenant whose grace period is over at `now`; returns how many. A tenant whose
/// numbers or Tenant cannot be released yet is left for the next pass.
pub async fn purge_due(state: &AppState, now: i64) -> Result<usize, LifecycleError> {
    let mut tx = system::read(&state.store).await?;
    let due = lifecycle::due_purges(&mut tx, now, PURGES_PER_PASS).await?;
    tx.commit().await?;
    let mut purged = 0;
    for tenant_id in due {
        match purge(state, &tenant_id, now).await {
            Ok(()) => purged += 1,
            Err(error) => {
                tracing::warn!(%error, tenant = %tenant_id, "cannot purge the deleted tenant yet; next pass retries");
            }
        }
    }
    Ok(purged)
}

/// Releases the tenant's numbers and Tenant, then removes every row of it.
pub async fn purge(state: &AppState, tenant_id: &str, now: i64) -> Result<(), LifecycleError> {
    let tenant = tenant_row(state, tenant_id).await?;
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let owned = numbers::for_tenant(&mut tx, tenant_id).await?;
    tx.commit().await?;
    let mut released = 0usize;
    if let Some(sandbox) = &state.sandbox {
        for number in &owned {
            let mut tx = state.store.write(&Scope::tenant(tenant_id)).await?;
            numbers::delete(&mut tx, &number.e164).await?;
            tx.commit().await?;
            if let Some(found) = sandbox
                .find_by_e164(&number.e164)
                .await
                .map_err(|e| LifecycleError::Carrier(e.to_string()))?
            {
                sandbox
                    .release(&found.id)
                    .await
                    .map_err(|e| LifecycleError::Carrier(e.to_string()))?;
            }
            released += 1;
        }
    }
    if let Some(client) = state.kube.client() {
        let namespace = state.config.tenant_naming().namespace(&tenant.slug);
        let api: Api<PhoneNumber> = Api::namespaced(client.clone(), &namespace);
        let objects = api
            .list(&ListParams::default())
            .await
            .map_err(crate::kube::KubeError::from)?;
        for object in objects.items {
            if let Some(name) = object.metadata.name.as_deref() {
                api.delete(name, &DeleteParams::default())
                    .await
                    .map_err(crate::kube::KubeError::from)?;
                released += 1;
            }
        }
        let tenants_api: Api<Tenant> = Api::all(client.clone());
        if let Some(cr) = tenants_api
            .get_opt(&tenant.slug)
            .await
            .map_err(crate::kube::KubeError::from)?
            && is_linked(&cr, &tenant)
        {
            tenants_api
                .delete(&tenant.slug, &DeleteParams::default())
                .await
                .map_err(crate::kube::KubeError::from)?;
        }
    }
    // The recordings' files (in the tenant's bucket or the data folder) before the rows that
    // locate them. One that cannot be deleted now (the bucket refuses) is logged and left in
    // the tenant's own bucket: its row goes with the tenant.
    let recordings =
        crate::recordings::remove_older_than(state, tenant_id, i64::MAX).await.unwrap_or_else(|error| {
            tracing::warn!(%error, tenant = %tenant.slug, "removing the tenant's recordings failed");
            0
        });
    let mut tx = system::write_for_tenant(&state.store, tenant_id).await?;
    lifecycle::purge(&mut tx, tenant_id).await?;
    lifecycle::record_platform(
        &mut tx,
        "tenant.purged",
        Some(tenant_id),
        "system",
        &json!({"plan": tenant.plan, "numbersReleased": released, "recordingsRemoved": recordings}),
        now,
    )
    .await?;
    tx.commit().await?;
    state.numbers.reload(&state.store).await?;
    Ok(())
}

/// A person deletes their own account, confirming with the password.
pub async fn delete_account(
    state: &AppState,
    user_id: &str,
    password: &str,
    now: i64,
) -> Result<(), LifecycleError> {
    let mut tx = system::write(&state.store).await?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or(LifecycleError::NotFound("account"))?;
    if !verify_password(password, &user.password_hash) {
        return Err(LifecycleError::WrongPassword);
    }
    let sole = lifecycle::solely_owned_by(&mut tx, user_id).await?;
    if !sole.is_empty() {
        return Err(LifecycleError::SoleOwner(sole));
    }
    lifecycle::delete_account(&mut tx, user_id, &user.email).await?;
    lifecycle::record_platform(&mut tx, "account.deleted", None, "user", &json!({}), now).await?;
    tx.commit().await?;
    Ok(())
}
