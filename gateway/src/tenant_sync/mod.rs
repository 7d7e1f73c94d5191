//! Keeping the gateway's tenants in step with the cluster's `Tenant` CRs (Kubernetes mode).
//!
//! A kube-runtime watcher feeds a reflector store (no polling of the API server): every Tenant
//! that appears or changes is reconciled ([`reconcile`]), a deleted one detaches its gateway
//! tenant, and after each complete listing (start, relist) and every [`RESYNC_EVERY`] from the
//! store, gateway tenants whose CR is missing are settled ([`full_pass`]). The decisions are
//! pure functions in [`decide`].
//!
//! * A Tenant nobody in the gateway holds (kubectl, GitOps) is **adopted**: a gateway tenant
//!   with the CR's name as slug, so the operator's number routes, campaigns and runtime events
//!   for it are accepted. The CR stays the truth: its display name, plan, suspension, agent and
//!   `spec.limits` are mirrored into the tenant's row on every change.
//! * `spec.owners` grants memberships: a listed address with a verified account becomes a member
//!   with the listed role at once; otherwise it gets one invitation e-mail and becomes a member
//!   when that address is verified ([`claim_manifest_memberships`]). An address removed from
//!   the list loses its membership.
//! * **Deleting** a Tenant keeps its gateway tenant as a suspended archive (call records, usage
//!   and audit stay readable; the operator has released its numbers); applying a Tenant of the
//!   same name again re-attaches it. Kubernetes cannot **rename** an object: a Tenant under a new
//!   name is a new tenant (new namespace, numbers bought again) and the old name is detached.
//! * A signup tenant gets its Tenant CR only once an owner's e-mail address is verified
//!   ([`activate_for_user`]): unverified signups cost no namespace or runtime pod.

pub mod decide;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::reflector::{self, Store as Reflector};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use switchboard_crds::tenant::Tenant;
use tokio::task::JoinHandle;

use crate::http::validate::{slug_candidate, slugify};
use crate::kube::{KubeError, is_linked};
use crate::mailer::Email;
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::tenants::{self, ManifestOwnerRow, TenantRow};
use crate::store::{Scope, StoreError, new_id, now_ms, provider_keys, system, users};
use decide::{Decision, Missing};

/// How often the reflector's store is reconciled again without any event (heals a database
/// write that failed, or a CR whose creation failed; costs no API request).
pub const RESYNC_EVERY: Duration = Duration::from_secs(300);
/// How many candidate slugs a new tenant tries (`acme`, `acme-2` …).
pub const SLUG_ATTEMPTS: u32 = 50;

/// Why a Tenant could not be synchronised (logged; the next event or resync retries).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API server failed or refused.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// No free slug for a tenant that must move off a name taken in the cluster.
    #[error("no free slug for tenant {0}")]
    NoFreeSlug(String),
}

impl From<sqlx::Error> for SyncError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::from(error))
    }
}

/// Starts the watcher in Kubernetes mode (`None` otherwise).
pub fn spawn(state: &AppState) -> Option<JoinHandle<()>> {
    let client = state.kube.client()?.clone();
    if state.config.voice.default_carrier.is_none()
        && state.config.voice.platform_carrier() == switchboard_crds::CarrierKind::Sandbox
    {
        tracing::warn!(
            "no platform Twilio or Telnyx account and no SWITCHBOARD_DEFAULT_CARRIER: self-service tenants get the sandbox carrier"
        );
    }
    let state = state.clone();
    Some(tokio::spawn(async move {
        run(state, Api::all(client), RESYNC_EVERY).await;
    }))
}

/// Watches `api`'s Tenants until the stream ends, reconciling as described in the module docs.
pub async fn run(state: AppState, api: Api<Tenant>, resync: Duration) {
    let (reader, writer) = reflector::store::<Tenant>();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    let mut listed = false;
    let mut tick = tokio::time::interval(resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            event = stream.next() => match event {
                None => return,
                Some(Ok(watcher::Event::Apply(cr) | watcher::Event::InitApply(cr))) => {
                    log_failure(&cr, reconcile(&state, &cr).await);
                }
                Some(Ok(watcher::Event::Delete(cr))) => {
                    log_failure(&cr, detach(&state, &cr).await);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    listed = true;
                    settle_missing(&state, &reader).await;
                }
                Some(Ok(watcher::Event::Init)) => {}
                Some(Err(error)) => tracing::warn!(%error, "Tenant watch failed; retrying"),
            },
            _ = tick.tick(), if listed => {
                for cr in reader.state() {
                    log_failure(&cr, reconcile(&state, &cr).await);
                }
                settle_missing(&state, &reader).await;
            }
        }
    }
}

fn log_failure(cr: &Tenant, result: Result<(), SyncError>) {
    if let Err(error) = result {
        let name = cr.metadata.name.as_deref().unwrap_or_default();
        tracing::warn!(%error, tenant = name, "cannot synchronise the Tenant");
    }
}

async fn settle_missing(state: &AppState, reader: &Reflector<Tenant>) {
    let present: BTreeSet<String> = reader
        .state()
        .iter()
        .filter_map(|cr| cr.metadata.name.clone())
        .collect();
    if let Err(error) = full_pass(state, &present).await {
        tracing::warn!(%error, "cannot settle tenants whose Tenant is missing");
    }
}

/// The tenant whose slug (or id) is `name`, across tenants.
async fn tenant_named(state: &AppState, name: &str) -> Result<Option<TenantRow>, SyncError> {
    Ok(tenants::load_by_key(&state.store, name).await?)
}

/// Brings the gateway in step with one Tenant CR (adopt, mirror, owners).
pub async fn reconcile(state: &AppState, cr: &Tenant) -> Result<(), SyncError> {
    let Some(name) = cr.metadata.name.as_deref() else {
        return Ok(());
    };
    let row = tenant_named(state, name).await?;
    let now = now_ms();
    // (tenant as it should be, adopted now, row changed)
    let (tenant, adopted, changed) = match decide::decide(cr, row.as_ref()) {
        Decision::Ignore => return Ok(()),
        Decision::NameTaken(id) => {
            tracing::warn!(tenant = name, tenant_id = %id,
                "a Tenant not created by the gateway has the name of a gateway tenant; not adopted");
            return Ok(());
        }
        Decision::Adopt => match decide::adopted(cr, new_id(), now) {
            Some(row) => (row, true, true),
            None => return Ok(()),
        },
        Decision::Mirror(_) => match row {
            Some(row) => match decide::mirrored(&row, cr, now) {
                Some(next) => (next, false, true),
                None => (row, false, false),
            },
            None => return Ok(()),
        },
    };
    let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
    if adopted {
        if !tenants::try_insert(&mut tx, &tenant).await? {
            // Someone took the slug meanwhile; the next event decides again.
            return Ok(());
        }
        // The adopted tenant's runtime needs its runtime credential in the namespace.
        provider_keys::bump(&mut tx, &tenant.id).await?;
        audit::record(
            &mut tx,
            &AuditEvent {
                tenant_id: &tenant.id,
                actor_type: "system",
                actor_id: None,
                action: "tenant.adopted",
                target_type: Some("tenant"),
                target_id: Some(&tenant.id),
                ip: None,
                request_id: None,
                details: json!({"slug": tenant.slug, "uid": tenant.cr_uid}),
            },
            now,
        )
        .await?;
    } else if changed {
        tenants::mirror(&mut tx, &tenant, now).await?;
    }
    let invitations = sync_owners(&mut tx, &tenant, cr, now).await?;
    tx.commit().await?;
    for email in invitations {
        invite(state, &tenant, &email).await;
    }
    if adopted {
        tracing::info!(tenant = %tenant.slug, tenant_id = %tenant.id, "adopted a Tenant applied outside the gateway");
        // The runtime reads the gateway's provider-keys Secret unless the manifest names its
        // own; claimed only if no other manager holds the field.
        if cr.spec.provider_secret_ref.is_none() {
            state
                .kube
                .apply_tenant(&tenant, &["providerSecretRef"])
                .await?;
        }
    }
    Ok(())
}

/// Writes the manifest's owners and the memberships they grant; returns the addresses to
/// invite (listed, no verified account, not invited before).
async fn sync_owners(
    tx: &mut sqlx::AnyConnection,
    tenant: &TenantRow,
    cr: &Tenant,
    now: i64,
) -> Result<Vec<String>, SyncError> {
    let stored = tenants::manifest_owners(tx, &tenant.id).await?;
    let changes = decide::owner_changes(&stored, &cr.spec.owners);
    for email in &changes.removed {
        tenants::remove_manifest_owner(tx, &tenant.id, email).await?;
    }
    let mut invitations = Vec::new();
    for (email, role) in &changes.desired {
        let prior = stored.iter().find(|row| row.email == *email);
        let mut invited_at = prior.and_then(|row| row.invited_at);
        let verified = users::by_email(tx, email)
            .await?
            .filter(|user| user.email_verified_at.is_some());
        if let Some(user) = verified {
            ensure_member(tx, &tenant.id, &user.id, *role, now).await?;
        } else if invited_at.is_none() {
            invitations.push(email.clone());
            invited_at = Some(now);
        }
        let row = ManifestOwnerRow {
            tenant_id: tenant.id.clone(),
            email: email.clone(),
            role: role.as_str().to_owned(),
            invited_at,
        };
        if prior != Some(&row) {
            tenants::upsert_manifest_owner(tx, &row).await?;
        }
    }
    Ok(invitations)
}

async fn ensure_member(
    tx: &mut sqlx::AnyConnection,
    tenant_id: &str,
    user_id: &str,
    role: tenants::Role,
    now: i64,
) -> Result<(), SyncError> {
    match tenants::member(tx, tenant_id, user_id).await? {
        None => {
            tenants::add_member(tx, tenant_id, user_id, role, now).await?;
        }
        Some(member) if member.role != role.as_str() => {
            tenants::set_role(tx, tenant_id, user_id, role).await?;
        }
        Some(_) => {}
    }
    Ok(())
}

async fn invite(state: &AppState, tenant: &TenantRow, email: &str) {
    let body = format!(
        "You are named in the manifest of {} (tenant `{}`) on Switchboard.\n\nSign up or log in with this address at {} and verify it: you then find the tenant in your account.\n",
        tenant.name,
        tenant.slug,
        state.config.public_base()
    );
    let message = Email {
        to: email.to_owned(),
        subject: format!("You can now run {} on Switchboard", tenant.name),
        body,
    };
    if let Err(error) = state.mailer.send(message).await {
        tracing::error!(%error, tenant = %tenant.slug, "cannot send a manifest owner's invitation");
    }
}

/// A Tenant was deleted: its gateway tenant (if linked) becomes a suspended archive.
pub async fn detach(state: &AppState, cr: &Tenant) -> Result<(), SyncError> {
    let Some(name) = cr.metadata.name.as_deref() else {
        return Ok(());
    };
    let Some(row) = tenant_named(state, name).await? else {
        return Ok(());
    };
    let linked = is_linked(cr, &row)
        || (row.origin == tenants::ORIGIN_MANIFEST && row.cr_uid == cr.metadata.uid);
    if linked && row.detached_at.is_none() {
        write_detached(state, &row).await?;
    }
    Ok(())
}

async fn write_detached(state: &AppState, row: &TenantRow) -> Result<(), SyncError> {
    let now = now_ms();
    let mut tx = state.store.write(&Scope::tenant(&row.id)).await?;
    tenants::mirror(&mut tx, &decide::detached(row, now), now).await?;
    audit::record(
        &mut tx,
        &AuditEvent {
            tenant_id: &row.id,
            actor_type: "system",
            actor_id: None,
            action: "tenant.detached",
            target_type: Some("tenant"),
            target_id: Some(&row.id),
            ip: None,
            request_id: None,
            details: json!({"slug": row.slug}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %row.slug, "Tenant deleted: gateway tenant kept as a suspended archive");
    Ok(())
}

/// Settles every gateway tenant whose CR is not among `present` (a complete listing): creates
/// the CR of a verified signup tenant whose creation failed, detaches those whose CR was
/// deleted while nobody watched.
pub async fn full_pass(state: &AppState, present: &BTreeSet<String>) -> Result<(), SyncError> {
    let mut after = String::new();
    loop {
        let mut tx = system::read(&state.store).await?;
        let page = tenants::page(&mut tx, &after, 500).await?;
        tx.commit().await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id.clone();
        for row in page.iter().filter(|row| !present.contains(&row.slug)) {
            match decide::missing(row) {
                Missing::Create => {
                    if let Err(error) = state.kube.apply_tenant(row, &[]).await {
                        tracing::warn!(%error, tenant = %row.slug, "cannot create the Tenant");
                    }
                }
                Missing::Detach => write_detached(state, row).await?,
                Missing::Nothing => {}
            }
        }
    }
}

/// The first slug derived from `name` that no tenant holds, in the database or (Kubernetes
/// mode) as a Tenant in the cluster. `None` after [`SLUG_ATTEMPTS`].
pub async fn free_slug(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    name: &str,
) -> Result<Option<String>, SyncError> {
    let base = slugify(name);
    for attempt in 1..=SLUG_ATTEMPTS {
        let slug = slug_candidate(&base, attempt);
        if tenants::slug_is_free(conn, &slug).await? && !state.kube.tenant_exists(&slug).await? {
            return Ok(Some(slug));
        }
    }
    Ok(None)
}

/// Activates the signup tenants `user_id` owns once the address is verified: in Kubernetes mode
/// their Tenant CR is created now (under a new slug if a Tenant took the name meanwhile).
/// Failures are logged; the watcher's next full pass creates a CR that could not be.
pub async fn activate_for_user(state: &AppState, user_id: &str) {
    let ids = async {
        let mut tx = state.store.read(&Scope::user(user_id)).await?;
        let ids = tenants::unactivated_owned_by(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok::<_, SyncError>(ids)
    }
    .await;
    let ids = match ids {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, user_id, "cannot list the tenants to activate");
            return;
        }
    };
    for id in ids {
        if let Err(error) = activate(state, &id).await {
            tracing::warn!(%error, tenant_id = %id, "cannot activate the tenant");
        }
    }
}

/// Activates one signup tenant (see [`activate_for_user`]).
pub async fn activate(state: &AppState, tenant_id: &str) -> Result<(), SyncError> {
    let now = now_ms();
    let mut tx = state.store.write(&Scope::tenant(tenant_id)).await?;
    let Some(mut row) = tenants::by_id(&mut tx, tenant_id).await? else {
        return Ok(());
    };
    if row.activated_at.is_some() {
        return Ok(());
    }
    let taken = state
        .kube
        .tenant(&row.slug)
        .await?
        .is_some_and(|cr| !is_linked(&cr, &row));
    if taken {
        let old = row.slug.clone();
        row.slug = free_slug(state, &mut tx, &row.name)
            .await?
            .ok_or_else(|| SyncError::NoFreeSlug(row.id.clone()))?;
        tracing::info!(from = %old, to = %row.slug, "a Tenant took the name before the owner verified; tenant renamed");
    }
    row.activated_at = Some(now);
    tenants::mirror(&mut tx, &row, now).await?;
    // Its runtime credential goes into its namespace from the start: pending until the
    // Secrets land (the retry task writes them once the operator has made the namespace).
    provider_keys::bump(&mut tx, tenant_id).await?;
    tx.commit().await?;
    state.kube.apply_tenant(&row, &[]).await?;
    Ok(())
}

/// Grants a freshly verified address the memberships manifests list it for.
pub async fn claim_manifest_memberships(state: &AppState, user_id: &str, email: &str) {
    let result = async {
        let mut tx = system::read(&state.store).await?;
        let entries = tenants::manifest_owner_entries(&mut tx, email).await?;
        tx.commit().await?;
        for entry in entries {
            let role = tenants::parse_role(&entry.role)?;
            let now = now_ms();
            let mut tx = state
                .store
                .write(&Scope::tenant(&entry.tenant_id).with_user(user_id))
                .await?;
            ensure_member(&mut tx, &entry.tenant_id, user_id, role, now).await?;
            tx.commit().await?;
        }
        Ok::<_, SyncError>(())
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%error, user_id, "cannot grant the memberships manifests list");
    }
}
